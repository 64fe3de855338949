"""What a training method is, for the one loop (``flaxgpt.train.loop``) and everything else: the ``Stage`` record.

A stage says which parameters train, how to build its pure step, where its batches come from, how it is
validated and what else happens around the loop (hooks). The loop knows no stage by name; neither does any
other module: they read the record (``stage.trainable``, ``stage.make_data``, ...). Adding a method is one
module in this package that builds a ``Stage`` and one line in the registry (``flaxgpt.train.stages``).

Data comes in ``Round``s: one training step's batches. Pretraining, SFT and the pair stages hand out one batch
per step from a checkpointable grain iterator; PPO's round is one rollout's minibatch updates.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

import numpy as np

# Builders take the run's flaxgpt.train.context.RunContext (typed Any here: the context module builds on this one).
RunContext = Any


@dataclasses.dataclass
class Round:
    """One training step's host batches ([A, b, ...] per key, A micro-batches), and host metrics the step's
    record adds (e.g. a rollout's reward)."""

    batches: list[dict[str, np.ndarray]]
    info: dict[str, float] = dataclasses.field(default_factory=dict)


class DataSource:
    """Where a stage's batches come from. ``next(state)`` returns the next Round; ``checkpoint`` is what the
    checkpoint's ``data`` item saves and restores (a grain iterator), or None; ``restore(step)`` and
    ``save(step)`` carry any other state across a restart; ``finish`` runs after the last step."""

    keys: tuple[str, ...] = ()
    checkpoint: Any = None
    summary: str = ""  # one line printed when training starts ('' for none)
    unit: str = "step"  # what one step is, for the progress bar
    rows_per_step: int = 0  # sequence rows one step trains on (for tokens/s and MFU)

    def next(self, state: Any) -> Round:
        raise NotImplementedError

    def restore(self, step: int) -> None:
        """Called after the loop restored checkpoint ``step``."""

    def save(self, step: int) -> None:
        """Called when the loop saves checkpoint ``step``."""

    def finish(self, summary: dict) -> None:
        """Called once after the loop (plots, files); may add to the run's summary."""


class IteratorSource(DataSource):
    """One batch per step from a (checkpointable) iterator of host batches [B, ...], split into micro-batches."""

    def __init__(self, iterator: Any, keys: tuple[str, ...], grad_accum: int, rows_per_step: int, summary: str = ""):
        self.checkpoint, self.keys, self.grad_accum = iterator, keys, grad_accum
        self.rows_per_step, self.summary = rows_per_step, summary

    def next(self, state: Any) -> Round:
        host = next(self.checkpoint)
        return Round([micro_batches({k: host[k] for k in self.keys}, self.grad_accum)])


def micro_batches(batch: dict[str, np.ndarray], grad_accum: int) -> dict[str, np.ndarray]:
    """[B, ...] -> [grad_accum, B / grad_accum, ...]: consecutive rows form one micro-batch."""
    return {k: v.reshape(grad_accum, v.shape[0] // grad_accum, *v.shape[1:]) for k, v in batch.items()}


@dataclasses.dataclass
class Hook:
    """Something the loop runs between steps: every ``every`` steps (0: never) and, with ``at_end``, after the
    last one. ``run(state, step) -> (state, record or None)``; a record is logged under ``kind``."""

    kind: str
    run: Callable[[Any, int], tuple[Any, dict[str, float] | None]]
    every: int = 0
    at_end: bool = True

    def due(self, step: int, last: bool) -> bool:
        return (self.every > 0 and step % self.every == 0) or (last and self.at_end)


Validate = Callable[[Any], dict[str, float]]  # params -> validation metrics (val_*)


def _no_check(config: Any) -> None:
    return None


def _no_hooks(ctx: RunContext, data: DataSource) -> list[Hook]:
    return []


def _no_validation(ctx: RunContext, data: DataSource) -> Validate | None:
    return None


def _one_update(config: Any) -> int:
    return 1


@dataclasses.dataclass(frozen=True)
class Stage:
    """One training method (module docstring). Every field but ``name``, ``doc``, ``trainable``, ``batch_keys``,
    ``make_step`` and ``make_data`` has a default.

    Fields:
      trainable: param path (tuple of keys) -> whether this stage trains it (others get zero updates).
      batch_keys: the batch keys its step reads.
      make_step: (model, optimizer, schedule, run config) -> the pure ``step(state, batch) -> (state, metrics)``.
      make_data: (run context) -> its DataSource.
      make_validation: (run context, data) -> ``validate(params) -> metrics``, or None.
      hooks: (run context, data) -> extra Hooks (e.g. the preference model's reward centring at the end).
      check: (run config) -> None, raising ValueError naming the key for a config this stage cannot run.
      updates_per_step: (run config) -> optimizer updates one step makes (the learning-rate schedule counts them).
    """

    name: str
    doc: str
    trainable: Callable[[tuple[str, ...]], bool]
    batch_keys: tuple[str, ...]
    make_step: Callable[..., Callable]
    make_data: Callable[[RunContext], DataSource]
    make_validation: Callable[[RunContext, DataSource], Validate | None] = _no_validation
    hooks: Callable[[RunContext, DataSource], list[Hook]] = _no_hooks
    check: Callable[[Any], None] = _no_check
    updates_per_step: Callable[[Any], int] = _one_update

    @property
    def trains_reward_head(self) -> bool:
        """Whether a run of this stage is a preference model (it trains the reward head)."""
        return self.trainable(("reward_head",))


def policy(path: tuple[str, ...]) -> bool:
    """The language model alone: everything but the value and reward heads."""
    return path[0] not in ("value_head", "reward_head")
