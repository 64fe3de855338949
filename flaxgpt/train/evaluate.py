"""Validation loss and perplexity of token batches: the one way flaxgpt scores next-token prediction.

``make_nll_fn`` gives per-row sums of the weighted next-token NLL and of the weights, for batches of the
loader's keys (``flaxgpt.data.loader.BATCH_KEYS``, [b, T], no micro-batch axis). Everything that reports a
loss or a perplexity goes through it: the trainer's validation, ``flaxgpt eval``'s perplexity suite, the int8
report and the ingest perplexity filter (per document: one document per row).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from flaxgpt.model.gpt import GPT
from flaxgpt.model.logprobs import target_logprobs
from flaxgpt.train.sharding import Compiled, batch_sharding, compile_fn
from flaxgpt.train.steps import lm_forward

MAX_LOSS = 50.0  # perplexities are reported as exp(min(loss, MAX_LOSS)): finite for any model
NLL_KEYS = ("inputs", "targets", "weights", "positions", "segment_ids")


def make_nll_fn(model: GPT, *, document_mask: bool = True) -> Callable[[Any, dict], dict[str, jax.Array]]:
    """``nll(params, batch) -> {'nll': [b], 'tokens': [b]}``: per row, the summed weighted NLL and summed weights.

    Pure; ``model`` may be any GPT (stacked or ``unstacked`` layout, float or int8 weights).
    """
    vocab = model.cfg.vocab_size

    def nll(params: Any, batch: dict[str, jax.Array]) -> dict[str, jax.Array]:
        logits = lm_forward(model, params, batch, document_mask=document_mask)
        weights = batch["weights"].astype(jnp.float32)
        return {"nll": -jnp.sum(target_logprobs(logits, batch["targets"], vocab) * weights, axis=-1),
                "tokens": jnp.sum(weights, axis=-1)}

    return nll


def compile_nll(model: GPT, mesh: Any, rules: Any, param_shardings: Any = None, *,
                document_mask: bool = True) -> Compiled:
    """``make_nll_fn`` compiled for ``mesh``: rows split over the data-parallel axes (params as placed, or as
    ``param_shardings`` says)."""
    rows = batch_sharding(mesh, 2)
    in_sh = None if param_shardings is None else (param_shardings, dict.fromkeys(NLL_KEYS, rows))
    return compile_fn(make_nll_fn(model, document_mask=document_mask), mesh, rules, in_shardings=in_sh)


def perplexity(loss: float) -> float:
    """exp(mean NLL), capped at exp(MAX_LOSS)."""
    return math.exp(min(loss, MAX_LOSS))


def total_nll(nll_fn: Callable, params: Any, batches: Iterable[dict]) -> tuple[float, float]:
    """(summed NLL, summed weights) of ``params`` over ``batches``."""
    loss, tokens = 0.0, 0.0
    for batch in batches:
        r = jax.device_get(nll_fn(params, {k: batch[k] for k in NLL_KEYS}))
        loss += float(np.sum(r["nll"], dtype=np.float64))
        tokens += float(np.sum(r["tokens"], dtype=np.float64))
    return loss, tokens


def evaluate_sources(nll_fn: Callable, params: Any, batches: dict[str, list]) -> dict[str, float]:
    """Validation loss per source (``val_loss/NAME``), over all sources token-weighted (``val_loss``), and
    ``val_ppl``. Sources with no weighted token are left out."""
    out, total_loss, total_tokens = {}, 0.0, 0.0
    for name, source_batches in batches.items():
        loss, tokens = total_nll(nll_fn, params, source_batches)
        if tokens:
            out[f"val_loss/{name}"] = loss / tokens
            total_loss, total_tokens = total_loss + loss, total_tokens + tokens
    if total_tokens:
        out["val_loss"] = total_loss / total_tokens
        out["val_ppl"] = perplexity(out["val_loss"])
    return out
