"""Personal vocabulary: which terms are chosen, what they save, and how their embeddings start."""

from __future__ import annotations

from pathlib import Path

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.sharding import Mesh, NamedSharding
from jax.sharding import PartitionSpec as P

from flaxgpt.data.tokenizer import MAX_VOCAB, get_tokenizer
from flaxgpt.data.vocab import build_personal_vocab, personal_tokenizer, resize_embeddings
from flaxgpt.model.gpt import GPT, ModelConfig

BLOG = Path(__file__).parents[1] / "examples" / "persona" / "blog"


def test_frequent_multi_piece_terms_are_chosen_by_tokens_saved():
    base = get_tokenizer("flaxgpt")
    texts = (["Ines Halvorsen ships flax-gpt; the `data_loader` is fast. Halvorsen again."] * 6
             + ["A Zorbulax appears only four times."] * 4
             + ["the the the and of"] * 50)
    terms = build_personal_vocab(texts, base, max_terms=50)
    assert {" Halvorsen", " flax-gpt", "data_loader"} <= set(terms)
    assert " Zorbulax" not in terms  # 4 < min_count
    assert not {" the", " and", " of", " ships", " is", " Ines"} & set(terms)  # single tokens or < 3 pieces
    pieces = {t: len(base.encode(t)) for t in terms}
    counts = {t: sum(text.count(t) for text in texts) for t in terms}
    scores = [counts[t] * (pieces[t] - 1) for t in terms]
    assert scores == sorted(scores, reverse=True)
    assert all(pieces[t] >= 3 for t in terms)
    assert build_personal_vocab(texts[::-1], base, max_terms=50) == terms  # order of texts does not matter
    assert build_personal_vocab(texts, base, max_terms=2) == terms[:2]
    assert " Zorbulax" in build_personal_vocab(texts, base, 50, min_count=4)


def test_ties_are_broken_by_the_term_and_space_variants_are_separate():
    base = get_tokenizer("gpt2")
    # Same count, same piece count: alphabetical order decides.
    a, b = " Zqvorbin", " Qxvorbin"
    assert len(base.encode(a)) == len(base.encode(b))
    texts = [f"{a} {b}\nQxvorbin-data\n"] * 7
    terms = build_personal_vocab(texts, base, max_terms=10)
    assert terms.index(b) < terms.index(a)
    assert "Qxvorbin-data" in terms and "Qxvorbin" in terms  # the line-start word has no space
    with pytest.raises(ValueError, match="min_pieces"):
        build_personal_vocab(texts, base, 10, min_pieces=1)
    assert build_personal_vocab(texts, base, 0) == []
    room = MAX_VOCAB - 1 - base.vocab_size
    with pytest.raises(ValueError, match="uint16"):
        build_personal_vocab(texts, base, room + 1)


def test_persona_vocabulary_saves_tokens_and_round_trips():
    texts = [p.read_text() for p in sorted(BLOG.glob("*.md"))]
    assert len(texts) >= 5
    base = get_tokenizer("flaxgpt")
    terms = build_personal_vocab(texts, base, max_terms=200, min_count=3)
    assert {" Quillwork", " shardcat"} <= set(terms) and 20 <= len(terms) <= 200
    tok = personal_tokenizer(base, terms)
    assert tok.vocab_size == base.vocab_size + len(terms) and tok.personal == tuple(terms)
    for term, tid in tok.personal_ids.items():
        assert tid >= 50265 and tok.encode(term) == [tid]
    before = sum(map(len, base.encode_batch(texts)))
    after = tok.encode_batch(texts)
    assert sum(map(len, after)) < 0.99 * before  # a small corpus: about 1.7% fewer tokens
    assert [tok.decode(ids) for ids in after] == texts
    more = personal_tokenizer(tok, ["Qxvorbin"])  # extending keeps every earlier id
    assert more.personal_ids == {**tok.personal_ids, "Qxvorbin": tok.vocab_size}


def _emb(rows: int, d: int = 8, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).normal(size=(rows, d)).astype(np.float32)


