"""Chat datasets -> conversations: the input formats of ``flaxgpt tokenize-chat`` (and of preference data).

Three input formats, each JSON lines (optionally gzipped: ``.jsonl`` or ``.jsonl.gz``):

  * ``openai``: one conversation per line, ``{"messages": [{"role", "content"}, ...]}`` (OpenAI's
    fine-tuning format; a bare list of messages is accepted too). Roles system, developer (read as
    system), user, assistant; content a string or a list of ``{"type": "text", "text": ...}`` parts;
    an assistant message with ``"weight": 0`` is kept as context but not trained on. A record's
    ``"id"`` (if any) names it. Tool and function messages are not supported: such conversations are
    skipped and counted.
  * ``hh``: Anthropic hh-rlhf, ``{"chosen": ..., "rejected": ...}`` transcripts of
    ``\\n\\nHuman: ...\\n\\nAssistant: ...`` turns; SFT reads ``chosen``.
  * ``oasst``: OpenAssistant OASST1 exports, either message trees (``*.trees.jsonl``: one tree per
    line, ``{"message_tree_id", "prompt": {..., "replies": [...]}}``) or flat messages
    (``*.messages.jsonl``: ``message_id``, ``parent_id``, ``message_tree_id``, ...). From each tree
    the best-ranked path is taken: from the prompt, at every level the usable reply with the lowest
    ``rank`` (0 is best; unranked replies come after ranked ones, ties in file order). Deleted
    messages and those that failed review are not usable. ``lang`` keeps trees whose prompt has
    that language.

Each reader yields ``Conversation`` (messages, ending with the last trained assistant turn) or
``Skipped`` (with a reason) records; ``flaxgpt.data.chat_shards`` renders and writes them.
"""

from __future__ import annotations

import json
import re
from collections import defaultdict
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from flaxgpt.data.chat_template import ROLES
from flaxgpt.data.jsonfile import open_jsonl

FORMATS = ("openai", "hh", "oasst")
SUFFIXES = (".jsonl", ".jsonl.gz")


@dataclass(frozen=True)
class Conversation:
    """One conversation to train on.

    ``id`` decides its split (stable across reruns); ``messages`` are ``{"role", "content"}`` dicts
    with roles system, user, assistant, and an optional ``"weight": 0`` on an assistant message
    that stays context only.
    """

    id: str
    messages: list[dict[str, Any]]


@dataclass(frozen=True)
class Skipped:
    """A record that yields no conversation, and why (counted in the summary)."""

    id: str
    reason: str


Record = Conversation | Skipped


def _lines(path: Path) -> Iterator[tuple[int, Any]]:
    """(line number, parsed JSON) of every non-blank line of a .jsonl or .jsonl.gz file."""
    with open_jsonl(path, "rb") as f:
        for lineno, raw in enumerate(f, 1):
            if not raw.strip():
                continue
            try:
                yield lineno, json.loads(raw.decode("utf-8-sig"))
            except (UnicodeDecodeError, json.JSONDecodeError) as e:
                raise ValueError(f"{path}:{lineno}: not a UTF-8 JSON line ({e})") from None


def finish(conv_id: str, messages: list[dict[str, Any]]) -> Record:
    """Drops empty messages and those after the last trained assistant turn; Skipped if none is left."""
    messages = [m for m in messages if m["content"].strip()]
    trained = [i for i, m in enumerate(messages) if m["role"] == "assistant" and m.get("weight", 1) != 0]
    if not trained:
        return Skipped(conv_id, "no_assistant_turn")
    return Conversation(conv_id, messages[:trained[-1] + 1])


# ---------------------------------------------------------------- openai


def _openai_content(content: Any) -> str | None:
    """A message's text: a string, or the text parts of a content list joined; None for other content."""
    if isinstance(content, str):
        return content
    if isinstance(content, list) and all(isinstance(p, dict) and p.get("type") == "text"
                                         and isinstance(p.get("text"), str) for p in content):
        return "".join(p["text"] for p in content)
    return None


