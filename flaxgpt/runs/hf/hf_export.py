"""``flaxgpt convert export RUN_DIR --out HF_DIR [--step N]``: a run's checkpoint -> a transformers GPT-2 directory.

``HF_DIR`` then holds what ``transformers.GPT2LMHeadModel.from_pretrained(HF_DIR)`` loads, offline:

    config.json              GPT2Config fields (vocab_size = the run tokenizer's ids: 50257 gpt2, 50265 flaxgpt)
    generation_config.json   bos/eos/pad ids (flaxgpt: generation also stops at <|end|>)
    model.safetensors        the weights, written with numpy; embedding unpadded, tied LM head not stored,
                             the value/reward heads left out (GPT-2 has none)
    flaxgpt_tokenizer.json   flaxgpt's tokenizer spec: importing the directory again restores the exact tokenizer
    tokenizer.json, tokenizer_config.json
                             HuggingFace tokenizer files (gpt2 and flaxgpt tokenizers; the flaxgpt special tokens
                             are special added tokens, with a chat template). Not written for personal vocabularies.

The directory is written next to its final place and renamed into it, so an interrupted export leaves nothing.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from flaxgpt.data.chat_template import END
from flaxgpt.data.outdir import atomic_output_dir
from flaxgpt.data.tokenizer import Tokenizer
from flaxgpt.model.gpt import DTYPES, ModelConfig
from flaxgpt.runs.hf.gpt2 import hf_config, params_to_hf
from flaxgpt.runs.hf.hf_files import SAFETENSORS
from flaxgpt.runs.hf.hf_import import FLAXGPT_TOKENIZER
from flaxgpt.runs.hf.hf_tokenizer import write_hf_tokenizer
from flaxgpt.runs.hf.safetensors_io import write_safetensors
from flaxgpt.runs.rundir import read_run_params, run_tokenizer

EXPORT_FILES = frozenset({"config.json", "generation_config.json", SAFETENSORS, FLAXGPT_TOKENIZER, "tokenizer.json",
                          "tokenizer_config.json"})


def export_hf(run_dir: str | Path, out_dir: str | Path, *, step: int | None = None, tokenizer_files: bool = True,
              overwrite: bool = False) -> Path:
    """Exports checkpoint ``step`` (default: latest) of ``run_dir`` to the HF directory ``out_dir``; returns it.

    ``out_dir`` may be new, empty or an earlier export; anything else needs ``overwrite`` (ValueError otherwise).
    """
    run_dir, out_dir = Path(run_dir), Path(out_dir)
    config, step, params, _ = read_run_params(run_dir, step)
    tok = run_tokenizer(run_dir, config, step)
    mcfg = ModelConfig.from_config(config.model)
    if mcfg.vocab_size < tok.vocab_size:
        raise ValueError(f"{run_dir}: model.vocab_size={mcfg.vocab_size} is smaller than its tokenizer "
                         f"{tok.name!r} ({tok.vocab_size} ids)")
    tensors = params_to_hf(params, mcfg, tok.vocab_size)
    dtype = str(np.asarray(params["wte"]["embedding"]).dtype)

    is_own = (lambda name: True) if overwrite else EXPORT_FILES.__contains__  # an earlier export is replaced
    with atomic_output_dir(out_dir, is_own, "flaxgpt convert export (or pass --overwrite)") as tmp:
        write_safetensors(tmp / SAFETENSORS, tensors, metadata={"format": "pt"})
        _write_json(tmp / "config.json", hf_config(mcfg, tok.vocab_size, bos_id=tok.eot_id, eos_id=tok.eot_id,
                                                   dtype=dtype if dtype in DTYPES else "float32"))
        _write_json(tmp / "generation_config.json", generation_config(tok))
        _write_json(tmp / FLAXGPT_TOKENIZER, tok.spec())
        if tokenizer_files and not tok.personal:
            write_hf_tokenizer(tmp, tok, mcfg.max_len)
    return out_dir


def generation_config(tokenizer: Tokenizer) -> dict:
    """``generation_config.json``: generation stops at <|endoftext|> (and <|end|>, the chat end of turn)."""
    eos = [tokenizer.eot_id]
    if END in tokenizer.special_ids:
        eos.append(tokenizer.special_ids[END])
    out = {"bos_token_id": tokenizer.eot_id, "eos_token_id": eos if len(eos) > 1 else eos[0]}
    if tokenizer.pad_id is not None:
        out["pad_token_id"] = tokenizer.pad_id
    return out


def _write_json(path: Path, content: dict) -> None:
    path.write_text(json.dumps(content, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
