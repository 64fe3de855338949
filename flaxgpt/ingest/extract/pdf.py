"""PDF documents (CVs, papers): the text layer in reading order, via pypdf's "plain" extraction.

pypdf is pure Python, so a hostile or huge PDF can take long: pages past ``MAX_PAGES`` and pages
after ``TIME_BUDGET_S`` seconds are left out (the document says so in ``metadata["truncated"]``).
A PDF with no text layer (a scan) is skipped, not OCR'd. Words hyphenated across a line end are joined
("infor-" + "mation" -> "information"); a break after a compound's own hyphen keeps it ("state-of-the-" + "art").
"""

from __future__ import annotations

import io
import time
from collections.abc import Iterator

import regex

from flaxgpt.ingest.extract.base import Context, Document, Skip, SourceFile
from flaxgpt.ingest.extract.web import tidy_text

MAX_PAGES = 2000
TIME_BUDGET_S = 120.0  # checked between pages: one pathological page can still overrun it
_HEADER_SCAN = 1024  # readers accept junk before %PDF- within the first KiB
# Typographic ligatures that fonts map to one glyph; a language model should see the letters.
_LIGATURES = str.maketrans({"\ufb00": "ff", "\ufb01": "fi", "\ufb02": "fl", "\ufb03": "ffi", "\ufb04": "ffl",
                            "\ufb05": "st", "\ufb06": "st", "\u00ad": ""})
# A lower-case word part, a hyphen (or soft hyphen) at the line end, and a lower-case continuation on the next line.
_LINE_END_HYPHEN = regex.compile(r"(\S*\p{Ll})([-\u00ad])[ \t]*\n[ \t]*(?=\p{Ll})")


def _join_hyphen(m: regex.Match) -> str:
    head, hyphen = m.group(1), m.group(2)
    # "state-of-the-" is a compound broken at one of its own hyphens; "infor-" is a word broken in two.
    return head + "-" if hyphen == "-" and "-" in head else head


def join_hyphenated(text: str) -> str:
    """Takes page text; returns it with words hyphenated across line ends joined (see the module docstring)."""
    return _LINE_END_HYPHEN.sub(_join_hyphen, text)


def _open_reader(data: bytes):
    from pypdf import PasswordType, PdfReader  # pypdf loads only when a PDF is read

    try:
        reader = PdfReader(io.BytesIO(data), strict=False)
        if reader.is_encrypted:
            # Many "encrypted" PDFs only restrict printing or copying and open with the empty password.
            try:
                opened = reader.decrypt("") != PasswordType.NOT_DECRYPTED
            except Exception:  # unsupported algorithm or a broken encryption dictionary
                opened = False
            if not opened:
                raise Skip("encrypted PDF")
        len(reader.pages)  # parses the page tree, so a corrupt one fails here rather than mid-way
    except Skip:
        raise
    except Exception as e:  # pypdf raises many exception types on malformed files
        raise Skip(f"corrupt PDF ({type(e).__name__}: {e})") from None
    return reader


def _info(reader) -> dict:
    try:
        info = reader.metadata
    except Exception:  # a broken /Info dictionary should not cost the text
        return {}
    if info is None:
        return {}
    meta = {}
    for key in ("title", "author"):
        try:
            value = getattr(info, key)
        except Exception:
            continue
        if isinstance(value, str) and value.strip():
            meta[key] = value.strip()
    return meta


def extract_pdf(file: SourceFile, ctx: Context) -> Iterator[Document]:
    """One ``prose`` Document with the text of every page in order (pages separated by a blank
    line); metadata has the page count, title and author. Skips encrypted, image-only and corrupt PDFs."""
    data = file.read_bytes(ctx.max_file_bytes)
    if not data.strip():
        raise Skip("empty")
    if b"%PDF-" not in data[:_HEADER_SCAN]:
        raise Skip("not a PDF (no %PDF- header)")
    reader = _open_reader(data)
    n_pages = len(reader.pages)
    pages, read, failed, truncated = [], 0, 0, None
    deadline = time.monotonic() + TIME_BUDGET_S
    for i in range(n_pages):
        if i >= MAX_PAGES:
            truncated = f"page limit: read {MAX_PAGES} of {n_pages} pages"
            break
        if time.monotonic() > deadline:
            truncated = f"time limit: read {i} of {n_pages} pages in {TIME_BUDGET_S:.0f} s"
            break
        read += 1
        try:
            text = reader.pages[i].extract_text(extraction_mode="plain")
        except Exception:  # one broken page (bad font, bad stream) should not cost the others
            failed += 1
            continue
        text = tidy_text(join_hyphenated(text).translate(_LIGATURES))
        if text:
            pages.append(text)
    if not pages:
        if truncated:
            raise Skip(f"stopped early with no text ({truncated})")
        if failed and failed == read:
            raise Skip(f"corrupt PDF (text extraction failed on all {failed} pages)")
        raise Skip("no text layer (image-only PDF)")
    meta = {"format": "pdf", "pages": n_pages, **_info(reader)}
    if failed:
        meta["pages_failed"] = failed
    if truncated:
        meta["truncated"] = truncated
    yield Document(text="\n\n".join(pages), kind="prose", path=file.rel, metadata=meta)
