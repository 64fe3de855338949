"""Quality filters: per-kind profiles keep real personal documents and drop junk; offline language ID; perplexity."""

from __future__ import annotations

import math
import pickle
import re
import socket

import numpy as np
import pytest

from flaxgpt.infer.perplexity import PerplexityScorer
from flaxgpt.ingest.extract.base import KINDS
from flaxgpt.ingest.quality import langid, stats
from flaxgpt.ingest.quality.filter import QualityConfig, QualityFilter
from flaxgpt.ingest.quality.junk import _NOT_MASH, Gibberish
from flaxgpt.ingest.quality.perplexity import PerplexityFilter
from flaxgpt.ingest.quality.stats import TextStats

CV = """Ana Kowalski
Senior Machine Learning Engineer
Amsterdam, Netherlands | ana.kowalski@example.com | github.com/anak | +31 6 1234 5678

EXPERIENCE
Acme AI, Amsterdam — Staff ML Engineer, 2021–present
• Led the pretraining data team (6 engineers)
• Built a JAX/Flax training stack scaling to 512 TPU v4 chips
• Cut data pipeline cost by 40% with MinHash deduplication
Globex, Berlin — ML Engineer, 2017–2021
• Shipped ranking models serving 20M users
• Wrote the feature store used by 12 teams

EDUCATION
MSc Computer Science, University of Warsaw, 2017

SKILLS
Python, JAX, PyTorch, Kubernetes, SQL, GCP, Rust
"""

SLIDES = """Scaling our data pipeline
NordML 2023

Why dedup matters
- Duplicates waste compute
- Memorisation risk

Our approach
- MinHash LSH, 14 x 8
- Exact paragraph hashes

Results
- 23% fewer tokens
- Same eval loss
"""

CHAT = """alice: are we still on for lunch tomorrow?
ana: yes! 12:30 at the usual place
alice: great 👍
ana: see you"""

EMAIL = """Hi Bob,

Sounds good, see you at noon on Thursday. I'll bring the printed slides.

Thanks,
Ana"""

CODE = '''"""Numerically stable helpers."""

import numpy as np


def softmax(x: np.ndarray) -> np.ndarray:
    """Softmax over the last axis."""
    z = x - x.max(axis=-1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=-1, keepdims=True)


if __name__ == "__main__":
    print(softmax(np.arange(3.0)))
'''

PROSE = """I spent most of last year rebuilding the data pipeline for our pretraining runs. The old one had grown by \
accretion: every new source came with its own script, and nobody could say with confidence which documents ended up \
in a given shard.

The rewrite had two goals. First, every stage should be a pure function of its input, so that a run can be \
reproduced byte for byte. Second, the pipeline should explain itself: for every document that is dropped, the report \
says which rule dropped it and why. The hardest part was deduplication, and MinHash turned out to be both fast and \
predictable once we tuned the bands."""

DUTCH = """Ik heb gisteren de trein naar Utrecht genomen en het was erg druk. Daarna ben ik naar de markt gegaan om \
verse groenten te kopen, en 's avonds hebben we samen gekookt met vrienden uit de buurt. Het was een gezellige dag \
en we hebben veel gelachen."""

LEGIT = {"cv": CV, "slides": SLIDES, "chat": CHAT, "email": EMAIL, "code": CODE, "prose": PROSE, "web": PROSE}

MASH = "asdfjkl; asdkfj aslkdfj qwpoeiru zxcmvnb\nasdlkfj qwerpoiu sdfg hjkl xcvbnm\nasdfghjkl lkjh fdsa"
LOREM = ("Lorem ipsum dolor sit amet, consectetur adipiscing elit, sed do eiusmod tempor incididunt ut labore et "
         "dolore magna aliqua. Ut enim ad minim veniam, quis nostrud exercitation ullamco laboris nisi ut aliquip.")
GIANT_LINE = "Buy the cheapest watches with the best price and free shipping today! " * 300
REPEATED_LINES = "\n".join(["click here to subscribe to my newsletter today"] * 300)


@pytest.fixture(scope="module")
def q() -> QualityFilter:
    return QualityFilter()


