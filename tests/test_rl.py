"""The RL arithmetic (flaxgpt.train.rl) against plain numpy loops and the facts of the CAI reference (section 12)."""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from flaxgpt.train import rl


def _ragged_mask(rng: np.random.Generator, b: int, t: int) -> tuple[np.ndarray, np.ndarray]:
    """A [b,t] mask with one contiguous response per row (random start, random length >= 1), and its last index."""
    mask = np.zeros((b, t), np.float32)
    last = np.zeros(b, np.int32)
    for i in range(b):
        start = rng.integers(1, t - 1)
        end = rng.integers(start, t)  # inclusive
        mask[i, start:end + 1] = 1
        last[i] = end
    return mask, last


def _gae_numpy(rewards, values, mask, gamma, lam):
    """Textbook GAE on each row's response slice, bootstrapping 0 after the last step."""
    adv = np.zeros_like(rewards)
    for i in range(rewards.shape[0]):
        idx = np.flatnonzero(mask[i])
        s, e = idx[0], idx[-1] + 1
        r, v = rewards[i, s:e], values[i, s:e]
        running = 0.0
        for t in reversed(range(e - s)):
            next_v = v[t + 1] if t + 1 < e - s else 0.0
            delta = r[t] + gamma * next_v - v[t]
            running = delta + gamma * lam * running
            adv[i, s + t] = running
    return adv, (adv + values) * mask


@pytest.mark.parametrize("gamma,lam", [(1.0, 0.95), (0.9, 0.8), (1.0, 1.0)])
def test_gae_matches_a_numpy_loop_on_ragged_masks(gamma, lam):
    rng = np.random.default_rng(0)
    mask, _ = _ragged_mask(rng, 6, 12)
    rewards = (rng.normal(size=mask.shape) * mask).astype(np.float32)
    values = rng.normal(size=mask.shape).astype(np.float32)  # garbage off the mask must not leak in
    adv, ret = rl.gae(jnp.asarray(rewards), jnp.asarray(values), jnp.asarray(mask), gamma, lam)
    ref_adv, ref_ret = _gae_numpy(rewards, values * mask, mask, gamma, lam)
    np.testing.assert_allclose(np.asarray(adv), ref_adv, atol=1e-5)
    np.testing.assert_allclose(np.asarray(ret), ref_ret, atol=1e-5)
    assert np.all(np.asarray(adv)[mask == 0] == 0)


@pytest.mark.parametrize("estimator", rl.KL_ESTIMATORS)
def test_kl_is_exactly_zero_when_policy_equals_reference(estimator):
    logp = jnp.asarray(np.random.default_rng(1).normal(size=(3, 7)) - 2.0, jnp.float32)
    assert np.all(np.asarray(rl.kl_penalty(logp, logp, estimator)) == 0.0)
    mask = jnp.ones((3, 7))
    rewards, kl = rl.ppo_rewards(jnp.zeros(3), logp, logp, mask, jnp.full(3, 6), 0.1, estimator)
    assert np.all(np.asarray(kl) == 0) and np.all(np.asarray(rewards) == 0)


