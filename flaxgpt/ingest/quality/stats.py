"""Per-document statistics computed once and shared by the quality filters: ``TextStats`` and n-gram measures.

One ``bytes.translate`` gives every byte of the text its classes (whitespace, punctuation, letter, ...), shared
by all filters: a translate runs several times faster than indexing a numpy lookup table, and each mask is then
a cheap bitwise test. Per-word counts of sparse classes go through the positions of the set bytes instead of a
running sum over every byte of the text.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from typing import Any

import numpy as np

from flaxgpt.ingest.hashing import ngram_hashes, span_hashes
from flaxgpt.ingest.quality.langid import language

WHITESPACE = b" \t\n\r\x0b\x0c"  # what separates words
ASCII_PUNCT = b"!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~"
# ASCII letters, and lead bytes of non-ASCII characters (counted as letters)
LETTER_BYTES = bytes(range(65, 91)) + bytes(range(97, 123)) + bytes(range(0xC0, 0x100))

# Byte class flags, as ``TextStats.classes`` gives them (SPACE is bit 0, so ``classes & SPACE`` is a 0/1 flag).
SPACE, PUNCT, LETTER, CONTINUATION, VOWEL, CONSONANT, UPPER, DIGIT = (1 << i for i in range(8))
_CLASS_MEMBERS = ((SPACE, WHITESPACE), (PUNCT, ASCII_PUNCT), (LETTER, LETTER_BYTES),
                  (CONTINUATION, bytes(range(0x80, 0xC0))),  # UTF-8 continuation bytes
                  (VOWEL, b"aeiouyAEIOUY"), (CONSONANT, b"bcdfghjklmnpqrstvwxzBCDFGHJKLMNPQRSTVWXZ"),
                  (UPPER, bytes(range(65, 91))), (DIGIT, b"0123456789"))


def _class_table() -> bytes:
    """The ``bytes.translate`` table from a byte to its class flags."""
    table = bytearray(256)
    for flag, members in _CLASS_MEMBERS:
        for b in members:
            table[b] |= flag
    return bytes(table)


_CLASSES = _class_table()
_SPARSE = 8  # a mask with under 1 set byte in 8 is counted from its set bytes' positions


def per_word(mask: np.ndarray, starts: np.ndarray, ends: np.ndarray) -> np.ndarray:
    """How many bytes of each [start, end) span have ``mask`` (one flag per byte) set.

    The spans are sorted and disjoint (words, or some of them). Sparse masks (punctuation in prose) are
    counted from the set bytes' positions; dense ones from a running sum. Both give the same int64 counts.
    """
    n_set = np.count_nonzero(mask)
    if n_set == 0 or not len(starts):
        return np.zeros(len(starts), np.int64)
    if n_set * _SPARSE < len(mask):
        pos = mask.nonzero()[0]
        if len(starts) < len(pos):  # few spans: the set bytes before each end, less those before its start
            return pos.searchsorted(ends) - pos.searchsorted(starts)
        word = ends.searchsorted(pos, side="right")  # the first span that ends after the byte
        word = word[word < len(ends)]
        pos = pos[: len(word)]  # positions are sorted, so those past the last span are at the end
        inside = starts[word] <= pos
        return np.bincount(word[inside], minlength=len(starts)).astype(np.int64, copy=False)
    cum = np.zeros(len(mask) + 1, np.int32 if len(mask) < 2**31 else np.int64)  # int32 runs ~2x faster
    np.cumsum(mask, out=cum[1:])
    return (cum[ends] - cum[starts]).astype(np.int64)


class TextStats:
    """One document's text with lazily computed statistics shared by all filters.

    Words are whitespace-separated tokens (punctuation stays attached); lengths are in characters.
    """

    def __init__(self, text: str, language: Any = None):
        self.text = text
        self._language = language
        self._ngram_chars: dict[tuple[str, int], int] = {}

    @functools.cached_property
    def lines(self) -> list[str]:
        return self.text.split("\n")

    @functools.cached_property
    def lower(self) -> str:
        """The text lowercased, for the filters that look for a word in any case."""
        return self.text.lower()

    @functools.cached_property
    def raw(self) -> bytes:
        """The UTF-8 bytes of the text (a lone surrogate becomes '?')."""
        return self.text.encode("utf-8", "replace")

    @functools.cached_property
    def buf(self) -> np.ndarray:
        """The UTF-8 bytes of the text, as a uint8 array."""
        return np.frombuffer(self.raw, np.uint8)

    @functools.cached_property
    def classes(self) -> np.ndarray:
        """The class flags (SPACE, PUNCT, LETTER, ...) of each byte of the text."""
        return np.frombuffer(self.raw.translate(_CLASSES), np.uint8)

    def has(self, flags: int) -> np.ndarray:
        """One bool per byte of the text: it has one of ``flags``."""
        return (self.classes & flags) != 0

    @functools.cached_property
    def spans(self) -> tuple[np.ndarray, np.ndarray]:
        """[start, end) byte offsets of the words."""
        # Whitespace flags with a whitespace byte on either side: flag changes alternate word start, word end.
        ws = np.ones(len(self.classes) + 2, bool)
        np.bitwise_and(self.classes, SPACE, out=ws[1:-1].view(np.uint8))
        edges = (ws[1:] ^ ws[:-1]).nonzero()[0]
        return edges[0::2].copy(), edges[1::2].copy()

    @property
    def n_words(self) -> int:
        return len(self.spans[0])

    @functools.cached_property
    def word_lengths(self) -> np.ndarray:
        """Bytes per word."""
        starts, ends = self.spans
        return ends - starts

    def _per_word(self, mask: np.ndarray) -> np.ndarray:
        """How many bytes of each word have ``mask`` (one flag per byte of the text) set."""
        return per_word(mask, *self.spans)

    @functools.cached_property
    def word_chars(self) -> np.ndarray:
        """Characters per word (UTF-8 continuation bytes not counted)."""
        if self.raw.isascii():
            return self.word_lengths
        return self.word_lengths - self._per_word(self.has(CONTINUATION))

    def count(self, flags: int) -> int:
        """How many bytes of the text have one of ``flags``."""
        return int(np.count_nonzero(self.has(flags)))

    @property
    def word_chars_less_punct(self) -> int:
        """Characters in all the words, less their ASCII punctuation (Gopher's word lengths).

        Counted over the whole text: whitespace separates the words, and neither punctuation nor UTF-8
        continuation bytes are whitespace, so every one of them is inside a word.
        """
        return len(self.raw) - self.count(SPACE | CONTINUATION | PUNCT)

    @functools.cached_property
    def word_has_letter(self) -> np.ndarray:
        # Counted as "not every byte is a non-letter": in Latin text non-letters are the sparse class.
        return self._per_word((self.classes & (LETTER | SPACE)) == 0) < self.word_lengths

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


def _memoised(measure):
    """Computes ``measure(stats, n)`` once per document and n (the repetition filter asks some twice)."""

    @functools.wraps(measure)
    def wrapper(stats: TextStats, n: int) -> int:
        key = (measure.__name__, n)
        if key not in stats._ngram_chars:
            stats._ngram_chars[key] = measure(stats, n)
        return stats._ngram_chars[key]

    return wrapper


@_memoised
def top_ngram_chars(stats: TextStats, n: int) -> int:
    """Characters covered by the most frequent word n-gram (occurrences x length), 0 if none repeats."""
    h = ngram_hashes(stats.word_hashes, n)
    m = len(h)
    if m < 2:
        return 0
    s = np.sort(h)
    # Where each run of equal hashes starts, and the end. (Array methods, not np.concatenate/np.diff/np.argmax:
    # their Python wrappers cost more than the work on a short document.)
    new = np.empty(m + 1, bool)
    new[0] = new[m] = True
    np.not_equal(s[1:], s[:-1], out=new[1:m])
    bounds = new.nonzero()[0]
    counts = bounds[1:] - bounds[:-1]
    top = int(counts.argmax())
    if counts[top] < 2:
        return 0
    first = int((h == s[bounds[top]]).argmax())
    length = int(stats.word_chars[first:first + n].sum()) + n - 1
    return int(counts[top]) * length


@_memoised
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
