"""Reading JSON files with errors that name the file: one flaxgpt wrote (a shard sidecar, a tokenizer spec), and
JSON lines that users bring (plain or gzipped)."""

from __future__ import annotations

import gzip
import json
from pathlib import Path
from typing import IO, Any


def read_json(path: Path, what: str, kind: str) -> Any:
    """Takes the path of a UTF-8 JSON file; returns its content.

    Raises FileNotFoundError ``"{what} not found: {path}"`` and ValueError ``"{path}: not a valid {kind} (...)"``.
    """
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise FileNotFoundError(f"{what} not found: {path}") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise ValueError(f"{path}: not a valid {kind} ({e})") from None


def open_jsonl(path: Path, mode: str = "rt") -> IO[Any]:
    """Opens a ``.jsonl`` or ``.jsonl.gz`` file (text mode: UTF-8, a BOM dropped; ``mode="rb"``: bytes).

    A ``.gz`` that is not gzip is a ValueError naming the file and what it is instead (a git-lfs pointer left by
    a clone without ``git lfs pull``, plain text, nothing); a missing file a FileNotFoundError.
    """
    if path.name.endswith(".gz"):
        with open(path, "rb") as raw:
            head = raw.read(200)
        if head[:2] != b"\x1f\x8b":
            looks = ("a git-lfs pointer (run `git lfs pull` to fetch the real file)"
                     if head.startswith(b"version https://git-lfs") else
                     "empty" if not head else "plain text" if head.isascii() else "binary data")
            raise ValueError(f"{path}: not a gzip file, although its name ends in .gz: it is {looks}")
        return gzip.open(path, mode, encoding="utf-8-sig") if "t" in mode else gzip.open(path, mode)
    return open(path, mode, encoding="utf-8-sig") if "t" in mode else open(path, mode)  # noqa: SIM115
