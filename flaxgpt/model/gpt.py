"""GPT-2 as pure functions of one parameter pytree.

(Over 400 lines by choice: the whole model, its three modes and its int8 matmul read in one sitting, as nanoGPT's.)

The tree every stage reads and writes (ARCHITECTURE.md, "one param pytree")::

    {'wte':  {'embedding': [vocab_padded, d_model]},     # also the LM head (tied)
     'wpe':  {'embedding': [max_len, d_model]},
     'blocks': {...},                                    # n_layer blocks stacked on axis 0 (nn.scan)
     'ln_f': {'scale', 'bias'},
     'value_head':  {'kernel': [d_model, 1], 'bias': [1]},   # PPO critic
     'reward_head': {'kernel': [d_model, 1], 'bias': [1]}}   # preference model

Every parameter carries logical axis names (vocab, embed, heads, kv, mlp, layers) that
``flaxgpt.train.sharding`` maps onto the device mesh. Shapes in comments: B batch, T time, D d_model,
H heads, K head size, F d_ff, V padded vocabulary, S KV-cache length, L layers.

Decoding (``flaxgpt.infer.generator``) uses the same modules in two more modes. ``GPT(cfg, kv_mode="prefill")``
runs the prompt and writes each layer's keys and values into the ``cache`` collection;
``kv_mode="decode"`` feeds one new token per row at that row's own position, writes its key/value
there and attends over the cache (slots after the row's position are masked out). The cache is an
explicit pytree ``{'blocks': {'k': [L,B,H,K,S], 'v': [L,B,H,S,K]}}`` passed in and returned by ``apply``
(``mutable=["cache"]``). ``unstacked=True`` is the inference layout of the same tree, one subtree per
layer (``blocks_0`` ... ``blocks_{L-1}``, see ``unstack_blocks`` and ``inference_layout``): a decode step
then reads each weight where it lies instead of slicing it out of the stacked array every token. Weights quantized
by ``flaxgpt.infer.quant`` (``kernel_q`` int8 kernels, an int8 ``wte`` table, ``*_scale`` params) are
recognised by name and dtype.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

from flaxgpt import config

VOCAB_MULTIPLE = 128  # pad the embedding so the LM-head matmul tiles well
# Keyed by the names config.py accepts for model.remat and model.dtype/param_dtype.
REMAT_POLICIES = dict(zip(config.REMAT_POLICIES, (
    None,
    jax.checkpoint_policies.nothing_saveable,
    jax.checkpoint_policies.checkpoint_dots,
    jax.checkpoint_policies.checkpoint_dots_with_no_batch_dims,
), strict=True))
DTYPES = dict(zip(config.DTYPES, (jnp.float32, jnp.bfloat16, jnp.float16), strict=True))
KV_MODES = ("none", "prefill", "decode")
INT8_DOTS = ("auto", "dynamic", "dequant")


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
    # How int8 weights (flaxgpt.infer.quant) multiply: 'dequant' converts them to the compute dtype for the matmul (XLA
    # fuses that on GPU/TPU); 'dynamic' also rounds each activation row to int8 and runs an int8 x int8 -> int32
    # matmul (XLA:CPU's int8->float conversion is slow, its int8 GEMM fast); 'auto': dynamic on CPU, else dequant.
    int8_dot: str = "auto"

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


def _int8_mode(cfg: ModelConfig) -> str:
    if cfg.int8_dot not in INT8_DOTS:
        raise ValueError(f"ModelConfig.int8_dot: {cfg.int8_dot!r} not in {INT8_DOTS}")
    if cfg.int8_dot == "auto":
        return "dynamic" if jax.default_backend() == "cpu" else "dequant"
    return cfg.int8_dot


def int8_dot(x: jax.Array, q: jax.Array, scale: jax.Array, contract: tuple[tuple[int, ...], tuple[int, ...]],
             cfg: ModelConfig) -> jax.Array:
    """``x`` times int8 weights ``q`` dequantized by per-output-channel ``scale``, in the compute dtype.

    ``contract`` = (trailing axes of x, axes of q) as in ``lax.dot_general``; the result has x's other axes, then
    q's other axes, whose shape ``scale`` has. ``cfg.int8_dot`` picks the arithmetic (see ModelConfig).
    """
    dtype = DTYPES[cfg.dtype]
    dims = (contract, ((), ()))
    if _int8_mode(cfg) == "dequant":
        return jax.lax.dot_general(x.astype(dtype), q.astype(dtype), dims) * scale.astype(dtype)
    n_c = len(contract[0])
    if contract != (tuple(range(x.ndim - n_c, x.ndim)), tuple(range(q.ndim - n_c, q.ndim))):
        raise ValueError(f"int8_dot contracts trailing axes of x and of the weights, got {contract}")
    lead, out_shape = x.shape[: x.ndim - n_c], q.shape[: q.ndim - n_c]
    k = math.prod(q.shape[q.ndim - n_c:])
    # As 2-D rows [M, K] times weights [N, K]: XLA:CPU runs that dot on the weights where they lie, but first
    # copies multi-axis int8 weights into [K, N] order, on every call.
    x2 = x.astype(jnp.float32).reshape(-1, k)
    q2 = q.reshape(-1, k)
    m = x2.shape[0]
    if m == 1:  # XLA:CPU's int8 matrix-vector product is slow, its int8 GEMM fast: give it two rows
        x2 = jnp.concatenate([x2, x2])
    amax = jnp.max(jnp.abs(x2), axis=1, keepdims=True)
    sx = jnp.where(amax > 0, amax / 127.0, 1.0)  # one scale per activation row
    xq = jnp.clip(jnp.round(x2 / sx), -127, 127).astype(jnp.int8)
    acc = jax.lax.dot_general(xq, q2, (((1,), (1,)), ((), ())), preferred_element_type=jnp.int32)
    y = acc.astype(jnp.float32) * sx * scale.astype(jnp.float32).reshape(-1)
    return y[:m].reshape(lead + out_shape).astype(dtype)


class Embed(nn.Module):
    """The token table [V, D]: looks ids up, and as the tied LM head maps [..., D] to logits [..., V].

    The same parameter (``embedding``) and results as ``nn.Embed``. A table quantized to int8 (flaxgpt.infer.quant)
    carries ``embedding_scale`` [V]: one scale per row, which is one output channel of the LM head. The inference
    layout (``inference_layout``) keeps a float table transposed, ``embedding_t`` [D, V]: XLA:CPU multiplies a few
    rows by a [D, V] matrix 2-3x faster than by the transpose of a [V, D] one, and a lookup reads only B columns.
    """

    num_embeddings: int
    features: int
    cfg: ModelConfig

    def setup(self):
        shape, pdtype = (self.num_embeddings, self.features), DTYPES[self.cfg.param_dtype]
        self.transposed = self.has_variable("params", "embedding_t")
        if self.transposed:
            self.table = self.param("embedding_t", _init(0.02, ("embed", "vocab")), shape[::-1], pdtype)
            self.scale = None
        else:
            self.table = self.param("embedding", _init(0.02, ("vocab", "embed")), shape, pdtype)
            self.scale = (self.param("embedding_scale", _ones(("vocab",)), shape[:1], jnp.float32)
                          if self.table.dtype == jnp.int8 else None)

    def __call__(self, ids: jax.Array) -> jax.Array:
        if not jnp.issubdtype(ids.dtype, jnp.integer):
            raise ValueError(f"token ids must be integers, got {ids.dtype}")
        if self.transposed:
            return jnp.moveaxis(jnp.take(self.table, ids, axis=1), 0, -1).astype(DTYPES[self.cfg.dtype])
        x = jnp.take(self.table, ids, axis=0)
        if self.scale is not None:
            x = x.astype(jnp.float32) * jnp.take(self.scale, ids, axis=0)[..., None]
        return x.astype(DTYPES[self.cfg.dtype])

    def attend(self, h: jax.Array) -> jax.Array:
        if self.scale is not None:
            return int8_dot(h, self.table, self.scale, ((h.ndim - 1,), (1,)), self.cfg)
        dtype = DTYPES[self.cfg.dtype]
        if self.transposed:
            return jnp.dot(h.astype(dtype), self.table.astype(dtype))
        return jnp.dot(h.astype(dtype), self.table.astype(dtype).T)


class Linear(nn.Module):
    """``x @ kernel + bias`` contracting the last ``len(in_dims)`` axes of x with a kernel of shape in_dims + out_dims.

    The kernel is created at its final shape (not reshaped from 2-D), so its logical axis names hold at init.
    Quantized by flaxgpt.infer.quant, the kernel is ``kernel_q``: int8, transposed to out_dims + in_dims (XLA:CPU's
    int8 matmul is about twice as fast with the contracted axes last), with ``kernel_scale`` [out_dims].
    """

    in_dims: tuple[int, ...]
    out_dims: tuple[int, ...]
    axes: tuple[str | None, ...]  # logical names of in_dims + out_dims
    std: float
    cfg: ModelConfig

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        dtype, pdtype = DTYPES[self.cfg.dtype], DTYPES[self.cfg.param_dtype]
        n_in, n_out = len(self.in_dims), len(self.out_dims)
        x_axes = tuple(range(x.ndim - n_in, x.ndim))
        if self.has_variable("params", "kernel_q"):  # int8 from flaxgpt.infer.quant, stored [out..., in...]
            in_axes, out_axes = self.axes[:n_in], self.axes[n_in:]
            q = self.param("kernel_q", _zeros(out_axes + in_axes), self.out_dims + self.in_dims, jnp.int8)
            scale = self.param("kernel_scale", _ones(out_axes), self.out_dims, jnp.float32)
            y = int8_dot(x, q, scale, (x_axes, tuple(range(n_out, n_out + n_in))), self.cfg)
        else:
            kernel = self.param("kernel", _init(self.std, self.axes), self.in_dims + self.out_dims, pdtype)
            y = jax.lax.dot_general(x.astype(dtype), kernel.astype(dtype), ((x_axes, tuple(range(n_in))), ((), ())))
        if self.cfg.bias:
            bias = self.param("bias", _zeros(self.axes[n_in:]), self.out_dims, pdtype)
            y = y + bias.astype(dtype)
        return y


class Block(nn.Module):
    """Pre-LayerNorm transformer block: x + attn(ln(x)), then x + mlp(ln(x)).

    ``kv_mode`` 'prefill' also writes the keys/values of the T input slots to the cache; 'decode' writes them at
    ``positions`` [B,T] and attends over the whole cache (slot j is seen from position p when j <= p).
    """

    cfg: ModelConfig
    kv_mode: str = "none"

    @nn.compact
    def __call__(self, x: jax.Array, mask: jax.Array | None, deterministic: bool,
                 positions: jax.Array | None = None) -> tuple[jax.Array, None]:
        cfg = self.cfg
        D, H, K, F = cfg.d_model, cfg.n_head, cfg.head_dim, cfg.ffn
        # GPT-2 scales the residual projections by 1/sqrt(2 * n_layer) at init.
        proj_std = 0.02 / math.sqrt(2 * cfg.n_layer)
        x = nn.with_logical_constraint(x, ("act_batch", "act_len", "act_embed"))

        h = _layer_norm(cfg, "ln_1")(x)
        qkv = Linear((D,), (3, H, K), ("embed", None, "heads", "kv"), 0.02, cfg, name="c_attn")(h)  # [B,T,3,H,K]
        q, k, v = qkv[:, :, 0], qkv[:, :, 1], qkv[:, :, 2]
        if self.kv_mode == "decode":
            y = self._attend_cache(q, k, v, positions)
        else:
            impl = None if cfg.attention == "auto" else cfg.attention
            y = jax.nn.dot_product_attention(q, k, v, mask=mask, is_causal=True, implementation=impl)  # [B,T,H,K]
            if self.kv_mode == "prefill":
                ck, cv = self._cache()
                kt = jnp.transpose(k, (0, 2, 3, 1)).astype(ck.dtype)  # [B,H,K,T]
                vt = jnp.swapaxes(v, 1, 2).astype(cv.dtype)  # [B,H,T,K]
                self._store(jax.lax.dynamic_update_slice(ck, kt, (0, 0, 0, 0)),
                            jax.lax.dynamic_update_slice(cv, vt, (0, 0, 0, 0)))
        y = Linear((H, K), (D,), ("heads", "kv", "embed"), proj_std, cfg, name="c_proj")(y)
        x = x + nn.Dropout(cfg.dropout)(y, deterministic=deterministic)

        h = _layer_norm(cfg, "ln_2")(x)
        h = Linear((D,), (F,), ("embed", "mlp"), 0.02, cfg, name="c_fc")(h)
        h = nn.gelu(h, approximate=True)  # GPT-2's tanh approximation
        h = Linear((F,), (D,), ("mlp", "embed"), proj_std, cfg, name="mlp_proj")(h)
        x = x + nn.Dropout(cfg.dropout)(h, deterministic=deterministic)
        return x, None

    def _cache(self) -> tuple[jax.Array, jax.Array]:
        ck, cv = self.get_variable("cache", "k"), self.get_variable("cache", "v")
        if ck is None or cv is None:
            raise ValueError(f"kv_mode={self.kv_mode!r} needs the KV cache passed in the 'cache' collection "
                             "(flaxgpt.infer.decode.init_cache) and mutable=['cache']")
        return ck, cv

    def _store(self, ck: jax.Array, cv: jax.Array) -> None:
        # Tensor-parallel over heads, like the attention that reads them.
        self.put_variable("cache", "k", nn.with_logical_constraint(ck, ("act_batch", "heads", "kv", None)))
        self.put_variable("cache", "v", nn.with_logical_constraint(cv, ("act_batch", "heads", None, "kv")))

    def _attend_cache(self, q: jax.Array, k: jax.Array, v: jax.Array, positions: jax.Array | None) -> jax.Array:
        """Writes k/v [B,T,H,K] at ``positions`` [B,T] and attends over the cache (slot j is seen from position p
        when j <= p). Arithmetic as jax.nn.dot_product_attention: float32 logits, scale 1/sqrt(K).

        Keys are cached [B,H,K,S] and values [B,H,S,K], so both einsums are batched matmuls over (B,H) that XLA:CPU
        runs on the cache where it lies (with [B,S,H,K] it copies the cache every step, 10x slower). With B > 1 the
        donated cache is updated in place; at B = 1 XLA:CPU copies it every step, so the generator pads to 2 rows.
        """
        if positions is None:
            raise ValueError("kv_mode='decode' needs the positions of the new tokens")
        ck, cv = self._cache()
        B, S = cv.shape[0], cv.shape[2]
        rows = jnp.arange(B)[:, None]
        slots = jnp.clip(positions, 0, S - 1)  # a finished row past the end writes its last slot (never read again)
        # Both indexed [B,T,H,K], as k and v are.
        ck = ck.at[rows, :, :, slots].set(k.astype(ck.dtype), mode="promise_in_bounds")
        cv = cv.at[rows, :, slots].set(v.astype(cv.dtype), mode="promise_in_bounds")
        self._store(ck, cv)
        f32 = jnp.float32
        logits = jnp.einsum("bthk,bhks->bhts", q, ck.astype(q.dtype), preferred_element_type=f32)
        logits = logits * (1.0 / math.sqrt(q.shape[-1]))
        seen = jnp.arange(S)[None, None, :] <= positions[:, :, None]  # [B,T,S]
        logits = jnp.where(seen[:, None], logits, jnp.finfo(f32).min)
        probs = jax.nn.softmax(logits, axis=-1).astype(cv.dtype)
        return jnp.einsum("bhts,bhsk->bthk", probs, cv).astype(q.dtype)


class GPT(nn.Module):
    """Decoder-only transformer. ``__call__`` maps token ids [B,T] to logits [B,T,V].

    ``kv_mode`` and ``unstacked`` select the decoding modes and the per-layer inference layout (module docstring).
    """

    cfg: ModelConfig
    kv_mode: str = "none"
    unstacked: bool = False

    def setup(self):
        cfg = self.cfg
        if self.kv_mode not in KV_MODES:
            raise ValueError(f"GPT.kv_mode: {self.kv_mode!r} not in {KV_MODES}")
        pdtype = DTYPES[cfg.param_dtype]
        self.wte = Embed(cfg.vocab_padded, cfg.d_model, cfg)
        self.wpe = nn.Embed(cfg.max_len, cfg.d_model, param_dtype=pdtype, dtype=DTYPES[cfg.dtype],
                            embedding_init=_init(0.01, (None, "embed")))
        block = Block
        if REMAT_POLICIES.get(cfg.remat) is not None:
            # static_argnums counts self: deterministic is argument 3.
            block = nn.remat(Block, policy=REMAT_POLICIES[cfg.remat], prevent_cse=False, static_argnums=(3,))
        if self.unstacked:
            self.blocks = [block(cfg, self.kv_mode) for _ in range(cfg.n_layer)]  # blocks_0, blocks_1, ...
        else:
            stack = nn.scan(block, variable_axes={"params": 0, "cache": 0},
                            split_rngs={"params": True, "dropout": True},
                            in_axes=(nn.broadcast, nn.broadcast, nn.broadcast), length=cfg.n_layer,
                            unroll=min(cfg.scan_unroll, cfg.n_layer),
                            metadata_params={nn.PARTITION_NAME: "layers"})
            self.blocks = stack(cfg, self.kv_mode)
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
            if self.kv_mode == "decode":
                raise ValueError("kv_mode='decode' needs the positions of the new tokens")
            positions = jnp.arange(tokens.shape[1])[None, :]
        if self.kv_mode == "decode":  # a finished row rides along past the end; keep its lookup in range
            positions = jnp.minimum(positions, self.cfg.max_len - 1)
        x = self.wte(tokens) + self.wpe(positions)  # [B,T,D]
        x = nn.with_logical_constraint(x, ("act_batch", "act_len", "act_embed"))
        x = self.drop(x, deterministic=deterministic)
        mask = None
        if segment_ids is not None:
            mask = (segment_ids[:, None, :, None] == segment_ids[:, None, None, :])  # [B,1,T,T]
        slots = positions if self.kv_mode == "decode" else None
        if self.unstacked:
            for block in self.blocks:
                x, _ = block(x, mask, deterministic, slots)
        else:
            x, _ = self.blocks(x, mask, deterministic, slots)
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

    def prefill(self, tokens: jax.Array, lengths: jax.Array) -> jax.Array:
        """Right-padded prompts [B,T] with ``lengths`` [B] (>= 1) real tokens -> logits [B,V] after each row's last
        real token. With kv_mode='prefill' the keys/values of slots 0..T-1 go to the cache (pad slots included:
        a decode step overwrites slot p before any position >= p attends to it)."""
        h = self.hidden(tokens)
        last = jnp.take_along_axis(h, (lengths - 1)[:, None, None], axis=1)  # [B,1,D]
        return self.logits(last)[:, 0]

    def decode(self, tokens: jax.Array, positions: jax.Array) -> jax.Array:
        """New tokens [B,T] at ``positions`` [B,T] -> logits [B,T,V] (kv_mode='decode': attends over the cache)."""
        return self.logits(self.hidden(tokens, positions))


def unstack_blocks(params: dict) -> dict:
    """The stacked param tree (``blocks`` leaves [L, ...]) -> the inference layout ``blocks_0`` ... ``blocks_{L-1}``.

    Works on numpy or jax arrays (jit it for device arrays); every other key is kept as is.
    """
    if "blocks" not in params:
        raise ValueError(f"param tree has no 'blocks' (keys: {sorted(params)})")
    n_layer = jax.tree.leaves(params["blocks"])[0].shape[0]
    out = {k: v for k, v in params.items() if k != "blocks"}
    for i in range(n_layer):
        out[f"blocks_{i}"] = jax.tree.map(lambda x, i=i: x[i], params["blocks"])
    return out


def inference_layout(params: dict) -> dict:
    """The stacked param tree -> the layout decoding reads fastest: blocks unstacked (``unstack_blocks``) and a
    float token table stored transposed (``wte/embedding_t`` [D, V]; an int8 table stays [V, D]). Jit it for device
    arrays; ``GPT(cfg, unstacked=True)`` runs the result."""
    out = unstack_blocks(params) if "blocks" in params else dict(params)
    wte = out["wte"]
    if "embedding" in wte and wte["embedding"].dtype != jnp.int8:
        out["wte"] = {"embedding_t": wte["embedding"].T}
    return out


def stack_blocks(params: dict) -> dict:
    """Inverse of ``unstack_blocks``: ``blocks_0`` ... -> ``blocks`` with leaves stacked on a leading axis."""
    layers = sorted((k for k in params if k.startswith("blocks_")), key=lambda k: int(k.split("_")[1]))
    if not layers:
        raise ValueError(f"param tree has no 'blocks_<i>' (keys: {sorted(params)})")
    out = {k: v for k, v in params.items() if not k.startswith("blocks_")}
    out["blocks"] = jax.tree.map(lambda *xs: jnp.stack(xs), *(params[k] for k in layers))
    return out


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
