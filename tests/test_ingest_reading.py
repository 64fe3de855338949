"""Reading every byte right and keeping short real content: text decoding, per-kind minimum lengths,
overrides anywhere on the command line, unsafe zip members, --out inside a source, third-party warnings
with their file, PDF hyphenation, and validation's share of each source."""

from __future__ import annotations

import contextlib
import io
import json
import random
import zipfile
from pathlib import Path

import charset_normalizer
import pytest
from fpdf import FPDF

from flaxgpt.cli.main import main, parse_args
from flaxgpt.data.corpus import ingest
from flaxgpt.data.shards import SPLITS, ShardWriter
from flaxgpt.data.tokenize import SplitRouter, split_of
from flaxgpt.ingest.config import load_ingest_config
from flaxgpt.ingest.extract.decode import decode_text
from flaxgpt.ingest.extract.pdf import join_hyphenated
from flaxgpt.ingest.files import open_tree
from flaxgpt.ingest.quality.filter import QualityFilter

WORDS = """the of and to in harbour tide table boat morning evening water level moon measured wrote notes about
weather wind north south coast ferry island season winter summer station gauge reading data model forecast error
small large every week river mouth storm surge chart""".split()  # noqa: SIM905
T0 = 1704189600  # 2024-01-02 10:00 UTC


def _prose(seed: int, n_words: int) -> str:
    rng = random.Random(seed)
    sentences = []
    while sum(len(s.split()) for s in sentences) < n_words:
        sentences.append(" ".join(rng.choice(WORDS) for _ in range(rng.randint(8, 16))).capitalize() + ".")
    return " ".join(sentences)


def _pdf_with_broken_xref(text: str) -> bytes:
    doc = FPDF()
    doc.set_font("helvetica", size=11)
    doc.add_page()
    doc.multi_cell(0, 6, text)
    data = bytes(doc.output())
    # A wrong startxref offset: pypdf recovers (strict=False) and logs a warning that names no file.
    return data[:data.rfind(b"startxref")] + b"startxref\n999999\n%%EOF\n"


def _zip(path: Path, members: dict[str, str]) -> Path:
    with zipfile.ZipFile(path, "w") as zf:
        for name, data in members.items():
            zf.writestr(zipfile.ZipInfo(name), data)
    return path


def _slack_msg(user: str, text: str, ts: float) -> dict:
    return {"type": "message", "user": user, "text": text, "ts": f"{ts:.6f}"}


