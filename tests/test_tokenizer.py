"""The bundled GPT-2 tokenizer: exact ids, no control tokens from text, lossless round trips."""

import pytest

from flaxgpt.data.tokenizer import EOT, FLAXGPT_SPECIALS, MAX_VOCAB, get_tokenizer


def test_hello_world_ids():
    assert get_tokenizer("gpt2").encode("Hello world") == [15496, 995]


@pytest.mark.parametrize("name", ["gpt2", "flaxgpt"])
def test_special_token_text_is_ordinary_text(name):
    tok = get_tokenizer(name)
    specials = set(tok.special_ids.values())
    for text in (EOT, *FLAXGPT_SPECIALS, f"a{EOT}b <|user|> hi"):
        ids = tok.encode(text)
        assert not specials & set(ids), text
        assert tok.decode(ids) == text
    assert not specials & {i for ids in tok.encode_batch([EOT, "<|assistant|>"]) for i in ids}


@pytest.mark.parametrize("text", [
    "héllo wörld — naïve café",
    "你好，世界。こんにちは 안녕하세요",
    "emoji 👋🏽 and ZWJ 👨‍👩‍👧 and flags 🇳🇿",
    "tabs\tand\nnewlines\r\n  indent\n\n\ndef f(x):\n    return x ** 2\n",
    "",
])
def test_decode_encode_round_trip(text):
    tok = get_tokenizer("gpt2")
    assert tok.decode(tok.encode(text)) == text


def test_metadata_and_ids():
    gpt2, ours = get_tokenizer("gpt2"), get_tokenizer("flaxgpt")
    assert gpt2.vocab_size == 50257 and gpt2.eot_id == 50256
    assert ours.vocab_size == 50257 + len(FLAXGPT_SPECIALS) < MAX_VOCAB
    assert ours.eot_id == 50256 and ours.special_ids["<|system|>"] == 50257
    assert gpt2.metadata()["hash"] != ours.metadata()["hash"]
    assert gpt2.metadata() == get_tokenizer("gpt2").metadata()
    with pytest.raises(ValueError, match="unknown tokenizer"):
        get_tokenizer("llama")


# --- <|pad|>, personal vocabulary, spec and hash ------------------------------------------------------------

import json  # noqa: E402

import numpy as np  # noqa: E402

from flaxgpt.data.shards import ShardSet, ShardWriter  # noqa: E402
from flaxgpt.data.tokenizer import (  # noqa: E402
    PAD,
    check_compatible,
    load_spec,
    save_spec,
    term_kind,
    tokenizer_from_spec,
)

TERMS = (" Halvorsen", "Halvorsen", " Quillwork", "data_loader", " flax-gpt", " Glimmer-350M")
SENTENCE = "Ines Halvorsen wrote flax-gpt at Quillwork.\nHalvorsen's `data_loader` feeds Glimmer-350M."


def personal():
    return get_tokenizer("flaxgpt", TERMS)


def test_existing_ids_and_recorded_hash_do_not_move():
    gpt2, ours, mine = get_tokenizer("gpt2"), get_tokenizer("flaxgpt"), personal()
    # Checkpoints and shards in runs/ record this hash: it must stay.
    assert gpt2.metadata() == {"name": "gpt2", "hash": "a2adfdb9b2d5c5ca", "vocab_size": 50257, "eot_id": 50256}
    assert ours.special_ids == {EOT: 50256, "<|system|>": 50257, "<|user|>": 50258, "<|assistant|>": 50259,
                                "<|end|>": 50260, "<|constitutional|>": 50261, "<|critique|>": 50262,
                                "<|revision|>": 50263, PAD: 50264}
    assert ours.pad_id == 50264 and ours.vocab_size == 50265 and gpt2.pad_id is None
    assert mine.special_ids == ours.special_ids and mine.eot_id == 50256 and mine.pad_id == 50264
    assert mine.personal_ids == {t: 50265 + i for i, t in enumerate(TERMS)}
    assert mine.vocab_size == 50265 + len(TERMS)
    assert get_tokenizer("gpt2", ["Halvorsen"]).personal_ids == {"Halvorsen": 50257}
    text = "Hello world, plain text with code: x = f(y) - z_w;\n\tdone."
    assert gpt2.encode(text) == ours.encode(text) == mine.encode(text)


