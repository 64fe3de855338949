"""Office documents: Word (.docx) and PowerPoint (.pptx), read with python-docx and python-pptx.

DOCX body text is read from the document XML in order rather than through python-docx's
``iter_inner_content()``, because that skips content controls (``w:sdt``, used by most CV
templates), text boxes and unfilled-placeholder markers. Tables come out row by row: a row of
one-line cells as ``a | b | c``, otherwise cell by cell; vertically merged cells appear once.
Headers and footers (deduplicated) frame the body. PPTX slides come out in order with grouped
shapes, tables and speaker notes.
"""

from __future__ import annotations

import io
import zipfile
from collections.abc import Iterator

from flaxgpt.ingest.extract.base import Context, Document, Skip, SourceFile
from flaxgpt.ingest.extract.web import tidy_text

_ZIP_MAGIC = b"PK\x03\x04"
_OLE_MAGIC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"  # password-protected OOXML and legacy .doc/.ppt use this container
MAX_UNPACKED_BYTES = 512 * 2**20  # declared uncompressed size of all parts; above it is a zip bomb

_W = "{http://schemas.openxmlformats.org/wordprocessingml/2006/main}"
_MC_FALLBACK = "{http://schemas.openxmlformats.org/markup-compatibility/2006}Fallback"
_P, _TBL, _TR, _TC, _T = _W + "p", _W + "tbl", _W + "tr", _W + "tc", _W + "t"
_SDT, _SDT_CONTENT, _CUSTOM_XML, _TXBX = _W + "sdt", _W + "sdtContent", _W + "customXml", _W + "txbxContent"
_TABS = frozenset({_W + "tab", _W + "ptab"})
_LINE_BREAKS = frozenset({_W + "br", _W + "cr"})
_HYPHENS = frozenset({_W + "noBreakHyphen"})
# Subtrees with no text of the document's own: properties, deleted revisions, field codes, and the
# fallback copy of every drawing that an mc:AlternateContent holds twice.
_SKIP = frozenset({_W + "pPr", _W + "rPr", _W + "del", _W + "moveFrom", _W + "instrText", _W + "sdtPr",
                   _W + "sdtEndPr", _MC_FALLBACK})
_WRAPPERS = frozenset({_SDT, _SDT_CONTENT, _CUSTOM_XML})  # containers that may sit around rows, cells or blocks


def _package_bytes(file: SourceFile, ctx: Context, kind: str) -> bytes:
    """The file's bytes once they look like an intact, reasonably sized Office zip package."""
    data = file.read_bytes(ctx.max_file_bytes)
    if not data.strip(b"\x00 \t\r\n"):
        raise Skip("empty")
    if data.startswith(_OLE_MAGIC):
        raise Skip(f"password-protected or legacy binary Office file, not a {kind}")
    if not data.startswith(_ZIP_MAGIC):
        raise Skip(f"not a {kind} (not a zip package)")
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as zf:
            unpacked = sum(info.file_size for info in zf.infolist())
    except (zipfile.BadZipFile, OSError, ValueError) as e:
        raise Skip(f"corrupt {kind} ({e})") from None
    if unpacked > MAX_UNPACKED_BYTES:
        raise Skip(f"zip bomb: {kind} unpacks to {unpacked} bytes > {MAX_UNPACKED_BYTES}")
    return data


def _core_meta(package) -> dict:
    """Title, author and creation time from a package's core properties ({} if they are unreadable)."""
    meta = {}
    try:
        props = package.core_properties
        for key in ("title", "author"):
            value = getattr(props, key, None)
            if isinstance(value, str) and value.strip():
                meta[key] = value.strip()
        if props.created is not None:
            meta["created"] = props.created.isoformat()
    except Exception:  # a damaged docProps/core.xml should not cost the text
        return {}
    return meta


# ---- DOCX ----

def _children(el, tag: str) -> Iterator:
    """Children of ``el`` with ``tag``, looking through content-control and custom-XML wrappers."""
    for child in el:
        if child.tag == tag:
            yield child
        elif child.tag in _WRAPPERS:
            yield from _children(child, tag)


