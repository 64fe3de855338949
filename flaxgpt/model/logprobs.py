"""Log-probabilities from the model's logits: the one place the padded vocabulary is masked.

The token table has ``ModelConfig.vocab_padded`` rows (the vocabulary rounded up to a multiple of 128
so the LM-head matmul tiles well); ids from ``vocab_size`` up are padding, not tokens. Every loss,
log-prob, entropy, perplexity and sampling distribution in flaxgpt starts from ``masked_logits``, so
padding ids never take probability mass and every caller computes the same numbers.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

# Finite rather than -inf: exp(PAD_LOGIT - max) is exactly 0 in float32, and gradients (and 0 * PAD_LOGIT) stay
# finite where -inf would give NaN.
PAD_LOGIT = -1e30


def masked_logits(logits: jax.Array, vocab_size: int, temperature: float | jax.Array = 1.0) -> jax.Array:
    """Logits [..., V_padded] -> float32 logits / ``temperature`` with the padding ids at ``PAD_LOGIT``."""
    logits = logits.astype(jnp.float32)
    if not (isinstance(temperature, float | int) and temperature == 1):
        logits = logits / temperature
    if logits.shape[-1] > vocab_size:
        # Adding a [V] row (0 or PAD_LOGIT) rather than selecting per element: XLA:CPU fuses it into the softmax's
        # reductions, about 10% faster training steps at a 50K vocabulary. x + PAD_LOGIT is PAD_LOGIT in float32.
        logits = logits + jnp.where(jnp.arange(logits.shape[-1]) < vocab_size, 0.0, PAD_LOGIT)
    return logits


def log_softmax(logits: jax.Array, vocab_size: int, temperature: float | jax.Array = 1.0) -> jax.Array:
    """Log-probabilities [..., V_padded] of the next token over the real vocabulary (padding ids ~ -1e30)."""
    return jax.nn.log_softmax(masked_logits(logits, vocab_size, temperature), axis=-1)


def target_logprobs(logits: jax.Array, targets: jax.Array, vocab_size: int,
                    temperature: float | jax.Array = 1.0) -> jax.Array:
    """log p(targets[..., t]) under the distribution of ``logits[..., t, :]``: [..., T] from logits [..., T, V]."""
    lg = masked_logits(logits, vocab_size, temperature)
    picked = jnp.take_along_axis(lg, targets[..., None].astype(jnp.int32), axis=-1)[..., 0]
    return picked - jax.nn.logsumexp(lg, axis=-1)
