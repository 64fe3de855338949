"""`flaxgpt tokenize`: files and jsonl -> deterministic train/val shards with a summary."""

import argparse
import json

import numpy as np
import pytest

from flaxgpt.cli import data as cli_data
from flaxgpt.data import tokenize
from flaxgpt.data.shards import ShardSet
from flaxgpt.data.tokenizer import get_tokenizer

TEXTS = {
    "a.txt": "Hello world, this is my first note.\n",
    "notes/b.md": "# Heading\n\nSome *markdown* with unicode: café, 你好.\n",
    "notes/deep/c.py": "def f(x):\n    return x + 1\n",
    "eot.txt": "before <|endoftext|> after",
}
JSONL = [{"text": "first json document"}, {"id": "doc-2", "text": "second json document"}, {"text": "  "},
         {"text": "third one"}]


def make_corpus(root):
    for rel, text in TEXTS.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(text)
    (root / "latin1.txt").write_bytes("caf\xe9 na\xefve".encode("latin-1"))
    (root / "empty.md").write_text("  \n")
    (root / "photo.png").write_bytes(b"\x89PNG\r\n")
    (root / ".git" / "objects").mkdir(parents=True)
    (root / ".git" / "config.txt").write_text("secret")
    (root / ".git" / "objects" / "x.txt").write_text("secret")
    (root / "docs.jsonl").write_text("\n".join(json.dumps(r) for r in JSONL) + "\n\n")
    return root


def read_docs(out, tok):
    """{split: sorted decoded documents}."""
    docs = {}
    for split in ("train", "val"):
        shards = ShardSet(out, split)
        docs[split] = sorted(tok.decode(shards[i]) for i in range(len(shards)))
    return docs


def test_tokenize_folder(tmp_path):
    corpus = make_corpus(tmp_path / "corpus")
    summary = tokenize.tokenize_paths([corpus], tmp_path / "out", name="me", progress=False)
    tok = get_tokenizer("gpt2")
    docs = read_docs(tmp_path / "out", tok)
    expected = sorted([*TEXTS.values(), "first json document", "second json document", "third one"])
    assert sorted(docs["train"] + docs["val"]) == expected
    assert docs["train"] and docs["val"]  # tiny corpus: one document is moved to keep val non-empty
    assert summary["documents"] == {s: len(docs[s]) for s in ("train", "val")}
    assert summary["skipped"] == {"empty": 2, "hidden": 1, "not_utf8": 1, "unsupported_suffix.png": 1}
    reasons = {d["path"]: d["reason"] for d in summary["skipped_files"]}
    assert reasons["latin1.txt"] == "not_utf8" and reasons["docs.jsonl:3"] == "empty"
    assert reasons[".git"] == "hidden"  # skipped as a whole, not entered
    assert summary["files"] == {"seen": 9, "used": 5, "skipped": 4}
    assert json.loads((tmp_path / "out" / "summary.json").read_text()) == summary
    for split in ("train", "val"):
        shards = ShardSet(tmp_path / "out", split)
        assert summary["tokens"][split] == shards.num_tokens
        assert shards.meta[0]["source"] == "me" and shards.meta[0]["tokenizer"] == tok.metadata()


def test_endoftext_in_text_is_not_a_control_token(tmp_path):
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "x.txt").write_text("a <|endoftext|> b")
    tokenize.tokenize_paths([tmp_path / "in"], tmp_path / "out", name="x", progress=False)
    tokens = ShardSet(tmp_path / "out", "train")[0]
    assert 50256 not in tokens.tolist()
    assert get_tokenizer("gpt2").decode(tokens) == "a <|endoftext|> b"


def test_deterministic_byte_identical(tmp_path):
    corpus = make_corpus(tmp_path / "corpus")
    for out in ("out1", "out2"):
        tokenize.tokenize_paths([corpus], tmp_path / out, name="me", max_tokens_per_shard=16, progress=False)
    files1 = sorted(p.name for p in (tmp_path / "out1").iterdir())
    assert files1 == sorted(p.name for p in (tmp_path / "out2").iterdir())
    assert "train-00001.bin" in files1  # several shards
    for name in files1:
        assert (tmp_path / "out1" / name).read_bytes() == (tmp_path / "out2" / name).read_bytes(), name


