"""``flaxgpt tokenize-chat``: conversations -> chat token shards with a loss mask, for SFT.

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

Every conversation is rendered with the chat template (``flaxgpt.data.chat_template``): token ids plus
a mask that is 1 on assistant content and its ``<|end|>`` and 0 elsewhere. Trailing messages after
the last assistant turn teach nothing and are dropped; a conversation with no assistant turn left
to train on is skipped. Conversations go to ``train`` or ``val`` by a hash of their id (as
``flaxgpt tokenize`` splits documents), and are written as masked token shards
(``flaxgpt.data.shards``), one conversation per document, with no end-of-text: each ends with the
assistant's ``<|end|>``. The output is written to a temporary sibling and renamed into place, and
``summary.json`` records counts, skip reasons and conversation lengths (to choose ``data.seq_len``).
"""

from __future__ import annotations

import argparse
import gzip
import json
import re
import shutil
import sys
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from flaxgpt.data.chat_template import END, ROLES, render
from flaxgpt.data.outdir import prepare_out_dir, swap_into_place
from flaxgpt.data.shards import SPLITS, ShardWriter
from flaxgpt.data.tokenize import SUMMARY_FILE, SplitRouter, split_of
from flaxgpt.data.tokenizer import Tokenizer, load_tokenizer

FORMATS = ("openai", "hh", "oasst")
SUFFIXES = (".jsonl", ".jsonl.gz")
LENGTH_THRESHOLDS = (128, 256, 512, 1024, 2048)  # summary: how many conversations are longer than each
MAX_LISTED_SKIPS = 1000


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
    opener = gzip.open if path.name.endswith(".gz") else open
    with opener(path, "rb") as f:
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


def read_hh(path: str | Path, rel: str | None = None, field: str = "chosen") -> Iterator[Record]:
    """Conversations of an hh-rlhf JSONL file from each record's ``field`` (SFT: ``chosen``)."""
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


# ---------------------------------------------------------------- rendering and writing


def render_conversation(messages: list[Mapping[str, Any]], tokenizer: Tokenizer) -> tuple[list[int], list[int]]:
    """(token ids, loss mask) of a conversation: the chat template, with assistant messages of weight 0 untrained."""
    plain = [{"role": m["role"], "content": m["content"]} for m in messages]
    ids, mask = render(plain, tokenizer)
    if any(m.get("weight", 1) == 0 for m in messages):
        start = 0
        for i, m in enumerate(messages):
            end = len(render(plain[:i + 1], tokenizer)[0])  # where message i ends in the rendered ids
            if m.get("weight", 1) == 0:
                mask[start:end] = [0] * (end - start)
            start = end
    return ids, mask


class _MaskedWriter:
    """Lets ``SplitRouter`` (which hands its writers one opaque item) route (ids, mask) pairs."""

    def __init__(self, writer: ShardWriter):
        self.writer = writer

    def add(self, item: tuple[list[int], list[int]]) -> None:
        self.writer.add(*item)


def _is_chat_output(name: str) -> bool:
    return name == SUMMARY_FILE or name.startswith(tuple(f"{s}-" for s in SPLITS))


def _length_stats(lengths: list[int]) -> dict[str, Any]:
    if not lengths:
        return {}
    arr = np.asarray(lengths)
    return {"max": int(arr.max()), "mean": round(float(arr.mean()), 1), "p50": int(np.percentile(arr, 50)),
            "p95": int(np.percentile(arr, 95)),
            "longer_than": {str(t): int((arr > t + 1).sum()) for t in LENGTH_THRESHOLDS}}


