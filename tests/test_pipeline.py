"""`flaxgpt run PIPELINE`: stage order, the commands each stage runs, skipping done stages, config errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from flaxgpt.cai.pipeline import Pipeline
from flaxgpt.config import ConfigError, apply_overrides, read_config_file

ROOT = Path(__file__).resolve().parents[1]


def pipeline(tmp_path: Path, *overrides: str, runner=None) -> Pipeline:
    c = read_config_file(ROOT / "experiments/cai_micro.py")
    apply_overrides(c, [f"dir={tmp_path / 'cai'}", f"sft.run_dir={tmp_path / 'sft'}", *overrides])
    calls: list[list[str]] = []
    p = Pipeline(c, runner or (lambda args: calls.append(args) or 0))
    p.calls = calls
    return p


def test_rl_placeholder_resolves_and_commands_chain_the_stages(tmp_path):
    p = pipeline(tmp_path)
    assert p.c.stages == ("sft", "revise", "sft_cai", "label", "pm", "ppo", "evaluate")
    cai = tmp_path / "cai"
    revise, tokenize = p.command("revise")
    assert revise[:2] == ["cai", "revise"] and revise[revise.index("--policy") + 1] == str(tmp_path / "sft")
    assert tokenize[0] == "tokenize-chat" and tokenize[1] == str(cai / "revise/sft.jsonl")
    (sft_cai,) = p.command("sft_cai")
    assert f"+data.sources.revisions.path={cai / 'data/revisions'}" in sft_cai
    assert [a for a in sft_cai if a.startswith("train.steps=")] == ["train.steps=150"]
    (label,) = p.command("label")
    assert label[label.index("--policy") + 1] == str(cai / "sft_cai")
    (pm,) = p.command("pm")
    assert f"prefs.data={cai / 'label/labels.jsonl'},{cai / 'revise/pairs.jsonl'}" in pm
    (ppo,) = p.command("ppo")
    assert f"ppo.reward_from={cai / 'pm'}" in ppo and f"train.init_from={cai / 'sft_cai'}" in ppo
    assert p.final_policy() == cai / "ppo"

    d = pipeline(tmp_path, "rl=dpo")
    assert "dpo" in d.c.stages and "ppo" not in d.c.stages
    (dpo,) = d.command("dpo")
    assert dpo[1] == "experiments/dpo_micro.py" and f"prefs.data={cai / 'label/labels.jsonl'}" in dpo


def test_done_stages_are_skipped_and_a_failure_stops_the_pipeline(tmp_path, capsys):
    p = pipeline(tmp_path, "stages=('revise', 'label')")
    for stage in ("revise",):
        (p.path(stage)).mkdir(parents=True)
        (p.path(stage) / "report.json").write_text(json.dumps({"prompts": 3, "pairs": 2}))
    assert p.run() == 0
    out = capsys.readouterr().out
    assert "== revise: done already" in out and "$ flaxgpt cai label" in out
    assert [c[:2] for c in p.calls] == [["cai", "label"]]

    failing = pipeline(tmp_path / "f", "stages=('revise', 'label')", runner=lambda args: 3)
    assert failing.run() == 3
    assert "pipeline stopped: stage revise failed (exit status 3)" in capsys.readouterr().out


def test_labels_that_carry_no_preference_stop_the_pipeline_unless_the_gate_is_off(tmp_path, capsys):
    def labelled(path: Path, stages: str = "('label', 'pm')", **report) -> Pipeline:
        p = pipeline(path, f"stages={stages}", "label.gate=True")
        p.path("label").mkdir(parents=True)
        (p.path("label") / "report.json").write_text(json.dumps({"pairs": 9, **report}))
        return p

    noise = labelled(tmp_path / "noise", same_position_wins=1.0, mean_abs_margin=0.01)
    assert noise.run() == 1
    out = capsys.readouterr().out
    assert "pipeline stopped after label: the labels carry no preference" in out and "label.gate=False" in out
    assert noise.calls == []  # no preference model trained on them
    signal = labelled(tmp_path / "signal", "('label',)", same_position_wins=0.3, mean_abs_margin=0.2)
    assert signal.run() == 0 and "pipeline stopped" not in capsys.readouterr().out
    off = labelled(tmp_path / "off", "('label',)", same_position_wins=1.0, mean_abs_margin=0.0)
    apply_overrides(off.c, ["label.gate=False"])
    assert off.run() == 0 and "pipeline stopped" not in capsys.readouterr().out
    assert "--fit" in noise.command("label")[0]


@pytest.mark.parametrize("override, message", [
    ("stages=('sft', 'nope')", "unknown stage 'nope'"),
    ("rl=a2c", "'a2c' is not ppo or dpo"),
    ("stages=('ppo', 'dpo')", "choose ppo or dpo"),
])
def test_bad_pipelines_name_the_key(tmp_path, override, message):
    with pytest.raises(ConfigError, match=message):
        pipeline(tmp_path, override)


def test_run_command_trains_a_plain_experiment_config(tmp_path, monkeypatch):
    """`flaxgpt run` on a training config (no stages) is `flaxgpt train`: a bad override fails the same way."""
    from flaxgpt.cli.main import main

    assert main(["run", str(ROOT / "experiments/micro.py"), "model.n_layr=2"]) == 2
