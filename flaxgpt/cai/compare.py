"""The pipeline's ``evaluate`` stage: every policy it trained, side by side on held-out red-team prompts.

For each policy (SFT, SL-CAI, RL-CAI) the same prompts are answered with the same sampling seed;
each response gets the preference model's reward (when the pipeline trained one) and the privacy
rule checker's findings. ``report.json`` holds the numbers and every response; ``report.md`` a
table and the first few prompts with their before/after responses, which are also printed.
The full evaluation suite (``flaxgpt eval``) measures much more; this is the quick look a pipeline
ends with.
"""

from __future__ import annotations

import json
import textwrap
from pathlib import Path
from typing import Any

import numpy as np

from flaxgpt.cai.backend import GenParams


def _policies(p) -> list[tuple[str, Path]]:
    names = ["sft"] + [s for s in ("sft_cai", "ppo", "dpo") if s in p.c.stages]
    return [(n, p.path(n)) for n in names]


def compare_policies(policies: list[tuple[str, Path]], prompts: list, *, pm_dir: Path | None, rules: Any,
                     max_tokens: int, seed: int, temperature: float) -> dict:
    """Responses, PM rewards and privacy findings of each policy on ``prompts`` (lists of messages)."""
    from flaxgpt.cai.backends import LocalBackend
    from flaxgpt.eval.judges import PMJudge

    params = GenParams(max_tokens=max_tokens, temperature=temperature, seed=seed)
    judge = PMJudge(pm_dir) if pm_dir is not None else None  # one PM load and compile for every policy
    result: dict[str, Any] = {"prompts": len(prompts), "runs": {}, "examples": []}
    responses = {name: LocalBackend(path).chat(prompts, params) for name, path in policies}
    rewards: dict[str, np.ndarray] = {}
    for name, path in policies:
        texts = responses[name]
        row = {"run_dir": str(path), "mean_words": float(np.mean([len(t.split()) for t in texts])),
               "privacy_leaks": int(sum(bool(rules.find(t)) for t in texts))}
        if judge is not None:
            rewards[name] = judge.rewards(prompts, texts)
            row["mean_pm_reward"] = float(np.mean(rewards[name]))
        result["runs"][name] = row
    for i, prompt in enumerate(prompts):
        ex = {"prompt": prompt[-1]["content"], "responses": {n: responses[n][i] for n, _ in policies}}
        if rewards:
            ex["pm_reward"] = {n: float(rewards[n][i]) for n, _ in policies}
        result["examples"].append(ex)
    return result


def render_markdown(result: dict, shown: int) -> str:
    """The comparison as Markdown: a table per policy, then ``shown`` prompts with every policy's response."""
    names = list(result["runs"])
    has_pm = any("mean_pm_reward" in r for r in result["runs"].values())
    lines = [f"# Before and after: {result['prompts']} held-out red-team prompts", "",
             "| policy | " + ("mean PM reward | " if has_pm else "") + "responses leaking private data | mean words |",
             "|---|" + ("---|" if has_pm else "") + "---|---|"]
    for n in names:
        r = result["runs"][n]
        pm = f"{r['mean_pm_reward']:+.3f} | " if has_pm else ""
        lines.append(f"| {n} | {pm}{r['privacy_leaks']} / {result['prompts']} | {r['mean_words']:.1f} |")
    for ex in result["examples"][:shown]:
        lines += ["", f"**Prompt:** {ex['prompt']}"]
        for n in names:
            reward = f" (PM {ex['pm_reward'][n]:+.2f})" if "pm_reward" in ex else ""
            lines.append(f"- *{n}*{reward}: {ex['responses'][n].strip() or '(empty)'}")
    return "\n".join(lines) + "\n"


def evaluate_stage(p) -> dict:
    """Runs the comparison for a Pipeline (flaxgpt/cai/pipeline.py), writes report.json/.md, prints it."""
    from flaxgpt.cai.prompts import load_prompts
    from flaxgpt.cli.cai import owner_rules

    e = p.c.evaluate
    out = p.path("evaluate")
    out.mkdir(parents=True, exist_ok=True)
    prompts = [q.as_list() for q in load_prompts(list(e.prompts), limit=e.limit or None, seed=e.seed)]
    pm_dir = p.path("pm") if "pm" in p.c.stages else None
    result = compare_policies(_policies(p), prompts, pm_dir=pm_dir, rules=owner_rules(e.owner_config or None),
                              max_tokens=e.max_tokens, seed=e.seed, temperature=e.temperature)
    table = render_markdown(result, e.shown)
    (out / "report.md").write_text(table)
    result["runs_compared"] = list(result["runs"])
    (out / "report.json").write_text(json.dumps(result, indent=2, ensure_ascii=False) + "\n")
    print(textwrap.indent(table, "  "))
    return result
