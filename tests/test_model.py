"""The GPT itself: causality, initial loss, memorisation, packing, parameter counts, remat."""

from __future__ import annotations

import json
import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from helpers import random_batch, run_steps, tiny_config

from flaxgpt.config import load_config
from flaxgpt.model.gpt import GPT, ModelConfig, count_params, gpt2_param_count
from flaxgpt.train.steps import masked_nll

TINY = ModelConfig(vocab_size=200, max_len=32, n_layer=2, n_head=4, d_model=32)


def _init(cfg: ModelConfig, seq_len: int = 16):
    import flax.linen as nn

    return nn.unbox(GPT(cfg).init(jax.random.PRNGKey(0), jnp.zeros((1, seq_len), jnp.int32))["params"])


def test_param_tree_has_the_contract_keys_and_stacked_blocks():
    params = _init(TINY)
    assert set(params) == {"wte", "wpe", "blocks", "ln_f", "value_head", "reward_head"}
    assert params["wte"]["embedding"].shape == (256, 32)  # 200 padded up to a multiple of 128
    for leaf in jax.tree.leaves(params["blocks"]):
        assert leaf.shape[0] == TINY.n_layer


def test_changing_a_future_token_never_changes_earlier_logits():
    params = _init(TINY)
    model = GPT(TINY)
    tokens = np.random.default_rng(0).integers(0, 200, (2, 16)).astype(np.int32)
    base = model.apply({"params": params}, tokens)
    for t in (3, 9, 15):
        changed = tokens.copy()
        changed[:, t] = (changed[:, t] + 7) % 200
        out = model.apply({"params": params}, changed)
        np.testing.assert_array_equal(np.asarray(out[:, :t]), np.asarray(base[:, :t]))
        assert not np.allclose(out[:, t:], base[:, t:])


def test_initial_loss_is_close_to_log_vocab():
    cfg = ModelConfig(vocab_size=1000, max_len=32, n_layer=2, n_head=4, d_model=64)
    params = _init(cfg)
    tokens = np.random.default_rng(1).integers(0, 1000, (4, 33)).astype(np.int32)
    logits = GPT(cfg).apply({"params": params}, tokens[:, :-1])
    loss, n = masked_nll(logits, tokens[:, 1:], jnp.ones((4, 32)), cfg.vocab_size)
    assert abs(float(loss / n) - math.log(1000)) < 0.1


def test_padded_vocabulary_columns_are_outside_the_softmax():
    logits = jnp.zeros((1, 1, 256))
    loss, _ = masked_nll(logits, jnp.zeros((1, 1), jnp.int32), jnp.ones((1, 1)), vocab_size=200)
    assert float(loss) == pytest.approx(math.log(200), rel=1e-6)


def test_tiny_model_overfits_one_batch():
    config = tiny_config(vocab=64, seq_len=16)
    config.train.lr = 1e-2
    config.train.weight_decay = 0.0
    batch = random_batch(np.random.default_rng(0), 4, 16, 64)
    losses, _ = run_steps(config, [batch] * 150)
    assert losses[0] > 3.5
    assert losses[-1] < 0.05


def test_packed_documents_give_the_same_logits_as_separate_ones():
    params = _init(TINY)
    model = GPT(TINY)
    rng = np.random.default_rng(2)
    a, b = rng.integers(0, 200, 6).astype(np.int32), rng.integers(0, 200, 10).astype(np.int32)
    packed = np.concatenate([a, b])[None]
    seg = np.array([[1] * 6 + [2] * 10], np.int32)
    pos = np.array([list(range(6)) + list(range(10))], np.int32)
    out = model.apply({"params": params}, packed, positions=pos, segment_ids=seg)
    alone_a = model.apply({"params": params}, a[None])
    alone_b = model.apply({"params": params}, b[None])
    np.testing.assert_allclose(out[0, :6], alone_a[0], atol=1e-5)
    np.testing.assert_allclose(out[0, 6:], alone_b[0], atol=1e-5)


def test_gpt2_124m_config_counts_the_published_parameters():
    config = load_config("experiments/gpt2_124m.py", ["model.dtype=float32"])
    cfg = ModelConfig.from_config(config.model)
    assert cfg.vocab_size == 50257
    assert gpt2_param_count(cfg) == 124_439_808
    shapes = jax.eval_shape(lambda r: GPT(cfg).init(r, jnp.zeros((1, 8), jnp.int32)), jax.random.PRNGKey(0))
    import flax.linen as nn

    # The real tree: padded vocabulary plus the two scalar heads.
    assert count_params(nn.unbox(shapes["params"])) == gpt2_param_count(cfg, cfg.vocab_padded, heads=True)


@pytest.mark.parametrize("remat", ["full", "dots"])
def test_remat_policies_do_not_change_the_loss(remat):
    batch = random_batch(np.random.default_rng(3), 4, 16, 256)
    base, _ = run_steps(tiny_config(), [batch] * 2)
    again, _ = run_steps(tiny_config(remat=remat), [batch] * 2)
    np.testing.assert_allclose(again, base, rtol=1e-5)


def test_bfloat16_compute_keeps_float32_params_and_trains():
    config = tiny_config(dtype="bfloat16")
    batch = random_batch(np.random.default_rng(4), 4, 16, 256)
    losses, state = run_steps(config, [batch] * 5)
    assert all(math.isfinite(x) for x in losses) and losses[-1] < losses[0]
    assert state.params["blocks"]["c_fc"]["kernel"].dtype == jnp.float32


def test_cpu_peak_keeps_the_best_reading_per_machine(tmp_path):
    from flaxgpt.train import mfu

    cache = tmp_path / "peak.json"
    first = mfu.best_known_matmul_peak(cache)
    assert first > 0 and cache.exists()
    key = next(iter(json.loads(cache.read_text())))
    cache.write_text(json.dumps({key: first * 10}))  # an earlier, quieter reading
    assert mfu.best_known_matmul_peak(cache) == first * 10
    cache.write_text("not json")  # a damaged cache is measured over
    assert mfu.best_known_matmul_peak(cache) == first
