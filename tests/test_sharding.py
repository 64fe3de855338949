"""Sharding: every mesh gives one device's losses, parameters sit where the rules say, accumulation is exact."""

from __future__ import annotations

import jax
import numpy as np
import pytest
from helpers import build, random_batch, run_steps, tiny_config
from jax.sharding import PartitionSpec as P

from flaxgpt.config import ConfigError
from flaxgpt.model.gpt import ModelConfig
from flaxgpt.train.context import check_mesh_fits
from flaxgpt.train.sharding import logical_rules, make_mesh, mesh_shape

MESHES = [(8, 1, 1), (1, 8, 1), (2, 2, 2), (1, 2, 4)]


def _config(mesh):
    c = tiny_config(vocab=512, seq_len=16)
    c.model.n_head = 8  # heads divisible by every tensor size
    c.mesh.data, c.mesh.fsdp, c.mesh.tensor = mesh
    return c


@pytest.fixture(scope="module")
def batches():
    rng = np.random.default_rng(0)
    return [random_batch(rng, 8, 16, 512) for _ in range(3)]


@pytest.fixture(scope="module")
def single_device(batches):
    return run_steps(_config((1, 1, 1)), batches, jax.devices()[:1])


def test_eight_devices_are_available():
    assert jax.device_count() == 8


@pytest.mark.parametrize("mesh", MESHES, ids=lambda m: "x".join(map(str, m)))
def test_every_mesh_gives_the_single_device_losses(mesh, batches, single_device):
    losses, state = run_steps(_config(mesh), batches, jax.devices())
    np.testing.assert_allclose(losses, single_device[0], atol=1e-5, rtol=0)
    # and the same parameters after three steps
    for a, b in zip(jax.tree.leaves(state.params), jax.tree.leaves(single_device[1].params), strict=True):
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), atol=2e-5)


def test_parameters_and_optimizer_state_are_sharded_as_the_rules_say():
    config = _config((1, 2, 4))
    _, mesh, state, _, _, _ = build(config, jax.devices())
    p = state.params
    expected = {
        ("wte", "embedding"): P("tensor", "fsdp"),
        ("wpe", "embedding"): P(None, "fsdp"),
        ("blocks", "c_attn", "kernel"): P(None, "fsdp", None, "tensor", None),
        ("blocks", "c_proj", "kernel"): P(None, "tensor", None, "fsdp"),
        ("blocks", "c_fc", "kernel"): P(None, "fsdp", "tensor"),
        ("blocks", "mlp_proj", "kernel"): P(None, "tensor", "fsdp"),
        ("ln_f", "scale"): P("fsdp"),
    }
    for path, spec in expected.items():
        leaf = p
        for k in path:
            leaf = leaf[k]
        assert leaf.sharding.spec == spec, path
    # Each device holds only its slice: [layers, D/fsdp, F/tensor] for the MLP kernel.
    fc = p["blocks"]["c_fc"]["kernel"]
    assert fc.addressable_shards[0].data.shape == (fc.shape[0], fc.shape[1] // 2, fc.shape[2] // 4)
    # Adam moments follow their parameters.
    mu_specs = {leaf.sharding.spec for leaf in jax.tree.leaves(state.opt_state) if leaf.ndim == 3}
    assert P(None, "fsdp", "tensor") in mu_specs


def test_gradient_accumulation_4x2_equals_one_batch_of_8():
    rng = np.random.default_rng(1)
    one = random_batch(rng, 8, 16, 512, accum=1)
    four = {k: v.reshape(4, 2, 16) for k, v in one.items()}
    c1, c4 = _config((1, 1, 1)), _config((1, 1, 1))
    c4.train.grad_accum = 4
    l1, s1 = run_steps(c1, [one, one], jax.devices()[:1])
    l4, s4 = run_steps(c4, [four, four], jax.devices()[:1])
    np.testing.assert_allclose(l4, l1, atol=1e-6)
    # Adam divides by sqrt(v): where a gradient is ~0, summation order alone moves the update, so the
    # bound is a small fraction of one step's size (lr = 3e-3) rather than float epsilon.
    for a, b in zip(jax.tree.leaves(s4.params), jax.tree.leaves(s1.params), strict=True):
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), atol=1e-4)


def test_mesh_shape_infers_one_axis_and_rejects_bad_products():
    assert mesh_shape([-1, 2, 1], 8) == (4, 2, 1)
    with pytest.raises(ValueError, match="needs 6 devices"):
        mesh_shape([3, 2, 1], 8)
    with pytest.raises(ValueError, match="not divisible"):
        mesh_shape([-1, 3, 1], 8)


def test_a_mesh_axis_that_does_not_divide_a_model_dimension_names_both_keys():
    config = tiny_config()  # 4 heads
    config.mesh.data, config.mesh.tensor = 1, 8
    model_cfg = ModelConfig.from_config(config.model)
    with pytest.raises(ConfigError, match="'model.n_head': 4 does not split over mesh.tensor=8"):
        check_mesh_fits(model_cfg, make_mesh(config.mesh), logical_rules(config.mesh.rules))
    config.mesh.data, config.mesh.tensor = 2, 4
    check_mesh_fits(model_cfg, make_mesh(config.mesh), logical_rules(config.mesh.rules))


def test_rules_reject_unknown_mesh_axes():
    with pytest.raises(ValueError, match="unknown mesh axis 'model'"):
        logical_rules([("mlp", "model")])
