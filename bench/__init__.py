"""Benchmarks: flaxgpt training throughput and decoding speed against a PyTorch/transformers GPT-2 peer, the CPU
matmul peak and the machine's memory bandwidth (the yardsticks for MFU and for the decoding bound)."""

from __future__ import annotations

import os
import time

# glibc malloc settings for the benchmark's child processes: never hand big blocks back to the kernel (no mmap, no
# trim), so the many large, short-lived activation and gradient buffers of each step are reused instead of being
# mapped and page-faulted in afresh every step. Measured here (stock MKL): PyTorch small preset, eager 2.45-2.6 s ->
# 2.15-2.2 s per step (sys time down several-fold), torch.compile 2.42 -> 2.10 s; 124m eager 4.61 -> 4.41 s.
# Needs nothing installed (the PyTorch CPU tuning guide's jemalloc/tcmalloc advice, done with glibc alone).
# Give the flaxgpt side the same environment for a like-for-like comparison.
MALLOC_TUNABLES = "glibc.malloc.mmap_max=0:glibc.malloc.trim_threshold=17179869184"


def bench_env(malloc_tuning: bool = True, base: dict[str, str] | None = None) -> dict[str, str]:
    """A copy of the environment (os.environ by default) for a benchmark child process, with MALLOC_TUNABLES added."""
    env = dict(os.environ if base is None else base)
    if malloc_tuning:
        env["GLIBC_TUNABLES"] = ":".join(filter(None, [env.get("GLIBC_TUNABLES"), MALLOC_TUNABLES]))
    return env


def _proc_stat_s() -> tuple[float, float] | None:
    """(busy, steal) CPU seconds of the whole machine from /proc/stat, or None where there is none."""
    try:
        with open("/proc/stat") as f:
            vals = [int(v) for v in f.readline().split()[1:]]
    except (OSError, ValueError):
        return None
    tick = os.sysconf("SC_CLK_TCK")
    busy = vals[0] + vals[1] + vals[2] + vals[5] + vals[6]  # user nice system irq softirq
    steal = vals[7] if len(vals) > 7 else 0
    return busy / tick, steal / tick


class CpuMeter:
    """Tells how much of the machine other processes (and the hypervisor, as steal) used while we were timing.

    A benchmark on a shared 2-core machine is only meaningful when others_cpu_frac is near 0: report it beside the
    timings so a contaminated run can be spotted (and rerun).
    """

    def __init__(self) -> None:
        self._t0 = time.perf_counter()
        self._own0 = time.process_time()
        self._stat0 = _proc_stat_s()

    def read(self) -> dict[str, float]:
        """others_cpu_frac and steal_frac: fractions of all cores' time since construction."""
        wall = time.perf_counter() - self._t0
        own = time.process_time() - self._own0
        stat1 = _proc_stat_s()
        if self._stat0 is None or stat1 is None or wall <= 0:
            return {}
        capacity = wall * (os.cpu_count() or 1)
        others = max(0.0, (stat1[0] - self._stat0[0]) - own)
        return {
            "others_cpu_frac": round(others / capacity, 3),
            "steal_frac": round((stat1[1] - self._stat0[1]) / capacity, 3),
        }
