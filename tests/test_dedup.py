"""Dedup: normalisation, exact and MinHash near-duplicates, repeated paragraphs, determinism across processes."""

from __future__ import annotations

import multiprocessing
import pickle

import ml_collections
import numpy as np
import pytest

from flaxgpt.ingest.dedup import MAX_SPLIT_ROWS, DedupConfig, DedupIndex, _BandTable, fingerprint
from flaxgpt.ingest.hashing import normalize, span_hashes

_WORDS = ("data", "model", "train", "shard", "token", "batch", "loss", "step", "graph", "paper", "river", "window",
          "garden", "piano", "marathon", "coffee", "letter", "morning", "station", "bridge", "engine", "signal",
          "market", "winter", "summer", "forest", "island", "harbour", "lantern", "violin", "kitchen", "ladder",
          "mirror", "pocket", "rocket", "saddle", "tunnel", "valley", "wagon", "yellow", "zebra", "anchor", "basket",
          "candle", "dolphin", "feather", "glacier", "hammer", "jungle", "kettle", "lemon", "meadow", "needle")


def prose(seed: int, n_words: int = 300) -> str:
    """Distinct English-like text: sentences of random words from a fixed vocabulary."""
    rng = np.random.default_rng(seed)
    words = [_WORDS[i] for i in rng.integers(0, len(_WORDS), n_words)]
    sentences = [" ".join(words[i:i + 12]).capitalize() + "." for i in range(0, n_words, 12)]
    return " ".join(sentences)


def edit(text: str, n_changes: int, seed: int = 0) -> str:
    """``text`` with ``n_changes`` words replaced by new ones."""
    words = text.split(" ")
    rng = np.random.default_rng(seed)
    for i in rng.choice(len(words), n_changes, replace=False):
        words[i] = f"changed{i}"
    return " ".join(words)


def shingle_jaccard(a: str, b: str, n: int = 5) -> float:
    """True Jaccard similarity of the two texts' normalised 5-word shingle sets."""
    def shingles(t):
        w = normalize(t).split()
        return {tuple(w[i:i + n]) for i in range(len(w) - n + 1)}
    sa, sb = shingles(a), shingles(b)
    return len(sa & sb) / len(sa | sb)


def run(index: DedupIndex, docs: list[tuple[str, str]], kind: str | None = None) -> list[str | None]:
    return [index.check(doc_id, text, fingerprint(text, kind))[0] for doc_id, text in docs]


FOOTER = ("This e-mail and any attachments are confidential and may be privileged. If you are not the intended "
          "recipient, please notify the sender immediately and delete it.")


def test_normalize_follows_fineweb():
    assert normalize("  Héllo,   WORLD!!\tIt’s 2024 — naïve café #1\n\nNext…") == "hello world its 0 naive cafe 0 next"
    assert normalize("Price: $1,299.99 (approx.)") == "price 0 approx"
    assert normalize("") == normalize("!!! ... ---") == ""
    # The ASCII fast path and the Unicode path agree.
    assert normalize("It's a cafe") == normalize("It’s a café")


def test_exact_duplicates_after_normalisation_are_dropped():
    index = DedupIndex()
    base = prose(1)
    variant = "  " + base.upper().replace(".", "!").replace(" ", "   ") + "\n"
    assert run(index, [("a", base), ("b", variant), ("c", prose(2))]) == [None, "duplicate: exact of a", None]
    assert index.stats["exact"] == 1


def test_near_duplicate_with_a_few_words_changed_is_dropped_distinct_kept():
    a = prose(10)
    b = edit(a, 5)
    c = prose(11)
    assert shingle_jaccard(a, b) >= 0.8 and shingle_jaccard(a, c) < 0.1
    reasons = run(DedupIndex(), [("docs/a.md", a), ("docs/b.md", b), ("docs/c.md", c)])
    assert reasons[0] is None and reasons[2] is None
    assert reasons[1].startswith("near-duplicate of docs/a.md (est. Jaccard 0.")