@pytest.fixture(scope="module")
def run(tmp_path_factory) -> dict:
    """One real `flaxgpt ingest` (overrides after --out) over notes, a LinkedIn export and a Slack export."""
    root = tmp_path_factory.mktemp("reading")
    notes = root / "notes"
    notes.mkdir()
    (notes / "stray.txt").write_bytes("Café naïve, déjà vu: one stray byte ".encode() + b"\xff"
                                      + b" in a UTF-8 note about the tide tables.")
    (notes / "legacy.txt").write_bytes("Grüße aus München: the old laptop wrote this note in Windows-1252.".encode(
        "cp1252"))
    (notes / "wide.txt").write_bytes("A UTF-16 note with a byte-order mark ✓ about ferries.".encode("utf-16"))
    (notes / "broken.pdf").write_bytes(_pdf_with_broken_xref(
        "We keep the infor-\nmation about every tide in a state-of-the-\nart table, for the harbour."))
    _zip(notes / "archive.zip", {"../../escape.txt": "out of the archive", "/abs.txt": "absolute",
                                 "C:\\evil.txt": "drive", "C:/evil2.txt": "drive", "fine.txt": "A fine note here."})
    big = next(f"big-{i}.md" for i in range(1000) if split_of(f"notes/big-{i}.md", 0.05)[0] == "val")
    (notes / big).write_text(_prose(0, 3000))
    for i in range(3):
        (notes / f"small-{i}.md").write_text(_prose(i + 1, 40))
    linkedin = _zip(root / "linkedin.zip", {
        "Profile.csv": "First Name,Last Name,Headline\nJane,Doe,Tide engineer\n",
        "Positions.csv": "Company Name,Title,Started On\nHarbour Works,Engineer,2020\n"})
    windows = [("https://example.com/tides/2024", 0), ("🎉 :tada:", 3600 * 5),
               ("Shipped the tide tables today", 3600 * 10)]
    slack = _zip(root / "slack.zip", {
        "users.json": json.dumps([{"id": "U1", "name": "jane", "real_name": "Jane Doe", "profile": {}}]),
        "channels.json": json.dumps([{"id": "C1", "name": "general"}]),
        "general/2024-01-02.json": json.dumps([_slack_msg("U1", text, T0 + dt) for text, dt in windows])})
    cfg = root / "sources.py"
    cfg.write_text(
        "import ml_collections\n\n\ndef get_config():\n    return ml_collections.ConfigDict({\n"
        "        'owner': {'names': ['Jane Doe'], 'handles': ['U1', 'jane']},\n"
        f"        'sources': {{'notes': {{'kind': 'documents', 'path': 'notes'}},\n"
        f"                    'linkedin': {{'kind': 'linkedin', 'path': '{linkedin.name}'}},\n"
        f"                    'slack': {{'kind': 'slack', 'path': '{slack.name}'}}}}}})\n")
    out = root / "out"
    console = io.StringIO()
    with contextlib.redirect_stderr(console):
        status = main(["ingest", str(cfg), "--out", str(out), "workers=1", "dedup.near=False", "--quiet"])
    docs = {(r["source"], r["path"]): r for r in map(json.loads, (out / "documents.jsonl").read_text().splitlines())}
    dropped = [json.loads(line) for line in (out / "dropped.jsonl").read_text().splitlines()]
    return {"status": status, "docs": docs, "dropped": dropped, "console": console.getvalue(), "big": big,
            "report": json.loads((out / "report.json").read_text()),
            "mixture": json.loads((out / "mixture.json").read_text()), "notes": notes}


def test_decoding_utf8_with_a_stray_byte_and_detected_encodings():
    stray = decode_text("Café naïve ".encode() + b"\x92" + "déjà".encode())
    assert stray.text == "Café naïve \ufffddéjà" and (stray.encoding, stray.replaced_bytes) == ("utf-8", 1)
    assert stray.metadata() == {"encoding": "utf-8", "replaced_bytes": 1}
    assert decode_text("Café naïve".encode("cp1252")).text == "Café naïve"
    assert decode_text("Café naïve".encode("cp1252")).encoding == "cp1252"
    assert decode_text("Grüße, Straße".encode("latin-1")).text == "Grüße, Straße"
    assert decode_text("Wide ✓\r\ntext".encode("utf-16")).text == "Wide ✓\ntext"
    japanese = decode_text("こんにちは、世界。日本語のテキストです。".encode("shift_jis"))
    assert japanese.text == "こんにちは、世界。日本語のテキストです。" and japanese.encoding in ("shift_jis", "cp932")
    russian = decode_text("Привет, как дела? Это текст на русском языке.".encode("cp1251"))
    assert russian.text.startswith("Привет") and russian.encoding == "cp1251"
    assert decode_text("plain UTF-8 ✓".encode()).metadata() == {}


def test_utf8_files_do_not_pay_for_detection(monkeypatch):
    def no_detection(*args, **kwargs):
        raise AssertionError("charset detection ran on valid UTF-8")

    monkeypatch.setattr(charset_normalizer, "from_bytes", no_detection)
    assert decode_text(("Ünïcode text. " * 1000).encode()).text.startswith("Ünïcode")
    assert decode_text("UTF-8 with one bad byte ✓ ".encode() + b"\xff").replaced_bytes == 1


def test_encodings_reach_metadata_and_the_report(run):
    assert run["status"] == 0
    stray = run["docs"][("notes", "stray.txt")]
    assert "Café naïve, déjà vu" in stray["text"] and "\ufffd" in stray["text"]
    assert stray["metadata"]["encoding"] == "utf-8" and stray["metadata"]["replaced_bytes"] == 1
    legacy = run["docs"][("notes", "legacy.txt")]
    assert legacy["text"].startswith("Grüße aus München") and legacy["metadata"]["encoding"] == "cp1252"
    assert run["docs"][("notes", "wide.txt")]["metadata"]["encoding"] == "utf-16"
    assert "encoding" not in run["docs"][("notes", "small-0.md")]["metadata"]  # plain UTF-8 says nothing
    report = run["report"]["notes"]
    assert report["bytes_replaced"] == 1
    assert report["encodings"] == {"cp1252": 1, "utf-16": 1, "utf-8": 1}


