"""The quality profile of each document kind (which filters, with which thresholds), and per-kind overrides.

Profiles can be changed per kind with ``QualityConfig.overrides``:
``{"prose": {"length": {"min_words": 5}}, "web": {"c4": None}}`` (None removes a filter).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

from flaxgpt.ingest.quality.code import CodeQuality
from flaxgpt.ingest.quality.content import EmojiOnly, LinkOnly
from flaxgpt.ingest.quality.junk import Gibberish, LoremIpsum
from flaxgpt.ingest.quality.web import C4Quality, FineWebQuality, GopherQuality, GopherRepetition, WordCount

# Repetition limits for short personal texts: only runaway repetition (the same line or phrase over and over).
# A phrase of k words said over and over puts 2/k of the text in its top 2-gram and all of it in repeated 5-grams,
# so those two n-gram rules catch any length of phrase.
_LOOSE_REPETITION = GopherRepetition(dup_line_frac=None, dup_para_frac=None, dup_line_char_frac=0.5,
                                     dup_para_char_frac=0.5, top_n_grams=((2, 0.4),), dup_n_grams=((5, 0.5),),
                                     min_words=10)

# Minimum words per kind: personal text is short and real (a LinkedIn profile or position, a commit message,
# a README, a post, a one-line chat message), so only empty-of-words documents go: links or emoji alone
# (LinkOnly, EmojiOnly) and stubs. Gopher's rules judge only prose of 50 words or more, like its own corpus.
_GOPHER_MIN_WORDS = 50

# Order matters only for which reason is reported: the cheap, specific filters come first.
PROFILES: dict[str, tuple[Any, ...]] = {
    "web": (LoremIpsum(), Gibberish(), WordCount(50, 100_000), GopherQuality(), GopherRepetition(), C4Quality(),
            FineWebQuality()),
    # Personal notes are often bullet lists, and reports carry tables of numbers: those two rules are relaxed.
    "prose": (LoremIpsum(), Gibberish(), LinkOnly(), EmojiOnly(), WordCount(3, 1_000_000),
              GopherQuality(max_bullet_lines_ratio=None, min_alpha_words_ratio=0.6, min_words=_GOPHER_MIN_WORDS),
              GopherRepetition(min_words=_GOPHER_MIN_WORDS)),
    "email": (LoremIpsum(), Gibberish(), LinkOnly(), EmojiOnly(), WordCount(1, 1_000_000), _LOOSE_REPETITION),
    "chat": (LoremIpsum(), Gibberish(), LinkOnly(speakers=True), EmojiOnly(speakers=True), WordCount(1, 1_000_000),
             _LOOSE_REPETITION),
    "cv": (LoremIpsum(), Gibberish(), LinkOnly(), WordCount(2, 1_000_000), _LOOSE_REPETITION),
    "slides": (LoremIpsum(), Gibberish(), WordCount(3, 1_000_000), _LOOSE_REPETITION),
    "code": (CodeQuality(),),
}


def apply_overrides(profiles: dict[str, tuple[Any, ...]],
                    overrides: Mapping[str, Mapping[str, Any]]) -> dict[str, tuple[Any, ...]]:
    """Takes profiles and ``{profile: {filter name: {field: value} | None (remove it)}}``; returns changed copies.

    Raises ValueError naming an unknown profile or filter.
    """
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