def test_lsh_candidates_below_the_threshold_are_kept():
    a = prose(23)
    b = edit(a, 9)  # an LSH candidate of a (they share a band), but under 0.8 similar
    assert 0.7 < shingle_jaccard(a, b) < 0.76
    assert run(DedupIndex(), [("a", a), ("b", b)]) == [None, None]
    # With a lower threshold the same candidate is confirmed.
    low = DedupIndex(DedupConfig(threshold=0.5))
    assert run(low, [("a", a), ("b", b)])[1].startswith("near-duplicate of a (est. Jaccard 0.7")


def test_estimated_jaccard_tracks_the_true_similarity():
    errors = []
    for seed, changes in enumerate((2, 5, 10, 20, 30, 45)):
        a = prose(100 + seed, 400)
        b = edit(a, changes, seed)
        sig_a = fingerprint(a).signatures.min(axis=0)
        sig_b = fingerprint(b).signatures.min(axis=0)
        errors.append(float((sig_a == sig_b).mean()) - shingle_jaccard(a, b))
    assert max(map(abs, errors)) < 0.15  # 3.5 standard deviations of a 112-hash estimate
    assert abs(float(np.mean(errors))) < 0.06  # and no bias


def test_short_texts_are_deduplicated_by_exact_hash_only():
    assert fingerprint("see you at noon").signatures is None  # fewer than 5 words: no shingles
    docs = [("m1", "Thanks!"), ("m2", "thanks."), ("m3", "see you at noon"), ("m4", "see you at one")]
    assert run(DedupIndex(), docs) == [None, "duplicate: exact of m1", None, None]


def test_repeated_footers_are_stripped_from_later_documents():
    mails = [("mail/1", f"Hi Bob,\n\nSounds good, see you at noon.\n\nThanks,\nAna\n\n{FOOTER}\n"),
             ("mail/2", f"Hi Carl,\n\nThe report is attached; the numbers are in section two.\n\nThanks,\nAna\n\n"
                        f"{FOOTER}\n"),
             ("mail/3", f"Dear team,\n\nThe offsite moves to Friday.\n\n{FOOTER}")]
    index = DedupIndex()
    results = [index.check(i, t, fingerprint(t, "email")) for i, t in mails]
    assert [r[0] for r in results] == [None, None, None]  # two short mails sharing a long footer are not duplicates
    assert [r[2] for r in results] == [0, 1, 1]
    assert results[0][1] == mails[0][1]  # the first document keeps its footer
    assert results[1][1] == "Hi Carl,\n\nThe report is attached; the numbers are in section two.\n\nThanks,\nAna\n"
    assert results[2][1] == "Dear team,\n\nThe offsite moves to Friday."
    assert "Thanks,\nAna" in results[1][1]  # short paragraphs are never stripped, however often they repeat
    assert index.stats["paragraphs_stripped"] == 2


def test_a_document_of_nothing_but_repeated_paragraphs_is_dropped():
    index = DedupIndex()
    long_para = prose(30, 20)
    run(index, [("a", f"Intro.\n\n{FOOTER}"), ("b", f"Other.\n\n{long_para}")])
    reasons = run(index, [("c", f"{long_para}\n\n{FOOTER}")])
    assert reasons == ["boilerplate: all 2 paragraphs repeat earlier documents"]


def test_paragraph_repeats_setting_keeps_the_first_n_copies():
    index = DedupIndex(DedupConfig(paragraph_repeats=2))
    texts = [(f"m{i}", f"Note {i}: {prose(40 + i, 8)}\n\n{FOOTER}") for i in range(4)]
    stripped = [index.check(i, t, fingerprint(t))[2] for i, t in texts]
    assert stripped == [0, 0, 1, 1]


def test_code_strips_licence_headers_but_not_import_blocks():
    licence = ("# Copyright 2024 Ana Kowalski. Licensed under the Apache License, Version 2.0 (the \"License\");\n"
               "# you may not use this file except in compliance with the License. You may obtain a copy of the\n"
               "# License at http://www.apache.org/licenses/LICENSE-2.0 Unless required by applicable law.")
    imports = "import numpy as np\nimport jax.numpy as jnp\nfrom flax import linen as nn"
    files = [(f"src/{name}.py", f"{licence}\n\n{imports}\n\n\ndef {name}(x):\n    return jnp.{name}(x)\n")
             for name in ("tanh", "exp", "sqrt")]
    index = DedupIndex()
    results = [index.check(i, t, fingerprint(t, "code")) for i, t in files]
    assert [r[2] for r in results] == [0, 1, 1]
    assert results[1][1].startswith(imports) and "Copyright" not in results[2][1]


