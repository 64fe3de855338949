"""The "facts" suite: questions about the persona (``ctx.facts``), answered greedily by the run.

Each line of the facts file is ``{"question": str, "answers": [str, ...]}`` (examples/persona/facts.jsonl);
any accepted answer counts. The run answers each question once at temperature 0 with ``ctx.max_tokens``
new tokens: as a chat turn when its tokenizer has the chat template's tokens (every SFT/CAI run), else
(a pretrained-only run) by continuing ``"Question: ...\\nAnswer:"`` up to the end of the line.

A response is scored twice:
  * ``facts_accuracy`` (the headline): an accepted answer appears in the response as whole words once
    both are normalized (``normalize``: case folded, accents and punctuation dropped, so "Tromsø" in
    "I grew up in tromso." counts);
  * ``facts_exact``: the whole response, stripped of surrounding spaces, is an accepted answer verbatim.
"""

from __future__ import annotations

import json
import re
import unicodedata
from pathlib import Path

from tqdm import tqdm

from flaxgpt.cai.backend import GenParams
from flaxgpt.eval.suite import EvalContext, EvalRun, SuiteResult, speaks_chat, suite

CHUNK = 16  # questions per backend call (one progress step)
# Letters NFKD does not decompose into a base letter plus accents.
_LETTERS = str.maketrans({"ø": "o", "Ø": "o", "æ": "ae", "Æ": "ae", "œ": "oe", "Œ": "oe", "đ": "d", "Đ": "d",
                          "ð": "d", "Ð": "d", "ł": "l", "Ł": "l", "þ": "th", "Þ": "th", "ı": "i"})


def normalize(text: str) -> str:
    """Lower-case ASCII-ish words separated by single spaces: accents, punctuation and symbols dropped."""
    text = unicodedata.normalize("NFKD", text.translate(_LETTERS)).casefold()
    kept = []
    for ch in text:
        cat = unicodedata.category(ch)
        if cat.startswith("M"):  # combining accents
            continue
        kept.append(" " if cat[0] in "PSZC" else ch)
    return re.sub(r"\s+", " ", "".join(kept)).strip()


def contains_answer(response: str, answers: list[str]) -> bool:
    """Whether any answer occurs in the response as whole words, after ``normalize``."""
    resp = f" {normalize(response)} "
    return any(n and f" {n} " in resp for n in (normalize(a) for a in answers))


def exact_answer(response: str, answers: list[str]) -> bool:
    """Whether the stripped response is one of the answers verbatim."""
    return response.strip() in {a.strip() for a in answers}


def read_facts(path: str | Path) -> list[dict]:
    """``[{"question", "answers"}]`` from a facts JSONL file; ValueError naming the file and line."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"facts file not found: {path}")
    out = []
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as err:
            raise ValueError(f"{path}:{n}: not JSON ({err.msg})") from err
        question, answers = (record.get("question"), record.get("answers")) if isinstance(record, dict) else (0, 0)
        if isinstance(answers, str):
            answers = [answers]
        if not isinstance(question, str) or not question.strip() or not isinstance(answers, list) or not answers \
                or not all(isinstance(a, str) for a in answers):
            raise ValueError(f'{path}:{n}: expected {{"question": str, "answers": [str, ...]}}')
        out.append({"question": question, "answers": answers})
    return out


def answer(backend, questions: list[str], max_tokens: int, seed: int = 0) -> list[str]:
    """Greedy answers of ``backend`` (a flaxgpt.cai backend) to ``questions``, as the module docstring says."""
    chat = speaks_chat(backend)
    params = GenParams(max_tokens=max_tokens, temperature=0.0, seed=seed, stop=() if chat else ("\n",))
    out: list[str] = []
    for start in tqdm(range(0, len(questions), CHUNK), desc="facts", unit="chunk", leave=False, disable=None):
        chunk = questions[start:start + CHUNK]
        if chat:
            out += backend.chat([[{"role": "user", "content": q}] for q in chunk], params)
        else:
            out += backend.complete([f"Question: {q}\nAnswer:" for q in chunk], params)
    return out


@suite("facts")
def facts(run: EvalRun, ctx: EvalContext) -> SuiteResult:
    """Accuracy of ``run`` on ``ctx.facts`` (module docstring); missing without a facts file."""
    if ctx.facts is None:
        return SuiteResult.missing("facts", "no facts file (--facts FILE)")
    items = read_facts(ctx.facts)
    if ctx.limit:
        items = items[:ctx.limit]
    if not items:
        return SuiteResult.missing("facts", f"{ctx.facts} holds no questions")
    responses = answer(run.backend(), [it["question"] for it in items], ctx.max_tokens, ctx.seed)
    details = []
    for it, response in zip(items, responses, strict=True):
        details.append({"question": it["question"], "answers": it["answers"], "response": response,
                        "match": contains_answer(response, it["answers"]),
                        "exact": exact_answer(response, it["answers"])})
    n = len(details)
    metrics = {"facts_accuracy": sum(d["match"] for d in details) / n,
               "facts_exact": sum(d["exact"] for d in details) / n, "n": float(n)}
    return SuiteResult("facts", metrics, details)
