"""The "comparison" suite: how often the run prefers the better response of held-out comparisons.

``ctx.comparisons`` are comparison files in any format flaxgpt.data.preferences reads (hh-rlhf,
Anthropic's multiple choice, flaxgpt pairs). Each comparison is encoded as the preference stages
encode it (``encode_comparisons``: prompt, response, end-of-response token, with the run's
``data.seq_len`` and ``prefs.max_prompt_len``) and scored by the run:

  * a preference model (a run whose stage trained the reward head): its reward at the end token;
  * any other run, as a language model: the mean log-prob per token of the response, the
    end-of-response token included (the mean, not the sum, so a longer response is not penalized
    for its length alone).

A comparison counts as right when the better response scores strictly higher (label > 0.5 means
``chosen`` is better); only decisive comparisons are scored (``flaxgpt.train.rl.DECISIVE``: a label at least
0.1 from 0.5), and accuracy is ``rl.pair_metrics``'s, as in training and validation. With a judge (``ctx.judge``),
its ``prefer`` is scored on the same comparisons too (the same for every run; computed once).
``ctx.limit`` (when set) keeps the first that many decided comparisons of each file.

Metrics: ``comparison_accuracy`` (all files), ``accuracy/<file stem>`` per file, ``n`` (comparisons
scored), and with a judge ``judge_accuracy``. Details: the worst-scored comparisons (lowest margin).
"""

from __future__ import annotations

import re
from pathlib import Path

import jax
import numpy as np

from flaxgpt.data.preferences import ReadReport, encode_comparisons, read_comparisons
from flaxgpt.eval.suite import EvalContext, EvalRun, SuiteResult, suite
from flaxgpt.model.gpt import GPT
from flaxgpt.train import rl
from flaxgpt.train.scoring import RowScorer
from flaxgpt.train.sharding import logical_rules, make_mesh
from flaxgpt.train.stages import get_stage

WORST = 30  # comparisons kept in the details (the lowest margins)
_JUDGED: dict[tuple, tuple[float, int]] = {}  # (judge, files, limit) -> (accuracy, n): judged once for all runs


_LETTER = re.compile(r" ?\([A-Z]\)")


def _stem(path: Path, taken: set[str]) -> str:
    stem = path.name.split(".")[0] or path.name
    name, k = stem, 2
    while name in taken:
        name, k = f"{stem}_{k}", k + 1
    taken.add(name)
    return name


def load_comparisons(paths: tuple[Path, ...], limit: int = 0, report: ReadReport | None = None,
                     letters: bool = False) -> dict[str, list]:
    """File stem -> its decisive comparisons (``rl.DECISIVE``), the first ``limit`` of each if set; malformed
    records skipped and counted in ``report``; HHH records as letters only with ``letters``."""
    out: dict[str, list] = {}
    taken: set[str] = set()
    for p in paths:
        comps = [c for c in read_comparisons(p, report=report, letters=letters) if abs(c.label - 0.5) >= rl.DECISIVE]
        out[_stem(Path(p), taken)] = comps[:limit] if limit else comps
    return out


def _as_conversation(prompt) -> list[dict[str, str]]:
    return [{"role": "user", "content": prompt}] if isinstance(prompt, str) else [dict(m) for m in prompt]


def score_pairs(run: EvalRun, comps: list) -> tuple[np.ndarray, str]:
    """(scores [N, 2] of (chosen, rejected), how they were scored) for ``run`` (module docstring)."""
    model_run = run.load()
    config = model_run.config
    pm = get_stage(config.train.stage).trains_reward_head
    seq_len = min(config.data.seq_len, model_run.model_cfg.max_len)
    arrays, _ = encode_comparisons(comps, model_run.tokenizer, seq_len, config.prefs.max_prompt_len)
    mesh = make_mesh(config.mesh, devices=jax.devices()[:1])
    s = RowScorer(GPT(model_run.model_cfg), mesh, logical_rules(config.mesh.rules)).pairs(model_run.params, arrays)
    if pm:
        return np.asarray(s["reward"], np.float64), "reward (preference model)"
    tokens = arrays["mask"].sum(-1)  # [N, 2]: response tokens plus the end token
    return np.asarray(s["logp_sum"], np.float64) / np.maximum(tokens, 1), "mean log-prob per token"


