"""HuggingFace GPT-2 <-> flaxgpt: config fields and the parameter mapping, on numpy arrays.

transformers' GPT-2 stores its projections as ``Conv1D`` weights, [in, out] (the transpose of
``nn.Linear``), so they map onto flaxgpt kernels by reshapes alone and the conversion is exact::

    transformer.wte.weight               [V, D]     wte.embedding            [V_padded, D]  (padding rows 0)
    transformer.wpe.weight               [T, D]     wpe.embedding            [T, D]
    transformer.h.{i}.ln_1.weight/bias   [D]        blocks.ln_1.scale/bias   [L, D]         (layers stacked)
    transformer.h.{i}.attn.c_attn.weight [D, 3D]    blocks.c_attn.kernel     [L, D, 3, H, K] (q|k|v, head-major)
    transformer.h.{i}.attn.c_attn.bias   [3D]       blocks.c_attn.bias       [L, 3, H, K]
    transformer.h.{i}.attn.c_proj.weight [D, D]     blocks.c_proj.kernel     [L, H, K, D]
    transformer.h.{i}.mlp.c_fc.weight    [D, F]     blocks.c_fc.kernel       [L, D, F]
    transformer.h.{i}.mlp.c_proj.weight  [F, D]     blocks.mlp_proj.kernel   [L, F, D]
    transformer.ln_f.weight/bias         [D]        ln_f.scale/bias          [D]
    lm_head.weight (tied to wte; usually not saved)  -- the LM head is wte in both
    (none)                                          value_head, reward_head  zeros on import, dropped on export

Checkpoints saved from ``GPT2Model`` (the original hub files) lack the ``transformer.`` prefix, and
older ones carry the attention-mask buffers ``attn.bias``/``attn.masked_bias``; both are accepted.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np

from flaxgpt.model.gpt import DTYPES, ModelConfig

PREFIX = "transformer."
# GELU variants that are exactly flaxgpt's tanh approximation (gelu_fast is the same formula, written differently).
TANH_GELUS = ("gelu_new", "gelu_pytorch_tanh", "gelu_fast")
_BUFFERS = ("attn.bias", "attn.masked_bias")  # causal-mask buffers of old checkpoints, not parameters
# GPT2Config's defaults, for config.json files that leave a field out.
_HF_DEFAULTS = {"vocab_size": 50257, "n_positions": 1024, "n_embd": 768, "n_layer": 12, "n_head": 12,
                "n_inner": None, "activation_function": "gelu_new", "resid_pdrop": 0.1, "layer_norm_epsilon": 1e-5,
                "scale_attn_weights": True, "scale_attn_by_inverse_layer_idx": False, "add_cross_attention": False,
                "tie_word_embeddings": True}


def model_fields_from_hf(hf: Mapping[str, Any], where: str = "config.json") -> dict[str, Any]:
    """GPT2Config fields (a parsed ``config.json``) -> the ``model`` section of a flaxgpt config.

    Raises ValueError naming ``where`` and the field for a config flaxgpt's GPT cannot reproduce exactly.
    """
    c = {**_HF_DEFAULTS, **{k: v for k, v in hf.items() if v is not None or k == "n_inner"}}
    model_type = hf.get("model_type")
    if model_type != "gpt2":
        raise ValueError(f"{where}: model_type is {model_type!r}; only GPT-2 ('gpt2') checkpoints can be imported")
    rules = [
        (c["activation_function"] in TANH_GELUS, "activation_function",
         f"{c['activation_function']!r}: flaxgpt uses the tanh GELU ({', '.join(TANH_GELUS)})"),
        (c["scale_attn_weights"] is True, "scale_attn_weights", "must be true (scores scaled by 1/sqrt(head size))"),
        (not c["scale_attn_by_inverse_layer_idx"], "scale_attn_by_inverse_layer_idx", "must be false"),
        (not c["add_cross_attention"], "add_cross_attention", "must be false (decoder-only GPT-2)"),
        (c["tie_word_embeddings"] is not False, "tie_word_embeddings", "must be true (flaxgpt's LM head is wte)"),
        (math.isclose(float(c["layer_norm_epsilon"]), 1e-5), "layer_norm_epsilon",
         f"{c['layer_norm_epsilon']}: flaxgpt's LayerNorm uses 1e-5"),
        (c["n_embd"] % c["n_head"] == 0, "n_embd", f"{c['n_embd']} is not divisible by n_head={c['n_head']}"),
    ]
    for ok, field, why in rules:
        if not ok:
            raise ValueError(f"{where}: {field} {why}")
    return {"vocab_size": int(c["vocab_size"]), "max_len": int(c["n_positions"]), "n_layer": int(c["n_layer"]),
            "n_head": int(c["n_head"]), "d_model": int(c["n_embd"]), "d_ff": int(c["n_inner"] or 0),
            "dropout": float(c["resid_pdrop"]), "bias": True}


def hf_config(mcfg: ModelConfig, vocab_size: int, *, bos_id: int, eos_id: int, dtype: str = "float32") -> dict:
    """The ``config.json`` of a GPT2LMHeadModel with ``mcfg``'s shapes and ``vocab_size`` ids."""
    return {
        "architectures": ["GPT2LMHeadModel"], "model_type": "gpt2",
        "vocab_size": vocab_size, "n_positions": mcfg.max_len, "n_embd": mcfg.d_model, "n_layer": mcfg.n_layer,
        "n_head": mcfg.n_head, "n_inner": mcfg.d_ff or None, "activation_function": "gelu_new",
        "resid_pdrop": mcfg.dropout, "embd_pdrop": mcfg.dropout, "attn_pdrop": 0.0,  # flaxgpt has no attention dropout
        "layer_norm_epsilon": 1e-5, "initializer_range": 0.02, "scale_attn_weights": True,
        "scale_attn_by_inverse_layer_idx": False, "reorder_and_upcast_attn": False, "add_cross_attention": False,
        "tie_word_embeddings": True, "use_cache": True, "bos_token_id": bos_id, "eos_token_id": eos_id,
        "dtype": dtype,
    }


