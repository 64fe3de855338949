"""What every stage trained on comparisons shares (pm, dpo, orpo): pair data, the step and pair validation.

A pair stage is defined by its ``per_pair`` function: ``per_pair(model, config)`` returns
``fn(params, pairs) -> {'loss': [b], 'margin': [b], 'label': [b], NAME: (first [b], second [b]), ...}`` —
the loss of each pair, the stage's score margin of the first response over the second (its sign is the
stage's verdict), the label P(first preferred), and any per-response values to report. The step minimises
the summed loss per pair; training and validation metrics both come from ``flaxgpt.train.rl.pair_sums`` /
``pair_metrics`` (validation's keys get a ``val_`` prefix), so they always mean the same thing.

Pair batches (``PAIR_KEYS``), N comparisons, T = data.seq_len, with a leading micro-batch axis A in steps:
  ``tokens`` int32 [A,b,2,T]  prompt + response + end-of-response token, right-padded
  ``mask``   float32 [A,b,2,T] 1 at the response tokens, the end-of-response token included
  ``last``   int32 [A,b,2]     index of the end-of-response token
  ``label``  float32 [A,b]     P(first of the pair is preferred); 1.0 is a hard label
Rows are not packed: positions are the default 0..T-1. Dropout is off in every forward of the preference
stages (as in TRL and N+): it would make rewards and ratios noisy.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from flaxgpt.data.preferences import PAIR_KEYS, PairSets, build_pair_iterator, load_pair_sets
from flaxgpt.train import rl
from flaxgpt.train.scoring import SCORE_BATCH, batched_rows
from flaxgpt.train.stages.base import DataSource, Hook, IteratorSource, RunContext, Stage, Validate
from flaxgpt.train.steps import make_step

PerPair = Callable[[Any, dict[str, jax.Array]], dict[str, Any]]


def pair_sums(out: dict[str, Any]) -> dict[str, jax.Array]:
    """``rl.pair_sums`` of a per-pair output dict."""
    extra = {k: v for k, v in out.items() if k not in ("loss", "margin", "label")}
    return rl.pair_sums(out["loss"], out["margin"], out["label"], **extra)


def make_pair_step(per_pair: PerPair, tx: Any, schedule: Any) -> Callable:
    """The step of a pair stage: minimises the mean loss per pair over all micro-batches; ``rl.pair_metrics``."""

    def terms(params, micro, rng):
        out = per_pair(params, micro)
        return jnp.sum(out["loss"]), pair_sums(out)

    return make_step(terms, tx, schedule, denominator="count", metrics=lambda loss_sum, sums: rl.pair_metrics(sums))


class PairSource(IteratorSource):
    """Shuffled pair batches from the run's comparisons; ``pairs`` holds the train and validation arrays."""

    def __init__(self, ctx: RunContext, pairs: PairSets, keys: tuple[str, ...]):
        batch = ctx.global_batch()
        it = build_pair_iterator(pairs.train, batch_size=batch, seed=ctx.config.train.seed)
        super().__init__(it, keys, ctx.config.train.grad_accum, 2 * ctx.config.train.batch_size, pairs.summary)
        self.pairs = pairs

    def finish(self, summary: dict) -> None:
        if self.pairs.skipped:
            summary["skipped_records"] = dict(self.pairs.skipped)  # malformed comparison records, by reason


def validate_pairs(ctx: RunContext, per_pair: PerPair, val: dict[str, np.ndarray]) -> Validate:
    """``validate(params) -> {val_loss, val_accuracy, ...}`` over the validation pairs in fixed-size batches."""
    batch = -(-SCORE_BATCH // ctx.data_parallel) * ctx.data_parallel
    sharding = {k: ctx.batch_sharding(v.ndim) for k, v in val.items()}
    fn = ctx.compile(per_pair, in_shardings=(ctx.shardings.params, sharding))

    def validate(params: Any) -> dict[str, float]:
        out = batched_rows(lambda p, b: _flat(fn(p, b)), params, val, batch)
        sums = pair_sums(_unflat(out))
        return {f"val_{k}": float(v) for k, v in rl.pair_metrics(sums).items()}

    return validate


def _flat(out: dict[str, Any]) -> dict[str, jax.Array]:
    """Per-pair outputs with (first, second) tuples as NAME/0, NAME/1 arrays (batched_rows concatenates arrays)."""
    flat = {}
    for k, v in out.items():
        if isinstance(v, tuple):
            flat[f"{k}/0"], flat[f"{k}/1"] = v
        else:
            flat[k] = v
    return flat


def _unflat(flat: dict[str, np.ndarray]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in flat.items():
        if k.endswith("/0"):
            out[k[:-2]] = (v, flat[k[:-2] + "/1"])
        elif not k.endswith("/1"):
            out[k] = v
    return out


def pair_stage(name: str, doc: str, trainable: Callable[[tuple[str, ...]], bool],
               per_pair: Callable[[Any, Any], PerPair], *, keys: tuple[str, ...] = PAIR_KEYS,
               prepare: Callable[[RunContext, PairSets], None] | None = None,
               hooks: Callable[[RunContext, DataSource], list[Hook]] | None = None,
               check: Callable[[Any], None] | None = None) -> Stage:
    """A Stage trained on comparisons (module docstring). ``prepare(ctx, pairs)`` may add arrays to both sets
    before training (DPO's reference log-probs); ``hooks`` and ``check`` as in Stage."""

    def check_pairs(config: Any) -> None:
        if not config.prefs.data:
            raise ValueError(f"config key 'prefs.data': train.stage={name} trains on comparisons; name the files "
                             "(`flaxgpt cai label`/`revise` output, hh-rlhf or multiple-choice JSONL)")
        if check is not None:
            check(config)

    def make_data(ctx: RunContext) -> DataSource:
        c = ctx.config
        pairs = load_pair_sets(c.prefs.data, ctx.tokenizer, seq_len=c.data.seq_len,
                               max_prompt_len=c.prefs.max_prompt_len, val_fraction=c.prefs.val_fraction,
                               strict=c.prefs.strict)
        if prepare is not None:
            prepare(ctx, pairs)
        return PairSource(ctx, pairs, keys)

    def make_validation(ctx: RunContext, data: PairSource) -> Validate | None:
        if not len(data.pairs.val["label"]) or ctx.config.train.eval_every <= 0:
            return None
        return validate_pairs(ctx, per_pair(ctx.model, ctx.config), data.pairs.val)

    def make(model: Any, tx: Any, schedule: Any, config: Any) -> Callable:
        return make_pair_step(per_pair(model, config), tx, schedule)

    return Stage(name=name, doc=doc, trainable=trainable, batch_keys=keys, make_step=make, make_data=make_data,
                 make_validation=make_validation, check=check_pairs,
                 hooks=hooks or (lambda ctx, data: []))
