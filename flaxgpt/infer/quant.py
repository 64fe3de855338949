"""Weight-only int8 quantization of the matmul weights, for inference.

Every matmul weight is stored as int8 with one float32 scale per output channel (symmetric,
``scale = max|w| / 127`` over the input axes): the four kernels of each block (``c_attn``,
``c_proj``, ``c_fc``, ``mlp_proj``: ``kernel`` [in..., out...] becomes ``kernel_q`` [out..., in...]
plus ``kernel_scale`` [out...]) and the token table ``wte`` (the tied LM head: one scale per
vocabulary row, ``embedding_scale``). Position embeddings, layer
norms, biases and the scalar heads stay float. The tree keeps its structure otherwise, so the same
``GPT`` module runs it: ``flaxgpt.model.gpt`` recognises int8 kernels by dtype and multiplies them as
``ModelConfig.int8_dot`` says (weights dequantized inside the matmul, or activations rounded to
int8 per row for an int8 x int8 matmul, the fast one on CPU).

``int8_report`` measures what that costs and saves: validation perplexity of float vs int8 weights
(``flaxgpt.train.evaluate``'s NLL, the one the trainer reports) and the bytes of both param trees;
``report_run`` does it for a run directory's validation split.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from flaxgpt.data.loader import build_eval_batches, expand_mixtures
from flaxgpt.model.gpt import GPT, ModelConfig, _int8_mode
from flaxgpt.runs.rundir import load_run
from flaxgpt.train import evaluate
from flaxgpt.train.sharding import compile_fn

# Block kernels and how many of their leading axes (after the layer axis) are inputs.
IN_AXES = {"c_attn": 1, "c_proj": 2, "c_fc": 1, "mlp_proj": 1}


def quantize(w: jax.Array, reduce_axes: tuple[int, ...]) -> tuple[jax.Array, jax.Array]:
    """Float weights -> (int8 weights, float32 scales over the other axes): w ~= q * scale (symmetric, round to
    nearest, one scale per index of the axes not in ``reduce_axes``)."""
    w32 = jnp.asarray(w, jnp.float32)
    amax = jnp.max(jnp.abs(w32), axis=reduce_axes, keepdims=True)
    scale = jnp.where(amax > 0, amax / 127.0, 1.0)
    q = jnp.clip(jnp.round(w32 / scale), -127, 127).astype(jnp.int8)
    return q, jnp.squeeze(scale, axis=reduce_axes)


def _block_keys(params: dict) -> list[tuple[str, int]]:
    """(key, leading layer axes) of the block subtrees: 'blocks' (stacked, 1) or 'blocks_<i>' (unstacked, 0)."""
    keys = [(k, 1 if k == "blocks" else 0) for k in params if k == "blocks" or k.startswith("blocks_")]
    if not keys:
        raise ValueError(f"param tree has no blocks (keys: {sorted(params)})")
    return keys


def is_quantized(params: dict) -> bool:
    """Whether a param tree's matmul weights are int8 (``quantize_params`` output)."""
    return "embedding_scale" in params["wte"]


def quantize_params(params: dict) -> dict:
    """A float param tree (stacked or unstacked layout) -> the same tree with int8 matmul weights and their scales.

    Pure and jittable; raises ValueError if the tree is already quantized.
    """
    if is_quantized(params):
        raise ValueError("params are already int8-quantized")
    if "embedding" not in params["wte"]:
        raise ValueError("quantize_params takes the trained layout (wte/embedding [V, D]), not inference_layout's")
    out = dict(params)
    q, s = quantize(params["wte"]["embedding"], (1,))  # rows are the LM head's output channels
    out["wte"] = {**params["wte"], "embedding": q, "embedding_scale": s}
    for key, lead in _block_keys(params):
        block = dict(params[key])
        for name, n_in in IN_AXES.items():
            layer = dict(block[name])
            w = layer.pop("kernel")
            q, layer["kernel_scale"] = quantize(w, tuple(range(lead, lead + n_in)))
            layer["kernel_q"] = jnp.moveaxis(q, tuple(range(lead, lead + n_in)), tuple(range(q.ndim - n_in, q.ndim)))
            block[name] = layer
        out[key] = block
    return out


