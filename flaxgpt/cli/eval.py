"""``flaxgpt eval RUN_DIR [RUN_DIR ...] --suite SUITES``: evaluate runs side by side and write a report.

    flaxgpt eval runs/demo/micro runs/demo/cai/sft runs/demo/cai/sft_cai runs/demo/cai/ppo \\
        --names base,sft,sl-cai,rl-cai --suite all --facts examples/persona/facts.jsonl \\
        --red-team examples/cai/red_team_test.jsonl --judge pm:runs/demo/cai/pm --out runs/eval

Suites whose inputs are not given (no --facts, no --judge, ...) are reported as missing, with why.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from flaxgpt.eval.judges import make_judge
from flaxgpt.eval.report import headline_markdown, write_report
from flaxgpt.eval.runner import evaluate, resolve_suites
from flaxgpt.eval.suite import EvalContext


def add_arguments(p: argparse.ArgumentParser) -> None:
    """The ``flaxgpt eval`` options."""
    files = {"type": Path, "action": "append", "default": [], "metavar": "FILE"}  # repeatable file options
    p.add_argument("run_dirs", nargs="+", metavar="RUN_DIR", help="run directories to evaluate side by side")
    p.add_argument("--suite", default="all", metavar="SUITES",
                   help="comma-separated suites (perplexity, facts, comparison, speed, safety, adherence, revision, "
                        "helpfulness) or 'all' (default)")
    p.add_argument("--out", default="runs/eval", metavar="DIR",
                   help="report directory (report.json, report.md, report.html)")
    p.add_argument("--facts", type=Path, metavar="FILE",
                   help='{"question", "answers"} JSONL (examples/persona/facts.jsonl)')
    p.add_argument("--red-team", **files, help="held-out red-team prompts (repeatable)")
    p.add_argument("--helpful", **files, help="helpfulness prompts (repeatable; adherence, helpfulness retention)")
    p.add_argument("--constitution", default="personal,harmless", metavar="NAMES",
                   help="constitution names or files (comma list)")
    p.add_argument("--revisions", type=Path, metavar="FILE", help="a `flaxgpt cai revise` history.jsonl")
    p.add_argument("--comparisons", **files,
                   help="held-out comparisons: hh-rlhf, multiple-choice or flaxgpt pairs JSONL (repeatable)")
    p.add_argument("--letters", action="store_true",
                   help="score HHH evaluations as their letter options ' (A)'/' (B)' (default: the two conversations,"
                        " text_correct against text_incorrect)")
    p.add_argument("--data", **{**files, "metavar": "DIR"},
                   help="token-shard directory for perplexity (repeatable; default: each run's data.sources)")
    p.add_argument("--baseline", type=Path, metavar="RUN_DIR", help="the run helpfulness retention compares against")
    p.add_argument("--judge", default="", metavar="SPEC",
                   help="rules | pm:RUN_DIR | a backend spec (RUN_DIR, openai:URL?model=...)")
    p.add_argument("--owner-config", type=Path, metavar="FILE",
                   help="ingest sources config naming the owner (privacy rules)")
    p.add_argument("--max-tokens", type=int, default=64, metavar="N", help="new tokens per generated response")
    p.add_argument("--limit", type=int, default=0, metavar="N",
                   help="at most this many prompts/questions per suite, validation batches per source (0: all)")
    p.add_argument("--seed", type=int, default=0, metavar="N", help="sampling seed and prompt shuffling")
    p.add_argument("--names", default="", metavar="NAMES", help="comma-separated display names, one per RUN_DIR")


def context_from_args(args: argparse.Namespace, out_dir: Path):
    """An EvalContext (with the judge built) from parsed ``flaxgpt eval`` arguments."""
    if args.max_tokens < 1:
        raise ValueError(f"--max-tokens must be >= 1, got {args.max_tokens}")
    if args.limit < 0:
        raise ValueError(f"--limit must be >= 0, got {args.limit}")
    for flag, paths in (("--facts", [args.facts]), ("--red-team", args.red_team), ("--helpful", args.helpful),
                        ("--revisions", [args.revisions]), ("--comparisons", args.comparisons),
                        ("--data", args.data), ("--baseline", [args.baseline]),
                        ("--owner-config", [args.owner_config])):
        for path in paths:
            if path is not None and not path.exists():
                raise FileNotFoundError(f"{flag}: {path} not found")
    judge = None
    if args.judge:
        judge = make_judge(args.judge, owner_config=args.owner_config, cache_dir=out_dir / "judge_cache")
    return EvalContext(facts=args.facts, red_team=tuple(args.red_team), helpful=tuple(args.helpful),
                       constitution=args.constitution, revisions=args.revisions,
                       comparisons=tuple(args.comparisons), letters=args.letters, data=tuple(args.data),
                       baseline=args.baseline,
                       judge=judge, owner_config=args.owner_config, max_tokens=args.max_tokens, limit=args.limit,
                       seed=args.seed)


def run(args: argparse.Namespace) -> int:
    """Runs the evaluation, writes the report, prints the headline table and the report's paths."""
    out_dir = Path(args.out)
    suites = resolve_suites(args.suite)  # unknown names fail before any model loads
    ctx = context_from_args(args, out_dir)
    names = [n.strip() for n in args.names.split(",") if n.strip()] or None
    result = evaluate(args.run_dirs, suites, ctx, names=names)
    paths = write_report(result, out_dir)
    print(headline_markdown(result))
    for kind, path in paths.items():
        print(f"{kind}: {path}")
    failed = failed_suites(result)
    for run_name, suite, why in failed:
        print(f"error: suite {suite!r} failed on run {run_name!r}: {why.removeprefix('error: ')}", file=sys.stderr)
    return 1 if failed else 0  # the report is written either way; a script sees the failure


def failed_suites(result: dict) -> list[tuple[str, str, str]]:
    """(run, suite, reason) of every suite that raised an error in ``evaluate``'s result (not those merely
    missing an input, such as no --facts)."""
    return [(run_name, name, s["missing_reason"]) for run_name, entry in result["runs"].items()
            for name, s in entry["suites"].items() if (s.get("missing_reason") or "").startswith("error:")]
