"""Text-like documents: HTML pages (main text only), Markdown/reST/plain text, and Jupyter notebooks.

Markdown and reST are kept as written (their markup is fine for a language model); only YAML
(``---``) or TOML (``+++``) front matter is lifted out into metadata. HTML goes through trafilatura,
which keeps the article and drops navigation, footers, sidebars and reader comments; it is handed
the bytes of the page and never fetches anything. Notebooks keep markdown and code cells in order,
code fenced with the notebook's language, and drop outputs (they are machine-written, often huge).
"""

from __future__ import annotations

import datetime as _dt
import json
import re
import tomllib
from collections.abc import Iterator
from functools import lru_cache
from typing import Any

import yaml

from flaxgpt.ingest.extract.base import Context, Document, Skip, SourceFile
from flaxgpt.ingest.extract.decode import DecodedText

_UTF16_BOMS = (b"\xff\xfe", b"\xfe\xff")
_FRONT_MATTER = re.compile(r"\A(?:---|\+\+\+)[ \t]*\n(.*?)\n(---|\.\.\.|\+\+\+)[ \t]*(?:\n|\Z)", re.S)
_FRONT_MATTER_SCAN = 65536  # front matter longer than this is not front matter
_FRONT_MATTER_KEYS = ("title", "date", "author", "description", "tags")
_MAX_META_ITEMS = 100
# C0 controls other than \t \n \f and \v (\f and \v are page/line breaks in exported text).
_CONTROL = re.compile(r"[\x00-\x08\x0e-\x1f\x7f\ufffe\uffff]")
_BREAKS = re.compile(r"[\x0b\x0c\u2028\u2029]")
_TRAILING_WS = re.compile(r"[ \t\u00a0]+$", re.M)
_BLANK_RUNS = re.compile(r"\n\n\n+")  # a literal start: fast to scan for
_BINARY_SAMPLE = 65536
_MAX_CONTROL_FRACTION = 0.01  # real text has almost no control characters; binary decoded as cp1252 has many


def tidy_text(text: str, *, collapse_blank_lines: bool = True) -> str:
    """Text with control characters dropped, page/line separators turned into newlines, trailing
    spaces removed, runs of blank lines cut to one (unless ``collapse_blank_lines`` is False, for
    code), and outer whitespace stripped."""
    # Substring tests first: a regex with no literal start tries every position, and most text needs neither.
    if any(c in text for c in "\x0b\x0c\u2028\u2029"):
        text = _BREAKS.sub("\n", text)
    text = _CONTROL.sub("", text)
    if any(f"{c}\n" in text for c in " \t\u00a0") or text.endswith((" ", "\t", "\u00a0")):
        text = _TRAILING_WS.sub("", text)
    return (_BLANK_RUNS.sub("\n\n", text) if collapse_blank_lines else text).strip()


def read_text_file(file: SourceFile, ctx: Context) -> DecodedText:
    """The file as text (``SourceFile.decode``: UTF-8, UTF-16/32 with a BOM, or a detected encoding); Skip if
    binary or undecodable, including text whose decoding is full of control characters."""
    decoded = file.decode(ctx.max_file_bytes)
    sample = decoded.text[:_BINARY_SAMPLE]
    if sample and len(_CONTROL.findall(sample)) > _MAX_CONTROL_FRACTION * len(sample):
        raise Skip("binary content (control characters in text)")
    return decoded


def _meta_value(value: Any) -> Any:
    """A JSON-safe copy of a front-matter value, or None for anything but scalars, dates and flat
    lists of them (YAML aliases can make nested values explode when walked)."""
    if isinstance(value, (_dt.date, _dt.datetime, _dt.time)):
        return value.isoformat()
    if isinstance(value, (str, int, float, bool)):
        return value
    if isinstance(value, list) and len(value) <= _MAX_META_ITEMS:
        items = [_meta_value(v) for v in value if not isinstance(v, (list, dict))]
        return [v for v in items if v is not None] or None
    return None


def split_front_matter(text: str) -> tuple[str, dict]:
    """``(body, metadata)``: YAML or TOML front matter at the top of ``text`` parsed into a dict of
    its title, date, author, description and tags (JSON-safe), and removed from the body. Text
    without front matter, or whose front matter does not parse to a mapping, comes back unchanged."""
    if not text.startswith(("---", "+++")):
        return text, {}
    m = _FRONT_MATTER.match(text[:_FRONT_MATTER_SCAN])
    if m is None or (text[0] == "+") != (m.group(2) == "+++"):
        return text, {}
    try:
        data = tomllib.loads(m.group(1)) if text[0] == "+" else yaml.safe_load(m.group(1))
    except (yaml.YAMLError, tomllib.TOMLDecodeError, ValueError):
        return text, {}
    if not isinstance(data, dict):
        return text, {}
    meta = {k: v for k in _FRONT_MATTER_KEYS if (v := _meta_value(data.get(k))) not in (None, "")}
    return text[m.end():], meta


_TEXT_FORMATS = {".md": "markdown", ".markdown": "markdown", ".rst": "rst", ".txt": "text", ".text": "text"}


