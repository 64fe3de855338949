"""Text normalisation and vectorised hashing of byte spans, shared by dedup and the quality filters.

Normalisation follows FineWeb (datatrove's ``simplify_text``): lowercase, diacritics removed,
punctuation and symbols removed (every Unicode P* and S* character), each run of digits replaced
by ``0``, and whitespace collapsed. Paragraphs are the blocks between blank lines (and ``-- ``
signature separators).

Words are hashed with a polynomial hash over the normalised UTF-8 bytes (prefix sums in numpy, no
Python loop per word) and word n-grams by mixing the hashes of their words.
"""

from __future__ import annotations

import re
import string
import unicodedata

import numpy as np
import regex

# ---------------------------------------------------------------------------------------------------------------
# Normalisation

PARA_SEP = re.compile(r"\n[^\S\n]*\n\s*|\n--[ \t]?\n\s*")  # blank line(s), or an e-mail signature separator
BREAK = "\x00"  # marks a paragraph break inside normalised text (a NUL in the input is read as a space)
_PUNCT = regex.compile(r"[\p{P}\p{S}]+")
_MARKS = regex.compile(r"\p{Mn}+")
_WIDE_SPACE_DIGIT = regex.compile(r"[[\s\d]--[\x00-\x7f]]+", regex.V1)  # non-ASCII whitespace and digits
_ASCII_WS = b"\t\n\x0b\x0c\r\x1c\x1d\x1e\x1f"  # what str.split() treats as whitespace, besides the space
_TO_SPACE = bytes.maketrans(_ASCII_WS, b" " * len(_ASCII_WS))
_ASCII_PUNCT = string.punctuation.encode()  # exactly the ASCII characters of Unicode categories P and S
_SPACE, _ZERO = 32, 48


def _wide(m: regex.Match) -> str:
    return " " if m[0][0].isspace() else "0"


def normalised_array(text: str) -> np.ndarray:
    """Takes a text; returns the UTF-8 bytes of its normalised form: words joined by one space, paragraphs by
    one NUL, digit runs '0'.

    Pure-ASCII text takes a bytes fast path (translate); other text goes through the regexes first.
    """
    t = PARA_SEP.sub(BREAK, text.replace(BREAK, " ") if BREAK in text else text).lower()
    if not t.isascii():
        t = _PUNCT.sub("", t)
        if not t.isascii():
            t = _MARKS.sub("", unicodedata.normalize("NFD", t))
            t = _WIDE_SPACE_DIGIT.sub(_wide, t)
    # "replace": a lone surrogate (a broken emoji in a JSON export) becomes '?', which is then removed.
    a = np.frombuffer(t.encode("utf-8", "replace").translate(_TO_SPACE, _ASCII_PUNCT), np.uint8)
    if not len(a):
        return a
    digit = (a >= _ZERO) & (a <= _ZERO + 9)
    a = np.where(digit, np.uint8(_ZERO), a)
    space = a == _SPACE
    word = ~space & (a != 0)
    # Keep a space only between two word bytes: the first of its run, not at a paragraph edge or the text's ends.
    n = len(a)
    nxt = np.where(space, n, np.arange(n))
    nxt = np.minimum.accumulate(nxt[::-1])[::-1]  # index of the next non-space byte (n if none)
    word_ext = np.zeros(n + 1, bool)
    word_ext[:n] = word
    keep = word_ext[nxt]  # a space is kept if the next non-space byte is a word byte...
    keep[1:] &= word[:-1]  # ...and the byte before it is one too
    keep[0] = False
    keep |= ~space
    keep[1:] &= ~(digit[1:] & digit[:-1])  # one '0' per digit run
    return a[keep]


def normalize(text: str) -> str:
    """FineWeb-style normalised form of ``text``: lowercase, no diacritics, punctuation or symbols, digit runs
    as '0', single spaces. This is what exact and near-duplicate detection compare."""
    return " ".join(normalised_array(text).tobytes().decode().replace(BREAK, " ").split())


# ---------------------------------------------------------------------------------------------------------------
# Vectorised hashing of byte spans

