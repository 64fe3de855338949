"""Reading a JSON file flaxgpt wrote (a shard sidecar, a tokenizer spec), with errors that name the file."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any


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
