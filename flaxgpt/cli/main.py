"""The ``flaxgpt`` command: parse the command line, then call the library.

    flaxgpt ingest SOURCES_CONFIG --out DIR  a person's files -> private, deduplicated documents and shards
    flaxgpt audit SHARDS --canaries FILE     search shards for strings that must never be there
    flaxgpt tokenize INPUT... --out DIR       text files and folders -> token shards
    flaxgpt tokenize-chat INPUT... --out DIR  chat conversations -> SFT shards with loss masks
    flaxgpt convert import|export ...         HuggingFace GPT-2 checkpoint <-> flaxgpt run
    flaxgpt train CONFIG [key=value ...]      train (resumes from the run directory by default)
    flaxgpt run PIPELINE [key=value ...]      run a pipeline's stages in order (SFT, CAI, PM, PPO/DPO, eval)
    flaxgpt info RUN_DIR                      config, parameters, steps done, latest metrics
    flaxgpt sample RUN_DIR --prompt TEXT      continue a prompt (KV-cache decoding, streamed)
    flaxgpt chat RUN_DIR                      chat in the terminal
    flaxgpt serve RUN_DIR --port 8000         OpenAI-compatible API (/v1/completions, /v1/chat/completions, SSE)
    flaxgpt cai revise|label ...              Constitutional AI: critique/revision data, AI preference labels
    flaxgpt eval RUN_DIR... --suite SUITES    evaluate runs side by side -> report (md, html, json)
"""

from __future__ import annotations

import argparse
import logging
import sys

from flaxgpt.config import ConfigError


def _train(args: argparse.Namespace) -> int:
    from flaxgpt.config import load_config
    from flaxgpt.train.sharding import maybe_init_distributed
    from flaxgpt.train.trainer import NonFiniteLoss, train

    config = load_config(args.config, args.overrides)
    maybe_init_distributed()
    try:
        if config.train.stage == "ppo":
            from flaxgpt.train.ppo_trainer import train_ppo

            train_ppo(config)
        else:
            train(config)
    except NonFiniteLoss as err:
        print(f"error: {err}", file=sys.stderr)
        return 3
    return 0


def _add_train(p: argparse.ArgumentParser) -> None:
    p.add_argument("config", help="experiment file with get_config(), e.g. experiments/micro.py")
    p.add_argument("overrides", nargs="*", help="dotted overrides such as model.n_layer=4 train.steps=100")


def _run(args: argparse.Namespace) -> int:
    from flaxgpt.cai.pipeline import is_pipeline, run_pipeline
    from flaxgpt.config import read_config_file

    if not is_pipeline(read_config_file(args.config)):
        return _train(args)
    only = [s.strip() for s in args.only.split(",") if s.strip()]
    return run_pipeline(args.config, args.overrides, only)


def _info(args: argparse.Namespace) -> int:
    from flaxgpt.runs.info import describe_run

    print(describe_run(args.run_dir))
    return 0


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``flaxgpt`` console script; returns the exit status."""
    from flaxgpt.data import audit, ingest, tokenize

    parser = argparse.ArgumentParser(prog="flaxgpt", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("ingest", help="a person's files -> clean, private, deduplicated documents and token shards")
    ingest.add_arguments(p)
    p.set_defaults(func=ingest.run)
    from flaxgpt.cli import convert as convert_cli
    from flaxgpt.cli import sample as sample_cli

    p = sub.add_parser("sample", help="continue a prompt with a trained model (streamed)")
    sample_cli.add_arguments_sample(p)
    p.set_defaults(func=sample_cli.run_sample)
    p = sub.add_parser("chat", help="chat with a trained model in the terminal")
    sample_cli.add_arguments_chat(p)
    p.set_defaults(func=sample_cli.run_chat)
    from flaxgpt.serve import openai_api

    p = sub.add_parser("serve", help="serve a run over an OpenAI-compatible HTTP API (completions, chat, streaming)")
    openai_api.add_arguments(p)
    p.set_defaults(func=openai_api.run)

    p = sub.add_parser("convert", help="HuggingFace GPT-2 checkpoints: import into a run, export a run")
    convert_cli.add_arguments(p)
    p.set_defaults(func=convert_cli.run)
    p = sub.add_parser("audit", help="report any canary string found in token shards")
    audit.add_arguments(p)
    p.set_defaults(func=audit.run)
    from flaxgpt.data import chat

    p = sub.add_parser("tokenize-chat", help="chat conversations (OpenAI JSONL, hh-rlhf, OASST1) -> SFT shards")
    chat.add_arguments(p)
    p.set_defaults(func=chat.run)
    p = sub.add_parser("tokenize", help="text files and folders -> token shards")
    tokenize.add_arguments(p)
    p.set_defaults(func=tokenize.run)
    p = sub.add_parser("train", help="train a model from an experiment config")
    _add_train(p)
    p.set_defaults(func=_train)
    from flaxgpt.cli import cai as cai_cli

    p = sub.add_parser("cai", help="Constitutional AI data: critique/revision (revise), AI preference labels (label)")
    cai_cli.add_arguments(p)
    p.set_defaults(func=cai_cli.run)
    p = sub.add_parser("run", help="run a pipeline config (stages in order, done ones skipped) or a training config")
    p.add_argument("config", help="experiments/cai_micro.py (a pipeline) or any training experiment file")
    p.add_argument("overrides", nargs="*", help="dotted overrides, e.g. rl=dpo revise.rounds=4")
    p.add_argument("--only", default="", help="comma-separated stages to run (others are left alone)")
    p.set_defaults(func=_run)
    from flaxgpt.cli import eval as eval_cli

    p = sub.add_parser("eval", help="evaluate runs side by side (perplexity, facts, safety, ...) -> a report")
    eval_cli.add_arguments(p)
    p.set_defaults(func=eval_cli.run)
    p = sub.add_parser("info", help="describe a run directory")
    p.add_argument("run_dir")
    p.set_defaults(func=_info)

    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    try:
        return args.func(args)
    except (ConfigError, FileNotFoundError, ValueError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
