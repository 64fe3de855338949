"""Prompt sets for SL-CAI and RL-CAI: files of prompts -> conversations that end on a user turn.

Readers (gzip is read when the name ends in ``.gz``):

* hh-rlhf (``.jsonl``/``.jsonl.gz`` records with a ``"chosen"`` transcript, or red-team-attempts
  records with a ``"transcript"``): by default the *first* human turn (``turns="first"``, as red-team
  prompts are used by the CAI paper and the HF recipe); ``turns="last"`` keeps the whole dialogue up
  to the last human turn (dropping the final assistant reply); ``turns="each"`` gives one prompt per
  human turn, each with the turns before it (the CAI paper's "one prompt per human turn").
* JSONL of ``{"prompt": "..."}`` or ``{"messages": [{"role", "content"}, ...]}`` (OpenAI chat format;
  trailing assistant messages are dropped, so a chat SFT file works as a prompt set).
* plain text (any other suffix): one prompt per non-blank line.
* ``facts_prompts``: the ``{"question", "answers"}`` facts file as helpfulness prompts about the
  owner. (The facts file is also the evaluation set: prompts made from it leak eval questions into
  CAI data, so keep it for demos or hold some facts out.)
* ``corpus_prompts``: ``documents.jsonl`` of an ingest output -> "What did <owner> write about
  <title>?" for documents with a title.

Each prompt is a ``Prompt(id, messages)``; the id is a hash of the messages, so the same prompt read
twice (or from another file) is one prompt, and reruns can skip what is done. Errors name the file
and line.
"""

from __future__ import annotations

import hashlib
import json
import random
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from flaxgpt.data.chat import parse_hh
from flaxgpt.data.jsonfile import open_jsonl

TURNS = ("first", "last", "each")
_ROLES = ("system", "user", "assistant")
_CORPUS_TEMPLATES = ("What did {owner} write about {title}?", "Summarise what {owner} said in \"{title}\".")


@dataclass(frozen=True)
class Prompt:
    """A conversation ending on a user turn, with a stable id (a hash of its messages) and where it came from."""

    messages: tuple[Mapping[str, str], ...]
    source: str = ""
    id: str = field(default="")

    def __post_init__(self) -> None:
        if not self.messages or self.messages[-1]["role"] != "user":
            raise ValueError(f"{self.source or 'prompt'}: a prompt must end on a user turn")
        if not self.id:
            object.__setattr__(self, "id", prompt_id(self.messages))

    def as_list(self) -> list[dict[str, str]]:
        """The messages as a list of plain dicts (for JSON and for ``Backend.chat``)."""
        return [{"role": m["role"], "content": m["content"]} for m in self.messages]


def prompt_id(messages: Sequence[Mapping[str, str]]) -> str:
    """A short stable hash of (role, content) pairs."""
    blob = json.dumps([[m["role"], m["content"]] for m in messages], ensure_ascii=False)
    return "p" + hashlib.sha1(blob.encode()).hexdigest()[:15]


def _json_lines(path: Path) -> Iterator[tuple[int, Any]]:
    with open_jsonl(path) as f:
        for lineno, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                yield lineno, json.loads(line)
            except json.JSONDecodeError as e:
                raise ValueError(f"{path}:{lineno}: not a JSON line ({e})") from None


def _is_jsonl(path: Path) -> bool:
    return path.name.endswith((".jsonl", ".jsonl.gz", ".json"))


def _user(text: str) -> tuple[dict[str, str], ...]:
    return ({"role": "user", "content": text.strip()},)


def _check_messages(raw: Any, where: str) -> list[dict[str, str]]:
    if not isinstance(raw, list) or not raw:
        raise ValueError(f"{where}: 'messages' must be a non-empty list of {{\"role\", \"content\"}}")
    out = []
    for i, m in enumerate(raw):
        role = m.get("role") if isinstance(m, Mapping) else None
        role = "system" if role == "developer" else role
        if role not in _ROLES or not isinstance(m.get("content"), str):
            raise ValueError(f"{where}: message {i} must have a role in {list(_ROLES)} and string content")
        out.append({"role": role, "content": m["content"].strip()})
    return out


def _hh_prompts(messages: list[dict[str, str]], turns: str) -> Iterator[tuple[dict[str, str], ...]]:
    users = [i for i, m in enumerate(messages) if m["role"] == "user"]
    if not users:
        return
    if turns == "first":
        yield tuple(messages[:users[0] + 1])
    elif turns == "last":
        yield tuple(messages[:users[-1] + 1])
    else:
        for i in users:
            yield tuple(messages[:i + 1])


