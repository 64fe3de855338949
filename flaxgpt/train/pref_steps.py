"""Steps of the preference stages (``train.stage`` pm, dpo, ppo) and the scorer of frozen models.

Batches are numpy on the host with a leading micro-batch axis A (as pretraining's), then [b, ...].
Position ids are the default 0..T-1 (rows are not packed). Arrays [.., T] are aligned to token
positions: the log-prob (and value) of token t come from the model's output at t-1 (``flaxgpt.train.rl``).

Pairs (pm, dpo), ``PAIR_KEYS`` (+ ``ref_logp`` for dpo):
  ``tokens`` int32 [A,b,2,T]   prompt + response + end-of-response token, right-padded with any id
  ``mask``   float32 [A,b,2,T] 1 at the response tokens, the end-of-response token included
  ``last``   int32 [A,b,2]     index of the end-of-response token
  ``label``  float32 [A,b]     P(first of the pair is preferred); 1.0 is a hard label
  ``ref_logp`` float32 [A,b,2] the frozen reference's summed response log-probs (``make_scorer``)
PPO rollouts, ``PPO_KEYS``: ``tokens`` int32 [A,b,T]; ``mask``, ``old_logp``, ``old_values``,
``advantages``, ``returns`` float32 [A,b,T].

Dropout is off in every forward here (as in TRL and N+): it would make pi/pi_old ratios and rewards noisy.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax
from jax.sharding import Mesh, NamedSharding

from flaxgpt.data.preferences import PAIR_KEYS
from flaxgpt.model.gpt import GPT
from flaxgpt.train.rl import (
    DPO_LOSSES,
    dpo_loss,
    entropy,
    ppo_losses,
    sequence_logps,
    shift_right,
    soft_bce,
    token_logprobs,
)
from flaxgpt.train.sharding import batch_sharding
from flaxgpt.train.state import TrainState
from flaxgpt.train.steps import accumulate_gradients

DPO_KEYS = (*PAIR_KEYS, "ref_logp")
PPO_KEYS = ("tokens", "mask", "old_logp", "old_values", "advantages", "returns")
Step = Callable[[TrainState, dict], tuple[TrainState, dict]]


def batch_shardings(mesh: Mesh, batch: dict[str, Any], leading: int = 1) -> dict[str, NamedSharding]:
    """Shardings for a batch dict: each array's batch axis (after ``leading`` axes) over ('data','fsdp')."""
    return {k: batch_sharding(mesh, np.ndim(v), leading=leading) for k, v in batch.items()}


# Forward passes, as functions of the module (flax ``apply(..., method=fn)``): one backbone pass each.
def _rewards_at(module: GPT, tokens: jax.Array, last: jax.Array) -> jax.Array:
    r = module.reward(module.hidden(tokens))
    return jnp.take_along_axis(r, last[:, None], axis=1)[:, 0]


def _logits_values(module: GPT, tokens: jax.Array) -> tuple[jax.Array, jax.Array]:
    h = module.hidden(tokens)
    return module.logits(h), module.value(h)


def _all_heads(module: GPT, tokens: jax.Array) -> tuple[jax.Array, jax.Array, jax.Array]:
    h = module.hidden(tokens)
    return module.logits(h), module.value(h), module.reward(h)


def _pair_sums(margin_first: jax.Array, label: jax.Array, **per_pair: tuple[jax.Array, jax.Array]) -> dict:
    """Sums over pairs: count, decisive (label != 0.5), correct (sign of the margin agrees with the label), the
    chosen-minus-rejected ``reward_margin``, and each (first, second) in ``per_pair`` oriented to chosen/rejected
    (the first is chosen when label >= 0.5)."""
    first_chosen = label >= 0.5
    decisive = label != 0.5
    correct = decisive & jnp.where(label > 0.5, margin_first > 0, margin_first < 0)
    sums = {"count": jnp.asarray(label.shape[0], jnp.float32), "decisive": jnp.sum(decisive.astype(jnp.float32)),
            "correct": jnp.sum(correct.astype(jnp.float32)),
            "reward_margin": jnp.sum(jnp.where(first_chosen, margin_first, -margin_first))}
    for name, (first, second) in per_pair.items():
        sums[f"{name}_chosen"] = jnp.sum(jnp.where(first_chosen, first, second))
        sums[f"{name}_rejected"] = jnp.sum(jnp.where(first_chosen, second, first))
    return jax.lax.stop_gradient(sums)


