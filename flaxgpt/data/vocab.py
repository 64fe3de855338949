"""Personal vocabulary: pick one person's frequent multi-piece terms, and start their embeddings well.

``build_personal_vocab`` counts the words and compound terms of a corpus (names, projects, technical
terms) that GPT-2 splits into many pieces, ranked by the tokens they would save; ``personal_tokenizer``
makes them single tokens (``flaxgpt.data.tokenizer`` explains how). ``resize_embeddings`` carries a model's
token embeddings over to the larger vocabulary, each new term starting as the mean of its old pieces.

The terms end up in ``tokenizer.json`` next to the shards and in checkpoints, so build the vocabulary
from text that has already been scrubbed of personal data and secrets.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np

from flaxgpt.data.tokenizer import MAX_TERM_CHARS, MAX_VOCAB, Tokenizer, get_tokenizer, term_kind

# One pass finds maximal runs where GPT-2 starts a pre-token: a letter (after an optional space), then
# letters/digits, then parts joined by - or _ (``data_loader``, `` flax-gpt``, ``Glimmer-1B``). The GPT-2
# words inside each distinct run (`` flax``, ``gpt``) are counted from the runs afterwards.
_RUN = re.compile(r" ?[^\W\d_][^\W_]*+(?:[-_][^\W_]++)*+")
_WORDS_IN_RUN = re.compile(r" ?[^\W\d_]+")
_GPT2_ORDINARY = 50256  # ids 0..50255 are GPT-2's byte-pair tokens, the same in every flaxgpt tokenizer
_MAX_DIGITS = 4  # more digits than this look like ids, hashes or keys, not terms


def build_personal_vocab(texts: Iterable[str], base: Tokenizer, max_terms: int, min_count: int = 5,
                         min_pieces: int = 3) -> list[str]:
    """Chooses up to ``max_terms`` frequent terms of ``texts`` that ``base`` splits into many tokens.

    Terms are case-sensitive words (with or without their leading space, as GPT-2 words carry one)
    and ``-``/``_`` compounds that occur at least ``min_count`` times and that ``base`` encodes in at
    least ``min_pieces`` tokens. They are ranked by tokens saved, ``count * (pieces - 1)``, ties broken
    by the term itself, so the result is deterministic. Returns the terms, best first.
    """
    if min_pieces < 2:
        raise ValueError(f"min_pieces must be >= 2 (a 1-piece term is already a token), got {min_pieces}")
    room = MAX_VOCAB - 1 - base.vocab_size
    if not 0 <= max_terms <= room:
        raise ValueError(f"max_terms must be in [0, {room}]: {base.name!r} has {base.vocab_size} ids and token "
                         f"shards store uint16 ids (vocabulary below {MAX_VOCAB}), got {max_terms}")
    if max_terms == 0:
        return []
    runs: Counter[str] = Counter()
    for text in texts:
        runs.update(_RUN.findall(text))
    counts: Counter[str] = Counter()
    for run, n in runs.items():
        for word in _WORDS_IN_RUN.findall(run):
            counts[word] += n
        if "-" in run or "_" in run:
            counts[run] += n
    known = set(base.personal)
    candidates = [t for t, c in counts.items()
                  if c >= min_count and t not in known and len(t) <= MAX_TERM_CHARS
                  and sum(ch.isdigit() for ch in t) <= _MAX_DIGITS and term_kind(t) is not None]
    pieces = base.encode_batch(candidates)
    saved = [(counts[t] * (len(p) - 1), t) for t, p in zip(candidates, pieces, strict=True) if len(p) >= min_pieces]
    saved.sort(key=lambda st: (-st[0], st[1]))
    return [t for _, t in saved[:max_terms]]


def personal_tokenizer(base: Tokenizer, terms: Sequence[str]) -> Tokenizer:
    """``base`` with ``terms`` appended to its personal vocabulary (ids after all existing ones)."""
    return get_tokenizer(base.base_name, (*base.personal, *terms))


def resize_embeddings(params: Mapping[str, Any], old: Tokenizer, new: Tokenizer, vocab_padded: int) -> Mapping:
    """A copy of ``params`` whose token embedding fits ``new`` (``vocab_padded`` rows) instead of ``old``.

    ``params["wte"]["embedding"]`` is [rows, d_model] (numpy or a possibly sharded jax array, or a flax
    box around one). In the result, a token both tokenizers have keeps its row (found by its text, so
    moved ids are followed); a personal term ``old`` lacks starts as the mean of the rows of the pieces
    ``old`` encodes it into; a special token ``old`` lacks starts as the mean of all old real rows; rows
    past ``new.vocab_size`` (padding, never a target) are zero. Other parameters are returned as they are.
    """
    leaf = params["wte"]["embedding"]
    boxed = hasattr(leaf, "unbox") and hasattr(leaf, "replace_boxed")
    emb = leaf.unbox() if boxed else leaf
    if emb.ndim != 2 or emb.shape[0] < old.vocab_size:
        raise ValueError(f"wte embedding has shape {emb.shape}: expected [rows >= {old.vocab_size}, d_model] for "
                         f"tokenizer {old.name!r}")
    if vocab_padded < new.vocab_size:
        raise ValueError(f"vocab_padded={vocab_padded} is smaller than tokenizer {new.name!r} ({new.vocab_size} ids)")
    src, pieces, seg, special_rows = _row_plan(old, new, vocab_padded)
    out = _apply_plan(emb, old.vocab_size, vocab_padded, src, pieces, seg, special_rows)
    out = leaf.replace_boxed(out) if boxed else out
    tree = {**params, "wte": {**params["wte"], "embedding": out}}
    return tree if type(params) is dict else type(params)(tree)  # e.g. a flax FrozenDict stays one


def _row_plan(old: Tokenizer, new: Tokenizer, vocab_padded: int) -> tuple[np.ndarray, ...]:
    """Where each new row comes from.

    Returns ``src`` [vocab_padded] (old row to copy, -1 if computed), ``pieces`` and ``seg`` (old ids
    and the new row each is averaged into, grouped by row) and the new rows that get the mean row.
    """
    src = np.full(vocab_padded, -1, dtype=np.int64)
    src[:_GPT2_ORDINARY] = np.arange(_GPT2_ORDINARY)
    old_special, old_personal = old.special_ids, old.personal_ids
    special_rows = []
    for tok, i in new.special_ids.items():
        if tok in old_special:
            src[i] = old_special[tok]
        else:
            special_rows.append(i)
    fresh = []
    for term, i in new.personal_ids.items():
        if term in old_personal:
            src[i] = old_personal[term]
        else:
            fresh.append((term, i))
    piece_lists = old.encode_batch([t for t, _ in fresh])
    pieces = np.fromiter((p for ps in piece_lists for p in ps), dtype=np.int64)
    seg = np.repeat(np.array([i for _, i in fresh], dtype=np.int64), [len(ps) for ps in piece_lists])
    return src, pieces, seg, np.array(special_rows, dtype=np.int64)


def _apply_plan(emb, n_old: int, vocab_padded: int, src: np.ndarray, pieces: np.ndarray, seg: np.ndarray,
                special_rows: np.ndarray):
    """Builds the new [vocab_padded, d_model] embedding from ``emb`` with jax.numpy or numpy, as ``emb`` is."""
    import jax  # here, not at the top: ingest imports this module and should not pay for loading jax

    on_jax = isinstance(emb, jax.Array)
    if on_jax:
        import jax.numpy as xp  # as jax above
    else:
        xp = np
        emb = np.asarray(emb)
    f32 = emb.astype(xp.float32)
    copied = xp.take(f32, xp.asarray(np.maximum(src, 0)), axis=0)
    computed = xp.zeros((vocab_padded, emb.shape[1]), xp.float32)
    if pieces.size:
        counts = np.bincount(seg, minlength=vocab_padded).astype(np.float32)
        gathered = xp.take(f32, xp.asarray(pieces), axis=0) / xp.asarray(counts[seg])[:, None]
        if on_jax:
            computed = computed + jax.ops.segment_sum(gathered, xp.asarray(seg), num_segments=vocab_padded)
        else:
            np.add.at(computed, seg, gathered)
    if special_rows.size:
        is_special = np.zeros(vocab_padded, dtype=bool)
        is_special[special_rows] = True
        computed = xp.where(xp.asarray(is_special)[:, None], f32[:n_old].mean(axis=0)[None, :], computed)
    out = xp.where(xp.asarray(src >= 0)[:, None], copied, computed).astype(emb.dtype)
    if on_jax and isinstance(emb.sharding, jax.sharding.NamedSharding):
        out = jax.device_put(out, emb.sharding)  # same mesh axes as before (vocab_padded is a multiple of 128)
    return out