def test_short_real_content_is_kept_and_wordless_chat_dropped_with_reasons(run):
    cv = [d for (source, _), d in run["docs"].items() if source == "linkedin"]
    assert len(cv) == 1 and "Engineer at Harbour Works" in cv[0]["text"]
    assert "linkedin" in run["mixture"]["sources"]
    slack_kept = [d["text"] for (source, _), d in run["docs"].items() if source == "slack"]
    assert slack_kept == ["Jane Doe: Shipped the tide tables today"]
    reasons = sorted(d["reason"] for d in run["dropped"] if d["source"] == "slack")
    assert reasons == ["emoji-only: 2 emoji and no words", "link-only: 1 link and no words"]
    assert run["report"]["slack"]["dropped"] == {"emoji-only": 1, "link-only": 1}


def test_minimum_lengths_per_kind():
    q = QualityFilter()
    assert q.check("Jane Doe\nTide engineer", "cv") is None  # a LinkedIn profile
    assert q.check("Engineer at Harbour Works (2020 - present)", "cv") is None  # a position
    assert q.check("Fix typo\n\nAdd README\n\nFix typo", "prose") is None  # commit messages (a repeat too)
    assert q.check("# tidewater\n\nTide tables for Norwegian harbours.", "prose") is None  # a README
    assert q.check("Proud of the team: the new tide model shipped!", "prose") is None  # a short post
    assert q.check("TODO", "prose").startswith("length: 1 words < 3")
    assert q.check("https://example.com/a", "prose") == "link-only: 1 link and no words"
    assert q.check("Jane Doe: <https://example.com/a>\n<NAME>: @jane https://example.com/b", "chat") == (
        "link-only: 2 links and no words")
    assert q.check("Jane Doe: 👍", "chat") == "emoji-only: 1 emoji and no words"
    assert q.check("Jane Doe: ok 👍", "chat") is None and q.check("Jane Doe: 42", "chat") is None
    assert q.check("Jane Doe: see https://example.com/a for the tides", "chat") is None
    no_stop_words = " ".join(f"Apples oranges bananas pears{i}." for i in range(20))  # 80 words: judged
    assert q.check(no_stop_words, "prose").startswith("gopher-quality: 0 English stop words")
    assert q.check(" ".join(no_stop_words.split()[:40]), "prose") is None  # 40 words: too short to judge


def test_overrides_anywhere_on_the_command_line():
    args = parse_args(["ingest", "cfg.py", "--out", "DIR", "workers=1", "dedup.near=False"])
    assert (args.config, args.out, args.overrides) == ("cfg.py", "DIR", ["workers=1", "dedup.near=False"])
    args = parse_args(["ingest", "cfg.py", "a=1", "--quiet", "--out", "DIR", "b=2"])
    assert args.overrides == ["a=1", "b=2"] and args.quiet
    assert parse_args(["train", "exp.py", "--restart", "train.steps=3"]).overrides == ["train.steps=3"]
    assert parse_args(["run", "exp.py", "--only", "sft", "rl=dpo"]).overrides == ["rl=dpo"]
    assert parse_args(["sweep", "s.py", "--dry-run", "train.steps=3"]).overrides == ["train.steps=3"]
    assert parse_args(["preflight", "exp.py", "--cpu", "model.n_layer=2"]).items == ["exp.py", "model.n_layer=2"]
    assert parse_args(["eval", "runs/a", "--suite", "facts", "runs/b"]).run_dirs == ["runs/a", "runs/b"]
    assert parse_args(["convert", "export", "runs/a", "--out", "hf"]).run_dir == "runs/a"  # sub-commands still parse
    with pytest.raises(SystemExit):
        parse_args(["ingest", "cfg.py", "--out", "DIR", "--bogus"])


