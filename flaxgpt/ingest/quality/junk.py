"""Junk in any text, whatever its kind: placeholder text (lorem ipsum) and keyboard mash."""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from flaxgpt.ingest.hashing import span_hashes
from flaxgpt.ingest.quality.stats import TextStats, per_word

_LOREM = re.compile(r"lorem\s+ipsum", re.IGNORECASE)


@dataclass(frozen=True)
class LoremIpsum:
    """Placeholder text (templates that were never filled in)."""

    name: ClassVar[str] = "lorem-ipsum"

    def __call__(self, t: TextStats) -> str | None:
        # The substring test goes first: a case-insensitive regex is 8x slower to scan a text that lacks it.
        found = "lorem" in t.text.lower() and _LOREM.search(t.text)
        return f"{self.name}: placeholder text" if found else None


_VOWEL = np.zeros(256, bool)
_VOWEL[list(b"aeiouyAEIOUY")] = True
_ALPHA = np.zeros(256, bool)
_ALPHA[list(range(65, 91)) + list(range(97, 123))] = True
_UPPER = np.zeros(256, bool)
_UPPER[list(range(65, 91))] = True
_ROWS = ("qwertyuiop", "asdfghjkl", "zxcvbnm")
# Real words without vowels or with 5 consonants in a row that technical writing uses, lowercase.
_NOT_MASH = ("http", "https", "html", "xhtml", "dhtml", "grpc", "sftp", "mkdir", "rmdir", "lxml", "hmmm", "shhh",
             "psst", "pfft", "brrr", "grrr", "argh", "nths", "tsktsk", "strengths", "lengths", "twelfths")
_NEXT_KEY = np.zeros((256, 256), bool)  # (x, y): y is the key right of x on a keyboard row (lowercase)
for _row in _ROWS:
    _NEXT_KEY[list(_row[:-1].encode()), list(_row[1:].encode())] = True


@functools.cache
def _not_mash_hashes() -> np.ndarray:
    buf = np.frombuffer(" ".join(_NOT_MASH).encode(), np.uint8)
    ends = np.cumsum([len(w) + 1 for w in _NOT_MASH]) - 1
    return span_hashes(buf, ends - np.array([len(w) for w in _NOT_MASH]), ends)


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
        b = t.buf[: self.sample_bytes]
        starts, ends = t.spans
        inside = ends <= len(b)
        starts, ends = starts[inside], ends[inside]
        if len(starts) < self.min_mash_words:
            return None
        b = b[: ends[-1]]  # the bytes of whole words only
        length = ends - starts
        count = functools.partial(per_word, starts=starts, ends=ends)
        alpha = _ALPHA[b]
        lower = b | np.uint8(0x20)
        consonant = alpha & ~_VOWEL[b]
        odd = np.zeros(len(b), bool)  # starts 5 consonants in a row, or 4 neighbouring keys of a keyboard row
        odd[:-4] = consonant[:-4] & consonant[1:-3] & consonant[2:-2] & consonant[3:-1] & consonant[4:]
        pair = _NEXT_KEY[lower[:-1], lower[1:]] & alpha[:-1] & alpha[1:]
        odd[:-3] |= pair[:-2] & pair[1:-1] & pair[2:]
        # Mash-like words first: clean text has fewer than ``min_mash_words`` and is settled here.
        mash = (length >= 4) & ((count(_VOWEL[b]) == 0) | (count(odd) > 0))
        if mash.sum() < self.min_mash_words:
            return None
        candidate = (length >= 4) & (count(alpha) == length) & (count(_UPPER[b]) < length)
        n_candidates = int(candidate.sum())
        mash &= candidate
        if mash.sum() >= self.min_mash_words:  # only the mash-like words are looked up among the real ones
            at = np.nonzero(mash)[0]
            mash[at[np.isin(span_hashes(lower, starts[at], ends[at]), _not_mash_hashes())]] = False
        n_mash = int(mash.sum())
        if n_mash >= self.min_mash_words and n_mash / n_candidates >= self.max_fraction:
            return f"{self.name}: {n_mash} of {n_candidates} words look like keyboard mash"
        return None
