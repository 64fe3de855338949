"""Batched KV-cache generation over token ids (``Generator``): one compiled prefill, then one compiled step per token.

Shapes are static, so no request recompiles after warm-up: the batch is padded up to a power of two
(a multiple of the mesh's data-parallel size; at least 2 rows for decoding), prompts are
right-padded to a power-of-two length bucket (at least ``MIN_BUCKET``), and the cache length is a
power-of-two bucket too, capped at the fixed ``max_len`` (``flaxgpt.infer.inputs``). Prefill and the
decode steps are ``flaxgpt.infer.decode``'s; when the longest row reaches the end of the cache it is
copied into the next bucket (twice as long): a step attends over at most twice the slots in use rather
than all ``max_len``, which is what a step reads besides the weights. So a batch size compiles one
prefill per prompt bucket, one step and one grow per cache bucket, and ``Generator.warmup`` compiles
them all up front. Sampling settings (``flaxgpt.infer.sampling``) travel as per-row arrays, so changing
them does not recompile either.

The Python loop stays thin: it dispatches step t+1 before reading step t's tokens (the device never
waits on the host), detokenizes incrementally, streams to the callback and checks stop strings.
Stop tokens, stop strings and length limits finish rows; finished rows ride along in the fixed batch
until every row is done.

``Generator.score``, ``top_logprobs`` and ``token_logprobs`` read log-probs of given tokens through its
``Scorer`` (``flaxgpt.infer.scoring``), and ``Generator.set_params`` swaps in new weights (PPO) without
recompiling anything.
"""

from __future__ import annotations

import codecs
import dataclasses
import secrets
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import flax.linen as nn
import jax
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec

from flaxgpt.config import default_config
from flaxgpt.data.tokenizer import Tokenizer
from flaxgpt.infer.decode import grow_cache, make_decode_step, make_prefill
from flaxgpt.infer.inputs import batch_bucket, checked_ids, length_bucket
from flaxgpt.infer.quant import is_quantized, quantize_params
from flaxgpt.infer.sampling import GREEDY, SamplingArrays, SamplingParams
from flaxgpt.infer.scoring import Scorer
from flaxgpt.model.gpt import ModelConfig, inference_layout
from flaxgpt.runs.rundir import load_run, param_shardings
from flaxgpt.train.sharding import compile_fn, logical_rules

MIN_BATCH = 2  # smallest batch bucket (see Generator.batch_bucket)
FINISH_REASONS = ("stop", "length")


@dataclasses.dataclass
class Completion:
    """One prompt's result. ``tokens`` are the generated ids (a stop token excluded, the tokens of a stop string
    included); ``text`` is their text cut before any stop string; ``logprobs`` has one entry per token."""

    prompt_tokens: list[int]
    tokens: list[int]
    text: str
    logprobs: list[float]
    finish_reason: str  # 'stop' (stop token or string) or 'length' (max_new_tokens or the cache is full)
    stop_reason: int | str | None = None  # the stop token id or stop string that ended it


@dataclasses.dataclass(frozen=True)
class TokenDelta:
    """What the streaming callback receives for each new token of each row."""

    index: int  # which prompt
    token: int  # the new token id
    text: str  # new text that is now certain (held back while it could still become a stop string)
    logprob: float
    finish_reason: str | None  # set on the row's last delta



# ------------------------------------------------------------------------------------------------ host side


class _Row:
    """One prompt's output on the host: tokens, incremental text, stop checks, what may be streamed yet."""

    def __init__(self, tokenizer: Tokenizer, sampling: SamplingParams, limit: int):
        self.tokenizer, self.limit = tokenizer, limit
        self.stops = sampling.stop
        self.stop_ids = set(sampling.stop_token_ids) | (set() if sampling.ignore_eos else {tokenizer.eot_id})
        self.tokens: list[int] = []
        self.logprobs: list[float] = []
        self.text = ""
        self.emitted = 0
        self.utf8 = codecs.getincrementaldecoder("utf-8")("replace")
        self.finish: str | None = None
        self.stop_reason: int | str | None = None

    def _bytes(self, token: int) -> bytes:
        try:
            return self.tokenizer.encoding.decode_single_token_bytes(token)
        except KeyError:  # an id with no text (unused)
            return b""

    def add(self, token: int, logprob: float) -> str:
        """Takes the next token; returns the text that can be streamed now."""
        if token in self.stop_ids:
            self.finish, self.stop_reason = "stop", token
        else:
            self.tokens.append(token)
            self.logprobs.append(logprob)
            before = len(self.text)
            self.text += self.utf8.decode(self._bytes(token))
            self._check_stop_strings(before)
            if self.finish is None and len(self.tokens) >= self.limit:
                self.finish = "length"
        if self.finish is not None and not isinstance(self.stop_reason, str):
            self.text += self.utf8.decode(b"", final=True)  # a dangling partial character becomes U+FFFD
        hold = 0 if self.finish else self._held_back()
        delta = self.text[self.emitted: len(self.text) - hold]
        self.emitted += len(delta)
        return delta

    def _check_stop_strings(self, before: int) -> None:
        if not self.stops:
            return
        longest = max(map(len, self.stops))
        start = max(0, before - longest + 1)
        hits = [(i, s) for s in self.stops if (i := self.text.find(s, start)) >= 0]
        if hits:
            cut, stop = min(hits)
            self.text = self.text[:cut]
            self.finish, self.stop_reason = "stop", stop

    def _held_back(self) -> int:
        """Length of the longest end of the text that could be the start of a stop string."""
        for n in range(min(len(self.text), max(map(len, self.stops), default=1) - 1), 0, -1):
            tail = self.text[-n:]
            if any(s.startswith(tail) for s in self.stops):
                return n
        return 0

    def completion(self, prompt: list[int]) -> Completion:
        return Completion(prompt_tokens=prompt, tokens=self.tokens, text=self.text, logprobs=self.logprobs,
                          finish_reason=self.finish or "length", stop_reason=self.stop_reason)

