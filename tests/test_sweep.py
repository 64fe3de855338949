"""Sweeps: a grid of three tiny runs writes its table and plot; a rerun skips them; a failing run is a row;
the TPU launch builds one train.sh command line per run."""

from __future__ import annotations

import csv
import shlex
from pathlib import Path

import numpy as np
import pytest

from flaxgpt.cli.main import main
from flaxgpt.data.shards import ShardWriter
from flaxgpt.data.tokenizer import get_tokenizer
from flaxgpt.launch.sweep import Sweep, TpuLauncher, override_text, plan, run_name, run_sweep, train_locally

ROOT = Path(__file__).resolve().parents[1]
BASE = str(ROOT / "experiments/micro.py")
LRS = [1e-3, 1e-2]
STEPS = 4


def tiny_fixed(data: Path) -> dict:
    """micro.py shrunk to a 2-layer, 32-wide model over 4 steps of 8 x 16 tokens, with validation at the end."""
    return {"data.sources.personal.path": str(data), "data.tokenizer": "gpt2", "model.vocab_size": 50257,
            "model.n_layer": 2, "model.n_head": 2, "model.d_model": 32, "model.max_len": 16, "data.seq_len": 16,
            "model.dropout": 0.0, "train.batch_size": 8, "train.steps": STEPS, "train.warmup_steps": 1,
            "train.log_every": 2, "train.eval_every": STEPS, "train.eval_batches": 1, "checkpoint.every": STEPS}


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> Path:
    """Random GPT-2 token documents, train and val splits."""
    out = tmp_path_factory.mktemp("data") / "random"
    rng = np.random.default_rng(0)
    for split, n in (("train", 64), ("val", 8)):
        with ShardWriter(out, split, tokenizer_meta=get_tokenizer("gpt2").metadata(), source="random") as w:
            for _ in range(n):
                w.add(rng.integers(0, 1000, 40))
    return out


def lr_sweep(data: Path, out: Path) -> Sweep:
    return Sweep(name="lr", base=BASE, grid={"train.lr": LRS}, fixed=tiny_fixed(data), out=str(out))


@pytest.fixture(scope="module")
def swept(data, tmp_path_factory) -> tuple[Sweep, list]:
    """The two-run learning-rate sweep, run once."""
    sweep = lr_sweep(data, tmp_path_factory.mktemp("sweep"))
    return sweep, run_sweep(sweep, train_locally(show_progress=False))


def test_a_sweep_writes_its_table_and_plot(swept, capsys):
    sweep, rows = swept
    assert [r.status for r in rows] == ["done"] * len(LRS)
    assert [r.run.name for r in rows] == ["lr=0.001", "lr=0.01"]
    assert all(r.steps == STEPS and r.final is not None and r.tokens_per_s > 0 for r in rows)
    with (sweep.out_dir / "results.csv").open() as f:
        table = list(csv.DictReader(f))
    assert list(table[0]) == ["run", "train.lr", "steps", "final loss", "best val_loss", "final val_loss",
                              "tokens/s", "status"]
    assert [float(t["train.lr"]) for t in table] == LRS and {t["steps"] for t in table} == {f"{STEPS}/{STEPS}"}
    md = (sweep.out_dir / "results.md").read_text()
    assert md.count("| lr=0.0") == len(LRS) and "Best: **lr=" in md
    assert (sweep.out_dir / "sweep.png").stat().st_size > 5000
    assert (sweep.out_dir / "lr=0.01" / "checkpoints" / str(STEPS)).is_dir()


def test_a_rerun_skips_the_finished_runs(swept, capsys):
    sweep, first = swept

    def must_not_train(run, config):
        raise AssertionError(f"{run.name} trained again")

    rows = run_sweep(sweep, must_not_train)
    assert [r.status for r in rows] == ["skipped-finished"] * len(LRS)
    assert [r.final for r in rows] == [r.final for r in first]  # the table is read back from the runs
    assert "| skipped-finished |" in capsys.readouterr().out


def test_a_failing_run_is_a_row_and_the_sweep_goes_on(data, tmp_path):
    sweep = Sweep(name="bad", base=BASE, runs=[{"model.vocab_size": 100}, {"train.steps": 2}],
                  fixed=tiny_fixed(data), out=str(tmp_path))
    real, launched = train_locally(show_progress=False), []

    def launch(run, config):  # the bad run really trains (and fails at once); the other only pretends
        launched.append(run.name)
        return real(run, config) if run.name == "vocab_size=100" else ("done", True)

    rows = run_sweep(sweep, launch)
    assert launched == ["vocab_size=100", "steps=2"]
    assert rows[0].status.startswith("failed: ValueError: model.vocab_size=100 is smaller") and not rows[0].ok
    assert rows[1].ok and "failed: ValueError" in (tmp_path / "results.md").read_text()


