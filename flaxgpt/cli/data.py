"""``flaxgpt ingest``, ``flaxgpt audit``, ``flaxgpt tokenize`` and ``flaxgpt tokenize-chat``: arguments and printing.

The work itself is the library's: ``flaxgpt.data.corpus.ingest``, ``flaxgpt.data.audit.audit``,
``flaxgpt.data.tokenize.tokenize_paths`` and ``flaxgpt.data.chat_shards.tokenize_chat``.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from flaxgpt.data.audit import audit, read_canaries
from flaxgpt.data.chat import FORMATS
from flaxgpt.data.chat_shards import tokenize_chat
from flaxgpt.data.corpus import ingest
from flaxgpt.data.shards import DEFAULT_MAX_TOKENS_PER_SHARD
from flaxgpt.data.tokenize import SUMMARY_FILE, tokenize_paths
from flaxgpt.infer.perplexity import PerplexityScorer
from flaxgpt.ingest.config import load_ingest_config
from flaxgpt.ingest.report import REPORT_MD

MAX_PRINTED = 200  # audit findings printed; the report holds all of them


def add_arguments_ingest(parser: argparse.ArgumentParser) -> None:
    """Adds the ``flaxgpt ingest`` arguments to ``parser``."""
    parser.add_argument("config", metavar="SOURCES_CONFIG", help="sources config file with get_config()")
    parser.add_argument("overrides", nargs="*", help="dotted overrides such as workers=1 dedup.near=False")
    parser.add_argument("--out", required=True, metavar="DIR", help="output directory (replaced as a whole)")
    parser.add_argument("--quiet", action="store_true", help="no progress bars and no report on the console")


def run_ingest(args: argparse.Namespace) -> int:
    """Runs ``flaxgpt ingest`` from parsed arguments; returns the exit status."""
    config = load_ingest_config(args.config, args.overrides)
    t0 = time.perf_counter()
    result = ingest(config, args.out, progress=not args.quiet, scorer_factory=PerplexityScorer)
    seconds = time.perf_counter() - t0
    totals = result["_totals"]
    if not args.quiet:
        print((Path(args.out) / REPORT_MD).read_text())
    print(f"ingested {totals['bytes_read'] / 1e6:.1f} MB in {seconds:.1f} s "
          f"({totals['bytes_read'] / 1e6 / max(seconds, 1e-9):.2f} MB/s): {totals['documents_kept']:,} documents, "
          f"{totals['tokens']:,} tokens -> {args.out}")
    if totals["documents_kept"] == 0:
        print("warning: no documents kept", file=sys.stderr)
    return 0


def add_arguments_audit(parser: argparse.ArgumentParser) -> None:
    """Adds the ``flaxgpt audit`` arguments to ``parser``."""
    parser.add_argument("shards", nargs="+", metavar="SHARDS",
                        help="shard directory, or a directory holding several (e.g. an ingest output)")
    parser.add_argument("--canaries", required=True, metavar="FILE",
                        help="strings that must not appear, one per line (# comments and blank lines ignored)")
    parser.add_argument("--fuzzy", action="store_true",
                        help="also match ignoring case, whitespace, line breaks and separators (- . _ space)")


def run_audit(args: argparse.Namespace) -> int:
    """Runs ``flaxgpt audit`` from parsed arguments; returns 0 when clean, 1 when a canary is found, 2 on error."""
    try:
        canaries = read_canaries(args.canaries)
        report = audit(args.shards, canaries, fuzzy=args.fuzzy)
    except (FileNotFoundError, ValueError, UnicodeDecodeError) as e:
        print(f"flaxgpt audit: error: {e}", file=sys.stderr)
        return 2
    searched = (f"{report.documents:,} documents in {report.shards} shards of {len(report.shard_sets)} shard "
                f"set(s)" + (f" and {report.jsonl_records:,} records of {len(report.jsonl_files)} documents.jsonl"
                             if report.jsonl_files else "")
                + (f", {len(report.files)} files read as text" if report.files else ""))
    if report.clean:
        print(f"clean: none of {len(canaries)} canaries found in {searched}")
        return 0
    for f in report.findings[:MAX_PRINTED]:
        if f.where.endswith(".jsonl"):
            doc = f" line {f.document}" + (f" (id {f.doc_id})" if f.doc_id else "")
        elif f.field is not None or Path(f.where).suffix:  # a file read as text
            doc = ""
        else:
            doc = f" document {f.document}"
        field = f" field {f.field}" if f.field else ""
        print(f"FOUND {f.canary!r} in {f.where}{doc} [{f.match}]{field}")
    if len(report.findings) > MAX_PRINTED:
        print(f"... and {len(report.findings) - MAX_PRINTED} more")
    kinds = len({f.canary for f in report.findings})
    print(f"{kinds} of {len(canaries)} canaries found ({len(report.findings)} occurrences) in {searched}",
          file=sys.stderr)
    return 1


def _add_shard_output(parser: argparse.ArgumentParser, inputs_help: str) -> None:
    """The inputs and ``--out`` that tokenize and tokenize-chat share."""
    parser.add_argument("inputs", nargs="+", metavar="INPUT", help=inputs_help)
    parser.add_argument("--out", required=True, metavar="DIR", help="output shard directory (replaced)")


def _report_skips(summary: dict, out: str, train_count: int, what: str) -> int:
    """Prints the skip reasons of a tokenize summary, and a warning when nothing went to train; returns 0."""
    if summary["skipped"]:
        reasons = ", ".join(f"{reason} {n}" for reason, n in summary["skipped"].items())
        print(f"skipped: {reasons} (details in {Path(out) / SUMMARY_FILE})")
    if train_count == 0:
        print(f"warning: no training {what}", file=sys.stderr)
    return 0


def add_arguments_tokenize(parser: argparse.ArgumentParser) -> None:
    """Adds the ``flaxgpt tokenize`` arguments to ``parser``."""
    _add_shard_output(parser, "text files, .jsonl files or folders")
    parser.add_argument("--name", default=None, help="source name (default: basename of the first input)")
    parser.add_argument("--tokenizer", default="gpt2", choices=("gpt2", "flaxgpt"))
    parser.add_argument("--val-fraction", type=float, default=0.05, help="share of documents held out (0.05)")
    parser.add_argument("--exclude", action="append", default=[], metavar="GLOB",
                        help="skip files matching this glob (relative path or name); repeatable")
    parser.add_argument("--max-tokens-per-shard", type=int, default=DEFAULT_MAX_TOKENS_PER_SHARD,
                        help=argparse.SUPPRESS)


def run_tokenize(args: argparse.Namespace) -> int:
    """Runs ``flaxgpt tokenize`` from parsed arguments; returns the exit status."""
    first = Path(args.inputs[0]).resolve()
    name = args.name or (first.stem if first.is_file() else first.name)
    try:
        summary = tokenize_paths(args.inputs, args.out, name=name, tokenizer=args.tokenizer,
                                 val_fraction=args.val_fraction, max_tokens_per_shard=args.max_tokens_per_shard,
                                 exclude=tuple(args.exclude))
    except (FileNotFoundError, ValueError) as e:
        print(f"flaxgpt tokenize: error: {e}", file=sys.stderr)
        return 1
    docs, toks = summary["documents"], summary["tokens"]
    print(f"{name}: {docs['train']:,} train documents ({toks['train']:,} tokens), "
          f"{docs['val']:,} val documents ({toks['val']:,} tokens) -> {args.out}")
    return _report_skips(summary, args.out, docs["train"], "documents")


def add_arguments_tokenize_chat(parser: argparse.ArgumentParser) -> None:
    """Adds the ``flaxgpt tokenize-chat`` arguments to ``parser``."""
    _add_shard_output(parser, ".jsonl / .jsonl.gz files or folders of them")
    parser.add_argument("--format", required=True, choices=FORMATS,
                        help="openai: {messages: [...]} per line; hh: hh-rlhf chosen transcripts; "
                             "oasst: OASST1 trees or messages (best-ranked path)")
    parser.add_argument("--name", default=None, help="source name (default: basename of the first input)")
    parser.add_argument("--tokenizer", default="flaxgpt",
                        help="flaxgpt, or a tokenizer.json (or folder) of a personal vocabulary built on it")
    parser.add_argument("--val-fraction", type=float, default=0.05, help="share of conversations held out (0.05)")
    parser.add_argument("--lang", default=None, help="oasst only: keep trees whose prompt has this language (e.g. en)")
    parser.add_argument("--all-turns", action="store_true",
                        help="hh only: train every assistant turn (default: only the final, compared one; the "
                             "earlier turns are context without loss)")


def run_tokenize_chat(args: argparse.Namespace) -> int:
    """Runs ``flaxgpt tokenize-chat`` from parsed arguments; returns the exit status."""
    first = Path(args.inputs[0])
    name = args.name or first.name.removesuffix(".gz").removesuffix(".jsonl")
    try:
        if args.all_turns and args.format != "hh":
            raise ValueError("--all-turns is for hh-rlhf transcripts (--format hh)")
        summary = tokenize_chat(args.inputs, args.out, fmt=args.format, name=name, tokenizer=args.tokenizer,
                                val_fraction=args.val_fraction, lang=args.lang, hh_all_turns=args.all_turns)
    except (FileNotFoundError, ValueError) as e:
        print(f"flaxgpt tokenize-chat: error: {e}", file=sys.stderr)
        return 1
    convs, toks, trained = summary["conversations"], summary["tokens"], summary["trained_tokens"]
    print(f"{name}: {convs['train']:,} train conversations ({toks['train']:,} tokens, {trained['train']:,} trained), "
          f"{convs['val']:,} val ({toks['val']:,} tokens) -> {args.out}")
    if summary["lengths"]:
        lens = summary["lengths"]
        print(f"conversation length in tokens: p50 {lens['p50']}, p95 {lens['p95']}, max {lens['max']} "
              "(longer than data.seq_len + 1 are cut when training)")
    return _report_skips(summary, args.out, convs["train"], "conversations")
