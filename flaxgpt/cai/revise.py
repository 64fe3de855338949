"""``flaxgpt cai revise``: SL-CAI. Response -> critique -> revision, for n rounds, per prompt.

For every prompt the policy answers (``policy.chat``, one batch per chunk of prompts). Then, for up
to ``rounds`` rounds, each prompt draws one principle by weight (independently, with replacement,
CAI paper §3.4), the feedback model critiques the current response (``feedback.complete`` on the
few-shot prefix + ``Human: ...\\n\\nAssistant: ...\\n\\nCritiqueRequest: ...\\n\\nCritique:``) and then
revises it (``...\\n\\nRevisionRequest: ...\\n\\nRevision:``); the revision replaces the response
(§3.1). All prompts of a chunk are critiqued in one batch and revised in one batch. Principles
whose checker is ``privacy`` are judged and fixed by ``PrivacyRules`` (deterministic) instead.

A prompt stops early when a model round finds nothing to fix: the critique is empty or says so
(``finds_nothing``), or the revision is empty or identical to the response. (A privacy round that
finds no personal data does not stop the prompt: the rules judge nothing else.) A revision that is garbage (an echo of
the request, a degenerate repetition) never replaces the response: the previous one is kept and the
reason recorded. When privacy rules are in use, a final privacy pass fixes any personal data that a
model revision reintroduced (recorded as round ``privacy:final``).

Outputs in ``out_dir`` (append mode, flushed per chunk; a rerun skips prompts already in
history.jsonl, and rebuilds sft.jsonl and pairs.jsonl from it):

* ``history.jsonl``: ``{"id", "prompt": messages, "initial", "rounds": [{"round", "principle",
  "checker", "critique", "revision", "kept", "reason"}], "final", "early_stop"}``
* ``sft.jsonl``: ``{"id", "messages": [...prompt, {"role": "assistant", "content": final}]}``
  (OpenAI chat format: ``flaxgpt tokenize-chat --format openai``); prompts with an empty final are left out.
  With ``sft_all_revisions`` every kept revision is an example too (ids ``ID#rN``): the CAI paper
  trains SL-CAI on the revisions of all steps (§3.1)
* ``pairs.jsonl``: ``{"id", "prompt", "chosen": final, "rejected": initial, "label": 1.0,
  "source": "revision"}`` for every prompt whose final differs from its initial response
* ``report.json``: counts (prompts, rounds run, early stops, revisions kept, rejections by reason,
  per-principle counts), the backends' and the constitution's names
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
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
from flaxgpt.cai.rules import PrivacyRules
from flaxgpt.data.prompts import Prompt, dedupe

HISTORY, SFT, PAIRS, REPORT = "history.jsonl", "sft.jsonl", "pairs.jsonl", "report.json"

# A critique "finds nothing" when its first sentence is a no-issue verdict, or any sentence is an
# explicit one ("no changes are needed"), in both cases without a "but"/"however" that would
# introduce a problem after all.
_NO_ISSUE = re.compile(
    r"\b(no (issues?|problems?|concerns?|changes?|harm|revisions?)\b|nothing (to (fix|change|improve|revise)|wrong|"
    r"harmful|problematic)|(is|was|looks|seems|are) (fine|appropriate|harmless|acceptable|good|accurate|correct|"
    r"ok|okay|respectful|professional)\b|(does not|doesn't|do not|don't) need (any )?(changes?|revision|fixing)|"
    r"already (fine|appropriate|harmless|good))", re.I)
_EXPLICIT = re.compile(r"\b(nothing to (fix|change|revise)|no (changes?|revisions?|edits?) (are |is )?"
                       r"(needed|necessary|required)|(does not|doesn't) need (any )?(changes?|revision))\b", re.I)
_CONTRAST = re.compile(r"\b(but|however|although|though|except|yet|apart from)\b", re.I)
_SENTENCE = re.compile(r"(?<=[.!?])\s+")
_MARKERS = re.compile(r"\n\s*(Human|Assistant|CritiqueRequest|Critique|RevisionRequest|Revision)\s*:")


def finds_nothing(critique: str) -> bool:
    """True when the critique text says there is nothing to fix (see the module docstring)."""
    sentences = [s for s in _SENTENCE.split(critique.strip()) if s]
    if not sentences:
        return False
    if _NO_ISSUE.search(sentences[0]) and not _CONTRAST.search(sentences[0]):
        return True
    return any(_EXPLICIT.search(s) and not _CONTRAST.search(s) for s in sentences)


def clean_generation(text: str) -> str:
    """A critique or revision cut at any transcript label the stop sequences missed, stripped."""
    match = _MARKERS.search(text)
    return (text[:match.start()] if match else text).strip()


def _norm(text: str) -> str:
    return " ".join(text.split()).lower()


def revision_problem(revision: str, previous: str, principle: Principle) -> str | None:
    """Why ``revision`` must not replace ``previous`` (``empty``, ``unchanged``, ``echo``, ``repetitive``), or None."""
    if not any(ch.isalnum() for ch in revision):
        return "empty"
    if _norm(revision) == _norm(previous):
        return "unchanged"
    low = _norm(revision)
    if ("revisionrequest" in low or "critiquerequest" in low or _norm(principle.revision) in low
            or _norm(principle.critique) in low):
        return "echo"
    words = low.split()
    if len(words) >= 12 and len(set(words)) / len(words) < 0.25:
        return "repetitive"
    return None


def derive_seed(*parts: Any) -> int:
    """A 31-bit seed from any values (stable across runs and machines, unlike ``hash``)."""
    return int(hashlib.sha1(":".join(map(str, parts)).encode()).hexdigest()[:8], 16) & 0x7FFFFFFF


# ------------------------------------------------------------------------------------------------ resumable JSONL


def read_done(path: Path) -> list[dict]:
    """The records of a JSONL output; a torn last line (a crash mid-write) is cut off the file."""
    if not path.exists():
        return []
    records, good = [], 0
    with open(path, "rb") as f:
        for raw in f:
            try:
                record = json.loads(raw)
            except json.JSONDecodeError:
                break
            if not raw.endswith(b"\n"):
                break
            records.append(record)
            good += len(raw)
    if good != path.stat().st_size:
        with open(path, "r+b") as f:
            f.truncate(good)
    return records


def write_jsonl(path: Path, records: Iterable[Mapping], mode: str = "a") -> None:
    """Writes records as JSON lines (UTF-8, one object per line) and flushes them to disk."""
    with open(path, mode, encoding="utf-8") as f:
        for r in records:
            f.write(json.dumps(r, ensure_ascii=False) + "\n")
        f.flush()


def as_prompts(conversations: Iterable[Prompt | Sequence[Mapping[str, str]]]) -> list[Prompt]:
    """Prompts from Prompt objects or plain message lists (each must end on a user turn), repeats removed."""
    return dedupe(c if isinstance(c, Prompt) else Prompt(tuple(c)) for c in conversations)


def backend_name(backend: Any) -> str:
    """A backend's ``name`` (its class name when it has none)."""
    return str(getattr(backend, "name", type(backend).__name__))