def read_prompts(path: str | Path, *, turns: str = "first") -> list[Prompt]:
    """The prompts of one file (hh-rlhf, red-team-attempts, ``{"prompt"}``/``{"messages"}`` JSONL, or text lines).

    ``turns`` (hh-rlhf only): ``first``, ``last`` or ``each`` human turn (see the module docstring).
    Empty prompts are skipped; malformed records raise ValueError naming ``file:line``.
    """
    if turns not in TURNS:
        raise ValueError(f"turns must be one of {list(TURNS)}, got {turns!r}")
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"prompt file not found: {path}")
    out: list[Prompt] = []
    if not _is_jsonl(path):
        with open_jsonl(path) as f:
            for lineno, line in enumerate(f, 1):
                if line.strip():
                    out.append(Prompt(_user(line), f"{path.name}:{lineno}"))
        return out
    for lineno, record in _json_lines(path):
        where = f"{path}:{lineno}"
        src = f"{path.name}:{lineno}"
        if not isinstance(record, Mapping):
            raise ValueError(f"{where}: expected a JSON object, got {type(record).__name__}")
        hh = next((k for k in ("chosen", "transcript") if isinstance(record.get(k), str)), None)
        if hh is not None:
            try:
                messages = parse_hh(record[hh])
            except ValueError as e:
                raise ValueError(f"{where}: {e}") from None
            out.extend(Prompt(p, src) for p in _hh_prompts([m for m in messages if m["content"]], turns))
        elif "prompt" in record:
            if not isinstance(record["prompt"], str):
                raise ValueError(f"{where}: 'prompt' must be a string, got {type(record['prompt']).__name__}")
            if record["prompt"].strip():
                out.append(Prompt(_user(record["prompt"]), src))
        elif "messages" in record:
            messages = [m for m in _check_messages(record["messages"], where) if m["content"]]
            while messages and messages[-1]["role"] == "assistant":  # a chat SFT record: prompt = all but the reply
                messages.pop()
            if messages and messages[-1]["role"] == "user":
                out.append(Prompt(tuple(messages), src))
        else:
            raise ValueError(f"{where}: expected an hh-rlhf record (\"chosen\"), a red-team record (\"transcript\"), "
                             f"{{\"prompt\": ...}} or {{\"messages\": [...]}}; got keys {sorted(record)}")
    return out


def facts_prompts(path: str | Path) -> list[Prompt]:
    """Helpfulness prompts from a facts file (``{"question", "answers"}`` per line): one user turn per question."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"facts file not found: {path}")
    out = []
    for lineno, record in _json_lines(path):
        if not isinstance(record, Mapping) or not isinstance(record.get("question"), str):
            raise ValueError(f"{path}:{lineno}: expected {{\"question\": str, \"answers\": [...]}}")
        if record["question"].strip():
            out.append(Prompt(_user(record["question"]), f"{path.name}:{lineno}"))
    return out


def corpus_prompts(documents: str | Path, owner: str, *, limit: int | None = None) -> list[Prompt]:
    """Helpfulness prompts about the corpus: "What did <owner> write about <title>?" per titled document.

    ``documents`` is an ingest output's ``documents.jsonl`` (its folder works too); a title comes from
    ``metadata.title`` (PDF, DOCX, PPTX, HTML, Notion documents carry one).
    """
    path = Path(documents)
    if path.is_dir():
        path = path / "documents.jsonl"
    if not path.is_file():
        raise FileNotFoundError(f"documents file not found: {path}")
    out: list[Prompt] = []
    seen: set[str] = set()
    for lineno, record in _json_lines(path):
        if not isinstance(record, Mapping):
            raise ValueError(f"{path}:{lineno}: expected a document object")
        meta = record.get("metadata") if isinstance(record.get("metadata"), Mapping) else {}
        title = meta.get("title")
        if not isinstance(title, str) or not title.strip() or title.strip().lower() in seen:
            continue
        seen.add(title.strip().lower())
        template = _CORPUS_TEMPLATES[len(out) % len(_CORPUS_TEMPLATES)]
        out.append(Prompt(_user(template.format(owner=owner, title=title.strip())), f"{path.name}:{lineno}"))
        if limit is not None and len(out) >= limit:
            break
    return out


def dedupe(prompts: Iterable[Prompt]) -> list[Prompt]:
    """The prompts with repeats (same messages) removed, first occurrence kept."""
    seen: set[str] = set()
    out = []
    for p in prompts:
        if p.id not in seen:
            seen.add(p.id)
            out.append(p)
    return out


def load_prompts(paths: Sequence[str | Path] = (), *, facts: str | Path | None = None,
                 documents: str | Path | None = None, owner: str | None = None, turns: str = "first",
                 limit: int | None = None, seed: int = 0, shuffle: bool = True) -> list[Prompt]:
    """All prompts of ``paths`` (plus the facts file and corpus titles, if given), deduplicated,
    shuffled with ``seed`` (so ``limit`` takes a fair sample), and cut to ``limit``.

    Raises ValueError when nothing is left to work on.
    """
    prompts: list[Prompt] = []
    for p in paths:
        prompts += read_prompts(p, turns=turns)
    if facts is not None:
        prompts += facts_prompts(facts)
    if documents is not None:
        prompts += corpus_prompts(documents, owner or "the author")
    prompts = dedupe(prompts)
    if shuffle:
        random.Random(seed).shuffle(prompts)
    if limit is not None:
        if limit < 1:
            raise ValueError(f"limit must be >= 1, got {limit}")
        prompts = prompts[:limit]
    if not prompts:
        raise ValueError("no prompts: give --prompts FILE (hh-rlhf, JSONL or text), --facts FILE or --documents")
    return prompts
