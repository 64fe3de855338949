"""Achievable float32 matmul throughput of this CPU (numpy/OpenBLAS and XLA), the yardstick for model FLOP utilisation.

    python -m bench.matmul_peak [--n 2048 4096] [--repeats 5] [--torch]

prints JSON. Some machines set OPENBLAS_CORETYPE (e.g. Haswell: AVX2 kernels on an AVX-512 CPU) and OPENBLAS_L2_SIZE
in the environment, which slows numpy's bundled OpenBLAS. OpenBLAS reads them once, when it loads, so
`measure_matmul_peak` measures in a child process whose environment lacks both; the parent's environment, and so
everything else (tests, training), is left as it is. The result names the OpenBLAS kernel that ran (openblas_corename)
and what was unset.
"""

from __future__ import annotations

import argparse
import ctypes
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench import CpuMeter
from bench.torch_peer import build_mkl_amd_shim

UNSET_ENV = ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")
_REPO_ROOT = Path(__file__).resolve().parent.parent


def _openblas_corename() -> str | None:
    """The kernel family OpenBLAS picked (e.g. 'SkylakeX', 'Haswell'), via threadpoolctl or the loaded library."""
    try:
        from threadpoolctl import threadpool_info

        for info in threadpool_info():
            if info.get("internal_api") == "openblas":
                return info.get("architecture")
    except ImportError:
        pass
    try:  # numpy's wheels bundle scipy-openblas; find it among the loaded libraries
        with open("/proc/self/maps") as f:
            paths = {line.split()[-1] for line in f if "openblas" in line.lower() and line.rstrip().endswith(".so")}
    except OSError:
        return None
    for path in sorted(paths):
        lib = ctypes.CDLL(path)
        for symbol in ("scipy_openblas_get_corename64_", "scipy_openblas_get_corename", "openblas_get_corename"):
            fn = getattr(lib, symbol, None)
            if fn is not None:
                fn.restype = ctypes.c_char_p
                return fn().decode()
    return None


def best_time(fn: Any, repeats: int) -> float:
    """Best wall time of `repeats` calls (after one untimed warm-up call)."""
    fn()
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


def measure_here(n: int = 2048, repeats: int = 5, include_torch: bool = False) -> dict[str, Any]:
    """Measure in this process, with whatever OpenBLAS settings it was started with."""
    import numpy as np

    rng = np.random.default_rng(0)
    a = rng.standard_normal((n, n), dtype=np.float32)
    b = rng.standard_normal((n, n), dtype=np.float32)
    flop = 2.0 * n**3
    meter = CpuMeter()
    out: dict[str, Any] = {"n": n, "repeats": repeats, "numpy_version": np.__version__}
    out["numpy_gflops"] = flop / best_time(lambda: a @ b, repeats) / 1e9
    out["openblas_corename"] = _openblas_corename()

    import jax
    import jax.numpy as jnp

    ja, jb = jnp.asarray(a), jnp.asarray(b)
    matmul = jax.jit(lambda x, y: x @ y)
    out["xla_gflops"] = flop / best_time(lambda: matmul(ja, jb).block_until_ready(), repeats) / 1e9
    out["jax_version"] = jax.__version__
    out["best_gflops"] = max(out["numpy_gflops"], out["xla_gflops"])

    if include_torch:  # informational only (the PyTorch peer's oneDNN/MKL path); not part of best_gflops
        try:
            import torch

            torch.set_num_threads(os.cpu_count() or 1)
            ta, tb = torch.from_numpy(a), torch.from_numpy(b)
            out["torch_gflops"] = flop / best_time(lambda: ta @ tb, repeats) / 1e9
        except ImportError:
            out["torch_gflops"] = None
    out["cpu_count"] = os.cpu_count()
    out.update(meter.read())
    return out


def measure_matmul_peak(
    n: int = 2048, repeats: int = 5, *, include_torch: bool = False, timeout: float = 300.0
) -> dict[str, Any]:
    """Best float32 n x n matmul GFLOP/s of numpy and of jax.jit(a @ b), measured in a child process.

    Keys: numpy_gflops, xla_gflops, best_gflops (the larger of the two), openblas_corename, unset_env, n, repeats,
    others_cpu_frac (share of the machine other processes used meanwhile). On failure: an "error" field.
    """
    env = {k: v for k, v in os.environ.items() if k not in UNSET_ENV}
    cmd = [sys.executable, "-m", "bench.matmul_peak", "--here", "--n", str(n), "--repeats", str(repeats)]
    with tempfile.TemporaryDirectory(prefix="matmul_peak_") as work_dir:
        shim_note = None
        if include_torch:  # torch as the PyTorch peer runs it, MKL shim included (it touches nothing but torch's MKL)
            cmd.append("--torch")
            shim, shim_note = build_mkl_amd_shim(work_dir)
            if shim:
                env["LD_PRELOAD"] = ":".join(filter(None, [shim, env.get("LD_PRELOAD")]))
        try:
            proc = subprocess.run(cmd, cwd=_REPO_ROOT, env=env, capture_output=True, text=True, timeout=timeout)
        except subprocess.TimeoutExpired:
            return {"n": n, "error": f"timed out after {timeout:.0f} s"}
    for line in reversed(proc.stdout.splitlines()):
        if line.startswith("{"):
            result = json.loads(line)
            result["unset_env"] = {k: os.environ[k] for k in UNSET_ENV if k in os.environ}
            if include_torch:
                result["mkl_amd_shim"] = shim_note
            return result
    return {"n": n, "error": f"exit code {proc.returncode}: {(proc.stderr or proc.stdout).strip()[-2000:]}"}


def main(argv: list[str] | None = None) -> int:
    """CLI: print the peak as JSON (several --n: one result each plus the overall best)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, nargs="+", default=[2048], help="matrix sizes (default 2048)")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--torch", action="store_true", help="also time torch's matmul (informational)")
    parser.add_argument("--here", action="store_true", help="measure in this process, environment as it is")
    args = parser.parse_args(argv)
    if args.here:
        results = [measure_here(n, args.repeats, args.torch) for n in args.n]
    else:
        results = [measure_matmul_peak(n, args.repeats, include_torch=args.torch) for n in args.n]
    if len(results) == 1:
        print(json.dumps(results[0]), flush=True)
    else:
        best = max((r for r in results if "best_gflops" in r), key=lambda r: r["best_gflops"], default=None)
        summary = {"best_gflops": best["best_gflops"], "best_n": best["n"]} if best else {}
        print(json.dumps({"results": results, **summary}), flush=True)
    return 0 if all("error" not in r for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