def _prefix(tensors: Mapping[str, np.ndarray], where: str) -> str:
    for prefix in (PREFIX, ""):
        if prefix + "wte.weight" in tensors:
            return prefix
    raise ValueError(f"{where}: no 'transformer.wte.weight' (or 'wte.weight') tensor: not a GPT-2 checkpoint")


def hf_to_params(tensors: Mapping[str, np.ndarray], mcfg: ModelConfig, where: str = "checkpoint") -> dict:
    """HF GPT-2 tensors (name -> array) -> flaxgpt's param tree (numpy, ``mcfg.param_dtype``).

    ``mcfg`` gives the shapes (``model_fields_from_hf`` of the same checkpoint). Embedding rows past
    ``vocab_size`` (padding to a multiple of 128) and the value/reward heads are zero. Raises
    ValueError naming the tensor when one is missing, has the wrong shape, or is not used.
    """
    D, H, K, F, L = mcfg.d_model, mcfg.n_head, mcfg.head_dim, mcfg.ffn, mcfg.n_layer
    dtype = np.dtype(DTYPES[mcfg.param_dtype])
    pre = _prefix(tensors, where)
    used: set[str] = set()

    def get(name: str, shape: tuple[int, ...]) -> np.ndarray:
        key = pre + name
        if key not in tensors:
            raise ValueError(f"{where}: tensor {key!r} is missing (config.json says {L} layers, d_model {D})")
        arr = tensors[key]
        if tuple(arr.shape) != shape:
            raise ValueError(f"{where}: tensor {key!r} has shape {list(arr.shape)}, config.json implies {list(shape)}")
        used.add(key)
        return np.asarray(arr, dtype=dtype)

    def stack(name: str, shape: tuple[int, ...], to: tuple[int, ...]) -> np.ndarray:
        return np.stack([get(f"h.{i}.{name}", shape).reshape(to) for i in range(L)])

    wte = np.zeros((mcfg.vocab_padded, D), dtype)
    wte[:mcfg.vocab_size] = get("wte.weight", (mcfg.vocab_size, D))
    blocks = {
        "ln_1": {"scale": stack("ln_1.weight", (D,), (D,)), "bias": stack("ln_1.bias", (D,), (D,))},
        "c_attn": {"kernel": stack("attn.c_attn.weight", (D, 3 * D), (D, 3, H, K)),
                   "bias": stack("attn.c_attn.bias", (3 * D,), (3, H, K))},
        "c_proj": {"kernel": stack("attn.c_proj.weight", (D, D), (H, K, D)),
                   "bias": stack("attn.c_proj.bias", (D,), (D,))},
        "ln_2": {"scale": stack("ln_2.weight", (D,), (D,)), "bias": stack("ln_2.bias", (D,), (D,))},
        "c_fc": {"kernel": stack("mlp.c_fc.weight", (D, F), (D, F)), "bias": stack("mlp.c_fc.bias", (F,), (F,))},
        "mlp_proj": {"kernel": stack("mlp.c_proj.weight", (F, D), (F, D)),
                     "bias": stack("mlp.c_proj.bias", (D,), (D,))},
    }
    head = {"kernel": np.zeros((D, 1), np.float32), "bias": np.zeros((1,), np.float32)}
    params = {
        "wte": {"embedding": wte},
        "wpe": {"embedding": get("wpe.weight", (mcfg.max_len, D))},
        "blocks": blocks,
        "ln_f": {"scale": get("ln_f.weight", (D,)), "bias": get("ln_f.bias", (D,))},
        "value_head": {k: v.astype(dtype) for k, v in head.items()},
        "reward_head": {k: v.astype(dtype) for k, v in head.items()},
    }
    _check_lm_head(tensors, wte[:mcfg.vocab_size], where, used)
    extra = sorted(k for k in tensors if k not in used and not k.endswith(_BUFFERS))
    if extra:
        raise ValueError(f"{where}: {len(extra)} tensor(s) a GPT-2 LM with config.json's shapes does not have: "
                         f"{extra[:5]} (is n_layer in config.json right?)")
    return params


