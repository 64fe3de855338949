"""KV-cache decoding on device: the decode state, one prefill over the prompts, one step per token, cache growth.

Prefill runs right-padded prompts into a cache as long as their bucket and samples each row's first
token; each decode step feeds every row's last token at that row's own position (which is also its
cache slot, see ``flaxgpt.model.gpt``) and samples the next; ``grow_cache`` copies the cache into a
longer bucket when the longest row reaches its end. All three are pure: ``flaxgpt.infer.generator``
compiles them (``flaxgpt.train.sharding.compile_fn``) and drives the loop.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import flax
import jax
import jax.numpy as jnp

from flaxgpt.infer.sampling import SamplingArrays, sample_next
from flaxgpt.model.gpt import DTYPES, GPT, ModelConfig


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
    dtype = DTYPES[cfg.dtype]
    lead = () if unstacked else (cfg.n_layer,)

    def layer():
        return {"k": jnp.zeros((*lead, batch, cfg.n_head, cfg.head_dim, length), dtype),
                "v": jnp.zeros((*lead, batch, cfg.n_head, length, cfg.head_dim), dtype)}

    return {f"blocks_{i}": layer() for i in range(cfg.n_layer)} if unstacked else {"blocks": layer()}


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
