"""Picking each next token: sampling settings (``SamplingParams``), their per-row device form, and ``sample_next``.

Sampling follows vLLM's conventions and order: the repetition penalty (divide positive logits,
multiply negative ones) counts prompt and generated tokens; presence and frequency penalties count
generated tokens; then temperature, min-p (relative to the most likely token), top-k, and top-p on
what top-k left. Temperature 0 is greedy. Log-probs are those of the model's raw distribution over the
real vocabulary (``flaxgpt.model.logprobs.masked_logits``: padding ids never come out).

Settings travel as per-row arrays (``SamplingArrays``), so changing them does not recompile; the
top-k/top-p truncation and the penalties are skipped on device (``lax.cond``) when no row uses them.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import flax
import jax
import jax.numpy as jnp
import numpy as np

from flaxgpt.model.logprobs import masked_logits

TOP_CANDIDATES = 1024  # top-k/top-p look at this many most likely tokens first (see _truncate)


@dataclasses.dataclass(frozen=True)
class SamplingParams:
    """How to pick each next token. Defaults: plain sampling at temperature 1, stop at end-of-text."""

    temperature: float = 1.0  # 0: greedy
    top_k: int = 0  # keep the k most likely tokens; 0: off
    top_p: float = 1.0  # keep the smallest set whose probability reaches top_p; 1: off
    min_p: float = 0.0  # drop tokens less likely than min_p x the most likely one; 0: off
    repetition_penalty: float = 1.0  # > 1 discourages tokens of the prompt and output; 1: off
    presence_penalty: float = 0.0  # subtracted from the logit of every token already generated
    frequency_penalty: float = 0.0  # subtracted once per earlier occurrence in the output
    stop: tuple[str, ...] = ()  # strings that end the text (not included in it)
    stop_token_ids: tuple[int, ...] = ()  # tokens that end the text (besides end-of-text)
    ignore_eos: bool = False  # keep going past <|endoftext|>
    seed: int | None = None  # None: a fresh random seed per call

    def __post_init__(self):
        for name in ("stop", "stop_token_ids"):
            value = getattr(self, name)
            if isinstance(value, str | int):
                value = (value,)
            object.__setattr__(self, name, tuple(value))
        checks = [
            ("temperature", self.temperature >= 0, "must be >= 0"),
            ("top_k", isinstance(self.top_k, int | np.integer) and self.top_k >= 0, "must be an integer >= 0"),
            ("top_p", 0 < self.top_p <= 1, "must be in (0, 1]"),
            ("min_p", 0 <= self.min_p <= 1, "must be in [0, 1]"),
            ("repetition_penalty", self.repetition_penalty > 0, "must be > 0"),
            ("stop", all(isinstance(s, str) and s for s in self.stop), "must be non-empty strings"),
            ("stop_token_ids", all(isinstance(t, int | np.integer) and t >= 0 for t in self.stop_token_ids),
             "must be token ids >= 0"),
        ]
        for name, ok, message in checks:
            if not ok:
                raise ValueError(f"SamplingParams.{name}={getattr(self, name)!r}: {message}")


GREEDY = SamplingParams(temperature=0.0)



@flax.struct.dataclass
class SamplingArrays:
    """SamplingParams as per-row arrays [B] (values are traced: changing them does not recompile)."""

    temperature: jax.Array
    top_k: jax.Array
    top_p: jax.Array
    min_p: jax.Array
    repetition_penalty: jax.Array
    presence_penalty: jax.Array
    frequency_penalty: jax.Array

    @classmethod
    def build(cls, params: Sequence[SamplingParams]) -> SamplingArrays:
        """One row per SamplingParams (numpy arrays)."""
        f32 = {f.name: np.array([getattr(p, f.name) for p in params], np.float32)
               for f in dataclasses.fields(cls) if f.name != "top_k"}
        return cls(top_k=np.array([p.top_k for p in params], np.int32), **f32)



def _penalize(logits: jax.Array, counts: jax.Array, seen: jax.Array, s: SamplingArrays) -> jax.Array:
    rep = s.repetition_penalty[:, None]
    hit = seen | (counts > 0)
    logits = jnp.where(hit, jnp.where(logits > 0, logits / rep, logits * rep), logits)
    return logits - s.presence_penalty[:, None] * (counts > 0) - s.frequency_penalty[:, None] * counts


def _threshold(vals: jax.Array, logz: jax.Array, top_k: jax.Array, top_p: jax.Array) -> jax.Array:
    """The smallest logit kept by top-k then top-p, from logits sorted in descending order [B,N] (N >= top_k) and the
    log-normaliser ``logz`` [B] of the distribution top-p is taken on."""
    rank = jnp.arange(vals.shape[-1])[None, :]
    vals = jnp.where(rank < jnp.where(top_k > 0, top_k, vals.shape[-1])[:, None], vals, -jnp.inf)
    p = jnp.exp(vals - logz[:, None])
    before = jnp.cumsum(p, axis=-1) - p  # probability of the more likely tokens
    vals = jnp.where(before < top_p[:, None], vals, -jnp.inf)
    kept = jnp.sum(vals > -jnp.inf, axis=-1)  # >= 1: the most likely token always survives
    return jnp.take_along_axis(vals, (kept - 1)[:, None], axis=-1)[:, 0]


def _truncate(logits: jax.Array, s: SamplingArrays) -> jax.Array:
    """top-k, then top-p on what is left: every logit below the last one kept becomes -inf.

    A full sort of the vocabulary costs ~8 ms per row on XLA:CPU, so the threshold comes from the TOP_CANDIDATES most
    likely tokens (``lax.top_k``); only when a row's choice may reach past them (top_k above that, or top-p asking for
    more probability than they hold) does the full sort run, for exactly the same result.
    """
    V = logits.shape[-1]
    n = min(TOP_CANDIDATES, V)
    vals = jax.lax.top_k(logits, n)[0]
    bounded = (s.top_k > 0) & (s.top_k <= n)  # the whole top-k set is among the candidates
    top_k = jnp.where(bounded, s.top_k, 0)
    full_logz = jax.nn.logsumexp(logits, axis=-1)
    logz = jnp.where(bounded, jax.nn.logsumexp(jnp.where(jnp.arange(n) < top_k[:, None], vals, -jnp.inf), -1),
                     full_logz)
    threshold = _threshold(vals, logz, top_k, s.top_p)
    off = (s.top_k == 0) & (s.top_p >= 1)
    mass = jnp.sum(jnp.exp(vals - full_logz[:, None]), axis=-1)
    unsure = ~off & ~bounded & ((s.top_k > n) | (mass < s.top_p))

    def exact(threshold):
        srt = -jnp.sort(-logits, axis=-1)
        top_k = jnp.where(s.top_k > 0, s.top_k, 0)
        logz = jax.nn.logsumexp(jnp.where(jnp.arange(V) < jnp.where(top_k > 0, top_k, V)[:, None], srt, -jnp.inf), -1)
        return jnp.where(unsure, _threshold(srt, logz, top_k, s.top_p), threshold)

    threshold = jax.lax.cond(jnp.any(unsure), exact, lambda t: t, threshold)
    threshold = jnp.where(off, -jnp.inf, threshold)
    return jnp.where(logits >= threshold[:, None], logits, -jnp.inf)


def _draw(logits: jax.Array, keys: jax.Array, step: jax.Array) -> jax.Array:
    """One token per row from softmax(logits), by inverting the CDF with one uniform draw per row (a Gumbel-max over
    the vocabulary would need a random number per token: ~10x slower on CPU)."""
    u = jax.vmap(lambda key: jax.random.uniform(jax.random.fold_in(key, step)))(keys)
    cdf = jnp.cumsum(jax.nn.softmax(logits, axis=-1), axis=-1)
    return jnp.argmax(cdf > (u * cdf[:, -1])[:, None], axis=-1)  # never a zero-probability token


def sample_next(logits: jax.Array, counts: jax.Array, seen: jax.Array, s: SamplingArrays, keys: jax.Array,
                step: jax.Array, vocab_size: int) -> tuple[jax.Array, jax.Array]:
    """Logits [B,V_padded] -> (next tokens [B] int32, their log-probs under the raw model distribution [B]).

    Pure; ``keys`` [B,2] are folded with ``step`` so every step draws fresh randomness. Rows with temperature 0
    take the argmax (after penalties).
    """
    logits = masked_logits(logits, vocab_size)  # float32; padding ids get probability exactly 0
    logz = jax.nn.logsumexp(logits, axis=-1)
    raw = logits
    penalized = jnp.any((s.repetition_penalty != 1) | (s.presence_penalty != 0) | (s.frequency_penalty != 0))
    logits = jax.lax.cond(penalized, _penalize, lambda x, *_: x, logits, counts, seen, s)
    greedy = jnp.argmax(logits, axis=-1)
    sampling = s.temperature > 0

    def sample(x):
        x = x / jnp.where(sampling, s.temperature, 1.0)[:, None]
        x = jnp.where(x >= jnp.max(x, axis=-1, keepdims=True) + jnp.log(s.min_p)[:, None], x, -jnp.inf)  # min-p
        truncating = jnp.any(sampling & ((s.top_k > 0) | (s.top_p < 1)))
        x = jax.lax.cond(truncating, _truncate, lambda x, _: x, x, s)
        return _draw(x, keys, step)

    drawn = jax.lax.cond(jnp.any(sampling), sample, lambda _: greedy, logits)
    tokens = jnp.where(sampling, drawn, greedy).astype(jnp.int32)
    return tokens, jnp.take_along_axis(raw, tokens[:, None], axis=-1)[:, 0] - logz