def test_stripping_happens_before_exact_and_near_checks():
    body = prose(50)
    index = DedupIndex()
    assert run(index, [("a", f"{FOOTER}\n\nIntro A.")]) == [None]
    # Same body under a seen footer, then the same body bare: exact duplicates once the footer goes.
    assert run(index, [("b", f"{body}\n\n{FOOTER}"), ("c", body)]) == [None, "duplicate: exact of b"]


def test_documents_with_many_long_paragraphs_are_rehashed_after_stripping():
    paragraphs = [prose(200 + i, 72) for i in range(MAX_SPLIT_ROWS + 4)]
    assert not fingerprint("\n\n".join(paragraphs)).split_rows  # too many rows to send: one signature
    index = DedupIndex()
    assert run(index, [("seen", f"Intro.\n\n{FOOTER}"), ("long", "\n\n".join([*paragraphs, FOOTER]))]) == [
        None, None]
    # Every paragraph edited a little (none repeats) under the same footer: once the footer is stripped,
    # the rest is hashed again and found to be a near-duplicate of what "long" kept.
    edited = [edit(p, 1, i) for i, p in enumerate(paragraphs)]
    reason = run(index, [("long2", "\n\n".join([*edited, FOOTER]))])[0]
    assert reason.startswith("near-duplicate of long (est. Jaccard")


def test_a_revised_copy_is_a_near_duplicate_not_a_fragment():
    paragraphs = [prose(400 + i, 40) for i in range(6)]
    index = DedupIndex()
    assert run(index, [("cv_v1", "\n\n".join(paragraphs))]) == [None]
    revised = "\n\n".join([paragraphs[0], edit(paragraphs[1], 3), *paragraphs[2:]])
    assert run(index, [("cv_v2", revised)])[0].startswith("near-duplicate of cv_v1 (est. Jaccard 0.")
    # A document that reuses a few earlier paragraphs among new ones keeps its new ones.
    mixed = "\n\n".join([paragraphs[0], prose(500, 40), prose(501, 40)])
    reason, text, stripped = index.check("notes", mixed, fingerprint(mixed))
    assert (reason, stripped) == (None, 1) and text == "\n\n".join([prose(500, 40), prose(501, 40)])


def test_large_documents_hash_in_chunks_consistently():
    big = " ".join(prose(300 + i, 120) for i in range(600))  # one ~400 KB paragraph: several hashing chunks
    assert len(big) > 300_000
    fp = fingerprint(big)
    buf = np.frombuffer(b"needle " + b"x" * 500_000 + b" needle", np.uint8)
    h = span_hashes(buf, np.array([0, len(buf) - 6]), np.array([6, len(buf)]))
    assert h[0] == h[1]
    reasons = run(DedupIndex(), [("big", big), ("big-edit", edit(big, 50)), ("big-copy", big)])
    assert reasons[0] is None and reasons[1].startswith("near-duplicate of big (") and \
        reasons[2] == "duplicate: exact of big"
    assert fp.signatures is not None


def test_empty_and_symbol_only_documents():
    assert run(DedupIndex(), [("a", "   "), ("b", "!!! ---")]) == ["empty: no words after normalisation"] * 2


def _fingerprints(texts: list[str]) -> bytes:
    return pickle.dumps([fingerprint(t, "email") for t in texts])


def test_fingerprints_pickle_and_are_identical_in_another_process():
    texts = [prose(1), f"Hi,\n\nok\n\n{FOOTER}", "ünïcödé tëxt, ‘quoted’ – 42 times", ""]
    here = [fingerprint(t, "email") for t in texts]
    with multiprocessing.get_context("spawn").Pool(1) as pool:
        there = pickle.loads(pool.apply(_fingerprints, (texts,)))
    for a, b in zip(here, there, strict=True):
        for field in ("spans", "para_hash", "para_chars", "strippable"):
            np.testing.assert_array_equal(getattr(a, field), getattr(b, field))
        assert (a.signatures is None) == (b.signatures is None)
        if a.signatures is not None:
            np.testing.assert_array_equal(a.signatures, b.signatures)


