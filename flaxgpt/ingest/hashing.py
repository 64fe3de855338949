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
_PARA_SPLIT = re.compile(f"({PARA_SEP.pattern})")  # the same, captured: split() keeps the separators
BREAK = "\x00"  # marks a paragraph break inside normalised text (a NUL in the input is read as a space)
_PUNCT = regex.compile(r"[\p{P}\p{S}]+")
_MARKS = regex.compile(r"\p{Mn}+")
_WIDE_SPACE_DIGIT = regex.compile(r"[[\s\d]--[\x00-\x7f]]+", regex.V1)  # non-ASCII whitespace and digits
_ASCII_WS = b"\t\n\x0b\x0c\r\x1c\x1d\x1e\x1f"  # what str.split() treats as whitespace, besides the space
_DIGITS = b"0123456789"
# Whitespace to a space and every digit to '0', in the same pass that deletes punctuation.
_TO_SPACE_ZERO = bytes.maketrans(_ASCII_WS + _DIGITS, b" " * len(_ASCII_WS) + b"0" * len(_DIGITS))
_ASCII_PUNCT = string.punctuation.encode()  # exactly the ASCII characters of Unicode categories P and S
_SPACE, _ZERO = 32, 48


def _wide(m: regex.Match) -> str:
    return " " if m[0][0].isspace() else "0"


def paragraph_parts(text: str) -> list[str]:
    """Takes a text; returns it cut into [paragraph, separator, paragraph, ..., paragraph] (a NUL read as a space).

    The parts join back to the text, so their lengths give the paragraphs' raw spans, and the paragraphs
    (every other part) are what ``normalised_paragraphs`` takes: one regex pass serves both.
    """
    return _PARA_SPLIT.split(text.replace(BREAK, " ") if BREAK in text else text)


def normalised_array(text: str) -> np.ndarray:
    """Takes a text; returns the UTF-8 bytes of its normalised form: words joined by one space, paragraphs by
    one NUL, digit runs '0'."""
    return normalised_paragraphs(paragraph_parts(text)[::2])


def normalised_paragraphs(paragraphs: list[str]) -> np.ndarray:
    """``normalised_array`` of the text made of ``paragraphs`` (as ``paragraph_parts`` cuts them).

    Pure-ASCII text takes a bytes fast path (translate); other text goes through the regexes first.
    """
    t = BREAK.join(paragraphs).lower()
    if not t.isascii():
        t = _PUNCT.sub("", t)
        if not t.isascii():
            t = _MARKS.sub("", unicodedata.normalize("NFD", t))
            t = _WIDE_SPACE_DIGIT.sub(_wide, t)
    # "replace": a lone surrogate (a broken emoji in a JSON export) becomes '?', which is then removed.
    # bytearray: the result is writable, like any array the caller makes.
    a = np.frombuffer(bytearray(t.encode("utf-8", "replace").translate(_TO_SPACE_ZERO, _ASCII_PUNCT)), np.uint8)
    return _squeeze(a) if len(a) else a


def _squeeze(a: np.ndarray) -> np.ndarray:
    """Drops the spaces that are not alone between two word bytes, and every '0' right after another.

    Whole-array comparisons, no scan for the next non-space byte: runs of spaces are cut to their first space
    (only if there are any), then a lone space's two neighbours decide. Most texts have a few bytes to drop,
    or none, and a boolean mask that is nearly all True is cheap to apply.
    """
    space = a == _SPACE
    repeat = space[1:] & space[:-1]
    if repeat.any():
        keep = np.ones(len(a), bool)
        np.logical_not(repeat, out=keep[1:])
        a, space = a[keep], space[keep]
    # Spaces now stand alone: one stays only between two word bytes, not at a paragraph edge or the text's ends.
    drop = space.copy()
    nul = a == 0
    drop[1:-1] &= nul[:-2] | nul[2:]
    zero = a == _ZERO
    drop[1:] |= zero[1:] & zero[:-1]  # one '0' per digit run (dropping spaces never brings two digits together)
    return a[~drop] if drop.any() else a


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
    n = len(chunk)
    pw, inv = _powers(n)
    prefix = np.empty(n + 1, np.uint64)  # prefix[i]: the sum of chunk[k] * BASE**k for k < i
    prefix[0] = 0
    np.multiply(chunk, pw[:n], out=prefix[1:])
    np.cumsum(prefix[1:], out=prefix[1:])
    h = prefix[e]
    h -= prefix[s]
    h *= inv[s]  # shifts each span's sum to start at BASE**0, so equal bytes hash alike wherever they sit
    length = np.subtract(e, s, dtype=np.uint64, casting="unsafe")  # wraps like (e - s).astype(np.uint64)
    length *= np.uint64(0x9E3779B97F4A7C15)
    h ^= length  # mix in the length too
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
    sep = a == _SPACE
    sep |= a == 0
    # A word runs from just after a separator (or the start) to the next separator (or the end). One index
    # of the separators gives both ends; the empty spans between two adjacent separators are dropped.
    cut = np.flatnonzero(sep)
    starts = np.empty(len(cut) + 1, np.int64)
    starts[0] = 0
    np.add(cut, 1, out=starts[1:])
    ends = np.empty(len(cut) + 1, np.int64)
    ends[:-1] = cut
    ends[-1] = len(a)
    word = ends > starts
    if word.all():  # the usual case: no empty paragraph, no separator at either end
        return starts, ends
    return starts[word], ends[word]


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
