"""The CV as a 2-page PDF (fpdf2) and as a template-style DOCX (python-docx), both from ``src/cv.md``."""

from __future__ import annotations

import io
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from .common import OWNER_NAME, SRC, Block, inline_runs, markdown_blocks, plain, restamp_zip, write_bytes

CREATED = datetime.fromisoformat("2024-03-02T10:15:00+00:00")


@dataclass(frozen=True)
class CV:
    """The parsed CV: the name, the contact lines under it, and ``(section title, blocks)`` pairs."""

    name: str
    contact: list[str]
    sections: list[tuple[str, list[Block]]]


def read_cv(path: Path = SRC / "cv.md") -> CV:
    """Parse ``cv.md``: '# name', contact lines, then '## section' blocks."""
    head, _, body = path.read_text(encoding="utf-8").partition("\n## ")
    lines = [line.strip() for line in head.splitlines() if line.strip()]
    sections: list[tuple[str, list[Block]]] = []
    for block in markdown_blocks("## " + body):
        if block.kind == "h2":
            sections.append((block.text, []))
        else:
            sections[-1][1].append(block)
    return CV(name=lines[0].lstrip("# "), contact=lines[1:], sections=sections)


# Helvetica in a PDF only covers Latin-1; the typographic dashes become plain ones, as many real CVs have.
_LATIN1 = str.maketrans({"–": "-", "—": "-", "’": "'", "“": '"', "”": '"', "€": "EUR "})


def _pdf_markdown(text: str) -> str:
    """Inline Markdown -> fpdf2's markdown (**bold**, __italic__)."""
    return "".join(f"**{t}**" if s == "b" else f"__{t}__" if s == "i" else t for s, t in inline_runs(text))


def pdf_bytes(cv: CV) -> bytes:
    """The CV as an uncompressed A4 PDF of exactly two pages, with fixed creation date and file id."""
    from fpdf import FPDF

    class _CVPdf(FPDF):
        def footer(self) -> None:
            self.set_y(-12)
            self.set_font("helvetica", size=8)
            self.set_text_color(120)
            self.cell(0, 5, f"{cv.name} - Curriculum vitae - page {self.page_no()}/{{nb}}", align="C")

    pdf = _CVPdf(format="A4")
    pdf.set_compression(False)  # page streams stay independent of the zlib build, so the bytes are stable
    pdf.set_creation_date(CREATED)
    pdf.set_title(f"{cv.name} - CV")
    pdf.set_author(cv.name)
    pdf.set_creator("make_formats.py (flaxgpt persona)")
    pdf.set_lang("en")
    pdf.set_margins(18, 15, 18)
    pdf.set_auto_page_break(True, margin=16)
    pdf.add_page()
    pdf.set_font("helvetica", "B", 20)
    pdf.cell(0, 9, cv.name, new_x="LMARGIN", new_y="NEXT")
    pdf.set_font("helvetica", size=9)
    pdf.set_text_color(80)
    for line in cv.contact:
        pdf.cell(0, 4.6, line.translate(_LATIN1), new_x="LMARGIN", new_y="NEXT")
    size, lh = 9.4, 4.4
    for title, blocks in cv.sections:
        pdf.ln(2.5)
        pdf.set_text_color(20, 60, 110)
        pdf.set_font("helvetica", "B", 11.5)
        pdf.cell(0, 6, title.upper(), new_x="LMARGIN", new_y="NEXT")
        pdf.set_draw_color(20, 60, 110)
        pdf.line(pdf.l_margin, pdf.get_y(), pdf.w - pdf.r_margin, pdf.get_y())
        pdf.ln(1.2)
        pdf.set_text_color(0)
        previous = ""
        for block in blocks:
            text = block.text.translate(_LATIN1)
            if block.kind == "h3":
                pdf.ln(0.8)
                pdf.set_font("helvetica", "B", size + 0.6)
                pdf.multi_cell(0, lh + 0.4, plain(text), new_x="LMARGIN", new_y="NEXT")
            elif block.kind == "p" and previous == "h3":  # the date line under a job title
                pdf.set_font("helvetica", "I", size - 0.6)
                pdf.set_text_color(90)
                pdf.multi_cell(0, lh, text, new_x="LMARGIN", new_y="NEXT")
                pdf.set_text_color(0)
            elif block.kind == "li":
                pdf.set_font("helvetica", size=size)
                pdf.set_x(pdf.l_margin + 2)
                pdf.cell(4, lh, "-")
                pdf.multi_cell(0, lh, _pdf_markdown(text), markdown=True, new_x="LMARGIN", new_y="NEXT")
            else:
                pdf.set_font("helvetica", size=size)
                pdf.multi_cell(0, lh, _pdf_markdown(text), markdown=True, new_x="LMARGIN", new_y="NEXT")
                pdf.ln(1)
            previous = block.kind
    if pdf.pages_count != 2:
        raise RuntimeError(f"the CV PDF should be 2 pages, got {pdf.pages_count}: adjust the font size")
    return bytes(pdf.output())