class Generator:
    """Batched KV-cache generation from one model: ``generate(prompts, sampling, max_new_tokens, callback)``.

    Args:
      model_cfg: the model's config.
      params: its param tree: as trained (stacked) or ``inference_layout``'s, float or int8 (flaxgpt.infer.quant).
      tokenizer: for text prompts, output text, stop strings and end-of-text; required by ``generate``.
      max_len: KV-cache slots (prompt plus new tokens), at most ``model_cfg.max_len`` (the default).
      mesh: decode on this mesh (tensor-parallel when ``rules`` shard heads/mlp/vocab); stacked float params are
        placed by ``rules``, int8 and unstacked trees are derived from them on the mesh.
      rules: logical axis rules (``flaxgpt.train.sharding.logical_rules``); default: the default config's.
      int8: quantize float params to int8 weights first (flaxgpt.infer.quant).
    """

    def __init__(self, model_cfg: ModelConfig, params: Any, tokenizer: Tokenizer | None = None, *,
                 max_len: int | None = None, mesh: Mesh | None = None, rules: Any = None, int8: bool = False):
        self.cfg = dataclasses.replace(model_cfg, remat="none")
        self.max_len = int(max_len or model_cfg.max_len)
        if not 1 < self.max_len <= model_cfg.max_len:
            raise ValueError(f"max_len={self.max_len} must be in [2, model max_len={model_cfg.max_len}]")
        self.mesh = mesh
        if mesh is not None and rules is None:
            rules = logical_rules(default_config().mesh.rules)
        self.rules = rules
        self.data_parallel = 1 if mesh is None else mesh.shape.get("data", 1) * mesh.shape.get("fsdp", 1)
        self.scorer = Scorer(self.cfg, mesh, rules, self.data_parallel, tokenizer)  # also holds the tokenizer
        self._quantize = compile_fn(quantize_params, mesh, rules)  # both reused by set_params
        self._layout = compile_fn(inference_layout, mesh, rules)
        self.params = self._convert(params, int8)
        self.int8 = is_quantized(self.params)
        self.run = None  # load_generator: the run it came from (flaxgpt.runs.rundir.RunModel without params)
        self._prefill = compile_fn(make_prefill(self.cfg), mesh, rules)
        self._step = compile_fn(make_decode_step(self.cfg), mesh, rules, donate_argnums=(1,))
        self._grow = compile_fn(grow_cache, mesh, rules, static_argnames="length")  # new buffers: nothing to donate

    @property
    def tokenizer(self) -> Tokenizer | None:
        """For text prompts, output text, stop strings and end-of-text (shared with the scorer)."""
        return self.scorer.tokenizer

    @tokenizer.setter
    def tokenizer(self, tokenizer: Tokenizer | None) -> None:
        self.scorer.tokenizer = tokenizer

    def _convert(self, params: Any, int8: bool) -> Any:
        """A param tree as given -> the layout (and int8 weights, if asked) decoding reads, placed on the mesh."""
        params = nn.unbox(params)
        if self.mesh is not None and "blocks" in params and not is_quantized(params):
            params = jax.device_put(params, param_shardings(self.cfg, self.mesh, self.rules))
        if int8 and not is_quantized(params):
            params = self._quantize(params)
        if "blocks" in params or ("embedding" in params["wte"] and not is_quantized(params)):
            params = self._layout(params)
        if self.mesh is None:  # committed to their device: jit keys on that, and set_params must match it exactly
            leaf = jax.tree.leaves(params)[0]
            params = jax.device_put(params, next(iter(leaf.devices())) if isinstance(leaf, jax.Array)
                                    else jax.devices()[0])
        return params

    def set_params(self, params: Any) -> None:
        """Swaps in new weights of the same model (PPO updates the policy every step) without recompiling.

        ``params`` is any tree the constructor takes (stacked or inference layout, boxed or not); it goes through the
        same conversion (int8 if this generator quantized its weights) and onto the current weights' devices, so
        every compiled function is reused. ValueError if a leaf's path, shape or dtype differs from the current one.
        """
        new = self._convert(params, self.int8)
        old_leaves, old_def = jax.tree_util.tree_flatten_with_path(self.params)
        new_leaves, new_def = jax.tree_util.tree_flatten_with_path(new)
        if old_def != new_def:
            raise ValueError(f"set_params: the param tree differs from the model's (got {jax.tree.structure(new)}, "
                             f"expected {old_def})")
        for (path, old), (_, leaf) in zip(old_leaves, new_leaves, strict=True):
            if old.shape != leaf.shape or old.dtype != leaf.dtype:
                raise ValueError(f"set_params: {jax.tree_util.keystr(path)} is {leaf.dtype}{list(leaf.shape)}, "
                                 f"the model has {old.dtype}{list(old.shape)}")
        self.params = jax.tree.map(lambda x, old: jax.device_put(x, old.sharding), new, self.params)

    def score(self, prompts: Sequence[str | Sequence[int]], continuations: Sequence[str | Sequence[int]]
              ) -> list[list[float]]:
        """Per-token log-probs of each continuation (text or token ids) given its prompt: one list per pair, one
        float per continuation token. Prompt and continuation are tokenized separately; together they must fit the
        model's context. One compiled forward per length bucket (flaxgpt.infer.scoring)."""
        return self.scorer.score(self.params, prompts, continuations)

    def top_logprobs(self, prompts: Sequence[str | Sequence[int]], k: int = 5) -> list[list[tuple[int, float]]]:
        """The ``k`` (<= flaxgpt.infer.scoring.TOP_K) most likely next tokens after each prompt: ``[(token id,
        log-prob), ...]`` most likely first."""
        return self.scorer.top_logprobs(self.params, prompts, k)

    def token_logprobs(self, sequences: Sequence[Sequence[int]], *, top: bool = False
                       ) -> list[tuple[np.ndarray, np.ndarray | None, np.ndarray | None]]:
        """Per token-id sequence: its tokens' log-probs after the first and (``top``) the most likely next tokens
        after every position (``flaxgpt.infer.scoring.Scorer.token_logprobs``)."""
        return self.scorer.token_logprobs(self.params, sequences, top=top)

    def _put(self, tree: Any) -> Any:
        if self.mesh is None:
            return jax.device_put(tree)
        return jax.device_put(tree, NamedSharding(self.mesh, PartitionSpec()))

    def batch_bucket(self, n: int, *, decode: bool = False) -> int:
        """Rows a batch of ``n`` prompts is padded to: a power of two times the data-parallel size. Decoding uses at
        least 2 (XLA:CPU updates a batch-1 cache by copying it every step; an idle second row costs far less)."""
        return batch_bucket(n, self.data_parallel, MIN_BATCH if decode else 1)

    def prompt_bucket(self, length: int) -> int:
        """The padded length (and first cache length) for prompts of at most ``length`` tokens; also the cache
        bucket that holds ``length`` slots."""
        return length_bucket(length, self.max_len)

    def compiled_count(self) -> int:
        """Executables compiled so far for prefill, decode steps, cache growth (see the module docstring) and
        scoring."""
        return (self._prefill._cache_size() + self._step._cache_size() + self._grow._cache_size()
                + self.scorer.compiled_count())

    def encode_prompt(self, prompt: str | Sequence[int], index: int = 0) -> list[int]:
        """A text or token-id prompt -> checked ids (an empty prompt becomes <|endoftext|>, as GPT-2 starts);
        ValueError if it does not leave room in the cache for one new token."""
        ids = checked_ids(prompt, self.tokenizer, self.cfg.vocab_size, f"prompt {index}")
        if len(ids) >= self.max_len:
            raise ValueError(f"prompt {index} has {len(ids)} tokens; the cache holds {self.max_len} (max_len), which "
                             "must leave room for at least one new token: shorten the prompt or raise max_len")
        return ids

    def generate(self, prompts: Sequence[str | Sequence[int]], sampling: SamplingParams | Sequence[SamplingParams]
                 | None = None, max_new_tokens: int = 64,
                 callback: Callable[[TokenDelta], None] | None = None) -> list[Completion]:
        """Completes every prompt (texts or token-id lists) together; returns one Completion per prompt.

        ``sampling`` is one SamplingParams for all prompts or one per prompt (default: ``SamplingParams()``).
        Row i of the batch seeds its PRNG with (seed, i), so the rows of a repeated prompt differ. ``callback``
        gets a TokenDelta for every new token of every prompt, in order.
        """
        if self.tokenizer is None:
            raise ValueError("generate needs a tokenizer (stop tokens, text): Generator(..., tokenizer=...)")
        if max_new_tokens < 1:
            raise ValueError(f"max_new_tokens={max_new_tokens} must be >= 1")
        ids = [self.encode_prompt(p, i) for i, p in enumerate(prompts)]
        if not ids:
            return []
        n = len(ids)
        per_row = [sampling or SamplingParams()] * n if not isinstance(sampling, Sequence) else list(sampling)
        if len(per_row) != n:
            raise ValueError(f"{len(per_row)} SamplingParams for {n} prompts")
        b, B, P = self.batch_bucket(n), self.batch_bucket(n, decode=True), self.prompt_bucket(max(map(len, ids)))
        tokens = np.zeros((b, P), np.int32)
        lengths = np.ones(b, np.int32)
        for i, p in enumerate(ids):
            tokens[i, : len(p)], lengths[i] = p, len(p)
        padded = per_row + [GREEDY] * (B - n)
        samp = self._put(SamplingArrays.build(padded))
        seeds = np.array([p.seed if p.seed is not None else secrets.randbits(31) for p in padded], np.int32)
        rows = [_Row(self.tokenizer, s, min(max_new_tokens, self.max_len - len(p))) for s, p in zip(per_row, ids,
                                                                                                     strict=True)]
        most = max(r.limit for r in rows)
        state, tok, logprob = self._prefill(self.params, tokens, lengths, samp, seeds)
        produced, slots = 1, P
        while True:
            following = None
            if produced < most:  # dispatch the next step before waiting for this one's tokens
                # This step writes slot len + produced - 1 of each row; rows known to be done do not count.
                needed = max(len(p) for p, r in zip(ids, rows, strict=True) if not r.finish) + produced
                if needed > slots:
                    slots = self.prompt_bucket(needed)
                    state = self._grow(state, slots)
                state, next_tok, next_lp = self._step(self.params, state, samp)
                following, produced = (next_tok, next_lp), produced + 1
            self._take(rows, np.asarray(tok), np.asarray(logprob), callback)
            if following is None or all(r.finish for r in rows):
                break
            tok, logprob = following
        return [r.completion(p) for r, p in zip(rows, ids, strict=True)]

    @staticmethod
    def _take(rows: list[_Row], tokens: np.ndarray, logprobs: np.ndarray,
              callback: Callable[[TokenDelta], None] | None) -> None:
        for i, row in enumerate(rows):
            if row.finish:
                continue
            text = row.add(int(tokens[i]), float(logprobs[i]))
            if callback is not None:
                callback(TokenDelta(i, int(tokens[i]), text, float(logprobs[i]), row.finish))

    def warmup(self, batch_sizes: Sequence[int] = (1,)) -> int:
        """Compiles everything requests of these batch sizes can use: prefill for every prompt bucket, the decode
        step for every cache bucket and every cache growth. Returns the number of executables compiled."""
        buckets = sorted({self.prompt_bucket(n) for n in range(1, self.max_len + 1)})
        lengths = set()
        for prev, bucket in zip([0, *buckets], buckets, strict=False):
            lengths.add(min(prev + 1, self.max_len - 1))  # prefill into this bucket, then a step inside it
            if bucket < self.max_len:
                lengths.add(bucket)  # the first step grows the cache into the next bucket
        for b in batch_sizes:
            for n in sorted(lengths):
                self.generate([[0] * n] * b, SamplingParams(temperature=0.0, ignore_eos=True), max_new_tokens=2)
        return self.compiled_count()


def load_generator(run_dir: str | Path, step: int | None = None, int8: bool = False, *, max_len: int | None = None,
                   mesh: Mesh | None = None) -> Generator:
    """A Generator for a run directory's checkpoint ``step`` (default: latest), int8 weights if asked.

    The returned generator also carries ``run`` (flaxgpt.runs.rundir.RunModel, params dropped) for its config and step.
    """
    run = load_run(run_dir, step, mesh=mesh)
    gen = Generator(run.model_cfg, run.params, run.tokenizer, max_len=max_len, mesh=mesh,
                    rules=logical_rules(run.config.mesh.rules), int8=int8)
    run.params = None
    gen.run = run
    return gen
