"""`make bench` decoding: flaxgpt's KV-cache decode against HuggingFace transformers' `generate` in PyTorch.

    python -m bench.decode_bench [--batch 1 8] [--new-tokens 100] [--prompt-len 32] [--repeats 5] [--out runs/bench]

One random-weight GPT-2 124M (GPT2LMHeadModel(GPT2Config()), made here, nothing downloaded) is saved once with
save_pretrained(safe_serialization=True); every side loads that same directory, so all of them run the same weights:
  torch eager        transformers' greedy `generate` (KV cache), the training bench's tuned environment (glibc malloc,
                     MKL's AVX-512 kernels on AMD CPUs, all cores);
  torch compile      the same with transformers' compiled decoding (static KV cache, torch.compile; cold compile);
  torch eager, stock transformers' eager `generate` in the environment as it is (stock MKL, stock malloc);
  flaxgpt f32 / int8 the directory imported into a flaxgpt run (flaxgpt.runs.hf's import_hf), loaded with
                     infer.generator.load_generator(run_dir, int8=...), greedy decoding with its KV cache capped
                     at prompt + new tokens slots (where transformers' cache ends too; --max-len changes it).
Each side runs in a fresh child process. For each batch size (the first B rows of one set of random 32-token prompts)
it times `repeats` greedy calls generating `new_tokens` tokens after one warm-up call, with each side's streaming hook
(transformers' streamer, flaxgpt's per-token callback) stamping the moment each step's tokens reach the caller
(medians over the calls):
  TTFT             time to first token: call start to the first token (prefill plus one token);
  tokens/s         batch * new_tokens / the whole call (what a caller sees, prefill included);
  decode tok/s     batch / decode step time, the step time being (last token - first token) / (new_tokens - 1).
The memory-bandwidth bound of batch-1 decoding is read_bandwidth / weight bytes read per token (every matmul weight
and the tied LM head once per token; see weight_bytes_per_token), with the read bandwidth measured on this machine in
this run (bench.bandwidth), the better of one measurement before and one after the timings. Greedy tokens of every
side are compared with PyTorch's as a check that the weights and the decoding agree. Results: a printed table,
runs/bench/decode.json and runs/bench/decode.png.

On a shared machine PyTorch suffers far more than XLA from other processes taking a core (its OpenMP threads wait for
each other at every op; measured here: 15 ms per batch-1 step quiet, 50-400 ms with one core busy), so compare only
runs whose others_cpu_frac is near 0; the report warns otherwise.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import traceback
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from bench import CpuMeter, bench_env
from bench.bandwidth import measure_bandwidth
from bench.torch_peer import build_mkl_amd_shim

ROOT = Path(__file__).resolve().parent.parent
VOCAB_SIZE = 50257  # GPT2Config() defaults: GPT-2 124M (12 layers, 12 heads, d_model 768, context 1024)
# Targets of issue 4 on the 2-core CPU.
TARGET_F32_VS_TORCH = 2.5
TARGET_BOUND_FRACTION = 0.7
TARGET_INT8_VS_F32 = 1.5
BUSY_WARNING = 0.1  # share of the machine other processes may take while timing before the report warns


def make_prompts(batch: int, prompt_len: int, seed: int = 1234) -> list[list[int]]:
    """`batch` random prompts of `prompt_len` GPT-2 token ids; smaller batches are the first rows of larger ones."""
    rng = np.random.default_rng(seed)
    return rng.integers(0, VOCAB_SIZE, (batch, prompt_len)).tolist()


# generate(prompts, n, on_token) -> the new token ids [batch, n]; calls on_token() once per decoding step, when that
# step's tokens reach the caller (a streaming callback on both sides).
GenerateFn = Callable[[list[list[int]], int, Callable[[], None]], np.ndarray]


def _stamped_call(generate: GenerateFn, prompts: list[list[int]], n: int) -> tuple[float, list[float], Any, float]:
    """One call: (start time, the time of each step's tokens, the tokens, end time)."""
    stamps: list[float] = []
    t0 = time.perf_counter()
    tokens = generate(prompts, n, lambda: stamps.append(time.perf_counter()))
    return t0, stamps, tokens, time.perf_counter()


def time_generate(generate: GenerateFn, prompts: list[list[int]], new_tokens: int, repeats: int,
                  compiled_count: Callable[[], int] | None = None) -> dict[str, Any]:
    """Times `repeats` calls of `generate(prompts, new_tokens, on_token)` after one warm-up call; medians.

    compiled_count: returns how many executables the side has compiled; the result then says how many the timed
    calls added (compiles_while_timing: 0 when nothing recompiled after the warm-up, as static shapes promise).
    From the streaming timestamps of each call: TTFT (start to first token: prefill plus one token), the decode step
    time (first to last token / (new_tokens - 1)) and the whole call. Returns ttft_s, total_s, tokens_per_s (whole
    call), decode_tokens_per_s, decode_ms_per_step, best_* (the fastest call's figures), the raw times, the tokens of
    the last call, and others_cpu_frac / steal_frac (how much of the machine other processes took while timing).
    """
    batch = len(prompts)
    warm = time.perf_counter()
    first = generate(prompts, new_tokens, lambda: None)
    warmup_s = time.perf_counter() - warm
    if first.shape != (batch, new_tokens):
        raise RuntimeError(f"generate returned shape {first.shape}, expected {(batch, new_tokens)}")
    compiled_before = compiled_count() if compiled_count else None
    meter = CpuMeter()
    ttfts, steps, totals = [], [], []
    for _ in range(repeats):
        t0, stamps, tokens, t_end = _stamped_call(generate, prompts, new_tokens)
        totals.append(t_end - t0)
        if len(stamps) != new_tokens:
            raise RuntimeError(f"on_token was called {len(stamps)} times for {new_tokens} new tokens")
        ttfts.append(stamps[0] - t0)
        steps.append((stamps[-1] - stamps[0]) / (new_tokens - 1))
    ttft, step, total = statistics.median(ttfts), statistics.median(steps), statistics.median(totals)
    extra = {} if compiled_count is None else {"compiles_while_timing": compiled_count() - compiled_before}
    return {
        "batch": batch,
        "new_tokens": new_tokens,
        "ttft_s": ttft,
        "total_s": total,
        "tokens_per_s": batch * new_tokens / total,
        "decode_tokens_per_s": batch / step,
        "decode_ms_per_step": 1e3 * step,
        "warmup_s": warmup_s,
        # The fastest calls: what the code does when the machine leaves it alone (the medians above are the headline).
        "best_ttft_s": min(ttfts),
        "best_tokens_per_s": batch * new_tokens / min(totals),
        "best_decode_tokens_per_s": batch / min(steps),
        "ttft_times_s": [round(t, 5) for t in ttfts],
        "step_times_ms": [round(1e3 * t, 3) for t in steps],
        "total_times_s": [round(t, 4) for t in totals],
        "tokens": np.asarray(tokens).tolist(),
        **extra,
        **meter.read(),
    }


def weight_bytes_per_token(named_arrays: dict[str, Any]) -> int:
    """Bytes one batch-1 decode step reads from the weights: every array except the position table and scalar heads.

    `named_arrays` maps a '/'-joined parameter path to an array (anything with .nbytes). The tied token embedding is
    read whole (it is the LM head); of the position table only one row is read, and the value/reward heads are unused.
    """
    skip = ("wpe", "value_head", "reward_head")
    return int(sum(a.nbytes for name, a in named_arrays.items() if not any(s in name.split("/") for s in skip)))


# ---------------------------------------------------------------- the shared weights (child process, torch)


def make_hf_checkpoint(directory: str, seed: int = 0) -> dict[str, Any]:
    """Saves a random-weight GPT2LMHeadModel(GPT2Config()) to `directory` (safetensors); returns its description."""
    import torch
    from transformers import GPT2Config, GPT2LMHeadModel

    torch.manual_seed(seed)
    model = GPT2LMHeadModel(GPT2Config())
    model.save_pretrained(directory, safe_serialization=True)
    return {"hf_dir": directory, "n_params": sum(p.numel() for p in model.parameters()), "seed": seed}


# ---------------------------------------------------------------- the PyTorch peer (child process)


def run_torch_side(hf_dir: str, batches: Sequence[int], prompt_len: int, new_tokens: int, repeats: int,
                   threads: int | None = None, compile: bool = False) -> dict[str, Any]:
    """transformers' greedy `generate` (KV cache) on the checkpoint in `hf_dir`; one time_generate per batch.

    compile: transformers' own compiled decoding (a static KV cache and torch.compile of the forward pass, which
    generate applies only on accelerators unless the CompileConfig allows every device).
    """
    import torch
    import transformers
    from transformers import GPT2LMHeadModel
    from transformers.generation.streamers import BaseStreamer

    class StepStamps(BaseStreamer):
        """generate's streamer: put() gets the prompt first, then each step's new tokens [batch]."""

        def __init__(self, on_token: Callable[[], None]) -> None:
            self.on_token, self.prompt_seen = on_token, False

        def put(self, value: Any) -> None:
            if self.prompt_seen:
                self.on_token()
            self.prompt_seen = True

        def end(self) -> None:
            pass

    n_threads = threads or os.cpu_count() or 1
    torch.set_num_threads(n_threads)
    model = GPT2LMHeadModel.from_pretrained(hf_dir, dtype=torch.float32).eval()
    gc = model.generation_config
    # Always exactly new_tokens: no end-of-text stop (flaxgpt's side is told the same), greedy, KV cache on.
    gc.eos_token_id, gc.pad_token_id, gc.do_sample, gc.use_cache = None, 0, False, True
    if compile:
        from transformers.generation import CompileConfig

        compile_config = CompileConfig(fullgraph=True, mode="default")  # "reduce-overhead" means CUDA graphs
        compile_config._compile_all_devices = True
        gc.cache_implementation, gc.compile_config = "static", compile_config

    def generate(prompts: list[list[int]], n: int, on_token: Callable[[], None]) -> np.ndarray:
        ids = torch.tensor(prompts, dtype=torch.long)
        with torch.inference_mode():
            out = model.generate(ids, attention_mask=torch.ones_like(ids), max_new_tokens=n,
                                 streamer=StepStamps(on_token))
        return out[:, ids.shape[1]:].numpy()

    named = {k.replace(".", "/"): p.detach() for k, p in model.named_parameters()}  # tied lm_head listed once
    named = {k.replace("transformer/", "").replace("/weight", ""): _TorchBytes(p) for k, p in named.items()}
    result: dict[str, Any] = {
        "compile": compile,
        "torch_version": torch.__version__,
        "transformers_version": transformers.__version__,
        "threads": n_threads,
        "attn_implementation": model.config._attn_implementation,
        "weight_bytes_per_token": weight_bytes_per_token(named),
        "runs": {},
    }
    for b in batches:
        result["runs"][str(b)] = time_generate(generate, make_prompts(b, prompt_len), new_tokens, repeats)
    return result


class _TorchBytes:
    """Gives a torch tensor the .nbytes that weight_bytes_per_token reads."""

    def __init__(self, t: Any) -> None:
        self.nbytes = t.numel() * t.element_size()


# ---------------------------------------------------------------- flaxgpt (child process)


def _named_leaves(tree: Any) -> dict[str, Any]:
    """'/'-joined key paths -> leaves of a (nested dict) pytree."""
    import jax

    out = {}
    for path, leaf in jax.tree_util.tree_leaves_with_path(tree):
        out["/".join(str(getattr(k, "key", getattr(k, "name", k))) for k in path)] = leaf
    return out


def import_checkpoint(hf_dir: str, run_dir: str) -> dict[str, Any]:
    """`flaxgpt convert import`'s import_hf: the HF checkpoint in `hf_dir` -> the flaxgpt run directory `run_dir`."""
    from flaxgpt.runs.hf.hf_import import import_hf

    t0 = time.perf_counter()
    import_hf(hf_dir, run_dir)
    return {"run_dir": run_dir, "import_s": time.perf_counter() - t0}


def run_flax_side(run_dir: str, batches: Sequence[int], prompt_len: int, new_tokens: int, repeats: int,
                  int8: bool = False, max_len: int | None = None) -> dict[str, Any]:
    """flaxgpt's greedy decoding (infer.generator.load_generator) of the run in `run_dir`, float32 or weight-only
    int8; one time_generate per batch size.

    max_len: KV-cache slots (default prompt_len + new_tokens, the length transformers' cache grows to).
    """
    import jax

    from flaxgpt.infer.generator import TokenDelta, load_generator
    from flaxgpt.infer.sampling import SamplingParams

    max_len = max_len or prompt_len + new_tokens
    t0 = time.perf_counter()
    gen = load_generator(run_dir, int8=int8, max_len=max_len)
    jax.block_until_ready(gen.params)
    load_s = time.perf_counter() - t0
    greedy = SamplingParams(temperature=0.0, ignore_eos=True)  # exactly n tokens, like the PyTorch side

    def generate(prompts: list[list[int]], n: int, on_token: Callable[[], None]) -> np.ndarray:
        def callback(delta: TokenDelta) -> None:  # one delta per row per step: row 0 marks the step
            if delta.index == 0:
                on_token()

        return np.array([c.tokens for c in gen.generate(prompts, greedy, max_new_tokens=n, callback=callback)])

    result: dict[str, Any] = {
        "jax_version": jax.__version__,
        "backend": jax.default_backend(),
        "devices": len(jax.devices()),
        "load_s": load_s,
        "max_len": max_len,
        "int8": gen.int8,
        "weight_bytes_per_token": weight_bytes_per_token(_named_leaves(gen.params)),
        "runs": {},
    }
    if gen.int8:
        result["int8_dot"] = gen.cfg.int8_dot  # 'auto': int8 x int8 matmuls on CPU (flaxgpt.model.gpt.ModelConfig)
    for b in batches:
        result["runs"][str(b)] = time_generate(generate, make_prompts(b, prompt_len), new_tokens, repeats,
                                               gen.compiled_count)
    result["compiled_executables"] = gen.compiled_count()  # per batch size: prefill, and a step and grow per bucket
    return result


# ---------------------------------------------------------------- children, report, main

# The PyTorch peer at its best (tuned environment as in the training bench; eager and compiled decoding), stock PyTorch
# eager as a typical user runs it, and flaxgpt.
SIDE_NAMES = {"torch": "torch eager", "torch-compile": "torch compile", "torch-stock": "torch eager, stock",
              "f32": "flaxgpt f32", "int8": "flaxgpt int8"}
PEERS = ("torch eager", "torch compile", "torch eager, stock")
SIDES: dict[str, Callable[..., dict[str, Any]]] = {
    "weights": make_hf_checkpoint,
    "import": import_checkpoint,
    "torch": run_torch_side,
    "flax": run_flax_side,
}


def run_child(side: str, kwargs: dict[str, Any], *, tuned: bool = True, timeout: float = 1200.0) -> dict[str, Any]:
    """Runs SIDES[side](**kwargs) in a fresh `python -m bench.decode_bench --child` process; parses its JSON line.

    tuned (the default): the child gets bench_env() (glibc malloc tuning) and, for PyTorch, the MKL-on-AMD shim, as
    in the training bench; otherwise the environment as it is (stock PyTorch, as a typical user runs it). Failures
    come back as a dict with an "error" field.
    """
    env = bench_env(malloc_tuning=tuned)
    work_dir = tempfile.mkdtemp(prefix="decode_bench_")
    shim_note = None
    if side == "torch":
        env["TORCHINDUCTOR_CACHE_DIR"] = os.path.join(work_dir, "inductor_cache")  # a cold compile, every run
    if side == "torch" and tuned:
        shim, shim_note = build_mkl_amd_shim(work_dir)
        if shim:
            env["LD_PRELOAD"] = ":".join(filter(None, [shim, env.get("LD_PRELOAD")]))
    cmd = [sys.executable, "-m", "bench.decode_bench", "--child", side, "--json", json.dumps(kwargs)]
    try:
        proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return {"side": side, "error": f"timed out after {timeout:.0f} s"}
    finally:
        shutil.rmtree(work_dir, ignore_errors=True)
    for line in reversed(proc.stdout.splitlines()):
        if line.startswith("{"):
            result = json.loads(line)
            if shim_note is not None:
                result["mkl_amd_shim"] = shim_note
            return result
    return {"side": side, "error": f"exit code {proc.returncode}: {(proc.stderr or proc.stdout).strip()[-2000:]}"}


def _agreement(tokens: list[list[int]], reference: list[list[int]]) -> dict[str, Any]:
    """How far greedy tokens agree with the reference's: exact match, and the first differing step of each row."""
    a, r = np.asarray(tokens), np.asarray(reference)
    first_diff = [int(np.argmax(x != y)) if (x != y).any() else len(x) for x, y in zip(a, r, strict=True)]
    return {"exact": bool((a == r).all()), "first_diff_step": first_diff, "token_match_frac": float((a == r).mean())}


def _ratio(run: dict[str, Any], ref: dict[str, Any]) -> dict[str, float]:
    """run / ref for tokens/s and decode tokens/s (above 1: run is faster), and TTFT (below 1: run answers sooner)."""
    return {"tokens_per_s": run["tokens_per_s"] / ref["tokens_per_s"],
            "decode_tokens_per_s": run["decode_tokens_per_s"] / ref["decode_tokens_per_s"],
            "ttft": run["ttft_s"] / ref["ttft_s"]}


def _target(value: float | None, target: float) -> dict[str, Any] | None:
    return None if value is None else {"value": value, "target": target, "met": value >= target}


def summarize(sides: dict[str, dict[str, Any]], bandwidth: dict[str, Any]) -> dict[str, Any]:
    """Ratios between sides, the bandwidth bound of batch-1 decoding, agreement with PyTorch and the target checks.

    The issue's targets: flaxgpt f32 batch-1 tokens/s >= 2.5x transformers' eager generate (tuned environment; the
    ratios to every peer and to the fastest one are reported beside it), batch-1 f32 decode >= 70% of its bandwidth
    bound, and int8 batch-1 tokens/s >= 1.5x flaxgpt's f32.
    """
    ok = {name: s for name, s in sides.items() if "error" not in s}
    read_bps = bandwidth.get("read_gbs", 0) * 1e9
    summary: dict[str, Any] = {"ratios": {}, "bandwidth_bound": {}, "agreement_with_torch": {}, "targets": {}}
    peers = [n for n in PEERS if n in ok]
    ours = [n for n in ("flaxgpt f32", "flaxgpt int8") if n in ok]
    for name in ours:
        for b, run in ok[name]["runs"].items():
            for peer in peers:
                if b in ok[peer]["runs"]:
                    summary["ratios"][f"{name} / {peer}, batch {b}"] = _ratio(run, ok[peer]["runs"][b])
            if peers and b in ok[peers[0]]["runs"]:
                summary["agreement_with_torch"][f"{name}, batch {b}"] = _agreement(
                    run["tokens"], ok[peers[0]]["runs"][b]["tokens"])
            if len(peers) > 1 and all(b in ok[p]["runs"] for p in peers):
                best = max((ok[p]["runs"][b] for p in peers), key=lambda r: r["tokens_per_s"])
                summary["ratios"][f"{name} / faster torch, batch {b}"] = _ratio(run, best)
    if "flaxgpt f32" in ok and "flaxgpt int8" in ok:
        f32, int8 = ok["flaxgpt f32"]["runs"], ok["flaxgpt int8"]["runs"]
        for b in f32:
            if b in int8:
                summary["ratios"][f"flaxgpt int8 / flaxgpt f32, batch {b}"] = _ratio(int8[b], f32[b])
    for name, s in ok.items():
        if "1" in s["runs"] and read_bps > 0:
            bound = read_bps / s["weight_bytes_per_token"]
            summary["bandwidth_bound"][name] = {
                "weight_bytes_per_token": s["weight_bytes_per_token"], "bound_tokens_per_s": bound,
                "fraction_of_bound": s["runs"]["1"]["decode_tokens_per_s"] / bound}
    ratios, bounds = summary["ratios"], summary["bandwidth_bound"]
    targets = {
        "f32_batch1_vs_torch_eager": _target(
            ratios.get("flaxgpt f32 / torch eager, batch 1", {}).get("tokens_per_s"), TARGET_F32_VS_TORCH),
        "f32_batch1_fraction_of_bound": _target(
            bounds.get("flaxgpt f32", {}).get("fraction_of_bound"), TARGET_BOUND_FRACTION),
        "int8_vs_f32_batch1": _target(
            ratios.get("flaxgpt int8 / flaxgpt f32, batch 1", {}).get("tokens_per_s"), TARGET_INT8_VS_F32),
    }
    summary["targets"] = {k: v for k, v in targets.items() if v is not None}
    return summary


def format_table(results: dict[str, Any]) -> str:
    """The human-readable report: one row per side and batch size, then bound, ratios and targets."""
    bw = results["bandwidth"]
    lines = [f"read bandwidth {bw.get('read_gbs', float('nan')):.1f} GB/s ({bw.get('read_method')}; copy "
             f"{bw.get('copy_gbs', float('nan')):.1f}, triad {bw.get('triad_gbs', float('nan')):.1f} GB/s; "
             f"others' CPU share meanwhile {bw.get('others_cpu_frac', '?')})", "",
             f"  {'side':<18} {'batch':>5} {'tokens/s':>9} {'decode tok/s':>12} {'ms/step':>8} {'TTFT ms':>8} "
             f"{'others CPU':>10}"]
    for name, s in results["sides"].items():
        if "error" in s:
            lines.append(f"  {name:<18} error: {s['error'][:300]}")
            continue
        for b, r in s["runs"].items():
            lines.append(f"  {name:<18} {b:>5} {r['tokens_per_s']:>9.1f} {r['decode_tokens_per_s']:>12.1f} "
                         f"{r['decode_ms_per_step']:>8.2f} {1e3 * r['ttft_s']:>8.1f} "
                         f"{r.get('others_cpu_frac', '?'):>10}")
    summary = results["summary"]
    lines.append("")
    for name, bb in summary["bandwidth_bound"].items():
        lines.append(f"  {name}: batch-1 bound {bb['bound_tokens_per_s']:.1f} tok/s "
                     f"({bb['weight_bytes_per_token'] / 1e6:.0f} MB of weights per token); "
                     f"decode reaches {100 * bb['fraction_of_bound']:.0f}% of it")
    for name, r in summary["ratios"].items():
        lines.append(f"  {name}: tokens/s {r['tokens_per_s']:.2f}x, decode {r['decode_tokens_per_s']:.2f}x, "
                     f"TTFT {r['ttft']:.2f}x")
    for name, a in summary["agreement_with_torch"].items():
        detail = "identical" if a["exact"] else (f"differ: {100 * a['token_match_frac']:.0f}% match, rows first "
                                                 f"differ at steps {a['first_diff_step']}")
        lines.append(f"  greedy tokens, {name} vs torch: {detail}")
    for name, t in summary["targets"].items():
        lines.append(f"  target {name}: {t['value']:.2f} (>= {t['target']}) {'met' if t['met'] else 'NOT met'}")
    for name, s in results["sides"].items():
        for b, r in s.get("runs", {}).items():
            if r.get("compiles_while_timing"):
                lines.append(f"  WARNING: {name}, batch {b} compiled {r['compiles_while_timing']} executables while "
                             "being timed (after its warm-up call)")
    busy = max([bw.get("others_cpu_frac", 0.0)] + [r.get("others_cpu_frac", 0.0) for s in results["sides"].values()
                                                   for r in s.get("runs", {}).values()])
    if busy > BUSY_WARNING:
        lines.append(f"\n  WARNING: other processes used up to {100 * busy:.0f}% of the machine while timing: these "
                     "figures are not reliable (rerun on a quiet machine). The best_* fields of decode.json hold the "
                     "fastest calls.")
    return "\n".join(lines)


def plot(results: dict[str, Any], path: Path) -> None:
    """Bar chart of tokens/s per side, one panel per batch size; batch 1 also shows the bandwidth bounds."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    sides = {n: s for n, s in results["sides"].items() if "error" not in s}
    batches = sorted({b for s in sides.values() for b in s["runs"]}, key=int)
    if not batches:
        return
    fig, axes = plt.subplots(1, len(batches), figsize=(5 * len(batches), 3.8), dpi=120, squeeze=False)
    colors = {"torch eager": "#a0aec0", "torch compile": "#718096", "torch eager, stock": "#cbd5e0",
              "flaxgpt f32": "#2b6cb0", "flaxgpt int8": "#2c7a7b"}
    for ax, b in zip(axes[0], batches, strict=True):
        names = [n for n in sides if b in sides[n]["runs"]]
        vals = [sides[n]["runs"][b]["tokens_per_s"] for n in names]
        labels = [n.replace(",", "").replace(" ", "\n") for n in names]
        bars = ax.bar(labels, vals, color=[colors.get(n, "#4a5568") for n in names])
        ax.bar_label(bars, fmt="%.0f")
        bounds = {n: bb for n, bb in results["summary"]["bandwidth_bound"].items() if n.startswith("flaxgpt")}
        if b == "1" and bounds:
            for name, bb in bounds.items():
                ax.axhline(bb["bound_tokens_per_s"], ls="--", lw=1, color=colors[name],
                           label=f"{name.split()[1]} bandwidth bound")
            ax.legend(fontsize=7)
        ax.set_title(f"batch {b}: tokens/s, {results['settings']['new_tokens']} new tokens (higher is better)",
                     fontsize=9)
        ax.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def _cpu_model() -> str | None:
    """The CPU's model name from /proc/cpuinfo, or None."""
    try:
        with open("/proc/cpuinfo") as f:
            return next((line.split(":", 1)[1].strip() for line in f if line.startswith("model name")), None)
    except OSError:
        return None


def main(argv: list[str] | None = None) -> int:
    """CLI: the whole benchmark (or, with --child, one side in this process)."""
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--batch", type=int, nargs="+", default=[1, 8], help="batch sizes (default 1 8)")
    p.add_argument("--new-tokens", type=int, default=100)
    p.add_argument("--prompt-len", type=int, default=32)
    p.add_argument("--repeats", type=int, default=5, help="timed calls per measurement (medians)")
    p.add_argument("--sides", nargs="+", default=list(SIDE_NAMES), choices=list(SIDE_NAMES))
    p.add_argument("--max-len", type=int, help="flaxgpt's KV-cache slots (default: prompt + new tokens)")
    p.add_argument("--out", default="runs/bench")
    p.add_argument("--child", choices=sorted(SIDES), help=argparse.SUPPRESS)
    p.add_argument("--json", dest="json_kwargs", default="{}", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.child:
        try:
            result = SIDES[args.child](**json.loads(args.json_kwargs))
        except Exception as exc:  # report, don't crash the whole benchmark
            result = {"side": args.child, "error": f"{type(exc).__name__}: {exc}", "traceback": traceback.format_exc()}
        print(json.dumps(result), flush=True)
        return 1 if "error" in result else 0
    if args.new_tokens < 2 or args.prompt_len < 1 or min(args.batch) < 1 or args.repeats < 1:
        p.error("need --new-tokens >= 2, --prompt-len >= 1, batch sizes >= 1 and --repeats >= 1")
    out = ROOT / args.out
    out.mkdir(parents=True, exist_ok=True)
    settings = {k: getattr(args, k) for k in ("batch", "new_tokens", "prompt_len", "repeats", "max_len")}
    results: dict[str, Any] = {"date": time.strftime("%Y-%m-%d %H:%M"), "cpu": _cpu_model(),
                               "cpu_count": os.cpu_count(), "settings": settings}
    with tempfile.TemporaryDirectory(prefix="decode_bench_gpt2_") as hf_dir:
        print("making a random-weight GPT-2 124M checkpoint (transformers, safetensors) ...", flush=True)
        results["checkpoint"] = made = run_child("weights", {"directory": hf_dir})
        if "error" in made:
            print(f"  error: {made['error']}")
            return 1
        run_dir = str(Path(hf_dir) / "flaxgpt_run")
        if {"f32", "int8"} & set(args.sides):
            print("importing it into a flaxgpt run (flaxgpt.runs.hf) ...", flush=True)
            results["import"] = imported = run_child("import", {"hf_dir": hf_dir, "run_dir": run_dir})
            if "error" in imported:
                print(f"  error: {imported['error'][:300]}", flush=True)
        print("measuring memory bandwidth ...", flush=True)
        bandwidth = [measure_bandwidth()]
        common = {"batches": args.batch, "prompt_len": args.prompt_len, "new_tokens": args.new_tokens,
                  "repeats": args.repeats}
        sides: dict[str, dict[str, Any]] = {}
        for side in args.sides:
            name = SIDE_NAMES[side]
            print(f"timing {name} ...", flush=True)
            if side.startswith("torch"):
                kind, extra = "torch", {"hf_dir": hf_dir, "compile": side == "torch-compile"}
            else:
                kind, extra = "flax", {"run_dir": run_dir, "int8": side == "int8", "max_len": args.max_len}
            sides[name] = run_child(kind, {**common, **extra}, tuned=side != "torch-stock")
            if "error" in sides[name]:
                print(f"  error: {sides[name]['error'][:300]}", flush=True)
        print("measuring memory bandwidth again ...", flush=True)
        bandwidth.append(measure_bandwidth())
    # The better of a measurement before and one after the timings: a shared machine lowers bandwidth (and so the
    # bound) while others run, which would flatter the fraction of the bound.
    results["bandwidth"] = max(bandwidth, key=lambda b: b.get("read_gbs", 0.0))
    results["bandwidth_runs"] = bandwidth
    results["sides"] = sides
    results["summary"] = summarize(sides, results["bandwidth"])
    print("\n" + format_table(results))
    (out / "decode.json").write_text(json.dumps(results, indent=2) + "\n")
    try:
        plot(results, out / "decode.png")
    except ImportError:  # matplotlib is optional for the numbers
        print("matplotlib not installed: no plot")
    print(f"\nresults: {out / 'decode.json'}, plot: {out / 'decode.png'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