def test_there_is_a_profile_for_every_document_kind_and_web(q):
    assert set(q.profiles) == set(KINDS) | {"web"}
    with pytest.raises(ValueError, match="no quality profile for kind 'tweet'"):
        q.check("hello", "tweet")


@pytest.mark.parametrize("kind", sorted(LEGIT))
def test_each_profile_keeps_its_legit_example(q, kind):
    assert q.check(LEGIT[kind], kind) is None


@pytest.mark.parametrize("kind", ["prose", "email", "chat", "cv", "slides", "web"])
def test_text_profiles_drop_junk(q, kind):
    assert q.check(MASH, kind).startswith("gibberish: ")
    assert q.check(LOREM, kind).startswith("lorem-ipsum: ")
    assert q.check(GIANT_LINE, kind).startswith("repetition: ")
    assert q.check(REPEATED_LINES, kind).startswith("repetition: ")


def test_web_filters_would_drop_personal_documents_so_their_profiles_do_not_use_them(q):
    # Gopher's 50-word minimum, FineWeb's line rules and C4's curly-bracket rule on personal documents:
    assert q.check(CV, "web").startswith(("c4: ", "fineweb: "))
    assert q.check(SLIDES, "web").startswith("length: ")
    assert q.check(CHAT, "web").startswith("length: ")
    assert q.check(CODE, "web") is not None
    assert all(q.check(LEGIT[k], k) is None for k in ("cv", "slides", "chat", "code"))


def test_code_checks(q):
    assert q.check("var a=" + "1," * 2000 + "\n", "code").startswith("code: a line of 4006 characters")
    assert q.check("# Code generated by protoc-gen-go. DO NOT EDIT.\npackage pb\n", "code").startswith(
        "code: generated file")
    blob = "\n".join("iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDwAChwGA" for _ in range(40))
    assert q.check(f"LOGO = \"\"\"\n{blob}\n\"\"\"\n", "code").startswith("code: 9")  # 9x% in encoded data
    assert q.check("}\n]\n)\n" * 100, "code").startswith("code: ")
    assert q.check("x = compute_the_thing(1)\n" * 200, "code").startswith("code: repeated lines")
    assert q.check("\n\n   \n", "code") == "code: empty"
    assert q.check(MASH, "code") is None  # mash-looking identifiers are not judged in code


def test_gopher_quality_rules_on_web_text(q):
    long_words = " ".join(["incomprehensibilities"] * 60) + "."
    assert q.check(long_words, "web").startswith("gopher-quality: mean word length")
    hashes = " ".join(f"#tag{i} word" for i in range(60))
    assert q.check(hashes, "web").startswith("gopher-quality: ")
    no_stop = " ".join(f"Apples oranges bananas pears{i}." for i in range(20))
    assert q.check(no_stop, "web").startswith("gopher-quality: 0 English stop words")


def test_repetition_measures():
    text = "one two three four five six " * 10
    t = TextStats(text)
    assert stats.top_ngram_chars(t, 2) == 10 * len("one two")
    # All but the first 5 words sit inside repeats of an earlier 5-gram.
    assert stats.dup_ngram_chars(t, 5) == sum(map(len, text.split()[6:]))
    assert stats.dup_ngram_chars(TextStats("a b c d e f g h i j"), 5) == 0
    assert stats.duplicates(["x", "yy", "x", "yy", "x"]) == (3, 4)


def _odd_texts(seed: int, n: int, max_tokens: int = 80) -> list[str]:
    """Random texts from tokens that exercise the byte classes (whitespace kinds, punctuation, non-ASCII, mash)."""
    rng = np.random.default_rng(seed)
    pool = ["\x00", "\r\n", "\n\n", "\n", "\t", "\x0b", "\x0c", "\x1c", "\u00a0", "\u2028", "\ud83d", "😀", "é", "١٢",
            "—", "...", "…", " ...\n", "word", "WORD", "Strengths", "•", "- ", "{", "#", "asdf", "QWER", "erty",
            "zxcvb", "2023", "bcdfg", "hjkl", "rhythm", "lorem", "42", " ", "  ", "the", "of", "and", "a", ".", "?!",
            "x" * 7, "http://x.io", ":tada:", "<@U1>", "Привет", "中文", "ſ", "ı"]
    return ["".join(rng.choice(pool, int(rng.integers(0, max_tokens)))) for _ in range(n)]


