"""Log-probabilities of given tokens under a model: one compiled forward per padded bucket batch (``Scorer``).

PPO's policy and reference log-probs, AI-feedback option scoring (``" (A)"`` vs ``" (B)"``) and the server's
``echo`` + ``logprobs`` all read them (``Generator.score`` and ``Generator.top_logprobs`` delegate here).
Sequences are right-padded to a power-of-two length bucket (at least ``MIN_BUCKET``, at most the model's context)
and the batch to a power-of-two row bucket (``flaxgpt.infer.inputs``), so repeated shapes never recompile;
padding comes after every real token, so (causal attention) it changes nothing before it. Each call computes
logits [B,T,V] in float32, so a big batch is cut into chunks of at most ``MAX_LOGITS_BYTES`` of logits.

Log-probs are those of the raw model distribution over the real vocabulary (``flaxgpt.model.logprobs``: padding
ids excluded), the same numbers ``Generator.generate`` reports for the tokens it samples.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from flaxgpt.data.tokenizer import Tokenizer
from flaxgpt.infer.inputs import batch_bucket, checked_ids, length_bucket, pow2
from flaxgpt.model.gpt import GPT, ModelConfig
from flaxgpt.model.logprobs import log_softmax
from flaxgpt.train.sharding import compile_fn

TOP_K = 20  # alternatives computed per position when asked (OpenAI's largest top_logprobs); callers slice
MAX_LOGITS_BYTES = 1 << 30  # float32 logits per forward call; larger batches are split into chunks


def make_score_forward(cfg: ModelConfig) -> Callable:
    """``forward(params, tokens [B,T], top) -> (picked [B,T-1], top_vals [B,T,TOP_K] | None, top_ids | None)`` for
    params in ``inference_layout``: ``picked[b, t]`` = log p(tokens[b, t+1] | tokens[b, :t+1]); with ``top`` (static)
    also the TOP_K most likely next tokens after every position. Compile it with ``static_argnames="top"``."""
    model = GPT(cfg, unstacked=True)

    def forward(params, tokens, top: bool):
        logp = log_softmax(model.apply({"params": params}, tokens), cfg.vocab_size)
        picked = jnp.take_along_axis(logp[:, :-1], tokens[:, 1:, None], axis=-1)[..., 0]
        if not top:
            return picked, None, None
        vals, ids = jax.lax.top_k(logp, min(TOP_K, cfg.vocab_size))
        return picked, vals, ids

    return forward


class Scorer:
    """Log-probs of token sequences under one model, for params in ``inference_layout`` (float or int8).

    Args:
      model_cfg: the model's config (its context ``max_len`` bounds a sequence).
      mesh, rules: compile for this mesh with these logical axis rules (None: the params' own device).
      data_parallel: the mesh's data-parallel size: row buckets are multiples of it.
      tokenizer: for text prompts and continuations, and an empty prompt's <|endoftext|>.
    """

    def __init__(self, model_cfg: ModelConfig, mesh: Any = None, rules: Any = None, data_parallel: int = 1,
                 tokenizer: Tokenizer | None = None):
        self.cfg, self.data_parallel, self.tokenizer = model_cfg, data_parallel, tokenizer
        self._forward = compile_fn(make_score_forward(model_cfg), mesh, rules, static_argnames="top")

    def compiled_count(self) -> int:
        """Executables compiled so far (one per length bucket, row bucket and ``top``)."""
        return self._forward._cache_size()

    def _ids(self, value: str | Sequence[int], what: str, *, empty_eot: bool = True) -> list[int]:
        return checked_ids(value, self.tokenizer, self.cfg.vocab_size, what, empty_eot=empty_eot)

    def token_logprobs(self, params: Any, sequences: Sequence[Sequence[int]], *, top: bool = False
                       ) -> list[tuple[np.ndarray, np.ndarray | None, np.ndarray | None]]:
        """Token-id sequences (each 1..context tokens) -> per sequence ``(picked [L-1], top_vals [L,TOP_K],
        top_ids [L,TOP_K])``: the log-prob of each token after the first, and (``top``) the most likely next tokens
        after every position (None without ``top``)."""
        limit = self.cfg.max_len
        for i, s in enumerate(sequences):
            if not 1 <= len(s) <= limit:
                raise ValueError(f"sequence {i} has {len(s)} tokens; scoring takes 1 to {limit} (the model's context)")
        out: list = [None] * len(sequences)
        order = sorted(range(len(sequences)), key=lambda i: len(sequences[i]))  # similar lengths share a bucket
        start = 0
        while start < len(order):
            T = length_bucket(len(sequences[order[start]]), limit)
            group = [i for i in order[start:] if len(sequences[i]) <= T]
            per_row = T * self.cfg.vocab_padded * 4 * (2 if top else 1)
            rows = max(self.data_parallel, pow2(max(1, MAX_LOGITS_BYTES // per_row) + 1) // 2)  # a power of two
            for c in range(0, len(group), rows):
                chunk = group[c:c + rows]
                tokens = np.zeros((batch_bucket(len(chunk), self.data_parallel), T), np.int32)
                for r, i in enumerate(chunk):
                    tokens[r, : len(sequences[i])] = sequences[i]
                picked, vals, ids = self._forward(params, tokens, top=top)
                picked = np.asarray(picked)
                vals, ids = (np.asarray(vals), np.asarray(ids)) if top else (None, None)
                for r, i in enumerate(chunk):
                    n = len(sequences[i])
                    out[i] = (picked[r, : n - 1], vals[r, :n] if top else None, ids[r, :n] if top else None)
            start += len(group)
        return out

    def score(self, params: Any, prompts: Sequence[str | Sequence[int]],
              continuations: Sequence[str | Sequence[int]]) -> list[list[float]]:
        """Per-token log-probs of each continuation (text or token ids) given its prompt: one list per pair, one
        float per continuation token. An empty prompt starts at <|endoftext|>; together they must fit the
        model's context."""
        if len(prompts) != len(continuations):
            raise ValueError(f"{len(prompts)} prompts but {len(continuations)} continuations")
        seqs, splits = [], []
        for i, (p, c) in enumerate(zip(prompts, continuations, strict=True)):
            head = self._ids(p, f"prompt {i}")
            tail = self._ids(c, f"continuation {i}", empty_eot=False)
            if len(head) + len(tail) > self.cfg.max_len:
                raise ValueError(f"prompt {i} + continuation have {len(head) + len(tail)} tokens; the model's "
                                 f"context is {self.cfg.max_len}: shorten the prompt (keep its last tokens)")
            seqs.append(head + tail)
            splits.append(len(head))
        scored = self.token_logprobs(params, seqs)
        return [[float(x) for x in picked[n - 1:]] for (picked, _, _), n in zip(scored, splits, strict=True)]

    def top_logprobs(self, params: Any, prompts: Sequence[str | Sequence[int]], k: int
                     ) -> list[list[tuple[int, float]]]:
        """The ``k`` (<= TOP_K) most likely next tokens after each prompt: ``[(token id, log-prob), ...]`` most
        likely first."""
        if not 1 <= k <= TOP_K:
            raise ValueError(f"k={k} must be in [1, {TOP_K}]")
        seqs = [self._ids(p, f"prompt {i}") for i, p in enumerate(prompts)]
        out = []
        for (_, vals, ids), s in zip(self.token_logprobs(params, seqs, top=True), seqs, strict=True):
            last = len(s) - 1
            out.append([(int(t), float(v)) for t, v in zip(ids[last, :k], vals[last, :k], strict=True)])
        return out
