"""The preference stages end to end through the real trainer: SFT -> PM -> PPO, and DPO, on a yes/no task.

A tiny chat policy is fine-tuned to answer "yes" or "no" about equally often; the comparisons say "yes" is
better. The PM must learn that, PPO must raise the PM reward with the KL to the SFT policy staying bounded,
and DPO must raise the chosen-over-rejected margin from ln 2.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest

from flaxgpt.config import load_config
from flaxgpt.data.chat import tokenize_chat
from flaxgpt.train.logger import read_metrics
from flaxgpt.train.ppo_trainer import train_ppo
from flaxgpt.train.trainer import train

ROOT = Path(__file__).resolve().parents[1]
TINY = ["model.n_layer=2", "model.n_head=2", "model.d_model=32", "model.max_len=32", "data.seq_len=32",
        "model.dropout=0.0", "train.batch_size=8", "train.log_every=1", "train.warmup_steps=2",
        "checkpoint.async_save=false"]


def _jsonl(path: Path, records: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    return path


def question(i: int) -> str:
    return f"Is statement {i} true?"


@pytest.fixture(scope="module")
def task(tmp_path_factory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("yesno")
    chats = [{"messages": [{"role": "user", "content": question(i)},
                           {"role": "assistant", "content": "yes" if i % 2 else "no"}]} for i in range(64)]
    tokenize_chat([_jsonl(d / "chat.jsonl", chats)], d / "chat", fmt="openai", name="chat", progress=False)
    pairs = [{"prompt": [{"role": "user", "content": question(i)}], "chosen": "yes", "rejected": "no"}
             for i in range(64)]
    prompts = [{"prompt": question(i)} for i in range(100, 132)]
    return {"dir": d, "chat": d / "chat", "pairs": _jsonl(d / "pairs.jsonl", pairs),
            "prompts": _jsonl(d / "prompts.jsonl", prompts)}


def metrics(run_dir: Path, kind: str) -> list[dict]:
    return [r for r in read_metrics(run_dir) if r["kind"] == kind]


@pytest.fixture(scope="module")
def sft_run(task) -> Path:
    run = task["dir"] / "sft"
    train(load_config(ROOT / "experiments/sft_micro.py", [
        *TINY, f"run.dir={run}", f"data.sources.chat.path={task['chat']}", "train.steps=150", "train.lr=1e-2",
        "train.eval_every=0", "checkpoint.every=150"]), show_progress=False)
    return run


@pytest.fixture(scope="module")
def pm_run(task, sft_run) -> Path:
    run = task["dir"] / "pm"
    train(load_config(ROOT / "experiments/pm_micro.py", [
        *TINY, f"run.dir={run}", f"prefs.data={task['pairs']}", f"train.init_from={sft_run}", "train.steps=30",
        "train.lr=1e-3", "prefs.val_fraction=0.25", "train.eval_every=30", "checkpoint.every=30"]),
        show_progress=False)
    return run


def test_pm_learns_the_preference_and_is_centred(pm_run):
    ev = metrics(pm_run, "eval")[-1]
    assert ev["val_accuracy"] > 0.95
    offset = metrics(pm_run, "pm")[-1]["reward_offset"]
    assert math.isfinite(offset)
    # After centring, the rewards of "yes" and "no" average ~0 and keep their order.
    from flaxgpt.eval.judges import PMJudge

    prompts = [({"role": "user", "content": question(i)},) for i in range(8)]
    r = PMJudge(pm_run).rewards(prompts * 2, ["yes"] * 8 + ["no"] * 8)
    assert abs(float(np.mean(r))) < 0.5 * float(np.mean(r[:8]) - np.mean(r[8:]))
    assert (r[:8] > r[8:]).all()


def test_ppo_raises_the_pm_reward_with_bounded_kl(task, sft_run, pm_run):
    run = task["dir"] / "ppo"
    config = load_config(ROOT / "experiments/ppo_micro.py", [
        *TINY, f"run.dir={run}", f"train.init_from={sft_run}", f"ppo.reward_from={pm_run}",
        f"ppo.prompts={task['prompts']}", "ppo.rollout_batch=16", "ppo.minibatch=8", "ppo.response_len=4",
        "ppo.epochs=4", "train.steps=16", "train.lr=2e-3", "checkpoint.every=8"])
    summary = train_ppo(config, show_progress=False)
    rows = metrics(run, "train")
    assert len(rows) == 16 and summary["status"] == "completed"
    reward = [r["reward"] for r in rows]
    assert np.mean(reward[-4:]) > np.mean(reward[:4]) + 0.2, reward
    assert max(r["kl"] for r in rows) < 10.0  # nats per response (of a few tokens)
    for r in rows:
        assert 0.0 <= r["clipfrac"] <= 1.0 and r["entropy"] > 0 and math.isfinite(r["vf_loss"])
    assert (run / "rollouts.jsonl").exists() and (run / "ppo.png").exists()


def test_ppo_resumes_from_its_checkpoint(task, sft_run, pm_run):
    run = task["dir"] / "ppo_resume"
    args = [*TINY, f"run.dir={run}", f"train.init_from={sft_run}", f"ppo.reward_from={pm_run}",
            f"ppo.prompts={task['prompts']}", "ppo.rollout_batch=8", "ppo.minibatch=8", "ppo.response_len=4",
            "ppo.epochs=1", "train.steps=4", "checkpoint.every=2", "ppo.kl_target=1.0"]
    first = train_ppo(load_config(ROOT / "experiments/ppo_micro.py", args), stop_at=2, show_progress=False)
    assert first["status"] == "stopped (stop_at)"
    second = train_ppo(load_config(ROOT / "experiments/ppo_micro.py", args), show_progress=False)
    assert second["start_step"] == 2 and second["step"] == 4
    rows = metrics(run, "train")
    assert [r["step"] for r in rows] == [1, 2, 3, 4]
    # The adaptive KL coefficient carried over the restart.
    assert rows[2]["kl_coef"] != pytest.approx(0.05)


def test_dpo_starts_at_ln2_and_raises_the_margin(task, sft_run, capsys):
    run = task["dir"] / "dpo"
    args = [*TINY, f"run.dir={run}", f"prefs.data={task['pairs']}", f"train.init_from={sft_run}", "train.steps=20",
            "train.lr=1e-3", "prefs.val_fraction=0.25", "train.eval_every=10", "checkpoint.every=10"]
    train(load_config(ROOT / "experiments/dpo_micro.py", args), stop_at=10, show_progress=False)
    assert "reference log-probs computed once" in capsys.readouterr().out
    assert (run / "reference_logps.npz").exists()
    train(load_config(ROOT / "experiments/dpo_micro.py", args), show_progress=False)
    assert "reference log-probs from" in capsys.readouterr().out  # the resumed run reuses them
    rows = metrics(run, "train")
    assert rows[0]["loss"] == pytest.approx(math.log(2), abs=1e-4)
    evals = metrics(run, "eval")
    assert evals[-1]["val_margin"] > evals[0]["val_margin"] > 0
    assert evals[-1]["val_accuracy"] == 1.0
    assert rows[-1]["rewards_chosen"] > rows[-1]["rewards_rejected"]
