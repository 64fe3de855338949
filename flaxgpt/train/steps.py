"""Building pure step functions ``step(state, batch) -> (state, metrics)``, and the masked next-token loss.

Every stage's step is ``make_step(terms, ...)``: ``terms(params, micro) -> (loss_sum, sums)`` gives the summed
loss of one micro-batch and any sums it reports (token or pair counts, metric sums); the step adds them over
the batch's leading micro-batch axis A, divides the gradient by ``sums[denominator]`` and turns the sums into
metrics. So ``grad_accum`` 4 x 2 rows gives the same update as one batch of 8.

Pretraining and SFT share ``lm_terms``: the masked next-token loss over packed rows, where SFT's loader
weights keep only assistant tokens. An LM batch holds ``inputs``/``targets``/``segment_ids``/``positions`` int32
[A, b, T] and ``weights`` float32 [A, b, T] (``flaxgpt.data.loader.BATCH_KEYS``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import chex
import jax
import jax.numpy as jnp
import optax

from flaxgpt.model.gpt import GPT
from flaxgpt.model.logprobs import target_logprobs
from flaxgpt.train.state import TrainState

Step = Callable[[TrainState, dict], tuple[TrainState, dict]]
Terms = Callable[[Any, dict, jax.Array], tuple[jax.Array, dict]]


def masked_nll(logits: jax.Array, targets: jax.Array, weights: jax.Array, vocab_size: int) -> tuple[jax.Array, ...]:
    """Sum of weighted next-token negative log-likelihoods, and the sum of weights (over the real vocabulary)."""
    nll = -target_logprobs(logits, targets, vocab_size) * weights
    return jnp.sum(nll), jnp.sum(weights)


def lm_forward(model: GPT, params: Any, batch: dict[str, jax.Array], *, document_mask: bool, train: bool = False,
               rng: jax.Array | None = None) -> jax.Array:
    """Logits [b, T, V] of a packed LM batch; with ``document_mask`` attention stays inside each segment."""
    kwargs = dict(positions=batch["positions"], segment_ids=batch["segment_ids"]) if document_mask else {}
    rngs = {"dropout": rng} if train and rng is not None else {}
    return model.apply({"params": params}, batch["inputs"], deterministic=not train, rngs=rngs, **kwargs)


def accumulate_gradients(grad_fn: Callable[[Any, dict, jax.Array], Any], params: Any, batch: dict[str, jax.Array],
                         rng: jax.Array) -> Any:
    """Sums ``grad_fn(params, micro, rng) -> (sums, grads)`` over the leading micro-batch axis A of ``batch``.

    ``sums`` is any pytree of float scalars (loss sums, counts), added like the gradients; the caller divides.
    Micro-batch i gets ``fold_in(rng, i)``. A == 1 runs ``grad_fn`` once on ``batch[0]`` with ``rng`` itself
    (no scan); A > 1 scans, so memory stays that of one micro-batch.
    """
    n_micro = jax.tree.leaves(batch)[0].shape[0]
    first = jax.tree.map(lambda x: x[0], batch)
    if n_micro == 1:
        return grad_fn(params, first, rng)

    def add(carry, xs):
        micro, i = xs
        return jax.tree.map(jnp.add, carry, grad_fn(params, micro, jax.random.fold_in(rng, i))), None

    zeros = jax.tree.map(lambda s: jnp.zeros(s.shape, s.dtype), jax.eval_shape(grad_fn, params, first, rng))
    total, _ = jax.lax.scan(add, zeros, (batch, jnp.arange(n_micro)))
    return total


def make_step(terms: Terms, tx: optax.GradientTransformation, schedule: optax.Schedule, *, denominator: str,
              metrics: Callable[[jax.Array, dict], dict]) -> Step:
    """A step minimising sum(loss terms) / sums[denominator] over all micro-batches of the batch.

    ``metrics(loss_sum, sums)`` turns the accumulated sums into the step's metrics; ``grad_norm`` and ``lr`` are
    added. Micro-batch i of step s gets the dropout key ``fold_in(fold_in(state.rng, s), i)``.
    """
    grad_fn = jax.value_and_grad(terms, has_aux=True)

    def step(state: TrainState, batch: dict[str, jax.Array]) -> tuple[TrainState, dict[str, jax.Array]]:
        # Checked while tracing (free at run time): every array of the batch is [A micro-batches, b rows, ...].
        chex.assert_tree_shape_prefix(batch, jax.tree.leaves(batch)[0].shape[:2])
        rng = jax.random.fold_in(state.rng, state.step)
        (loss_sum, sums), grads = accumulate_gradients(grad_fn, state.params, batch, rng)
        grads = jax.tree.map(lambda g: g / jnp.maximum(sums[denominator], 1.0), grads)
        updates, opt_state = tx.update(grads, state.opt_state, state.params)
        params = optax.apply_updates(state.params, updates)
        out = {**metrics(loss_sum, sums), "grad_norm": optax.tree.norm(grads), "lr": schedule(state.step)}
        return state.replace(step=state.step + 1, params=params, opt_state=opt_state), out

    return step


def lm_terms(model: GPT, *, document_mask: bool = True) -> Terms:
    """The masked next-token loss of one micro-batch: (summed NLL, {'tokens': summed weights})."""
    vocab = model.cfg.vocab_size
    use_dropout = model.cfg.dropout > 0

    def terms(params, micro, rng):
        chex.assert_type([micro[k] for k in ("inputs", "targets", "segment_ids", "positions")], int)
        chex.assert_equal_shape([micro[k] for k in ("inputs", "targets", "weights", "segment_ids", "positions")])
        logits = lm_forward(model, params, micro, document_mask=document_mask, train=use_dropout, rng=rng)
        loss_sum, tokens = masked_nll(logits, micro["targets"], micro["weights"], vocab)
        return loss_sum, {"tokens": tokens}

    return terms


def lm_metrics(loss_sum: jax.Array, sums: dict) -> dict:
    """Mean loss per weighted token, and the token count."""
    return {"loss": loss_sum / jnp.maximum(sums["tokens"], 1.0), "tokens": sums["tokens"]}


def make_lm_step(model: GPT, tx: optax.GradientTransformation, schedule: optax.Schedule, *,
                 document_mask: bool = True) -> Step:
    """The pure masked-LM step (pretraining and SFT). Metrics: loss, tokens, grad_norm, lr."""
    return make_step(lm_terms(model, document_mask=document_mask), tx, schedule, denominator="tokens",
                     metrics=lm_metrics)
