"""``train.init_from``: a fresh run's first parameters from another run or a HuggingFace GPT-2 directory.

``train.init_from`` names one of:
  * a flaxgpt run directory: its latest checkpoint;
  * ``RUN_DIR/checkpoints/STEP``: that checkpoint;
  * a HuggingFace GPT-2 directory (``config.json`` with ``model_type: gpt2`` and weights), converted
    in memory by ``flaxgpt.runs.hf``.

Only the parameters are taken: the new run starts at step 0 with a fresh optimizer, its own data
and its own schedule. The source must have the run's architecture (layers, heads, widths, biases);
its context may be longer (the first ``model.max_len`` positions are kept). When the source's
tokenizer differs from ``data.tokenizer`` the token embedding is resized with
``flaxgpt.data.vocab.resize_embeddings`` (shared tokens keep their rows, new ones start from their pieces
or the mean); otherwise rows are copied and any extra padding rows are zero.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import jax
import ml_collections
import numpy as np

from flaxgpt.data.tokenizer import Tokenizer, load_tokenizer
from flaxgpt.data.vocab import resize_embeddings
from flaxgpt.model.gpt import DTYPES, ModelConfig
from flaxgpt.runs.hf.hf_import import read_hf_model
from flaxgpt.runs.rundir import read_run_params, run_tokenizer

ARCH_FIELDS = ("n_layer", "n_head", "d_model", "ffn", "bias")


@dataclasses.dataclass(frozen=True)
class SourceParams:
    """Parameters read from an ``init_from`` source, with what they need to be understood."""

    params: dict[str, Any]  # numpy leaves, the flaxgpt param tree
    model: ModelConfig
    tokenizer: Tokenizer
    where: str  # a description for messages: the checkpoint path or HF directory


def read_source(spec: str | Path) -> SourceParams:
    """Reads the parameters ``train.init_from`` names (see the module docstring)."""
    path = Path(spec).expanduser()
    if not path.exists():
        raise FileNotFoundError(f"train.init_from: {path} does not exist")
    if path.name.isdigit() and path.parent.name == "checkpoints":
        run_dir, step = path.parent.parent, int(path.name)
    elif (path / "checkpoints").is_dir():
        run_dir, step = path, None
    elif (path / "config.json").is_file() and "model_type" in _json(path / "config.json"):
        params, mcfg, tok = read_hf_model(path)
        return SourceParams(params, mcfg, tok, f"HuggingFace GPT-2 {path}")
    else:
        raise ValueError(f"train.init_from: {path} is neither a run directory with checkpoints, "
                         "RUN/checkpoints/STEP, nor a HuggingFace directory (config.json with a model_type)")
    config, step, params, _ = read_run_params(run_dir, step)
    where = str(run_dir / "checkpoints" / str(step))
    return SourceParams(params, ModelConfig.from_config(config.model), run_tokenizer(run_dir, config, step), where)


def adapt_params(src: SourceParams, mcfg: ModelConfig, tokenizer: Tokenizer) -> dict[str, Any]:
    """``src.params`` made to fit a run with model ``mcfg`` and ``tokenizer`` (numpy, ``mcfg.param_dtype``).

    Raises ValueError naming the config key when the architectures differ.
    """
    for name in ARCH_FIELDS:
        ours, theirs = getattr(mcfg, name), getattr(src.model, name)
        if ours != theirs:
            key = "d_ff" if name == "ffn" else name
            raise ValueError(f"train.init_from: model.{key} is {ours} in this run but {theirs} in {src.where}; "
                             f"set model.{key}={theirs}")
    if mcfg.max_len > src.model.max_len:
        raise ValueError(f"train.init_from: model.max_len={mcfg.max_len} exceeds the {src.model.max_len} positions "
                         f"{src.where} has learned; set model.max_len <= {src.model.max_len}")
    params = dict(src.params)
    params["wpe"] = {"embedding": np.asarray(params["wpe"]["embedding"])[: mcfg.max_len]}
    if src.tokenizer.metadata()["hash"] != tokenizer.metadata()["hash"]:
        params = dict(resize_embeddings(params, src.tokenizer, tokenizer, mcfg.vocab_padded))
    else:  # same ids: copy the rows both models have; rows only this one has are padding, zero
        old = np.asarray(params["wte"]["embedding"])
        wte = np.zeros((mcfg.vocab_padded, old.shape[1]), old.dtype)
        n = min(mcfg.vocab_size, src.model.vocab_size)
        wte[:n] = old[:n]
        params["wte"] = {"embedding": wte}
    if mcfg.vocab_size < tokenizer.vocab_size:
        raise ValueError(f"train.init_from: model.vocab_size={mcfg.vocab_size} is smaller than tokenizer "
                         f"{tokenizer.name!r} ({tokenizer.vocab_size} ids)")
    dtype = np.dtype(DTYPES[mcfg.param_dtype])
    return jax.tree.map(lambda x: np.asarray(x).astype(dtype, copy=False), params)


def init_state_from(config: ml_collections.ConfigDict, state: Any, shardings: Any) -> Any:
    """The trainer's fresh ``state`` with params from ``config.train.init_from``, placed with ``shardings``.

    ``state`` and ``shardings`` are what ``create_train_state`` returned; the optimizer state stays
    fresh (Adam moments start at zero whatever the params). Raises ValueError when the trees differ.
    """
    src = read_source(config.train.init_from)
    mcfg = ModelConfig.from_config(config.model)
    params = adapt_params(src, mcfg, load_tokenizer(config.data.tokenizer))
    problems = _tree_diff(state.params, params)
    if problems:
        raise ValueError(f"train.init_from: {src.where} gives a param tree unlike this run's model: {problems}")
    placed = jax.tree.map(lambda a, s: jax.make_array_from_callback(a.shape, s, lambda idx: a[idx]),
                          params, shardings.params)
    print(f"initialized parameters from {src.where} (tokenizer {src.tokenizer.name!r} -> "
          f"{config.data.tokenizer!r})")
    return state.replace(params=placed)


def _json(path: Path) -> dict:
    try:
        content = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise ValueError(f"{path}: not valid JSON ({err})") from None
    return content if isinstance(content, dict) else {}


def _tree_diff(want: Any, got: Any) -> str:
    """'' when two param trees have the same paths, shapes and dtypes, else the first few differences."""
    flat = lambda t: {jax.tree_util.keystr(p): (tuple(x.shape), np.dtype(x.dtype))
                      for p, x in jax.tree_util.tree_flatten_with_path(t)[0]}
    a, b = flat(want), flat(got)
    diffs = [f"{k} missing" for k in a if k not in b] + [f"{k} unexpected" for k in b if k not in a]
    diffs += [f"{k} is {list(b[k][0])} {b[k][1]}, run has {list(a[k][0])} {a[k][1]}"
              for k in a if k in b and a[k] != b[k]]
    return "; ".join(diffs[:5])
