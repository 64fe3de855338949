"""The "speed" suite: decoding latency, throughput and memory of the run's local Generator.

Timing follows bench/decode_bench.py: greedy decoding with ``ignore_eos`` (exactly the tokens asked
for), random prompts of ``PROMPT_LEN`` tokens, one warm-up call per batch size first (so nothing
compiles while timing: ``recompiles`` counts executables compiled during the timed calls, 0 as the
static shapes promise), the streaming callback stamping when each step's tokens reach the caller,
medians over ``REPEATS`` calls.

  ttft_ms               call start to the first token at batch 1 (prefill plus one token)
  ms_per_100_tokens     a whole batch-1 call generating 100 new tokens. When the model's context
                        holds fewer (a tiny model), it is TTFT + 99 x the measured decode step time,
                        and the details say ``extrapolated``.
  tokens_per_s_batch8   8 x new tokens / the whole call at batch 8
  params_gb             bytes of the decoding param tree (its layout and dtype, int8 if quantized)
  cache_gb              bytes of the KV cache at ``max_len`` slots for the rows a batch-1 request
                        decodes with (``Generator.batch_bucket(1, decode=True)``)
  peak_memory_gb        params_gb + cache_gb (GB = 1e9 bytes)
  device_peak_gb        the device's own ``peak_bytes_in_use`` where its backend reports one (GPU,
                        TPU; not CPU): the process's peak so far, so it includes anything else this
                        process evaluated before.
"""

from __future__ import annotations

import statistics
import time

import jax
import numpy as np

from flaxgpt.eval.suite import EvalContext, EvalRun, SuiteResult, suite
from flaxgpt.infer.generator import TokenDelta
from flaxgpt.infer.sampling import SamplingParams
from flaxgpt.model.gpt import DTYPES

PROMPT_LEN = 32
NEW_TOKENS = 100
REPEATS = 3
GB = 1e9


def _timed(gen, prompts: list[list[int]], n: int) -> tuple[float, list[float], float]:
    """One greedy call: (start, the time each step's tokens arrived, end)."""
    stamps: list[float] = []

    def on_token(delta: TokenDelta) -> None:
        if delta.index == 0:  # one delta per row per step: row 0 marks the step
            stamps.append(time.perf_counter())

    t0 = time.perf_counter()
    gen.generate(prompts, SamplingParams(temperature=0.0, ignore_eos=True), max_new_tokens=n, callback=on_token)
    return t0, stamps, time.perf_counter()


def time_decoding(gen, batch: int, prompt_len: int, n: int, repeats: int = REPEATS, seed: int = 0) -> dict:
    """Medians of ``repeats`` timed calls after one warm-up: ttft_s, step_s, total_s, recompiles."""
    rng = np.random.default_rng(seed)
    prompts = rng.integers(0, gen.tokenizer.eot_id, (batch, prompt_len)).tolist()
    _timed(gen, prompts, n)  # warm-up: compiles this batch size's prefill, steps and cache growth
    before = gen.compiled_count()
    ttft, steps, totals = [], [], []
    for _ in range(repeats):
        t0, stamps, end = _timed(gen, prompts, n)
        if len(stamps) != n:
            raise RuntimeError(f"speed: {len(stamps)} tokens streamed for {n} asked (ignore_eos)")
        ttft.append(stamps[0] - t0)
        steps.append((stamps[-1] - stamps[0]) / max(n - 1, 1))
        totals.append(end - t0)
    return {"ttft_s": statistics.median(ttft), "step_s": statistics.median(steps),
            "total_s": statistics.median(totals), "recompiles": gen.compiled_count() - before}


def memory_bytes(gen) -> dict[str, int]:
    """{'params': bytes of the decoding params, 'cache': bytes of a batch-1 request's KV cache at max_len}."""
    params = sum(int(x.size) * x.dtype.itemsize for x in jax.tree.leaves(gen.params))
    cfg = gen.cfg
    rows = gen.batch_bucket(1, decode=True)
    itemsize = np.dtype(DTYPES[cfg.dtype]).itemsize
    cache = 2 * cfg.n_layer * rows * cfg.n_head * cfg.head_dim * gen.max_len * itemsize  # k and v per layer
    return {"params": params, "cache": cache, "cache_rows": rows}


def _device_peak() -> float | None:
    stats = jax.devices()[0].memory_stats() or {}
    peak = stats.get("peak_bytes_in_use")
    return None if peak is None else float(peak)


@suite("speed")
def speed(run: EvalRun, ctx: EvalContext) -> SuiteResult:
    """Latency, batch-8 throughput and memory of ``run`` (module docstring); missing without a local model."""
    gen = getattr(run.backend(), "generator", None)
    if gen is None:
        return SuiteResult.missing("speed", f"{run.name}: its backend is not a local model (no Generator to time)")
    prompt_len = max(1, min(PROMPT_LEN, gen.max_len // 4))
    n = min(NEW_TOKENS, gen.max_len - prompt_len)
    if n < 2:
        return SuiteResult.missing("speed", f"max_len={gen.max_len} leaves no room to time decoding")
    one = time_decoding(gen, 1, prompt_len, n, seed=ctx.seed)
    eight = time_decoding(gen, 8, prompt_len, n, repeats=max(1, REPEATS - 1), seed=ctx.seed)
    extrapolated = n < NEW_TOKENS
    total_100 = one["ttft_s"] + (NEW_TOKENS - 1) * one["step_s"] if extrapolated else one["total_s"]
    mem = memory_bytes(gen)
    metrics = {
        "ms_per_100_tokens": 1e3 * total_100,
        "ttft_ms": 1e3 * one["ttft_s"],
        "tokens_per_s_batch8": 8 * n / eight["total_s"],
        "peak_memory_gb": (mem["params"] + mem["cache"]) / GB,
        "params_gb": mem["params"] / GB,
        "cache_gb": mem["cache"] / GB,
        "decode_ms_per_step": 1e3 * one["step_s"],
        "recompiles": float(one["recompiles"] + eight["recompiles"]),
    }
    peak = _device_peak()
    if peak is not None:
        metrics["device_peak_gb"] = peak / GB
    details = [{"prompt_len": prompt_len, "new_tokens": n, "extrapolated": extrapolated, "max_len": gen.max_len,
                "cache_rows": mem["cache_rows"], "int8": bool(gen.int8), "params_bytes": mem["params"],
                "cache_bytes": mem["cache"], "device": f"{jax.devices()[0].platform}:{jax.devices()[0].device_kind}",
                "batch1_total_ms": 1e3 * one["total_s"], "batch8_total_ms": 1e3 * eight["total_s"]}]
    return SuiteResult("speed", metrics, details)
