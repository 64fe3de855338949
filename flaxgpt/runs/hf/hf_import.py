"""``flaxgpt convert import HF_DIR --out RUN_DIR``: a HuggingFace GPT-2 directory -> a flaxgpt run at step 0.

The run directory is an ordinary one: ``config.json`` (the model section from the GPT-2 config, the
rest defaults) and an orbax checkpoint at step 0 holding a full TrainState (the converted params,
zero Adam moments, step 0) with the resolved config and the tokenizer's metadata. ``flaxgpt info``
reads it, and ``train.init_from=RUN_DIR`` fine-tunes from it.

Which tokenizer the ids mean: the ``flaxgpt_tokenizer.json`` that ``flaxgpt convert export`` writes,
when present (exact, personal vocabularies included); otherwise GPT-2's (any GPT-2 family checkpoint).
``tokenizer=`` picks another for the run (e.g. ``flaxgpt``, adding the chat tokens): the embedding is
resized with ``flaxgpt.data.vocab.resize_embeddings`` (new special tokens start at the mean embedding).
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import jax
import ml_collections
import numpy as np

from flaxgpt.config import default_config, to_json, validate
from flaxgpt.data.outdir import atomic_output_dir
from flaxgpt.data.tokenizer import SPEC_FILE, Tokenizer, get_tokenizer, load_tokenizer, save_spec, tokenizer_from_spec
from flaxgpt.data.vocab import resize_embeddings
from flaxgpt.model.gpt import ModelConfig
from flaxgpt.runs.hf.gpt2 import hf_to_params, model_fields_from_hf
from flaxgpt.runs.hf.hf_files import read_hf_config, read_hf_weights
from flaxgpt.train import checkpoint as ckpt
from flaxgpt.train.optim import make_optimizer
from flaxgpt.train.state import TrainState

FLAXGPT_TOKENIZER = "flaxgpt_tokenizer.json"  # our tokenizer spec, written next to exported HF weights
GPT2_VOCAB = 50257


def hf_tokenizer(hf_dir: str | Path, vocab_size: int) -> Tokenizer:
    """The tokenizer whose ids a HF GPT-2 directory's embedding rows follow.

    ``flaxgpt_tokenizer.json`` (written by export) if present, else GPT-2's. Raises ValueError when
    the checkpoint has fewer rows than that tokenizer has ids.
    """
    spec_path = Path(hf_dir) / FLAXGPT_TOKENIZER
    if spec_path.is_file():
        try:
            tok = tokenizer_from_spec(json.loads(spec_path.read_text(encoding="utf-8")))
        except (json.JSONDecodeError, UnicodeDecodeError) as err:
            raise ValueError(f"{spec_path}: not valid JSON ({err})") from None
    else:
        tok = get_tokenizer("gpt2")
    if vocab_size < tok.vocab_size:
        raise ValueError(f"{Path(hf_dir) / 'config.json'}: vocab_size {vocab_size} is smaller than tokenizer "
                         f"{tok.name!r} ({tok.vocab_size} ids); flaxgpt imports GPT-2 vocabularies "
                         f"({GPT2_VOCAB} ids or more)")
    return tok


def read_hf_model(hf_dir: str | Path) -> tuple[dict[str, Any], ModelConfig, Tokenizer]:
    """Reads a HF GPT-2 directory: (flaxgpt param tree as numpy float32, its ModelConfig, its tokenizer)."""
    hf_dir = Path(hf_dir)
    fields = model_fields_from_hf(read_hf_config(hf_dir), where=str(hf_dir / "config.json"))
    mcfg = ModelConfig(**fields)
    tensors, source = read_hf_weights(hf_dir)
    tokenizer = hf_tokenizer(hf_dir, mcfg.vocab_size)
    return hf_to_params(tensors, mcfg, where=source), mcfg, tokenizer


def retokenize(params: dict[str, Any], mcfg: ModelConfig, old: Tokenizer, new: Tokenizer,
               ) -> tuple[dict[str, Any], ModelConfig]:
    """Params and config for tokenizer ``new`` instead of ``old`` (unchanged when they are the same)."""
    if old.metadata()["hash"] == new.metadata()["hash"]:
        return params, mcfg
    mcfg = dataclasses.replace(mcfg, vocab_size=new.vocab_size)
    return dict(resize_embeddings(params, old, new, mcfg.vocab_padded)), mcfg


def run_config(mcfg: ModelConfig, tokenizer: str, out_dir: Path) -> ml_collections.ConfigDict:
    """The resolved config of an imported run: the model's shapes, its tokenizer, everything else default."""
    c = default_config()
    for f in dataclasses.fields(ModelConfig):
        if f.name in c.model:
            c.model[f.name] = getattr(mcfg, f.name)
    c.data.tokenizer = tokenizer
    c.data.seq_len = mcfg.max_len
    c.run.name = out_dir.name
    c.run.dir = str(out_dir)
    validate(c)
    return c


def write_run(out_dir: str | Path, config: ml_collections.ConfigDict, params: dict[str, Any],
              tokenizer: Tokenizer) -> Path:
    """Writes ``config.json`` and a step-0 checkpoint (TrainState with fresh optimizer state) to ``out_dir``."""
    out_dir = Path(out_dir)
    with jax.default_device(jax.devices("cpu")[0]):  # host memory, whatever accelerator is attached
        params = jax.tree.map(np.asarray, params)
        opt_state = make_optimizer(config.train).init(params)
        rng = jax.random.split(jax.random.PRNGKey(config.train.seed))[1]  # as create_train_state draws it
        state = TrainState(step=np.zeros((), np.int32), params=params, opt_state=opt_state, rng=rng)
        manager = ckpt.make_manager(out_dir, keep=config.checkpoint.keep)
        try:
            ckpt.save(manager, 0, state, None, config.to_dict(), tokenizer.metadata(), force=True, wait=True)
            manager.wait_until_finished()
        finally:
            manager.close()
    (out_dir / "config.json").write_text(to_json(config) + "\n")
    return out_dir


def import_hf(hf_dir: str | Path, out_dir: str | Path, *, tokenizer: str | None = None,
              overwrite: bool = False) -> Path:
    """Converts the HF GPT-2 directory ``hf_dir`` into the flaxgpt run directory ``out_dir``; returns it.

    ``tokenizer`` ('gpt2', 'flaxgpt' or a tokenizer.json path) sets the run's tokenizer (default: the
    checkpoint's own). ``out_dir`` must be new or empty unless ``overwrite`` (ValueError otherwise). The
    run is written next to ``out_dir`` and renamed into place, so a failed import leaves nothing behind.
    """
    out_dir = Path(out_dir)
    if out_dir.is_dir() and any(out_dir.iterdir()) and not overwrite:  # never replace a run by accident
        raise ValueError(f"--out {out_dir} exists and is not empty; pass --overwrite to replace it")
    params, mcfg, src_tok = read_hf_model(hf_dir)
    tok = load_tokenizer(tokenizer) if tokenizer else src_tok
    params, mcfg = retokenize(params, mcfg, src_tok, tok)
    with atomic_output_dir(out_dir, lambda name: True, "flaxgpt convert import") as tmp:
        if tok.personal:  # a personal vocabulary is only known from its spec: keep it with the run
            config = run_config(mcfg, str(save_spec(tmp, tok)), out_dir)  # validated while it is in tmp
            config.data.tokenizer = str((out_dir / SPEC_FILE).absolute())  # where it will be after the swap
        else:
            config = run_config(mcfg, tok.name, out_dir)
        write_run(tmp, config, params, tok)
    return out_dir