def test_personal_terms_are_one_token_each_and_round_trip():
    tok = personal()
    ids = tok.encode(SENTENCE)
    pieces = [tok.decode([i]) for i in ids]
    for term in (" Halvorsen", " flax-gpt", " Quillwork", "Halvorsen", "data_loader", " Glimmer-350M"):
        assert term in pieces, (term, pieces)
    assert tok.decode(ids) == SENTENCE
    assert len(ids) < len(get_tokenizer("flaxgpt").encode(SENTENCE))
    for term, tid in tok.personal_ids.items():
        assert tok.encode(term) == [tid]
        assert tok.decode([tid]) == term
    assert tok.encode_batch([SENTENCE, "", "Halvorsen"]) == [ids, [], [tok.personal_ids["Halvorsen"]]]


@pytest.mark.parametrize("text", [
    " Halvorsens",  # a longer word: GPT-2 has one pre-token " Halvorsens", so no term inside it
    " VanHalvorsen",  # mid-word
    " Quillworks",
    " data_loaders",
    " flax-gpts",
    "xdata_loader",
])
def test_terms_only_match_whole_words(text):
    tok = personal()
    ids = tok.encode(text)
    assert not set(ids) & set(tok.personal_ids.values()), [tok.decode([i]) for i in ids]
    assert tok.decode(ids) == text


@pytest.mark.parametrize("text", [
    SENTENCE,
    "my_data_loader, data_loader2 and flax-gpt-2 (flax-gpt)\n\n  Halvorsen\tHalvorsen",
    "héllo wörld — naïve café Halvorsen 你好 Halvorsen👋🏽 data_loader🇳🇿",
    "tabs\tand\nnewlines\r\n  indent\n\n\ndef data_loader(x):\n    return x ** 2\n",
    "-_-_ data_loader_ _data_loader - flax- -gpt Glimmer-350M-x",
    "",
])
def test_personal_round_trip_and_batch_equal_single(text):
    tok = personal()
    assert tok.decode(tok.encode(text)) == text
    assert tok.encode_batch([text, text], num_threads=2) == [tok.encode(text)] * 2


def test_special_token_text_stays_text_with_personal_terms():
    tok = personal()
    controls = set(tok.special_ids.values())
    for text in (EOT, PAD, *FLAXGPT_SPECIALS, f"Halvorsen{EOT}data_loader<|pad|> Quillwork<|user|>"):
        ids = tok.encode(text)
        assert not controls & set(ids), text
        assert tok.decode(ids) == text
    assert not controls & {i for ids in tok.encode_batch([EOT, PAD]) for i in ids}


def test_term_forms_and_bad_terms_are_refused():
    assert term_kind(" Halvorsen") == term_kind("Ørsted") == "word"
    assert term_kind("data_loader") == term_kind(" Glimmer-1B") == "compound"
    for bad in ("", " ", "  two", "3d-model", "bf16", "a b", "x.y", "data__loader", "end-", "<|pad|>"):
        assert term_kind(bad) is None, bad
        with pytest.raises(ValueError, match="personal term"):
            get_tokenizer("flaxgpt", [bad])
    with pytest.raises(ValueError, match="already one GPT-2 token"):
        get_tokenizer("flaxgpt", [" Hello"])
    with pytest.raises(ValueError, match="listed twice"):
        get_tokenizer("flaxgpt", ["Halvorsen", "Halvorsen"])


def _words(n: int) -> list[str]:
    """n distinct letter-only words that GPT-2 does not have as single tokens."""
    letters = "qxzjvk"
    out = []
    for i in range(n):
        w = ""
        while True:
            w += letters[i % 6]
            i //= 6
            if not i:
                break
        out.append("Zqj" + w + "q")
    return out


def test_vocabulary_stays_below_uint16_limit():
    room = MAX_VOCAB - 1 - 50265
    fits = get_tokenizer("flaxgpt", _words(room))
    assert fits.vocab_size == MAX_VOCAB - 1
    with pytest.raises(ValueError, match="uint16"):
        get_tokenizer("flaxgpt", _words(room + 1))


