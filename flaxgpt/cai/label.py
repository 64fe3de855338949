"""``flaxgpt cai label``: RL-CAI. Which of two policy responses better follows a principle, as a soft label.

Per prompt the policy gives two responses (``policy.chat`` at the given temperature, T=1 by default,
with two different seeds), and one principle is drawn by weight per comparison (the CAI paper's
principle ensembling, §4.1). The feedback model sees the multiple-choice prompt of the reference
(§2.3, shown in fewshot.py's docstring), after the few-shot comparison prefix (``fewshot.comparison_prefix``),
and ``feedback.score_options`` gives the log-probabilities of ``" (A)"`` and ``" (B)"``, normalised
to a probability (``soft_label``). Every pair is scored in BOTH orders, response 1 as (A) and as
(B), and the two P(response 1 better) are averaged (``average_orders``): a labeller that prefers a
position regardless of content then gives 0.5 (Lee et al. §2.1.1). ``position_consistent`` flags
pairs where the same position wins in both orders. When the backend cannot score (returns None),
the answer is sampled ``samples`` times per order and the vote share is the probability.

CoT (``cot=True``, reference §2.7): per order, ``samples`` rationales are sampled after
``Human: <the question>\\n\\nAssistant: Let's think step by step:``, then ``"\\n\\nHuman:\\nSo the answer
is:"`` is appended and scored; the orders' average is clamped to ``clamp`` ([0.4, 0.6]), because
CoT probabilities sit near 0 or 1 (CAI paper §4.1). Principles with checker ``privacy`` are judged
by ``PrivacyRules.prefer``.

Outputs in ``out_dir`` (resumable like revise: prompts already in labels.jsonl are skipped):

* ``labels.jsonl``: ``{"id", "prompt": messages, "chosen", "rejected", "label", "principle", "p_ab", "p_ba",
  "same_position_wins", "winning_position", "checker"}``. ``label`` = P(chosen better) >= 0.5 (the
  two responses are ordered so). ``p_ab`` = P(chosen better) with chosen shown as (A), ``p_ba`` = with
  chosen shown as (B); without CoT clamping, ``label`` is their mean. ``winning_position`` is "A" or
  "B" when the same position won in both orders, else null. Pairs of identical responses teach
  nothing and are not written (counted in the report).
* ``report.json``: pairs, mean |label - 0.5|, the share of pairs where one position won both orders
  and which, the backends' and constitution's names.
"""

from __future__ import annotations

import dataclasses
import json
import math
import random
import re
import time
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from tqdm import tqdm

from flaxgpt.cai import fewshot
from flaxgpt.cai.backend import Backend, GenParams
from flaxgpt.cai.constitution import Constitution, Principle
from flaxgpt.cai.revise import as_prompts, backend_name, cut_prompts, derive_seed, open_run, read_done, write_jsonl
from flaxgpt.data.prompts import Prompt

LABELS, REPORT = "labels.jsonl", "report.json"
_ANSWER = re.compile(r"\(?\s*([AB])\s*\)")  # "(A)", " (B)", "A)"


def soft_label(logp_a: float, logp_b: float) -> float:
    """P(A) from the log-probabilities of options A and B: exp(a) / (exp(a) + exp(b)), computed stably.

    Two -inf (neither option possible) give 0.5; NaN raises ValueError.
    """
    if math.isnan(logp_a) or math.isnan(logp_b):
        raise ValueError(f"option log-probabilities must be numbers, got {logp_a}, {logp_b}")
    if logp_a == logp_b:  # covers -inf, -inf
        return 0.5
    d = logp_b - logp_a
    return 1.0 / (1.0 + math.exp(d)) if d < 700 else 0.0


def average_orders(p_first_ab: float, p_first_ba: float) -> float:
    """P(first response better), averaged over the order where it is (A) and the order where it is (B)."""
    return (p_first_ab + p_first_ba) / 2


def winning_position(p_first_ab: float, p_first_ba: float) -> str | None:
    """"A" or "B" when the same POSITION wins in both orders (a position-driven judgement), else None.

    In order AB the first response is (A), so (A) wins when ``p_first_ab > 0.5``; in order BA it is
    (B), so (A) wins when ``p_first_ba < 0.5``. Exact ties count as no win.
    """
    if p_first_ab > 0.5 and p_first_ba < 0.5:
        return "A"
    if p_first_ab < 0.5 and p_first_ba > 0.5:
        return "B"
    return None


def position_consistent(p_first_ab: float, p_first_ba: float) -> bool:
    """True when the same position (not the same response) wins in both orders."""
    return winning_position(p_first_ab, p_first_ba) is not None


