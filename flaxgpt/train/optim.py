"""AdamW with linear warmup and cosine decay; weight decay off LayerNorm and biases; frozen subtrees by mask."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax
import optax

from flaxgpt.train.stages import get_stage


def _path_names(path) -> tuple[str, ...]:
    # Only dict keys name parameters; attribute keys come from flax's LogicallyPartitioned boxes.
    return tuple(k.key for k in path if isinstance(k, jax.tree_util.DictKey))


def decay_mask(params: Any) -> Any:
    """True for matrices (kernels and embeddings), False for LayerNorm scales/offsets and biases."""
    return jax.tree_util.tree_map_with_path(lambda p, _: _path_names(p)[-1] in ("kernel", "embedding"), params)


def trainable_labels(params: Any, trainable: Callable[[tuple[str, ...]], bool]) -> Any:
    """'train' or 'freeze' per leaf, as ``trainable(path)`` says (a Stage's ``trainable``)."""
    return jax.tree_util.tree_map_with_path(lambda p, _: "train" if trainable(_path_names(p)) else "freeze", params)


def lr_schedule(train_cfg: Any, updates_per_step: int = 1) -> optax.Schedule:
    """0 -> lr linearly over warmup_steps, then cosine down to lr * min_lr_ratio at train.steps.

    The schedule counts optimizer updates: a stage making ``updates_per_step`` per step (PPO) scales both lengths.
    """
    steps, warmup = train_cfg.steps * updates_per_step, train_cfg.warmup_steps * updates_per_step
    warmup = min(warmup, steps - 1)
    return optax.warmup_cosine_decay_schedule(
        init_value=0.0, peak_value=train_cfg.lr, warmup_steps=warmup, decay_steps=max(steps, warmup + 1),
        end_value=train_cfg.lr * train_cfg.min_lr_ratio)


def make_optimizer(train_cfg: Any, trainable: Callable[[tuple[str, ...]], bool] | None = None, *,
                   updates_per_step: int = 1) -> optax.GradientTransformation:
    """Clip -> AdamW(schedule) on the parameters the stage trains (``trainable``, default: that of the registered
    stage ``train_cfg.stage``); zero updates elsewhere.

    The masks are functions of the tree, so the same optimizer works on boxed (logically annotated)
    parameters at init, which keeps the annotations on the optimizer state, and on plain arrays in the step.
    """
    trainable = trainable or get_stage(train_cfg.stage).trainable
    adamw = optax.adamw(lr_schedule(train_cfg, updates_per_step), b1=train_cfg.b1, b2=train_cfg.b2,
                        eps=train_cfg.eps, weight_decay=train_cfg.weight_decay, mask=decay_mask)
    chain = [optax.clip_by_global_norm(train_cfg.grad_clip)] if train_cfg.grad_clip > 0 else []
    tx = optax.chain(*chain, adamw)
    return optax.multi_transform({"train": tx, "freeze": optax.set_to_zero()},
                                 lambda params: trainable_labels(params, trainable))
