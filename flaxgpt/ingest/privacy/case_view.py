"""Capitalised words in a name's position, found on the case view of a text.

The case view maps every lower-case letter (and ',') to ``a`` and every capital to ``A`` (Latin-1, one byte per
character). A name's candidates are the capitalised words after a lower-case word ("with Priya"), after a short
capitalised word and an optional dot ("Dr. Kovacs", "Mr Okafor"), after an initial ("with M. Lindqvist") or after
"w/" ("w/ Kasia"): what ``finditer`` of the four ``AFTER_*`` regexes below gives. Those scans are slow on prose,
where nearly every byte is an ``a``; ``after_candidates`` finds the same positions from the few capitals that
follow a space, with numpy.
"""

from __future__ import annotations

import re

import numpy as np

CASE_TABLE = bytes(97 if 97 <= c <= 122 or c == 44 or (c >= 223 and c != 247) else
                   65 if 65 <= c <= 90 or (192 <= c <= 222 and c != 215) else c for c in range(256))
# The reference: (regex on the case view, offset of the candidate capital from the match start).
AFTER_WORD = (re.compile(rb"a Aa"), 2)
AFTER_SHORT = (re.compile(rb"Aa{1,3}\.? Aa"), 0)
AFTER_INITIAL = (re.compile(rb"a A\. Aa"), 2)  # "with M. Lindqvist"
AFTER_SLASH = (re.compile(rb"a/ Aa"), 3)  # "w/ Kasia"
_LOWER, _UPPER, _SPACE, _DOT, _SLASH = 97, 65, 32, 46, 47


def case_view(b: bytes) -> bytes:
    """The case view of a text's Latin-1 bytes (same length and offsets)."""
    return b.translate(CASE_TABLE)


def after_candidates(view: bytes) -> list[list[int]]:
    """For each of AFTER_WORD, AFTER_SHORT, AFTER_INITIAL and AFTER_SLASH (in that order), the candidate capitals
    ``m.start() + offset`` of its ``finditer`` over the case view ``view``, in text order."""
    v = np.frombuffer(view, np.uint8)
    if len(v) < 4:
        return [[], [], [], []]
    # Every match ends with a capital after a space and before a lower-case letter: "... Ab".
    q = np.flatnonzero((v[1:-1] == _UPPER) & (v[:-2] == _SPACE) & (v[2:] == _LOWER)) + 1
    word = q[q >= 2]
    word = word[v[word - 2] == _LOWER]
    initial = q[q >= 5]
    initial = initial[(v[initial - 5] == _LOWER) & (v[initial - 4] == _SPACE) & (v[initial - 3] == _UPPER)
                      & (v[initial - 2] == _DOT)]
    slash = q[q >= 3]
    slash = slash[(v[slash - 3] == _LOWER) & (v[slash - 2] == _SLASH)]
    return [_first_fits(word - 2, word + 2, 2), _short(v, q), _first_fits(initial - 5, initial + 2, 2),
            _first_fits(slash - 3, slash + 2, 3)]


def _short(v: np.ndarray, q: np.ndarray) -> list[int]:
    """AFTER_SHORT's candidates: a capital and 1-3 lower-case letters, maybe a dot, a space, then the capital q."""
    starts, ends = [], []
    for dot in (0, 1):
        for k in (1, 2, 3):
            p = q - 2 - dot - k
            ok = p >= 0
            pq, pp = q[ok], p[ok]
            keep = v[pp] == _UPPER
            if dot:
                keep &= v[pq - 2] == _DOT
            for j in range(1, k + 1):
                keep &= v[pp + j] == _LOWER
            starts.append(pp[keep])
            ends.append(pq[keep] + 2)
    start, end = np.concatenate(starts), np.concatenate(ends)
    return _first_fits(start, end, 0)


def _first_fits(starts: np.ndarray, ends: np.ndarray, offset: int) -> list[int]:
    """``start + offset`` of the matches [start, end) that ``finditer`` reports: leftmost first, none overlapping
    one reported before it."""
    order = np.argsort(starts, kind="stable")
    out, free = [], 0
    for s, e in zip(starts[order].tolist(), ends[order].tolist(), strict=True):
        if s >= free:
            out.append(s + offset)
            free = e
    return out
