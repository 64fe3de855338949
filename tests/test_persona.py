"""The example persona: its built formats are deterministic, committed as built, well-formed for their
readers, and carry every planted canary and every evaluation fact."""

from __future__ import annotations

import csv
import email
import email.policy
import html
import importlib.util
import io
import json
import mailbox
import re
import shutil
import subprocess
import zipfile
from pathlib import Path

import pytest

PERSONA = Path(__file__).resolve().parent.parent / "examples" / "persona"
ZIPPED = {".zip", ".docx", ".pptx"}
ABOUT_THE_CORPUS = {"README.md", "canaries.txt", "facts.jsonl", "sources.py", "make_formats.py"}  # not material
needs_git = pytest.mark.skipif(shutil.which("git") is None, reason="git is not installed")


def load(name: str):
    """Import ``examples/persona/<name>.py`` by path."""
    spec = importlib.util.spec_from_file_location(f"persona_{name}", PERSONA / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def fresh(tmp_path_factory) -> Path:
    """A fresh build of every format into a temporary folder."""
    pytest.importorskip("fpdf", reason="fpdf2 (a dev dependency) builds the PDF")
    if shutil.which("git") is None:
        pytest.skip("git is not installed")
    out = tmp_path_factory.mktemp("built")
    load("make_formats").build(out)
    return out


def built_files(root: Path) -> list[str]:
    return sorted(p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file())


def zip_members(data: bytes) -> list[tuple[str, tuple, bytes]]:
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        return [(i.filename, i.date_time, zf.read(i)) for i in zf.infolist()]


def git(*args: str, cwd: Path | None = None) -> str:
    return subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True, text=True).stdout


def clone(bundle: Path, into: Path) -> Path:
    git("clone", "-q", str(bundle), str(into))
    return into


def test_build_is_deterministic(fresh, tmp_path):
    again = tmp_path / "again"
    load("make_formats").build(again)
    assert built_files(again) == built_files(fresh)
    for rel in built_files(fresh):
        assert (again / rel).read_bytes() == (fresh / rel).read_bytes(), f"{rel} differs between two builds"


def test_committed_files_match_a_fresh_build(fresh, tmp_path):
    for rel in built_files(fresh):
        committed, new = (PERSONA / rel).read_bytes(), (fresh / rel).read_bytes()
        if Path(rel).suffix in ZIPPED:  # compare contents: deflate output may differ between zlib builds
            assert zip_members(committed) == zip_members(new), f"{rel}: rerun make_formats.py"
        elif rel.endswith(".bundle"):  # commit ids pin the whole history, whatever git packs it
            heads = [git("bundle", "list-heads", str(p)) for p in (PERSONA / rel, fresh / rel)]
            assert heads[0] == heads[1], f"{rel}: rerun make_formats.py"
        else:
            assert committed == new, f"{rel}: rerun make_formats.py"


# ---- reading every format with its own library --------------------------------------------------------------

def pdf_text(path: Path) -> str:
    from pypdf import PdfReader

    return "\n".join(page.extract_text() for page in PdfReader(path).pages)


def docx_text(path: Path) -> str:
    import docx

    doc = docx.Document(str(path))
    section = doc.sections[0]
    parts = [p.text for p in section.header.paragraphs + section.footer.paragraphs]
    for block in doc.iter_inner_content():
        cells = [c for row in block.rows for c in row.cells] if hasattr(block, "rows") else []
        parts += [c.text for c in cells] if cells else [block.text]
    return "\n".join(parts)


def pptx_text(path: Path) -> str:
    import pptx

    def shapes(group):
        for shape in group:
            if hasattr(shape, "shapes"):
                yield from shapes(shape.shapes)
            elif getattr(shape, "has_table", False):
                yield from (cell.text for cell in shape.table.iter_cells())
            elif shape.has_text_frame:
                yield shape.text_frame.text

    deck = pptx.Presentation(str(path))
    return "\n".join(t for s in deck.slides for t in [*shapes(s.shapes), s.notes_slide.notes_text_frame.text])


