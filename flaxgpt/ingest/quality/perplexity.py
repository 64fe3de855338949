"""``PerplexityFilter``: drops documents whose perplexity under a scorer is above a threshold.

The scorer is injected: anything with ``perplexities(texts) -> np.ndarray`` (nan for a text with nothing
to score, which is kept). Ingest never loads a model itself; ``flaxgpt.infer.perplexity.PerplexityScorer``
scores with a trained flaxgpt run, and the ``flaxgpt ingest`` command passes it in.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import ClassVar, Protocol

import numpy as np


class Scorer(Protocol):
    """What scores documents for ``PerplexityFilter``."""

    def perplexities(self, texts: Sequence[str]) -> np.ndarray:
        """Takes texts; returns their perplexities (nan for a text with no tokens)."""


# Builds the scorer from ``quality.perplexity_run`` (a run directory) in each process that needs it; picklable
# (a class or a module-level function), so worker processes can be handed it.
ScorerFactory = Callable[[str], Scorer]


@dataclass
class PerplexityFilter:
    """Drops documents whose perplexity under ``scorer`` is above ``threshold``."""

    name: ClassVar[str] = "perplexity"
    scorer: Scorer
    threshold: float

    def check(self, text: str) -> str | None:
        """Takes a text; returns 'perplexity: 1234 > 1000' to drop it, or None to keep it."""
        ppl = float(self.scorer.perplexities([text])[0])
        if ppl > self.threshold:
            return f"{self.name}: {ppl:.0f} > {self.threshold:.0f}"
        return None