def _is_placeholder(sdt) -> bool:
    """True for a content control still showing its prompt ("Click here to enter text")."""
    return sdt.find(f"{_W}sdtPr/{_W}showingPlcHdr") is not None


def _list_styles(doc) -> frozenset[str]:
    """Ids of paragraph styles that number or bullet their paragraphs ("List Bullet" and kin)."""
    styles = doc.styles.element
    return frozenset(s.get(f"{_W}styleId") for s in styles.iterchildren(f"{_W}style")
                     if s.find(f"{_W}pPr/{_W}numPr") is not None)


def _is_list_item(p, list_styles: frozenset[str]) -> bool:
    num_id = p.find(f"{_W}pPr/{_W}numPr/{_W}numId")
    if num_id is not None:
        return num_id.get(f"{_W}val") != "0"  # numId 0 switches numbering off
    style = p.find(f"{_W}pPr/{_W}pStyle")
    return style is not None and style.get(f"{_W}val") in list_styles


def _paragraph_text(p, boxes: list, list_styles: frozenset[str]) -> str:
    """Text of one ``w:p``; text boxes anchored in it are appended to ``boxes`` to be read after it."""
    parts: list[str] = []

    def walk(el) -> None:
        for child in el:
            tag = child.tag
            if tag == _T:
                parts.append(child.text or "")
            elif tag in _TABS:
                parts.append("\t")
            elif tag in _LINE_BREAKS:
                parts.append("\n")
            elif tag in _HYPHENS:
                parts.append("-")
            elif tag == _TXBX:
                boxes.append(child)
            elif tag in _SKIP or (tag == _SDT and _is_placeholder(child)):
                continue
            else:
                walk(child)

    walk(p)
    text = "".join(parts)
    if text.strip() and _is_list_item(p, list_styles):
        text = "- " + text.lstrip()  # list items: keep the bullet a CV reader sees
    return text


def _blocks(container, out: list[str], list_styles: frozenset[str]) -> None:
    """Append the text blocks of a body, cell, header, footer or text box to ``out``, in document order."""
    for child in container:
        tag = child.tag
        if tag == _P:
            boxes: list = []
            text = _paragraph_text(child, boxes, list_styles)
            if text.strip():
                out.append(text)
            for box in boxes:
                _blocks(box, out, list_styles)
        elif tag == _TBL:
            _table(child, out, list_styles)
        elif tag == _SDT:
            if not _is_placeholder(child):
                for content in child.iterchildren(_SDT_CONTENT):
                    _blocks(content, out, list_styles)
        elif tag == _CUSTOM_XML:
            _blocks(child, out, list_styles)


def _is_merge_continuation(tc) -> bool:
    """True for a cell that continues a merge started above (or, in old files, to its left)."""
    for merge in ("vMerge", "hMerge"):
        el = tc.find(f"{_W}tcPr/{_W}{merge}")
        if el is not None and el.get(f"{_W}val", "continue") != "restart":
            return True
    return False


def _table(tbl, out: list[str], list_styles: frozenset[str]) -> None:
    for tr in _children(tbl, _TR):
        cells = []
        for tc in _children(tr, _TC):
            if _is_merge_continuation(tc):
                continue
            sub: list[str] = []
            _blocks(tc, sub, list_styles)  # nested tables recurse through here
            text = "\n".join(sub).strip()
            if text:
                cells.append(text)
        if cells and all("\n" not in c for c in cells):
            out.append(" | ".join(cells))
        else:
            out.extend(cells)


def _header_footer_texts(doc, list_styles: frozenset[str]) -> tuple[list[str], list[str]]:
    from docx.opc.constants import RELATIONSHIP_TYPE as RT  # python-docx (lxml) loads only when a DOCX is read

    seen: set[str] = set()
    found: dict[str, list[str]] = {RT.HEADER: [], RT.FOOTER: []}
    rels = sorted(doc.part.rels.values(), key=lambda r: r.rId)
    for rel in rels:
        if rel.reltype not in found or rel.is_external:
            continue
        element = getattr(rel.target_part, "element", None)
        if element is None:
            continue
        blocks: list[str] = []
        _blocks(element, blocks, list_styles)
        text = "\n".join(blocks).strip()
        if text and text not in seen:  # each section (and first/even page) may repeat the same header
            seen.add(text)
            found[rel.reltype].append(text)
    return found[RT.HEADER], found[RT.FOOTER]


