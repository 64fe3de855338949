"""The ``flaxgpt`` command: a table of subcommands; each parses its arguments and calls the library.

    flaxgpt ingest SOURCES_CONFIG --out DIR  a person's files -> private, deduplicated documents and shards
    flaxgpt audit SHARDS --canaries FILE     search shards for strings that must never be there
    flaxgpt tokenize INPUT... --out DIR       text files and folders -> token shards
    flaxgpt tokenize-chat INPUT... --out DIR  chat conversations -> SFT shards with loss masks
    flaxgpt convert import|export ...         HuggingFace GPT-2 checkpoint <-> flaxgpt run
    flaxgpt train CONFIG [key=value ...]      train (resumes from the run directory by default)
    flaxgpt run PIPELINE [key=value ...]      run a pipeline's stages in order (SFT, CAI, PM, PPO/DPO, eval)
    flaxgpt sweep SWEEP [key=value ...]       one config over a grid of overrides -> results table and plot
    flaxgpt preflight CONFIG [--topology T]   will the train step fit its hardware (compiled for TPUs), how fast
    flaxgpt info RUN_DIR                      config, parameters, steps done, latest metrics
    flaxgpt sample RUN_DIR --prompt TEXT      continue a prompt (KV-cache decoding, streamed)
    flaxgpt chat RUN_DIR                      chat in the terminal
    flaxgpt serve RUN_DIR --port 8000         OpenAI-compatible API (/v1/completions, /v1/chat/completions, SSE)
    flaxgpt cai revise|label ...              Constitutional AI: critique/revision data, AI preference labels
    flaxgpt eval RUN_DIR... --suite SUITES    evaluate runs side by side -> report (md, html, json)
"""

from __future__ import annotations

import argparse
import dataclasses
import importlib
import logging
import sys

from flaxgpt.config import ConfigError

USAGE_ERROR = 2  # exit status of a bad config, missing file or bad value (the message names it)


@dataclasses.dataclass(frozen=True)
class Command:
    """One subcommand: its module in ``flaxgpt.cli``, the functions there that add its arguments and run it."""

    name: str
    module: str
    arguments: str
    run: str
    help: str


COMMANDS = (
    Command("ingest", "data", "add_arguments_ingest", "run_ingest",
            "a person's files -> clean, private, deduplicated documents and token shards"),
    Command("audit", "data", "add_arguments_audit", "run_audit", "report any canary string found in token shards"),
    Command("tokenize", "data", "add_arguments_tokenize", "run_tokenize", "text files and folders -> token shards"),
    Command("tokenize-chat", "data", "add_arguments_tokenize_chat", "run_tokenize_chat",
            "chat conversations (OpenAI JSONL, hh-rlhf, OASST1) -> SFT shards"),
    Command("convert", "convert", "add_arguments", "run",
            "HuggingFace GPT-2 checkpoints: import into a run, export a run"),
    Command("train", "train", "add_train_arguments", "run_train", "train a model from an experiment config"),
    Command("run", "train", "add_run_arguments", "run_pipeline",
            "run a pipeline config (stages in order, done ones skipped) or a training config"),
    Command("sweep", "sweep", "add_arguments", "run",
            "train one config over a grid or list of overrides (finished runs skipped) -> results table and plot"),
    Command("preflight", "preflight", "add_arguments", "run",
            "per-device memory and step time of configs on their hardware (TPU: the real step compiled ahead)"),
    Command("info", "train", "add_info_arguments", "run_info", "describe a run directory"),
    Command("sample", "sample", "add_arguments_sample", "run_sample",
            "continue a prompt with a trained model (streamed)"),
    Command("chat", "sample", "add_arguments_chat", "run_chat", "chat with a trained model in the terminal"),
    Command("serve", "serve", "add_arguments", "run",
            "serve a run over an OpenAI-compatible HTTP API (completions, chat, streaming)"),
    Command("cai", "cai", "add_arguments", "run",
            "Constitutional AI data: critique/revision (revise), AI preference labels (label)"),
    Command("eval", "eval", "add_arguments", "run",
            "evaluate runs side by side (perplexity, facts, safety, ...) -> a report"),
)


def _parsers(argv: list[str]) -> tuple[argparse.ArgumentParser, argparse.ArgumentParser | None]:
    """The top-level parser and the parser of the command ``argv`` names (None if it names none)."""
    parser = argparse.ArgumentParser(prog="flaxgpt", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    chosen = None
    for command in COMMANDS:
        p = sub.add_parser(command.name, help=command.help, description=command.help)
        if argv[:1] == [command.name]:
            module = importlib.import_module(f"flaxgpt.cli.{command.module}")
            getattr(module, command.arguments)(p)
            p.set_defaults(func=getattr(module, command.run))
            chosen = p
    return parser, chosen


def build_parser(argv: list[str]) -> argparse.ArgumentParser:
    """The parser: every command with its help; the arguments of the one ``argv`` names, from its module.

    Only the chosen command's module is imported (by name, from the table): ``flaxgpt --help`` and the worker
    processes ``flaxgpt ingest`` spawns (which re-import this entry point) do not load JAX and the models.
    """
    return _parsers(argv)[0]


def parse_args(argv: list[str]) -> argparse.Namespace:
    """Takes the command line (without the program name); returns its parsed arguments.

    Positionals may come after options (``flaxgpt ingest cfg --out DIR workers=1``): a command without
    sub-commands of its own is parsed with argparse's intermixed parsing, so ``key=value`` overrides (and
    run directories, inputs) work anywhere on the line. ``cai`` and ``convert`` have sub-commands, which
    intermixed parsing does not support; they are parsed as usual.
    """
    parser, chosen = _parsers(argv)
    if chosen is None:
        return parser.parse_args(argv)
    try:
        args = chosen.parse_intermixed_args(argv[1:])
    except TypeError:  # argparse refuses intermixed parsing of sub-commands before reading anything
        return parser.parse_args(argv)
    args.command = argv[0]
    return args


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``flaxgpt`` console script; returns the exit status."""
    argv = sys.argv[1:] if argv is None else list(argv)
    args = parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    try:
        return args.func(args)
    except (ConfigError, FileNotFoundError, ValueError) as err:
        print(f"error: {err}", file=sys.stderr)
        return USAGE_ERROR


if __name__ == "__main__":
    sys.exit(main())