def _check_lm_head(tensors: Mapping[str, np.ndarray], wte: np.ndarray, where: str, used: set[str]) -> None:
    """An ``lm_head.weight``, when saved, must equal wte: flaxgpt's head is tied."""
    if "lm_head.weight" not in tensors:
        return
    head = tensors["lm_head.weight"]
    if head.shape != wte.shape or not np.array_equal(np.asarray(head, wte.dtype), wte):
        raise ValueError(f"{where}: lm_head.weight differs from the token embedding; flaxgpt ties its LM head to wte "
                         "and cannot import an untied one")
    used.add("lm_head.weight")


def params_to_hf(params: Mapping[str, Any], mcfg: ModelConfig, vocab_size: int) -> dict[str, np.ndarray]:
    """flaxgpt's param tree (numpy or jax leaves) -> GPT2LMHeadModel tensors with ``vocab_size`` embedding rows.

    The tied LM head is not written (transformers ties it to wte on load), nor are the value/reward
    heads (GPT-2 has none). A model without biases (``model.bias=False``) gets zero biases, which is
    the same function.
    """
    D, H, K, F, L = mcfg.d_model, mcfg.n_head, mcfg.head_dim, mcfg.ffn, mcfg.n_layer
    if not 0 < vocab_size <= mcfg.vocab_padded:
        raise ValueError(f"export vocab_size {vocab_size} must be in (0, {mcfg.vocab_padded}]")

    def leaf(*path: str) -> np.ndarray:
        return np.asarray(_get(params, path))

    wte = leaf("wte", "embedding")

    def bias(name: str, shape: tuple[int, ...]) -> np.ndarray:
        path = ("blocks", name, "bias") if len(shape) > 1 else (name, "bias")
        return leaf(*path) if mcfg.bias else np.zeros(shape, wte.dtype)

    out = {
        PREFIX + "wte.weight": wte[:vocab_size],
        PREFIX + "wpe.weight": leaf("wpe", "embedding"),
        PREFIX + "ln_f.weight": leaf("ln_f", "scale"),
        PREFIX + "ln_f.bias": bias("ln_f", (D,)),
    }
    per_layer = {
        "ln_1.weight": leaf("blocks", "ln_1", "scale"), "ln_1.bias": bias("ln_1", (L, D)),
        "attn.c_attn.weight": leaf("blocks", "c_attn", "kernel").reshape(L, D, 3 * D),
        "attn.c_attn.bias": bias("c_attn", (L, 3, H, K)).reshape(L, 3 * D),
        "attn.c_proj.weight": leaf("blocks", "c_proj", "kernel").reshape(L, D, D),
        "attn.c_proj.bias": bias("c_proj", (L, D)),
        "ln_2.weight": leaf("blocks", "ln_2", "scale"), "ln_2.bias": bias("ln_2", (L, D)),
        "mlp.c_fc.weight": leaf("blocks", "c_fc", "kernel"), "mlp.c_fc.bias": bias("c_fc", (L, F)),
        "mlp.c_proj.weight": leaf("blocks", "mlp_proj", "kernel"), "mlp.c_proj.bias": bias("mlp_proj", (L, D)),
    }
    for name, stacked in per_layer.items():
        for i in range(L):
            out[f"{PREFIX}h.{i}.{name}"] = stacked[i]
    return out


def _get(tree: Mapping[str, Any], path: tuple[str, ...]) -> Any:
    node = tree
    for i, key in enumerate(path):
        if not isinstance(node, Mapping) or key not in node:
            raise ValueError(f"param tree has no {'/'.join(path[: i + 1])}: not a flaxgpt GPT param tree")
        node = node[key]
    return node