def _pm_terms(model: GPT) -> Callable[[Any, dict], tuple[jax.Array, dict]]:
    def terms(params, micro):
        tokens = micro["tokens"]
        b, _, t = tokens.shape
        r = model.apply({"params": params}, tokens.reshape(2 * b, t), micro["last"].reshape(2 * b),
                        method=_rewards_at).reshape(b, 2)
        label = micro["label"].astype(jnp.float32)
        losses = soft_bce(r[:, 0], r[:, 1], label)
        return jnp.sum(losses), _pair_sums(r[:, 0] - r[:, 1], label)

    return terms


def _check_dpo(beta: float, loss: str, label_smoothing: float) -> None:
    if loss not in DPO_LOSSES:
        raise ValueError(f"config key 'dpo.loss': {loss!r} not in {DPO_LOSSES}")
    if beta <= 0:
        raise ValueError(f"config key 'dpo.beta': must be > 0, got {beta}")
    if not 0 <= label_smoothing < 0.5:
        raise ValueError(f"config key 'dpo.label_smoothing': must be in [0, 0.5), got {label_smoothing}")


def _dpo_terms(model: GPT, beta: float, loss: str, label_smoothing: float):
    _check_dpo(beta, loss, label_smoothing)
    vocab = model.cfg.vocab_size

    def terms(params, micro):
        tokens, mask = micro["tokens"], micro["mask"].astype(jnp.float32)
        b, _, t = tokens.shape
        logits = model.apply({"params": params}, tokens.reshape(2 * b, t))
        logp = sequence_logps(token_logprobs(logits, tokens.reshape(2 * b, t), vocab), mask.reshape(2 * b, t))
        logp = logp.reshape(b, 2)
        ref = micro["ref_logp"].astype(jnp.float32)
        lengths = jnp.sum(mask, axis=-1)
        label = micro["label"].astype(jnp.float32)
        losses, r_first, r_second = dpo_loss(logp[:, 0], logp[:, 1], ref[:, 0], ref[:, 1], label, beta=beta,
                                             loss=loss, label_smoothing=label_smoothing,
                                             lengths=(lengths[:, 0], lengths[:, 1]))
        return jnp.sum(losses), _pair_sums(r_first - r_second, label, rewards=(r_first, r_second),
                                           logp=(logp[:, 0], logp[:, 1]))

    return terms


def _pair_metrics(loss_sum: jax.Array, sums: dict) -> dict:
    n = jnp.maximum(sums["count"], 1.0)
    metrics = {"loss": loss_sum / n, "accuracy": sums["correct"] / jnp.maximum(sums["decisive"], 1.0)}
    metrics.update({k: v / n for k, v in sums.items() if k not in ("count", "decisive", "correct")})
    return metrics


def _make_step(terms: Callable, denominator: str, metrics_fn: Callable, tx: optax.GradientTransformation,
               schedule: optax.Schedule) -> Step:
    """A step minimising sum(loss terms) / sums[denominator] over all micro-batches of the batch."""
    grad_fn = jax.value_and_grad(lambda params, micro, rng: terms(params, micro), has_aux=True)

    def step(state: TrainState, batch: dict[str, jax.Array]) -> tuple[TrainState, dict[str, jax.Array]]:
        rng = jax.random.fold_in(state.rng, state.step)
        (loss_sum, sums), grads = accumulate_gradients(grad_fn, state.params, batch, rng)
        grads = jax.tree.map(lambda g: g / jnp.maximum(sums[denominator], 1.0), grads)
        updates, opt_state = tx.update(grads, state.opt_state, state.params)
        params = optax.apply_updates(state.params, updates)
        metrics = {**metrics_fn(loss_sum, sums), "grad_norm": optax.tree.norm(grads), "lr": schedule(state.step)}
        return state.replace(step=state.step + 1, params=params, opt_state=opt_state), metrics

    return step


def make_pm_step(model: GPT, tx: optax.GradientTransformation, schedule: optax.Schedule) -> Step:
    """The preference-model step on a pair batch (``PAIR_KEYS``): soft BCE on the reward head's scores.

    The reward of a response is ``model.reward`` at its end-of-response token (``last``). Metrics: loss (mean
    per pair), accuracy (pairs with label 0.5 excluded), reward_margin (chosen - rejected), grad_norm, lr.
    """
    return _make_step(_pm_terms(model), "count", _pair_metrics, tx, schedule)


