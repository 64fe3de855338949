"""Junk in any text, whatever its kind: placeholder text (lorem ipsum) and keyboard mash."""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from flaxgpt.ingest.hashing import span_hashes
from flaxgpt.ingest.quality.stats import CONSONANT, SPACE, UPPER, VOWEL, TextStats, per_word

_LOREM = re.compile(r"lorem\s+ipsum", re.IGNORECASE)


@dataclass(frozen=True)
class LoremIpsum:
    """Placeholder text (templates that were never filled in)."""

    name: ClassVar[str] = "lorem-ipsum"

    def __call__(self, t: TextStats) -> str | None:
        # The substring test goes first: a case-insensitive regex is 8x slower to scan a text that lacks it.
        found = "lorem" in t.lower and _LOREM.search(t.text)
        return f"{self.name}: placeholder text" if found else None


_ROWS = ("qwertyuiop", "asdfghjkl", "zxcvbnm")
# Real words without vowels or with 5 consonants in a row that technical writing uses, lowercase.
_NOT_MASH = ("http", "https", "html", "xhtml", "dhtml", "grpc", "sftp", "mkdir", "rmdir", "lxml", "hmmm", "shhh",
             "psst", "pfft", "brrr", "grrr", "argh", "nths", "tsktsk", "strengths", "lengths", "twelfths")


def _key_table() -> bytes:
    """A translate table giving each letter (either case) its keyboard key as row * 16 + column + 1, others 0:
    y is the key right of x on a row exactly when key(y) == key(x) + 1 and key(x) != 0 (rows are 16 apart)."""
    table = bytearray(256)
    for r, row in enumerate(_ROWS):
        for c, letter in enumerate(row.encode()):
            table[letter] = table[letter - 32] = r * 16 + c + 1
    return bytes(table)


_KEY = _key_table()


@functools.cache
def _not_mash_hashes() -> np.ndarray:
    buf = np.frombuffer(" ".join(_NOT_MASH).encode(), np.uint8)
    ends = np.cumsum([len(w) + 1 for w in _NOT_MASH]) - 1
    return span_hashes(buf, ends - np.array([len(w) for w in _NOT_MASH]), ends)


def _lower_word_hashes(data: bytes, starts: np.ndarray, ends: np.ndarray) -> np.ndarray:
    """``span_hashes`` of the spans of ``data`` with ASCII letters lowercased (OR 0x20, as the words are letters).

    The spans are copied end to end first: a span's hash does not depend on where it sits, and hashing only
    these few words is cheaper than a prefix sum over the whole text.
    """
    if not len(starts):
        return np.empty(0, np.uint64)
    lengths = ends - starts
    new_ends = np.cumsum(lengths)
    new_starts = new_ends - lengths
    gather = np.arange(int(new_ends[-1])) + np.repeat(starts - new_starts, lengths)
    words = np.frombuffer(data, np.uint8)[gather] | np.uint8(0x20)
    return span_hashes(words, new_starts, new_ends)


def _runs(flags: np.ndarray, k: int) -> np.ndarray:
    """One flag per byte: it starts ``k`` flagged bytes in a row (the last k - 1 bytes never do)."""
    run = np.zeros(len(flags), bool)
    if len(flags) >= k:
        run[: len(flags) - k + 1] = flags[: len(flags) - k + 1]
        for i in range(1, k):
            run[: len(flags) - k + 1] &= flags[i: len(flags) - k + 1 + i]
    return run


def _odd_starts(data: bytes, cls: np.ndarray) -> np.ndarray:
    """One flag per byte of ``data`` (``cls``: its class flags): it starts 5 consonants in a row, or 4
    neighbouring keys of a keyboard row."""
    odd = _runs((cls & CONSONANT) != 0, 5)
    key = np.frombuffer(data.translate(_KEY), np.uint8)
    next_key = np.zeros(len(key), bool)  # byte i+1 is the key right of byte i
    next_key[:-1] = (key[1:] == key[:-1] + np.uint8(1)) & (key[:-1] != 0)
    return odd | _runs(next_key, 3)


@dataclass(frozen=True)
class Gibberish:
    """Keyboard mash: many words that no language spells.

    A candidate word is 4+ ASCII letters, not all capitals (acronyms). It looks like mash if it has
    no vowel, a run of 5+ consonants, or 4 neighbouring keys of a keyboard row ("asdf", "hjkl").
    The document is dropped when at least ``min_mash_words`` of its candidates, and a share of
    ``max_fraction`` or more, look like mash. Only the first ``sample_bytes`` bytes are examined.
    """

    name: ClassVar[str] = "gibberish"
    max_fraction: float = 0.5
    min_mash_words: int = 4
    sample_bytes: int = 100_000

    def __call__(self, t: TextStats) -> str | None:
        starts, ends = t.spans
        inside = int(np.searchsorted(ends, self.sample_bytes, side="right"))  # the words wholly in the sample
        if inside < max(1, self.min_mash_words):  # (a text without words has no mash)
            return None
        starts, ends = starts[:inside], ends[:inside]
        data = t.raw[: ends[-1]]  # the bytes of whole words only
        length = ends - starts
        long = length >= 4
        cls = t.classes[: ends[-1]]
        # Counted per word from sparse flags (see stats.per_word). A word of 4+ bytes has no vowel when each of
        # its first length - 3 bytes starts 4 bytes in a row that are no vowel (nor whitespace, which ends words).
        no_vowel = per_word(_runs((cls & (VOWEL | SPACE)) == 0, 4), starts, ends) == length - 3
        mash = long & (no_vowel | (per_word(_odd_starts(data, cls), starts, ends) > 0))
        # Mash-like words first: clean text has fewer than ``min_mash_words`` and is settled here.
        if mash.sum() < self.min_mash_words:
            return None
        # Candidates: no byte that is not an ASCII letter, and not every byte a capital.
        not_alpha, upper = (cls & (VOWEL | CONSONANT | SPACE)) == 0, (cls & UPPER) != 0

        def candidates(at: np.ndarray) -> np.ndarray:
            """Which of the words ``at`` are candidates."""
            s, e = starts[at], ends[at]
            return long[at] & (per_word(not_alpha, s, e) == 0) & (per_word(upper, s, e) < e - s)

        # Then the mash-like candidates that are not real words: the few mash-like words are looked at first, and
        # all the candidates are counted only for a document that has ``min_mash_words`` of them (each early
        # return keeps a document that the full count would keep too).
        at = np.flatnonzero(mash)
        at = at[candidates(at)]
        if len(at) < self.min_mash_words:
            return None
        at = at[~np.isin(_lower_word_hashes(data, starts[at], ends[at]), _not_mash_hashes())]
        n_mash = len(at)
        if n_mash < self.min_mash_words:
            return None
        n_candidates = int(candidates(np.arange(len(starts))).sum())
        if n_mash / n_candidates >= self.max_fraction:
            return f"{self.name}: {n_mash} of {n_candidates} words look like keyboard mash"
        return None