def write_chat_shards(records: Iterable[Record], out_dir: str | Path, *, name: str, tokenizer: str = "flaxgpt",
                      val_fraction: float = 0.05, progress: bool = True, inputs: list[str] | None = None) -> dict:
    """Renders conversations and writes them as masked train/val token shards in ``out_dir`` (replaced whole).

    Args:
      records: Conversation (or Skipped, only counted) items, e.g. from ``READERS[fmt](path)``.
      out_dir: output directory: new, empty, or an earlier ``tokenize-chat``/``tokenize`` output.
      name: source name recorded in every sidecar.
      tokenizer: 'flaxgpt' or a tokenizer.json (or its folder) with the chat special tokens.
      val_fraction: expected share of conversations in val, in [0, 1); above 0, two or more
        conversations always give both splits at least one.
      progress: show a tqdm progress bar over conversations.
      inputs: recorded in the summary.

    Returns:
      The summary also written to ``out_dir/summary.json``: conversations, tokens and trained
      (mask 1) tokens per split, skip counts by reason (and the first skipped ids), conversation
      length statistics in tokens, and ``longer_than``: how many exceed ``data.seq_len`` = N.
    """
    if not 0.0 <= val_fraction < 1.0:
        raise ValueError(f"val_fraction must be in [0, 1), got {val_fraction}")
    tok = load_tokenizer(tokenizer)
    if END not in tok.special_ids:
        raise ValueError(f"tokenizer {tok.name!r} has no chat tokens ({END}): use 'flaxgpt' or a personal "
                         "tokenizer built on it")
    meta = tok.metadata()
    out_dir = Path(out_dir).resolve()
    tmp = prepare_out_dir(out_dir, _is_chat_output, "tokenize-chat")
    skipped: Counter = Counter()
    skipped_ids: list[dict[str, str]] = []
    lengths: list[int] = []
    trained = dict.fromkeys(SPLITS, 0)
    try:
        shard_writers = {s: ShardWriter(tmp, s, tokenizer_meta=meta, source=name, loss_mask=True) for s in SPLITS}
        router = SplitRouter({s: _MaskedWriter(w) for s, w in shard_writers.items()}, guarantee_both=val_fraction > 0)
        for record in tqdm(records, unit="conv", desc=f"tokenize-chat {name}", disable=not progress):
            if isinstance(record, Skipped):
                skipped[record.reason] += 1
                if len(skipped_ids) < MAX_LISTED_SKIPS:
                    skipped_ids.append({"id": record.id, "reason": record.reason})
                continue
            try:
                ids, mask = render_conversation(record.messages, tok)
            except ValueError as e:
                raise ValueError(f"conversation {record.id}: {e}") from None
            split, h = split_of(record.id, val_fraction)
            router.add(split, h, (ids, mask))
            lengths.append(len(ids))
        router.finish()
        sidecars = {s: shard_writers[s].close() for s in SPLITS}
        for s in SPLITS:
            trained[s] = sum(m["loss_mask"]["trained_tokens"] for m in sidecars[s])
        summary = {
            "name": name,
            "format": "chat",
            "tokenizer": meta,
            "inputs": inputs or [],
            "val_fraction": val_fraction,
            "conversations": {s: sum(m["num_documents"] for m in sidecars[s]) for s in SPLITS},
            "tokens": {s: sum(m["num_tokens"] for m in sidecars[s]) for s in SPLITS},
            "trained_tokens": trained,
            "shards": {s: len(sidecars[s]) for s in SPLITS},
            "lengths": _length_stats(lengths),
            "skipped": dict(sorted(skipped.items())),
            "skipped_conversations": skipped_ids,
        }
        (tmp / SUMMARY_FILE).write_text(json.dumps(summary, indent=2) + "\n")
        swap_into_place(tmp, out_dir)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return summary


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


def read_inputs(inputs: list[str | Path], fmt: str, *, lang: str | None = None) -> Iterator[Record]:
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
            yield from (read_oasst(path, rel, lang=lang) if fmt == "oasst" else READERS[fmt](path, rel))

    return records()


def tokenize_chat(inputs: list[str | Path], out_dir: str | Path, *, fmt: str, name: str,
                  tokenizer: str = "flaxgpt", val_fraction: float = 0.05, lang: str | None = None,
                  progress: bool = True) -> dict:
    """Reads conversations in format ``fmt`` from files/folders and writes chat shards (see write_chat_shards)."""
    if not inputs:
        raise ValueError("no inputs given")
    records = read_inputs(inputs, fmt, lang=lang)
    return write_chat_shards(records, out_dir, name=name, tokenizer=tokenizer, val_fraction=val_fraction,
                             progress=progress, inputs=[str(p) for p in inputs])


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Adds the ``flaxgpt tokenize-chat`` arguments to ``parser``."""
    parser.add_argument("inputs", nargs="+", metavar="INPUT", help=".jsonl / .jsonl.gz files or folders of them")
    parser.add_argument("--out", required=True, metavar="DIR", help="output shard directory (replaced)")
    parser.add_argument("--format", required=True, choices=FORMATS,
                        help="openai: {messages: [...]} per line; hh: hh-rlhf chosen transcripts; "
                             "oasst: OASST1 trees or messages (best-ranked path)")
    parser.add_argument("--name", default=None, help="source name (default: basename of the first input)")
    parser.add_argument("--tokenizer", default="flaxgpt",
                        help="flaxgpt, or a tokenizer.json (or folder) of a personal vocabulary built on it")
    parser.add_argument("--val-fraction", type=float, default=0.05, help="share of conversations held out (0.05)")
    parser.add_argument("--lang", default=None, help="oasst only: keep trees whose prompt has this language (e.g. en)")


def run(args: argparse.Namespace) -> int:
    """Runs ``flaxgpt tokenize-chat`` from parsed arguments; returns the exit status."""
    first = Path(args.inputs[0])
    name = args.name or first.name.removesuffix(".gz").removesuffix(".jsonl")
    try:
        summary = tokenize_chat(args.inputs, args.out, fmt=args.format, name=name, tokenizer=args.tokenizer,
                                val_fraction=args.val_fraction, lang=args.lang)
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
    if summary["skipped"]:
        reasons = ", ".join(f"{reason} {n}" for reason, n in summary["skipped"].items())
        print(f"skipped: {reasons} (details in {Path(args.out) / SUMMARY_FILE})")
    if convs["train"] == 0:
        print("warning: no training conversations", file=sys.stderr)
    return 0
