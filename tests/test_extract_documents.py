"""Document extractors on real files made with the real libraries: PDF (fpdf2), DOCX (python-docx),
PPTX (python-pptx), HTML, Markdown/reST/text and notebooks, plus every kind of bad input."""

from __future__ import annotations

import io
import json
import random
import socket
import zipfile

import docx
import pptx
import pytest
from docx.oxml import parse_xml
from fpdf import FPDF
from fpdf.enums import EncryptionMethod
from PIL import Image
from pptx.util import Inches

from flaxgpt.ingest.extract import office, pdf
from flaxgpt.ingest.extract.base import Context, Document, Skip, SourceFile
from flaxgpt.ingest.extract.documents import DOCUMENT_EXTRACTORS

CTX = Context()
PNG = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x01\x00\x00\x00\x01\x08\x06\x00\x00\x00\x1f\x15\xc4\x89"
OLE = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\x00" * 504


def extract(name: str, data: bytes, ctx: Context = CTX) -> Document:
    """The single Document the registry's extractor for ``name`` makes from ``data``."""
    docs = list(DOCUMENT_EXTRACTORS[SourceFile.from_bytes(name, data).suffix](SourceFile.from_bytes(name, data), ctx))
    assert len(docs) == 1
    assert docs[0].path == name
    return docs[0]


def skip_reason(name: str, data: bytes) -> str:
    """The reason the registry's extractor gives for skipping ``data`` as ``name``."""
    with pytest.raises(Skip) as info:
        extract(name, data)
    return str(info.value)


# ---- PDF ----

def make_pdf(pages: list[str], *, title: str = "", encryption: dict | None = None, image_only: bool = False) -> bytes:
    doc = FPDF()
    if title:
        doc.set_title(title)
        doc.set_author("Ada Lovelace")
    doc.set_font("helvetica", size=11)
    for text in pages:
        doc.add_page()
        if image_only:
            doc.image(Image.new("RGB", (64, 64), "navy"), x=10, y=10, w=100)
        else:
            doc.multi_cell(0, 6, text)
    if encryption:
        doc.set_encryption(**encryption)
    return bytes(doc.output())


def test_pdf_pages_in_reading_order_with_metadata():
    pages = ["Ada Lovelace\nCurriculum Vitae\nExperience: Analytical Engines, 1843.",
             "Education: private tutoring in mathematics.\nPublications: Notes on the engine.",
             "References available on request."]
    doc = extract("cv.pdf", make_pdf(pages, title="Ada CV"))
    assert doc.kind == "prose"
    assert doc.metadata == {"format": "pdf", "pages": 3, "title": "Ada CV", "author": "Ada Lovelace"}
    markers = ["Curriculum Vitae", "Analytical Engines", "private tutoring", "Notes on the engine", "References"]
    positions = [doc.text.index(m) for m in markers]
    assert positions == sorted(positions)
    assert "1843.\n\nEducation" in doc.text  # pages are separated by a blank line


def test_pdf_with_user_password_is_skipped_as_encrypted():
    for method in (EncryptionMethod.RC4, EncryptionMethod.AES_128):
        data = make_pdf(["secret text"], encryption={"owner_password": "o", "user_password": "u",
                                                     "encryption_method": method})
        assert skip_reason("locked.pdf", data) == "encrypted PDF"


def test_pdf_encrypted_with_empty_user_password_opens():
    data = make_pdf(["Readable but restricted."], encryption={"owner_password": "owner-only",
                                                              "encryption_method": EncryptionMethod.AES_256})
    assert extract("restricted.pdf", data).text == "Readable but restricted."


def test_pdf_image_only_is_skipped():
    assert skip_reason("scan.pdf", make_pdf(["", ""], image_only=True)) == "no text layer (image-only PDF)"


