"""Pure step functions: ``step(state, batch) -> (state, metrics)``, one per training stage.

Pretraining and SFT share ``pretrain_step``: the masked next-token loss, where SFT's mask keeps
only assistant tokens. A batch holds ``grad_accum`` micro-batches on a leading axis:
``inputs``/``targets``/``segment_ids``/``positions`` int32 [A, b, T] and ``weights`` float32 [A, b, T].
The preference stages (pm, dpo, ppo) live in ``flaxgpt.train.pref_steps`` and share
``accumulate_gradients``; ``make_train_step`` dispatches to all of them.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import optax

from flaxgpt.model.gpt import GPT
from flaxgpt.train.state import TrainState


def masked_nll(logits: jax.Array, targets: jax.Array, weights: jax.Array, vocab_size: int) -> tuple[jax.Array, ...]:
    """Sum of weighted next-token negative log-likelihoods, and the sum of weights.

    ``logits`` [..., V_padded] are computed in float32; the padding columns (ids >= vocab_size) are
    excluded from the softmax so the loss is exactly that of the real vocabulary.
    """
    logits = logits.astype(jnp.float32)
    v_padded = logits.shape[-1]
    if v_padded > vocab_size:
        logits = logits + jnp.where(jnp.arange(v_padded) < vocab_size, 0.0, -1e30)
    logz = jax.nn.logsumexp(logits, axis=-1)
    target_logit = jnp.take_along_axis(logits, targets[..., None], axis=-1)[..., 0]
    nll = (logz - target_logit) * weights
    return jnp.sum(nll), jnp.sum(weights)


def _forward(model: GPT, params: Any, micro: dict[str, jax.Array], *, document_mask: bool, train: bool,
             rng: jax.Array | None) -> jax.Array:
    kwargs = {}
    if document_mask:
        kwargs = dict(positions=micro["positions"], segment_ids=micro["segment_ids"])
    rngs = {"dropout": rng} if train and rng is not None else {}
    return model.apply({"params": params}, micro["inputs"], deterministic=not train, rngs=rngs, **kwargs)


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


def make_pretrain_step(model: GPT, tx: optax.GradientTransformation, schedule: optax.Schedule, *,
                       document_mask: bool = True) -> Callable[[TrainState, dict], tuple[TrainState, dict]]:
    """Builds the pure masked-LM step (pretraining and SFT).

    The gradient is that of the mean loss over every weighted token of all micro-batches, so
    ``grad_accum`` 4 x 2 sequences gives the same update as one batch of 8.
    """
    vocab = model.cfg.vocab_size
    use_dropout = model.cfg.dropout > 0

    def loss_fn(params, micro, rng):
        logits = _forward(model, params, micro, document_mask=document_mask, train=use_dropout, rng=rng)
        loss_sum, denom = masked_nll(logits, micro["targets"], micro["weights"], vocab)
        return loss_sum, denom

    grad_fn = jax.value_and_grad(loss_fn, has_aux=True)

    def step(state: TrainState, batch: dict[str, jax.Array]) -> tuple[TrainState, dict[str, jax.Array]]:
        rng = jax.random.fold_in(state.rng, state.step)
        (loss_sum, denom), grads = accumulate_gradients(grad_fn, state.params, batch, rng)
        denom = jnp.maximum(denom, 1.0)
        grads = jax.tree.map(lambda g: g / denom, grads)
        updates, opt_state = tx.update(grads, state.opt_state, state.params)
        params = optax.apply_updates(state.params, updates)
        metrics = {"loss": loss_sum / denom, "grad_norm": optax.tree.norm(grads), "lr": schedule(state.step),
                   "tokens": denom}
        return state.replace(step=state.step + 1, params=params, opt_state=opt_state), metrics

    return step


STAGES = ("pretrain", "sft", "pm", "dpo", "ppo")


def make_train_step(stage: str, model: GPT, tx: optax.GradientTransformation, schedule: optax.Schedule, *,
                    document_mask: bool = True,
                    config: Any | None = None) -> Callable[[TrainState, dict], tuple[TrainState, dict]]:
    """The pure step of training ``stage`` (``train.stage``).

    Pretraining and SFT are one function: the masked next-token loss. What differs is the batch: for
    SFT the loader's ``weights`` are the assistant-only loss mask of packed conversations. pm, dpo and ppo
    are in ``flaxgpt.train.pref_steps`` (their batches are documented there) and take their hyper-parameters
    from ``config.dpo`` / ``config.ppo`` of the run's ConfigDict (defaults when ``config`` is None).
    Raises ValueError naming ``train.stage`` for a stage without a step.
    """
    if stage in ("pretrain", "sft"):
        return make_pretrain_step(model, tx, schedule, document_mask=document_mask)
    if stage in ("pm", "dpo", "ppo"):
        from flaxgpt.config import default_config
        from flaxgpt.train import pref_steps  # imported here: pref_steps builds on this module

        config = config if config is not None else default_config()
        if stage == "pm":
            return pref_steps.make_pm_step(model, tx, schedule)
        if stage == "dpo":
            d = config.dpo
            return pref_steps.make_dpo_step(model, tx, schedule, beta=d.beta, loss=d.loss,
                                            label_smoothing=d.label_smoothing)
        p = config.ppo
        return pref_steps.make_ppo_step(model, tx, schedule, clip=p.clip, vf_clip=p.vf_clip, vf_coef=p.vf_coef,
                                        temperature=p.temperature)
    raise ValueError(f"config key 'train.stage': {stage!r} has no training step; expected one of {STAGES}")


def make_eval_step(model: GPT, *, document_mask: bool = True) -> Callable[[Any, dict], dict]:
    """``eval_step(params, batch) -> {'loss_sum', 'weights'}`` for a [b, T] batch (no micro-batch axis)."""
    vocab = model.cfg.vocab_size

    def eval_step(params: Any, batch: dict[str, jax.Array]) -> dict[str, jax.Array]:
        logits = _forward(model, params, batch, document_mask=document_mask, train=False, rng=None)
        loss_sum, denom = masked_nll(logits, batch["targets"], batch["weights"], vocab)
        return {"loss_sum": loss_sum, "weights": denom}

    return eval_step
