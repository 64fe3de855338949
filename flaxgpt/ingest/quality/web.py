"""The web-corpus filters: word count, Gopher's quality and repetition rules, C4's and FineWeb's rules.

Thresholds are those of the papers, as datatrove implements them; they suit general web text (the ``web``
profile), and ``prose`` keeps Gopher's with a lower word minimum.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import ClassVar

from flaxgpt.ingest.quality.stats import TextStats, dup_ngram_chars, duplicates, top_ngram_chars


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
# Line ends after an ellipsis and trailing whitespace ([^\S\n] is str.isspace() less the newline): one regex per
# ellipsis, each starting with a literal that the regex engine finds fast (a Python loop over the lines is slower).
_ELLIPSIS_LINE_ENDS = (re.compile(r"\.\.\.[^\S\n]*(?:\n|\Z)"), re.compile(r"…[^\S\n]*(?:\n|\Z)"))


def _count(pattern: re.Pattern, text: str) -> int:
    """How many times ``pattern`` matches in ``text``."""
    return sum(1 for _ in pattern.finditer(text))


@dataclass(frozen=True)
class GopherQuality:
    """Gopher's quality rules (word length, symbols, bullets, ellipses, alphabetic words, stop words).

    The stop-word rule uses English stop words, so it only applies to text identified as English. Documents
    under ``min_words`` words are not judged (the rules are shares over a page of text: Gopher's pages have
    at least 50 words; on a README or a short note one word decides them).
    """

    name: ClassVar[str] = "gopher-quality"
    min_avg_word_length: float | None = 3
    max_avg_word_length: float | None = 10
    max_symbol_word_ratio: float | None = 0.1
    max_bullet_lines_ratio: float | None = 0.9
    max_ellipsis_lines_ratio: float | None = 0.3
    min_alpha_words_ratio: float | None = 0.8
    min_stop_words: int | None = 2
    min_words: int = 0

    def __call__(self, t: TextStats) -> str | None:
        n = t.n_words
        if n == 0:
            return f"{self.name}: no words"
        if n < self.min_words:
            return None
        avg = t.word_chars_less_punct / n
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
            # Lines whose rstrip() ends in '...' or '…' (one or the other: they end in different characters).
            ratio = sum(_count(p, t.text) for p in _ELLIPSIS_LINE_ENDS) / len(lines)
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


# Spelled with a literal start ("\n\n+", not "\n{2,}") so the regex engine scans for it fast (10x).
_PARA_BREAK = re.compile(r"\n\n+")


def _non_blank_lines(lines: list[str]) -> list[str]:
    """The text's lines split on runs of newlines (``re.split(r"\n+", text)``), from its lines split on each one:
    the empty lines inside are dropped, an empty first or last one (a leading or trailing newline) is kept."""
    if len(lines) < 3:
        return lines
    return [lines[0], *filter(None, lines[1:-1]), lines[-1]]


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
        paras = _PARA_BREAK.split(t.text.strip())
        count, chars = duplicates(paras)
        if self.dup_para_frac is not None and count / len(paras) > self.dup_para_frac:
            return f"{self.name}: {count / len(paras):.0%} of paragraphs repeat > {self.dup_para_frac:.0%}"
        if self.dup_para_char_frac is not None and chars / size > self.dup_para_char_frac:
            return f"{self.name}: repeated paragraphs hold {chars / size:.0%} of characters > " \
                   f"{self.dup_para_char_frac:.0%}"
        lines = _non_blank_lines(t.lines)  # blank lines are not lines (they would all repeat one another)
        count, chars = duplicates(lines)
        if self.dup_line_frac is not None and count / len(lines) > self.dup_line_frac:
            return f"{self.name}: {count / len(lines):.0%} of lines repeat > {self.dup_line_frac:.0%}"
        if self.dup_line_char_frac is not None and chars / size > self.dup_line_char_frac:
            return f"{self.name}: repeated lines hold {chars / size:.0%} of characters > {self.dup_line_char_frac:.0%}"
        for n, limit in self.top_n_grams:
            frac = top_ngram_chars(t, n) / size
            if frac > limit:
                return f"{self.name}: the top {n}-gram covers {frac:.0%} of characters > {limit:.0%}"
        if self.dup_n_grams:
            # Words inside repeated n-grams are inside repeated shorter ones too, so the shortest n bounds the rest.
            ns = sorted(self.dup_n_grams)
            if dup_ngram_chars(t, ns[0][0]) / size <= min(limit for _, limit in ns):
                return None
            for n, limit in ns:
                frac = dup_ngram_chars(t, n) / size
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
        nonempty = list(filter(str.strip, lines))  # the lines with more than whitespace
        ratio = duplicates(nonempty)[1] / max(1, len(t.text) - t.text.count("\n"))
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