def clamp_label(p: float, bounds: tuple[float, float] | None) -> float:
    """``p`` clamped to ``bounds`` (unchanged when None)."""
    return p if bounds is None else min(max(p, bounds[0]), bounds[1])


def vote_share(answers: Sequence[str]) -> float:
    """P(A) as the share of sampled answers naming (A) among those naming A or B (0.5 when none does)."""
    votes = [m.group(1) for a in answers if (m := _ANSWER.search(a))]
    return votes.count("A") / len(votes) if votes else 0.5


# ------------------------------------------------------------------------------------------------ scoring


def prob_option_a(feedback: Backend, prompts: list[str], samples: int, seed: int) -> list[float]:
    """P(A) per prompt: normalised option log-probs, or the vote share of sampled answers."""
    if not prompts:
        return []
    scores = feedback.score_options(prompts, list(fewshot.OPTIONS))
    if scores is not None:
        return [soft_label(s[0], s[1]) for s in scores]
    params = GenParams(max_tokens=4, temperature=1.0, stop=("\n",), seed=seed)
    answers = feedback.complete([p for p in prompts for _ in range(samples)], params)
    return [vote_share(answers[i * samples:(i + 1) * samples]) for i in range(len(prompts))]


def score_pairs(feedback: Backend, pairs: list[tuple[str, str, str, Principle]], prefix: str, *, cot: bool,
                samples: int, gen: GenParams, seed: int) -> list[tuple[float, float]]:
    """(p_ab, p_ba) = P(first better) in each order, for (conversation, first, second, principle) pairs."""
    if not pairs:
        return []
    build = fewshot.cot_prompt if cot else fewshot.comparison_prompt
    texts = []
    for convo, first, second, p in pairs:  # order AB (first as A), then BA (first as B)
        texts += [build(prefix, convo, p.comparison, first, second), build(prefix, convo, p.comparison, second, first)]
    if cot:
        reps = [t for t in texts for _ in range(samples)]
        params = dataclasses.replace(gen, stop=("\n\nHuman:",), seed=seed)
        rationales = feedback.complete(reps, params)
        answers = [fewshot.cot_answer_prompt(t, r) for t, r in zip(reps, rationales, strict=True)]
        # Without scores: one vote per rationale.
        flat = prob_option_a(feedback, answers, 1, derive_seed(seed, "votes"))
        p_a = [sum(flat[i * samples:(i + 1) * samples]) / samples for i in range(len(texts))]
    else:
        p_a = prob_option_a(feedback, texts, samples, derive_seed(seed, "votes"))
    return [(p_a[2 * i], 1.0 - p_a[2 * i + 1]) for i in range(len(pairs))]


def summarise(labels: Sequence[Mapping], **extra: Any) -> dict:
    """report.json's statistics over all label records, plus ``extra`` fields."""
    n = len(labels)
    wins = Counter(r["winning_position"] for r in labels if r["winning_position"])
    return {
        "pairs": n,
        "mean_abs_margin": round(sum(abs(r["label"] - 0.5) for r in labels) / n, 4) if n else 0.0,
        "same_position_wins": round(sum(wins.values()) / n, 4) if n else 0.0,
        "same_position_wins_by_position": dict(sorted(wins.items())),
        "principles": dict(sorted(Counter(r["principle"] for r in labels).items())),
        **extra,
    }