def make_dpo_step(model: GPT, tx: optax.GradientTransformation, schedule: optax.Schedule, *, beta: float,
                  loss: str = "sigmoid", label_smoothing: float = 0.0) -> Step:
    """The DPO step on a pair batch with ``ref_logp`` (``DPO_KEYS``); ``rl.dpo_loss`` with ``loss`` in DPO_LOSSES.

    Metrics (chosen = the first response when label >= 0.5): loss, accuracy (implicit reward margin agrees with
    the label), reward_margin, rewards_chosen/_rejected (beta * log-ratio), logp_chosen/_rejected (policy), grad_norm,
    lr.
    """
    return _make_step(_dpo_terms(model, beta, loss, label_smoothing), "count", _pair_metrics, tx, schedule)


def make_ppo_step(model: GPT, tx: optax.GradientTransformation, schedule: optax.Schedule, *, clip: float,
                  vf_clip: float, vf_coef: float, temperature: float) -> Step:
    """The PPO update on a rollout minibatch (``PPO_KEYS``): pg_loss + vf_coef * vf_loss, token means.

    Logits are divided by the sampling ``temperature`` (as the rollout's old_logp were). The value of position t
    is ``model.value`` at t-1. Metrics: loss, pg_loss, vf_loss, clipfrac, approx_kl, entropy, grad_norm, lr.
    """
    vocab = model.cfg.vocab_size

    def terms(params, micro):
        tokens, mask = micro["tokens"], micro["mask"].astype(jnp.float32)
        logits, v = model.apply({"params": params}, tokens, method=_logits_values)
        logp = token_logprobs(logits, tokens, vocab, temperature)
        out = ppo_losses(logp, micro["old_logp"], shift_right(v), micro["old_values"], micro["advantages"],
                         micro["returns"], mask, clip=clip, vf_clip=vf_clip)
        # Masked means times this micro-batch's token count are token sums: micro-batches then weigh by tokens.
        n = jnp.sum(mask)
        sums = {k: jax.lax.stop_gradient(x * n) for k, x in out.items()}
        sums["entropy"] = jnp.sum(jax.lax.stop_gradient(entropy(logits, vocab, temperature)) * mask)
        sums["tokens"] = n
        return (out["pg_loss"] + vf_coef * out["vf_loss"]) * n, sums

    def metrics(loss_sum, sums):
        n = jnp.maximum(sums["tokens"], 1.0)
        return {"loss": loss_sum / n, **{k: v / n for k, v in sums.items() if k != "tokens"}}

    return _make_step(terms, "tokens", metrics, tx, schedule)


def make_scorer(model: GPT, temperature: float = 1.0) -> Callable[[Any, jax.Array, jax.Array, jax.Array], dict]:
    """``score(params, tokens [B,T], mask [B,T], last [B]) -> {'logp', 'values', 'reward'}``, one forward pass.

    logp [B,T] are the tempered token log-probs and values [B,T] the value head, both aligned to token positions
    and 0 outside ``mask``; reward [B] is the reward head at ``last``. Pure: jit it (with the frozen params as an
    argument) to precompute DPO reference log-probs (sum logp over T), PPO rollout statistics and PM scores.
    """
    vocab = model.cfg.vocab_size

    def score(params: Any, tokens: jax.Array, mask: jax.Array, last: jax.Array) -> dict[str, jax.Array]:
        logits, v, r = model.apply({"params": params}, tokens, method=_all_heads)
        mask = mask.astype(jnp.float32)
        return {"logp": token_logprobs(logits, tokens, vocab, temperature) * mask,
                "values": shift_right(v) * mask,
                "reward": jnp.take_along_axis(r, last[:, None], axis=1)[:, 0]}

    return score


def make_pair_eval_step(stage: str, model: GPT, **hyper: Any) -> Callable[[Any, dict], dict]:
    """``eval(params, pair_batch) -> sums`` for validating pm or dpo on a pair batch without the A axis.

    ``hyper`` are make_dpo_step's beta, loss, label_smoothing for dpo. The sums add across batches:
    loss_sum, count (pairs), decisive (label != 0.5), correct, reward_margin (+ rewards_/logp_ chosen/rejected for
    dpo); mean loss = loss_sum / count, accuracy = correct / decisive.
    """
    if stage == "pm":
        terms = _pm_terms(model)
    elif stage == "dpo":
        terms = _dpo_terms(model, hyper["beta"], hyper.get("loss", "sigmoid"), hyper.get("label_smoothing", 0.0))
    else:
        raise ValueError(f"config key 'train.stage': {stage!r} has no pair evaluation (pm or dpo)")

    def evaluate(params: Any, batch: dict[str, jax.Array]) -> dict[str, jax.Array]:
        loss_sum, sums = terms(params, batch)
        return {"loss_sum": loss_sum, **sums}

    return evaluate
