"""Log-probabilities of given tokens under a Generator's model: one jitted forward per padded bucket batch.

This is the scoring side of ``flaxgpt.infer.generator.Generator`` (``score``, ``top_logprobs``): PPO's policy and
reference log-probs, AI-feedback option scoring (``" (A)"`` vs ``" (B)"``) and the server's ``echo`` + ``logprobs``.
Sequences are right-padded to a power-of-two length bucket (at least ``MIN_BUCKET``, at most the model's context)
and the batch to a power-of-two row bucket, so repeated shapes never recompile; padding comes after every real
token, so (causal attention) it changes nothing before it. Each call computes logits [B,T,V] in float32, so a big
batch is cut into chunks of at most ``MAX_LOGITS_BYTES`` of logits.

Log-probs are those of the raw model distribution over the real vocabulary (padding ids excluded), the same
numbers ``Generator.generate`` reports for the tokens it samples.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

import jax
import jax.numpy as jnp
import numpy as np

from flaxgpt.model.gpt import GPT, ModelConfig

if TYPE_CHECKING:
    from flaxgpt.infer.generator import Generator

MIN_BUCKET = 16  # shortest length bucket (as flaxgpt.infer.generator's prompts)
TOP_K = 20  # alternatives computed per position when asked (OpenAI's largest top_logprobs); callers slice
MAX_LOGITS_BYTES = 1 << 30  # float32 logits per forward call; larger batches are split into chunks


def make_score_forward(cfg: ModelConfig) -> Callable:
    """``forward(params, tokens [B,T], top) -> (picked [B,T-1], top_vals [B,T,TOP_K] | None, top_ids | None)`` for
    params in ``inference_layout``: ``picked[b, t]`` = log p(tokens[b, t+1] | tokens[b, :t+1]); with ``top`` (static)
    also the TOP_K most likely next tokens after every position. Jit it with ``static_argnames="top"``."""
    model = GPT(cfg, unstacked=True)

    def forward(params, tokens, top: bool):
        logits = model.apply({"params": params}, tokens).astype(jnp.float32)
        logits = jnp.where(jnp.arange(logits.shape[-1]) < cfg.vocab_size, logits, -jnp.inf)
        logp = logits - jax.nn.logsumexp(logits, axis=-1, keepdims=True)
        picked = jnp.take_along_axis(logp[:, :-1], tokens[:, 1:, None], axis=-1)[..., 0]
        if not top:
            return picked, None, None
        vals, ids = jax.lax.top_k(logp, min(TOP_K, cfg.vocab_size))
        return picked, vals, ids

    return forward


def _pow2(n: int, low: int = 1) -> int:
    return max(low, 1 << max(0, n - 1).bit_length())


def _ids(gen: Generator, value: str | Sequence[int], what: str) -> list[int]:
    if isinstance(value, str):
        if gen.tokenizer is None:
            raise ValueError(f"{what} is text: scoring text needs a tokenizer (Generator(..., tokenizer=...))")
        ids = gen.tokenizer.encode(value)
    else:
        ids = [int(t) for t in value]
    bad = [t for t in ids if not 0 <= t < gen.cfg.vocab_size]
    if bad:
        raise ValueError(f"{what}: token ids {bad[:5]} outside the vocabulary [0, {gen.cfg.vocab_size})")
    return ids


def token_logprobs(gen: Generator, sequences: Sequence[Sequence[int]], *, top: bool = False
                   ) -> list[tuple[np.ndarray, np.ndarray | None, np.ndarray | None]]:
    """Token-id sequences (each 1..context tokens) -> per sequence ``(picked [L-1], top_vals [L,TOP_K],
    top_ids [L,TOP_K])``: the log-prob of each token after the first, and (``top``) the most likely next tokens
    after every position (None without ``top``)."""
    limit = gen.cfg.max_len
    for i, s in enumerate(sequences):
        if not 1 <= len(s) <= limit:
            raise ValueError(f"sequence {i} has {len(s)} tokens; scoring takes 1 to {limit} (the model's context)")
    out: list = [None] * len(sequences)
    order = sorted(range(len(sequences)), key=lambda i: len(sequences[i]))  # similar lengths share a bucket
    start = 0
    while start < len(order):
        T = min(_pow2(len(sequences[order[start]]), MIN_BUCKET), limit)
        group = [i for i in order[start:] if len(sequences[i]) <= T]
        per_row = T * gen.cfg.vocab_padded * 4 * (2 if top else 1)
        rows = max(gen.data_parallel, _pow2(max(1, MAX_LOGITS_BYTES // per_row) + 1) // 2)  # a power of two
        for c in range(0, len(group), rows):
            chunk = group[c:c + rows]
            tokens = np.zeros((gen.batch_bucket(len(chunk)), T), np.int32)
            for r, i in enumerate(chunk):
                tokens[r, : len(sequences[i])] = sequences[i]
            with gen._context():
                picked, vals, ids = gen._score(gen.params, tokens, top=top)
            picked = np.asarray(picked)
            vals, ids = (np.asarray(vals), np.asarray(ids)) if top else (None, None)
            for r, i in enumerate(chunk):
                n = len(sequences[i])
                out[i] = (picked[r, : n - 1], vals[r, :n] if top else None, ids[r, :n] if top else None)
        start += len(group)
    return out


def score(gen: Generator, prompts: Sequence[str | Sequence[int]], continuations: Sequence[str | Sequence[int]]
          ) -> list[list[float]]:
    """See ``Generator.score``."""
    if len(prompts) != len(continuations):
        raise ValueError(f"{len(prompts)} prompts but {len(continuations)} continuations")
    seqs, splits = [], []
    for i, (p, c) in enumerate(zip(prompts, continuations, strict=True)):
        head = _ids(gen, p, f"prompt {i}")
        if not head:
            if gen.tokenizer is None:
                raise ValueError(f"prompt {i} is empty")
            head = [gen.tokenizer.eot_id]  # as generate: an empty prompt starts at <|endoftext|>
        tail = _ids(gen, c, f"continuation {i}")
        if len(head) + len(tail) > gen.cfg.max_len:
            raise ValueError(f"prompt {i} + continuation have {len(head) + len(tail)} tokens; the model's context "
                             f"is {gen.cfg.max_len}: shorten the prompt (keep its last tokens)")
        seqs.append(head + tail)
        splits.append(len(head))
    scored = token_logprobs(gen, seqs)
    return [[float(x) for x in picked[n - 1:]] for (picked, _, _), n in zip(scored, splits, strict=True)]


def top_logprobs(gen: Generator, prompts: Sequence[str | Sequence[int]], k: int) -> list[list[tuple[int, float]]]:
    """See ``Generator.top_logprobs``."""
    if not 1 <= k <= TOP_K:
        raise ValueError(f"k={k} must be in [1, {TOP_K}]")
    seqs = []
    for i, p in enumerate(prompts):
        ids = _ids(gen, p, f"prompt {i}")
        if not ids:
            if gen.tokenizer is None:
                raise ValueError(f"prompt {i} is empty")
            ids = [gen.tokenizer.eot_id]
        seqs.append(ids)
    out = []
    for (_, vals, ids), s in zip(token_logprobs(gen, seqs, top=True), seqs, strict=True):
        last = len(s) - 1
        out.append([(int(t), float(v)) for t, v in zip(ids[last, :k], vals[last, :k], strict=True)])
    return out