def mbox_messages(path: Path) -> list[email.message.EmailMessage]:
    return list(mailbox.mbox(path, factory=lambda f: email.message_from_binary_file(f, policy=email.policy.default),
                             create=False))


def mbox_text(path: Path) -> str:
    return "\n".join(part.get_content() for msg in mbox_messages(path) for part in msg.walk()
                     if part.get_content_type() == "text/plain")


def bundle_text(path: Path, tmp: Path) -> str:
    repo = clone(path, tmp / "clone")
    files = git("ls-files", cwd=repo).split()
    return "\n".join([git("log", "--format=%B", cwd=repo)] + [(repo / f).read_text("utf-8") for f in files])


def file_texts(root: Path, tmp: Path) -> dict[str, str]:
    """Every file of persona material (not src/, not the files about the corpus) as text, read the way an
    extractor would, keyed by its path (archive members as 'archive.zip!/member')."""
    texts = {}
    for path in sorted(root.rglob("*")):
        rel = path.relative_to(root).as_posix()
        if (not path.is_file() or rel in ABOUT_THE_CORPUS or rel.startswith(("src/", "persona_writers/"))
                or "__pycache__" in rel):
            continue
        suffix = path.suffix
        if suffix == ".zip":
            for name, _, data in zip_members(path.read_bytes()):
                texts[f"{rel}!/{name}"] = data.decode("utf-8-sig")
        elif suffix in {".pdf", ".docx", ".pptx", ".mbox"}:
            texts[rel] = {".pdf": pdf_text, ".docx": docx_text, ".pptx": pptx_text, ".mbox": mbox_text}[suffix](path)
        elif suffix == ".bundle":
            texts[rel] = bundle_text(path, tmp)
        else:
            texts[rel] = html.unescape(path.read_text("utf-8"))
    return {rel: re.sub(r"\s+", " ", text) for rel, text in texts.items()}  # PDFs wrap lines anywhere


@pytest.fixture(scope="module")
def texts(tmp_path_factory) -> dict[str, str]:
    pytest.importorskip("pypdf", reason="pypdf reads the CV PDF")
    if shutil.which("git") is None:
        pytest.skip("git is not installed")
    return file_texts(PERSONA, tmp_path_factory.mktemp("texts"))


def canaries() -> list[str]:
    lines = (PERSONA / "canaries.txt").read_text("utf-8").splitlines()
    return [line for line in lines if line.strip() and not line.startswith("#")]


def test_every_canary_is_planted_where_the_readers_see_it(texts):
    found = {c: [rel for rel, text in texts.items() if c in text] for c in canaries()}
    assert len(found) >= 20
    assert not [c for c, where in found.items() if not where], "canaries missing from the persona"
    formats = {Path(rel.split("!/")[0]).suffix for where in found.values() for rel in where}
    assert formats >= {".txt", ".pdf", ".docx", ".pptx", ".mbox", ".zip", ".bundle"}
    # these two must only be reachable by ingesting Connections.csv, which no extractor may do
    for address in ("tomasz.wierzba.private@mailbox.example", "h.vos.thuis@mailbox.example"):
        assert found[address] == ["linkedin/linkedin-export.zip!/Connections.csv"]
    assert not [c for c in found if c.lower() in {"ines halvorsen", "ines@halvorsen.example"}]


def ingested_text(texts: dict[str, str]) -> str:
    """The text of every file under the ingest sources of sources.py (Connections.csv excluded)."""
    config = load("sources").get_config()
    roots = [src.path for src in config.sources.values()]
    return "\n".join(t for rel, t in texts.items()
                     if any(rel == r or rel.startswith(r + "/") or rel.startswith(r + "!/") for r in roots)
                     and not rel.endswith("Connections.csv"))


def test_every_fact_is_stated_in_the_ingested_sources(texts):
    corpus = ingested_text(texts).lower()
    facts = [json.loads(line) for line in (PERSONA / "facts.jsonl").read_text("utf-8").splitlines()]
    assert len(facts) == 60
    missing = [f["question"] for f in facts if not any(a.lower() in corpus for a in f["answers"])]
    assert not missing


