"""Model FLOPs utilisation, in the two forms people compare against.

* nanoGPT: ``6N + 12*L*H*Q*T`` FLOPs per token, N = parameters without the position table
  (the tied embedding stands in for the LM head), attention counted as non-causal.
* MaxText: matmul FLOPs only (QKV, output projection, MLP, LM head), x3 for forward + backward,
  with causal attention halved.

Peak FLOP/s: a per-device table for accelerators, and a matmul measured on the spot for CPUs
(the larger of numpy's and XLA's throughput on large square float32 matrices).
"""

from __future__ import annotations

import contextlib
import functools
import json
import os
import platform
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

from flaxgpt.model.gpt import ModelConfig

# Dense peak FLOP/s per device for bf16 (fp16) matmuls, from vendor data sheets.
PEAK_FLOPS = {
    "TPU v4": 275e12,
    "TPU v5 lite": 197e12,
    "TPU v5e": 197e12,
    "TPU v5p": 459e12,
    "TPU v5": 459e12,
    "TPU v6 lite": 918e12,
    "TPU v6e": 918e12,
    "NVIDIA H100": 989e12,
    "NVIDIA H200": 989e12,
    "NVIDIA A100": 312e12,
    "NVIDIA L4": 121e12,
    "NVIDIA A10G": 125e12,
    "NVIDIA B200": 2250e12,
}


def flops_per_token_nanogpt(cfg: ModelConfig, seq_len: int, n_params: int) -> float:
    """Training FLOPs per token as nanoGPT's ``estimate_mfu`` counts them.

    ``n_params`` is the model's parameter count without the two scalar heads; the position table
    is subtracted here as nanoGPT does.
    """
    n = n_params - cfg.max_len * cfg.d_model
    return 6 * n + 12 * cfg.n_layer * cfg.n_head * cfg.head_dim * seq_len


def flops_per_token_maxtext(cfg: ModelConfig, seq_len: int) -> float:
    """Training FLOPs per token as MaxText counts them: matmuls x3, causal attention halved."""
    d, f, v, layers = cfg.d_model, cfg.ffn, cfg.vocab_padded, cfg.n_layer
    qkv = 2 * d * 3 * d
    proj = 2 * d * d
    ffn = 2 * 2 * d * f
    head = 2 * d * v
    attn = 4 * seq_len * d / 2  # QK^T and AV per token, causal half
    return 3 * (layers * (qkv + proj + ffn) + head) + 3 * layers * attn


@functools.cache
def measured_matmul_peak(n: int = 2048, repeats: int = 3) -> float:
    """FLOP/s of the best square float32 matmul on the default device (numpy on CPU too)."""
    a = np.random.default_rng(0).standard_normal((n, n), dtype=np.float32)
    best = 0.0
    x = jnp.asarray(a)
    mm = jax.jit(lambda p, q: p @ q)
    mm(x, x).block_until_ready()
    for _ in range(repeats):
        t0 = time.perf_counter()
        mm(x, x).block_until_ready()
        best = max(best, 2 * n**3 / (time.perf_counter() - t0))
    if jax.default_backend() == "cpu":
        a @ a
        for _ in range(repeats):
            t0 = time.perf_counter()
            a @ a
            best = max(best, 2 * n**3 / (time.perf_counter() - t0))
    return best


PEAK_CACHE = Path.home() / ".cache" / "flaxgpt" / "matmul_peak.json"


def best_known_matmul_peak(cache: Path = PEAK_CACHE) -> float:
    """The highest matmul peak measured on this machine so far, this measurement included.

    A reading taken while other processes use the cores comes out low; keeping the best reading per
    machine (in ``cache``) stops one busy moment from inflating a run's MFU.
    """
    key = f"{platform.node()}|{platform.machine()}|{os.cpu_count()}|{jax.default_backend()}"
    try:
        known = json.loads(cache.read_text())
    except (OSError, ValueError):
        known = {}
    best = max(measured_matmul_peak(), float(known.get(key, 0.0)))
    if best > float(known.get(key, 0.0)):
        known[key] = best
        with contextlib.suppress(OSError):
            cache.parent.mkdir(parents=True, exist_ok=True)
            cache.write_text(json.dumps(known, indent=1))
    return best


def peak_flops_per_device() -> tuple[float, str]:
    """(peak FLOP/s of one device, where the number came from)."""
    device = jax.devices()[0]
    kind = getattr(device, "device_kind", "")
    for name, flops in sorted(PEAK_FLOPS.items(), key=lambda kv: -len(kv[0])):
        if kind.startswith(name):
            return flops, f"table:{name}"
    if device.platform == "cpu":
        # Forced host devices (tests) share the same cores: the machine's peak is split among them.
        return best_known_matmul_peak() / jax.device_count(), "measured-matmul"
    return best_known_matmul_peak(), f"measured-matmul:{kind}"
