"""ORPO, odds-ratio preference optimisation (``train.stage=orpo``; Hong et al. 2024, "ORPO: Monolithic
Preference Optimization without Reference Model"): SFT and preference learning in one loss, no reference.

For a pair with P(first preferred) = p, each response's length-normalised likelihood is
P(y|x) = exp(mean token log-prob), its odds P / (1 - P). The loss is the NLL of the preferred response
(p-weighted with soft labels) plus ``orpo.beta`` times the soft-label log-sigmoid loss on the log odds ratio
log(odds(first) / odds(second)), the paper's lambda (TRL's ``ORPOConfig.beta``).

Added through the registry alone: this module and one line in ``flaxgpt.train.stages``.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp

from flaxgpt.train import rl
from flaxgpt.train.stages.base import policy
from flaxgpt.train.stages.pairs import pair_stage

# Mean log-probs are capped just below 0 so log(1 - P) stays finite for a response the model is sure of.
MAX_MEAN_LOGP = -1e-6


def per_pair(model: Any, config: Any):
    """Pair loss: p NLL(first) + (1 - p) NLL(second) + beta x soft BCE of the log odds; margin: the log odds
    ratio; reported: log odds and mean NLL of chosen and rejected."""
    beta, vocab = config.orpo.beta, model.cfg.vocab_size

    def fn(params: Any, pairs: dict[str, jax.Array]) -> dict[str, Any]:
        tokens, mask = pairs["tokens"], pairs["mask"].astype(jnp.float32)
        b, _, t = tokens.shape
        logits = model.apply({"params": params}, tokens.reshape(2 * b, t))
        logp = rl.token_logprobs(logits, tokens.reshape(2 * b, t), vocab)
        mean = (rl.sequence_logps(logp, mask.reshape(2 * b, t)) / jnp.maximum(mask.reshape(2 * b, t).sum(-1), 1.0))
        mean = jnp.minimum(mean.reshape(b, 2), MAX_MEAN_LOGP)
        log_odds = mean - jnp.log1p(-jnp.exp(mean))
        label = pairs["label"].astype(jnp.float32)
        sft = -(label * mean[:, 0] + (1.0 - label) * mean[:, 1])
        loss = sft + beta * rl.soft_bce(log_odds[:, 0], log_odds[:, 1], label)
        return {"loss": loss, "margin": log_odds[:, 0] - log_odds[:, 1], "label": label,
                "log_odds": (log_odds[:, 0], log_odds[:, 1]), "nll": (-mean[:, 0], -mean[:, 1])}

    return fn


STAGE = pair_stage("orpo", "odds-ratio preference optimisation: SFT on the preferred response plus an odds-ratio "
                   "loss, no reference model", trainable=policy, per_pair=per_pair)
