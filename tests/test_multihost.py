"""Many processes: `flaxgpt train` jobs of 2 processes x 2 CPU devices on 127.0.0.1, joined from JAX's documented
variables and from SLURM's, compute what 1 process x 4 devices computes; kill -9 of both then resume is bitwise
the uninterrupted run; checkpoints move between process counts; a second trainer is refused a run directory."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import chex
import jax
import numpy as np
import orbax.checkpoint as ocp
import pytest
from etils import epath

from flaxgpt.data.tokenize import tokenize_paths
from flaxgpt.runs.rundir import checkpoint_steps
from flaxgpt.train.lock import RunLock
from flaxgpt.train.logger import read_metrics

ROOT = Path(__file__).resolve().parents[1]
STEPS = 8
JOIN_VARIABLES = ("JAX_COORDINATOR_ADDRESS", "JAX_NUM_PROCESSES", "JAX_PROCESS_ID", "SLURM_NTASKS", "SLURM_PROCID",
                  "SLURM_JOB_NODELIST", "SLURM_STEP_NODELIST", "SLURM_STEP_NUM_TASKS", "WORLD_SIZE", "RANK",
                  "JOB_COMPLETION_INDEX", "OMPI_COMM_WORLD_SIZE", "TPU_WORKER_HOSTNAMES")


@pytest.fixture(scope="module")
def shards(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("data") / "blog"
    tokenize_paths([ROOT / "examples/persona/blog"], out, name="blog", progress=False)
    return out


def _free_port(low: int = 0, high: int = 0) -> int:
    """A port nothing listens on: any (the OS picks), or the first free one in [low, high)."""
    for port in range(low, high) if high else [0]:
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
            return s.getsockname()[1]
    raise RuntimeError(f"no free port in [{low}, {high})")


def _launch(shards: Path, run_dir: Path, *, processes: int, devices: int, style: str = "jax",
            extra: tuple[str, ...] = ()) -> list[subprocess.Popen]:
    """Starts one `flaxgpt train` per process, told how to join the way ``style`` says (jax | slurm)."""
    # SLURM jobs coordinate on port 61000 + job id mod 4096 (flaxgpt.train.distributed): pick a free one.
    port = _free_port(61000 + os.getpid() % 2048, 65096) if style == "slurm" else _free_port()
    base = {k: v for k, v in os.environ.items() if k not in JOIN_VARIABLES}
    base.update(XLA_FLAGS=f"--xla_force_host_platform_device_count={devices}", JAX_PLATFORMS="cpu",
                JAX_DISABLE_MOST_OPTIMIZATIONS="true")
    cmd = [sys.executable, "-m", "flaxgpt.cli", "train", str(ROOT / "experiments/micro.py"),
           f"data.sources.personal.path={shards}", f"run.dir={run_dir}", "data.tokenizer=gpt2",
           "model.vocab_size=50257", "model.n_layer=2", "model.n_head=2", "model.d_model=32", "model.max_len=32",
           "data.seq_len=32", "train.batch_size=8", f"train.steps={STEPS}", "train.warmup_steps=2",
           "train.log_every=1", "train.eval_every=0", "checkpoint.every=4", *extra]
    procs = []
    for i in range(processes):
        env = dict(base)
        if processes > 1 and style == "jax":
            env.update(JAX_COORDINATOR_ADDRESS=f"127.0.0.1:{port}", JAX_NUM_PROCESSES=str(processes),
                       JAX_PROCESS_ID=str(i))
        elif processes > 1:
            env.update(SLURM_NTASKS=str(processes), SLURM_PROCID=str(i), SLURM_JOB_NODELIST="localhost",
                       SLURM_JOB_ID=str(port - 61000))
        procs.append(subprocess.Popen(cmd, env=env, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                      text=True))
    return procs


def _finish(procs: list[subprocess.Popen], status: int = 0) -> list[str]:
    outs = [p.communicate(timeout=300)[0] for p in procs]
    for p, out in zip(procs, outs, strict=True):
        assert p.returncode == status, out[-3000:]
    return outs


def _losses(run_dir: Path) -> list[float]:
    records = {r["step"]: r["loss"] for r in read_metrics(run_dir) if r["kind"] == "train"}
    assert sorted(records) == list(range(1, STEPS + 1))
    return [records[s] for s in range(1, STEPS + 1)]


def _params(run_dir: Path, step: int = STEPS):
    """The parameters of checkpoint ``step`` as numpy arrays (whatever devices wrote them)."""
    path = epath.Path((run_dir / "checkpoints" / str(step) / "state").absolute())
    meta = ocp.StandardCheckpointHandler().metadata(path).tree
    args = jax.tree.map(lambda _: ocp.RestoreArgs(restore_type=np.ndarray), meta)
    return ocp.PyTreeCheckpointer().restore(path, restore_args=args)["params"]


def _copy_until(src: Path, dst: Path, step: int) -> Path:
    """A copy of run ``src`` as it was at checkpoint ``step`` (later checkpoints dropped)."""
    shutil.copytree(src, dst)
    for later in [s for s in checkpoint_steps(dst) if s > step]:
        shutil.rmtree(dst / "checkpoints" / str(later))
    return dst


@pytest.fixture(scope="module")
def runs(shards, tmp_path_factory) -> dict[str, Path]:
    """The same run on 1 process x 4 devices and on 2 processes x 2 devices (JAX's variables), side by side."""
    base = tmp_path_factory.mktemp("multihost")
    one, two = base / "one_x4", base / "two_x2"
    jobs = [_launch(shards, one, processes=1, devices=4), _launch(shards, two, processes=2, devices=2)]
    for procs in jobs:
        _finish(procs)
    return {"one": one, "two": two, "base": base}


def test_two_processes_compute_what_one_process_computes(runs):
    np.testing.assert_allclose(_losses(runs["two"]), _losses(runs["one"]), rtol=0, atol=1e-5)
    chex.assert_trees_all_close(_params(runs["two"]), _params(runs["one"]), rtol=0, atol=1e-5)
    assert checkpoint_steps(runs["two"]) == [4, 8]
    meta = (runs["two"] / "checkpoints" / "8" / "data").glob("process_*-of-2.json")
    assert len(list(meta)) == 2  # each process saved its (identical) iterator position


def test_slurm_job_killed_with_sigkill_resumes_bitwise(shards, runs):
    run_dir = runs["base"] / "slurm"
    procs = _launch(shards, run_dir, processes=2, devices=2, style="slurm", extra=("checkpoint.every=1",))
    deadline = time.time() + 240
    while not [s for s in checkpoint_steps(run_dir) if s >= 3]:
        assert all(p.poll() is None for p in procs), procs[0].communicate()[0][-3000:]
        assert time.time() < deadline
        time.sleep(0.05)
    for p in procs:
        p.send_signal(signal.SIGKILL)
    for p in procs:
        p.wait(timeout=30)
    done = checkpoint_steps(run_dir)
    assert max(done) < STEPS, "the job finished before the kill"
    _finish(_launch(shards, run_dir, processes=2, devices=2, style="slurm", extra=("checkpoint.every=1",)))
    assert _losses(run_dir) == _losses(runs["two"])
    chex.assert_trees_all_equal(_params(run_dir), _params(runs["two"]))


def test_checkpoints_move_between_process_counts(shards, runs, tmp_path):
    """Written by 2 processes, resumed by 1 process on 1 device; written by 1, resumed by 2."""
    jobs = {
        "2->1x1": (_copy_until(runs["two"], tmp_path / "b", 4), runs["two"], dict(processes=1, devices=1)),
        "1->2x2": (_copy_until(runs["one"], tmp_path / "c", 4), runs["one"], dict(processes=2, devices=2)),
    }
    launched = {name: _launch(shards, run_dir, **kw) for name, (run_dir, _, kw) in jobs.items()}
    for name, procs in launched.items():
        outs = _finish(procs)
        assert "resumed from" in outs[0] and "at step 4" in outs[0], name
    for name, (run_dir, reference, _) in jobs.items():
        np.testing.assert_allclose(_losses(run_dir), _losses(reference), rtol=0, atol=1e-5, err_msg=name)
        chex.assert_trees_all_close(_params(run_dir), _params(reference), rtol=0, atol=1e-5)


def test_a_second_trainer_is_refused_the_run_directory(shards, runs):
    held = RunLock(runs["one"])
    held.acquire()
    try:
        outs = _finish(_launch(shards, runs["one"], processes=1, devices=1), status=5)
    finally:
        held.release()
    assert f"run directory {runs['one']} is in use by pid {os.getpid()}" in outs[0]
    assert checkpoint_steps(runs["one"]) == [4, 8]  # untouched