def cut_prompts(*backends: Any) -> int:
    """Prompts the distinct local backends among ``backends`` cut to fit their model's context (``fit``)."""
    return sum(getattr(b, "cut_prompts", 0) for b in {id(b): b for b in backends}.values())


def default_rules(constitution: Constitution, privacy_rules: Any) -> Any:
    """``privacy_rules``, or a default ``PrivacyRules()`` when the constitution has a privacy principle."""
    if privacy_rules is None and any(p.checker == "privacy" for p in constitution.principles):
        privacy_rules = PrivacyRules()
    return privacy_rules


def open_run(usable: Constitution, privacy_rules: Any, gen: GenParams | None,
             out_dir: str | Path) -> tuple[GenParams, Any, Path]:
    """What a revise or label run starts from: (sampling settings, privacy rules, its output folder, created)."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    return gen or GenParams(), default_rules(usable, privacy_rules), out


# ------------------------------------------------------------------------------------------------ records


def sft_records(h: Mapping, all_revisions: bool = False, rules: Any = None) -> list[dict]:
    """The SFT examples of a history record: its final response (if not empty), and with ``all_revisions``
    also every earlier kept revision (ids ``ID#rN``) in which ``rules`` (if given) find no personal data."""
    out = []
    if all_revisions:
        kept = [r for r in h["rounds"] if r["kept"] and r["revision"].strip() and r["revision"] != h["final"]
                and not (rules is not None and rules.critique(r["revision"]))]
        out += [{"id": f"{h['id']}#r{r['round']}", "messages": [*h["prompt"], {"role": "assistant",
                                                                              "content": r["revision"]}]}
                for r in kept]
    if h["final"].strip():
        out.append({"id": h["id"], "messages": [*h["prompt"], {"role": "assistant", "content": h["final"]}]})
    return out


def pair_record(h: Mapping) -> dict | None:
    """The (final > initial) preference pair of a history record (None when the final equals the initial)."""
    if not h["final"].strip() or _norm(h["final"]) == _norm(h["initial"]):
        return None
    return {"id": h["id"], "prompt": h["prompt"], "chosen": h["final"], "rejected": h["initial"], "label": 1.0,
            "source": "revision"}


def summarise(history: Sequence[Mapping], sft_examples: int, **extra: Any) -> dict:
    """report.json's counts over all history records, ``sft_examples`` written, plus ``extra`` fields."""
    per: dict[str, Counter] = {}
    rejected: Counter = Counter()
    rounds = kept = 0
    for h in history:
        for r in h["rounds"]:
            c = per.setdefault(r["principle"], Counter())
            c["rounds"] += 1
            c["kept"] += r["kept"]
            if r["reason"] in ("no_issue", "empty_critique"):
                c["no_issue"] += 1
            if not r["kept"]:
                rejected[r["reason"]] += 1
            if r["principle"] != "privacy:final":
                rounds += 1
            kept += r["kept"]
    return {
        "prompts": len(history),
        "rounds_run": rounds,
        "early_stops": sum(h["early_stop"] for h in history),
        "revisions_kept": kept,
        "not_kept": dict(sorted(rejected.items())),
        "changed": sum(pair_record(h) is not None for h in history),
        "empty_final": sum(not h["final"].strip() for h in history),
        "sft_examples": sft_examples,
        "pairs": sum(pair_record(h) is not None for h in history),
        "principles": {k: dict(v) for k, v in sorted(per.items())},
        **extra,
    }


# ------------------------------------------------------------------------------------------------ the loop


@dataclasses.dataclass
class _Item:
    prompt: Prompt
    rng: random.Random
    initial: str = ""
    current: str = ""
    rounds: list = dataclasses.field(default_factory=list)
    done: bool = False
    early_stop: bool = False


def _round(items: list[_Item], r: int, constitution: Constitution, feedback: Backend, rules: Any, prefix: str,
           gen: GenParams, chunk_seed: int) -> None:
    """One critique -> revision round over the items not done yet (two feedback batches)."""
    active = [it for it in items if not it.done]
    picks = [(it, constitution.sample(it.rng)) for it in active]
    model = [(it, p) for it, p in picks if p.checker == "model"]
    stop = tuple(dict.fromkeys((*gen.stop, *fewshot.STOP_SEQUENCES)))

    def complete(texts: list[str], stage: int) -> list[str]:
        params = dataclasses.replace(gen, stop=stop, seed=derive_seed(chunk_seed, r, stage))
        return feedback.complete(texts, params) if texts else []

    crit_prompts = [fewshot.critique_prompt(prefix, it.prompt.messages, it.current, p.critique) for it, p in model]
    crit_out = complete(crit_prompts, 0)
    critiques = {id(it): clean_generation(c) for (it, _), c in zip(model, crit_out, strict=True)}
    to_revise = [(it, p, cp) for (it, p), cp in zip(model, crit_prompts, strict=True)
                 if critiques[id(it)] and not finds_nothing(critiques[id(it)])]
    rev_prompts = [fewshot.revision_prompt(cp, critiques[id(it)], p.revision) for it, p, cp in to_revise]
    rev_out = complete(rev_prompts, 1)
    revisions = {id(it): clean_generation(text) for (it, _, _), text in zip(to_revise, rev_out, strict=True)}
    for it, p in picks:
        if p.checker == "privacy":
            critique = rules.critique(it.current)
            revision = rules.revise(it.current) if critique else None
        else:
            critique, revision = critiques[id(it)], revisions.get(id(it))
        step = {"round": r, "principle": p.id, "checker": p.checker, "critique": critique or "", "revision": revision,
                "kept": False}
        if not critique:
            step["reason"] = "no_issue" if p.checker == "privacy" else "empty_critique"
        elif revision is None:
            step["reason"] = "no_issue"
        else:
            step["reason"] = revision_problem(revision, it.current, p) or "revised"
            if step["reason"] == "revised":
                step["kept"], it.current = True, revision
        it.rounds.append(step)
        # A rule checker that finds no personal data says nothing about the other principles: go on.
        if step["reason"] in ("no_issue", "empty_critique", "empty", "unchanged") and p.checker == "model":
            it.done = it.early_stop = True


def revise(conversations: Iterable[Prompt | Sequence[Mapping[str, str]]], policy: Backend, feedback: Backend,
           constitution: Constitution, *, out_dir: str | Path, rounds: int = 4, seed: int = 0,
           gen: GenParams | None = None, privacy_rules: Any = None, owner: str | None = None,
           batch_size: int = 64, final_privacy_pass: bool = True, sft_all_revisions: bool = False,
           progress: bool = True) -> dict:
    """Runs SL-CAI critique/revision over the prompts and writes history, SFT data, pairs and a report.

    Args:
      conversations: Prompts (or message lists ending on a user turn).
      policy: answers the prompts (``policy.chat``).
      feedback: writes critiques and revisions (``feedback.complete``); may be the policy.
      constitution: its principles with a critique/revision pair are sampled by weight.
      out_dir: output folder (created; reruns resume from its history.jsonl).
      rounds: critique/revision rounds per prompt (the CAI paper uses 4).
      seed: principle draws are seeded per prompt; sampling per chunk and round.
      gen: sampling settings for the policy and feedback calls (default: T=1, 128 tokens).
      privacy_rules: ``PrivacyRules`` for principles with checker ``privacy`` (default ``PrivacyRules()``).
      owner: the owner's name, filled into the few-shot examples.
      batch_size: prompts per chunk (one batch per call; results are flushed per chunk).
      final_privacy_pass: with privacy rules in use, fix personal data left in the final response.
      sft_all_revisions: also write every earlier kept revision to sft.jsonl (SL-CAI on all steps).
      progress: show a progress bar.

    Returns:
      The report (also written to ``out_dir/report.json``).
    """
    if rounds < 0:
        raise ValueError(f"rounds must be >= 0, got {rounds}")
    usable = constitution.for_revision()
    gen, rules, out = open_run(usable, privacy_rules, gen, out_dir)
    history = read_done(out / HISTORY)
    done = {h["id"] for h in history}
    # sft/pairs are derived from history, so a crash between writes can never leave them out of step
    sft = [s for h in history for s in sft_records(h, sft_all_revisions, rules)]
    write_jsonl(out / SFT, sft, "w")
    write_jsonl(out / PAIRS, filter(None, map(pair_record, history)), "w")
    todo = [p for p in as_prompts(conversations) if p.id not in done]
    prefix = fewshot.critique_prefix(owner)
    start = time.time()
    bar = tqdm(total=len(todo), unit="prompt", desc="cai revise", disable=not progress)
    for c0 in range(0, len(todo), batch_size):
        chunk = todo[c0:c0 + batch_size]
        chunk_seed = derive_seed(seed, *(p.id for p in chunk))
        items = [_Item(p, random.Random(derive_seed(seed, p.id))) for p in chunk]
        answers = policy.chat([p.as_list() for p in chunk], dataclasses.replace(gen, seed=chunk_seed))
        for it, a in zip(items, answers, strict=True):
            it.initial = it.current = a.strip()
        for r in range(rounds):
            if all(it.done for it in items):
                break
            _round(items, r, usable, feedback, rules, prefix, gen, chunk_seed)
        records = []
        for it in items:
            if rules is not None and final_privacy_pass and (critique := rules.critique(it.current)):
                fixed = rules.revise(it.current)
                it.rounds.append({"round": len(it.rounds), "principle": "privacy:final", "checker": "privacy",
                                  "critique": critique, "revision": fixed, "kept": True, "reason": "revised"})
                it.current = fixed
            records.append({"id": it.prompt.id, "prompt": it.prompt.as_list(), "initial": it.initial,
                            "rounds": it.rounds, "final": it.current, "early_stop": it.early_stop})
        new_sft = [s for h in records for s in sft_records(h, sft_all_revisions, rules)]
        write_jsonl(out / SFT, new_sft)
        sft += new_sft
        write_jsonl(out / PAIRS, filter(None, map(pair_record, records)))
        write_jsonl(out / HISTORY, records)  # last: a prompt counts as done only once all its outputs exist
        history += records
        bar.update(len(chunk))
    bar.close()
    report = summarise(history, len(sft), new_prompts=len(todo), resumed_prompts=len(done), rounds=rounds, seed=seed,
                       constitution=constitution.name, policy=backend_name(policy), feedback=backend_name(feedback),
                       privacy_rules=rules is not None, sft_all_revisions=sft_all_revisions,
                       cut_prompts=cut_prompts(policy, feedback), seconds=round(time.time() - start, 2))
    (out / REPORT).write_text(json.dumps(report, indent=2) + "\n")
    return report