def test_split_is_stable_when_files_are_added(tmp_path):
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    for i in range(40):
        (corpus / f"f{i:02d}.txt").write_text(f"document number {i}")
    tok = get_tokenizer("gpt2")
    tokenize.tokenize_paths([corpus], tmp_path / "out", name="c", val_fraction=0.3, progress=False)
    before = read_docs(tmp_path / "out", tok)
    assert 3 <= len(before["val"]) <= 25
    (corpus / "new.txt").write_text("a new document")
    tokenize.tokenize_paths([corpus], tmp_path / "out", name="c", val_fraction=0.3, progress=False)  # replaces
    after = read_docs(tmp_path / "out", tok)
    for split in ("train", "val"):
        assert set(before[split]) <= set(after[split])


def test_jsonl_without_text_names_file_and_line(tmp_path):
    path = tmp_path / "documents.jsonl"
    path.write_text('{"text": "ok"}\n{"body": "no text"}\n')
    with pytest.raises(ValueError, match=r"documents\.jsonl:2.*text"):
        tokenize.tokenize_paths([path], tmp_path / "out", name="x", progress=False)
    assert not (tmp_path / "out").exists() and not list(tmp_path.glob(".out*"))  # nothing half-written


def test_refuses_foreign_out_dir_and_missing_input(tmp_path):
    (tmp_path / "in.txt").write_text("text")
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "thesis.tex").write_text("precious")
    with pytest.raises(ValueError, match="not tokenize output"):
        tokenize.tokenize_paths([tmp_path / "in.txt"], tmp_path / "out", name="x", progress=False)
    assert (tmp_path / "out" / "thesis.tex").exists()
    with pytest.raises(FileNotFoundError, match="missing.txt"):
        tokenize.tokenize_paths([tmp_path / "missing.txt"], tmp_path / "o2", name="x", progress=False)


def test_cli(tmp_path, capsys):
    corpus = make_corpus(tmp_path / "corpus")
    parser = argparse.ArgumentParser()
    cli_data.add_arguments_tokenize(parser)
    args = parser.parse_args([str(corpus), "--out", str(tmp_path / "out"), "--val-fraction", "0.5"])
    assert cli_data.run_tokenize(args) == 0
    out = capsys.readouterr().out
    assert out.startswith("corpus: ") and "not_utf8 1" in out
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert summary["name"] == "corpus" and summary["val_fraction"] == 0.5
    args = parser.parse_args([str(tmp_path / "nope"), "--out", str(tmp_path / "o")])
    assert cli_data.run_tokenize(args) == 1
    assert "nope" in capsys.readouterr().err


def test_val_fraction_zero_and_tokens(tmp_path):
    (tmp_path / "a.txt").write_text("one")
    (tmp_path / "b.txt").write_text("two")
    summary = tokenize.tokenize_paths([tmp_path / "a.txt", tmp_path / "b.txt"], tmp_path / "out", name="x",
                                      val_fraction=0.0, progress=False)
    assert summary["documents"] == {"train": 2, "val": 0}
    shards = ShardSet(tmp_path / "out", "train")
    assert [shards[i].tolist() for i in range(2)] == [get_tokenizer().encode("one"), get_tokenizer().encode("two")]
    assert np.all(shards.document_lengths() == 1)


def test_output_inside_the_input_folder_is_not_read(tmp_path):
    corpus = make_corpus(tmp_path / "corpus")
    first = tokenize.tokenize_paths([corpus], corpus / "tokens", name="me", progress=False)
    second = tokenize.tokenize_paths([corpus], corpus / "tokens", name="me", progress=False)
    assert first == second  # summary.json and sidecars of run 1 were not tokenized by run 2
