"""The files of an output folder besides its token shards, as text the audit can search, field by field.

JSON Lines files give one item per string of each record (``metadata.to[0]``, ``text``, ``id``; object
keys too, as ``metadata (key)``), numbered by line; JSON files the same for the one value they hold;
any other file (``report.md``, notes, files of unknown kind) is one item of its whole text, decoded as
UTF-8 with replacement characters. A line or file that is not valid JSON is searched as plain text.
Token shard data (``.bin``, ``.idx``, ``.mask`` next to a shard sidecar) is decoded by the audit
itself, not read here.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from flaxgpt.data.shards import SPLITS

SHARD_DATA = (".bin", ".idx", ".mask")
_TEXT_LIMIT = 256 * 2**20  # larger non-JSONL files are read in pieces of this many bytes


@dataclass(frozen=True)
class Item:
    """One searchable piece of a file: ``document`` is a line number (JSON Lines, 1-based) or 0,
    ``field`` the JSON path of the value (None for plain text), ``doc_id`` the record's id if it has one."""

    document: int
    text: str
    field: str | None = None
    doc_id: str | None = None


def is_shard_data(path: Path) -> bool:
    """True for the token and index files of a shard (``train-00000.bin`` next to ``train-00000.json``)."""
    stem = path.name.split(".", 1)[0]
    return (path.suffix in SHARD_DATA and stem.split("-", 1)[0] in SPLITS
            and path.with_name(f"{stem}.json").is_file())


def output_files(root: Path) -> list[Path]:
    """Every file under ``root`` (not hidden, not shard data), sorted."""
    if root.is_file():
        return [root]
    return sorted(p for p in root.rglob("*") if p.is_file() and not is_shard_data(p)
                  and not any(part.startswith(".") for part in p.relative_to(root).parts))


def json_fields(value: Any, path: str = "") -> Iterator[tuple[str, str]]:
    """(JSON path, text) of every string, number and object key inside ``value``."""
    if isinstance(value, dict):
        for key, v in value.items():
            sub = f"{path}.{key}" if path else str(key)
            yield f"{sub} (key)", str(key)
            yield from json_fields(v, sub)
    elif isinstance(value, list):
        for i, v in enumerate(value):
            yield from json_fields(v, f"{path}[{i}]")
    elif value is not None and not isinstance(value, bool):
        yield path or "(value)", str(value)


def _record_items(document: int, line: str) -> Iterator[Item]:
    try:
        record = json.loads(line)
    except json.JSONDecodeError:
        yield Item(document, line)
        return
    doc_id = record.get("id") if isinstance(record, dict) and isinstance(record.get("id"), str) else None
    for field, text in json_fields(record):
        yield Item(document, text, field, doc_id)


def file_items(path: Path) -> Iterator[Item]:
    """The searchable items of one file (see the module docstring), streamed for JSON Lines."""
    if path.suffix == ".jsonl":
        with open(path, encoding="utf-8", errors="replace") as f:
            for lineno, line in enumerate(f, 1):
                if line.strip():
                    yield from _record_items(lineno, line)
        return
    if path.suffix == ".json" and path.stat().st_size <= _TEXT_LIMIT:
        text = path.read_text(encoding="utf-8", errors="replace")
        try:
            value = json.loads(text)
        except json.JSONDecodeError:
            yield Item(0, text)
            return
        for field, value_text in json_fields(value):
            yield Item(0, value_text, field)
        return
    with open(path, encoding="utf-8", errors="replace") as f:
        while chunk := f.read(_TEXT_LIMIT):
            yield Item(0, chunk)