def test_kl_estimators_agree_with_their_formulas():
    logp, ref = jnp.asarray([-1.0, -2.0, -0.5]), jnp.asarray([-1.5, -1.0, -0.5])
    d = np.asarray(logp - ref)
    np.testing.assert_allclose(rl.kl_penalty(logp, ref, "k1"), d, rtol=1e-6)
    np.testing.assert_allclose(rl.kl_penalty(logp, ref, "k3"), np.exp(-d) - 1 + d, rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(rl.kl_penalty(logp, ref, "abs"), np.abs(d), rtol=1e-6)
    np.testing.assert_allclose(rl.kl_penalty(logp, ref, "mse"), 0.5 * d**2, rtol=1e-6)
    assert np.all(np.asarray(rl.kl_penalty(logp, ref, "k3")) >= 0)
    with pytest.raises(ValueError, match="k2"):
        rl.kl_penalty(logp, ref, "k2")


def test_ppo_reward_lands_on_the_end_of_response_token_not_on_padding():
    # Row 0 ends at column 4 (end-of-response), then 3 pad slots; row 1 fills the row.
    mask = np.array([[0, 1, 1, 1, 1, 0, 0, 0], [0, 0, 1, 1, 1, 1, 1, 1]], np.float32)
    last = np.array([4, 7], np.int32)
    logp = jnp.zeros((2, 8))
    rewards, _ = rl.ppo_rewards(jnp.asarray([3.0, -2.0]), logp, logp, jnp.asarray(mask), jnp.asarray(last), 0.1, "k1")
    expected = np.zeros((2, 8), np.float32)
    expected[0, 4], expected[1, 7] = 3.0, -2.0
    np.testing.assert_array_equal(np.asarray(rewards), expected)
    # The KL term is per token and only on the response.
    ref = jnp.full((2, 8), -1.0)
    rewards, kl = rl.ppo_rewards(jnp.zeros(2), logp, ref, jnp.asarray(mask), jnp.asarray(last), 0.5, "k1")
    np.testing.assert_allclose(np.asarray(kl), mask)
    np.testing.assert_allclose(np.asarray(rewards), -0.5 * mask)


def test_dpo_sigmoid_loss_is_ln2_when_policy_equals_reference():
    pi = jnp.asarray([-10.0, -3.0, -7.5])
    other = jnp.asarray([-4.0, -9.0, -2.0])
    for label in (jnp.ones(3), jnp.asarray([1.0, 0.7, 0.0])):
        loss, r1, r2 = rl.dpo_loss(pi, other, pi, other, label, beta=0.1, loss="sigmoid", label_smoothing=0.0)
        np.testing.assert_allclose(np.asarray(loss), math.log(2), rtol=1e-6)
        assert np.all(np.asarray(r1) == 0) and np.all(np.asarray(r2) == 0)


def test_dpo_variants_match_their_formulas():
    beta, eps = 0.5, 0.1
    pf, ps, rf, rs = (jnp.asarray([x]) for x in (-3.0, -5.0, -4.0, -4.5))
    d = (-3.0 + 4.0) - (-5.0 + 4.5)  # 1.5
    sig = lambda x: 1 / (1 + math.exp(-x))
    hard = jnp.ones(1)
    loss, r1, r2 = rl.dpo_loss(pf, ps, rf, rs, hard, beta=beta, loss="sigmoid", label_smoothing=eps)
    cdpo = -(1 - eps) * math.log(sig(beta * d)) - eps * math.log(sig(-beta * d))
    np.testing.assert_allclose(float(loss[0]), cdpo, rtol=1e-5)
    np.testing.assert_allclose([float(r1[0]), float(r2[0])], [beta * 1.0, beta * -0.5], rtol=1e-6)
    # A soft label p is cDPO with eps = 1 - p.
    soft, _, _ = rl.dpo_loss(pf, ps, rf, rs, jnp.asarray([1 - eps]), beta=beta, loss="sigmoid", label_smoothing=0.0)
    np.testing.assert_allclose(float(soft[0]), cdpo, rtol=1e-5)
    hinge, _, _ = rl.dpo_loss(pf, ps, rf, rs, hard, beta=beta, loss="hinge", label_smoothing=0.0)
    np.testing.assert_allclose(float(hinge[0]), max(0.0, 1 - beta * d), rtol=1e-6)
    # IPO averages each log-ratio over its response length first (TRL).
    lengths = (jnp.asarray([2.0]), jnp.asarray([4.0]))
    ipo, _, _ = rl.dpo_loss(pf, ps, rf, rs, hard, beta=beta, loss="ipo", label_smoothing=0.0, lengths=lengths)
    np.testing.assert_allclose(float(ipo[0]), (1.0 / 2 - (-0.5) / 4 - 1 / (2 * beta)) ** 2, rtol=1e-6)
    # Swapping the pair and the label leaves every loss unchanged.
    for kind in rl.DPO_LOSSES:
        a, _, _ = rl.dpo_loss(pf, ps, rf, rs, jnp.asarray([0.8]), beta=beta, loss=kind, lengths=lengths)
        b, _, _ = rl.dpo_loss(ps, pf, rs, rf, jnp.asarray([0.2]), beta=beta, loss=kind, lengths=lengths[::-1])
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-6)
    with pytest.raises(ValueError, match="kto"):
        rl.dpo_loss(pf, ps, rf, rs, hard, beta=beta, loss="kto")


def test_soft_bce_is_bradley_terry_at_hard_labels():
    r1, r2 = jnp.asarray([2.0, -1.0, 0.3]), jnp.asarray([0.5, 1.0, 0.3])
    bt = -jax.nn.log_sigmoid(r1 - r2)
    np.testing.assert_allclose(np.asarray(rl.soft_bce(r1, r2, jnp.ones(3))), np.asarray(bt), rtol=1e-6)
    # label 0: the second is preferred, Bradley-Terry with the pair swapped
    np.testing.assert_allclose(np.asarray(rl.soft_bce(r1, r2, jnp.zeros(3))),
                               np.asarray(-jax.nn.log_sigmoid(r2 - r1)), rtol=1e-6)
    # a soft label's loss is minimised where sigmoid(d) = p
    d = jnp.linspace(-3, 3, 601)
    best = d[jnp.argmin(rl.soft_bce(d, jnp.zeros_like(d), jnp.full_like(d, 0.8)))]
    np.testing.assert_allclose(float(jax.nn.sigmoid(best)), 0.8, atol=0.01)


