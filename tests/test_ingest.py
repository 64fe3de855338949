"""flaxgpt ingest end to end: a small corpus in several formats -> documents, shards, report; determinism."""

import json
import os
import shutil
import zipfile
from pathlib import Path

import pytest

from flaxgpt.config import ConfigError
from flaxgpt.data.corpus import ingest
from flaxgpt.data.loader import build_train_iterator, expand_mixtures
from flaxgpt.data.shards import ShardSet
from flaxgpt.ingest.config import load_ingest_config

PROSE = ("Ines wrote the shard format over a long weekend in Rotterdam. She wanted every training run to be "
         "reproducible, so the shuffle is a pure function of the seed and the epoch, and the loader can resume "
         "from any step without reading the data again. The design notes explain why the index stores document "
         "ends rather than starts, and how the writer renames files into place so that a crash never leaves a "
         "half shard behind. ")
ROOT = Path(__file__).resolve().parents[1]
SECRET = "AKIAQ7XRMB2LK4TZ9WNE"
PHONE = "+31 6 4827 1953"


def _write_corpus(root: Path) -> Path:
    docs = root / "docs"
    docs.mkdir(parents=True)
    for post in sorted((ROOT / "examples/persona/blog").glob("*.md"))[:6]:
        shutil.copy(post, docs / post.name)
        last = post
    (docs / "post-copy.md").write_text(last.read_text())  # exact duplicate
    (docs / "notes.txt").write_text(PROSE + f"\nThe deploy key is aws_access_key_id = {SECRET}; call me on {PHONE}.\n")
    (docs / "broken.pdf").write_bytes(b"%PDF-1.4 this is not really a pdf")
    (docs / "image.png").write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(100))
    (docs / "empty.md").write_text("")
    (docs / "binary.txt").write_bytes(b"text then \x00\x01\x02 binary" * 10)
    (docs / "latin1.txt").write_bytes(("Caf\xe9 notes, written on the old laptop: the shard writer renames files "
                                       "into place, so a crash never leaves half a shard. The index keeps document "
                                       "ends, and the loader reads them lazily.").encode("latin-1"))
    (docs / "tokens.md").write_text("Writing about tokenizers: the literal string <|endoftext|> and the chat marker "
                                    "<|assistant|> must stay ordinary text when a post quotes them, and never turn "
                                    "into control tokens inside the training shards.")
    os.symlink(docs, docs / "loop")
    with zipfile.ZipFile(docs / "bomb.zip", "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("zeros.md", b" " * (8 * 2**20))
    slack = root / "slack.zip"
    users = [{"id": "U1", "name": "ines", "real_name": "Ines Halvorsen"},
             {"id": "U2", "name": "ravi", "real_name": "Ravi Menon"}]
    day = [{"type": "message", "user": "U2", "text": "Did the shard writer land?", "ts": "1700000000.000100"},
           {"type": "message", "user": "U1", "text": "Yes, with the rename trick. <@U2> can you review it?",
            "ts": "1700000060.000200"}]
    with zipfile.ZipFile(slack, "w") as zf:
        zf.writestr("users.json", json.dumps(users))
        zf.writestr("channels.json", json.dumps([{"id": "C1", "name": "data"}]))
        zf.writestr("data/2023-11-14.json", json.dumps(day))
    config = root / "sources.py"
    config.write_text(
        "import ml_collections\n\n\ndef get_config():\n"
        "    c = ml_collections.ConfigDict()\n"
        "    c.owner = {'names': ['Ines Halvorsen', 'Ines'], 'emails': ['ines@halvorsen.example'],\n"
        "               'handles': ['ines', 'U1'], 'public': []}\n"
        "    c.sources = {'writing': {'kind': 'documents', 'path': 'docs', 'weight': 2.0},\n"
        "                 'chat': {'kind': 'slack', 'path': 'slack.zip', 'weight': 1.0}}\n"
        "    c.val_fraction = 0.2\n"
        "    return c\n")
    return config


def _files(out: Path) -> dict[str, bytes]:
    return {p.relative_to(out).as_posix(): p.read_bytes() for p in sorted(out.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    root = tmp_path_factory.mktemp("ingest")
    config_file = _write_corpus(root)
    out = root / "out"
    report = ingest(load_ingest_config(config_file, ["workers=1"]), out, progress=False)
    return root, config_file, out, report


def test_outputs_and_report(corpus):
    _, _, out, report = corpus
    assert {"documents.jsonl", "dropped.jsonl", "report.json", "report.md", "mixture.json", "tokenizer.json"} <= {
        p.name for p in out.iterdir()}
    docs = [json.loads(line) for line in (out / "documents.jsonl").read_text().splitlines()]
    assert {d["source"] for d in docs} == {"writing", "chat"}
    assert all(set(d) == {"id", "source", "kind", "path", "text", "metadata"} for d in docs)
    w = report["writing"]
    assert w["files_skipped"], "the corrupt PDF, the PNG and the empty file are skipped with reasons"
    dropped = [json.loads(line) for line in (out / "dropped.jsonl").read_text().splitlines()]
    by_path = {d.get("path") or d.get("id"): d["reason"] for d in dropped}
    assert any("broken.pdf" in p for p in by_path), by_path
    assert any("duplicate" in r for r in by_path.values()), "post-copy.md is an exact duplicate"
    assert sum(w["dropped"].values()) >= 1
    assert w["tokens"]["train"] > 0 and w["documents"]["train"] + w["documents"]["val"] == w["documents_kept"]
    assert report["_totals"]["documents_kept"] == len(docs)
    assert "writing" in (out / "report.md").read_text()


def test_bad_inputs_are_skipped_with_reasons(corpus):
    _, _, out, _ = corpus
    dropped = [json.loads(line) for line in (out / "dropped.jsonl").read_text().splitlines()]
    reasons = {d.get("path") or d.get("id"): d["reason"] for d in dropped}
    assert reasons["loop"].startswith("symlink loop")
    assert reasons["bomb.zip!/zeros.md"].startswith("zip bomb")
    assert "binary" in reasons["binary.txt"]
    docs = {json.loads(line)["path"]: json.loads(line) for line in (out / "documents.jsonl").read_text().splitlines()}
    assert "Café notes" in docs["latin1.txt"]["text"], "a wrongly encoded file is decoded, not lost"


def test_special_token_strings_stay_text(corpus):
    _, _, out, _ = corpus
    from flaxgpt.data.tokenizer import get_tokenizer

    tok = get_tokenizer("flaxgpt")
    special = set(tok.special_ids.values())
    for split in ("train", "val"):
        shards = ShardSet(out / "shards" / "writing", split)
        for i in range(len(shards)):
            assert not special & set(shards[i].tolist())
    text = "".join(tok.decode(ShardSet(out / "shards" / "writing", s)[i]) for s in ("train", "val")
                   for i in range(len(ShardSet(out / "shards" / "writing", s))))
    assert "<|endoftext|>" in text and "<|assistant|>" in text


def test_persona_has_no_canary_left_and_keeps_the_owner(tmp_path):
    from flaxgpt.data.audit import audit, read_canaries

    persona = ROOT / "examples/persona"
    out = tmp_path / "persona"
    ingest(load_ingest_config(persona / "sources.py", ["workers=1"]), out, progress=False)
    report = audit([out], read_canaries(persona / "canaries.txt"), progress=False, fuzzy=True)
    assert report.documents > 50 and report.clean, report.findings
    written = {p.relative_to(out) for p in out.rglob("*") if p.is_file() and p.suffix not in (".bin", ".idx")}
    assert {Path(f).relative_to(out) for f in report.files} == written, "every output file is audited"
    text = (out / "documents.jsonl").read_text()
    for kept in ("Ines Halvorsen", "ines@halvorsen.example", "https://halvorsen.example"):
        assert kept in text, f"allow-listed {kept!r} was scrubbed"
    sources = json.loads((out / "mixture.json").read_text())["sources"]
    assert {"cv", "blog", "code", "mail", "slack", "linkedin", "slides"} <= set(sources)


def test_privacy_before_writing(corpus):
    _, _, out, report = corpus
    text = (out / "documents.jsonl").read_text()
    assert SECRET not in text and "4827" not in text
    assert "Ines" in text, "the owner's name is allow-listed"
    assert sum(report["writing"]["privacy"].values()) >= 2
    chat = [json.loads(line) for line in text.splitlines() if '"source": "chat"' in line]
    assert chat and all("Ravi" not in d["text"] for d in chat), "other people's names from the export are replaced"


def test_mixture_feeds_the_loader(corpus):
    _, _, out, _ = corpus
    sources = expand_mixtures({"personal": (out, 0.7), "general": (out / "shards" / "writing", 0.3)})
    assert set(sources) == {"personal/writing", "personal/chat", "general"}
    assert sources["personal/writing"][1] == pytest.approx(0.7 * 2 / 3)
    assert sources["personal/chat"][1] == pytest.approx(0.7 * 1 / 3)
    meta = ShardSet(out / "shards" / "writing", "train").tokenizer_meta
    it = build_train_iterator(sources, seq_len=32, batch_size=2, seed=0, eot_id=meta["eot_id"], shard_index=0,
                              shard_count=1, prefetch=0)
    batch = next(it)
    assert batch["inputs"].shape == (2, 32)


def test_deterministic_across_workers_and_reruns(corpus, tmp_path):
    _, config_file, out, _ = corpus
    again = tmp_path / "again"
    ingest(load_ingest_config(config_file, ["workers=2"]), again, progress=False)
    assert _files(again) == _files(out)


def test_interrupted_run_leaves_nothing_and_reruns_identically(corpus, tmp_path, monkeypatch):
    _, config_file, out, _ = corpus
    target = tmp_path / "target"
    import flaxgpt.data.corpus as corpus_module

    def boom(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(corpus_module, "_tokenize", boom)  # killed after documents.jsonl, before the shards
    with pytest.raises(KeyboardInterrupt):
        ingest(load_ingest_config(config_file, ["workers=1"]), target, progress=False)
    assert not target.exists() and not list(tmp_path.glob(".target.*")), "no partial output is left"
    monkeypatch.undo()
    ingest(load_ingest_config(config_file, ["workers=1"]), target, progress=False)
    assert _files(target) == _files(out)


def test_config_errors_name_the_key(tmp_path):
    config = tmp_path / "bad.py"
    config.write_text("def get_config():\n    return {'sources': {'a': {'kind': 'documents', 'path': 'x', "
                      "'wieght': 1.0}}}\n")
    with pytest.raises(ConfigError, match="sources.a.wieght"):
        load_ingest_config(config)
    config.write_text("def get_config():\n    return {'sources': {'a': {'kind': 'pdfs', 'path': 'x'}}}\n")
    with pytest.raises(ConfigError, match="sources.a.kind"):
        load_ingest_config(config)
    config.write_text("def get_config():\n    return {'sources': {'a': {'path': 'x'}}, 'val_fraction': 'lots'}\n")
    with pytest.raises(ConfigError, match="val_fraction"):
        load_ingest_config(config)


def test_personal_vocabulary_is_used_and_loadable_for_training(tmp_path):
    from flaxgpt.config import load_config
    from flaxgpt.data.tokenizer import load_tokenizer

    out = tmp_path / "persona"
    ingest(load_ingest_config(ROOT / "examples/persona/sources.py", ["workers=1", "personal_vocab=30"]), out,
           progress=False)
    tok = load_tokenizer(str(out))
    assert 50265 < tok.vocab_size <= 50265 + 30
    personal = set(range(50265, tok.vocab_size))
    blog = ShardSet(out / "shards" / "blog", "train")
    ids = set().union(*(blog[i].tolist() for i in range(len(blog))))
    assert ids & personal, "personal terms are single tokens in the shards"
    assert max(ids) < tok.vocab_size
    config = load_config(ROOT / "experiments/micro.py",
                         [f"data.tokenizer={out}", f"model.vocab_size={tok.vocab_size}"])
    assert load_tokenizer(config.data.tokenizer).metadata() == blog.tokenizer_meta
