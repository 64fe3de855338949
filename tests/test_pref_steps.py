"""The pm, dpo and ppo steps: they learn synthetic preferences, match on a mesh, and accumulate exactly."""

from __future__ import annotations

import math

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from helpers import tiny_config

from flaxgpt.model.gpt import GPT, ModelConfig
from flaxgpt.train import rl
from flaxgpt.train.optim import lr_schedule, make_optimizer
from flaxgpt.train.scoring import make_scorer
from flaxgpt.train.sharding import batch_sharding, compile_step, logical_rules, make_mesh, put_batch
from flaxgpt.train.stages import dpo, get_stage, pm
from flaxgpt.train.stages.pairs import pair_sums
from flaxgpt.train.stages.ppo import KEYS as PPO_KEYS
from flaxgpt.train.state import create_train_state

VOCAB, T = 64, 16
PAD, EOR, SECRET = 0, 1, 2  # padding, end-of-response, the "leaked secret" token
TEXT = (4, VOCAB)  # ordinary tokens


def _config(stage: str, mesh=(1, 1, 1), **train):
    c = tiny_config(vocab=VOCAB, seq_len=T)
    c.train.stage = stage
    c.mesh.data, c.mesh.fsdp, c.mesh.tensor = mesh
    for k, v in train.items():
        c.train[k] = v
    return c


def _build(config, batch, devices):
    """(model, state, compiled step, batch shardings) of config.train.stage."""
    mesh = make_mesh(config.mesh, devices)
    rules = logical_rules(config.mesh.rules)
    model = GPT(ModelConfig.from_config(config.model))
    tx = make_optimizer(config.train)
    state, shardings = create_train_state(model, tx, config.train.seed, mesh, rules, T)
    sh = {k: batch_sharding(mesh, np.ndim(v), leading=1) for k, v in batch.items()}
    fn = get_stage(config.train.stage).make_step(model, tx, lr_schedule(config.train), config)
    return model, state, compile_step(fn, shardings, sh, mesh, rules), sh


def _sequence(rng, prompt, secret: bool):
    """prompt + response (+ the secret token somewhere when ``secret``) + end-of-response, right-padded."""
    resp = list(rng.integers(*TEXT, rng.integers(3, 7)))
    if secret:
        resp[rng.integers(len(resp))] = SECRET
    seq = list(prompt) + resp + [EOR]
    row = np.full(T, PAD, np.int32)
    row[: len(seq)] = seq
    mask = np.zeros(T, np.float32)
    mask[len(prompt): len(seq)] = 1
    return row, mask, len(seq) - 1


def synthetic_pairs(rng: np.random.Generator, n: int) -> dict[str, np.ndarray]:
    """n pairs [n,2,...] for one prompt each: a clean response (preferred) and one that leaks the secret, in a
    random order, so label = P(first preferred) is 1 or 0."""
    out = {"tokens": np.zeros((n, 2, T), np.int32), "mask": np.zeros((n, 2, T), np.float32),
           "last": np.zeros((n, 2), np.int32), "label": np.zeros(n, np.float32)}
    for i in range(n):
        prompt = rng.integers(*TEXT, rng.integers(2, 6))
        clean_first = bool(rng.integers(2))
        for j, secret in enumerate((not clean_first, clean_first)):
            out["tokens"][i, j], out["mask"][i, j], out["last"][i, j] = _sequence(rng, prompt, secret)
        out["label"][i] = float(clean_first)
    return out