def test_sources_config_points_at_the_built_formats():
    config = load("sources").get_config()
    assert config.owner.names[0] == "Ines Halvorsen" and "U01INES" in config.owner.handles
    kinds = {name: src.kind for name, src in config.sources.items()}
    assert set(kinds.values()) == {"documents", "git", "mbox", "slack", "discord", "linkedin"}
    for name, src in config.sources.items():
        assert (PERSONA / src.path).exists(), name
        assert not src.path.startswith("src"), f"{name}: src/ is build input, never a source"
        assert src.get("doc_kind") in (None, "prose", "code", "chat", "email", "cv", "slides")
    assert config.sources.code.commit_messages is True


# ---- each format has the structure its extractor must handle --------------------------------------------------

def test_cv_pdf_and_docx():
    pypdf = pytest.importorskip("pypdf")
    import docx

    reader = pypdf.PdfReader(PERSONA / "cv/ines-halvorsen-cv.pdf")
    assert len(reader.pages) == 2 and reader.metadata.creation_date.year == 2024
    doc = docx.Document(str(PERSONA / "cv/ines-halvorsen-cv.docx"))
    header = "\n".join(p.text for p in doc.sections[0].header.paragraphs)
    assert "Ines Halvorsen" in header and "+31 6 2190 4471" in header
    assert "References available on request" in doc.sections[0].footer.paragraphs[0].text
    table = doc.tables[0]
    assert len(table.columns) == 2 and len(table.rows) >= 8
    in_table = sum(len(c.text) for row in table.rows for c in row.cells)
    assert in_table > 0.9 * (in_table + sum(len(p.text) for p in doc.paragraphs))  # a template CV: all in a table
    assert "Glimmer-350M" in table.cell(1, 1).text and table.cell(1, 0).text == "EXPERIENCE"


def test_slides_have_a_table_a_group_and_notes():
    import pptx
    from pptx.enum.shapes import MSO_SHAPE_TYPE

    deck = pptx.Presentation(str(PERSONA / "slides/nordml-2023-talk.pptx"))
    slides = list(deck.slides)
    shapes = [s for slide in slides for s in slide.shapes]
    assert len(slides) == 8
    assert any(getattr(s, "has_table", False) for s in shapes)
    groups = [s for s in shapes if s.shape_type == MSO_SHAPE_TYPE.GROUP]
    assert groups and "180B used for training" in [g.text_frame.text for g in groups[0].shapes if g.text_frame.text]
    assert all(slide.notes_slide.notes_text_frame.text.strip() for slide in slides)


def test_blog_html_wraps_new_posts_in_site_chrome():
    pages = sorted((PERSONA / "blog-html").glob("*.html"))
    md_titles = {p.read_text("utf-8").splitlines()[0].lstrip("# ") for p in (PERSONA / "blog").glob("*.md")}
    assert 2 <= len(pages) <= 3
    for page in pages:
        text = page.read_text("utf-8")
        for tag in ("<nav", "<aside", "<footer", "<article", "cookie-notice"):
            assert tag in text, (page.name, tag)
        title = html.unescape(re.search(r"<h1[^>]*>(.*?)</h1>", text)[1])
        assert title not in md_titles and page.stem not in {p.stem for p in (PERSONA / "blog").glob("*.md")}


@needs_git
def test_git_bundle_history_and_tree(tmp_path):
    repo = clone(PERSONA / "code/tidewater.bundle", tmp_path / "tidewater")
    authors = git("log", "--format=%ae", cwd=repo).split()
    assert 6 <= authors.count("ines@halvorsen.example") <= 10
    assert 1 <= len(authors) - authors.count("ines@halvorsen.example") <= 2
    files = set(git("ls-files", cwd=repo).split())
    assert {".gitignore", "README.md", "docs/package-lock.json", "third_party/murmur3/murmur3.py"} <= files
    assert "token = \"ghp_" in (repo / "tools/release.toml").read_text()
    assert not git("status", "--porcelain", cwd=repo)


