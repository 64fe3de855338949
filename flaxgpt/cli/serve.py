"""``flaxgpt serve RUN_DIR``: the command line of the OpenAI-compatible server (``flaxgpt.serve.openai_api``)."""

from __future__ import annotations

import argparse

from flaxgpt.serve.openai_api import serve


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Adds the ``flaxgpt serve`` arguments to ``parser``."""
    parser.add_argument("run_dir", metavar="RUN_DIR", help="a training run directory (its latest checkpoint)")
    parser.add_argument("--host", default="127.0.0.1", help="interface to listen on (0.0.0.0: every interface)")
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--step", type=int, default=None, help="serve this checkpoint step instead of the latest")
    parser.add_argument("--int8", action="store_true", help="int8 weights (flaxgpt.infer.quant)")
    parser.add_argument("--max-len", type=int, default=None, help="KV-cache length (default: the model's context)")
    parser.add_argument("--name", default=None, help="the model id clients send (default: the run directory name)")
    parser.add_argument("--api-key", default=None, help="require 'Authorization: Bearer KEY' (default: open)")
    parser.add_argument("--warmup", action="store_true", help="compile every bucket before serving")


def run(args: argparse.Namespace) -> int:
    """``flaxgpt serve``: serves until interrupted; returns the exit status."""
    serve(args.run_dir, args.host, args.port, step=args.step, int8=args.int8, max_len=args.max_len, name=args.name,
          api_key=args.api_key, warmup=args.warmup)
    return 0