def test_spec_round_trip_and_hash_covers_terms(tmp_path):
    tok = personal()
    for t in (get_tokenizer("gpt2"), get_tokenizer("flaxgpt"), tok):
        again = tokenizer_from_spec(json.loads(json.dumps(t.spec())))
        assert again.metadata() == t.metadata() and again.spec() == t.spec()
        assert again.encode(SENTENCE) == t.encode(SENTENCE)
    assert tok.name == "flaxgpt+personal" and tok.base_name == "flaxgpt"
    hashes = {get_tokenizer("flaxgpt").metadata()["hash"], tok.metadata()["hash"],
              get_tokenizer("flaxgpt", TERMS[:-1]).metadata()["hash"],
              get_tokenizer("flaxgpt", TERMS[::-1]).metadata()["hash"],
              get_tokenizer("gpt2", TERMS).metadata()["hash"]}
    assert len(hashes) == 5
    with pytest.raises(ValueError, match="tokenizer.json"):
        get_tokenizer(tok.name)

    assert save_spec(tmp_path, tok) == tmp_path / "tokenizer.json"
    assert tokenizer_from_spec(load_spec(tmp_path)).metadata() == tok.metadata()
    tampered = tok.spec()
    tampered["personal"][0][1] += 1
    with pytest.raises(ValueError, match="'personal' differs"):
        tokenizer_from_spec(tampered)
    with pytest.raises(ValueError, match="'hash' differs"):
        tokenizer_from_spec({**tok.spec(), "hash": "0" * 16})
    with pytest.raises(ValueError, match="unknown base"):
        tokenizer_from_spec({**tok.spec(), "base": "llama"})
    with pytest.raises(FileNotFoundError, match="tokenizer spec not found"):
        load_spec(tmp_path / "nowhere")
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "tokenizer.json").write_text("{not json")
    with pytest.raises(ValueError, match="not a valid tokenizer spec"):
        load_spec(tmp_path / "bad")


def test_check_compatible_names_both_sides():
    a, b = get_tokenizer("flaxgpt").metadata(), personal().metadata()
    check_compatible(a, dict(a), "shards in data/ vs checkpoint runs/x")
    with pytest.raises(ValueError) as err:
        check_compatible(a, b, "shards in data/ vs checkpoint runs/x")
    msg = str(err.value)
    assert "shards in data/ vs checkpoint runs/x" in msg and a["hash"] in msg and b["hash"] in msg


def test_personal_shards_decode_again_from_the_saved_spec(tmp_path):
    tok = personal()
    docs = [SENTENCE, "Halvorsen <|endoftext|> data_loader", "plain text"]
    with ShardWriter(tmp_path, "train", tokenizer_meta=tok.metadata(), source="me") as w:
        for d in docs:
            w.add(tok.encode(d))
    save_spec(tmp_path, tok)

    shards = ShardSet(tmp_path, "train")
    rebuilt = tokenizer_from_spec(load_spec(tmp_path))
    check_compatible(shards.tokenizer_meta, rebuilt.metadata(), f"shards in {tmp_path} vs their tokenizer.json")
    assert [rebuilt.decode(shards[i]) for i in range(len(shards))] == docs
    assert int(np.max(shards[0])) >= 50265  # personal ids survive the uint16 shard
    with pytest.raises(ValueError, match="tokenizers differ"):
        check_compatible(shards.tokenizer_meta, get_tokenizer("flaxgpt").metadata(), "shards vs flaxgpt")


def test_random_text_round_trips_and_matches_batch():
    tok = personal()
    rng = np.random.default_rng(0)
    atoms = [*TERMS, "data", "loader", "flax", "gpt", "Halvor", "sen", "-", "_", " ", "  ", "\n", "\t", "x", "Ø",
             "2", "350M", "'s", ".", "<|pad|>", EOT, "é", "👋🏽"]
    texts = ["".join(rng.choice(atoms, size=int(rng.integers(1, 30)))) for _ in range(300)]
    batch = tok.encode_batch(texts, num_threads=2)
    for text, ids in zip(texts, batch, strict=True):
        assert ids == tok.encode(text)
        assert tok.decode(ids) == text, text
        assert not set(ids) & set(tok.special_ids.values())


@pytest.mark.parametrize("name", ["gpt2", "flaxgpt"])
def test_encode_array_gives_the_ids_of_encode(name):
    # ingest writes tiktoken's numpy output instead of Tokenizer.encode's list: the ids must be the same.
    tok = get_tokenizer(name)
    texts = ["", "Hello world", "<|endoftext|> typed in a file <|pad|><|endof", "a<|endoftext|>b\n\n<|im_start|>",
             "naïve café 日本語 😀 \u00a0١٢", "broken \ud83d emoji", "  \n\t spaces   \r\n", "x" * 5000]
    for text in texts:
        ids = tok.encode_array(text)
        assert np.asarray(ids).tolist() == tok.encode(text), text