def test_unsafe_zip_members_are_skipped(tmp_path, run):
    skipped = []
    archive = _zip(tmp_path / "a.zip", {"../../x.txt": "x", "a/../../y.txt": "y", "/etc/z.txt": "z",
                                        "C:\\w.txt": "w", "D:/v.txt": "v", "ok/fine..txt": "fine"})
    tree = open_tree(archive, on_skip=lambda rel, why: skipped.append((rel, why)))
    assert [f.rel for f in tree.files] == ["ok/fine..txt"]
    assert sorted(skipped) == sorted((n, "unsafe path") for n in ("../../x.txt", "a/../../y.txt", "/etc/z.txt",
                                                                    "C:\\w.txt", "D:/v.txt"))
    unsafe = sorted(d["path"] for d in run["dropped"] if d.get("reason") == "unsafe path")
    assert unsafe == sorted(f"archive.zip!/{n}" for n in ("../../escape.txt", "/abs.txt", "C:\\evil.txt",
                                                          "C:/evil2.txt"))
    assert ("notes", "archive.zip!/fine.txt") in run["docs"]


def test_out_dir_inside_a_source_is_refused(tmp_path):
    (tmp_path / "notes").mkdir()
    (tmp_path / "notes" / "a.md").write_text("A note about the harbour and its tides.")
    cfg = tmp_path / "sources.py"
    cfg.write_text("def get_config():\n    return {'sources': {'notes': {'kind': 'documents', 'path': 'notes'}}}\n")
    config = load_ingest_config(cfg)
    inside = tmp_path / "notes" / "out"
    with pytest.raises(ValueError, match=r"--out .*notes/out is inside source 'notes' \(.*notes\)"):
        ingest(config, inside, progress=False)
    with pytest.raises(ValueError, match=r"source 'notes' \(.*notes\) is inside --out"):
        ingest(config, tmp_path, progress=False)
    assert not inside.exists()


def test_library_warnings_name_their_file(run):
    warnings = run["report"]["notes"]["warnings"]
    assert warnings and all(w.startswith("broken.pdf: pypdf: ") for w in warnings)
    assert any("startxref" in w for w in warnings)
    pdf_path = str(run["notes"] / "broken.pdf")
    lines = [line for line in run["console"].splitlines() if "startxref" in line]
    assert lines and all(line.startswith(f"warning: {pdf_path}: pypdf: ") for line in lines)


def test_pdf_line_end_hyphens_are_joined(run):
    text = run["docs"][("notes", "broken.pdf")]["text"]
    assert "information" in text and "state-of-the-art" in text
    assert join_hyphenated("infor-\nmation, Fig-\nure, state-of-the-\nart, soft\u00adhy\u00ad\nphen") == (
        "information, Figure, state-of-the-art, soft\u00adhyphen")
    assert join_hyphenated("Oslo-\nBergen and a list:\n- item, word -\nnext") == (
        "Oslo-\nBergen and a list:\n- item, word -\nnext")


def test_validation_takes_at_most_its_share_of_a_source(run):
    big = run["docs"][("notes", run["big"])]
    assert split_of(big["id"], 0.05)[0] == "val"  # its hash says val, but it is most of the source
    tokens = run["report"]["notes"]["tokens"]
    assert tokens["train"] > 0 and tokens["val"] <= 0.1 * (tokens["train"] + tokens["val"])
    assert run["report"]["notes"]["documents"]["val"] >= 1  # the small documents can still validate


def test_split_router_budget(tmp_path):
    meta = {"name": "t", "hash": "h", "vocab_size": 100}
    writers = {s: ShardWriter(tmp_path, s, tokenizer_meta=meta, source="t") for s in SPLITS}
    router = SplitRouter(writers, guarantee_both=True, val_budget=10)
    router.add("val", 0.01, [1] * 90)  # a large document hashed to val: over the budget, it trains
    router.add("train", 0.5, [2] * 5)
    router.add("train", 0.2, [3] * 20)
    router.add("train", 0.9, [4] * 8)
    router.finish()
    counts = {s: [m["num_tokens"] for m in writers[s].close()] for s in SPLITS}
    assert counts == {"train": [118], "val": [5]}  # the smallest document that fits keeps validation non-empty