def test_pdf_bad_inputs_are_skipped_with_reasons():
    good = make_pdf(["hello world"])
    assert skip_reason("a.pdf", b"") == "empty"
    assert skip_reason("a.pdf", PNG) == "not a PDF (no %PDF- header)"
    assert skip_reason("a.pdf", good[: len(good) // 2]).startswith("corrupt PDF")
    assert skip_reason("a.pdf", b"%PDF-1.4\n" + bytes(range(256)) * 8).startswith("corrupt PDF")
    assert skip_reason("a.pdf", good.replace(b"/Pages", b"/Pagez")).startswith("corrupt PDF")


def test_pdf_page_cap_keeps_the_first_pages(monkeypatch):
    monkeypatch.setattr(pdf, "MAX_PAGES", 2)
    doc = extract("long.pdf", make_pdf(["one", "two", "three"]))
    assert doc.text == "one\n\ntwo"
    assert doc.metadata["pages"] == 3 and "page limit" in doc.metadata["truncated"]
    monkeypatch.setattr(pdf, "TIME_BUDGET_S", 0.0)
    reason = skip_reason("slow.pdf", make_pdf(["one"]))
    assert reason == "stopped early with no text (time limit: read 0 of 1 pages in 0 s)"


# ---- DOCX ----

NS = ('xmlns:w="http://schemas.openxmlformats.org/wordprocessingml/2006/main" '
      'xmlns:mc="http://schemas.openxmlformats.org/markup-compatibility/2006" '
      'xmlns:wps="http://schemas.microsoft.com/office/word/2010/wordprocessingShape" '
      'xmlns:v="urn:schemas-microsoft-com:vml"')


def docx_bytes(document) -> bytes:
    buf = io.BytesIO()
    document.save(buf)
    return buf.getvalue()


def make_cv_docx() -> bytes:
    """A template-style CV: name in the header, almost everything in tables, a footer."""
    d = docx.Document()
    d.core_properties.author = "Ada Lovelace"
    d.core_properties.title = "Curriculum Vitae"
    section = d.sections[0]
    section.header.paragraphs[0].text = "Ada Lovelace | ada@example.org"
    section.footer.paragraphs[0].text = "References on request"
    d.add_paragraph("Profile: mathematician writing about engines.")
    t = d.add_table(rows=3, cols=2)
    t.cell(0, 0).text = "1842-1843"
    t.cell(0, 1).text = "Translator and annotator, Menabrea memoir"
    t.cell(1, 0).text = "Skills"
    skills = t.cell(1, 1)
    skills.text = "Mathematics"
    skills.add_paragraph("Poetical science")
    nested = skills.add_table(rows=1, cols=2)
    nested.cell(0, 0).text = "Nested left"
    nested.cell(0, 1).text = "Nested right"
    t.cell(2, 0).merge(t.cell(2, 1)).text = "Wide merged row"
    v = d.add_table(rows=2, cols=2)
    v.cell(0, 0).merge(v.cell(1, 0)).text = "Tall merged cell"
    v.cell(0, 1).text = "top right"
    # Word shows only the first cell of a vertical merge; text left in a continuation cell stays hidden.
    v.rows[1]._tr.tc_lst[0].append(parse_xml(f'<w:p {NS}><w:r><w:t>Hidden continuation</w:t></w:r></w:p>'))
    v.cell(1, 1).text = "bottom right"
    d.add_paragraph("Bernoulli numbers program", style="List Bullet")
    d.add_paragraph("Closing statement after the tables.")
    second = d.add_section()
    second.header.is_linked_to_previous = False
    second.header.paragraphs[0].text = "Ada Lovelace | ada@example.org"  # same header again: kept once
    d.add_paragraph("Second section body.")
    return docx_bytes(d)


def test_docx_cv_tables_headers_footers_in_order():
    doc = extract("cv.docx", make_cv_docx())
    assert doc.kind == "prose"
    assert doc.metadata["title"] == "Curriculum Vitae" and doc.metadata["author"] == "Ada Lovelace"
    lines = doc.text.split("\n")
    assert lines[0] == "Ada Lovelace | ada@example.org"
    assert lines[-1] == "References on request"
    assert doc.text.count("ada@example.org") == 1 and doc.text.count("Wide merged row") == 1
    assert doc.text.count("Tall merged cell") == 1 and "Hidden continuation" not in doc.text
    assert "1842-1843 | Translator and annotator, Menabrea memoir" in lines
    assert "Nested left | Nested right" in lines
    assert "- Bernoulli numbers program" in lines
    order = ["Profile:", "1842-1843", "Skills", "Mathematics", "Poetical science", "Nested left", "Wide merged row",
             "Tall merged cell", "bottom right", "Bernoulli", "Closing statement", "Second section body",
             "References on request"]
    positions = [doc.text.index(m) for m in order]
    assert positions == sorted(positions)


def test_docx_content_controls_and_text_boxes():
    d = docx.Document()
    first = d.add_paragraph("Before the controls.")
    control = parse_xml(f'<w:sdt {NS}><w:sdtPr><w:alias w:val="Name"/></w:sdtPr><w:sdtContent><w:p><w:r>'
                        '<w:t>Filled content control</w:t></w:r></w:p></w:sdtContent></w:sdt>')
    placeholder = parse_xml(f'<w:sdt {NS}><w:sdtPr><w:showingPlcHdr/></w:sdtPr><w:sdtContent><w:p><w:r>'
                            '<w:t>Click here to enter text.</w:t></w:r></w:p></w:sdtContent></w:sdt>')
    box = ('<w:txbxContent><w:p><w:r><w:t>Text box words</w:t></w:r></w:p></w:txbxContent>')
    anchor = parse_xml(f'<w:p {NS}><w:r><mc:AlternateContent><mc:Choice Requires="wps"><w:drawing><wps:wsp>'
                       f'<wps:txbx>{box}</wps:txbx></wps:wsp></w:drawing></mc:Choice><mc:Fallback><w:pict>'
                       f'<v:shape><v:textbox>{box}</v:textbox></v:shape></w:pict></mc:Fallback></mc:AlternateContent>'
                       '</w:r><w:r><w:t>Anchor paragraph</w:t></w:r></w:p>')
    first._p.addnext(control)
    control.addnext(placeholder)
    placeholder.addnext(anchor)
    d.add_paragraph("After the controls.")
    doc = extract("template.docx", docx_bytes(d))
    assert doc.text == ("Before the controls.\nFilled content control\nAnchor paragraph\nText box words\n"
                        "After the controls.")


def test_docx_bad_inputs_are_skipped_with_reasons(monkeypatch):
    assert skip_reason("a.docx", b"") == "empty"
    assert skip_reason("a.docx", PNG) == "not a DOCX (not a zip package)"
    assert skip_reason("a.docx", OLE).startswith("password-protected or legacy binary Office file")
    assert skip_reason("a.docx", make_cv_docx()[:3000]).startswith("corrupt DOCX")
    not_word = io.BytesIO()
    with zipfile.ZipFile(not_word, "w") as zf:
        zf.writestr("hello.txt", "just a zip")
    assert skip_reason("a.docx", not_word.getvalue()).startswith("corrupt DOCX")
    assert skip_reason("a.docx", docx_bytes(docx.Document())) == "empty"
    monkeypatch.setattr(office, "MAX_UNPACKED_BYTES", 10_000)
    assert skip_reason("a.docx", make_cv_docx()).startswith("zip bomb")


# ---- PPTX ----

def make_talk_pptx() -> bytes:
    prs = pptx.Presentation()
    first = prs.slides.add_slide(prs.slide_layouts[1])
    first.shapes.title.text = "Personal Models"
    first.placeholders[1].text = "Small data\nBig ideas"
    first.notes_slide.notes_text_frame.text = "Open with the story about the loom."
    second = prs.slides.add_slide(prs.slide_layouts[5])
    second.shapes.title.text = "Results"
    group = second.shapes.add_group_shape()
    group.shapes.add_textbox(Inches(1), Inches(1), Inches(2), Inches(1)).text_frame.text = "Grouped box"
    inner = group.shapes.add_group_shape()
    inner.shapes.add_textbox(Inches(1), Inches(2), Inches(2), Inches(1)).text_frame.text = "Nested group box"
    table = second.shapes.add_table(2, 3, Inches(1), Inches(3), Inches(6), Inches(2)).table
    table.cell(0, 0).merge(table.cell(0, 1))
    table.cell(0, 0).text = "Model"
    table.cell(0, 2).text = "Loss"
    table.cell(1, 0).text = "micro"
    table.cell(1, 1).text = "4 layers"
    table.cell(1, 2).text = "3.1"
    prs.slides.add_slide(prs.slide_layouts[6])  # a blank slide
    buf = io.BytesIO()
    prs.save(buf)
    return buf.getvalue()


def test_pptx_slides_groups_tables_and_notes():
    doc = extract("talk.pptx", make_talk_pptx())
    assert doc.kind == "slides"
    assert doc.metadata["slides"] == 3 and doc.metadata["title"] == "Personal Models"
    assert doc.text == ("Personal Models\nSmall data\nBig ideas\nNotes: Open with the story about the loom.\n\n"
                        "Results\nGrouped box\nNested group box\nModel | Loss\nmicro | 4 layers | 3.1")


def test_pptx_bad_inputs_are_skipped_with_reasons():
    assert skip_reason("a.pptx", PNG) == "not a PPTX (not a zip package)"
    assert skip_reason("a.pptx", make_cv_docx()).startswith("corrupt PPTX")  # a Word file renamed
    buf = io.BytesIO()
    pptx.Presentation().save(buf)
    assert skip_reason("a.pptx", buf.getvalue()) == "empty"


# ---- HTML ----

POST = ("I spent the weekend rewriting my tokenizer in numpy, and the result surprised me. The naive loop "
        "took forty seconds per megabyte, while the vectorised version finished in under one second. ")
PAGE = f"""<!doctype html><html><head><title>Vectorising a tokenizer | Ada's blog</title>
<meta name="author" content="Ada Lovelace"><meta property="article:published_time" content="2024-03-05"></head>
<body><header><nav><a href="/">Home</a> <a href="/about">About me</a> <a href="/archive">Archive</a></nav></header>
<aside class="sidebar"><h3>Popular posts</h3><ul><li>Sidebar teaser one</li><li>Sidebar teaser two</li></ul></aside>
<main><article><h1>Vectorising a tokenizer</h1><p>{POST * 2}</p><p>Second paragraph. {POST}</p>
<p>Lessons learned. {POST}</p></article>
<section id="comments" class="comments"><h2>3 Comments</h2><div class="comment"><p>Reader Bob says: great post,
thanks for sharing your tokenizer story with us all.</p></div></section></main>
<footer><p>Copyright 2024 Footer Corp. All rights reserved.</p></footer></body></html>"""


def test_html_main_text_without_boilerplate_and_offline(monkeypatch):
    def no_network(*args, **kwargs):
        raise AssertionError("the HTML extractor tried to open a network connection")

    monkeypatch.setattr(socket.socket, "connect", no_network)
    monkeypatch.setattr(socket, "create_connection", no_network)
    monkeypatch.setattr(socket, "getaddrinfo", no_network)
    doc = extract("blog/post.html", PAGE.encode())
    assert doc.kind == "prose"
    assert doc.text.startswith("Vectorising a tokenizer\n")
    assert "Second paragraph." in doc.text and "Lessons learned." in doc.text
    for boilerplate in ("About me", "Archive", "Sidebar teaser", "Popular posts", "Footer Corp", "Reader Bob"):
        assert boilerplate not in doc.text
    assert doc.metadata["author"] == "Ada Lovelace" and doc.metadata["date"] == "2024-03-05"


def test_html_bad_inputs_are_skipped_with_reasons():
    assert skip_reason("a.html", b"") == "empty"
    assert skip_reason("a.htm", b"  \n ") == "empty"
    assert skip_reason("a.html", PNG) == "binary content"
    assert skip_reason("a.html", b"<html><body><script>var x = 1;</script></body></html>") == (
        "no main text found in HTML")


# ---- Markdown, reST, plain text ----

def test_markdown_front_matter_goes_to_metadata():
    md = "---\ntitle: My first post\ndate: 2023-05-01\ntags: [jax, notes]\ndraft: false\n---\n# Hello\n\nBody text.\n"
    doc = extract("posts/first.md", md.encode())
    assert doc.text == "# Hello\n\nBody text."
    assert doc.metadata == {"title": "My first post", "date": "2023-05-01", "tags": ["jax", "notes"],
                            "format": "markdown"}
    json.dumps(doc.metadata)  # metadata must serialise into documents.jsonl
    aliases = "".join(f"a{i}: &a{i} [*a{i - 1}, *a{i - 1}]\n" for i in range(1, 60))  # 2**60 leaves if walked
    bomb = extract("bomb.md", f"---\na0: &a0 [x, x]\n{aliases}tags: *a59\ntitle: Safe\n---\nBody".encode())
    assert bomb.metadata == {"title": "Safe", "format": "markdown"} and bomb.text == "Body"
    toml = '+++\ntitle = "Hugo post"\n+++\nText of a Hugo post.'
    assert extract("hugo.markdown", toml.encode()).metadata["title"] == "Hugo post"


def test_text_files_kept_as_written():
    rst = "Title\n=====\n\nA *reST* paragraph.\n\n.. code-block:: python\n\n   print(1)\n"
    assert extract("doc.rst", rst.encode()).text == rst.strip()
    not_front_matter = "---\n\nA horizontal rule first, and no closing fence.\n"
    assert extract("notes.md", not_front_matter.encode()).text == not_front_matter.strip()
    windows = "Caf\xe9 notes\r\n\r\n\r\n\r\nsecond\tline   \r\n".encode("cp1252")
    assert extract("notes.txt", windows).text == "Café notes\n\nsecond\tline"
    assert extract("notes.text", "UTF-16 text ✓".encode("utf-16")).text == "UTF-16 text ✓"


def test_text_bad_inputs_are_skipped_with_reasons():
    assert skip_reason("a.txt", b"") == "empty"
    assert skip_reason("a.md", b"---\ntitle: only front matter\n---\n\n") == "empty"
    assert skip_reason("a.txt", PNG) == "binary content"
    assert skip_reason("a.txt", b"text\x00with\x00nul bytes") == "binary content"
    assert skip_reason("a.txt", b"\xff\xfe\x00\xd8") == "not valid UTF-16 text despite its byte-order mark"
    rng = random.Random(0)
    noise = bytes(rng.randrange(1, 256) for _ in range(2000))  # no NUL, fits no encoding
    assert skip_reason("a.txt", noise) == "not text in any encoding charset-normalizer knows"
    control_noise = bytes(b for b in range(1, 32) if b not in (9, 10, 11, 12, 13)) * 20 + b"some text"
    assert skip_reason("a.rst", control_noise) == "binary content (control characters in text)"


def test_oversized_file_is_skipped():
    with pytest.raises(Skip, match="oversized"):
        list(DOCUMENT_EXTRACTORS[".txt"](SourceFile.from_bytes("big.txt", b"x" * 2000), Context(max_file_bytes=1000)))


# ---- Notebooks ----

def make_notebook(cells: list[dict], language: str = "python") -> bytes:
    return json.dumps({"nbformat": 4, "nbformat_minor": 5, "cells": cells,
                       "metadata": {"kernelspec": {"name": "python3", "language": language}}}).encode()


def test_notebook_cells_in_order_without_outputs():
    cells = [
        {"cell_type": "markdown", "metadata": {}, "source": ["# Loss curves\n", "\n", "Why the loss spikes."]},
        {"cell_type": "code", "metadata": {}, "execution_count": 1, "source": "import numpy as np\n\n\nx = np.ones(3)",
         "outputs": [{"output_type": "stream", "name": "stdout", "text": ["OUTPUT SHOULD NOT APPEAR\n"]}]},
        {"cell_type": "raw", "metadata": {}, "source": "raw cell dropped"},
        {"cell_type": "code", "metadata": {}, "source": [], "outputs": []},
        {"cell_type": "markdown", "metadata": {}, "source": "Done."},
    ]
    doc = extract("nb/analysis.ipynb", make_notebook(cells))
    assert doc.kind == "code"
    assert doc.text == ("# Loss curves\n\nWhy the loss spikes.\n\n"
                        "```python\nimport numpy as np\n\n\nx = np.ones(3)\n```\n\nDone.")
    assert doc.metadata == {"format": "ipynb", "language": "python", "code_cells": 1, "markdown_cells": 2}


def test_notebook_format_3():
    nb = {"nbformat": 3, "metadata": {}, "worksheets": [{"cells": [
        {"cell_type": "heading", "level": 2, "source": ["Old notebook"]},
        {"cell_type": "code", "language": "python", "input": ["print('hi')"], "outputs": []}]}]}
    assert extract("old.ipynb", json.dumps(nb).encode()).text == "## Old notebook\n\n```python\nprint('hi')\n```"


def test_notebook_bad_inputs_are_skipped_with_reasons():
    assert skip_reason("a.ipynb", b"") == "empty"
    assert skip_reason("a.ipynb", PNG).startswith("not a Jupyter notebook (invalid JSON")
    assert skip_reason("a.ipynb", b'{"cells": [').startswith("not a Jupyter notebook (invalid JSON")
    assert skip_reason("a.ipynb", b"[1, 2]") == "not a Jupyter notebook (JSON top level is not an object)"
    assert skip_reason("a.ipynb", b'{"metadata": {}}') == "not a Jupyter notebook (no cells)"
    empty_cells = make_notebook([{"cell_type": "code", "source": "  \n"}, {"cell_type": "markdown", "source": ""}])
    assert skip_reason("a.ipynb", empty_cells) == "empty notebook (no code or markdown cells)"


# ---- Registry ----

def test_registry_covers_every_document_suffix(tmp_path):
    assert set(DOCUMENT_EXTRACTORS) == {".pdf", ".docx", ".pptx", ".html", ".htm", ".md", ".markdown", ".rst",
                                        ".txt", ".text", ".ipynb"}
    path = tmp_path / "CV.PDF"  # upper-case suffix on disk: SourceFile.suffix lower-cases it
    path.write_bytes(make_pdf(["Read from disk."]))
    file = SourceFile.from_path(path)
    (doc,) = DOCUMENT_EXTRACTORS[file.suffix](file, CTX)
    assert doc.text == "Read from disk." and doc.path == "CV.PDF"