def test_token_logprobs_and_entropy_are_aligned_and_ignore_vocab_padding():
    rng = np.random.default_rng(2)
    vocab, padded, t = 5, 8, 6
    logits = rng.normal(size=(2, t, padded)).astype(np.float32)
    logits[..., vocab:] = 50.0  # padding columns must not take any probability
    tokens = rng.integers(0, vocab, (2, t)).astype(np.int32)
    temp = 0.7
    out = np.asarray(rl.token_logprobs(jnp.asarray(logits), jnp.asarray(tokens), vocab, temp))
    ent = np.asarray(rl.entropy(jnp.asarray(logits), vocab, temp))
    real = logits[..., :vocab] / temp
    logp = real - np.log(np.exp(real).sum(-1, keepdims=True))
    assert np.all(out[:, 0] == 0) and np.all(ent[:, 0] == 0)
    for i in range(2):
        for j in range(1, t):
            np.testing.assert_allclose(out[i, j], logp[i, j - 1, tokens[i, j]], rtol=1e-5)
            np.testing.assert_allclose(ent[i, j], -(np.exp(logp[i, j - 1]) * logp[i, j - 1]).sum(), rtol=1e-5)
    mask = np.array([[0, 0, 1, 1, 1, 0], [0, 1, 1, 0, 0, 0]], np.float32)
    np.testing.assert_allclose(np.asarray(rl.sequence_logps(jnp.asarray(out), jnp.asarray(mask))),
                               (out * mask).sum(-1), rtol=1e-6)


def test_whiten_and_explained_variance():
    rng = np.random.default_rng(3)
    mask, _ = _ragged_mask(rng, 8, 16)
    x = rng.normal(3.0, 5.0, size=mask.shape).astype(np.float32)
    w = np.asarray(rl.whiten(jnp.asarray(x), jnp.asarray(mask)))
    sel = w[mask > 0]
    np.testing.assert_allclose(sel.mean(), 0.0, atol=1e-5)
    np.testing.assert_allclose(sel.std(ddof=1), 1.0, atol=1e-4)
    assert np.all(w[mask == 0] == 0)
    kept = np.asarray(rl.whiten(jnp.asarray(x), jnp.asarray(mask), shift_mean=False))[mask > 0]
    np.testing.assert_allclose(kept.mean(), x[mask > 0].mean(), rtol=1e-4)
    np.testing.assert_allclose(float(rl.masked_mean(jnp.asarray(x), jnp.asarray(mask))), x[mask > 0].mean(),
                               rtol=1e-5)
    returns = jnp.asarray(x)
    ev = lambda v: float(rl.explained_variance(jnp.asarray(v), returns, jnp.asarray(mask)))
    np.testing.assert_allclose(ev(x), 1.0, atol=1e-6)  # perfect critic
    np.testing.assert_allclose(ev(np.full_like(x, x[mask > 0].mean())), 0.0, atol=1e-5)  # constant critic
    assert 0.5 < ev(x + rng.normal(0, 1.0, size=x.shape).astype(np.float32)) < 1.0


def test_ppo_losses_at_ratio_one_and_under_clipping():
    rng = np.random.default_rng(4)
    mask, _ = _ragged_mask(rng, 4, 10)
    m = jnp.asarray(mask)
    logp = jnp.asarray(rng.normal(size=mask.shape) - 2, jnp.float32)
    adv = rl.whiten(jnp.asarray(rng.normal(size=mask.shape), jnp.float32), m)
    values = jnp.asarray(rng.normal(size=mask.shape), jnp.float32)
    returns = values + adv
    out = rl.ppo_losses(logp, logp, values, values, adv, returns, m, clip=0.2, vf_clip=0.2)
    np.testing.assert_allclose(float(out["pg_loss"]), -float(rl.masked_mean(adv, m)), atol=1e-6)
    np.testing.assert_allclose(float(out["vf_loss"]), 0.5 * float(rl.masked_mean(adv**2, m)), rtol=1e-5)
    assert float(out["clipfrac"]) == 0 and float(out["approx_kl"]) == 0
    # Every ratio far outside [0.8, 1.2], in the direction the advantage rewards: all tokens clipped.
    moved = logp + jnp.sign(adv) * 1.0
    out = rl.ppo_losses(moved, logp, values, values, adv, returns, m, clip=0.2, vf_clip=0.2)
    assert float(out["clipfrac"]) == 1.0
    clipped = jnp.where(adv > 0, -1.2 * adv, -0.8 * adv)  # -A * clip(r): r stopped at 1.2 (A > 0) or 0.8 (A < 0)
    np.testing.assert_allclose(float(out["pg_loss"]), float(rl.masked_mean(clipped, m)), rtol=1e-5)
    # Huge log-probs off the mask leave the loss and its gradient finite.
    wild = jnp.where(m > 0, logp, 1e4)
    grad = jax.grad(lambda lp: rl.ppo_losses(lp, logp, values, values, adv, returns, m, clip=0.2,
                                             vf_clip=0.2)["pg_loss"])(wild)
    assert np.all(np.isfinite(np.asarray(grad)))


def test_adaptive_kl_coef_moves_toward_the_target():
    up = float(rl.adaptive_kl_coef(0.2, kl=12.0, target=6.0, n_steps=256, horizon=10000))
    down = float(rl.adaptive_kl_coef(0.2, kl=1.0, target=6.0, n_steps=256, horizon=10000))
    same = float(rl.adaptive_kl_coef(0.2, kl=6.0, target=6.0, n_steps=256, horizon=10000))
    assert down < same < up
    assert same == pytest.approx(0.2)
    np.testing.assert_allclose(up, 0.2 * (1 + 0.2 * 256 / 10000), rtol=1e-6)  # the error is clipped at +0.2
    np.testing.assert_allclose(down, 0.2 * (1 - 0.2 * 256 / 10000), rtol=1e-6)