def test_run_names_and_override_texts():
    assert run_name({"train.lr": 0.001, "train.batch_size": 16}, ["train.lr", "train.batch_size"]) == \
        "lr=0.001,batch_size=16"
    assert run_name({"a.path": "data/x y"}, ["a.path"]) == "path=data_x_y"
    assert run_name({"model.dropout": 0.1, "ppo.dropout": 0.0}, ["model.dropout", "ppo.dropout"]) == \
        "model.dropout=0.1,ppo.dropout=0.0"
    assert override_text("k", "1e-3") == "k='1e-3'" and override_text("k", "data/x") == "k=data/x"
    assert override_text("k", 0.001) == "k=0.001" and override_text("k", True) == "k=True"
    grid = Sweep(name="g", base=BASE, grid={"train.lr": [1, 2], "train.batch_size": [8, 16]})
    assert [r.name for r in plan(grid)] == ["lr=1,batch_size=8", "lr=1,batch_size=16", "lr=2,batch_size=8",
                                           "lr=2,batch_size=16"]


def test_the_tpu_dry_run_prints_one_train_sh_line_per_run(tmp_path, capsys):
    sweep_file = tmp_path / "lrs.py"
    sweep_file.write_text(
        "from flaxgpt.launch.sweep import Sweep\n\n\ndef get_sweep():\n"
        f"    return Sweep(name='lrs', base='experiments/micro.py', grid={{'train.lr': {LRS}}},\n"
        "                 fixed={'train.steps': 100})\n")
    out = tmp_path / "out"
    status = main(["sweep", str(sweep_file), "train.warmup_steps=5", "--out", str(out), "--via", "tpu",
                   "--tpu-name", "my-tpu", "--zone", "us-central2-b", "--dry-run"])
    assert status == 0
    lines = [shlex.split(line[2:]) for line in capsys.readouterr().out.splitlines() if line.startswith("$ ")]
    script = str(ROOT / "tpu_setup/train.sh")
    assert lines == [[script, "--name", "my-tpu", "--zone", "us-central2-b", "--", "experiments/micro.py",
                      "train.steps=100", "train.warmup_steps=5", f"train.lr={lr}", f"run.dir={out}/lr={lr}",
                      f"run.name=lr={lr}"] for lr in LRS]
    assert not out.exists()  # a dry run writes nothing


def test_the_tpu_launch_runs_one_after_another_and_fetches_each(data, tmp_path, monkeypatch):
    """Fake tpu_setup scripts: train.sh logs its arguments and makes the TPU busy until status.sh has reported it
    once; fetch.sh 'copies back' a finished run directory."""
    scripts = tmp_path / "tpu_setup"
    scripts.mkdir()
    for name, body in (("train.sh", 'echo "$@" >> calls.txt; touch busy'),
                       ("status.sh", 'if [ -f busy ]; then echo "w0: training (pid 1)"; rm busy; '
                                     'else echo "w0: not training"; fi'),
                       ("fetch.sh", f'echo "fetch $5" >> calls.txt; mkdir -p "$5/checkpoints/{STEPS}"')):
        (scripts / name).write_text(f"#!/bin/sh\n{body}\n")
        (scripts / name).chmod(0o755)
    monkeypatch.chdir(tmp_path)
    sleeps = []
    launcher = TpuLauncher(BASE, "t", "z", poll_s=7, scripts=scripts, sleep=sleeps.append)
    rows = run_sweep(lr_sweep(data, Path("out")), launcher)
    assert [r.status for r in rows] == ["done (on the TPU)"] * len(LRS)
    calls = (tmp_path / "calls.txt").read_text().splitlines()
    assert [c.split()[0] for c in calls] == ["--name", "fetch"] * len(LRS)
    assert calls[2].startswith(f"--name t --zone z -- {BASE} ") and calls[2].endswith(
        "train.lr=0.01 run.dir=out/lr=0.01 run.name=lr=0.01") and calls[3] == "fetch out/lr=0.01"
    assert sleeps == [7, 7] * len(LRS)  # after each launch, and once while it trained
