"""GPT-2 as pure functions of one parameter pytree.

The tree every stage reads and writes (ARCHITECTURE.md, "one param pytree")::

    {'wte':  {'embedding': [vocab_padded, d_model]},     # also the LM head (tied)
     'wpe':  {'embedding': [max_len, d_model]},
     'blocks': {...},                                    # n_layer blocks stacked on axis 0 (nn.scan)
     'ln_f': {'scale', 'bias'},
     'value_head':  {'kernel': [d_model, 1], 'bias': [1]},   # PPO critic
     'reward_head': {'kernel': [d_model, 1], 'bias': [1]}}   # preference model

Every parameter carries logical axis names (vocab, embed, heads, kv, mlp, layers) that
``flaxgpt.sharding`` maps onto the device mesh. Shapes in comments: B batch, T time, D d_model,
H heads, K head size, F d_ff, V padded vocabulary.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

VOCAB_MULTIPLE = 128  # pad the embedding so the LM-head matmul tiles well
REMAT_POLICIES = {
    "none": None,
    "full": jax.checkpoint_policies.nothing_saveable,
    "dots": jax.checkpoint_policies.checkpoint_dots,
    "dots_no_batch": jax.checkpoint_policies.checkpoint_dots_with_no_batch_dims,
}
DTYPES = {"float32": jnp.float32, "bfloat16": jnp.bfloat16, "float16": jnp.float16}


@dataclasses.dataclass(frozen=True)
class ModelConfig:
    """Everything the model needs to know; built from ``config.model`` by ``from_config``."""

    vocab_size: int = 50257
    max_len: int = 1024
    n_layer: int = 12
    n_head: int = 12
    d_model: int = 768
    d_ff: int = 0  # 0 means 4 * d_model
    dropout: float = 0.0
    bias: bool = True
    dtype: str = "float32"  # compute dtype
    param_dtype: str = "float32"
    remat: str = "none"  # one of REMAT_POLICIES
    attention: str = "auto"  # jax.nn.dot_product_attention implementation: auto | xla | cudnn
    scan_unroll: int = 1  # blocks per iteration of the layer loop; n_layer unrolls it (faster on CPU, slower compile)

    @property
    def vocab_padded(self) -> int:
        return -(-self.vocab_size // VOCAB_MULTIPLE) * VOCAB_MULTIPLE

    @property
    def ffn(self) -> int:
        return self.d_ff or 4 * self.d_model

    @property
    def head_dim(self) -> int:
        return self.d_model // self.n_head

    @classmethod
    def from_config(cls, model_cfg: Any) -> ModelConfig:
        """Builds the frozen model config from the ``model`` section of a run config."""
        fields = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in dict(model_cfg).items() if k in fields})


def _init(std: float, axes: tuple[str | None, ...]):
    return nn.with_logical_partitioning(nn.initializers.normal(std), axes)


def _zeros(axes: tuple[str | None, ...]):
    return nn.with_logical_partitioning(nn.initializers.zeros_init(), axes)


def _ones(axes: tuple[str | None, ...]):
    return nn.with_logical_partitioning(nn.initializers.ones_init(), axes)


def _layer_norm(cfg: ModelConfig, name: str) -> nn.LayerNorm:
    return nn.LayerNorm(epsilon=1e-5, dtype=DTYPES[cfg.dtype], param_dtype=DTYPES[cfg.param_dtype], name=name,
                        use_bias=cfg.bias, scale_init=_ones(("embed",)), bias_init=_zeros(("embed",)))


class Linear(nn.Module):
    """``x @ kernel + bias`` contracting the last ``len(in_dims)`` axes of x with a kernel of shape in_dims + out_dims.

    The kernel is created at its final shape (not reshaped from 2-D), so its logical axis names hold at init.
    """

    in_dims: tuple[int, ...]
    out_dims: tuple[int, ...]
    axes: tuple[str | None, ...]  # logical names of in_dims + out_dims
    std: float
    cfg: ModelConfig

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        dtype, pdtype = DTYPES[self.cfg.dtype], DTYPES[self.cfg.param_dtype]
        kernel = self.param("kernel", _init(self.std, self.axes), self.in_dims + self.out_dims, pdtype)
        n_in = len(self.in_dims)
        contract = (tuple(range(x.ndim - n_in, x.ndim)), tuple(range(n_in)))
        y = jax.lax.dot_general(x.astype(dtype), kernel.astype(dtype), (contract, ((), ())))
        if self.cfg.bias:
            bias = self.param("bias", _zeros(self.axes[n_in:]), self.out_dims, pdtype)
            y = y + bias.astype(dtype)
        return y


class Block(nn.Module):
    """Pre-LayerNorm transformer block: x + attn(ln(x)), then x + mlp(ln(x))."""

    cfg: ModelConfig

    @nn.compact
    def __call__(self, x: jax.Array, mask: jax.Array | None, deterministic: bool) -> tuple[jax.Array, None]:
        cfg = self.cfg
        D, H, K, F = cfg.d_model, cfg.n_head, cfg.head_dim, cfg.ffn
        # GPT-2 scales the residual projections by 1/sqrt(2 * n_layer) at init.
        proj_std = 0.02 / math.sqrt(2 * cfg.n_layer)
        x = nn.with_logical_constraint(x, ("act_batch", "act_len", "act_embed"))

        h = _layer_norm(cfg, "ln_1")(x)
        qkv = Linear((D,), (3, H, K), ("embed", None, "heads", "kv"), 0.02, cfg, name="c_attn")(h)  # [B,T,3,H,K]
        q, k, v = qkv[:, :, 0], qkv[:, :, 1], qkv[:, :, 2]
        impl = None if cfg.attention == "auto" else cfg.attention
        y = jax.nn.dot_product_attention(q, k, v, mask=mask, is_causal=True, implementation=impl)  # [B,T,H,K]
        y = Linear((H, K), (D,), ("heads", "kv", "embed"), proj_std, cfg, name="c_proj")(y)
        x = x + nn.Dropout(cfg.dropout)(y, deterministic=deterministic)

        h = _layer_norm(cfg, "ln_2")(x)
        h = Linear((D,), (F,), ("embed", "mlp"), 0.02, cfg, name="c_fc")(h)
        h = nn.gelu(h, approximate=True)  # GPT-2's tanh approximation
        h = Linear((F,), (D,), ("mlp", "embed"), proj_std, cfg, name="mlp_proj")(h)
        x = x + nn.Dropout(cfg.dropout)(h, deterministic=deterministic)
        return x, None


class GPT(nn.Module):
    """Decoder-only transformer. ``__call__`` maps token ids [B,T] to logits [B,T,V]."""

    cfg: ModelConfig

    def setup(self):
        cfg = self.cfg
        pdtype = DTYPES[cfg.param_dtype]
        self.wte = nn.Embed(cfg.vocab_padded, cfg.d_model, param_dtype=pdtype, dtype=DTYPES[cfg.dtype],
                            embedding_init=_init(0.02, ("vocab", "embed")))
        self.wpe = nn.Embed(cfg.max_len, cfg.d_model, param_dtype=pdtype, dtype=DTYPES[cfg.dtype],
                            embedding_init=_init(0.01, (None, "embed")))
        block = Block
        if REMAT_POLICIES.get(cfg.remat) is not None:
            # static_argnums counts self: deterministic is argument 3.
            block = nn.remat(Block, policy=REMAT_POLICIES[cfg.remat], prevent_cse=False, static_argnums=(3,))
        stack = nn.scan(block, variable_axes={"params": 0}, split_rngs={"params": True, "dropout": True},
                        in_axes=(nn.broadcast, nn.broadcast), length=cfg.n_layer,
                        unroll=min(cfg.scan_unroll, cfg.n_layer),
                        metadata_params={nn.PARTITION_NAME: "layers"})
        self.blocks = stack(cfg)
        self.ln_f = _layer_norm(cfg, "ln_f")
        head = dict(param_dtype=pdtype, kernel_init=_init(0.02, ("embed", None)), bias_init=_zeros((None,)))
        self.value_head = nn.Dense(1, **head)
        self.reward_head = nn.Dense(1, **head)
        self.drop = nn.Dropout(cfg.dropout)

    def hidden(self, tokens: jax.Array, positions: jax.Array | None = None, segment_ids: jax.Array | None = None,
               deterministic: bool = True) -> jax.Array:
        """Final hidden states [B,T,D] after ln_f. ``segment_ids`` keep attention inside each packed document;
        ``positions`` restart at 0 in each (defaults: one document, positions 0..T-1)."""
        if positions is None:
            positions = jnp.arange(tokens.shape[1])[None, :]
        x = self.wte(tokens) + self.wpe(positions)  # [B,T,D]
        x = nn.with_logical_constraint(x, ("act_batch", "act_len", "act_embed"))
        x = self.drop(x, deterministic=deterministic)
        mask = None
        if segment_ids is not None:
            mask = (segment_ids[:, None, :, None] == segment_ids[:, None, None, :])  # [B,1,T,T]
        x, _ = self.blocks(x, mask, deterministic)
        return self.ln_f(x)

    def logits(self, h: jax.Array) -> jax.Array:
        """LM head tied to the token embedding: [B,T,D] -> [B,T,V]."""
        return self.wte.attend(h)

    def value(self, h: jax.Array) -> jax.Array:
        """Critic head: [B,T,D] -> [B,T] (float32)."""
        return self.value_head(h.astype(jnp.float32))[..., 0]

    def reward(self, h: jax.Array) -> jax.Array:
        """Preference-model head: [B,T,D] -> [B,T] (float32)."""
        return self.reward_head(h.astype(jnp.float32))[..., 0]

    def __call__(self, tokens: jax.Array, positions: jax.Array | None = None, segment_ids: jax.Array | None = None,
                 deterministic: bool = True) -> jax.Array:
        h = self.hidden(tokens, positions, segment_ids, deterministic)
        if self.is_initializing():  # create both scalar heads in the one tree
            self.value(h)
            self.reward(h)
        return self.logits(h)


def count_params(params: Any) -> int:
    """Total number of scalars in a param tree."""
    return sum(int(x.size) for x in jax.tree.leaves(params))


def gpt2_param_count(cfg: ModelConfig, vocab_size: int | None = None, heads: bool = False) -> int:
    """Parameters as GPT-2 counts them (unpadded vocabulary, tied head), computed from shapes."""
    V, D, F, L, T = vocab_size or cfg.vocab_size, cfg.d_model, cfg.ffn, cfg.n_layer, cfg.max_len
    b = 1 if cfg.bias else 0
    per_block = 2 * (D + b * D) + (D * 3 * D + b * 3 * D) + (D * D + b * D) + (D * F + b * F) + (F * D + b * D)
    total = V * D + T * D + L * per_block + (D + b * D)
    return total + (2 * (D + 1) if heads else 0)