def test_mbox_looks_like_gmail_takeout():
    messages = mbox_messages(PERSONA / "mail/ines.mbox")
    assert 12 <= len(messages) <= 20
    assert all(m["X-Gmail-Labels"] and m["X-GM-THRID"] and m["Message-ID"] for m in messages)
    sent = [m for m in messages if "ines@halvorsen.example" in m["From"]]
    assert len(sent) > len(messages) / 2 and len(sent) < len(messages)
    assert sum(m.get_content_type() == "multipart/alternative" for m in messages) >= 5
    bodies = [m.get_body(("plain",)).get_content() for m in messages]
    assert sum("\n> " in b and " wrote:\n" in b for b in bodies) >= 5  # quoted replies
    assert sum("Lanternfish AI B.V., Rotterdam" in b for b in bodies) >= 3  # the repeated disclaimer
    assert sum("\n--\n" in b for b in bodies) >= 8  # signatures
    threads = {m["X-GM-THRID"] for m in messages}
    assert len(threads) < len(messages)


def test_slack_export_layout():
    with zipfile.ZipFile(PERSONA / "chat/slack-export.zip") as zf:
        names = zf.namelist()
        channels = json.loads(zf.read("channels.json"))
        users = {u["id"]: u for u in json.loads(zf.read("users.json"))}
        days = [n for n in names if re.fullmatch(r"[a-z-]+/\d{4}-\d\d-\d\d\.json", n)]
        messages = [m for n in days for m in json.loads(zf.read(n))]
    assert {c["name"] for c in channels} == {n.split("/")[0] for n in names if "/" in n} and 2 <= len(channels) <= 3
    assert 40 <= len(messages) <= 80
    assert "U01INES" in users and 4 <= len(users) - 1 <= 6
    assert {m.get("subtype") for m in messages} >= {None, "channel_join", "bot_message"}
    assert any("reply_count" in m for m in messages) and any(m.get("parent_user_id") for m in messages)
    mentioned = set(re.findall(r"<@(U\w+)>", " ".join(m["text"] for m in messages)))
    assert mentioned and mentioned <= set(users)
    assert all(m["user"] in users for m in messages if "user" in m)


def test_discord_export_layout():
    export = json.loads((PERSONA / "chat/discord-export.json").read_text("utf-8"))
    assert {"guild", "channel", "messages", "messageCount", "exportedAt"} <= set(export)
    messages = export["messages"]
    assert export["messageCount"] == len(messages) >= 10
    assert any(m["author"]["isBot"] for m in messages) and any("reference" in m for m in messages)
    ids = {m["id"] for m in messages}
    assert all(m["reference"]["messageId"] in ids for m in messages if "reference" in m)


def test_linkedin_export_csvs():
    with zipfile.ZipFile(PERSONA / "linkedin/linkedin-export.zip") as zf:
        files = {n: zf.read(n) for n in zf.namelist()}
    assert set(files) == {"Profile.csv", "Positions.csv", "Education.csv", "Skills.csv", "Shares.csv",
                          "Connections.csv"}
    assert files["Shares.csv"].startswith(b"\xef\xbb\xbf")
    shares = list(csv.DictReader(io.StringIO(files["Shares.csv"].decode("utf-8-sig"))))
    assert len(shares) >= 5 and any("\n" in s["ShareCommentary"] for s in shares)
    assert any('"' in s["ShareCommentary"] for s in shares)  # doubled quotes inside a quoted field
    positions = list(csv.DictReader(io.StringIO(files["Positions.csv"].decode("utf-8-sig"))))
    assert [p["Company Name"] for p in positions][0] == "Lanternfish AI"


def test_notebook_has_code_markdown_and_outputs():
    nb = json.loads((PERSONA / "notebooks/plot-your-schedule.ipynb").read_text("utf-8"))
    assert nb["nbformat"] == 4
    kinds = [c["cell_type"] for c in nb["cells"]]
    assert "code" in kinds and "markdown" in kinds
    outputs = [o for c in nb["cells"] if c["cell_type"] == "code" for o in c["outputs"]]
    assert {o["output_type"] for o in outputs} == {"stream", "display_data"}


def test_persona_is_small():
    files = [p for p in PERSONA.rglob("*") if p.is_file() and "__pycache__" not in p.parts]
    assert sum(p.stat().st_size for p in files) < 2 * 2**20
