"""The preference model (``train.stage=pm``): a scalar reward read at the end-of-response token.

Trained with the soft-label Bradley-Terry loss (``rl.soft_bce``) on pairs; the backbone and the reward head
train. After the last step the reward head's bias is shifted so the training comparisons' responses average
zero reward (``pm.center``): a PM judge's "reward > 0" then means "better than the average training response".
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from flaxgpt.train import rl
from flaxgpt.train.scoring import RowScorer
from flaxgpt.train.stages.base import Hook, RunContext
from flaxgpt.train.stages.pairs import PairSource, pair_stage


def _rewards_at(module: Any, tokens: jax.Array, last: jax.Array) -> jax.Array:
    r = module.reward(module.hidden(tokens))
    return jnp.take_along_axis(r, last[:, None], axis=1)[:, 0]


def per_pair(model: Any, config: Any):
    """Pair loss: soft BCE of the two rewards; margin: reward(first) - reward(second)."""

    def fn(params: Any, pairs: dict[str, jax.Array]) -> dict[str, Any]:
        tokens = pairs["tokens"]
        b, _, t = tokens.shape
        r = model.apply({"params": params}, tokens.reshape(2 * b, t), pairs["last"].reshape(2 * b),
                        method=_rewards_at).reshape(b, 2)
        label = pairs["label"].astype(jnp.float32)
        return {"loss": rl.soft_bce(r[:, 0], r[:, 1], label), "margin": r[:, 0] - r[:, 1], "label": label}

    return fn


def center_reward(scorer: RowScorer, params: Any, arrays: dict[str, np.ndarray]) -> tuple[Any, float]:
    """(params with the reward bias shifted so the responses of ``arrays`` average 0, the offset added)."""
    mean = float(np.mean(scorer.pairs(params, arrays)["reward"]))
    head = params["reward_head"]
    new_head = {**head, "bias": head["bias"] - jnp.asarray(mean, head["bias"].dtype)}
    return {**params, "reward_head": new_head}, -mean


def _hooks(ctx: RunContext, data: PairSource) -> list[Hook]:
    if not ctx.config.pm.center:
        return []

    def center(state: Any, step: int) -> tuple[Any, dict[str, float]]:
        params, offset = center_reward(RowScorer(ctx.model, ctx.mesh, ctx.rules), state.params, data.pairs.train)
        print(f"pm.center: reward offset by {offset:+.4f} so the training responses average 0")
        return state.replace(params=params), {"reward_offset": offset}

    return [Hook("pm", center)]  # after the last step only, before its checkpoint


STAGE = pair_stage("pm", "preference model: a reward at the end-of-response token, trained on comparisons",
                   trainable=lambda path: path[0] != "value_head", per_pair=per_pair, hooks=_hooks)
