"""Documents with no words of their own: nothing but links, or nothing but emoji (a chat window that is one
pasted URL or one reaction). Short real text is kept; a word minimum would drop it with these.

Chat documents are ``Name: text`` lines (``extract.chat.window_document``): with ``speakers`` the names
are not counted as words. Mentions (``@ada``, ``<@U123>``) and placeholders (``<NAME>``) are not words either.
"""

from __future__ import annotations

import functools
import re
import unicodedata
from dataclasses import dataclass
from typing import ClassVar, NamedTuple

from flaxgpt.ingest.quality.stats import TextStats

_SPEAKER = re.compile(r"^[^\n:]{1,80}:[ \t]*", re.M)
_LINK = re.compile(r"<(?:https?|mailto):[^>\s]*>|\b(?:https?://|www\.)\S+", re.I)
_NOT_WORDS = re.compile(r"<[@#!][^>\s]*>|<[A-Z_]+>|@[\w.-]+")  # mentions, channel links, placeholders
_SHORTCODE = re.compile(r":[a-z0-9_+-]+:")  # Slack and Discord emoji (:tada:, :+1:)
_WORD = re.compile(r"[^\W_]")  # a letter or digit of any script; emoji and symbols are not
_SCAN_CHARS = 2000  # a text with a word in its first characters is not judged further


class _Wordless(NamedTuple):
    links: int
    emoji: int


@functools.lru_cache(maxsize=2)
def _wordless(text: str, speakers: bool, may_have_link: bool) -> _Wordless | None:
    """(links, emoji) in ``text`` when no word (a letter or digit) is left of it once links, mentions, placeholders
    and emoji shortcodes (and speakers) are removed; None when one is.

    Cached: LinkOnly and EmojiOnly ask it of the same text one after the other.
    """
    if speakers:
        text = _SPEAKER.sub("", text)
    text, links = _LINK.subn(" ", text) if may_have_link else (text, 0)
    text, emoji = _SHORTCODE.subn(" ", _NOT_WORDS.sub(" ", text))
    if _WORD.search(text):
        return None
    if not text.isascii():  # emoji are "other symbols"
        emoji += sum(1 for c in text if not c.isascii() and unicodedata.category(c) == "So")
    return _Wordless(links, emoji)


def _may_have_link(t: TextStats) -> bool:
    """False when the text surely has no link: it lacks what every link of ``_LINK`` starts with, in any case.

    Substring tests on the lowercased text (a case-insensitive regex scans 20x slower). Beside ASCII case, re.I
    only takes 'İ' and 'ı' for the 'i' of 'mailto' (and 'ſ' for an 's', which 'http' does without). Removing
    speakers, which follow a newline, joins nothing into a link, so this holds for ``_wordless``'s text too.
    """
    low = t.lower
    return "http" in low or "www." in low or "mailto" in low or "\u0130" in t.text or "\u0131" in t.text


def _quick_word(t: TextStats, speakers: bool) -> bool:
    """True when the text surely has a word: it is long, or a word-like token appears early (cheap test)."""
    return len(t.text) > _SCAN_CHARS and bool(_WORD.search(_SPEAKER.sub("", t.text[:_SCAN_CHARS]) if speakers
                                                            else t.text[:_SCAN_CHARS]))


@dataclass(frozen=True)
class LinkOnly:
    """Documents that are only links (and mentions, emoji, punctuation): no text of the person's own."""

    name: ClassVar[str] = "link-only"
    speakers: bool = False  # chat: "Name: " at the start of a line is not text

    def __call__(self, t: TextStats) -> str | None:
        if _quick_word(t, self.speakers) or not _may_have_link(t):
            return None
        bare = _wordless(t.text, self.speakers, may_have_link=True)
        if bare is not None and bare.links:
            return f"{self.name}: {bare.links} link{'s' if bare.links > 1 else ''} and no words"
        return None


@dataclass(frozen=True)
class EmojiOnly:
    """Documents that are only emoji (and punctuation, mentions): reactions, not writing."""

    name: ClassVar[str] = "emoji-only"
    speakers: bool = False

    def __call__(self, t: TextStats) -> str | None:
        # An ASCII text without a shortcode has no emoji (nor once things are removed: removals leave a space,
        # or drop a speaker after a newline, which joins nothing into a shortcode).
        if _quick_word(t, self.speakers) or (t.text.isascii() and not _SHORTCODE.search(t.text)):
            return None
        bare = _wordless(t.text, self.speakers, _may_have_link(t))
        if bare is not None and bare.emoji and not bare.links:
            return f"{self.name}: {bare.emoji} emoji and no words"
        return None
