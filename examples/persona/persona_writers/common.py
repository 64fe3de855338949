"""Helpers every writer shares: fixed dates, byte-stable zip files, and a tiny Markdown block parser."""

from __future__ import annotations

import io
import re
import zipfile
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

PERSONA = Path(__file__).resolve().parent.parent
SRC = PERSONA / "src"
OWNER_NAME = "Ines Halvorsen"
OWNER_EMAIL = "ines@halvorsen.example"


def utc(text: str) -> datetime:
    """'2023-10-12 09:00:00' (read as UTC) -> an aware datetime."""
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def zip_bytes(members: list[tuple[str, bytes]], when: datetime) -> bytes:
    """A zip of ``(name, data)`` members in the given order, every member stamped ``when``, deflated.

    Fixed dates, fixed permissions and a fixed creator system make the archive byte-identical on every
    run (zipfile otherwise stamps members with the current time).
    """
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for name, data in members:
            info = zipfile.ZipInfo(name, date_time=when.timetuple()[:6])
            info.compress_type = zipfile.ZIP_DEFLATED
            info.create_system = 3  # unix, whatever the building machine
            info.external_attr = (0o40755 if name.endswith("/") else 0o100644) << 16
            zf.writestr(info, data)
    return buf.getvalue()


def restamp_zip(data: bytes, when: datetime) -> bytes:
    """The same archive with every member re-stamped ``when`` (python-docx/-pptx stamp the current time)."""
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        members = [(info.filename, zf.read(info)) for info in zf.infolist()]
    return zip_bytes(members, when)


def write_bytes(path: Path, data: bytes) -> Path:
    """Write ``data`` to ``path`` (creating parent folders) and return the path."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


@dataclass(frozen=True)
class Block:
    """One Markdown block: kind is h1/h2/h3, p (paragraph) or li (list item, ``ordered`` for '1.')."""

    kind: str
    text: str
    ordered: bool = False


_ITEM = re.compile(r"^(?:[-*]|(\d+)\.)\s+")


def markdown_blocks(text: str) -> list[Block]:
    """Split the Markdown subset the persona uses (#-headings, paragraphs, '-'/'1.' lists) into blocks.

    Wrapped lines are joined with spaces; inline markup (**bold**, *italic*, `code`) is left in the text.
    """
    blocks: list[Block] = []
    para: list[str] = []

    def flush() -> None:
        if para:
            blocks.append(Block("p", " ".join(para)))
            para.clear()

    for raw in text.splitlines():
        line = raw.strip()
        if not line:
            flush()
        elif line.startswith("#"):
            flush()
            level = len(line) - len(line.lstrip("#"))
            blocks.append(Block(f"h{level}", line[level:].strip()))
        elif m := _ITEM.match(line):
            flush()
            blocks.append(Block("li", line[m.end():], ordered=m.group(1) is not None))
        elif blocks and blocks[-1].kind == "li" and not para and raw.startswith(" "):
            last = blocks.pop()  # an indented line continues the list item above
            blocks.append(Block("li", f"{last.text} {line}", last.ordered))
        else:
            para.append(line)
    flush()
    return blocks


_INLINE = re.compile(r"\*\*(.+?)\*\*|\*(.+?)\*|`(.+?)`")


def inline_runs(text: str) -> list[tuple[str, str]]:
    """Split inline Markdown into ``(style, text)`` runs; style is '', 'b', 'i' or 'code'."""
    runs: list[tuple[str, str]] = []
    pos = 0
    for m in _INLINE.finditer(text):
        if m.start() > pos:
            runs.append(("", text[pos:m.start()]))
        style = "b" if m.group(1) is not None else "i" if m.group(2) is not None else "code"
        runs.append((style, m.group(1) or m.group(2) or m.group(3)))
        pos = m.end()
    if pos < len(text):
        runs.append(("", text[pos:]))
    return runs


def plain(text: str) -> str:
    """Inline Markdown with the markup removed."""
    return "".join(t for _, t in inline_runs(text))