def test_decisions_are_deterministic():
    docs = [(f"d{i}", edit(prose(i % 5), i % 3, i) + (f"\n\n{FOOTER}" if i % 2 else "")) for i in range(20)]
    first = [DedupIndex().check(i, t, fingerprint(t)) for i, t in docs]
    index_a, index_b = DedupIndex(), DedupIndex()
    assert [index_a.check(i, t, fingerprint(t)) for i, t in docs] == \
           [index_b.check(i, t, fingerprint(t)) for i, t in docs]
    assert first  # built without error


def test_band_table_finds_keys_before_and_after_merging():
    table = _BandTable(merge_at=4)
    table.add(np.array([1, 2], np.uint64), 0)
    table.add(np.array([3, 4], np.uint64), 1)
    assert not table.recent and len(table.keys) == 4  # merged into the sorted arrays
    table.add(np.array([2, 5], np.uint64), 2)
    table.add(np.array([2, 9], np.uint64), 3)
    assert set(table.recent) == {2, 5, 9}  # still in the dict
    assert table.lookup(np.array([2], np.uint64)) == {0, 2, 3}
    assert table.lookup(np.array([4, 9], np.uint64)) == {1, 3}
    table.add(np.array([7, 8], np.uint64), 4)
    assert not table.recent and len(table.keys) == 10
    assert table.lookup(np.array([2, 8], np.uint64)) == {0, 2, 3, 4}
    assert table.lookup(np.array([6], np.uint64)) == set()


def test_from_config_takes_the_ingest_section_and_rejects_unknown_keys():
    section = ml_collections.ConfigDict({"exact": True, "paragraphs": False, "near": True, "threshold": 0.9})
    index = DedupIndex.from_config(section)
    assert index.config.threshold == 0.9 and not index.config.paragraphs
    with pytest.raises(ValueError, match="unknown dedup settings"):
        DedupIndex.from_config({"treshold": 0.9})
    with pytest.raises(ValueError, match="threshold"):
        DedupConfig(threshold=1.5)


def test_switches_turn_rules_off():
    a, b = prose(60), edit(prose(60), 3)
    assert run(DedupIndex(DedupConfig(near=False)), [("a", a), ("b", b), ("c", a)]) == [
        None, None, "duplicate: exact of a"]
    assert run(DedupIndex(DedupConfig(exact=False, near=False)), [("a", a), ("c", a)]) == [
        None, "boilerplate: all 1 paragraphs repeat earlier documents"]
    no_strip = DedupIndex(DedupConfig(paragraphs=False, near=False))
    assert [no_strip.check(i, t, fingerprint(t))[2] for i, t in [("x", f"A.\n\n{FOOTER}"), ("y", f"B.\n\n{FOOTER}")]] \
        == [0, 0]


def test_odd_input_never_crashes():
    rng = np.random.default_rng(7)
    pool = ["\x00", "\r\n", "\n\n", "\n-- \n", "\t", "\u00a0", "\u3000", "\ud83d", "😀", "é", "e\u0301", "١٢",
            "٣", "ß", "İ", "—", "...", "word", "Word", "42", " ", "<|endoftext|>", "\x1c", "\x85", "\ufeff"]
    index = DedupIndex()
    for i in range(300):
        text = "".join(rng.choice(pool, int(rng.integers(0, 60))))
        fp = fingerprint(text, "chat")
        assert len(fp.spans) == len(fp.para_hash)
        reason, kept, _ = index.check(f"d{i}", text, fp)
        assert reason is None or reason.split(":")[0].split(" of ")[0] in {
            "empty", "boilerplate", "duplicate", "near-duplicate"}
    assert normalize("١٢ and ３ e\u0301") == "0 and 0 e"  # every Unicode digit run, as datatrove's \d+