_MASK64 = (1 << 64) - 1
_BASE = 0x100000001B3 * 0x9E3779B97F4A7C15 & _MASK64 | 1  # odd, so it is invertible modulo 2**64
_BASE_INV = pow(_BASE, -1, 1 << 64)
CHUNK = 1 << 18  # bytes hashed per prefix-sum pass: bounds temporary memory for huge documents
_POWERS: dict[int, tuple[np.ndarray, np.ndarray]] = {}


def _powers(n: int) -> tuple[np.ndarray, np.ndarray]:
    """BASE**i and BASE**-i modulo 2**64 for i < n (numpy integer overflow wraps, which is the modulus)."""
    size = max(n, CHUNK)
    if size in _POWERS:
        return _POWERS[size]
    pw = np.full(size, _BASE, np.uint64)
    inv = np.full(size, _BASE_INV, np.uint64)
    pw[0] = inv[0] = 1
    np.cumprod(pw, out=pw)
    np.cumprod(inv, out=inv)
    if size == CHUNK:  # keep only the standard table; a bigger one is for one giant span
        _POWERS[size] = (pw, inv)
    return pw, inv


def mix64(x: np.ndarray) -> np.ndarray:
    """splitmix64's finaliser, in place on a uint64 array (spreads every input bit over the output)."""
    x ^= x >> np.uint64(30)
    x *= np.uint64(0xBF58476D1CE4E5B9)
    x ^= x >> np.uint64(27)
    x *= np.uint64(0x94D049BB133111EB)
    x ^= x >> np.uint64(31)
    return x


def _hash_chunk(chunk: np.ndarray, s: np.ndarray, e: np.ndarray) -> np.ndarray:
    """Hashes of the spans [s, e) of one chunk of at most the powers table's length (or any length for one span)."""
    pw, inv = _powers(len(chunk))
    prefix = np.zeros(len(chunk) + 1, np.uint64)
    np.cumsum(chunk * pw[:len(chunk)], out=prefix[1:])
    h = (prefix[e] - prefix[s]) * inv[s]
    h ^= (e - s).astype(np.uint64) * np.uint64(0x9E3779B97F4A7C15)  # mix in the length too
    return mix64(h)


def span_hashes(buf: np.ndarray, starts: np.ndarray, ends: np.ndarray) -> np.ndarray:
    """64-bit hashes of the byte spans ``buf[starts[i]:ends[i]]`` of a uint8 buffer.

    Equal byte strings get equal hashes wherever they sit. Buffers longer than 256 KiB are hashed
    a chunk at a time to bound memory, which needs ``starts`` and ``ends`` non-decreasing.
    """
    if len(buf) <= CHUNK:
        return _hash_chunk(buf, starts, ends)
    out = np.empty(len(starts), np.uint64)
    i, n = 0, len(starts)
    while i < n:
        lo = int(starts[i])
        # The spans that end within one chunk of lo (at least one, however long it is).
        j = max(i + 1, int(np.searchsorted(ends, lo + CHUNK, side="right")))
        hi = int(ends[j - 1])
        out[i:j] = _hash_chunk(buf[lo:hi], starts[i:j] - lo, ends[i:j] - lo)
        i = j
    return out


# ---------------------------------------------------------------------------------------------------------------
# Words and word n-grams


def word_spans(a: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """[start, end) byte offsets of the words of a normalised array (bytes other than space and NUL)."""
    sep = np.ones(len(a) + 2, np.int8)
    sep[1:-1] = (a == _SPACE) | (a == 0)
    edges = np.diff(sep)
    return np.nonzero(edges == -1)[0], np.nonzero(edges == 1)[0]


_NGRAM_MULT = np.random.default_rng(0x5EED).integers(0, 2**64, size=64, dtype=np.uint64) | np.uint64(1)


def ngram_hashes(word_hash: np.ndarray, n: int) -> np.ndarray:
    """64-bit hashes of every run of ``n`` consecutive words, from the words' hashes (order-sensitive)."""
    m = len(word_hash) - n + 1
    if m <= 0:
        return np.empty(0, np.uint64)
    h = word_hash[:m] * _NGRAM_MULT[0]
    for k in range(1, n):
        h += word_hash[k:k + m] * _NGRAM_MULT[k]
    return mix64(h)