def dequantize_params(qparams: dict, dtype: Any = jnp.float32) -> dict:
    """Inverse of ``quantize_params`` up to rounding: int8 weights times their scales, scales dropped."""
    out = dict(qparams)
    wte = dict(qparams["wte"])
    wte["embedding"] = (wte["embedding"].astype(jnp.float32) * wte.pop("embedding_scale")[:, None]).astype(dtype)
    out["wte"] = wte
    for key, lead in _block_keys(qparams):
        block = dict(qparams[key])
        for name, n_in in IN_AXES.items():
            layer = dict(block[name])
            q, scale = layer.pop("kernel_q"), layer.pop("kernel_scale")
            w = q.astype(jnp.float32) * scale.reshape(scale.shape + (1,) * n_in)
            layer["kernel"] = jnp.moveaxis(w, tuple(range(q.ndim - n_in, q.ndim)), tuple(range(lead, lead + n_in)))
            layer["kernel"] = layer["kernel"].astype(dtype)
            block[name] = layer
        out[key] = block
    return out


def param_bytes(params: Any) -> int:
    """Bytes of all the arrays of a param tree."""
    return int(sum(np.dtype(x.dtype).itemsize * math.prod(x.shape) for x in jax.tree.leaves(params)))


def perplexity(model_cfg: ModelConfig, params: dict, batches: Iterable[dict], *, document_mask: bool = True) -> float:
    """Token-weighted perplexity of ``params`` (float or int8, stacked or unstacked) over eval batches
    (dicts of [b, T] ``inputs``/``targets``/``weights``/``positions``/``segment_ids``, as
    ``flaxgpt.data.loader.build_eval_batches`` makes). ValueError if no token has weight."""
    model = GPT(model_cfg, unstacked="blocks" not in params)
    nll_fn = compile_fn(evaluate.make_nll_fn(model, document_mask=document_mask))
    total, weight = evaluate.total_nll(nll_fn, params, batches)
    if weight == 0:
        raise ValueError("perplexity: the batches hold no weighted tokens")
    return evaluate.perplexity(total / weight)


def int8_report(model_cfg: ModelConfig, params: dict, batches: list[dict], *, document_mask: bool = True) -> dict:
    """Float vs int8 weights on the same batches: perplexities, their relative change, and param bytes.

    Returns {'ppl_float', 'ppl_int8', 'ppl_change' (int8 / float - 1), 'bytes_float', 'bytes_int8',
    'bytes_ratio' (int8 / float), 'int8_dot'}.
    """
    qparams = compile_fn(quantize_params)(params)
    ppl_f = perplexity(model_cfg, params, batches, document_mask=document_mask)
    ppl_q = perplexity(model_cfg, qparams, batches, document_mask=document_mask)
    b_f, b_q = param_bytes(params), param_bytes(qparams)
    return {"ppl_float": ppl_f, "ppl_int8": ppl_q, "ppl_change": ppl_q / ppl_f - 1.0, "bytes_float": b_f,
            "bytes_int8": b_q, "bytes_ratio": b_q / b_f, "int8_dot": _int8_mode(model_cfg)}


def format_report(report: dict) -> str:
    """``int8_report``'s dict as two lines for a terminal."""
    return (f"validation perplexity: {report['ppl_float']:.3f} ({_dtype_name(report)}) -> {report['ppl_int8']:.3f} "
            f"(int8, {report['int8_dot']} matmul): {100 * report['ppl_change']:+.2f}%\n"
            f"param memory: {report['bytes_float'] / 1e6:.2f} MB -> {report['bytes_int8'] / 1e6:.2f} MB "
            f"({report['bytes_ratio']:.2f}x)")


def _dtype_name(report: dict) -> str:
    return report.get("dtype", "float")


def report_run(run_dir: str | Path, *, step: int | None = None, max_batches: int = 20, batch_size: int = 8,
               split: str = "val", int8_dot: str | None = None) -> dict:
    """``int8_report`` for a run's checkpoint on the ``split`` shards of its data sources (first ``max_batches``
    batches per source), with 'run_dir', 'step' and 'tokens' added. ``int8_dot`` overrides ModelConfig.int8_dot."""
    run = load_run(run_dir, step)
    if int8_dot is not None:
        run.model_cfg = dataclasses.replace(run.model_cfg, int8_dot=int8_dot)
    sources = expand_mixtures({n: (s.path, float(s.weight)) for n, s in run.config.data.sources.items()})
    per_source = build_eval_batches(sources, seq_len=run.config.data.seq_len, batch_size=batch_size,
                                    eot_id=run.tokenizer.eot_id, split=split, max_batches=max_batches)
    batches = [b for name in sorted(per_source) for b in per_source[name]]
    if not batches:
        raise ValueError(f"{run_dir}: no {split} batches in the run's data sources {sorted(sources)}")
    report = int8_report(run.model_cfg, run.params, batches, document_mask=run.config.data.document_mask)
    report.update(run_dir=str(run_dir), step=run.step, tokens=int(sum(float(b["weights"].sum()) for b in batches)),
                  dtype=run.model_cfg.param_dtype)
    return report
