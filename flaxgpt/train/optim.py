"""AdamW with linear warmup and cosine decay; weight decay off LayerNorm and biases; frozen subtrees by mask."""

from __future__ import annotations

from typing import Any

import jax
import optax

# Parameters each stage trains; everything else gets a zero update (the tree stays the same).
TRAINABLE = {
    "pretrain": lambda path: path[0] not in ("value_head", "reward_head"),
    "sft": lambda path: path[0] not in ("value_head", "reward_head"),
    "pm": lambda path: path[0] != "value_head",  # the preference model: backbone + reward head
    "dpo": lambda path: path[0] not in ("value_head", "reward_head"),
    "ppo": lambda path: path[0] != "reward_head",  # policy and critic share the backbone
}


def _path_names(path) -> tuple[str, ...]:
    # Only dict keys name parameters; attribute keys come from flax's LogicallyPartitioned boxes.
    return tuple(k.key for k in path if isinstance(k, jax.tree_util.DictKey))


def decay_mask(params: Any) -> Any:
    """True for matrices (kernels and embeddings), False for LayerNorm scales/offsets and biases."""
    return jax.tree_util.tree_map_with_path(lambda p, _: _path_names(p)[-1] in ("kernel", "embedding"), params)


def trainable_labels(params: Any, stage: str) -> Any:
    """'train' or 'freeze' per leaf for ``stage``."""
    keep = TRAINABLE.get(stage, lambda path: True)
    return jax.tree_util.tree_map_with_path(lambda p, _: "train" if keep(_path_names(p)) else "freeze", params)


def lr_schedule(train_cfg: Any) -> optax.Schedule:
    """0 -> lr linearly over warmup_steps, then cosine down to lr * min_lr_ratio at train.steps."""
    warmup = min(train_cfg.warmup_steps, train_cfg.steps - 1)
    return optax.warmup_cosine_decay_schedule(
        init_value=0.0, peak_value=train_cfg.lr, warmup_steps=warmup, decay_steps=max(train_cfg.steps, warmup + 1),
        end_value=train_cfg.lr * train_cfg.min_lr_ratio)


def make_optimizer(train_cfg: Any) -> optax.GradientTransformation:
    """Clip -> AdamW(schedule) on the parameters ``train_cfg.stage`` trains; zero updates elsewhere.

    The masks are functions of the tree, so the same optimizer works on boxed (logically annotated)
    parameters at init, which keeps the annotations on the optimizer state, and on plain arrays in the step.
    """
    adamw = optax.adamw(lr_schedule(train_cfg), b1=train_cfg.b1, b2=train_cfg.b2, eps=train_cfg.eps,
                        weight_decay=train_cfg.weight_decay, mask=decay_mask)
    chain = [optax.clip_by_global_norm(train_cfg.grad_clip)] if train_cfg.grad_clip > 0 else []
    tx = optax.chain(*chain, adamw)
    labels = lambda params: trainable_labels(params, train_cfg.stage)
    return optax.multi_transform({"train": tx, "freeze": optax.set_to_zero()}, labels)
