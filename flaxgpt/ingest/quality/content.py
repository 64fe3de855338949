"""Documents with no words of their own: nothing but links, or nothing but emoji (a chat window that is one
pasted URL or one reaction). Short real text is kept; a word minimum would drop it with these.

Chat documents are ``Name: text`` lines (``extract.chat.window_document``): with ``speakers`` the names
are not counted as words. Mentions (``@ada``, ``<@U123>``) and placeholders (``<NAME>``) are not words either.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from typing import ClassVar

from flaxgpt.ingest.quality.stats import TextStats

_SPEAKER = re.compile(r"^[^\n:]{1,80}:[ \t]*", re.M)
_LINK = re.compile(r"<(?:https?|mailto):[^>\s]*>|\b(?:https?://|www\.)\S+", re.I)
_NOT_WORDS = re.compile(r"<[@#!][^>\s]*>|<[A-Z_]+>|@[\w.-]+")  # mentions, channel links, placeholders
_SHORTCODE = re.compile(r":[a-z0-9_+-]+:")  # Slack and Discord emoji (:tada:, :+1:)
_WORD = re.compile(r"[^\W_]")  # a letter or digit of any script; emoji and symbols are not
_SCAN_CHARS = 2000  # a text with a word in its first characters is not judged further


@dataclass(frozen=True)
class _Bare:
    links: int
    emoji: int
    has_word: bool


def _bare(text: str, speakers: bool) -> _Bare:
    """What is left of ``text`` once links, mentions, placeholders, emoji shortcodes (and speakers) are removed."""
    if speakers:
        text = _SPEAKER.sub("", text)
    links = len(_LINK.findall(text))
    text = _NOT_WORDS.sub(" ", _LINK.sub(" ", text))
    emoji = len(_SHORTCODE.findall(text))
    text = _SHORTCODE.sub(" ", text)
    emoji += sum(1 for c in text if not c.isascii() and unicodedata.category(c) == "So")  # emoji are "other symbols"
    return _Bare(links, emoji, bool(_WORD.search(text)))


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
        if _quick_word(t, self.speakers):
            return None
        bare = _bare(t.text, self.speakers)
        if bare.links and not bare.has_word:
            return f"{self.name}: {bare.links} link{'s' if bare.links > 1 else ''} and no words"
        return None


@dataclass(frozen=True)
class EmojiOnly:
    """Documents that are only emoji (and punctuation, mentions): reactions, not writing."""

    name: ClassVar[str] = "emoji-only"
    speakers: bool = False

    def __call__(self, t: TextStats) -> str | None:
        if _quick_word(t, self.speakers):
            return None
        bare = _bare(t.text, self.speakers)
        if bare.emoji and not bare.links and not bare.has_word:
            return f"{self.name}: {bare.emoji} emoji and no words"
        return None
