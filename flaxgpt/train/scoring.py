"""Scoring token rows with a model, in one forward pass: response log-probs, values and rewards.

``make_scorer`` is the pure function (jit it with frozen params as an argument): DPO's reference log-probs,
PPO's rollout statistics, preference-model rewards. ``RowScorer`` runs it over any number of rows in
fixed-size batches on a mesh, so it compiles once: the DPO reference, the preference model's reward centring,
``flaxgpt eval``'s comparison suite and the PM judge use it.

Rows follow the alignment of ``flaxgpt.train.rl``: ``tokens`` [N,T] are prompt + response + end-of-response
token, ``mask`` [N,T] is 1 at the response tokens (end token included), ``last`` [N] indexes the end token.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from flaxgpt.model.gpt import GPT
from flaxgpt.train.rl import shift_right, token_logprobs
from flaxgpt.train.sharding import batch_sharding, compile_fn

SCORE_BATCH = 16  # rows per scoring forward


def _all_heads(module: GPT, tokens: jax.Array) -> tuple[jax.Array, jax.Array, jax.Array]:
    h = module.hidden(tokens)
    return module.logits(h), module.value(h), module.reward(h)


def make_scorer(model: GPT, temperature: float = 1.0) -> Callable[[Any, jax.Array, jax.Array, jax.Array], dict]:
    """``score(params, tokens [B,T], mask [B,T], last [B]) -> {'logp', 'values', 'reward'}``, one forward pass.

    logp [B,T] are the tempered token log-probs and values [B,T] the value head, both aligned to token positions
    and 0 outside ``mask``; reward [B] is the reward head at ``last``.
    """
    vocab = model.cfg.vocab_size

    def score(params: Any, tokens: jax.Array, mask: jax.Array, last: jax.Array) -> dict[str, jax.Array]:
        logits, v, r = model.apply({"params": params}, tokens, method=_all_heads)
        mask = mask.astype(jnp.float32)
        return {"logp": token_logprobs(logits, tokens, vocab, temperature) * mask,
                "values": shift_right(v) * mask,
                "reward": jnp.take_along_axis(r, last[:, None], axis=1)[:, 0]}

    return score


def batched_rows(fn: Callable[[Any, dict], dict], params: Any, arrays: dict[str, np.ndarray],
                 batch: int) -> dict[str, np.ndarray]:
    """``fn(params, rows)`` over all N rows of ``arrays`` in batches of ``batch`` (the last batch wraps around and
    its extra rows are dropped, so every call has one shape); outputs concatenated on the host, [N, ...]."""
    n = len(next(iter(arrays.values())))
    outs: dict[str, list[np.ndarray]] = {}
    for s in range(0, n, batch):
        idx = np.arange(s, s + batch) % n
        r = jax.device_get(fn(params, {k: v[idx] for k, v in arrays.items()}))
        for k, v in r.items():
            outs.setdefault(k, []).append(np.asarray(v)[: min(batch, n - s)])
    return {k: np.concatenate(v) for k, v in outs.items()}


class RowScorer:
    """``score(params, tokens [N,T], mask [N,T], last [N]) -> {'logp_sum' [N], 'reward' [N]}`` (numpy) on ``mesh``,
    in fixed-size batches: one compile for any N."""

    def __init__(self, model: GPT, mesh: Any, rules: Any, *, temperature: float = 1.0):
        score = make_scorer(model, temperature)
        data_parallel = mesh.shape["data"] * mesh.shape["fsdp"]
        self.batch = -(-SCORE_BATCH // data_parallel) * data_parallel
        rows = {"tokens": batch_sharding(mesh, 2), "mask": batch_sharding(mesh, 2), "last": batch_sharding(mesh, 1)}

        def run(params, b):
            out = score(params, b["tokens"], b["mask"], b["last"])
            return {"logp_sum": jnp.sum(out["logp"] * b["mask"], axis=-1), "reward": out["reward"]}

        self._run = compile_fn(run, mesh, rules)
        self._rows = rows

    def __call__(self, params: Any, tokens: np.ndarray, mask: np.ndarray, last: np.ndarray) -> dict[str, np.ndarray]:
        if not len(tokens):
            return {"logp_sum": np.zeros((0,), np.float32), "reward": np.zeros((0,), np.float32)}
        put = lambda b: {k: jax.device_put(v, self._rows[k]) for k, v in b.items()}  # noqa: E731
        return batched_rows(lambda p, b: self._run(p, put(b)), params, {"tokens": tokens, "mask": mask, "last": last},
                            self.batch)

    def pairs(self, params: Any, arrays: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Both responses of every pair ([N,2,T] pair arrays): {'logp_sum' [N,2], 'reward' [N,2]}."""
        n, _, t = arrays["tokens"].shape
        flat = self(params, arrays["tokens"].reshape(2 * n, t), arrays["mask"].reshape(2 * n, t),
                    arrays["last"].reshape(2 * n))
        return {k: v.reshape(n, 2) for k, v in flat.items()}
