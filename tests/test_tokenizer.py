"""The bundled GPT-2 tokenizer: exact ids, no control tokens from text, lossless round trips."""

import pytest

from flaxgpt.tokenizer import EOT, FLAXGPT_SPECIALS, MAX_VOCAB, get_tokenizer


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
