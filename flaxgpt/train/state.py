"""The train state pytree and its sharded creation."""

from __future__ import annotations

from typing import Any

import flax
import flax.linen as nn
import jax
import jax.numpy as jnp
import optax
from jax.sharding import Mesh

from flaxgpt.model.gpt import GPT
from flaxgpt.train.sharding import logical_shardings, sharded_init


@flax.struct.dataclass
class TrainState:
    """Everything a step reads and writes; a plain pytree (checkpointed as is)."""

    step: jax.Array  # int32 scalar: optimizer steps taken
    params: Any
    opt_state: Any
    rng: jax.Array  # uint32[2]: dropout is folded from this and the step


def init_params(model: GPT, rng: jax.Array, seq_len: int) -> Any:
    """Boxed (logically annotated) parameters of ``model`` for a [1, seq_len] input."""
    return model.init(rng, jnp.zeros((1, seq_len), jnp.int32))["params"]


def _boxed_state_fn(model: GPT, tx: optax.GradientTransformation, seq_len: int):
    """rng -> a TrainState whose params (and Adam moments) are logically annotated boxes."""

    def init(rng):
        params_rng, state_rng = jax.random.split(rng)
        params = init_params(model, params_rng, seq_len)
        return TrainState(step=jnp.zeros((), jnp.int32), params=params, opt_state=tx.init(params), rng=state_rng)

    return init


def create_train_state(model: GPT, tx: optax.GradientTransformation, seed: int, mesh: Mesh,
                       rules, seq_len: int) -> tuple[TrainState, Any]:
    """A fresh, sharded TrainState and its shardings (no full copy of the params on any one device)."""
    return sharded_init(_boxed_state_fn(model, tx, seq_len), mesh, rules, jax.random.PRNGKey(seed))


def abstract_train_state(model: GPT, tx: optax.GradientTransformation, mesh: Mesh, rules,
                         seq_len: int) -> tuple[Any, Any]:
    """Shapes, dtypes and shardings of the state, without allocating it (for restoring checkpoints)."""
    boxed = jax.eval_shape(_boxed_state_fn(model, tx, seq_len), jax.random.PRNGKey(0))
    shardings = logical_shardings(boxed, mesh, rules)
    # ``shardings`` is a prefix of the state tree: optax's empty MaskedNode subtrees sit at its leaves.
    abstract = jax.tree.map(
        lambda s, x: jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=s) if isinstance(x, jax.ShapeDtypeStruct) else x,
        shardings, nn.unbox(boxed))
    return abstract, shardings
