"""Per-document statistics computed once and shared by the quality filters: ``TextStats`` and n-gram measures."""

from __future__ import annotations

import functools
from collections.abc import Sequence
from typing import Any

import numpy as np

from flaxgpt.ingest.hashing import ngram_hashes, span_hashes
from flaxgpt.ingest.quality.langid import language

_WS = np.zeros(256, bool)
_WS[list(b" \t\n\r\x0b\x0c")] = True
_ASCII_PUNCT = np.zeros(256, bool)
_ASCII_PUNCT[list(b"!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~")] = True
LETTER = np.zeros(256, bool)  # ASCII letters, and lead bytes of non-ASCII characters (counted as letters)
LETTER[list(range(65, 91)) + list(range(97, 123)) + list(range(0xC0, 0x100))] = True


def per_word(mask: np.ndarray, starts: np.ndarray, ends: np.ndarray) -> np.ndarray:
    """How many bytes of each [start, end) span have ``mask`` (one flag per byte) set."""
    cum = np.zeros(len(mask) + 1, np.int64)
    np.cumsum(mask, out=cum[1:])
    return cum[ends] - cum[starts]


class TextStats:
    """One document's text with lazily computed statistics shared by all filters.

    Words are whitespace-separated tokens (punctuation stays attached); lengths are in characters.
    """

    def __init__(self, text: str, language: Any = None):
        self.text = text
        self._language = language

    @functools.cached_property
    def lines(self) -> list[str]:
        return self.text.split("\n")

    @functools.cached_property
    def buf(self) -> np.ndarray:
        """The UTF-8 bytes of the text."""
        return np.frombuffer(self.text.encode("utf-8", "replace"), np.uint8)

    @functools.cached_property
    def spans(self) -> tuple[np.ndarray, np.ndarray]:
        """[start, end) byte offsets of the words."""
        sep = np.ones(len(self.buf) + 2, np.int8)
        sep[1:-1] = _WS[self.buf]
        edges = np.diff(sep)
        return np.nonzero(edges == -1)[0], np.nonzero(edges == 1)[0]

    @property
    def n_words(self) -> int:
        return len(self.spans[0])

    def _per_word(self, mask: np.ndarray) -> np.ndarray:
        """How many bytes of each word have ``mask`` set."""
        return per_word(mask, *self.spans)

    @functools.cached_property
    def word_chars(self) -> np.ndarray:
        """Characters per word (UTF-8 continuation bytes not counted)."""
        starts, ends = self.spans
        return (ends - starts) - self._per_word((self.buf & 0xC0) == 0x80)

    @functools.cached_property
    def word_punct(self) -> np.ndarray:
        """ASCII punctuation characters per word."""
        return self._per_word(_ASCII_PUNCT[self.buf])

    @functools.cached_property
    def word_has_letter(self) -> np.ndarray:
        return self._per_word(LETTER[self.buf]) > 0

    @functools.cached_property
    def word_hashes(self) -> np.ndarray:
        return span_hashes(self.buf, *self.spans)

    @property
    def language(self) -> tuple[str, float]:
        """(ISO code, confidence) of the text, computed at most once."""
        if self._language is None:
            self._language = language(self.text)
        return self._language


def duplicates(items: Sequence[str]) -> tuple[int, int]:
    """(elements that repeat an earlier one, their characters), like datatrove's find_duplicates."""
    unique = set(items)
    return len(items) - len(unique), sum(map(len, items)) - sum(map(len, unique))


def top_ngram_chars(stats: TextStats, n: int) -> int:
    """Characters covered by the most frequent word n-gram (occurrences x length), 0 if none repeats."""
    h = ngram_hashes(stats.word_hashes, n)
    if len(h) < 2:
        return 0
    s = np.sort(h)
    bounds = np.flatnonzero(np.concatenate(([True], s[1:] != s[:-1], [True])))
    counts = np.diff(bounds)
    top = int(np.argmax(counts))
    if counts[top] < 2:
        return 0
    first = int(np.argmax(h == s[bounds[top]]))
    length = int(stats.word_chars[first:first + n].sum()) + n - 1
    return int(counts[top]) * length


def dup_ngram_chars(stats: TextStats, n: int) -> int:
    """Characters of the words inside repeats (after the first occurrence) of any word n-gram."""
    h = ngram_hashes(stats.word_hashes, n)
    m = len(h)
    if m < 2:
        return 0
    # Sort (hash, position) pairs in one uint64 key: the hash's high bits, then the position.
    bits = max(1, (m - 1).bit_length())
    key = (h >> np.uint64(bits) << np.uint64(bits)) | np.arange(m, dtype=np.uint64)
    key.sort()
    grp = key >> np.uint64(bits)
    repeat = np.concatenate(([False], grp[1:] == grp[:-1]))
    if not repeat.any():
        return 0
    starts = (key[repeat] & np.uint64((1 << bits) - 1)).astype(np.int64)
    w = stats.n_words
    depth = np.cumsum(np.bincount(starts, minlength=w + 1) - np.bincount(starts + n, minlength=w + 1))
    return int(stats.word_chars[depth[:w] > 0].sum())
