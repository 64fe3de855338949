"""Memory bandwidth of this machine: the yardstick for how close batch-1 decoding comes to its bound.

    python -m bench.bandwidth [--mb 256 512] [--repeats 10] [--here]

prints JSON. Batch-1 decoding reads every weight once per token and does little arithmetic on it, so its best
possible rate is (read bandwidth) / (weight bytes per token). Measured on arrays far larger than the last-level
cache, best of `repeats` after a warm-up pass (so pages are faulted in and only DRAM traffic is timed):

  read   a.sum() over a float32 array: numpy on one thread, numpy on every core (one contiguous chunk per thread;
         numpy releases the GIL inside the reduction) and an XLA-compiled sum; and a matrix-vector product over the
         array viewed as a [rows, 1024] matrix (OpenBLAS sgemv, XLA dot), which is a decode step's access pattern.
         read_gbs is the best of them: the rate all cores together can stream weights in.
  copy   b = a (STREAM copy, numpy copyto, one slice per thread; 2 x N x 4 bytes counted, as STREAM does, ignoring
         write-allocate).
  triad  c = a + s * b (STREAM triad, numpy in L2-sized blocks, one slice per thread; 3 x N x 4 bytes counted). XLA's
         fused elementwise loop runs on one thread here (about 7 GB/s), so it is not used for this.

`measure_bandwidth` runs this in a fresh child process with the benchmark environment (bench.bench_env).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from bench import CpuMeter, bench_env
from bench.matmul_peak import best_time

_REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_MB = (256, 512)  # both far above this machine's 32 MB L3 (llc_bytes in the result says the machine's)


def _llc_bytes() -> int | None:
    """Size of the largest CPU cache Linux reports (bytes), or None."""
    best = None
    base = Path("/sys/devices/system/cpu/cpu0/cache")
    for index in sorted(base.glob("index*")):
        try:
            text = (index / "size").read_text().strip()
        except OSError:
            continue
        unit = {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30}.get(text[-1:], 1)
        value = int(text[:-1] if text[-1:] in "KMG" else text) * unit
        best = value if best is None else max(best, value)
    return best


def _spans(n: int, parts: int) -> list[slice]:
    """`parts` contiguous slices covering range(n)."""
    edges = [n * i // parts for i in range(parts + 1)]
    return [slice(lo, hi) for lo, hi in zip(edges[:-1], edges[1:], strict=True)]


def _triad(a: Any, b: Any, c: Any, span: slice, block: int = 1 << 16) -> None:
    """c = a + 3 * b over `span`, in blocks whose temporary stays in L2, so DRAM sees one pass over a, b and c."""
    import numpy as np

    tmp = np.empty(block, np.float32)
    for lo in range(span.start, span.stop, block):
        hi = min(lo + block, span.stop)
        t = tmp[: hi - lo]
        np.multiply(b[lo:hi], np.float32(3.0), out=t)
        np.add(t, a[lo:hi], out=c[lo:hi])


def _measure_size(mb: int, repeats: int, pool: ThreadPoolExecutor, n_threads: int, xla: dict[str, Any] | None
                  ) -> dict[str, float]:
    """GB/s of every method on float32 arrays of `mb` MiB."""
    import numpy as np

    n = mb * (1 << 20) // 4
    # Every page written (mapped before timing) with different contents, so no zero-page or same-page merging by the
    # OS or hypervisor can serve reads from one cached page.
    a = np.arange(n, dtype=np.float32)
    b = a + np.float32(1.0)
    c = a * np.float32(0.5)
    nbytes = a.nbytes
    spans = _spans(n, n_threads)
    chunks = [a[s] for s in spans]
    # A matrix-vector product over the array as a [rows, 1024] matrix: exactly a decode step's access pattern.
    w, x = a.reshape(-1, 1024), np.ones(1024, np.float32)
    r: dict[str, float] = {}
    r["read_numpy_1thread"] = nbytes / best_time(a.sum, repeats)
    r["read_numpy_threads"] = nbytes / best_time(lambda: sum(pool.map(np.sum, chunks)), repeats)
    r["read_numpy_gemv"] = nbytes / best_time(lambda: w @ x, repeats)
    r["copy_numpy_threads"] = 2 * nbytes / best_time(
        lambda: list(pool.map(lambda s: np.copyto(b[s], a[s]), spans)), repeats)
    r["triad_numpy_threads"] = 3 * nbytes / best_time(
        lambda: list(pool.map(lambda s: _triad(a, b, c, s), spans)), repeats)
    if xla is not None:
        ja = xla["put"](a)
        jw, jx = ja.reshape(-1, 1024), xla["put"](x)
        r["read_xla_sum"] = nbytes / best_time(lambda: xla["sum"](ja).block_until_ready(), repeats)
        r["read_xla_gemv"] = nbytes / best_time(lambda: xla["gemv"](jw, jx).block_until_ready(), repeats)
    return {k: round(v / 1e9, 2) for k, v in r.items()}


def measure_here(sizes_mb: Sequence[int] = DEFAULT_MB, repeats: int = 10,
                 threads: int | None = None) -> dict[str, Any]:
    """Measure read/copy/triad bandwidth in this process; returns GB/s (1e9 bytes/s) per method and size."""
    import numpy as np

    n_threads = threads or os.cpu_count() or 1
    out: dict[str, Any] = {"sizes_mb": list(sizes_mb), "repeats": repeats, "threads": n_threads,
                           "cpu_count": os.cpu_count(), "llc_bytes": _llc_bytes(), "numpy_version": np.__version__}
    xla: dict[str, Any] | None = None
    try:
        import jax
        import jax.numpy as jnp

        xla = {"put": jax.device_put, "sum": jax.jit(jnp.sum), "gemv": jax.jit(lambda w, x: w @ x)}
        out["jax_version"] = jax.__version__
    except ImportError:  # the numpy figures alone still give the bound
        pass
    meter = CpuMeter()
    with ThreadPoolExecutor(n_threads) as pool:
        per_size = {str(mb): _measure_size(mb, repeats, pool, n_threads, xla) for mb in sizes_mb}
    out["per_size_gbs"] = per_size
    # The bound uses the best read rate at the largest size: the one least helped by any cache.
    largest = per_size[str(max(sizes_mb))]
    reads = {k: v for k, v in largest.items() if k.startswith("read_")}
    out["read_method"] = max(reads, key=reads.__getitem__)
    out["read_gbs"] = reads[out["read_method"]]
    out["read_1thread_gbs"] = largest["read_numpy_1thread"]
    out["copy_gbs"] = max(r["copy_numpy_threads"] for r in per_size.values())
    out["triad_gbs"] = max(r["triad_numpy_threads"] for r in per_size.values())
    out.update(meter.read())
    return out


def measure_bandwidth(sizes_mb: Sequence[int] = DEFAULT_MB, repeats: int = 10, *, timeout: float = 300.0,
                      python: str | None = None) -> dict[str, Any]:
    """Run `measure_here` in a fresh child process (bench_env); returns its JSON dict, or one with an "error" field.

    Keys: read_gbs (best whole-machine read rate, GB/s = 1e9 B/s), read_method, read_1thread_gbs, copy_gbs,
    triad_gbs, per_size_gbs, llc_bytes, others_cpu_frac (share of the machine other processes used meanwhile).
    """
    cmd = [python or sys.executable, "-m", "bench.bandwidth", "--here", "--repeats", str(repeats),
           "--mb", *map(str, sizes_mb)]
    try:
        proc = subprocess.run(cmd, cwd=_REPO_ROOT, env=bench_env(), capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return {"error": f"timed out after {timeout:.0f} s"}
    for line in reversed(proc.stdout.splitlines()):
        if line.startswith("{"):
            return json.loads(line)
    return {"error": f"exit code {proc.returncode}: {(proc.stderr or proc.stdout).strip()[-2000:]}"}


def main(argv: list[str] | None = None) -> int:
    """CLI: print the measurement as one JSON line."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mb", type=int, nargs="+", default=list(DEFAULT_MB), help="array sizes in MiB")
    parser.add_argument("--repeats", type=int, default=10, help="timed passes per method and size (best is kept)")
    parser.add_argument("--threads", type=int, help="threads for the threaded numpy read (default: all cores)")
    parser.add_argument("--here", action="store_true", help="measure in this process, environment as it is")
    args = parser.parse_args(argv)
    if any(mb <= 0 for mb in args.mb):
        parser.error(f"--mb sizes must be positive, got {args.mb}")
    if args.here:
        result = measure_here(args.mb, args.repeats, args.threads)
    else:
        result = measure_bandwidth(args.mb, args.repeats)
    print(json.dumps(result), flush=True)
    return 1 if "error" in result else 0


if __name__ == "__main__":
    sys.exit(main())