def docx_bytes(cv: CV) -> bytes:
    """The CV as a DOCX laid out like a CV template: name and contact in the page header, a footer, and
    every section in a borderless two-column table (section title left, content right)."""
    from docx import Document
    from docx.enum.text import WD_ALIGN_PARAGRAPH
    from docx.shared import Cm, Pt, RGBColor

    doc = Document()
    props = doc.core_properties
    props.author = props.last_modified_by = cv.name
    props.title = f"{cv.name} - Curriculum vitae"
    props.created = props.modified = CREATED.replace(tzinfo=None)
    props.revision = 3
    section = doc.sections[0]
    section.page_width, section.page_height = Cm(21.0), Cm(29.7)
    section.left_margin = section.right_margin = Cm(1.8)
    section.top_margin, section.header_distance = Cm(3.4), Cm(1.0)

    head = section.header.paragraphs[0]
    run = head.add_run(cv.name)
    run.bold, run.font.size, run.font.color.rgb = True, Pt(20), RGBColor(0x14, 0x3C, 0x6E)
    for line in cv.contact:
        run = section.header.add_paragraph().add_run(line)
        run.font.size = Pt(9)
    foot = section.footer.paragraphs[0]
    foot.alignment = WD_ALIGN_PARAGRAPH.CENTER
    run = foot.add_run(f"{cv.name} · Curriculum vitae · References available on request")
    run.font.size, run.font.color.rgb = Pt(8), RGBColor(0x78, 0x78, 0x78)

    table = doc.add_table(rows=0, cols=2)
    table.autofit = False
    widths = (Cm(3.8), Cm(13.6))
    for title, blocks in cv.sections:
        left, right = table.add_row().cells
        left.width, right.width = widths
        run = left.paragraphs[0].add_run(title.upper())
        run.bold, run.font.size, run.font.color.rgb = True, Pt(10), RGBColor(0x14, 0x3C, 0x6E)
        previous = ""
        for i, block in enumerate(blocks):
            style = "List Bullet" if block.kind == "li" else None
            para = right.paragraphs[0] if i == 0 else right.add_paragraph(style=style)
            if i == 0 and style:
                para.style = doc.styles[style]
            date_line = block.kind == "p" and previous == "h3"
            for kind, text in inline_runs(block.text):
                run = para.add_run(text)
                run.bold = kind == "b" or block.kind == "h3"
                run.italic = kind == "i" or date_line
                run.font.size = Pt(9.5)
            previous = block.kind
    buf = io.BytesIO()
    doc.save(buf)
    return restamp_zip(buf.getvalue(), CREATED)


def write_cv(out: Path) -> list[Path]:
    """Write ``cv/ines-halvorsen-cv.pdf`` and ``cv/ines-halvorsen-cv.docx`` under ``out``."""
    cv = read_cv()
    stem = OWNER_NAME.lower().replace(" ", "-") + "-cv"
    return [write_bytes(out / "cv" / f"{stem}.pdf", pdf_bytes(cv)),
            write_bytes(out / "cv" / f"{stem}.docx", docx_bytes(cv))]