def extract_text_file(file: SourceFile, ctx: Context) -> Iterator[Document]:
    """One ``prose`` Document from a Markdown, reST or plain-text file, front matter moved to metadata."""
    decoded = read_text_file(file, ctx)
    body, meta = split_front_matter(decoded.text)
    text = tidy_text(body)
    if not text:
        raise Skip("empty")
    meta["format"] = _TEXT_FORMATS.get(file.suffix, "text")
    meta.update(decoded.metadata())
    yield Document(text=text, kind="prose", path=file.rel, metadata=meta)


@lru_cache(maxsize=1)
def _trafilatura_config(max_bytes: int):
    from trafilatura.settings import use_config  # trafilatura (lxml, many modules) loads only for HTML

    config = use_config()
    # trafilatura drops pages over its own 20 MB default without saying why; our size limit already applies.
    config.set("DEFAULT", "MAX_FILE_SIZE", str(max_bytes))
    # htmldate's extensive search scans all of a page's text for date-like strings: 60% of the extraction time,
    # for pages whose date is not in their markup (meta tags, <time>, the URL, which the fast search reads).
    config.set("DEFAULT", "EXTENSIVE_DATE_SEARCH", "off")
    return config


def extract_html(file: SourceFile, ctx: Context) -> Iterator[Document]:
    """One ``prose`` Document with the main text of an HTML page (title first), without navigation,
    footers, sidebars or comments; metadata has the page's title, author, date and description."""
    data = file.read_bytes(ctx.max_file_bytes)
    if not data.strip():
        raise Skip("empty")
    if b"\x00" in data[:8192] and not data.startswith(_UTF16_BOMS):
        raise Skip("binary content")
    from trafilatura import bare_extraction  # trafilatura (lxml, many modules) loads only for HTML

    try:
        result = bare_extraction(data, favor_precision=True, include_comments=False, include_tables=True,
                                 with_metadata=True, config=_trafilatura_config(ctx.max_file_bytes))
    except Exception as e:  # lxml and trafilatura raise many types on hostile markup
        raise Skip(f"unparseable HTML ({type(e).__name__}: {e})") from None
    text = tidy_text(result.text or "") if result is not None else ""
    if not text:
        raise Skip("no main text found in HTML")
    meta = {k: v for k in ("title", "author", "date", "description") if (v := getattr(result, k, None))}
    title = meta.get("title", "")
    if title and not text.startswith(title):
        text = f"{title}\n\n{text}"
    meta["format"] = "html"
    yield Document(text=text, kind="prose", path=file.rel, metadata=meta)


def _cell_source(cell: dict, key: str) -> str:
    src = cell.get(key, "")
    if isinstance(src, list):
        return "".join(s for s in src if isinstance(s, str))
    return src if isinstance(src, str) else ""


def _notebook_cells(nb: dict) -> list:
    if isinstance(nb.get("cells"), list):  # nbformat 4
        return nb["cells"]
    worksheets = nb.get("worksheets")  # nbformat 3
    if isinstance(worksheets, list) and worksheets and isinstance(worksheets[0], dict):
        return [c for ws in worksheets if isinstance(ws, dict) for c in ws.get("cells") or []]
    raise Skip("not a Jupyter notebook (no cells)")


def _notebook_language(nb: dict) -> str:
    meta = nb.get("metadata") if isinstance(nb.get("metadata"), dict) else {}
    for section, key in (("language_info", "name"), ("kernelspec", "language")):
        value = (meta.get(section) or {}).get(key) if isinstance(meta.get(section), dict) else None
        if isinstance(value, str) and value.strip():
            return value.strip().lower()
    return "python"


def extract_notebook(file: SourceFile, ctx: Context) -> Iterator[Document]:
    """One ``code`` Document from a Jupyter notebook: markdown cells as written and code cells in
    fenced blocks, in notebook order, outputs dropped; metadata has the language and cell counts."""
    data = file.read_bytes(ctx.max_file_bytes)
    if not data.strip():
        raise Skip("empty")
    try:
        nb = json.loads(data)
    except (ValueError, UnicodeDecodeError) as e:
        raise Skip(f"not a Jupyter notebook (invalid JSON: {e})") from None
    if not isinstance(nb, dict):
        raise Skip("not a Jupyter notebook (JSON top level is not an object)")
    lang = _notebook_language(nb)
    parts, counts = [], {"code": 0, "markdown": 0}
    for cell in _notebook_cells(nb):
        if not isinstance(cell, dict):
            continue
        kind = cell.get("cell_type")
        if kind == "code":
            src = _cell_source(cell, "source" if "source" in cell else "input").strip("\n")
            if src.strip():
                parts.append(f"```{lang}\n{src.rstrip()}\n```")
                counts["code"] += 1
        elif kind in ("markdown", "heading"):
            src = _cell_source(cell, "source").strip()
            level = cell.get("level")
            if src and kind == "heading":  # nbformat 3 heading cells carry their level apart from the text
                src = "#" * (level if isinstance(level, int) and 1 <= level <= 6 else 1) + " " + src
            if src:
                parts.append(src)
                counts["markdown"] += 1
    text = tidy_text("\n\n".join(parts), collapse_blank_lines=False)
    if not text:
        raise Skip("empty notebook (no code or markdown cells)")
    meta = {"format": "ipynb", "language": lang, "code_cells": counts["code"], "markdown_cells": counts["markdown"]}
    yield Document(text=text, kind="code", path=file.rel, metadata=meta)