def test_word_statistics_match_their_definitions():
    # The shared statistics take shortcuts (byte classes, sparse counts, totals over the text); each must agree
    # with its plain definition over the words, as bytes.split() (the same whitespace) finds them.
    for text in _odd_texts(4, 300) + [PROSE, CV, CHAT, CODE, MASH, "", " ", "a"]:
        t = TextStats(text)
        raw = text.encode("utf-8", "replace")
        words = raw.split()
        starts, ends = t.spans
        assert [raw[s:e] for s, e in zip(starts, ends, strict=True)] == words
        chars = [len(w.decode()) for w in words]
        assert t.word_chars.tolist() == chars
        punct = [sum(c in b"!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~" for c in w) for w in words]
        assert t.word_chars_less_punct == sum(chars) - sum(punct)
        has_letter = [any(bytes([c]).isalpha() or c >= 0xC0 for c in w) for w in words]  # ASCII or lead bytes
        assert t.word_has_letter.tolist() == has_letter
        for mask in (t.has(stats.PUNCT), t.has(stats.LETTER), t.has(stats.UPPER), np.zeros(len(raw), bool)):
            expected = [int(mask[s:e].sum()) for s, e in zip(starts, ends, strict=True)]
            assert stats.per_word(mask, starts, ends).tolist() == expected
            assert stats.per_word(mask, starts[::3], ends[::3]).tolist() == expected[::3]


def _gibberish_reference(text: str, g) -> str | None:
    """Gibberish's rule word by word, as its docstring states it."""
    rows = ("qwertyuiop", "asdfghjkl", "zxcvbnm")
    keys = {row[i:i + 4] for row in rows for i in range(len(row) - 3)}
    data = text.encode("utf-8", "replace")
    words = [m.group() for m in re.finditer(rb"[^ \t\n\r\x0b\x0c]+", data) if m.end() <= g.sample_bytes]
    n_mash = n_candidates = 0
    for w in words:
        if len(w) < 4:
            continue
        low = w.lower().decode("latin-1")
        mash_like = (not any(c in b"aeiouyAEIOUY" for c in w) or bool(re.search("[bcdfghj-np-tv-xz]{5}", low))
                     or any(low[i:i + 4] in keys for i in range(len(low) - 3)))
        candidate = w.isalpha() and not w.isupper()
        n_candidates += candidate
        n_mash += mash_like and candidate and low not in _NOT_MASH
    if n_mash >= g.min_mash_words and n_mash / n_candidates >= g.max_fraction:
        return f"{g.name}: {n_mash} of {n_candidates} words look like keyboard mash"
    return None


def test_gibberish_counts_words_as_its_docstring_says():
    texts = _odd_texts(5, 400) + [MASH, PROSE, MASH + " " + PROSE, "Strengths lengths http https " * 5]
    for g in (Gibberish(), Gibberish(max_fraction=0.0, min_mash_words=1), Gibberish(sample_bytes=40)):
        for text in texts:
            assert g(TextStats(text)) == _gibberish_reference(text, g), (g, text)


def test_line_counts_match_a_loop_over_the_lines():
    from flaxgpt.ingest.quality.web import _ELLIPSIS_LINE_ENDS, _count, _non_blank_lines

    for text in _odd_texts(6, 300) + ["", "\n", "\n\n", "a\n\n\nb\n", "x....\n...\n…  \n..", "\n\na\n"]:
        lines = text.split("\n")
        assert _non_blank_lines(lines) == re.split(r"\n+", text)
        expected = sum(line.rstrip().endswith(("...", "…")) for line in lines)
        assert sum(_count(p, text) for p in _ELLIPSIS_LINE_ENDS) == expected


def test_content_shortcuts_never_skip_a_link_or_emoji():
    from flaxgpt.ingest.quality import content

    texts = _odd_texts(7, 300) + ["HTTPS://X.COM", "<MAİLTO:a@b.c>", "<maılto:a@b.c>", "wWw.x.org", "x:tada:"]
    for text in texts:
        for speakers in (False, True):
            bare = content._SPEAKER.sub("", text) if speakers else text
            if content._LINK.search(bare):
                assert content._may_have_link(TextStats(text))
            if content._SHORTCODE.search(content._NOT_WORDS.sub(" ", content._LINK.sub(" ", bare))):
                assert not text.isascii() or content._SHORTCODE.search(text)