def label(conversations: Iterable[Prompt | Sequence[Mapping[str, str]]], policy: Backend, feedback: Backend,
          constitution: Constitution, *, out_dir: str | Path, seed: int = 0, cot: bool = False,
          clamp: tuple[float, float] | None = (0.4, 0.6), samples: int = 2, gen: GenParams | None = None,
          privacy_rules: Any = None, owner: str | None = None, batch_size: int = 64,
          progress: bool = True) -> dict:
    """Labels pairs of policy responses with AI feedback and writes labels.jsonl and report.json.

    Args:
      conversations: Prompts (or message lists ending on a user turn).
      policy: gives two responses per prompt (``policy.chat``, two seeds).
      feedback: judges them (``score_options``; ``complete`` for CoT rationales and vote fallback).
      constitution: its principles with a comparison question are sampled by weight, one per pair.
      out_dir: output folder (created; reruns skip prompts already labelled).
      seed: principle draws are seeded per prompt; sampling per chunk.
      cot: chain-of-thought labels (clamped to ``clamp``).
      clamp: bounds for CoT labels (None: no clamping); non-CoT labels are never clamped.
      samples: per order, how many answers are sampled when the backend cannot score, and how many
        CoT rationales are averaged.
      gen: sampling settings of the policy and of CoT rationales (default: T=1, 128 tokens).
      privacy_rules: ``PrivacyRules`` for principles with checker ``privacy`` (default ``PrivacyRules()``).
      owner: the owner's name, filled into the few-shot examples.
      batch_size: prompts per chunk (results are flushed per chunk).
      progress: show a progress bar.

    Returns:
      The report (also written to ``out_dir/report.json``).
    """
    if samples < 1:
        raise ValueError(f"samples must be >= 1, got {samples}")
    if clamp is not None and not 0.0 <= clamp[0] <= 0.5 <= clamp[1] <= 1.0:
        raise ValueError(f"clamp must satisfy 0 <= low <= 0.5 <= high <= 1, got {clamp}")
    usable = constitution.for_comparison()
    gen, rules, out = open_run(usable, privacy_rules, gen, out_dir)
    labels = read_done(out / LABELS)
    skipped_path = out / "skipped.jsonl"  # prompts whose two responses were identical: done, but no label
    skipped = read_done(skipped_path)
    done = {r["id"] for r in labels} | {r["id"] for r in skipped}
    todo = [p for p in as_prompts(conversations) if p.id not in done]
    prefix = fewshot.comparison_prefix(random.Random(derive_seed(seed, "fewshot")), cot=cot, owner=owner)
    start = time.time()
    bar = tqdm(total=len(todo), unit="prompt", desc="cai label", disable=not progress)
    for c0 in range(0, len(todo), batch_size):
        chunk = todo[c0:c0 + batch_size]
        chunk_seed = derive_seed(seed, *(p.id for p in chunk))
        convs = [p.as_list() for p in chunk]
        first = policy.chat(convs, dataclasses.replace(gen, seed=derive_seed(chunk_seed, 1)))
        second = policy.chat(convs, dataclasses.replace(gen, seed=derive_seed(chunk_seed, 2)))
        jobs, same = [], []
        for p, r1, r2 in zip(chunk, first, second, strict=True):
            r1, r2 = r1.strip(), r2.strip()
            if " ".join(r1.split()) == " ".join(r2.split()):
                same.append({"id": p.id, "reason": "identical_responses"})
                continue
            jobs.append((p, r1, r2, usable.sample(random.Random(derive_seed(seed, p.id)))))
        model = [j for j in jobs if j[3].checker == "model"]
        scored = dict(zip((id(j) for j in model), score_pairs(
            feedback, [(fewshot.transcript(p.messages), r1, r2, pr) for p, r1, r2, pr in model], prefix, cot=cot,
            samples=samples, gen=gen, seed=chunk_seed), strict=True))
        records = []
        for job in jobs:
            p, r1, r2, pr = job
            if pr.checker == "privacy":
                p_ab, p_ba = float(rules.prefer(r1, r2)), 1.0 - float(rules.prefer(r2, r1))
            else:
                p_ab, p_ba = scored[id(job)]
            p1 = average_orders(p_ab, p_ba)
            if cot:
                p1 = clamp_label(p1, clamp)
            chosen_first = p1 >= 0.5
            chosen, rejected = (r1, r2) if chosen_first else (r2, r1)
            # relative to the chosen response: when it is response 2, it sat in the other position
            ab, ba = (p_ab, p_ba) if chosen_first else (1.0 - p_ba, 1.0 - p_ab)
            records.append({"id": p.id, "prompt": p.as_list(), "chosen": chosen, "rejected": rejected,
                            "label": round(p1 if chosen_first else 1.0 - p1, 6), "principle": pr.id,
                            "checker": pr.checker, "p_ab": round(ab, 6), "p_ba": round(ba, 6),
                            "same_position_wins": position_consistent(ab, ba),
                            "winning_position": winning_position(ab, ba)})
        write_jsonl(out / LABELS, records)
        write_jsonl(skipped_path, same)
        labels += records
        skipped += same
        bar.update(len(chunk))
    bar.close()
    report = summarise(labels, identical_responses=len(skipped), new_prompts=len(todo), resumed_prompts=len(done),
                       cot=cot, clamp=list(clamp) if (cot and clamp) else None, samples=samples, seed=seed,
                       constitution=constitution.name, policy=backend_name(policy),
                       feedback=backend_name(feedback), cut_prompts=cut_prompts(policy, feedback),
                       seconds=round(time.time() - start, 2))
    (out / REPORT).write_text(json.dumps(report, indent=2) + "\n")
    return report
