"""The trainer: exact resume in process, SIGTERM saves, NaN stops, corrupt checkpoints fall back. (kill -9 then
resume is bitwise: pretraining in test_multihost.py, a single process in test_pref_train.py's PPO run.)"""

from __future__ import annotations

import gc
import json
import math
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import chex
import jax
import numpy as np
import orbax.checkpoint as ocp
import pytest

from flaxgpt.config import load_config
from flaxgpt.data.tokenize import tokenize_paths
from flaxgpt.launch.train import train
from flaxgpt.runs.info import describe_run
from flaxgpt.runs.rundir import checkpoint_steps
from flaxgpt.train.checkpoint import CheckpointMismatch, CheckpointsDamaged
from flaxgpt.train.logger import read_metrics
from flaxgpt.train.loop import NonFiniteLoss

ROOT = Path(__file__).resolve().parents[1]
STEPS = 20


@pytest.fixture(scope="module")
def shards(tmp_path_factory) -> Path:
    """The persona's blog, tokenized with the real GPT-2 tokenizer."""
    out = tmp_path_factory.mktemp("data") / "blog"
    tokenize_paths([ROOT / "examples/persona/blog"], out, name="blog", progress=False)
    return out


def overrides(shards: Path, run_dir: Path, *extra: str) -> list[str]:
    return [
        f"data.sources.personal.path={shards}", f"run.dir={run_dir}",
        "model.n_layer=2", "model.n_head=2", "model.d_model=32", "model.max_len=32", "data.seq_len=32",
        "train.batch_size=8", f"train.steps={STEPS}", "train.warmup_steps=5", "train.log_every=1",
        "train.eval_every=0", "checkpoint.every=5", "model.dropout=0.1",
        "data.tokenizer=gpt2", "model.vocab_size=50257",
        *extra,
    ]


def cfg(shards: Path, run_dir: Path, *extra: str):
    return load_config(ROOT / "experiments/micro.py", overrides(shards, run_dir, *extra))


def train_losses(run_dir: Path) -> dict[int, float]:
    return {r["step"]: r["loss"] for r in read_metrics(run_dir) if r["kind"] == "train"}


def final_params(run_dir: Path, step: int = STEPS):
    with ocp.CheckpointManager(Path(run_dir).absolute() / "checkpoints") as mngr:
        return mngr.restore(step, args=ocp.args.Composite(state=ocp.args.StandardRestore()))["state"]["params"]


def assert_same_params(a, b):
    chex.assert_trees_all_close(a, b, rtol=0, atol=1e-6)


@pytest.fixture(scope="module")
def straight(shards, tmp_path_factory) -> Path:
    """An uninterrupted 20-step run (with evaluation, to exercise the whole loop once)."""
    run_dir = tmp_path_factory.mktemp("straight")
    summary = train(cfg(shards, run_dir, "train.eval_every=10", "train.eval_batches=2"), show_progress=False)
    assert summary["status"] == "completed" and summary["step"] == STEPS
    return run_dir


def test_a_run_writes_checkpoints_metrics_config_and_plot(straight):
    assert checkpoint_steps(straight) == [10, 15, 20]  # keep=3
    saved = json.loads((straight / "config.json").read_text())
    assert saved["train"]["steps"] == STEPS and saved["model"]["d_model"] == 32
    records = read_metrics(straight)
    train_recs = [r for r in records if r["kind"] == "train"]
    assert [r["step"] for r in train_recs] == list(range(1, STEPS + 1))
    for key in ("loss", "lr", "grad_norm", "tokens_per_s", "mfu_nanogpt", "mfu_maxtext", "data_wait_ms"):
        assert math.isfinite(train_recs[-1][key]), key
    assert train_recs[-1]["loss"] < train_recs[0]["loss"]
    evals = [r for r in records if r["kind"] == "eval"]
    assert [r["step"] for r in evals] == [10, 20] and evals[-1]["val_ppl"] == pytest.approx(
        math.exp(evals[-1]["val_loss"]))
    assert (straight / "loss.png").stat().st_size > 5000
    assert list((straight / "tensorboard").glob("events.out.tfevents.*"))
    info = describe_run(straight)
    assert f"steps: {STEPS} of {STEPS}" in info and "latest eval" in info
    assert "mesh: data=-1 fsdp=1 tensor=1" in info and "written by 1 process(es), 8 cpu device(s)" in info


