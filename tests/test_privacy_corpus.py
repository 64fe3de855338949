"""A second personal corpus (tests/data/privacy_corpus: mail with recipients, greetings and a prose password, a
Discord export with "my password is ...", a CV with references, notes with "with X and Y") ingests with every
planted secret, address and other person's name gone from every output file, and the owner's details kept."""

from __future__ import annotations

from pathlib import Path

from flaxgpt.data.audit import audit, read_canaries
from flaxgpt.data.corpus import ingest
from flaxgpt.ingest.config import load_ingest_config

CORPUS = Path(__file__).resolve().parent / "data" / "privacy_corpus"


def test_second_corpus_audits_clean_over_every_output_file(tmp_path):
    out = tmp_path / "out"
    result = ingest(load_ingest_config(CORPUS / "sources.py", ["workers=1"]), out, progress=False)
    assert result["_totals"]["documents_kept"] >= 4
    report = audit([out], read_canaries(CORPUS / "canaries.txt"), progress=False, fuzzy=True)
    written = {p.name for p in out.rglob("*") if p.is_file() and p.suffix not in (".bin", ".idx")}
    assert {Path(f).name for f in report.files} == written, "every output file is read"
    assert report.clean, [(f.canary, Path(f.where).name, f.document, f.field) for f in report.findings]
    text = (out / "documents.jsonl").read_text()
    for kept in ("Maren Solberg", "maren@solberg.example", "https://solberg.example", "Fjellvik Analytics"):
        assert kept in text, f"the owner's {kept!r} was scrubbed"
    assert "<NAME>" in text and "<PASSWORD>" in text and "<EMAIL>" in text
