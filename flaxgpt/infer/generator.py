"""KV-cache decoding and sampling over token ids: one jitted prefill, then one jitted step per token.

Shapes are static, so no request recompiles after warm-up: the batch is padded up to a power of two
(a multiple of the mesh's data-parallel size; at least 2 rows for decoding), prompts are
right-padded to a power-of-two length bucket (at least ``MIN_BUCKET``), and the cache length is a
power-of-two bucket too, capped at the fixed ``max_len``. Prefill runs the prompts into a cache as
long as their bucket and samples each row's first token; each decode step feeds every row's last
token at that row's own position (which is also its cache slot, see ``flaxgpt.model.gpt``) and samples
the next. When the longest row reaches the end of the cache it is copied into the next bucket
(twice as long): a step attends over at most twice the slots in use rather than all ``max_len``,
which is what a step reads besides the weights. So a batch size compiles one prefill per prompt
bucket, one step and one grow per cache bucket, and ``Generator.warmup`` compiles them all up front.
Sampling settings travel as per-row arrays, so changing them does not recompile either; the
top-k/top-p truncation and the penalties are skipped on device (``lax.cond``) when no row uses them.

The Python loop stays thin: it dispatches step t+1 before reading step t's tokens (the device never
waits on the host), detokenizes incrementally, streams to the callback and checks stop strings.
Stop tokens, stop strings and length limits finish rows; finished rows ride along in the fixed batch
until every row is done.

``Generator.score`` and ``Generator.top_logprobs`` (infer/scoring.py) read log-probs of given tokens with one jitted
forward per bucket, and ``Generator.set_params`` swaps in new weights (PPO) without recompiling anything.

Sampling follows vLLM's conventions and order: the repetition penalty (divide positive logits,
multiply negative ones) counts prompt and generated tokens; presence and frequency penalties count
generated tokens; then temperature, min-p (relative to the most likely token), top-k, and top-p on
what top-k left. Temperature 0 is greedy. Log-probs are those of the model's raw distribution.
"""

from __future__ import annotations

import codecs
import contextlib
import dataclasses
import secrets
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import flax
import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec

from flaxgpt.data.tokenizer import Tokenizer
from flaxgpt.infer import scoring
from flaxgpt.infer.scoring import make_score_forward
from flaxgpt.model.gpt import GPT, ModelConfig, inference_layout

MIN_BUCKET = 16  # shortest prompt bucket: shorter prompts share one compiled prefill
MIN_BATCH = 2  # smallest batch bucket (see Generator.batch_bucket)
TOP_CANDIDATES = 1024  # top-k/top-p look at this many most likely tokens first (see _truncate)
FINISH_REASONS = ("stop", "length")


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


@flax.struct.dataclass
class DecodeState:
    """The decode loop's device state. ``cache`` and ``counts`` are donated to (updated in place by) each step."""

    cache: Any  # {'blocks_<i>': {'k': [B,H,K,S], 'v': [B,H,S,K]}}
    counts: jax.Array  # [B,V] int32: how often each token was generated (presence/frequency penalties)
    seen: jax.Array  # [B,V] bool: tokens of the prompt (repetition penalty)
    tokens: jax.Array  # [B] int32: the last sampled token, fed at the next step
    positions: jax.Array  # [B] int32: where that token goes
    keys: jax.Array  # [B,2] uint32: per-row PRNG keys
    step: jax.Array  # int32: tokens sampled so far


def init_cache(cfg: ModelConfig, batch: int, length: int, *, unstacked: bool = True) -> dict:
    """Zero KV cache: {'blocks_<i>': {'k': [B,H,K,S], 'v': [B,H,S,K]}} (unstacked layout), or {'blocks': ...}
    with the same arrays stacked on a leading layer axis."""
    from flaxgpt.model.gpt import DTYPES

    dtype = DTYPES[cfg.dtype]
    lead = () if unstacked else (cfg.n_layer,)

    def layer():
        return {"k": jnp.zeros((*lead, batch, cfg.n_head, cfg.head_dim, length), dtype),
                "v": jnp.zeros((*lead, batch, cfg.n_head, length, cfg.head_dim), dtype)}

    return {f"blocks_{i}": layer() for i in range(cfg.n_layer)} if unstacked else {"blocks": layer()}


# ------------------------------------------------------------------------------------------------ sampling


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
    logits = logits.astype(jnp.float32)
    logits = jnp.where(jnp.arange(logits.shape[-1]) < vocab_size, logits, -jnp.inf)  # padding ids never come out
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


