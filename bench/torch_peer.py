"""PyTorch peer for the training benchmark: HuggingFace transformers' GPT2LMHeadModel trained with AdamW on the CPU.

Run one configuration and print JSON::

    python -m bench.torch_peer --preset small|124m [--compile] [--steps N] [--warmup N] [--threads N]
    python -m bench.torch_peer --json '{"n_layer": 6, "n_head": 6, "d_model": 384, "seq_len": 256, "batch_size": 8}'

Both go through `run_in_subprocess`: one fresh child process per configuration, with a fresh, empty torch.compile
cache, so thread settings and compile caches of one run never leak into another, and with the child's environment
tuned as a careful PyTorch CPU user would (bench.MALLOC_TUNABLES; on AMD CPUs the MKL shim, see build_mkl_amd_shim).
`--here` runs in the current process with the environment as it is.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import traceback
from pathlib import Path
from typing import Any

from bench import CpuMeter, bench_env

# The two configurations of `make bench`; the flaxgpt side uses the same numbers.
PRESETS: dict[str, dict[str, int]] = {
    "small": {"n_layer": 6, "n_head": 6, "d_model": 384, "seq_len": 256, "batch_size": 8},
    "124m": {"n_layer": 12, "n_head": 12, "d_model": 768, "seq_len": 256, "batch_size": 4},
}

_REPO_ROOT = Path(__file__).resolve().parent.parent


# PyTorch's x86 wheels link Intel MKL for fp32 GEMM. On AMD CPUs MKL picks its slower AVX2 kernels unless it believes
# the CPU is Intel; overriding this one exported MKL function (a widely used workaround) lets it run its AVX-512
# kernels. Measured here on a 2-core AMD EPYC (Zen 5): 2048x2048 fp32 matmul 219 -> 503 GFLOP/s; training step,
# eager, small preset 2.09 -> 1.09 s, 124m 4.41 -> 2.02 s, with the same losses to 1e-6. Nothing else is touched.
_MKL_SHIM_SRC = "int mkl_serv_intel_cpu_true(void) { return 1; }\n"


def build_mkl_amd_shim(directory: str) -> tuple[str | None, str]:
    """Compile the MKL-on-AMD shim into `directory`; returns (path to LD_PRELOAD or None, why not)."""
    if platform.system() != "Linux" or platform.machine() not in ("x86_64", "AMD64"):
        return None, "not x86_64 Linux"
    try:
        with open("/proc/cpuinfo") as f:
            if "AuthenticAMD" not in f.read(4096):
                return None, "not an AMD CPU"
    except OSError:
        return None, "no /proc/cpuinfo"
    cc = shutil.which("cc") or shutil.which("gcc")
    if cc is None:
        return None, "no C compiler"
    src, lib = Path(directory, "mkl_amd_shim.c"), Path(directory, "libmkl_amd_shim.so")
    src.write_text(_MKL_SHIM_SRC)
    proc = subprocess.run([cc, "-shared", "-fPIC", "-O2", "-o", str(lib), str(src)], capture_output=True, text=True)
    if proc.returncode != 0:
        return None, f"compile failed: {proc.stderr.strip()[-300:]}"
    return str(lib), "ok"


def _make_optimizer(params: list[Any], impl: str) -> Any:
    """AdamW(lr=3e-4, wd=0.1); impl is 'fused' (fastest on this CPU), 'foreach' or 'single'."""
    import torch

    kwargs: dict[str, Any] = {"lr": 3e-4, "weight_decay": 0.1}
    if impl == "fused":
        kwargs["fused"] = True
    elif impl == "foreach":
        kwargs["foreach"] = True
    elif impl == "single":
        kwargs["foreach"] = False
    else:
        raise ValueError(f"unknown optimizer impl {impl!r}")
    return torch.optim.AdamW(params, **kwargs)


def time_torch_train(
    *,
    n_layer: int,
    n_head: int,
    d_model: int,
    seq_len: int,
    batch_size: int,
    vocab_size: int = 50257,
    steps: int = 10,
    warmup: int = 2,
    compile: bool = False,
    threads: int | None = None,
    seed: int = 0,
    attn_implementation: str = "sdpa",
    optimizer_impl: str = "fused",
) -> dict[str, Any]:
    """Time `warmup + steps` full training steps of a randomly initialised GPT-2 on random tokens (fp32, CPU).

    Returns tokens_per_s and step_time_s (from the median of the `steps` timed steps), first_step_s (the very first
    step, which includes compilation under torch.compile), n_params, versions and settings. If the run fails (e.g.
    torch.compile has no working C++ toolchain) the dict carries an "error" field instead of raising.
    """
    import torch
    import transformers
    from transformers import AutoModelForCausalLM, GPT2Config, GPT2LMHeadModel

    n_threads = threads or os.cpu_count() or 1
    torch.set_num_threads(n_threads)
    torch.manual_seed(seed)
    result: dict[str, Any] = {
        "framework": "torch",
        "torch_version": torch.__version__,
        "transformers_version": transformers.__version__,
        "n_layer": n_layer,
        "n_head": n_head,
        "d_model": d_model,
        "seq_len": seq_len,
        "batch_size": batch_size,
        "vocab_size": vocab_size,
        "compile": compile,
        "threads": n_threads,
        "attn_implementation": attn_implementation,
        "optimizer_impl": optimizer_impl,
        "steps": steps,
        "warmup": warmup,
    }

    # All dropouts are 0.0 so that both sides do exactly the same work per step (flaxgpt's benchmark runs without
    # dropout too). transformers 5 has no separate n_ctx any more: n_positions is the context length. Weights are tied
    # (wte == lm_head), as in GPT-2 and flaxgpt. use_cache=False: no KV cache is built during training.
    config = GPT2Config(
        vocab_size=vocab_size,
        n_positions=seq_len,
        n_embd=d_model,
        n_layer=n_layer,
        n_head=n_head,
        resid_pdrop=0.0,
        embd_pdrop=0.0,
        attn_pdrop=0.0,
        use_cache=False,
    )
    # sdpa (the default here) and eager attention measured the same within noise on this 2-core CPU at context 256.
    model = AutoModelForCausalLM.from_config(config, attn_implementation=attn_implementation, dtype=torch.float32)
    assert isinstance(model, GPT2LMHeadModel)
    model.train()
    result["n_params"] = sum(p.numel() for p in model.parameters())  # tied weights counted once
    optimizer = _make_optimizer(list(model.parameters()), optimizer_impl)

    gen = torch.Generator().manual_seed(seed + 1)
    batches = [torch.randint(0, vocab_size, (batch_size, seq_len), generator=gen) for _ in range(min(steps, 4) + 1)]

    def train_step(input_ids: torch.Tensor) -> torch.Tensor:
        loss = step_model(input_ids, labels=input_ids).loss  # the model shifts labels by one itself
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        return loss

    step_model = torch.compile(model) if compile else model
    times: list[float] = []
    losses: list[float] = []
    meter = CpuMeter()
    try:
        for i in range(warmup + steps):
            if i == warmup:
                meter = CpuMeter()  # contention is measured over the timed steps only
            t0 = time.perf_counter()
            loss = train_step(batches[i % len(batches)])
            loss_value = float(loss.detach())  # CPU ops are synchronous; this only reads the scalar
            times.append(time.perf_counter() - t0)
            losses.append(loss_value)
    except Exception as exc:  # report, don't crash the whole benchmark
        result["error"] = f"{type(exc).__name__}: {str(exc).strip().splitlines()[0] if str(exc).strip() else ''}"
        result["traceback"] = traceback.format_exc(limit=8)[-4000:]
        result["completed_steps"] = len(times)
        return result

    timed = times[warmup:] if steps > 0 else times
    step_time = statistics.median(timed)
    result.update(
        # batch_size * seq_len input positions per step, as on the flaxgpt side (which feeds seq_len inputs per row).
        tokens_per_s=batch_size * seq_len / step_time,
        step_time_s=step_time,
        first_step_s=times[0],
        step_times_s=[round(t, 4) for t in times],
        first_loss=losses[0],
        last_loss=losses[-1],
        **meter.read(),
    )
    return result


def run_in_subprocess(
    *,
    timeout: float = 600.0,
    fresh_compile_cache: bool = True,
    malloc_tuning: bool = True,
    mkl_amd_shim: bool = True,
    python: str | None = None,
    **kwargs: Any,
) -> dict[str, Any]:
    """Run `time_torch_train(**kwargs)` in a fresh `python -m bench.torch_peer --json ...` process; parse its result.

    With fresh_compile_cache the child gets an empty TORCHINDUCTOR_CACHE_DIR, so first_step_s under torch.compile is a
    cold compile. malloc_tuning sets bench.MALLOC_TUNABLES in the child (see there); mkl_amd_shim preloads the shim of
    build_mkl_amd_shim on AMD CPUs (elsewhere it does nothing). Failures (non-zero exit, timeout, no result line) come
    back as a dict with an "error" field.
    """
    env = bench_env(malloc_tuning)
    work_dir = tempfile.mkdtemp(prefix="torch_peer_")
    if fresh_compile_cache:
        env["TORCHINDUCTOR_CACHE_DIR"] = os.path.join(work_dir, "inductor_cache")
    shim_note = "off"
    if mkl_amd_shim:
        shim, shim_note = build_mkl_amd_shim(work_dir)
        if shim:
            env["LD_PRELOAD"] = ":".join(filter(None, [shim, env.get("LD_PRELOAD")]))
    cmd = [python or sys.executable, "-m", "bench.torch_peer", "--here", "--json", json.dumps(kwargs)]
    try:
        proc = subprocess.run(cmd, cwd=_REPO_ROOT, env=env, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return {**kwargs, "framework": "torch", "error": f"timed out after {timeout:.0f} s"}
    finally:
        shutil.rmtree(work_dir, ignore_errors=True)
    for line in reversed(proc.stdout.splitlines()):  # the result is the last JSON line; libraries may print more
        if line.startswith("{"):
            return {**json.loads(line), "glibc_tunables": env.get("GLIBC_TUNABLES"), "mkl_amd_shim": shim_note}
    tail = (proc.stderr or proc.stdout).strip()[-2000:]
    return {**kwargs, "framework": "torch", "error": f"exit code {proc.returncode}: {tail}"}


def main(argv: list[str] | None = None) -> int:
    """CLI: run one configuration (in a child process, or --here) and print its result as JSON."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", choices=sorted(PRESETS), help="one of the benchmark's model configurations")
    parser.add_argument("--json", dest="json_kwargs", help="keyword arguments of time_torch_train as a JSON object")
    parser.add_argument("--compile", action="store_true", help="wrap the model in torch.compile")
    parser.add_argument("--steps", type=int, help="timed steps (default 10)")
    parser.add_argument("--warmup", type=int, help="untimed steps first (default 2)")
    parser.add_argument("--threads", type=int, help="torch threads (default: all cores)")
    parser.add_argument("--attn", dest="attn_implementation", choices=["sdpa", "eager"], help="attention kernel")
    parser.add_argument("--optimizer", dest="optimizer_impl", choices=["fused", "foreach", "single"])
    parser.add_argument("--no-malloc-tuning", action="store_true", help="child without bench.MALLOC_TUNABLES")
    parser.add_argument("--no-mkl-shim", action="store_true", help="child without the MKL-on-AMD shim")
    parser.add_argument("--here", action="store_true", help="run in this process, environment as it is")
    args = parser.parse_args(argv)
    if args.preset is None and args.json_kwargs is None:
        parser.error("give --preset or --json")
    kwargs: dict[str, Any] = dict(PRESETS[args.preset]) if args.preset else {}
    if args.json_kwargs:
        kwargs.update(json.loads(args.json_kwargs))
    if args.compile:
        kwargs["compile"] = True
    for name in ("steps", "warmup", "threads", "attn_implementation", "optimizer_impl"):
        if getattr(args, name) is not None:
            kwargs[name] = getattr(args, name)
    if args.here:
        result = time_torch_train(**kwargs)
    else:
        tuning = {"malloc_tuning": not args.no_malloc_tuning, "mkl_amd_shim": not args.no_mkl_shim}
        result = run_in_subprocess(**tuning, **kwargs)
    print(json.dumps(result), flush=True)  # one line: run_in_subprocess reads the last JSON line of stdout
    return 1 if "error" in result else 0


if __name__ == "__main__":
    sys.exit(main())