def openai_record(record: Any, conv_id: str, where: str) -> Record:
    """One OpenAI-format record (``{"messages": [...]}`` or a bare list) -> Conversation or Skipped.

    Raises ValueError naming ``where`` when the record is not a conversation at all.
    """
    messages = record.get("messages") if isinstance(record, dict) else record
    if not isinstance(messages, list) or not all(isinstance(m, dict) for m in messages):
        raise ValueError(f"{where}: expected {{\"messages\": [{{\"role\": ..., \"content\": ...}}, ...]}}")
    out = []
    for m in messages:
        role = {"developer": "system"}.get(m.get("role"), m.get("role"))
        if role not in ROLES:
            return Skipped(conv_id, f"unsupported_role:{role}")
        if m.get("tool_calls") or m.get("function_call"):
            return Skipped(conv_id, "tool_calls")
        content = _openai_content(m.get("content"))
        if content is None:
            return Skipped(conv_id, "non_text_content")
        message = {"role": role, "content": content}
        if role == "assistant" and "weight" in m:
            if m["weight"] not in (0, 1) or isinstance(m["weight"], bool):
                raise ValueError(f"{where}: assistant \"weight\" must be 0 or 1, got {m['weight']!r}")
            message["weight"] = int(m["weight"])
        out.append(message)
    return finish(conv_id, out)


def read_openai(path: str | Path, rel: str | None = None) -> Iterator[Record]:
    """Conversations of an OpenAI messages JSONL file; ids are ``rel#id`` (record id) or ``rel:line``."""
    path = Path(path)
    rel = rel or path.name
    for lineno, record in _lines(path):
        key = record.get("id") if isinstance(record, dict) else None
        conv_id = f"{rel}#{key}" if isinstance(key, str | int) and not isinstance(key, bool) else f"{rel}:{lineno}"
        yield openai_record(record, conv_id, f"{path}:{lineno}")


# ---------------------------------------------------------------- hh-rlhf

_HH_TURN = re.compile(r"\n\n(Human|Assistant):")
_HH_ROLES = {"Human": "user", "Assistant": "assistant"}


def parse_hh(transcript: str) -> list[dict[str, str]]:
    """An hh-rlhf transcript (``\\n\\nHuman: ...\\n\\nAssistant: ...``) -> messages, in order.

    Raises ValueError when there is text before the first turn or no turn at all.
    """
    if transcript.startswith(("Human:", "Assistant:")):  # a few transcripts lack the leading blank line
        transcript = "\n\n" + transcript
    parts = _HH_TURN.split(transcript)
    if parts[0].strip() or len(parts) < 3:
        raise ValueError("not an hh-rlhf transcript: expected '\\n\\nHuman: ...\\n\\nAssistant: ...' turns, got "
                         f"{transcript[:60]!r}")
    return [{"role": _HH_ROLES[role], "content": text.strip()} for role, text in zip(parts[1::2], parts[2::2],
                                                                                      strict=True)]


def read_hh(path: str | Path, rel: str | None = None, field: str = "chosen",
            all_turns: bool = False) -> Iterator[Record]:
    """Conversations of an hh-rlhf JSONL file from each record's ``field`` (SFT: ``chosen``). Only the final
    assistant turn, the one the record compares, is trained (weight 1); the earlier turns are context (weight 0):
    they were never compared and are sometimes harmful. ``all_turns`` trains every assistant turn."""
    path = Path(path)
    rel = rel or path.name
    for lineno, record in _lines(path):
        where = f"{path}:{lineno}"
        if not isinstance(record, dict) or not isinstance(record.get(field), str):
            raise ValueError(f"{where}: expected an hh-rlhf record with a string {field!r} field")
        try:
            messages = parse_hh(record[field])
        except ValueError:
            yield Skipped(f"{rel}:{lineno}", "malformed_transcript")
            continue
        if not all_turns:
            last = max((i for i, m in enumerate(messages) if m["role"] == "assistant" and m["content"].strip()),
                       default=-1)
            messages = [{**m, "weight": 0} if m["role"] == "assistant" and i != last else m
                        for i, m in enumerate(messages)]
        yield finish(f"{rel}:{lineno}", messages)


# ---------------------------------------------------------------- OASST1

_OASST_ROLES = {"prompter": "user", "assistant": "assistant"}


def _usable(node: Mapping[str, Any]) -> bool:
    return (not node.get("deleted") and node.get("review_result") is not False
            and node.get("role") in _OASST_ROLES and isinstance(node.get("text"), str))


def best_path(root: Mapping[str, Any], replies: Callable[[Mapping[str, Any]], list] | None = None) -> list[dict]:
    """The best-ranked path of an OASST message tree, from ``root`` down to a leaf.

    ``replies(node)`` lists a node's children (default: its ``"replies"`` field). At each level the
    usable reply with the lowest ``rank`` is taken (unranked after ranked, ties in list order).
    """
    replies = replies or (lambda node: node.get("replies") or [])
    path = [root]
    node = root
    while True:
        options = [(i, r) for i, r in enumerate(replies(node)) if _usable(r)]
        if not options:
            return path
        _, node = min(options, key=lambda ir: (ir[1].get("rank") is None, ir[1].get("rank") or 0, ir[0]))
        path.append(node)