def test_resize_embeddings_copies_known_rows_and_averages_pieces():
    old = get_tokenizer("gpt2")
    new = get_tokenizer("flaxgpt", [" Halvorsen", "data_loader"])
    emb = _emb(50304)
    wpe = np.ones((4, 8), np.float32)
    out = resize_embeddings({"wte": {"embedding": emb}, "wpe": {"embedding": wpe}}, old, new, 50304)
    got = out["wte"]["embedding"]
    assert got.shape == (50304, 8) and got.dtype == np.float32 and out["wpe"]["embedding"] is wpe
    np.testing.assert_array_equal(got[:50257], emb[:50257])  # GPT-2 ids and <|endoftext|> keep their rows
    np.testing.assert_allclose(got[50257:50265], np.broadcast_to(emb[:50257].mean(0), (8, 8)), rtol=1e-5)
    for term, tid in new.personal_ids.items():
        pieces = old.encode(term)
        assert len(pieces) >= 2
        np.testing.assert_allclose(got[tid], emb[pieces].mean(0), rtol=1e-5, atol=1e-6)
    assert not got[new.vocab_size:].any()  # padding rows
    assert emb.shape == (50304, 8)  # input untouched


def test_resize_embeddings_follows_terms_whose_ids_moved():
    old = get_tokenizer("flaxgpt", ["Qxvorbin", " Halvorsen"])
    new = get_tokenizer("flaxgpt", [" Halvorsen", "Zqjvorbin"])
    emb = _emb(50304, seed=1)
    got = resize_embeddings({"wte": {"embedding": emb}}, old, new, 50304)["wte"]["embedding"]
    np.testing.assert_array_equal(got[:50265], emb[:50265])
    np.testing.assert_array_equal(got[new.personal_ids[" Halvorsen"]], emb[old.personal_ids[" Halvorsen"]])
    np.testing.assert_allclose(got[new.personal_ids["Zqjvorbin"]], emb[old.encode("Zqjvorbin")].mean(0), rtol=1e-5)
    with pytest.raises(ValueError, match="vocab_padded=50000"):
        resize_embeddings({"wte": {"embedding": emb}}, old, new, 50000)
    with pytest.raises(ValueError, match="expected \\[rows >= 50267"):
        resize_embeddings({"wte": {"embedding": emb[:50000]}}, old, new, 50304)


def test_resize_embeddings_on_sharded_jax_arrays_and_boxes():
    old = get_tokenizer("gpt2")
    new = get_tokenizer("flaxgpt", [" Halvorsen", " flax-gpt"])
    emb = _emb(50304)
    expected = resize_embeddings({"wte": {"embedding": emb}}, old, new, 50432)["wte"]["embedding"]
    mesh = Mesh(np.array(jax.devices()), ("vocab",))
    sharding = NamedSharding(mesh, P("vocab", None))
    sharded = jax.device_put(jnp.asarray(emb, jnp.bfloat16), sharding)
    got = resize_embeddings({"wte": {"embedding": sharded}}, old, new, 50432)["wte"]["embedding"]
    assert isinstance(got, jax.Array) and got.dtype == jnp.bfloat16 and got.shape == (50432, 8)
    assert got.sharding.is_equivalent_to(sharding, 2)
    np.testing.assert_allclose(np.asarray(got, np.float32), expected, atol=0.05)

    boxed = nn.LogicallyPartitioned(jnp.asarray(emb), ("vocab", "embed"))
    out = resize_embeddings({"wte": {"embedding": boxed}}, old, new, 50432)["wte"]["embedding"]
    assert isinstance(out, nn.LogicallyPartitioned) and out.names == ("vocab", "embed")
    np.testing.assert_allclose(np.asarray(out.unbox()), expected, rtol=1e-5, atol=1e-6)


def test_resized_model_runs_with_the_personal_vocabulary():
    old = get_tokenizer("flaxgpt")
    new = get_tokenizer("flaxgpt", [" Halvorsen", "data_loader"])
    small = dict(max_len=16, n_layer=1, n_head=2, d_model=16)
    old_cfg, new_cfg = ModelConfig(vocab_size=old.vocab_size, **small), ModelConfig(vocab_size=new.vocab_size, **small)
    params = nn.unbox(GPT(old_cfg).init(jax.random.PRNGKey(0), jnp.zeros((1, 8), jnp.int32))["params"])
    params = resize_embeddings(params, old, new, new_cfg.vocab_padded)
    tokens = jnp.asarray([new.encode(" Halvorsen wrote data_loader")], jnp.int32)
    assert int(tokens.max()) >= 50265
    logits = GPT(new_cfg).apply({"params": params}, tokens)
    assert logits.shape == (1, tokens.shape[1], new_cfg.vocab_padded) and bool(jnp.isfinite(logits).all())
