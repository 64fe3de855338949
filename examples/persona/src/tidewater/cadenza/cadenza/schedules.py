"""Learning-rate schedules as pure functions.

A schedule is a function from a step to a learning rate. Every function here
returns one, built from ``jax.numpy`` with no Python branching on the step,
so it works on plain integers, NumPy integers and traced values inside jit.
optax accepts these directly.

Plot your schedule before you train. It takes two seconds::

    steps, lrs = render(schedule, total_steps)
"""

from __future__ import annotations

from typing import Callable, Sequence

import jax.numpy as jnp
import numpy as np

Schedule = Callable[[int], jnp.ndarray]


def _step(step) -> jnp.ndarray:
    return jnp.asarray(step, dtype=jnp.float32)


def constant(value: float) -> Schedule:
    """The same learning rate forever."""

    def schedule(step):
        return jnp.full((), value, dtype=jnp.float32) + 0.0 * _step(step)

    return schedule


def linear_warmup(peak: float, warmup_steps: int) -> Schedule:
    """Linear from 0 to ``peak`` over ``warmup_steps``, then flat.

    ``warmup_steps=0`` means "start at peak", not "divide by zero". I have
    debugged that NaN once and it was enough.
    """
    if warmup_steps <= 0:
        return constant(peak)
    denom = float(warmup_steps)

    def schedule(step):
        return peak * jnp.clip(_step(step) / denom, 0.0, 1.0)

    return schedule


def cosine(peak: float, total_steps: int, final_fraction: float = 0.1) -> Schedule:
    """Cosine decay from ``peak`` at step 0 to ``peak * final_fraction``.

    Defined over *global* steps. After ``total_steps`` it stays at the final
    value; if you extend the run, extend the schedule, and plot it again.
    """
    denom = float(max(total_steps, 1))

    def schedule(step):
        progress = jnp.clip(_step(step) / denom, 0.0, 1.0)
        cos = 0.5 * (1.0 + jnp.cos(jnp.pi * progress))
        return peak * (final_fraction + (1.0 - final_fraction) * cos)

    return schedule


def inverse_sqrt(peak: float, warmup_steps: int) -> Schedule:
    """Linear warmup, then ``peak * sqrt(warmup_steps / step)``."""
    w = float(max(warmup_steps, 1))

    def schedule(step):
        s = jnp.maximum(_step(step), 1.0)
        return peak * jnp.minimum(_step(step) / w, jnp.sqrt(w / s))

    return schedule


def wsd(
    peak: float,
    warmup_steps: int,
    stable_steps: int,
    decay_steps: int,
    final_fraction: float = 0.0,
) -> Schedule:
    """Warmup-stable-decay: linear up, flat, linear down.

    Our default at Lanternfish. The stable phase can be extended without
    touching anything that already happened, and any stable-phase checkpoint
    can be branched into a short decay to ask "how good is it now?".
    """
    warm = float(max(warmup_steps, 1))
    decay_start = float(warmup_steps + stable_steps)
    decay = float(max(decay_steps, 1))

    def schedule(step):
        s = _step(step)
        up = jnp.clip(s / warm, 0.0, 1.0)
        down = jnp.clip((s - decay_start) / decay, 0.0, 1.0)
        return peak * up * (1.0 - (1.0 - final_fraction) * down)

    return schedule


def join(schedules: Sequence[Schedule], boundaries: Sequence[int]) -> Schedule:
    """Use ``schedules[i]`` from ``boundaries[i-1]`` up to ``boundaries[i]``.

    Every schedule receives the **global** step. Never a local one. If you
    want a schedule to count from its own start, wrap it in :func:`shift`
    and say so. (The bug that made me write this library was a cosine that
    quietly counted from zero.)
    """
    if len(schedules) != len(boundaries) + 1:
        raise ValueError("need exactly one more schedule than boundaries")
    if list(boundaries) != sorted(boundaries):
        raise ValueError("boundaries must be increasing")

    def schedule(step):
        s = jnp.asarray(step)
        index = sum((s >= b).astype(jnp.int32) for b in boundaries)
        values = jnp.stack([f(step) for f in schedules])
        return values[index]

    return schedule


def shift(schedule: Schedule, offset: int) -> Schedule:
    """Evaluate ``schedule`` at ``step - offset``. Explicit, on purpose."""

    def shifted(step):
        return schedule(_step(step) - offset)

    return shifted


def render(schedule: Schedule, total_steps: int, every: int = 100) -> tuple[np.ndarray, np.ndarray]:
    """Evaluate ``schedule`` on a grid, for plotting. Includes the last step."""
    steps = np.unique(np.append(np.arange(0, total_steps, every), total_steps))
    lrs = np.asarray([float(schedule(int(s))) for s in steps])
    return steps, lrs
