"""The NordML 2023 talk as a PPTX (python-pptx) from ``src/slides/nordml-2023-talk.md``.

Slide source syntax: slides are separated by a '---' line. '# title' starts a slide; on the first
slide the plain lines after it are the subtitle. '- item' is a bullet, '| a | b |' a table row (the
first row is the header), '[funnel] a | b | c' a grouped diagram of boxes joined by arrows,
'[photo] caption' a framed picture placeholder, and everything after 'Notes:' the speaker notes.
"""

from __future__ import annotations

import io
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from .common import OWNER_NAME, SRC, restamp_zip, write_bytes

CREATED = datetime.fromisoformat("2023-10-10T19:40:00+00:00")


@dataclass
class Slide:
    """One parsed slide."""

    title: str
    lines: list[str] = field(default_factory=list)  # subtitle lines (title slide) or bullets
    table: list[list[str]] = field(default_factory=list)
    funnel: list[str] = field(default_factory=list)
    photo: str = ""
    notes: list[str] = field(default_factory=list)


def read_slides(path: Path) -> list[Slide]:
    """Parse the slide source (see the module docstring)."""
    slides = []
    for chunk in path.read_text(encoding="utf-8").split("\n---\n"):
        body, _, notes = chunk.partition("\nNotes:\n")
        lines = [line.strip() for line in body.strip().splitlines()]
        slide = Slide(title=lines[0].lstrip("# "), notes=[n.strip() for n in notes.strip().splitlines()])
        for line in lines[1:]:
            if line.startswith("|"):
                slide.table.append([c.strip() for c in line.strip("|").split("|")])
            elif line.startswith("[funnel]"):
                slide.funnel = [c.strip() for c in line.removeprefix("[funnel]").split("|")]
            elif line.startswith("[photo]"):
                slide.photo = line.removeprefix("[photo]").strip()
            elif line:
                slide.lines.append(line.removeprefix("- "))
        slides.append(slide)
    return slides


def pptx_bytes(slides: list[Slide]) -> bytes:
    """A 16:9 deck: a title slide, bullet slides, a table, a grouped diagram, speaker notes on every slide."""
    from pptx import Presentation
    from pptx.dml.color import RGBColor
    from pptx.enum.shapes import MSO_SHAPE
    from pptx.util import Inches, Pt

    prs = Presentation()
    prs.slide_width, prs.slide_height = Inches(13.333), Inches(7.5)
    props = prs.core_properties
    props.author = props.last_modified_by = OWNER_NAME
    props.title = slides[0].title
    props.subject = "NordML 2023, Bergen"
    props.created = props.modified = CREATED.replace(tzinfo=None)
    props.revision = 12
    title_layout, bullets_layout, title_only = prs.slide_layouts[0], prs.slide_layouts[1], prs.slide_layouts[5]
    width = prs.slide_width - Inches(1.0)

    for i, spec in enumerate(slides):
        if i == 0:
            slide = prs.slides.add_slide(title_layout)
            slide.placeholders[1].text = "\n".join(spec.lines)
        elif spec.table or spec.funnel or spec.photo:
            slide = prs.slides.add_slide(title_only)
        else:
            slide = prs.slides.add_slide(bullets_layout)
            slide.placeholders[1].text_frame.text = "\n".join(spec.lines)
        slide.shapes.title.text = spec.title
        slide.shapes.title.width = width
        top = Inches(1.6)
        if spec.table:
            rows, cols = len(spec.table), len(spec.table[0])
            frame = slide.shapes.add_table(rows, cols, Inches(2.2), top, Inches(8.9), Inches(0.42) * rows)
            for r, row in enumerate(spec.table):
                for c, value in enumerate(row):
                    cell = frame.table.cell(r, c)
                    cell.text = value
                    cell.text_frame.paragraphs[0].runs[0].font.size = Pt(16)
        if spec.funnel:
            top = _funnel(slide, spec.funnel, top, prs.slide_width)
        if (spec.funnel or spec.photo) and spec.lines and i > 0:
            box_width = Inches(7.2) if spec.photo else width - Inches(0.6)  # leave room for the photo
            box = slide.shapes.add_textbox(Inches(0.8), top + Inches(0.3), box_width, Inches(3.0))
            box.text_frame.word_wrap = True
            box.text_frame.text = "\n".join(f"• {line}" for line in spec.lines)
            for para in box.text_frame.paragraphs:
                para.runs[0].font.size = Pt(20)
            top += Inches(3.1)
        if spec.photo:
            frame = slide.shapes.add_shape(MSO_SHAPE.RECTANGLE, Inches(8.3), Inches(4.6), Inches(4.2), Inches(2.4))
            frame.fill.solid()
            frame.fill.fore_color.rgb = RGBColor(0x8A, 0x8F, 0x96)
            frame.text_frame.word_wrap = True
            frame.text_frame.text = spec.photo
        slide.notes_slide.notes_text_frame.text = "\n".join(spec.notes)

    buf = io.BytesIO()
    prs.save(buf)
    return restamp_zip(buf.getvalue(), CREATED)


def _funnel(slide, labels: list[str], top, slide_width):
    """Boxes joined by arrows, put into one group shape (extractors must recurse into groups)."""
    from pptx.dml.color import RGBColor
    from pptx.enum.shapes import MSO_SHAPE
    from pptx.util import Inches, Pt

    group = slide.shapes.add_group_shape()
    box_w, arrow_w, height = Inches(3.3), Inches(0.9), Inches(1.3)
    left = (slide_width - len(labels) * box_w - (len(labels) - 1) * arrow_w) // 2
    for n, label in enumerate(labels):
        box = group.shapes.add_shape(MSO_SHAPE.ROUNDED_RECTANGLE, left, top, box_w, height)
        box.fill.solid()
        box.fill.fore_color.rgb = RGBColor(0x14, 0x3C, 0x6E)
        box.text_frame.word_wrap = True
        box.text_frame.text = label
        box.text_frame.paragraphs[0].runs[0].font.size = Pt(20)
        left += box_w
        if n < len(labels) - 1:
            group.shapes.add_shape(MSO_SHAPE.RIGHT_ARROW, left + Inches(0.15), top + Inches(0.4),
                                   arrow_w - Inches(0.3), Inches(0.5))
            left += arrow_w
    return top + height


def write_slides(out: Path) -> list[Path]:
    """Write ``slides/nordml-2023-talk.pptx`` under ``out``."""
    slides = read_slides(SRC / "slides" / "nordml-2023-talk.md")
    return [write_bytes(out / "slides" / "nordml-2023-talk.pptx", pptx_bytes(slides))]