def test_language_identification_is_offline(monkeypatch):
    def no_network(*args, **kwargs):
        raise OSError("network access attempted")

    monkeypatch.setattr(socket.socket, "connect", no_network)
    monkeypatch.setattr(socket, "create_connection", no_network)
    langid._detector.cache_clear()  # load the model again, under the block
    try:
        lang, score = langid.language(DUTCH)
        assert lang == "nl" and score > 0.9
        assert langid.language(PROSE)[0] == "en"
        assert langid.language("12 34 ... !!") == ("und", 0.0)
    finally:
        langid._detector.cache_clear()


def test_languages_can_be_restricted_but_code_and_unsure_text_are_not_judged():
    q = QualityFilter(QualityConfig(languages=("en",)))
    assert q.check(DUTCH, "prose").startswith("language: nl (0.9")
    assert q.check(PROSE, "prose") is None
    assert q.check(CODE, "code") is None
    assert q.language(CODE, "code") is None
    unsure = "Ok ja"
    assert q.language(unsure, "chat") is None and q.check(unsure, "chat") is None
    assert QualityFilter().check(DUTCH, "prose") is None  # by default every language is kept...
    result = QualityFilter().assess(DUTCH, "prose")
    assert (result.reason, result.language) == (None, "nl") and result.language_score > 0.9  # ...and reported


def test_profile_overrides():
    q = QualityFilter(QualityConfig(overrides={"prose": {"length": {"min_words": 10}}, "web": {"c4": None}}))
    assert q.check("A short note to myself about the trip.", "prose").startswith("length: 8 words < 10")
    assert QualityFilter().check("A short note to myself about the trip.", "prose") is None
    assert "c4" not in [f.name for f in q.profiles["web"]]
    with pytest.raises(ValueError, match="has no filter 'nope'"):
        QualityFilter(QualityConfig(overrides={"prose": {"nope": None}}))
    with pytest.raises(ValueError, match="unknown quality profile"):
        QualityFilter(QualityConfig(overrides={"tweets": {}}))


def test_from_config_takes_the_ingest_section():
    q = QualityFilter.from_config({"enabled": True, "languages": ["en", "nl"], "min_language_score": 0.7,
                                   "perplexity_run": "", "perplexity_max": 1000.0})
    assert q.config.languages == ("en", "nl") and q.config.min_language_score == 0.7
    with pytest.raises(ValueError, match="unknown quality settings"):
        QualityFilter.from_config({"langauges": ["en"]})


def test_filter_pickles_and_decides_deterministically(q):
    q.check(PROSE, "prose")  # the language model is loaded in this process
    clone = pickle.loads(pickle.dumps(q))
    docs = [(LEGIT[k], k) for k in sorted(LEGIT)] + [(MASH, "chat"), (GIANT_LINE, "prose"), (DUTCH, "prose")]
    assert [clone.check(t, k) for t, k in docs] == [q.check(t, k) for t, k in docs]