# ------------------------------------------------------------------------------------------------ device steps


def make_prefill(cfg: ModelConfig) -> Callable:
    """``prefill(params, tokens [b,P], lengths [b], samp [B], seeds [B]) -> (DecodeState [B rows], tokens [b],
    logprobs [b])`` for params in ``inference_layout``: a cache of P slots holding the prompts and each row's first
    new token. The state has B >= b rows (``samp`` says how many): rows past b are idle padding, so a batch-1 prompt
    is prefilled as one row and still decoded as two (see Generator.batch_bucket)."""
    model = GPT(cfg, kv_mode="prefill", unstacked=True)

    def prefill(params, tokens, lengths, samp, seeds):
        b, P = tokens.shape
        B = seeds.shape[0]
        logits, variables = model.apply({"params": params, "cache": init_cache(cfg, b, P)}, tokens, lengths,
                                        method=GPT.prefill, mutable=["cache"])
        rows = jnp.arange(b)
        real = (jnp.arange(P)[None, :] < lengths[:, None]).astype(jnp.int32)
        seen = jnp.zeros((b, cfg.vocab_padded), jnp.int32).at[rows[:, None], tokens].add(real) > 0
        counts = jnp.zeros((b, cfg.vocab_padded), jnp.int32)
        keys = jax.vmap(lambda seed, row: jax.random.fold_in(jax.random.PRNGKey(seed), row))(seeds, jnp.arange(B))
        first = jax.tree.map(lambda x: x[:b], samp)
        tok, logprob = sample_next(logits, counts, seen, first, keys[:b], jnp.int32(0), cfg.vocab_size)
        state = DecodeState(cache=variables["cache"], counts=counts.at[rows, tok].add(1), seen=seen, tokens=tok,
                            positions=lengths.astype(jnp.int32), keys=keys[:b], step=jnp.int32(1))
        if b < B:
            state = jax.tree.map(lambda x: jnp.pad(x, [(0, B - b)] + [(0, 0)] * (x.ndim - 1)) if x.ndim else x, state)
            state = state.replace(keys=keys)
        return state, tok, logprob

    return prefill


def make_decode_step(cfg: ModelConfig) -> Callable:
    """``step(params, state, samp) -> (state, tokens [B], logprobs [B])``: feeds each row's last token, samples the
    next."""
    model = GPT(cfg, kv_mode="decode", unstacked=True)

    def step(params, state: DecodeState, samp: SamplingArrays):
        logits, variables = model.apply({"params": params, "cache": state.cache}, state.tokens[:, None],
                                        state.positions[:, None], method=GPT.decode, mutable=["cache"])
        tok, logprob = sample_next(logits[:, 0], state.counts, state.seen, samp, state.keys, state.step,
                                   cfg.vocab_size)
        rows = jnp.arange(tok.shape[0])
        state = state.replace(cache=variables["cache"], counts=state.counts.at[rows, tok].add(1), tokens=tok,
                              positions=state.positions + 1, step=state.step + 1)
        return state, tok, logprob

    return step


def grow_cache(state: DecodeState, length: int) -> DecodeState:
    """The state with its cache zero-padded to ``length`` slots (keys [..., K, S], values [..., S, K])."""
    def pad(x, axis):
        widths = [(0, 0)] * x.ndim
        widths[axis] = (0, length - x.shape[axis])
        return jnp.pad(x, widths)

    cache = {name: {"k": pad(layer["k"], -1), "v": pad(layer["v"], -2)} for name, layer in state.cache.items()}
    return state.replace(cache=cache)


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


