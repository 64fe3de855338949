"""``flaxgpt convert``: HuggingFace GPT-2 directories in and out of flaxgpt runs.

    flaxgpt convert import HF_DIR --out RUN_DIR [--tokenizer gpt2|flaxgpt|PATH] [--overwrite]
    flaxgpt convert export RUN_DIR --out HF_DIR [--step N] [--no-tokenizer-files] [--overwrite]

Fine-tune from an import with ``flaxgpt train CONFIG train.init_from=RUN_DIR`` (or point
``train.init_from`` at the HF directory itself).
"""

from __future__ import annotations

import argparse
import sys
import time

from flaxgpt.runs.hf.hf_export import export_hf
from flaxgpt.runs.hf.hf_import import import_hf


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Adds the ``import`` and ``export`` sub-commands of ``flaxgpt convert`` to ``parser``."""
    sub = parser.add_subparsers(dest="convert_command", required=True, metavar="{import,export}")
    p = sub.add_parser("import", help="a HuggingFace GPT-2 directory -> a flaxgpt run directory (step 0)")
    p.add_argument("hf_dir", metavar="HF_DIR", help="directory with config.json and model.safetensors "
                                                    "(or pytorch_model.bin, which needs torch)")
    p.add_argument("--out", required=True, metavar="RUN_DIR", help="run directory to create")
    p.add_argument("--tokenizer", default=None,
                   help="the run's tokenizer: gpt2, flaxgpt (adds the chat tokens; embedding resized) or a "
                        "tokenizer.json (default: the checkpoint's own)")
    p.add_argument("--overwrite", action="store_true", help="replace RUN_DIR if it exists")
    p = sub.add_parser("export", help="a flaxgpt run's checkpoint -> a directory transformers loads")
    p.add_argument("run_dir", metavar="RUN_DIR", help="flaxgpt run directory")
    p.add_argument("--out", required=True, metavar="HF_DIR", help="directory to write")
    p.add_argument("--step", type=int, default=None, help="checkpoint step (default: the latest)")
    p.add_argument("--no-tokenizer-files", action="store_true",
                   help="write no HuggingFace tokenizer.json/tokenizer_config.json")
    p.add_argument("--overwrite", action="store_true", help="replace HF_DIR even if it is not an earlier export")


def run(args: argparse.Namespace) -> int:
    """Runs ``flaxgpt convert import|export`` from parsed arguments; returns the exit status."""
    t0 = time.perf_counter()
    try:
        if args.convert_command == "import":
            out = import_hf(args.hf_dir, args.out, tokenizer=args.tokenizer, overwrite=args.overwrite)
            print(f"imported {args.hf_dir} -> {out} (step 0) in {time.perf_counter() - t0:.1f} s; fine-tune with: "
                  f"flaxgpt train CONFIG train.init_from={out}")
        else:
            out = export_hf(args.run_dir, args.out, step=args.step, tokenizer_files=not args.no_tokenizer_files,
                            overwrite=args.overwrite)
            print(f"exported {args.run_dir} -> {out} in {time.perf_counter() - t0:.1f} s; load it with: "
                  f"transformers.GPT2LMHeadModel.from_pretrained({str(out)!r})")
    except (FileNotFoundError, ImportError, ValueError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    return 0
