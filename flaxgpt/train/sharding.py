"""Device mesh ('data', 'fsdp', 'tensor'), logical-axis rules, sharded init and the one compiler (``compile_fn``).

Parameters carry logical axis names (see ``flaxgpt.model.gpt``); ``config.mesh.rules`` maps each name
to mesh axes. Batches are split over ('data', 'fsdp'). Any mesh whose sizes multiply to the
device count computes the same loss as one device.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Callable, Sequence
from typing import Any

import flax.linen as nn
import jax
import numpy as np
from jax.experimental import mesh_utils
from jax.sharding import Mesh, NamedSharding, PartitionSpec

MESH_AXES = ("data", "fsdp", "tensor")
BATCH_AXES = ("data", "fsdp")


def mesh_shape(sizes: Sequence[int], n_devices: int) -> tuple[int, ...]:
    """Resolves one -1 in ``sizes`` so that the product equals ``n_devices``; raises ValueError otherwise."""
    sizes = list(sizes)
    known = math.prod(s for s in sizes if s != -1)
    if -1 in sizes:
        if n_devices % known:
            raise ValueError(f"mesh {sizes}: {n_devices} devices are not divisible by {known}")
        sizes[sizes.index(-1)] = n_devices // known
    if math.prod(sizes) != n_devices:
        raise ValueError(f"mesh {dict(zip(MESH_AXES, sizes, strict=True))} needs {math.prod(sizes)} devices, "
                         f"but {n_devices} are available (set one axis to -1 to infer it)")
    return tuple(sizes)


def make_mesh(mesh_cfg: Any, devices: Sequence[jax.Device] | None = None) -> Mesh:
    """Builds the ('data','fsdp','tensor') mesh from ``config.mesh`` over all (or the given) devices."""
    devices = list(devices if devices is not None else jax.devices())
    shape = mesh_shape([mesh_cfg.data, mesh_cfg.fsdp, mesh_cfg.tensor], len(devices))
    try:  # topology-aware placement on TPU/GPU slices
        grid = mesh_utils.create_device_mesh(shape, devices=devices)
    except (ValueError, NotImplementedError, AssertionError):
        grid = np.array(devices).reshape(shape)
    return Mesh(grid, MESH_AXES)


def logical_rules(rules_cfg: Sequence[Sequence[str]]) -> tuple[tuple[str, Any], ...]:
    """Config rules ('embed', 'fsdp'), ('act_batch', 'data,fsdp'), ('kv', '') -> flax logical axis rules."""
    out = []
    for logical, mesh_axes in rules_cfg:
        axes = tuple(a.strip() for a in mesh_axes.split(",") if a.strip())
        for a in axes:
            if a not in MESH_AXES:
                raise ValueError(f"mesh.rules: {logical!r} maps to unknown mesh axis {a!r} (axes: {MESH_AXES})")
        out.append((logical, None if not axes else axes[0] if len(axes) == 1 else axes))
    return tuple(out)


def logical_shardings(boxed_tree: Any, mesh: Mesh, rules: Sequence[tuple[str, Any]]) -> Any:
    """NamedShardings for a (possibly abstract) tree whose leaves may be nn.LogicallyPartitioned.

    The result has the structure of the *unboxed* tree; unannotated leaves are replicated.
    """
    specs = nn.get_partition_spec(boxed_tree)
    return nn.logical_to_mesh_sharding(specs, mesh, rules)


def batch_sharding(mesh: Mesh, ndim: int = 2, leading: int = 0) -> NamedSharding:
    """Sharding for batch arrays: the batch axis (after ``leading`` unsharded axes) over ('data','fsdp')."""
    spec = [None] * ndim
    spec[leading] = BATCH_AXES
    return NamedSharding(mesh, PartitionSpec(*spec))


def replicated(mesh: Mesh) -> NamedSharding:
    return NamedSharding(mesh, PartitionSpec())


def sharded_init(init_fn: Callable[..., Any], mesh: Mesh, rules: Sequence[tuple[str, Any]], *args) -> tuple[Any, Any]:
    """Runs ``init_fn(*args)`` (which returns a boxed tree) directly into its shardings.

    No device ever holds a full copy of the parameters: the jitted init writes each shard where
    it lives. Returns (unboxed tree, its shardings).
    """
    abstract = jax.eval_shape(init_fn, *args)
    shardings = logical_shardings(abstract, mesh, rules)
    # No mesh or rules context here: flax's DenseGeneral reshapes boxed kernels during init, and
    # constraining those intermediate shapes fails; out_shardings alone place every leaf.
    tree = jax.jit(lambda *a: nn.unbox(init_fn(*a)), out_shardings=shardings)(*args)
    return tree, shardings


class Compiled:
    """A jitted function that runs (and lowers) inside its mesh and logical-axis rules: what ``compile_fn`` returns."""

    def __init__(self, jitted: Any, mesh: Mesh | None, rules: Sequence[tuple[str, Any]] | None):
        self.jitted, self.mesh, self.rules = jitted, mesh, rules

    def _context(self) -> contextlib.ExitStack:
        stack = contextlib.ExitStack()
        if self.mesh is not None:
            stack.enter_context(jax.set_mesh(self.mesh))
            stack.enter_context(nn.logical_axis_rules(self.rules or ()))
        return stack

    def __call__(self, *args, **kwargs):
        with self._context():
            return self.jitted(*args, **kwargs)

    def lower(self, *args, **kwargs):
        """``jax.jit(...).lower`` inside the mesh context (then ``.compile()``)."""
        with self._context():
            return self.jitted.lower(*args, **kwargs)

    def _cache_size(self) -> int:
        return self.jitted._cache_size()


def compile_fn(fn: Callable, mesh: Mesh | None = None, rules: Sequence[tuple[str, Any]] | None = None, *,
               in_shardings: Any = None, out_shardings: Any = None, donate_argnums: int | tuple[int, ...] = (),
               static_argnames: str | tuple[str, ...] = ()) -> Compiled:
    """The one way flaxgpt compiles a function for devices: train steps, evaluation, scoring and decoding.

    ``jax.jit`` with the given in/out shardings (None: let jit infer them from the inputs) and donated
    arguments; every call and lowering happens inside ``mesh`` with the logical-axis ``rules`` active, so the
    model's activation constraints resolve to mesh axes. ``mesh`` None compiles for the inputs' own devices.
    """
    kwargs: dict[str, Any] = {"donate_argnums": donate_argnums, "static_argnames": static_argnames}
    if in_shardings is not None:
        kwargs["in_shardings"] = in_shardings
    if out_shardings is not None:
        kwargs["out_shardings"] = out_shardings
    return Compiled(jax.jit(fn, **kwargs), mesh, rules)


def compile_step(step_fn: Callable, state_shardings: Any, batch_shardings: Any, mesh: Mesh,
                 rules: Sequence[tuple[str, Any]]) -> Compiled:
    """A stage's ``step(state, batch) -> (state, metrics)`` compiled: explicit state and batch shardings, the
    state donated (updated in place), metrics replicated."""
    return compile_fn(step_fn, mesh, rules, in_shardings=(state_shardings, batch_shardings),
                      out_shardings=(state_shardings, replicated(mesh)), donate_argnums=0)


def put_batch(batch: dict[str, np.ndarray], shardings: dict[str, NamedSharding]) -> dict[str, jax.Array]:
    """Global arrays from a global batch that every process holds whole: each process places only the rows its
    own devices hold, so the same batch gives the same arrays on any number of processes."""
    return {k: jax.make_array_from_callback(v.shape, shardings[k], lambda index, v=v: v[index])
            for k, v in batch.items()}
