"""Direct preference optimisation (``train.stage=dpo``): the policy learns the comparisons against a frozen
reference, with no reward model (sigmoid/cDPO, IPO or hinge loss: ``rl.dpo_loss``).

The reference is ``dpo.ref_from`` or else the run's first parameters (``train.init_from``). Its summed response
log-probs are computed once, before training, and kept in the run directory (``reference_logps.npz``, keyed by
a digest of the encoded comparisons), so a resumed run uses the same numbers and never holds the reference.
"""

from __future__ import annotations

import hashlib
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from flaxgpt.config import DPO_LOSSES
from flaxgpt.data.preferences import PAIR_KEYS, PairSets
from flaxgpt.train import rl
from flaxgpt.train.scoring import RowScorer
from flaxgpt.train.stages.base import RunContext, policy
from flaxgpt.train.stages.pairs import pair_stage

REF_FILE = "reference_logps.npz"
KEYS = (*PAIR_KEYS, "ref_logp")  # ref_logp float32 [A,b,2]: the reference's summed response log-probs


def per_pair(model: Any, config: Any):
    """Pair loss: ``rl.dpo_loss``; margin: implicit reward (beta x log-ratio) of first minus second; reported:
    rewards and policy log-probs of chosen and rejected."""
    d, vocab = config.dpo, model.cfg.vocab_size
    if d.loss not in DPO_LOSSES:  # configs are validated on load; this catches one built by hand
        raise ValueError(f"config key 'dpo.loss': {d.loss!r} not in {DPO_LOSSES}")

    def fn(params: Any, pairs: dict[str, jax.Array]) -> dict[str, Any]:
        tokens, mask = pairs["tokens"], pairs["mask"].astype(jnp.float32)
        b, _, t = tokens.shape
        logits = model.apply({"params": params}, tokens.reshape(2 * b, t))
        logp = rl.sequence_logps(rl.token_logprobs(logits, tokens.reshape(2 * b, t), vocab), mask.reshape(2 * b, t))
        logp = logp.reshape(b, 2)
        ref = pairs["ref_logp"].astype(jnp.float32)
        lengths = jnp.sum(mask, axis=-1)
        label = pairs["label"].astype(jnp.float32)
        losses, r_first, r_second = rl.dpo_loss(logp[:, 0], logp[:, 1], ref[:, 0], ref[:, 1], label, beta=d.beta,
                                                loss=d.loss, label_smoothing=d.label_smoothing,
                                                lengths=(lengths[:, 0], lengths[:, 1]))
        return {"loss": losses, "margin": r_first - r_second, "label": label, "rewards": (r_first, r_second),
                "logp": (logp[:, 0], logp[:, 1])}

    return fn


def _digest(arrays: dict[str, np.ndarray]) -> str:
    h = hashlib.sha256()
    for k in ("tokens", "mask"):
        h.update(np.ascontiguousarray(arrays[k]).tobytes())
    return h.hexdigest()[:16]


def add_reference_logps(ctx: RunContext, pairs: PairSets) -> None:
    """Adds ``ref_logp`` [N,2] to both pair sets: from the run directory when its digest matches, else computed
    with the reference (module docstring) and saved."""
    path = ctx.run_dir / REF_FILE
    digest = _digest(pairs.train) + _digest(pairs.val)
    saved = np.load(path) if path.exists() else None
    if saved is not None and str(saved["digest"]) == digest:
        pairs.train["ref_logp"], pairs.val["ref_logp"] = saved["train"], saved["val"]
        pairs.summary += f"; reference log-probs from {path}"
        return
    ref_from = ctx.config.dpo.ref_from
    if ref_from:
        params, where = ctx.load_frozen(ref_from, "dpo.ref_from", "reference policy").params, ref_from
    else:
        params, where = ctx.initial_state()[0].params, ctx.config.train.init_from or "the initial parameters"
    scorer = RowScorer(ctx.model, ctx.mesh, ctx.rules)
    for arrays in (pairs.train, pairs.val):
        arrays["ref_logp"] = scorer.pairs(params, arrays)["logp_sum"] if len(arrays["label"]) else np.zeros(
            (0, 2), np.float32)
    if ctx.main_process:
        np.savez(path, digest=digest, train=pairs.train["ref_logp"], val=pairs.val["ref_logp"])
    pairs.summary += f"; reference log-probs computed once from {where}"


STAGE = pair_stage("dpo", "direct preference optimisation of the policy against a frozen reference",
                   trainable=policy, per_pair=per_pair, keys=KEYS,
                   prepare=add_reference_logps)
