"""A HuggingFace model directory as transformers saves it: ``config.json`` plus weights, read without torch.

Weights are read from, in this order of preference: ``model.safetensors``, a sharded
``model.safetensors.index.json``, ``pytorch_model.bin`` or a sharded ``pytorch_model.bin.index.json``.
safetensors files are parsed with numpy (``safetensors_io``); ``.bin`` files are pickles that only
torch can open, so they need torch installed (it is imported only then).
"""

from __future__ import annotations

import json
from pathlib import Path

import ml_dtypes
import numpy as np

from flaxgpt.runs.hf.safetensors_io import read_safetensors

SAFETENSORS = "model.safetensors"
SAFETENSORS_INDEX = "model.safetensors.index.json"
TORCH_BIN = "pytorch_model.bin"
TORCH_BIN_INDEX = "pytorch_model.bin.index.json"


def read_hf_config(hf_dir: str | Path) -> dict:
    """The parsed ``config.json`` of a HuggingFace model directory."""
    path = Path(hf_dir) / "config.json"
    if not path.is_file():
        raise FileNotFoundError(f"{hf_dir} is not a HuggingFace model directory (no config.json)")
    try:
        config = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise ValueError(f"{path}: not valid JSON ({err})") from None
    if not isinstance(config, dict):
        raise ValueError(f"{path}: expected a JSON object")
    return config


def read_hf_weights(hf_dir: str | Path) -> tuple[dict[str, np.ndarray], str]:
    """All tensors of a HuggingFace model directory (name -> numpy array) and the file(s) they came from."""
    d = Path(hf_dir)
    if (d / SAFETENSORS).is_file():
        return read_safetensors(d / SAFETENSORS), str(d / SAFETENSORS)
    if (d / SAFETENSORS_INDEX).is_file():
        return _read_sharded(d / SAFETENSORS_INDEX, read_safetensors), str(d / SAFETENSORS_INDEX)
    if (d / TORCH_BIN).is_file():
        return read_torch_bin(d / TORCH_BIN), str(d / TORCH_BIN)
    if (d / TORCH_BIN_INDEX).is_file():
        return _read_sharded(d / TORCH_BIN_INDEX, read_torch_bin), str(d / TORCH_BIN_INDEX)
    raise FileNotFoundError(f"{d}: no weights found (expected {SAFETENSORS}, {SAFETENSORS_INDEX}, {TORCH_BIN} or "
                            f"{TORCH_BIN_INDEX})")


def _read_sharded(index_path: Path, read_one) -> dict[str, np.ndarray]:
    """Tensors of a sharded checkpoint: the index's ``weight_map`` names the file of each tensor."""
    try:
        weight_map = json.loads(index_path.read_text(encoding="utf-8"))["weight_map"]
    except (json.JSONDecodeError, KeyError, TypeError) as err:
        raise ValueError(f"{index_path}: not a checkpoint index with a 'weight_map' ({err!r})") from None
    out: dict[str, np.ndarray] = {}
    for file in sorted(set(weight_map.values())):
        shard = index_path.parent / file
        if not shard.is_file():
            raise FileNotFoundError(f"{index_path} lists {file}, which is missing")
        out.update(read_one(shard))
    missing = sorted(set(weight_map) - set(out))
    if missing:
        raise ValueError(f"{index_path}: tensors listed in weight_map are in none of the shards: {missing[:5]}")
    return out


def read_torch_bin(path: str | Path) -> dict[str, np.ndarray]:
    """Tensors of a ``pytorch_model.bin`` (a torch pickle, loaded with ``weights_only``); needs torch."""
    try:
        import torch  # optional and heavy: only .bin checkpoints need it (never a flaxgpt dependency)
    except ImportError:
        raise ImportError(f"{path} is a pickled PyTorch checkpoint and reading it needs torch "
                          "(pip install torch); or save the model as model.safetensors") from None
    state = torch.load(path, map_location="cpu", weights_only=True)
    if not isinstance(state, dict):
        raise ValueError(f"{path}: expected a state dict (name -> tensor), got {type(state).__name__}")
    out = {}
    for name, t in state.items():
        if not isinstance(t, torch.Tensor):
            raise ValueError(f"{path}: entry {name!r} is a {type(t).__name__}, not a tensor")
        t = t.detach().contiguous()
        if t.dtype == torch.bfloat16:  # numpy has no bfloat16: reinterpret the bits
            out[name] = t.view(torch.int16).numpy().view(ml_dtypes.bfloat16)
        else:
            out[name] = t.numpy()
    return out
