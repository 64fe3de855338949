"""The arithmetic of preference learning and PPO, as pure ``jnp`` functions (no model).

Alignment convention, shared by every function here and by the stages (``flaxgpt.train.stages``): arrays
[..., T] are indexed by *token position*. The log-probability, entropy and value for position t
come from the model's output at t-1 (the state before token t was chosen), so column 0 is always 0.
A ``mask`` [..., T] is 1 at the response tokens (the end-of-response token included) and 0 at the
prompt and at padding.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from flaxgpt.config import DPO_LOSSES, KL_ESTIMATORS
from flaxgpt.model.logprobs import log_softmax, target_logprobs


def _pad_front(x: jax.Array) -> jax.Array:
    """[..., T-1] -> [..., T] with a zero column in front: output at t-1 becomes the value of position t."""
    return jnp.pad(x, [(0, 0)] * (x.ndim - 1) + [(1, 0)])


def shift_right(x: jax.Array) -> jax.Array:
    """[..., T] per-output values (logits position t) -> [..., T] per-token values (column t = x[..., t-1], 0 at 0)."""
    return _pad_front(x[..., :-1])


def token_logprobs(logits: jax.Array, tokens: jax.Array, vocab_size: int, temperature: float = 1.0) -> jax.Array:
    """log pi(tokens[..., t] | tokens[..., :t]) for t >= 1 and 0 at t = 0: [..., T] from logits [..., T, V_padded]."""
    return _pad_front(target_logprobs(logits[..., :-1, :], tokens[..., 1:], vocab_size, temperature))


def entropy(logits: jax.Array, vocab_size: int, temperature: float = 1.0) -> jax.Array:
    """Entropy [..., T] of the tempered next-token distribution that chose token t (column 0 is 0)."""
    logp = log_softmax(logits[..., :-1, :], vocab_size, temperature)
    # Padding columns have p = 0 exactly; `where` keeps 0 * (-1e30) out of the sum.
    real = jnp.arange(logp.shape[-1]) < vocab_size
    return _pad_front(-jnp.sum(jnp.where(real, jnp.exp(logp) * logp, 0.0), axis=-1))


def sequence_logps(token_logp: jax.Array, mask: jax.Array) -> jax.Array:
    """Sum of the token log-probs [..., T] over the masked (response) positions -> [...]."""
    return jnp.sum(jnp.where(mask > 0, token_logp, 0.0), axis=-1)


def masked_mean(x: jax.Array, mask: jax.Array, axis=None) -> jax.Array:
    """Mean of ``x`` over positions where ``mask`` > 0 (0 when there are none)."""
    return jnp.sum(jnp.where(mask > 0, x, 0.0), axis=axis) / jnp.maximum(jnp.sum(mask, axis=axis), 1.0)


def _masked_var(x: jax.Array, mask: jax.Array) -> jax.Array:
    # Unbiased (Bessel-corrected) over the masked positions, as TRL's masked_var.
    n = jnp.sum(mask)
    var = masked_mean(jnp.square(x - masked_mean(x, mask)), mask)
    return var * n / jnp.maximum(n - 1.0, 1.0)


def whiten(x: jax.Array, mask: jax.Array, shift_mean: bool = True) -> jax.Array:
    """(x - mean) / std over the masked positions (mean kept when not ``shift_mean``); 0 outside the mask."""
    mean = masked_mean(x, mask)
    out = (x - mean) * jax.lax.rsqrt(_masked_var(x, mask) + 1e-8)
    if not shift_mean:
        out = out + mean
    return jnp.where(mask > 0, out, 0.0)


def explained_variance(values: jax.Array, returns: jax.Array, mask: jax.Array) -> jax.Array:
    """1 - Var[returns - values] / Var[returns] over the masked positions (1 = perfect critic, <= 0 = useless)."""
    var_r = _masked_var(returns, mask)
    return 1.0 - _masked_var(returns - values, mask) / jnp.maximum(var_r, 1e-8)


def soft_bce(r_first: jax.Array, r_second: jax.Array, label: jax.Array) -> jax.Array:
    """Per-pair -[p log sig(d) + (1-p) log sig(-d)], d = r_first - r_second, p = P(first preferred).

    At p = 1 this is the Bradley-Terry loss -log sig(d) (HH Eq. 4.2); soft p are CAI's normalised AI labels.
    """
    d = r_first - r_second
    return -(label * jax.nn.log_sigmoid(d) + (1.0 - label) * jax.nn.log_sigmoid(-d))


def dpo_loss(pi_first: jax.Array, pi_second: jax.Array, ref_first: jax.Array, ref_second: jax.Array,
             label: jax.Array, *, beta: float, loss: str, label_smoothing: float = 0.0,
             lengths: tuple[jax.Array, jax.Array] | None = None) -> tuple[jax.Array, jax.Array, jax.Array]:
    """DPO loss per pair, and the implicit rewards beta * (pi - ref) of the first and second response.

    ``pi_*``/``ref_*`` [B] are summed response log-probs of the policy and the frozen reference, ``label`` [B]
    = P(first preferred). Labels enter through one target q = p (1 - eps) + (1 - p) eps, eps =
    ``label_smoothing``: with a hard label and eps this is cDPO (robust) -(1-eps) log sig(b D) - eps log sig(-b D);
    with a soft label p and eps = 0 it is cDPO with a per-pair eps = 1 - p (the soft-label BCE). Each loss is the
    q-weighted mix of its value for the two orders (D and -D):
      sigmoid: -log sig(beta D);  hinge: relu(1 - beta D);  ipo: (D - 1/(2 beta))^2.
    For ipo, ``lengths`` (response token counts of first and second) divide each log-ratio first, i.e. the
    average per-token log-ratio, as TRL does (confirmed with the IPO authors); without it D is unnormalised.
    """
    if loss not in DPO_LOSSES:
        raise ValueError(f"DPO loss {loss!r} not in {DPO_LOSSES}")
    h_first, h_second = pi_first - ref_first, pi_second - ref_second
    q = label * (1.0 - label_smoothing) + (1.0 - label) * label_smoothing
    if loss == "sigmoid":
        losses = soft_bce(beta * h_first, beta * h_second, q)
    elif loss == "hinge":
        d = beta * (h_first - h_second)
        losses = q * jax.nn.relu(1.0 - d) + (1.0 - q) * jax.nn.relu(1.0 + d)
    else:
        if lengths is not None:
            h_first = h_first / jnp.maximum(lengths[0], 1.0)
            h_second = h_second / jnp.maximum(lengths[1], 1.0)
        d, target = h_first - h_second, 1.0 / (2.0 * beta)
        losses = q * jnp.square(d - target) + (1.0 - q) * jnp.square(-d - target)
    rewards = jax.lax.stop_gradient((beta * (pi_first - ref_first), beta * (pi_second - ref_second)))
    return losses, rewards[0], rewards[1]


def kl_penalty(logp: jax.Array, ref_logp: jax.Array, estimator: str) -> jax.Array:
    """Per-token estimate of KL(pi || ref) from sampled-token log-probs: k1 | k3 | abs | mse (see KL_ESTIMATORS).

    k1 = logp - ref (unbiased, can be negative); k3 = exp(ref - logp) - 1 - (ref - logp) (unbiased, >= 0);
    abs = |logp - ref|; mse = (logp - ref)^2 / 2. All are exactly 0 where logp == ref.
    """
    log_ratio = logp - ref_logp
    if estimator == "k1":
        return log_ratio
    if estimator == "k3":
        return jnp.expm1(-log_ratio) + log_ratio
    if estimator == "abs":
        return jnp.abs(log_ratio)
    if estimator == "mse":
        return 0.5 * jnp.square(log_ratio)
    raise ValueError(f"KL estimator {estimator!r} not in {KL_ESTIMATORS}")


def ppo_rewards(score: jax.Array, logp: jax.Array, ref_logp: jax.Array, mask: jax.Array, last: jax.Array,
                kl_coef: float | jax.Array, estimator: str) -> tuple[jax.Array, jax.Array]:
    """Per-token rewards [B,T] = -kl_coef * KL on the response, plus ``score`` [B] at column ``last`` [B].

    ``last`` is the end-of-response token (the last masked position), never a padding slot after it
    (TRL issue #3750 put the score on the first pad). Returns (rewards, kl), both 0 outside the mask.
    """
    kl = jnp.where(mask > 0, kl_penalty(logp, ref_logp, estimator), 0.0)
    rewards = -kl_coef * kl
    rewards = rewards.at[jnp.arange(rewards.shape[0]), last].add(score)
    return rewards, kl


def gae(rewards: jax.Array, values: jax.Array, mask: jax.Array, gamma: float,
        lam: float) -> tuple[jax.Array, jax.Array]:
    """Generalised advantage estimation over the masked (contiguous) response steps of [B,T] arrays.

    delta_t = r_t + gamma * V_{t+1} - V_t and A_t = delta_t + gamma * lam * A_{t+1}, where V and A after the
    last response step are 0 (the episode ends there). Returns (advantages, returns = advantages + values),
    both 0 outside the mask.
    """
    m = (mask > 0).astype(jnp.float32)
    xs = tuple(jnp.moveaxis(x.astype(jnp.float32), -1, 0) for x in (rewards, values, m))

    def back(carry, x):
        next_v, next_a = carry
        r, v, mt = x
        a = (r + gamma * next_v - v + gamma * lam * next_a) * mt
        # Off the response the carry resets, so the step before it bootstraps from 0.
        return (v * mt, a), a

    zeros = jnp.zeros(rewards.shape[:-1], jnp.float32)
    _, adv = jax.lax.scan(back, (zeros, zeros), xs, reverse=True)
    adv = jnp.moveaxis(adv, 0, -1)
    return adv, (adv + values) * m


def ppo_losses(logp: jax.Array, old_logp: jax.Array, values: jax.Array, old_values: jax.Array,
               advantages: jax.Array, returns: jax.Array, mask: jax.Array, *, clip: float,
               vf_clip: float) -> dict[str, jax.Array]:
    """Clipped PPO objectives, masked means over the response tokens of [B,T] arrays.

    pg_loss = mean max(-A r, -A clip(r, 1 +- clip)), r = exp(logp - old_logp);
    vf_loss = 0.5 mean max((v - R)^2, (clip(v, v_old +- vf_clip) - R)^2); clipfrac = share of tokens where the
    clipped policy term is the larger one; approx_kl = 0.5 mean (logp - old_logp)^2.
    """
    # Keep the ratio finite off the mask (a where after an overflowing exp would still leak NaN gradients).
    log_ratio = jnp.where(mask > 0, logp - old_logp, 0.0)
    ratio = jnp.exp(log_ratio)
    pg1 = -advantages * ratio
    pg2 = -advantages * jnp.clip(ratio, 1.0 - clip, 1.0 + clip)
    v_clipped = old_values + jnp.clip(values - old_values, -vf_clip, vf_clip)
    vf = jnp.maximum(jnp.square(values - returns), jnp.square(v_clipped - returns))
    return {
        "pg_loss": masked_mean(jnp.maximum(pg1, pg2), mask),
        "vf_loss": 0.5 * masked_mean(vf, mask),
        "clipfrac": jax.lax.stop_gradient(masked_mean((pg2 > pg1).astype(jnp.float32), mask)),
        "approx_kl": jax.lax.stop_gradient(0.5 * masked_mean(jnp.square(log_ratio), mask)),
    }


def adaptive_kl_coef(coef: float | jax.Array, kl: float | jax.Array, target: float, n_steps: int,
                     horizon: int) -> jax.Array:
    """The next KL coefficient (old TRL AdaptiveKLController): coef * (1 + clip(kl/target - 1, +-0.2) * n/horizon).

    ``kl`` is the measured KL per response, ``n_steps`` the number of samples since the last update.
    """
    err = jnp.clip(kl / target - 1.0, -0.2, 0.2)
    return coef * (1.0 + err * n_steps / horizon)


# A comparison counts toward accuracy when its label is at least this far from 0.5: a soft label of 0.51 (a
# labeller with no opinion, e.g. one that always picks the same position) says nothing about which is better.
DECISIVE = 0.1


def pair_sums(loss: jax.Array, margin: jax.Array, label: jax.Array,
              **per_pair: tuple[jax.Array, jax.Array]) -> dict[str, jax.Array]:
    """Sums over pairs [b] for the pair metrics: loss_sum, count, decisive (|label - 0.5| >= DECISIVE), correct
    (decisive, and the sign of ``margin`` = score(first) - score(second) agrees with the label), reward_margin
    (chosen minus rejected), and each (first, second) of ``per_pair`` oriented to ``NAME_chosen``/``NAME_rejected``
    (the first response is the chosen one when label >= 0.5). Sums add across batches."""
    label = label.astype(jnp.float32)
    first_chosen = label >= 0.5
    decisive = jnp.abs(label - 0.5) >= DECISIVE
    correct = decisive & jnp.where(label > 0.5, margin > 0, margin < 0)
    sums = {"loss_sum": jnp.sum(loss), "count": jnp.asarray(label.shape[0], jnp.float32),
            "decisive": jnp.sum(decisive.astype(jnp.float32)), "correct": jnp.sum(correct.astype(jnp.float32)),
            "reward_margin": jnp.sum(jnp.where(first_chosen, margin, -margin))}
    for name, (first, second) in per_pair.items():
        sums[f"{name}_chosen"] = jnp.sum(jnp.where(first_chosen, first, second))
        sums[f"{name}_rejected"] = jnp.sum(jnp.where(first_chosen, second, first))
    return jax.lax.stop_gradient(sums)


def pair_metrics(sums: dict[str, jax.Array]) -> dict[str, jax.Array]:
    """``pair_sums`` (added over any number of pairs) -> loss and every other sum per pair; accuracy over the
    decisive pairs only (NaN when there are none); the decisive count itself."""
    n = jnp.maximum(sums["count"], 1.0)
    out = {"loss": sums["loss_sum"] / n,
           "accuracy": jnp.where(sums["decisive"] > 0, sums["correct"] / jnp.maximum(sums["decisive"], 1.0), jnp.nan),
           "decisive": sums["decisive"]}
    out.update({k: v / n for k, v in sums.items() if k not in ("loss_sum", "count", "decisive", "correct")})
    return out
