"""``flaxgpt cai revise`` and ``flaxgpt cai label``: the command-line front of revise.py and label.py.

    flaxgpt cai revise --policy RUN_DIR --prompts examples/cai/red_team.jsonl --out out/revise
    flaxgpt cai label  --policy RUN_DIR --feedback openai:http://localhost:8000/v1?model=m --cot --out out/label

Backends are specs for ``flaxgpt.cai.backends.make_backend``: a flaxgpt run directory, ``run:PATH`` or
``openai:URL?...``. ``--feedback`` defaults to the policy. ``--constitution`` takes shipped names
(``personal``, ``harmless``) or files, repeated or comma-separated; ``--critiques``/``--comparisons``
add Anthropic's published JSON files as they are. ``--owner-config`` is an ingest sources config
whose ``owner`` identity the privacy rules keep (and whose first name fills the few-shot examples).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from flaxgpt.cai.backend import GenParams
from flaxgpt.cai.backends import FIT_POLICIES, make_backend
from flaxgpt.cai.constitution import load_constitutions
from flaxgpt.cai.label import label
from flaxgpt.cai.revise import revise
from flaxgpt.cai.rules import PrivacyRules, owner_name
from flaxgpt.data.prompts import load_prompts


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--policy", required=True, help="backend that answers the prompts: run dir, run:PATH, openai:URL")
    p.add_argument("--feedback", help="backend that critiques/judges (default: the policy)")
    p.add_argument("--fit", default="error", choices=FIT_POLICIES,
                   help="a prompt longer than a local model's context: error (default), or keep its left (last "
                        "tokens), right (first) or middle (start and end); the count cut is in the report")
    p.add_argument("--constitution", action="append", default=[],
                   help="shipped name (personal, harmless) or file; repeatable or comma list (default: personal)")
    p.add_argument("--critiques", help="Anthropic's critique/revision instructions JSON, as published")
    p.add_argument("--comparisons", help="Anthropic's comparison principles JSON (a list of '... Options:')")
    p.add_argument("--prompts", action="append", default=[],
                   help="prompt file: hh-rlhf (.jsonl[.gz]), JSONL {prompt}|{messages}, or text lines; repeatable")
    p.add_argument("--turns", choices=("first", "last", "each"), default="first",
                   help="hh-rlhf: first human turn (default), whole dialogue to the last one, or one prompt each")
    p.add_argument("--facts", help="facts file ({question, answers} lines) to use as helpfulness prompts")
    p.add_argument("--documents", help="an ingest output's documents.jsonl: 'What did <owner> write about <title>?'")
    p.add_argument("--limit", type=int, help="use at most N prompts (a seeded random sample)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--max-tokens", type=int, default=128, help="tokens per generated text")
    p.add_argument("--temperature", type=float, default=1.0, help="sampling temperature (the CAI paper: 1)")
    p.add_argument("--batch-size", type=int, default=64, help="prompts per batch (results are saved per batch)")
    p.add_argument("--owner-config", help="ingest sources config (e.g. examples/persona/sources.py) for privacy rules")
    p.add_argument("--cache", help="folder caching remote (openai:) backend responses, so reruns do not pay twice")
    p.add_argument("--out", required=True, help="output folder; a rerun resumes it")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Adds the ``revise`` and ``label`` subcommands to the ``flaxgpt cai`` parser."""
    sub = parser.add_subparsers(dest="cai_command", required=True)
    p = sub.add_parser("revise", help="SL-CAI: response -> critique -> revision rounds; writes sft.jsonl and pairs")
    _common(p)
    p.add_argument("--rounds", type=int, default=4, help="critique/revision rounds per prompt (default 4)")
    p.add_argument("--no-final-privacy-pass", action="store_true",
                   help="do not fix personal data left in final responses")
    p.add_argument("--sft-all-revisions", action="store_true",
                   help="sft.jsonl gets every kept revision, not only the final one (SL-CAI on all steps)")
    p = sub.add_parser("label", help="RL-CAI: AI preference labels on two policy responses per prompt")
    _common(p)
    p.add_argument("--cot", action="store_true", help="chain-of-thought labels, clamped to --clamp")
    p.add_argument("--clamp", type=float, nargs=2, default=(0.4, 0.6), metavar=("LOW", "HIGH"))
    p.add_argument("--samples", type=int, default=2,
                   help="per order: sampled answers when the backend cannot score; CoT rationales averaged")


def run(args: argparse.Namespace) -> int:
    """Runs ``flaxgpt cai revise|label`` from parsed arguments; prints a summary; returns the exit status."""
    if args.limit is not None and args.limit < 1:
        raise ValueError(f"--limit must be >= 1, got {args.limit}")
    constitution = load_constitutions(args.constitution, critiques=args.critiques, comparisons=args.comparisons)
    owner = owner_name(args.owner_config)
    prompts = load_prompts(args.prompts, facts=args.facts, documents=args.documents, owner=owner, turns=args.turns,
                           limit=args.limit, seed=args.seed)
    rules = PrivacyRules.from_sources(args.owner_config)
    policy = make_backend(args.policy, cache_dir=args.cache, fit=args.fit)
    feedback = (policy if not args.feedback or args.feedback == args.policy
                else make_backend(args.feedback, cache_dir=args.cache, fit=args.fit))
    gen = GenParams(max_tokens=args.max_tokens, temperature=args.temperature)
    common = dict(out_dir=args.out, seed=args.seed, gen=gen, privacy_rules=rules, owner=owner,
                  batch_size=args.batch_size, progress=not args.no_progress)
    if args.cai_command == "revise":
        report = revise(prompts, policy, feedback, constitution, rounds=args.rounds,
                        final_privacy_pass=not args.no_final_privacy_pass,
                        sft_all_revisions=args.sft_all_revisions, **common)
        print(f"revise: {report['prompts']} prompts ({report['new_prompts']} new), {report['rounds_run']} rounds, "
              f"{report['revisions_kept']} revisions kept, {report['early_stops']} early stops; "
              f"{report['sft_examples']} SFT examples, {report['pairs']} pairs -> {Path(args.out)}")
        print(f"  not kept: {json.dumps(report['not_kept'])}")
        _print_cut(args, report)
    else:
        report = label(prompts, policy, feedback, constitution, cot=args.cot, clamp=tuple(args.clamp),
                       samples=args.samples, **common)
        print(f"label: {report['pairs']} pairs ({report['new_prompts']} new prompts, "
              f"{report['identical_responses']} with identical responses), mean |label-0.5| "
              f"{report['mean_abs_margin']:.3f}, same position won both orders in "
              f"{report['same_position_wins']:.0%} {json.dumps(report['same_position_wins_by_position'])} "
              f"-> {Path(args.out)}")
        _print_cut(args, report)
    return 0


def _print_cut(args: argparse.Namespace, report: dict) -> None:
    """Says how many prompts the local backends cut to fit their context (``--fit``; the report's ``cut_prompts``)."""
    if report["cut_prompts"]:
        print(f"  {report['cut_prompts']} prompts did not fit a local model's context and were cut (--fit {args.fit})")
