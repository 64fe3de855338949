"""``flaxgpt audit``: canaries written into real token shards are found, clean shards pass."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import pytest

from flaxgpt.cli import data as cli_data
from flaxgpt.data import audit
from flaxgpt.data.shards import ShardWriter
from flaxgpt.data.tokenizer import get_tokenizer
from flaxgpt.ingest.extract.base import Owner
from flaxgpt.ingest.privacy import Scrubber

CANARIES = """# planted in the raw data; none may reach the shards
+31 6 4827 1953

Keizersgracht 123
canary-7f3a9c-do-not-train
"""
DOCS = [
    "Dear team,\nthe release went fine. Thanks for the help!",
    "Notes on sharding: keep documents whole, never split them across shards.",
    "A longer document about training a small GPT on my own writing, with some numbers: 1024, 2048, 4096.",
]


def write_shards(directory: Path, train: list[str], val: list[str] = (), tokenizer: str = "gpt2",
                 max_tokens_per_shard: int = 1 << 20) -> Path:
    tok = get_tokenizer(tokenizer)
    for split, docs in (("train", train), ("val", val)):
        with ShardWriter(directory, split, tokenizer_meta=tok.metadata(), source=directory.name,
                         max_tokens_per_shard=max_tokens_per_shard) as writer:
            for doc in docs:
                writer.add(tok.encode(doc))
    return directory


def run_audit(capsys, *argv: str) -> tuple[int, str, str]:
    parser = argparse.ArgumentParser()
    cli_data.add_arguments_audit(parser)
    code = cli_data.run_audit(parser.parse_args([str(a) for a in argv]))
    out = capsys.readouterr()
    return code, out.out, out.err


@pytest.fixture
def canaries(tmp_path) -> Path:
    path = tmp_path / "canaries.txt"
    path.write_text(CANARIES)
    return path


def test_read_canaries_skips_comments_blanks_and_duplicates(canaries):
    canaries.write_text(CANARIES + "Keizersgracht 123\n   \n")
    assert audit.read_canaries(canaries) == ["+31 6 4827 1953", "Keizersgracht 123", "canary-7f3a9c-do-not-train"]


def test_clean_shards_exit_0(tmp_path, canaries, capsys):
    shards = write_shards(tmp_path / "blog", DOCS, ["A held-out note without secrets."])
    code, out, _ = run_audit(capsys, shards, "--canaries", canaries)
    assert code == 0
    assert "clean" in out and "4 documents" in out


def test_canary_in_a_shard_is_reported_with_shard_and_document(tmp_path, canaries, capsys):
    leaked = "Meet me at KEIZERSGRACHT 123 tomorrow."  # other case than the canary
    # Small shards, so the leak lands in the second train shard as its first document.
    shards = write_shards(tmp_path / "blog", [DOCS[0], leaked, DOCS[1]], [DOCS[2]], max_tokens_per_shard=16)
    report = audit.audit([shards], audit.read_canaries(canaries), progress=False)
    assert not report.clean
    assert report.findings == [audit.Finding("Keizersgracht 123", str(shards / "train-00001"), 0, "exact")]
    assert report.shards == 4 and report.documents == 4

    code, out, err = run_audit(capsys, shards, "--canaries", canaries)
    assert code == 1
    assert f"FOUND 'Keizersgracht 123' in {shards / 'train-00001'} document 0 [exact]" in out
    assert "1 of 3 canaries found" in err


@pytest.mark.parametrize("written, form", [
    ("call +31648271953 after six", "whitespace"),
    ("tel. 0031-6-48271953", "digits"),
    ("nummer: +31 (6) 4827-1953", "digits"),
    ("canary-7f3a9c-\ndo-not-train", "whitespace"),
    ("CANARY-7F3A9C-DO-NOT-TRAIN", "exact"),
])
def test_canaries_match_across_case_whitespace_and_number_formats(tmp_path, canaries, written, form):
    shards = write_shards(tmp_path / "chat", [DOCS[0], f"{DOCS[1]} {written}"], [DOCS[2]])
    report = audit.audit([shards], audit.read_canaries(canaries), progress=False)
    assert [(f.where, f.document, f.match) for f in report.findings] == [(str(shards / "train-00000"), 1, form)]


def test_digits_of_unrelated_numbers_do_not_match(tmp_path, canaries):
    shards = write_shards(tmp_path / "notes", ["+31 6 4827 and later 1953", "3164 8271 in one table, 953 in another"])
    assert audit.audit([shards], audit.read_canaries(canaries), progress=False).clean


def test_ingest_output_with_several_sources_and_documents_jsonl(tmp_path, canaries, capsys):
    out = tmp_path / "ingest"
    write_shards(out / "shards" / "mail", DOCS)
    write_shards(out / "shards" / "chat", [DOCS[0]], ["ok see you at canary-7f3a9c-do-not-train"])
    records = [{"id": "mail/a.eml", "source": "mail", "text": DOCS[0], "metadata": {}},
               {"id": "mail/b.eml", "source": "mail", "text": "x", "metadata": {"to": "0031 6 4827 1953"}}]
    (out / "documents.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))

    code, text, _ = run_audit(capsys, out, "--canaries", canaries)
    assert code == 1
    assert f"in {out / 'shards' / 'chat' / 'val-00000'} document 0 [exact]" in text
    assert f"FOUND '+31 6 4827 1953' in {out / 'documents.jsonl'} line 2 (id mail/b.eml) [digits]" in text

    # Pointing at one source's shards still searches the documents.jsonl of the same ingest output.
    report = audit.audit([out / "shards" / "mail"], audit.read_canaries(canaries), progress=False)
    assert [(f.where, f.doc_id) for f in report.findings] == [(str(out / "documents.jsonl"), "mail/b.eml")]
    assert report.jsonl_records == 2


def test_scrubbed_documents_pass_the_audit(tmp_path, canaries):
    raw = ["Call me on +31 6 4827 1953 or visit Keizersgracht 123, 1015 CJ Amsterdam.", *DOCS]
    scrubber = Scrubber(Owner(names=("Anna de Vries",)))
    write_shards(tmp_path / "raw", raw)
    write_shards(tmp_path / "clean", [scrubber.scrub(d).text for d in raw])
    assert len(audit.audit([tmp_path / "raw"], audit.read_canaries(canaries), progress=False).findings) == 2
    assert audit.audit([tmp_path / "clean"], audit.read_canaries(canaries), progress=False).clean


def test_errors_exit_2_rather_than_reporting_clean(tmp_path, canaries, capsys):
    empty = tmp_path / "empty.txt"
    empty.write_text("# nothing\n\n")
    shards = write_shards(tmp_path / "blog", DOCS)
    code, _, err = run_audit(capsys, shards, "--canaries", empty)
    assert code == 2 and "no canaries" in err

    code, _, err = run_audit(capsys, tmp_path / "nowhere", "--canaries", canaries)
    assert code == 2 and "not a directory" in err

    (tmp_path / "no-shards").mkdir()
    code, _, err = run_audit(capsys, tmp_path / "no-shards", "--canaries", canaries)
    assert code == 2 and "no token shards" in err


def test_shards_of_an_unknown_tokenizer_are_an_error(tmp_path, canaries, capsys, fake_meta):
    with ShardWriter(tmp_path / "fake", "train", tokenizer_meta=fake_meta, source="fake") as writer:
        writer.add([1, 2, 3])
    code, _, err = run_audit(capsys, tmp_path / "fake", "--canaries", canaries)
    assert code == 2 and "'fake'" in err


def test_shards_whose_tokenizer_hash_differs_are_an_error(tmp_path, canaries):
    meta = dict(get_tokenizer("gpt2").metadata(), hash="0000000000000000")
    with ShardWriter(tmp_path / "old", "train", tokenizer_meta=meta, source="old") as writer:
        writer.add([31373, 995])
    with pytest.raises(ValueError, match="hash"):
        audit.audit([tmp_path / "old"], ["hello"], progress=False)