def extract_docx(file: SourceFile, ctx: Context) -> Iterator[Document]:
    """One ``prose`` Document from a Word file: headers, then paragraphs, tables (nested too),
    content controls and text boxes in document order, then footers. Metadata: title, author, created."""
    data = _package_bytes(file, ctx, "DOCX")
    import docx  # python-docx (lxml) loads only when a DOCX is read

    try:
        doc = docx.Document(io.BytesIO(data))
        list_styles = _list_styles(doc)
        body: list[str] = []
        _blocks(doc.element.body, body, list_styles)
        headers, footers = _header_footer_texts(doc, list_styles)
        meta = _core_meta(doc)
    except Exception as e:  # python-docx and lxml raise many types on damaged packages
        raise Skip(f"corrupt DOCX ({type(e).__name__}: {e})") from None
    text = tidy_text("\n\n".join(s for s in ("\n".join(headers), "\n".join(body), "\n".join(footers)) if s))
    if not text:
        raise Skip("empty")
    meta["format"] = "docx"
    meta["paragraphs"] = len(body)
    yield Document(text=text, kind="prose", path=file.rel, metadata=meta)


# ---- PPTX ----

def _frame_text(text_frame) -> str:
    return "\n".join(p.text for p in text_frame.paragraphs)


def _shape_texts(shape, out: list[str]) -> None:
    """Append the text of a shape to ``out``, recursing into groups and reading tables cell by cell."""
    from pptx.shapes.group import GroupShape  # python-pptx (lxml) loads only when a PPTX is read

    if isinstance(shape, GroupShape):
        for sub in shape.shapes:
            _shape_texts(sub, out)
        return
    if shape.has_text_frame:
        text = _frame_text(shape.text_frame).strip()
        if text:
            out.append(text)
    elif getattr(shape, "has_table", False) and shape.has_table:
        for row in shape.table.rows:
            cells = [c.text.strip() for c in row.cells if not c.is_spanned]
            cells = [c for c in cells if c]
            if cells and all("\n" not in c and "\v" not in c for c in cells):
                out.append(" | ".join(cells))
            else:
                out.extend(cells)


def _slide_text(slide) -> tuple[str, str]:
    """``(text, title)`` of one slide: title first, other shapes in z-order, then speaker notes."""
    title_shape = slide.shapes.title
    title = _frame_text(title_shape.text_frame).strip() if title_shape is not None else ""
    parts = [title] if title else []
    for shape in slide.shapes:
        if title_shape is not None and shape.shape_id == title_shape.shape_id:
            continue
        _shape_texts(shape, parts)
    if slide.has_notes_slide:
        frame = slide.notes_slide.notes_text_frame
        notes = _frame_text(frame).strip() if frame is not None else ""
        if notes:
            parts.append(f"Notes: {notes}")
    return "\n".join(parts), title


def extract_pptx(file: SourceFile, ctx: Context) -> Iterator[Document]:
    """One ``slides`` Document from a PowerPoint file: every slide in order (blank line between
    slides) with grouped shapes, tables and speaker notes. Metadata: slide count, title, author."""
    data = _package_bytes(file, ctx, "PPTX")
    import pptx  # python-pptx (lxml) loads only when a PPTX is read

    try:
        prs = pptx.Presentation(io.BytesIO(data))
        slides = [_slide_text(slide) for slide in prs.slides]
        meta = _core_meta(prs)
    except Exception as e:  # python-pptx and lxml raise many types on damaged packages
        raise Skip(f"corrupt PPTX ({type(e).__name__}: {e})") from None
    text = tidy_text("\n\n".join(t for t, _ in slides if t.strip()))
    if not text:
        raise Skip("empty")
    if "title" not in meta and slides and slides[0][1]:
        meta["title"] = slides[0][1]
    meta["format"] = "pptx"
    meta["slides"] = len(slides)
    yield Document(text=text, kind="slides", path=file.rel, metadata=meta)
