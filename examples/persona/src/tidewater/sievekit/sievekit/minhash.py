"""Shingling and MinHash signatures.

Nothing here is new; MinHash is older than I am. What this module adds is
determinism: the same text gives the same signature on any machine, in any
process, next year.
"""

from __future__ import annotations

import hashlib
import re

import numpy as np

# A Mersenne prime, 2**61 - 1. Fingerprints are 32-bit and the coefficients
# are below 2**32, so a * x + b stays below 2**64 and nothing overflows.
_PRIME = np.uint64((1 << 61) - 1)
_MAX32 = (1 << 32) - 1

_WORD = re.compile(r"\w+", re.UNICODE)
_NUMBER = re.compile(r"^\d+$")


def tokens(text: str, normalise_numbers: bool = True) -> list[str]:
    """Lowercase word tokens. Numbers become ``<num>`` if asked.

    Normalising numbers is for *similarity only*. Two invoices from one
    template that differ only in their totals are the same document as far
    as a model's training signal is concerned.
    """
    words = _WORD.findall(text.lower())
    if normalise_numbers:
        words = ["<num>" if _NUMBER.match(w) else w for w in words]
    return words


def shingles(text: str, n: int = 5, normalise_numbers: bool = True) -> set[str]:
    """Set of word n-grams. Short texts give a single shingle of all words."""
    words = tokens(text, normalise_numbers)
    if len(words) <= n:
        return {" ".join(words)} if words else set()
    return {" ".join(words[i : i + n]) for i in range(len(words) - n + 1)}


def fingerprint(shingle: str) -> int:
    """32-bit fingerprint of a shingle, stable across processes."""
    digest = hashlib.blake2b(shingle.encode("utf-8"), digest_size=4).digest()
    return int.from_bytes(digest, "little")


class MinHasher:
    """Computes MinHash signatures with seeded universal hashes.

    Args:
        num_perm: Signature length. 128 is a good default; 16 bands of 8.
        seed: Seed for the hash coefficients. Change it and every signature
            you have ever stored becomes incomparable, so write it down.
    """

    def __init__(self, num_perm: int = 128, seed: int = 1) -> None:
        rng = np.random.default_rng(seed)
        self.num_perm = num_perm
        self.seed = seed
        self._a = rng.integers(1, _MAX32, size=num_perm, dtype=np.uint64)
        self._b = rng.integers(0, _MAX32, size=num_perm, dtype=np.uint64)

    def signature(self, shingle_set: set[str]) -> np.ndarray:
        """Return a ``uint64`` signature of length ``num_perm``.

        An empty set gets a signature of all ``_PRIME`` values. Two empty
        documents therefore look identical, which is correct and also a hint
        that your pipeline produced empty documents.
        """
        if not shingle_set:
            return np.full(self.num_perm, _PRIME, dtype=np.uint64)
        fps = np.fromiter((fingerprint(s) for s in shingle_set), dtype=np.uint64)
        hashed = (np.outer(fps, self._a) + self._b) % _PRIME
        return hashed.min(axis=0)

    def signature_of(self, text: str, n: int = 5) -> np.ndarray:
        """Convenience: shingle ``text`` and sign it."""
        return self.signature(shingles(text, n))


def estimated_jaccard(sig_a: np.ndarray, sig_b: np.ndarray) -> float:
    """Fraction of matching positions; an unbiased Jaccard estimate."""
    if sig_a.shape != sig_b.shape:
        raise ValueError("signatures have different lengths")
    return float(np.mean(sig_a == sig_b))


def exact_jaccard(a: set[str], b: set[str]) -> float:
    """Exact Jaccard similarity. For tests and for settling arguments."""
    if not a and not b:
        return 1.0
    return len(a & b) / len(a | b)