def oasst_conversation(root: Mapping[str, Any], tree_id: str,
                       replies: Callable[[Mapping[str, Any]], list] | None = None) -> Record:
    """The best-ranked path of the tree at ``root`` as a conversation (Skipped if unusable)."""
    if not _usable(root) or root.get("role") != "prompter":
        return Skipped(tree_id, "unusable_prompt")
    path = best_path(root, replies)
    return finish(tree_id, [{"role": _OASST_ROLES[n["role"]], "content": n["text"]} for n in path])


def read_oasst(path: str | Path, rel: str | None = None, lang: str | None = None) -> Iterator[Record]:
    """Conversations of an OASST1 export: message trees (one per line) or flat messages (grouped by tree)."""
    path = Path(path)
    rel = rel or path.name
    flat: dict[str, dict[str, Any]] = {}  # message_id -> message, for flat exports (read whole first)
    for lineno, record in _lines(path):
        where = f"{path}:{lineno}"
        if isinstance(record, dict) and isinstance(record.get("prompt"), dict):  # a tree
            tree_id = str(record.get("message_tree_id") or f"{rel}:{lineno}")
            if lang and record["prompt"].get("lang") != lang:
                yield Skipped(tree_id, "other_language")
                continue
            yield oasst_conversation(record["prompt"], tree_id)
        elif isinstance(record, dict) and "message_id" in record and "parent_id" in record:
            keep = ("message_id", "parent_id", "message_tree_id", "text", "role", "rank", "lang", "deleted",
                    "review_result")
            flat[str(record["message_id"])] = {k: record.get(k) for k in keep} | {"line": lineno}
        elif isinstance(record, dict) and record.get("prompt") is None and "message_tree_id" in record:
            yield Skipped(str(record["message_tree_id"]), "empty_tree")
        else:
            raise ValueError(f"{where}: not an OASST message tree ({{\"message_tree_id\", \"prompt\"}}) or "
                             "message (\"message_id\", \"parent_id\", ...)")
    if flat:
        yield from _flat_trees(flat, lang)


def _flat_trees(messages: dict[str, dict[str, Any]], lang: str | None) -> Iterator[Record]:
    children: dict[str, list[dict]] = defaultdict(list)
    roots = []
    for m in sorted(messages.values(), key=lambda m: m["line"]):  # file order: ties in rank keep it
        parent = m["parent_id"]
        if parent is None:
            roots.append(m)
        elif str(parent) in messages:
            children[str(parent)].append(m)
    for root in roots:
        tree_id = str(root.get("message_tree_id") or root["message_id"])
        if lang and root.get("lang") != lang:
            yield Skipped(tree_id, "other_language")
            continue
        yield oasst_conversation(root, tree_id, lambda node: children.get(str(node["message_id"]), []))


READERS: dict[str, Callable[..., Iterator[Record]]] = {"openai": read_openai, "hh": read_hh, "oasst": read_oasst}


def _input_files(inputs: list[Path]) -> Iterator[tuple[Path, str]]:
    """(file, display name) of every .jsonl/.jsonl.gz input; folders are walked in sorted order."""
    for root in inputs:
        if not root.exists():
            raise FileNotFoundError(f"input not found: {root}")
        if root.is_file():
            if not root.name.endswith(SUFFIXES):
                raise ValueError(f"{root}: expected a {' or '.join(SUFFIXES)} file")
            yield root, root.name
            continue
        files = sorted(p for p in root.rglob("*") if p.is_file() and p.name.endswith(SUFFIXES)
                       and not any(part.startswith(".") for part in p.relative_to(root).parts))
        if not files:
            raise FileNotFoundError(f"no {' or '.join(SUFFIXES)} files in {root}")
        for p in files:
            yield p, p.relative_to(root).as_posix()


def read_inputs(inputs: list[str | Path], fmt: str, *, lang: str | None = None,
                hh_all_turns: bool = False) -> Iterator[Record]:
    """Every record of the input files and folders in format ``fmt`` (one of FORMATS), in order.

    Checks the format and that every input exists now; files are read as the iterator is consumed.
    """
    if fmt not in READERS:
        raise ValueError(f"unknown chat format {fmt!r}: expected one of {FORMATS}")
    if lang and fmt != "oasst":
        raise ValueError("lang filters OASST trees only (--format oasst)")
    files = list(_input_files([Path(p) for p in inputs]))

    def records() -> Iterator[Record]:
        for path, rel in files:
            if fmt == "oasst":
                yield from read_oasst(path, rel, lang=lang)
            elif fmt == "hh":
                yield from read_hh(path, rel, all_turns=hh_all_turns)
            else:
                yield from READERS[fmt](path, rel)

    return records()
