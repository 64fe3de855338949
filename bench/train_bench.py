"""`make bench`: training throughput of flaxgpt against HuggingFace transformers' GPT-2 in PyTorch.

Both sides train the same GPT-2 shapes (GPT-2 vocabulary, dropout 0, float32, AdamW lr 3e-4 wd 0.1)
on random tokens, one fresh process per measurement, on this machine, in this run:
  (a) small: 6 layers, 6 heads, d_model 384, context 256, batch 8;
  (b) 124m:  GPT-2 small (12 layers, 12 heads, d_model 768), context 256, batch 4.
Peers: PyTorch eager and torch.compile (tuned: MKL's AVX-512 kernels, malloc), and stock PyTorch eager.
MFU is against the best float32 matmul throughput measured
here (the larger of numpy's and XLA's on large square matrices). Results go to runs/bench/.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from bench import bench_env
from bench.matmul_peak import measure_matmul_peak
from bench.torch_peer import PRESETS, run_in_subprocess

ROOT = Path(__file__).resolve().parent.parent
# The PyTorch peer at its best (MKL's AVX-512 kernels forced on AMD CPUs, see bench.torch_peer; glibc malloc
# tuned), plus stock PyTorch eager as a typical user runs it.
PEERS: dict[str, dict[str, Any]] = {
    "torch eager": {"compile": False},
    "torch compile": {"compile": True},
    "torch eager, stock MKL": {"compile": False, "mkl_amd_shim": False},
}


def run_flaxgpt(preset: str, steps: int, timeout: float = 900) -> dict[str, Any]:
    """flaxgpt's step timing for ``preset`` in a fresh process (same malloc settings as the peer's)."""
    cmd = [sys.executable, "-m", "bench.flax_side", "--preset", preset, "--steps", str(steps)]
    proc = subprocess.run(cmd, cwd=ROOT, env=bench_env(), capture_output=True, text=True, timeout=timeout)
    for line in reversed(proc.stdout.splitlines()):
        if line.startswith("{"):
            return json.loads(line)
    return {"error": f"exit code {proc.returncode}: {(proc.stderr or proc.stdout)[-2000:]}"}


def _fmt_row(name: str, r: dict[str, Any], flops_per_token: float, peak: float) -> str:
    if "error" in r:
        return f"  {name:<22} error: {r['error'][:200]}"
    mfu = r["tokens_per_s"] * flops_per_token / peak
    return (f"  {name:<22} {r['tokens_per_s']:>9.1f} tok/s  step {r['step_time_s']:>6.3f} s  "
            f"first step {r['first_step_s']:>6.1f} s  MFU {100 * mfu:5.1f}%")


def plot(results: dict[str, Any], out: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    presets = list(results["presets"])
    names = ["flaxgpt", *PEERS]
    fig, axes = plt.subplots(1, len(presets), figsize=(5 * len(presets), 3.6), dpi=120)
    for ax, preset in zip(axes, presets, strict=True):
        rows = results["presets"][preset]
        vals = [rows[n].get("tokens_per_s", 0) for n in names]
        bars = ax.bar([n.replace(", ", "\n") for n in names], vals, color=["#2b6cb0", "#a0aec0", "#718096", "#cbd5e0"])
        ax.bar_label(bars, fmt="%.0f")
        ax.set_title(f"{preset}: training tokens/s (higher is better)")
        ax.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    fig.savefig(out)
    plt.close(fig)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--presets", nargs="+", default=["small", "124m"], choices=sorted(PRESETS))
    p.add_argument("--steps", type=int, default=8, help="timed steps per measurement (after 2 warm-up steps)")
    p.add_argument("--out", default="runs/bench")
    args = p.parse_args(argv)
    out = ROOT / args.out
    out.mkdir(parents=True, exist_ok=True)

    print("measuring the float32 matmul peak (numpy and XLA) ...", flush=True)
    peak_info = measure_matmul_peak(n=2048, repeats=5)
    peak = peak_info["best_gflops"] * 1e9
    print(f"  numpy {peak_info['numpy_gflops']:.0f} GFLOP/s, XLA {peak_info['xla_gflops']:.0f} GFLOP/s "
          f"-> peak {peak / 1e9:.0f} GFLOP/s")
    results: dict[str, Any] = {"matmul_peak": peak_info, "presets": {}, "date": time.strftime("%Y-%m-%d %H:%M")}
    for preset in args.presets:
        shape = PRESETS[preset]
        print(f"\n[{preset}] {shape}", flush=True)
        rows = {"flaxgpt": run_flaxgpt(preset, args.steps)}
        flops = rows["flaxgpt"].get("flops_per_token_nanogpt", 0)
        print(_fmt_row("flaxgpt", rows["flaxgpt"], flops, peak), flush=True)
        for name, peer in PEERS.items():
            rows[name] = run_in_subprocess(**shape, steps=args.steps, warmup=2, **peer)
            print(_fmt_row(name, rows[name], flops, peak), flush=True)
        ok = {k: v for k, v in rows.items() if "error" not in v}
        if "flaxgpt" in ok:
            fx = ok["flaxgpt"]
            if "compile_s" in fx:
                print(f"  flaxgpt compile of the first step: {fx['compile_s']:.1f} s")
            fx["mfu_nanogpt"] = fx["tokens_per_s"] * fx["flops_per_token_nanogpt"] / peak
            fx["mfu_maxtext"] = fx["tokens_per_s"] * fx["flops_per_token_maxtext"] / peak
            for name in PEERS:
                if name in ok:
                    ratio = fx["tokens_per_s"] / ok[name]["tokens_per_s"]
                    fx[f"ratio_vs_{name.replace(' ', '_').replace(',', '')}"] = ratio
                    print(f"  flaxgpt / {name}: {ratio:.2f}x")
            peers = [ok[n]["tokens_per_s"] for n in PEERS if n in ok]
            if peers:
                fx["ratio_vs_faster_peer"] = fx["tokens_per_s"] / max(peers)
                print(f"  flaxgpt / faster peer: {fx['ratio_vs_faster_peer']:.2f}x   "
                      f"MFU nanoGPT {100 * fx['mfu_nanogpt']:.1f}%  MaxText {100 * fx['mfu_maxtext']:.1f}%")
        results["presets"][preset] = rows
    (out / "train.json").write_text(json.dumps(results, indent=2) + "\n")
    plot(results, out / "train.png")
    print(f"\nresults: {out / 'train.json'}, plot: {out / 'train.png'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
