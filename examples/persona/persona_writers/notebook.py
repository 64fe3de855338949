"""A Jupyter notebook (nbformat 4) from a percent-format script in ``src/notebooks/``.

'# %%' starts a code cell and '# %% [markdown]' a Markdown cell (its lines lose the leading '# ').
In code cells, '#| out: text' attaches a stdout stream output and '#| png: text' a small image output
with that text/plain fallback; extractors should keep the code and drop outputs.
"""

from __future__ import annotations

import base64
import json
import struct
import zlib
from pathlib import Path

from .common import SRC, write_bytes


def _png(width: int = 24, height: int = 6) -> bytes:
    """A tiny grey PNG; stored (level 0) deflate so the bytes do not depend on the zlib build."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    rows = b"".join(b"\x00" + bytes([200 - 8 * y] * width) for y in range(height))
    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(rows, 0))
            + chunk(b"IEND", b""))


def _lines(text: str) -> list[str]:
    """Jupyter's multi-line string form: a list of lines, each but the last ending in a newline."""
    parts = text.split("\n")
    return [p + "\n" for p in parts[:-1]] + ([parts[-1]] if parts[-1] else [])


def notebook(script: str, name: str) -> dict:
    """Parse a percent-format script into an nbformat-4 notebook dict."""
    cells = []
    count = 0
    for n, chunk in enumerate(script.split("# %%")[1:]):
        head, _, body = chunk.partition("\n")
        cell_id = f"{name[:20]}-{n:02d}"
        if head.strip() == "[markdown]":
            text = "\n".join(line[2:] if line.startswith("# ") else line.lstrip("#") for line in body.splitlines())
            cells.append({"cell_type": "markdown", "id": cell_id, "metadata": {}, "source": _lines(text.strip())})
            continue
        count += 1
        code, outputs = [], []
        for line in body.splitlines():
            if line.startswith("#| out: "):
                outputs.append({"name": "stdout", "output_type": "stream", "text": [line[8:] + "\n"]})
            elif line.startswith("#| png: "):
                outputs.append({"data": {"image/png": base64.b64encode(_png()).decode(), "text/plain": [line[8:]]},
                                "metadata": {}, "output_type": "display_data"})
            else:
                code.append(line)
        cells.append({"cell_type": "code", "execution_count": count, "id": cell_id, "metadata": {},
                      "outputs": outputs, "source": _lines("\n".join(code).strip())})
    return {"cells": cells, "metadata": {
        "kernelspec": {"display_name": "Python 3", "language": "python", "name": "python3"},
        "language_info": {"name": "python", "version": "3.11.9", "mimetype": "text/x-python",
                          "file_extension": ".py", "pygments_lexer": "ipython3"}},
        "nbformat": 4, "nbformat_minor": 5}


def write_notebooks(out: Path) -> list[Path]:
    """Write ``notebooks/<name>.ipynb`` for every ``src/notebooks/<name>.py`` under ``out``."""
    paths = []
    for script in sorted((SRC / "notebooks").glob("*.py")):
        nb = notebook(script.read_text(encoding="utf-8"), script.stem)
        data = (json.dumps(nb, indent=1, ensure_ascii=False) + "\n").encode("utf-8")
        paths.append(write_bytes(out / "notebooks" / f"{script.stem}.ipynb", data))
    return paths
