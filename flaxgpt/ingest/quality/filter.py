"""``QualityFilter``: the quality verdict on one document, from its kind's profile, its language and its perplexity.

Languages: by default every language is kept and the detected one is reported; ``languages`` restricts
them, judging only confident detections (score >= ``min_language_score``) on texts of at least
``min_language_words`` words. Code is never language-checked. The perplexity filter runs when
``perplexity_run`` is set, with the scorer the caller's ``scorer_factory`` builds from that run.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from flaxgpt.ingest.quality import langid
from flaxgpt.ingest.quality.perplexity import PerplexityFilter, ScorerFactory
from flaxgpt.ingest.quality.profiles import PROFILES, apply_overrides
from flaxgpt.ingest.quality.stats import TextStats


@dataclass(frozen=True)
class QualityConfig:
    """Which languages to keep, profile overrides and the optional perplexity filter."""

    languages: tuple[str, ...] = ()  # ISO codes to keep (e.g. ('en', 'nl')); empty keeps every language
    min_language_score: float = 0.5  # detections below this are not trusted enough to drop a document
    min_language_words: int = 10  # nor detections on fewer words (fastText is confidently wrong on "Ok ja")
    overrides: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)  # see profiles.apply_overrides
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

    Picklable (models load lazily in each process), so it can be built once per worker. ``scorer_factory``
    builds the perplexity scorer from ``config.perplexity_run`` (e.g. ``flaxgpt.infer.perplexity.PerplexityScorer``);
    it is required when that is set.
    """

    def __init__(self, config: QualityConfig = QualityConfig(), scorer_factory: ScorerFactory | None = None):
        if config.perplexity_run and scorer_factory is None:
            raise ValueError(f"quality.perplexity_run is set ({config.perplexity_run!r}) but no perplexity scorer "
                             "was given to score documents with it (the flaxgpt ingest command passes "
                             "flaxgpt.infer.perplexity.PerplexityScorer); unset quality.perplexity_run or pass one")
        self.config = config
        self.scorer_factory = scorer_factory
        self.profiles = apply_overrides(PROFILES, config.overrides)
        self._perplexity: PerplexityFilter | None = None
        self._last: tuple[str, tuple[str, float]] | None = None  # check() then language() on one text: one LID run

    @classmethod
    def from_config(cls, values: Mapping[str, Any] | None = None,
                    scorer_factory: ScorerFactory | None = None) -> QualityFilter:
        """A filter from a mapping of QualityConfig fields (an ``enabled`` key is accepted and ignored)."""
        values = {k: v for k, v in dict(values or {}).items() if k != "enabled"}
        names = {f.name for f in dataclasses.fields(QualityConfig)}
        unknown = sorted(set(values) - names)
        if unknown:
            raise ValueError(f"unknown quality settings {unknown}; expected some of {sorted(names)}")
        if "languages" in values:
            values["languages"] = tuple(values["languages"])
        return cls(QualityConfig(**values), scorer_factory)

    def __getstate__(self) -> dict:
        return {**self.__dict__, "_perplexity": None, "_last": None}

    def _language(self, text: str) -> tuple[str, float]:
        if self._last is None or self._last[0] is not text:
            self._last = (text, langid.language(text))
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
        """The perplexity filter of ``config.perplexity_run``, its scorer built on first use in this process."""
        if self._perplexity is None:
            scorer = self.scorer_factory(self.config.perplexity_run)
            self._perplexity = PerplexityFilter(scorer, self.config.perplexity_max)
        return self._perplexity