def _accuracy(first_minus_second: np.ndarray, label: np.ndarray) -> float:
    """``rl.pair_metrics`` accuracy of scores whose sign says which response is better."""
    sums = rl.pair_sums(np.zeros_like(label), first_minus_second, label)
    return float(rl.pair_metrics(sums)["accuracy"])


def _judge_accuracy(judge, files: dict[str, list], key: tuple) -> tuple[float, int]:
    if key not in _JUDGED:
        comps = [c for cs in files.values() for c in cs]
        p = judge.prefer([_as_conversation(c.prompt) for c in comps], [c.chosen for c in comps],
                         [c.rejected for c in comps])
        label = np.array([c.label for c in comps], np.float32)
        _JUDGED[key] = (_accuracy(np.asarray(p, np.float32) - 0.5, label), len(comps))  # P(first) > 0.5: first
    return _JUDGED[key]


@suite("comparison")
def comparison(run: EvalRun, ctx: EvalContext) -> SuiteResult:
    """Comparison accuracy of ``run`` (and of ``ctx.judge``) on ``ctx.comparisons``; missing without files."""
    if not ctx.comparisons:
        return SuiteResult.missing("comparison", "no comparison files (--comparisons FILE)")
    report = ReadReport()
    files = load_comparisons(tuple(ctx.comparisons), ctx.limit, report, letters=ctx.letters)
    if report.skipped:
        print(f"comparison: {report.summary()}")
    comps = [c for cs in files.values() for c in cs]
    if not comps:
        return SuiteResult.missing("comparison", "no decided comparisons in " + ", ".join(map(str, ctx.comparisons)))
    scores, how = score_pairs(run, comps)  # one scorer, one pass over every file
    label = np.array([c.label for c in comps], np.float32)
    first_minus_second = scores[:, 0] - scores[:, 1]
    sign = np.where(label > 0.5, 1.0, -1.0)
    margin = sign * first_minus_second  # chosen minus rejected
    right = margin > 0
    metrics: dict[str, float] = {"comparison_accuracy": _accuracy(first_minus_second, label)}
    start = 0
    for stem, cs in files.items():
        if cs:
            part = slice(start, start + len(cs))
            metrics[f"accuracy/{stem}"] = _accuracy(first_minus_second[part], label[part])
        start += len(cs)
    metrics["n"] = float(len(comps))
    metrics["skipped_records"] = float(report.n_skipped)
    # Baselines a scorer must beat: the shorter (longer) response wins; ties count half.
    shorter = np.array([len(c.rejected) - len(c.chosen) for c in comps], np.float64)  # > 0: chosen is shorter
    metrics["baseline_shorter_wins"] = _accuracy(shorter, label)
    metrics["baseline_longer_wins"] = _accuracy(-shorter, label)
    lettered = [c for c in comps if _LETTER.fullmatch(c.chosen) and _LETTER.fullmatch(c.rejected)]
    if lettered:  # a letter-scored accuracy next to what always answering "(A)" would score
        metrics["letter_a_correct_share"] = float(np.mean([c.chosen.strip() == "(A)" for c in lettered]))
    stems = [stem for stem, cs in files.items() for _ in cs]
    details = []
    for i in np.argsort(margin, kind="stable")[:WORST]:
        c = comps[i]
        details.append({"file": stems[i], "where": c.where, "prompt": _as_conversation(c.prompt)[-1]["content"],
                        "chosen": c.chosen, "rejected": c.rejected, "label": c.label,
                        "score_chosen": float(scores[i, 0]), "score_rejected": float(scores[i, 1]),
                        "margin": float(margin[i]), "correct": bool(right[i]), "scored_by": how})
    if ctx.judge is not None:
        key = (id(ctx.judge), getattr(ctx.judge, "name", ""), tuple(map(str, ctx.comparisons)), ctx.limit,
               ctx.letters)
        metrics["judge_accuracy"], _ = _judge_accuracy(ctx.judge, files, key)
    return SuiteResult("comparison", metrics, details)