def _pow2(n: int, low: int = 1) -> int:
    return max(low, 1 << max(0, n - 1).bit_length())


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
        from flaxgpt.infer.quant import is_quantized, quantize_params

        self.cfg = dataclasses.replace(model_cfg, remat="none")
        self.tokenizer = tokenizer
        self.max_len = int(max_len or model_cfg.max_len)
        if not 1 < self.max_len <= model_cfg.max_len:
            raise ValueError(f"max_len={self.max_len} must be in [2, model max_len={model_cfg.max_len}]")
        self.mesh = mesh
        if mesh is not None and rules is None:
            from flaxgpt.config import default_config
            from flaxgpt.train.sharding import logical_rules

            rules = logical_rules(default_config().mesh.rules)
        self.rules = rules
        self._quantize, self._layout = jax.jit(quantize_params), jax.jit(inference_layout)  # reused by set_params
        self.params = self._convert(params, int8)
        self.int8 = is_quantized(self.params)
        self.run = None  # load_generator: the run it came from (flaxgpt.runs.rundir.RunModel without params)
        self.data_parallel = 1 if mesh is None else mesh.shape.get("data", 1) * mesh.shape.get("fsdp", 1)
        self._prefill = jax.jit(make_prefill(self.cfg))
        self._step = jax.jit(make_decode_step(self.cfg), donate_argnums=(1,))
        self._grow = jax.jit(grow_cache, static_argnums=(1,))  # new buffers: nothing to donate into
        self._score = jax.jit(make_score_forward(self.cfg), static_argnames=("top",))

    def _convert(self, params: Any, int8: bool) -> Any:
        """A param tree as given -> the layout (and int8 weights, if asked) decoding reads, placed on the mesh."""
        from flaxgpt.infer.quant import is_quantized

        params = nn.unbox(params)
        if self.mesh is not None and "blocks" in params and not is_quantized(params):
            from flaxgpt.runs.rundir import param_shardings

            params = jax.device_put(params, param_shardings(self.cfg, self.mesh, self.rules))
        with self._context():
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
        model's context. One jitted forward per length bucket (flaxgpt.infer.scoring)."""
        return scoring.score(self, prompts, continuations)

    def top_logprobs(self, prompts: Sequence[str | Sequence[int]], k: int = 5) -> list[list[tuple[int, float]]]:
        """The ``k`` (<= scoring.TOP_K) most likely next tokens after each prompt: ``[(token id, log-prob),
        ...]`` most likely first."""
        return scoring.top_logprobs(self, prompts, k)

    def _context(self):
        stack = contextlib.ExitStack()
        if self.mesh is not None:
            stack.enter_context(jax.set_mesh(self.mesh))
            stack.enter_context(nn.logical_axis_rules(self.rules))
        return stack

    def _put(self, tree: Any) -> Any:
        if self.mesh is None:
            return jax.device_put(tree)
        return jax.device_put(tree, NamedSharding(self.mesh, PartitionSpec()))

    def batch_bucket(self, n: int, *, decode: bool = False) -> int:
        """Rows a batch of ``n`` prompts is padded to: a power of two times the data-parallel size. Decoding uses at
        least 2 (XLA:CPU updates a batch-1 cache by copying it every step; an idle second row costs far less)."""
        return self.data_parallel * _pow2(-(-max(n, MIN_BATCH if decode else 1) // self.data_parallel))

    def prompt_bucket(self, length: int) -> int:
        """The padded length (and first cache length) for prompts of at most ``length`` tokens; also the cache
        bucket that holds ``length`` slots."""
        return min(_pow2(length, MIN_BUCKET), self.max_len)

    def compiled_count(self) -> int:
        """Executables compiled so far for prefill, decode steps, cache growth (see the module docstring) and
        scoring."""
        return (self._prefill._cache_size() + self._step._cache_size() + self._grow._cache_size()
                + self._score._cache_size())

    def encode_prompt(self, prompt: str | Sequence[int], index: int = 0) -> list[int]:
        """A text or token-id prompt -> checked ids (an empty prompt becomes <|endoftext|>, as GPT-2 starts)."""
        if isinstance(prompt, str):
            if self.tokenizer is None:
                raise ValueError("text prompts need a tokenizer: Generator(..., tokenizer=...)")
            ids = self.tokenizer.encode(prompt)
        else:
            ids = [int(t) for t in prompt]
        if not ids:
            if self.tokenizer is None:
                raise ValueError(f"prompt {index} is empty")
            ids = [self.tokenizer.eot_id]
        bad = [t for t in ids if not 0 <= t < self.cfg.vocab_size]
        if bad:
            raise ValueError(f"prompt {index}: token ids {bad[:5]} outside the vocabulary [0, {self.cfg.vocab_size})")
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
        with self._context():
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
    from flaxgpt.runs.rundir import load_run
    from flaxgpt.train.sharding import logical_rules

    run = load_run(run_dir, step, mesh=mesh)
    gen = Generator(run.model_cfg, run.params, run.tokenizer, max_len=max_len, mesh=mesh,
                    rules=logical_rules(run.config.mesh.rules), int8=int8)
    run.params = None
    gen.run = run
    return gen
