"""The text as bytes: the Latin-1 view, spans, translation tables and entropy helpers.

Speed: the text is viewed once as Latin-1 bytes (one byte per character, so offsets match the
string), and each family is found by a regex that starts with a literal or in byte strings where a
translation table has turned its characters into one literal (all digits -> ``0``, all
word-ish characters -> ``w``), so the C scanners skip ordinary prose at memory speed. About 35 MB/s
per core on mixed prose and code with few matches (20 MB in 20 KB documents), 15 MB/s on 200-byte
documents, where the fixed cost of ~13 us per call dominates.
"""

from __future__ import annotations

import codecs
import math
import re
from collections import Counter
from dataclasses import dataclass

import ahocorasick


@dataclass(frozen=True)
class _Span:
    start: int
    end: int
    label: str


def _table(chars: bytes, to: bytes, default: bytes | None = None) -> bytes:
    """A bytes.translate table mapping ``chars`` to ``to`` and the rest to ``default`` (or themselves)."""
    table = bytearray(range(256)) if default is None else bytearray(default * 256)
    for c in chars:
        table[c] = to[0]
    return bytes(table)


_ALNUM = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
_DIGIT_TABLE = _table(b"0123456789", b"0")  # every digit -> '0'
# Latin-1's letters (not x and / signs) and the stand-in for other scripts' letters are word characters too.
_LATIN1_LETTERS = bytes(c for c in range(0xC0, 0x100) if c not in (0xD7, 0xF7)) + b"\xaa\xb5\xba"
_WORD_TABLE = _table(_ALNUM + b"_-" + _LATIN1_LETTERS, b"w", b" ")  # characters of tokens and identifiers
_LOCAL_TABLE = _table(_ALNUM + b"_-.+%'" + bytes(range(128, 256)), b"l", b" ")  # email local parts, as written
_HEX_TABLE = _table(b"0123456789abcdefABCDEF:.", b"h", b" ")
_NON_DIGITS = bytes(c for c in range(256) if not 48 <= c <= 57)


def _stand_in(err: UnicodeEncodeError) -> tuple[str, int]:
    """Encoding error handler: a letter outside Latin-1 becomes 'ÿ' (so "hasło" stays one word), others '?'."""
    return "".join("\xff" if c.isalpha() else "?" for c in err.object[err.start:err.end]), err.end


codecs.register_error("flaxgpt_latin1_stand_in", _stand_in)


def latin1(text: str) -> bytes:
    """``text`` as Latin-1 bytes, one byte per character (others stood in for as ``_View`` does)."""
    return text.encode("latin-1", "flaxgpt_latin1_stand_in")


class _View:
    """The text as Latin-1 bytes (one byte per character; a letter of another script becomes 'ÿ', anything
    else outside Latin-1 '?') and derived byte strings."""

    def __init__(self, text: str):
        self.text = text
        self.b = latin1(text)
        self.lo = self.b.lower()  # ASCII-only lowering keeps offsets
        self.digits = self.b.translate(_DIGIT_TABLE)
        self._words: bytes | None = None
        self._found: dict[bytes, list[int]] = {}

    @property
    def words(self) -> bytes:
        if self._words is None:
            self._words = self.b.translate(_WORD_TABLE)
        return self._words

    def find_all(self, stem: bytes) -> list[int]:
        """Start of each non-overlapping occurrence of ``stem`` in the lower-cased text.

        The finders ask for about 80 keyword stems; one Aho-Corasick pass finds every stem asked for so far
        (4x faster than 80 scans of ``bytes.find``); a stem new to this process is scanned for alone once."""
        if not self._found:
            self._found = _STEMS.find_all(self.lo)
        found = self._found.get(stem)
        if found is None:
            found = self._found[stem] = _STEMS.add(stem, self.lo)
        return found

    def word_bounds(self, i: int) -> tuple[int, int]:
        """Start and end of the run of word-ish characters around position i."""
        w = self.words
        end = w.find(b" ", i)
        return w.rfind(b" ", 0, i) + 1, len(w) if end < 0 else end


class _StemFinder:
    """The keyword stems asked for so far in this process, found together in one pass over a text."""

    def __init__(self) -> None:
        self._stems: set[bytes] = set()
        self._automaton: ahocorasick.Automaton | None = None

    def add(self, stem: bytes, lo: bytes) -> list[int]:
        """Registers ``stem`` for later texts; returns its non-overlapping occurrences in ``lo``."""
        self._stems.add(stem)
        self._automaton = None
        found, i = [], lo.find(stem)
        while i >= 0:
            found.append(i)
            i = lo.find(stem, i + len(stem))
        return found

    def find_all(self, lo: bytes) -> dict[bytes, list[int]]:
        """Every registered stem (found or not) -> the starts of its non-overlapping occurrences in ``lo``."""
        if not self._stems:
            return {b"": []}  # marks the view as scanned
        if self._automaton is None:
            automaton = ahocorasick.Automaton()
            for stem in self._stems:
                automaton.add_word(stem.decode("latin-1"), stem)
            automaton.make_automaton()
            self._automaton = automaton
        found: dict[bytes, list[int]] = {stem: [] for stem in self._stems}
        ends = dict.fromkeys(self._stems, 0)
        for last, stem in self._automaton.iter(lo.decode("latin-1")):
            start = last + 1 - len(stem)
            if start >= ends[stem]:  # overlapping occurrences of one stem are skipped, as bytes.find does
                found[stem].append(start)
                ends[stem] = last + 1
        return found


_STEMS = _StemFinder()


def _is_wordchar(b: bytes, i: int) -> bool:
    return 0 <= i < len(b) and (chr(b[i]).isalnum() or b[i] == 95 or b[i] >= 128)


def _entropy(s: str) -> float:
    n = len(s)
    return -sum(c / n * math.log2(c / n) for c in Counter(s).values()) if n else 0.0


_HEX_VALUE = re.compile(r"[0-9a-fA-F]+")


_VENDOR_PREFIX = re.compile(r"[A-Za-z]{2,10}[_-](?:[A-Za-z]{2,10}[_-])?([A-Za-z0-9]+)")


def _high_entropy(value: str) -> bool:
    """detect-secrets' limits: hex > 3.0 bits per char, others > 4.5, scaled down for short values."""
    if len(value) < 16 or value.isdigit():
        return False
    prefixed = _VENDOR_PREFIX.fullmatch(value)
    if prefixed and len(prefixed.group(1)) >= 16:
        value = prefixed.group(1)  # "omk_3c9e7a1f55b2...": the random part after a vendor's prefix
    h = _entropy(value)
    if _HEX_VALUE.fullmatch(value):
        return h > 3.0
    if h > 4.5:
        return True
    # A random n-character string has at most log2(n) bits per char; real keys mix digits and letters.
    return (len(value) < 40 and h > 0.85 * math.log2(len(value)) and any(c.isdigit() for c in value)
            and any(c.isalpha() for c in value))