def test_stop_and_resume_equals_the_uninterrupted_run(shards, straight, tmp_path):
    first = train(cfg(shards, tmp_path), stop_at=10, show_progress=False)
    assert first["status"].startswith("stopped") and checkpoint_steps(tmp_path) == [5, 10]
    second = train(cfg(shards, tmp_path), show_progress=False)
    assert second["start_step"] == 10 and second["step"] == STEPS
    ref = train_losses(straight)
    got = train_losses(tmp_path)
    assert sorted(got) == list(range(1, STEPS + 1))
    np.testing.assert_allclose([got[s] for s in sorted(got)], [ref[s] for s in sorted(ref)], rtol=0, atol=1e-6)
    assert_same_params(final_params(tmp_path), final_params(straight))


def _launch(shards: Path, run_dir: Path, *extra: str) -> subprocess.Popen:
    env = dict(os.environ, JAX_DISABLE_MOST_OPTIMIZATIONS="true")
    cmd = [sys.executable, "-m", "flaxgpt.cli", "train", str(ROOT / "experiments/micro.py"),
           *overrides(shards, run_dir, *extra)]
    return subprocess.Popen(cmd, env=env, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def test_sigterm_saves_a_checkpoint_and_exits_143(shards, tmp_path):
    proc = _launch(shards, tmp_path, "train.steps=100000", "checkpoint.every=1000")
    deadline = time.time() + 240
    while not [r for r in read_metrics(tmp_path) if r.get("step", 0) >= 3]:
        assert proc.poll() is None, proc.stdout.read()
        assert time.time() < deadline
        time.sleep(0.05)
    proc.send_signal(signal.SIGTERM)
    out, _ = proc.communicate(timeout=120)
    assert proc.returncode == 128 + signal.SIGTERM, out  # requeue me: schedulers see a preempted job
    assert "stopped (SIGTERM)" in out
    steps = checkpoint_steps(tmp_path)
    assert len(steps) == 1 and steps[0] >= 3


def test_nan_loss_stops_and_keeps_the_last_good_checkpoint(shards, tmp_path):
    train(cfg(shards, tmp_path, "checkpoint.every=2"), stop_at=4, show_progress=False)
    with pytest.raises(NonFiniteLoss, match="Latest checkpoint: .*checkpoints/4, saved before.*resumed from "
                                            ".*checkpoints/4 only 2 step"):
        train(cfg(shards, tmp_path, "checkpoint.every=2", "train.lr=1e30"),
              show_progress=False)
    assert checkpoint_steps(tmp_path) == [2, 4]
    params = final_params(tmp_path, 4)
    assert all(np.isfinite(np.asarray(x)).all() for x in jax.tree.leaves(params))


@pytest.fixture(scope="module")
def paused(shards, tmp_path_factory) -> Path:
    """A run paused at step 10 (checkpoints 5 and 10), copied by the damage tests."""
    run_dir = tmp_path_factory.mktemp("paused")
    train(cfg(shards, run_dir), stop_at=10, show_progress=False)
    return run_dir


def _largest(folder: Path) -> Path:
    return max((f for f in folder.rglob("*") if f.is_file()), key=lambda f: f.stat().st_size)


def _truncate(step_dir: Path) -> None:
    f = _largest(step_dir / "state")
    f.write_bytes(f.read_bytes()[: f.stat().st_size // 2])  # a partial copy / full disk


def _drop_manifest(step_dir: Path) -> None:
    (step_dir / "state" / "manifest.ocdbt").unlink()


def _flip(step_dir: Path) -> None:
    f = _largest(step_dir / "state")
    data = bytearray(f.read_bytes())
    mid = len(data) // 2
    data[mid:mid + 4096] = bytes(b ^ 0xFF for b in data[mid:mid + 4096])  # same size, other bytes
    f.write_bytes(bytes(data))


def _bad_data_state(step_dir: Path) -> None:
    # Checksums gone (a checkpoint from before them): the state restores, then the data position fails to.
    (step_dir / "checksums.json").unlink()
    for f in (step_dir / "data").glob("process_*.json"):
        f.write_text("{not json")


@pytest.fixture(scope="module")
def resumed_from_5(paused, shards, tmp_path_factory) -> Path:
    """The paused run resumed from checkpoint 5 to step 8 with nothing damaged (checkpoint 10 removed)."""
    reference = tmp_path_factory.mktemp("reference") / "run"
    shutil.copytree(paused, reference)
    shutil.rmtree(reference / "checkpoints" / "10")
    train(cfg(shards, reference), stop_at=8, show_progress=False)
    return reference


@pytest.mark.parametrize("damage, reason", [(_truncate, "truncated"), (_drop_manifest, "manifest.ocdbt is missing"),
                                            (_flip, "altered bytes"), (_bad_data_state, "JSONDecodeError")])
def test_a_damaged_latest_checkpoint_is_set_aside_and_the_one_before_resumes(paused, resumed_from_5, shards, tmp_path,
                                                                            caplog, damage, reason):
    run_dir = tmp_path / "run"
    shutil.copytree(paused, run_dir)
    damage(run_dir / "checkpoints" / "10")
    with caplog.at_level("WARNING", logger="flaxgpt"):
        summary = train(cfg(shards, run_dir), stop_at=8, show_progress=False)
    assert summary["start_step"] == 5
    assert "is damaged" in caplog.text and reason in caplog.text
    assert (run_dir / "checkpoints" / "10.corrupt").exists() and checkpoint_steps(run_dir) == [5, 8]
    # Nothing of the damaged checkpoint (its data position included) survives: steps 6-8 are checkpoint 5's.
    assert train_losses(run_dir) == train_losses(resumed_from_5)


def test_when_every_checkpoint_is_damaged_the_run_stops_and_keeps_its_history(paused, shards, tmp_path):
    run_dir = tmp_path / "run"
    shutil.copytree(paused, run_dir)
    _truncate(run_dir / "checkpoints" / "10")
    _flip(run_dir / "checkpoints" / "5")
    history = (run_dir / "metrics.jsonl").read_bytes()
    with pytest.raises(CheckpointsDamaged) as err:
        train(cfg(shards, run_dir), show_progress=False)
    assert "checkpoints/10: OSError: " in str(err.value) and "truncated" in str(err.value)
    assert "checkpoints/5: OSError: " in str(err.value) and "altered bytes" in str(err.value)
    assert checkpoint_steps(run_dir) == [5, 10] and not list((run_dir / "checkpoints").glob("*.corrupt"))
    assert (run_dir / "metrics.jsonl").read_bytes() == history
    # --restart (run.resume=false) starts over, the earlier run set aside, not deleted
    summary = train(cfg(shards, run_dir, "run.resume=false"), stop_at=2, show_progress=False)
    assert summary["start_step"] == 0 and checkpoint_steps(run_dir) == [2]
    (previous,) = (run_dir / "previous").iterdir()
    assert (previous / "metrics.jsonl").read_bytes() == history and (previous / "checkpoints" / "10").is_dir()


# orbax's async array reads that fail on the shape mismatch are garbage-collected unretrieved: noise, not a bug here.
@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")
def test_resuming_with_a_different_model_is_an_error_that_keeps_the_checkpoints(shards, tmp_path):
    train(cfg(shards, tmp_path), stop_at=5, show_progress=False)
    for change in ("model.d_model=64", "train.grad_clip=0"):
        with pytest.raises(CheckpointMismatch, match="run.resume=false"):
            train(cfg(shards, tmp_path, change), show_progress=False)
        gc.collect()  # collect orbax's failed reads inside this test, where their warning is filtered
    assert checkpoint_steps(tmp_path) == [5]
    assert train(cfg(shards, tmp_path), stop_at=6, show_progress=False)["start_step"] == 5


def test_shards_of_another_tokenizer_are_refused(shards, tmp_path):
    with pytest.raises(ValueError, match="data.sources.personal: shards .* tokenizer"):
        train(cfg(shards, tmp_path, "data.tokenizer=flaxgpt", "model.vocab_size=50265"), show_progress=False)
    with pytest.raises(ValueError, match="model.vocab_size=50257 is smaller than tokenizer 'flaxgpt'"):
        train(cfg(shards, tmp_path, "data.tokenizer=flaxgpt"), show_progress=False)


def test_missing_data_directory_names_the_source(tmp_path):
    with pytest.raises(FileNotFoundError, match="data.sources.personal.path"):
        train(cfg(tmp_path / "nowhere", tmp_path / "run"), show_progress=False)