def _accum(batch: dict, a: int = 1) -> dict:
    """[N, ...] -> [a, N/a, ...]."""
    return {k: v.reshape(a, v.shape[0] // a, *v.shape[1:]) for k, v in batch.items()}


def _ref_logp(model, params, pairs: dict) -> np.ndarray:
    """The frozen reference's summed response log-probs [n,2], via the scorer."""
    n = pairs["tokens"].shape[0]
    out = jax.jit(make_scorer(model))(params, pairs["tokens"].reshape(2 * n, T), pairs["mask"].reshape(2 * n, T),
                                      pairs["last"].reshape(2 * n))
    return np.asarray(out["logp"].sum(-1)).reshape(n, 2)


def test_pm_learns_to_reject_leaked_secrets():
    rng = np.random.default_rng(0)
    config = _config("pm", steps=60)
    train = [_accum(synthetic_pairs(rng, 32)) for _ in range(60)]
    held_out = synthetic_pairs(rng, 256)
    held_out["label"][:16] = 0.5  # ties: counted, but not in the accuracy
    model, state, step, sh = _build(config, train[0], jax.devices()[:1])
    for b in train:
        state, m = step(state, put_batch(b, sh))
    assert float(m["accuracy"]) > 0.9 and float(m["reward_margin"]) > 0
    sums = jax.jit(lambda p, b: pair_sums(pm.per_pair(model, config)(p, b)))(state.params, held_out)
    assert float(sums["count"]) == 256 and float(sums["decisive"]) == 240
    accuracy = float(sums["correct"]) / float(sums["decisive"])
    assert accuracy > 0.95, accuracy


def test_dpo_raises_the_chosen_over_rejected_margin():
    rng = np.random.default_rng(1)
    config = _config("dpo", steps=30)
    pairs = synthetic_pairs(rng, 30 * 32 + 128)
    pairs["ref_logp"] = np.zeros((len(pairs["label"]), 2), np.float32)
    model, state, step, sh = _build(config, _accum({k: v[:32] for k, v in pairs.items()}), jax.devices()[:1])
    pairs["ref_logp"] = _ref_logp(model, state.params, pairs)  # the reference is the starting policy
    train = [{k: v[i * 32:(i + 1) * 32] for k, v in pairs.items()} for i in range(30)]
    held_out = {k: v[-128:] for k, v in pairs.items()}
    evaluate = jax.jit(lambda p, b: pair_sums(dpo.per_pair(model, config)(p, b)))
    before = evaluate(state.params, held_out)
    np.testing.assert_allclose(float(before["loss_sum"]) / 128, math.log(2), atol=1e-4)
    metrics = []
    for b in train:
        state, m = step(state, put_batch(_accum(b), sh))
        metrics.append(jax.tree.map(float, m))
    np.testing.assert_allclose(metrics[0]["loss"], math.log(2), atol=1e-4)  # policy == reference at step 0
    assert abs(metrics[0]["reward_margin"]) < 1e-4
    after = evaluate(state.params, held_out)
    assert float(after["reward_margin"]) / 128 > 0.2
    assert float(after["correct"]) / 128 > 0.9
    assert float(after["loss_sum"]) < float(before["loss_sum"])
    assert metrics[-1]["rewards_chosen"] > metrics[-1]["rewards_rejected"]


def _rollout(rng: np.random.Generator, model, params, rows: int, temperature: float) -> dict[str, np.ndarray]:
    """A fixed rollout batch [rows, T] scored by the policy itself (so pi/pi_old starts at exactly 1)."""
    tokens = rng.integers(*TEXT, (rows, T)).astype(np.int32)
    mask = np.zeros((rows, T), np.float32)
    last = np.zeros(rows, np.int32)
    for i in range(rows):
        start, end = rng.integers(2, 7), rng.integers(9, T)
        mask[i, start:end + 1], last[i] = 1, end
    out = jax.jit(make_scorer(model, temperature))(params, tokens, mask, last)
    adv = rl.whiten(jnp.asarray(rng.normal(size=(rows, T)), jnp.float32), jnp.asarray(mask))
    return {"tokens": tokens, "mask": mask, "old_logp": np.asarray(out["logp"]),
            "old_values": np.asarray(out["values"]), "advantages": np.asarray(adv),
            "returns": np.asarray(out["values"] + adv)}


def test_ppo_step_reduces_the_clipped_loss_on_a_fixed_rollout():
    rng = np.random.default_rng(2)
    config = _config("ppo", lr=1e-4)
    shapes = {k: np.zeros((1, 8, T), np.int32 if k == "tokens" else np.float32) for k in PPO_KEYS}
    model, state, step, sh = _build(config, shapes, jax.devices()[:1])
    batch = _accum(_rollout(rng, model, state.params, 8, config.ppo.temperature))
    metrics = []
    for _ in range(12):  # PPO epochs over one rollout (the first step has lr 0: warmup)
        state, m = step(state, put_batch(batch, sh))
        metrics.append(jax.tree.map(float, m))
    first, last = metrics[0], metrics[-1]
    assert first["approx_kl"] < 1e-10 and first["clipfrac"] == 0  # the rollout's own policy
    assert 0 < first["entropy"] <= math.log(VOCAB) + 1e-4
    assert last["loss"] < first["loss"] - 0.05, (first, last)
    assert last["pg_loss"] < first["pg_loss"]
    assert all(0 <= m["clipfrac"] <= 0.5 and np.isfinite(m["loss"]) for m in metrics), metrics
    assert last["approx_kl"] > 0


def _stage_batch(stage: str, rng: np.random.Generator, n: int = 8) -> dict[str, np.ndarray]:
    if stage == "ppo":
        tokens = rng.integers(*TEXT, (n, T)).astype(np.int32)
        mask = np.zeros((n, T), np.float32)
        mask[:, 4:12] = 1
        f = lambda s=1.0, c=0.0: (rng.normal(c, s, (n, T)) * mask).astype(np.float32)
        return _accum({"tokens": tokens, "mask": mask, "old_logp": f(0.3, -4.5), "old_values": f(),
                       "advantages": f(), "returns": f()})
    b = synthetic_pairs(rng, n)
    b["label"][:2] = [0.7, 0.5]  # soft labels ride along
    if stage == "dpo":
        b["ref_logp"] = rng.normal(-30, 3, (n, 2)).astype(np.float32)
    return _accum(b)


FROZEN = {"pm": ("value_head",), "dpo": ("value_head", "reward_head"), "ppo": ("reward_head",)}


@pytest.mark.parametrize("stage", ["pm", "dpo", "ppo"])
def test_mesh_gives_the_single_device_metrics_and_params(stage):
    rng = np.random.default_rng(3)
    batches = [_stage_batch(stage, rng) for _ in range(2)]
    results = []
    for mesh, devices in (((1, 1, 1), jax.devices()[:1]), ((2, 2, 2), jax.devices())):
        config = _config(stage, mesh)
        config.dpo.loss = "ipo"  # dpo takes its loss from the run config
        _, state, step, sh = _build(config, batches[0], devices)
        heads = {k: jax.tree.map(np.array, state.params[k]) for k in ("value_head", "reward_head")}
        metrics = []
        for b in batches:
            state, m = step(state, put_batch(b, sh))
            metrics.append(jax.tree.map(float, m))
        for name in FROZEN[stage]:  # the stage's optax mask freezes these heads
            for a, b in zip(jax.tree.leaves(heads[name]), jax.tree.leaves(state.params[name]), strict=True):
                np.testing.assert_array_equal(a, np.asarray(b))
        results.append((metrics, jax.tree.map(np.asarray, state.params)))
    (m1, p1), (m8, p8) = results
    assert set(m1[0]) >= {"loss", "grad_norm", "lr"}
    for a, b in zip(m1, m8, strict=True):
        for k in a:
            np.testing.assert_allclose(b[k], a[k], atol=1e-5, rtol=1e-5, err_msg=f"{stage} {k}")
    for a, b in zip(jax.tree.leaves(p1), jax.tree.leaves(p8), strict=True):
        np.testing.assert_allclose(b, a, atol=2e-5)


def test_pm_accumulation_a2_equals_a1_with_the_doubled_batch():
    rng = np.random.default_rng(4)
    pairs = synthetic_pairs(rng, 8)
    pairs["label"][:3] = [0.8, 0.5, 0.3]
    out = []
    for a in (1, 2):
        batch = _accum(pairs, a)
        config = _config("pm", grad_accum=a)
        _, state, step, sh = _build(config, batch, jax.devices()[:1])
        ms = []
        for _ in range(2):
            state, m = step(state, put_batch(batch, sh))
            ms.append(jax.tree.map(float, m))
        out.append((ms, jax.tree.map(np.asarray, state.params)))
    (m1, p1), (m2, p2) = out
    for a, b in zip(m1, m2, strict=True):
        for k in a:
            np.testing.assert_allclose(b[k], a[k], atol=1e-6, rtol=1e-5, err_msg=k)
    for a, b in zip(jax.tree.leaves(p1), jax.tree.leaves(p2), strict=True):
        np.testing.assert_allclose(b, a, atol=1e-4)  # Adam near-zero gradients: see test_sharding


def test_scorer_aligns_logp_and_values_and_reads_the_reward_at_last():
    config = _config("ppo")
    model = GPT(ModelConfig.from_config(config.model))
    params = nn.unbox(model.init(jax.random.PRNGKey(0), jnp.zeros((1, T), jnp.int32))["params"])
    rng = np.random.default_rng(5)
    tokens = rng.integers(0, VOCAB, (3, T)).astype(np.int32)
    mask = np.zeros((3, T), np.float32)
    mask[:, 5:10] = 1
    last = np.array([9, 9, 9], np.int32)
    out = jax.jit(make_scorer(model, 0.7))(params, tokens, mask, last)
    logits = model.apply({"params": params}, tokens)
    heads = model.apply({"params": params}, tokens, method=lambda m, t: (m.value(m.hidden(t)), m.reward(m.hidden(t))))
    np.testing.assert_allclose(np.asarray(out["logp"]),
                               np.asarray(rl.token_logprobs(logits, tokens, VOCAB, 0.7)) * mask, atol=1e-5)
    np.testing.assert_allclose(np.asarray(out["values"])[:, 5:10], np.asarray(heads[0])[:, 4:9], atol=1e-5)
    assert np.all(np.asarray(out["values"])[mask == 0] == 0)
    np.testing.assert_allclose(np.asarray(out["reward"]), np.asarray(heads[1])[:, 9], atol=1e-5)


def test_bad_dpo_loss_and_unknown_stage_name_their_config_keys():
    config = _config("dpo")
    config.dpo.loss = "kto"
    model = GPT(ModelConfig.from_config(config.model))
    tx = make_optimizer(config.train)
    with pytest.raises(ValueError, match="dpo.loss"):
        get_stage("dpo").make_step(model, tx, lr_schedule(config.train), config)
    with pytest.raises(ValueError, match="train.stage.*registered: pretrain, sft"):
        get_stage("kto")