def test_a_large_document_is_judged_whole():
    rng = np.random.default_rng(0)
    vocab = np.array(sorted(set(PROSE.lower().replace(".", "").replace(",", "").replace(":", "").split())))
    sentences = (" ".join(rng.choice(vocab, 15)).capitalize() + "." for _ in range(20_000))
    text = "\n\n".join(" ".join(group) for group in zip(*[sentences] * 5, strict=False))  # ~1.8 MB
    assert len(text) > 1_500_000
    assert QualityFilter().check(text, "prose") is None
    # The same text with its second half a copy of the first is caught as repetition.
    half = text[: len(text) // 2]
    assert QualityFilter().check(half + "\n\n" + half, "prose").startswith("repetition: ")


# ---------------------------------------------------------------------------------------------------------------
# Perplexity under a tiny model trained in the test

SENTENCES = ["the cat sat on the mat.", "the dog sat on the rug.", "a cat and a dog sat on the mat.",
             "the dog ran to the cat.", "the cat ran to the rug."]


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory, optimized_module):
    from flaxgpt.config import default_config, validate
    from flaxgpt.data.tokenize import tokenize_paths
    from flaxgpt.launch.train import train

    root = tmp_path_factory.mktemp("ppl")
    corpus = root / "corpus"
    corpus.mkdir()
    rng = np.random.default_rng(0)
    for i in range(40):
        (corpus / f"{i:02d}.txt").write_text(" ".join(rng.choice(SENTENCES, 12)))
    shards = root / "shards"
    tokenize_paths([corpus], shards, name="cats", progress=False)
    c = default_config()
    c.model.update(vocab_size=50257, n_layer=1, n_head=2, d_model=32, max_len=32)
    c.data.seq_len = 32
    c.data.tokenizer = "gpt2"
    c.data.sources.cats = {"path": str(shards), "weight": 1.0}
    c.train.update(steps=40, batch_size=8, lr=1e-2, warmup_steps=2, eval_every=0, log_every=10)
    c.checkpoint.update(every=20, keep=1, async_save=False)
    c.run.dir = str(root / "run")
    validate(c)
    train(c, show_progress=False)
    return root / "run"


def test_perplexity_filter_scores_with_a_trained_model(tiny_run):
    ppl = PerplexityScorer(tiny_run, batch_size=4)
    assert ppl.step == 40  # the latest checkpoint
    in_domain = "the cat sat on the rug. the dog ran to the mat."
    junk = "Quantum zebra invoices 7741 xylophone; deprecated glacier syntax!!"
    scores = ppl.perplexities([in_domain, junk, "", in_domain])
    assert scores.shape == (4,) and math.isnan(scores[2]) and scores[0] == pytest.approx(scores[3], rel=1e-5)
    assert scores[0] < scores[1] / 10  # the model learned its corpus
    threshold = math.sqrt(scores[0] * scores[1])
    gate = PerplexityFilter(PerplexityScorer(tiny_run), threshold=threshold)
    assert gate.check(in_domain) is None
    # Scored alone rather than in a batch of 4, the junk's perplexity differs in its last float32 digits.
    name, scored, limit = re.fullmatch(r"(\w+): (\d+) > (\d+)", gate.check(junk)).groups()
    assert name == "perplexity" and float(scored) == pytest.approx(scores[1], rel=1e-4)
    assert limit == f"{threshold:.0f}"
    assert gate.check("") is None  # nothing to score: kept


def test_quality_filter_applies_the_perplexity_filter(tiny_run):
    q = QualityFilter(QualityConfig(perplexity_run=str(tiny_run), perplexity_max=50.0), PerplexityScorer)
    assert q.check("Quantum zebra invoices 7741 xylophone; deprecated glacier syntax!!", "chat").startswith(
        "perplexity: ")
    assert pickle.loads(pickle.dumps(q))._perplexity is None  # the model is not pickled


def test_perplexity_filter_needs_a_run_directory(tmp_path):
    with pytest.raises(FileNotFoundError, match="not a run directory"):
        PerplexityScorer(tmp_path)


def test_perplexity_run_needs_a_scorer():
    with pytest.raises(ValueError, match="quality.perplexity_run"):
        QualityFilter(QualityConfig(perplexity_run="runs/any"))
    with pytest.raises(ValueError, match="quality.perplexity_run"):
        QualityFilter.from_config({"perplexity_run": "runs/any"})


def test_odd_input_never_crashes():
    rng = np.random.default_rng(3)
    pool = ["\x00", "\r\n", "\n\n", "\t", "\u00a0", "\ud83d", "😀", "é", "١٢", "—", "...", "word", "WORD", "•",
            "{", "#", "asdf", "lorem", "42", " ", "<|endoftext|>", "\x1c", "\ufeff", "x" * 50]
    q = QualityFilter(QualityConfig(languages=("en",)))
    for _ in range(200):
        text = "".join(rng.choice(pool, int(rng.integers(0, 80))))
        for kind in q.profiles:
            reason = q.check(text, kind)
            assert reason is None or ": " in reason
        q.language(text, "chat")
