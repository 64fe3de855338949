"""Deduplication: repeated paragraphs, exact duplicates and MinHash LSH near-duplicates.

The work is split so the costly part runs in worker processes:

* ``fingerprint(text, kind)`` is pure and its result pickles: it normalises the text, hashes
  every paragraph, and computes MinHash signatures of the 5-word shingles.
* ``DedupIndex.check(doc_id, text, fp)`` runs in the main process, one document at a time in a
  fixed order, so decisions are deterministic. It holds hashes, signatures and band keys, never
  document texts.

Texts are compared in FineWeb's normalised form (``flaxgpt.ingest.hashing``: lowercase, no diacritics,
punctuation or symbols, digit runs as ``0``). Paragraphs are the blocks between blank lines (and ``-- ``
signature separators).

The rules ``check`` applies, in order:

1. **Repeated paragraphs.** A paragraph that normalises to at least ``min_paragraph_chars``
   characters (40 by default; 200 for code, so common import blocks survive while licence headers
   go) and already appeared in ``paragraph_repeats`` (default 1) earlier kept documents is removed.
   The first document with it keeps it. Short paragraphs such as "Thanks," or "Best, Ana" are
   never removed. A document left with nothing but repeated paragraphs is dropped as boilerplate.
   A document with at least 3 and two thirds of its paragraphs repeated is first compared whole
   with earlier documents (rule 3), so a revised copy (cv_v2 after cv_v1) is dropped as a
   near-duplicate instead of being cut down to its edited paragraphs.
2. **Exact duplicates** of what is left: a 128-bit hash of the normalised paragraphs.
3. **Near duplicates** of what is left: MinHash over 5-word shingles with 14 bands of 8 rows
   (112 hash functions, seed 1), FineWeb's settings. Documents sharing a band are candidates; a
   candidate is confirmed only if the signatures' estimated Jaccard similarity reaches
   ``threshold`` (0.8), which screens out LSH false positives. Documents of fewer than 5 words
   have no shingles and are deduplicated by the exact hash only.

Stripping comes first so that two short e-mails sharing a long footer are not judged near-duplicates.

Words and shingles are hashed as in ``flaxgpt.ingest.hashing``. The 112 hash functions are ``(a*x + b) mod 2**32``
over the top 32 bits of the shingle hashes, ``a`` odd and ``a, b`` drawn from ``numpy.random.default_rng(seed)``:
the inputs are already uniformly mixed, so each function only has to be a different bijection, and 32-bit
arithmetic is 3x faster than 64-bit in numpy (tests check the estimate against the true Jaccard similarity). A
shingle belongs to the paragraph its first word is in, and each long paragraph keeps its own signature row (up
to 16 of them), so the signature of the text that survives rule 1 is the element-wise minimum of the surviving
rows, with no re-hashing in the main process.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from typing import Any

import numpy as np

from flaxgpt.ingest.hashing import (
    CHUNK,
    mix64,
    ngram_hashes,
    normalised_paragraphs,
    paragraph_parts,
    span_hashes,
    word_spans,
)

# ---------------------------------------------------------------------------------------------------------------
# Fingerprints (worker side)

_SENTINEL = np.uint32(0xFFFFFFFF)
_BROADCAST_MAX = 4096  # up to this many shingles, all hash functions at once; above, one function at a time


@dataclass(frozen=True)
class DedupConfig:
    """Deduplication settings. The MinHash ones (ngram, bands, rows, seed) must match across a corpus."""

    exact: bool = True  # drop documents whose normalised text was already kept
    paragraphs: bool = True  # strip paragraphs repeated across documents (footers, disclaimers)
    near: bool = True  # drop MinHash LSH near-duplicates
    threshold: float = 0.8  # estimated Jaccard similarity at or above which a candidate is a near-duplicate
    ngram: int = 5  # words per shingle
    bands: int = 14
    rows: int = 8  # bands * rows hash functions
    seed: int = 1
    min_paragraph_chars: int = 40  # normalised characters a paragraph needs before repeats of it are stripped
    min_paragraph_chars_by_kind: Mapping[str, int] = field(default_factory=lambda: {"code": 200})
    paragraph_repeats: int = 1  # a long paragraph kept in this many earlier documents is removed from later ones

    def __post_init__(self) -> None:
        if not 0 < self.threshold <= 1:
            raise ValueError(f"dedup threshold must be in (0, 1], got {self.threshold}")
        if self.ngram < 1 or self.bands < 1 or self.rows < 1 or self.paragraph_repeats < 1:
            raise ValueError("dedup ngram, bands, rows and paragraph_repeats must be at least 1")

    @property
    def num_hashes(self) -> int:
        return self.bands * self.rows

    def paragraph_chars(self, kind: str | None) -> int:
        """The minimum normalised length of a strippable paragraph for documents of ``kind``."""
        return self.min_paragraph_chars_by_kind.get(kind, self.min_paragraph_chars)

    def hash_params(self) -> tuple[np.ndarray, np.ndarray]:
        """The (a, b) multipliers and offsets of the MinHash functions, from ``seed``."""
        return _hash_params(self.num_hashes, self.seed)


_PARAMS: dict[tuple[int, int], tuple[np.ndarray, np.ndarray]] = {}


def _hash_params(k: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    if (k, seed) not in _PARAMS:
        rng = np.random.default_rng(seed)
        a = rng.integers(0, 2**32, size=k, dtype=np.uint32) | np.uint32(1)
        b = rng.integers(0, 2**32, size=k, dtype=np.uint32)
        _PARAMS[(k, seed)] = (a, b)
    return _PARAMS[(k, seed)]


DEFAULT_CONFIG = DedupConfig()


@dataclass(frozen=True)
class DocFingerprint:
    """What the main process needs to deduplicate one document, without its text.

    ``spans`` are the raw character spans of the paragraphs; ``para_hash`` the 64-bit hashes of
    their normalised forms (0 for a paragraph that normalises to nothing) and ``para_chars`` those
    forms' lengths in UTF-8 bytes. ``strippable`` marks the paragraphs long enough to be removed as
    repeats. ``signatures`` is None when the document has fewer than ``ngram`` words; otherwise, if
    ``split_rows``, row 0 covers the shingles of the other paragraphs and row 1 + i those of the
    i-th strippable paragraph, else one row covers the whole document (it has more strippable
    paragraphs than ``MAX_SPLIT_ROWS``; removing one then means hashing the stripped text again).
    """

    spans: np.ndarray  # (P, 2) int64
    para_hash: np.ndarray  # (P,) uint64
    para_chars: np.ndarray  # (P,) int64
    strippable: np.ndarray  # (P,) bool
    signatures: np.ndarray | None  # (rows, bands * rows) uint32
    split_rows: bool
    words: int
    kind: str | None = None

    @property
    def empty(self) -> bool:
        """True if nothing is left after normalisation (only punctuation, symbols or whitespace)."""
        return self.words == 0


MAX_SPLIT_ROWS = 16  # strippable paragraphs that get their own signature row (bounds what workers send back)
# A document with at least this many, and this share, of its paragraphs repeated is checked whole as a revision.
_REVISION_MIN_PARAGRAPHS = 3
_REVISION_SHARE = 2 / 3


def _paragraph_spans(parts: list[str]) -> np.ndarray:
    """(P, 2) raw [start, end) spans of the paragraphs, from ``paragraph_parts``: the running sum of the parts'
    lengths cuts the text at every paragraph's start and end."""
    cuts = np.zeros(len(parts) + 1, np.int64)
    np.cumsum(np.fromiter(map(len, parts), np.int64, len(parts)), out=cuts[1:])
    return cuts.reshape(-1, 2)


def _minhash(x: np.ndarray, rows: np.ndarray | None, n_rows: int, config: DedupConfig) -> np.ndarray:
    """Signature rows (n_rows, K) uint32: row r holds each hash function's minimum over the shingles ``x`` in it."""
    a, b = config.hash_params()
    sig = np.full((n_rows, config.num_hashes), _SENTINEL, np.uint32)
    if rows is None:
        starts = np.zeros(1, np.int64)
        present = starts
    else:
        order = np.argsort(rows.astype(np.uint8), kind="stable")  # n_rows <= 17: a radix sort
        x, rows = x[order], rows[order]
        change = np.ones(len(rows), bool)
        np.not_equal(rows[1:], rows[:-1], out=change[1:])
        starts = np.nonzero(change)[0]
        present = rows[starts]
    if len(x) <= _BROADCAST_MAX:
        h = x[:, None] * a[None, :]
        h += b
        sig[present] = np.minimum.reduceat(h, starts, axis=0)
    else:
        # A contiguous pass per function beats one (N, K) matrix for large N: three numpy calls per function
        # on one reused buffer, and the minima written into the signature at once.
        h = np.empty_like(x)
        mins = []
        for ai, bi in zip(a, b, strict=True):
            np.multiply(x, ai, out=h)
            h += bi
            mins.append(np.minimum.reduce(h) if rows is None else np.minimum.reduceat(h, starts))
        sig[present] = np.array(mins, np.uint32).T
    return sig


def fingerprint(text: str, kind: str | None = None, config: DedupConfig = DEFAULT_CONFIG) -> DocFingerprint:
    """Takes a document's text (and kind, which sets the paragraph threshold); returns its DocFingerprint."""
    parts = paragraph_parts(text)  # one regex pass for both the raw spans and the normalised text
    spans = _paragraph_spans(parts)
    a = normalised_paragraphs(parts[::2])
    breaks = np.nonzero(a == 0)[0]
    p_start = np.concatenate(([0], breaks + 1))
    p_end = np.concatenate((breaks, [len(a)]))
    assert len(p_start) == len(spans), "paragraph split and normalisation disagree"
    chars = p_end - p_start
    w_start, w_end = word_spans(a)
    if len(a) <= CHUNK:  # one pass for paragraphs and words
        hashes = span_hashes(a, np.concatenate((p_start, w_start)), np.concatenate((p_end, w_end)))
        para_hash, word_hash = hashes[:len(p_start)], hashes[len(p_start):]
    else:
        para_hash, word_hash = span_hashes(a, p_start, p_end), span_hashes(a, w_start, w_end)
    strippable = chars >= config.paragraph_chars(kind)
    n_strip = int(strippable.sum())
    n, n_words = config.ngram, len(w_start)
    sig, split = None, 0 < n_strip <= MAX_SPLIT_ROWS
    if n_words >= n:
        shingles = ngram_hashes(word_hash, n)
        x = np.empty(len(shingles), np.uint32)  # the top 32 bits, shifted straight into a uint32 array
        np.right_shift(shingles, np.uint64(32), out=x, casting="unsafe")
        if split:
            # A shingle's row: that of the paragraph holding its first word (0, or 1 + rank among strippable ones).
            para_row = np.where(strippable, np.cumsum(strippable), 0)
            rows = para_row[np.searchsorted(breaks, w_start[:len(x)])]
            sig = _minhash(x, rows, 1 + n_strip, config)
        else:
            sig = _minhash(x, None, 1, config)
    return DocFingerprint(spans=spans, para_hash=para_hash, para_chars=chars, strippable=strippable,
                          signatures=sig, split_rows=split, words=n_words, kind=kind)


def strip_paragraphs(text: str, fp: DocFingerprint, removed: np.ndarray) -> str:
    """``text`` without the paragraphs whose indices are in ``removed`` (each with the separator after it)."""
    if len(removed) == 0:
        return text
    keep = np.ones(len(fp.spans), bool)
    keep[removed] = False
    starts = fp.spans[:, 0]
    nexts = np.r_[starts[1:], len(text)]
    pieces = [text[:starts[0]]]
    pieces += [text[s:e] for s, e in zip(starts[keep].tolist(), nexts[keep].tolist(), strict=True)]
    out = "".join(pieces)
    if not keep[-1]:  # the separator before a removed last paragraph is left dangling
        out = out.rstrip() + text[len(text.rstrip()):]
    return out


# ---------------------------------------------------------------------------------------------------------------
# The index (main process)


class _BandTable:
    """Band key -> signature rows: a sorted numpy run (12 bytes an entry) plus a dict of recent keys.

    The dict is merged into the sorted arrays when it reaches ``merge_at`` keys, so memory stays
    near 12 bytes per band key instead of a Python dict's ~100.
    """

    def __init__(self, merge_at: int = 1 << 17) -> None:
        self.merge_at = merge_at
        self.keys = np.empty(0, np.uint64)
        self.rows = np.empty(0, np.uint32)
        self.recent: dict[int, list[int]] = {}

    def lookup(self, keys: np.ndarray) -> set[int]:
        found: set[int] = set()
        if len(self.keys):
            lo = np.searchsorted(self.keys, keys, "left")
            hi = np.searchsorted(self.keys, keys, "right")
            for a, b in zip(lo.tolist(), hi.tolist(), strict=True):
                if b > a:
                    found.update(self.rows[a:b].tolist())
        for k in keys.tolist():
            found.update(self.recent.get(k, ()))
        return found

    def add(self, keys: np.ndarray, row: int) -> None:
        for k in keys.tolist():
            self.recent.setdefault(k, []).append(row)
        if len(self.recent) >= self.merge_at:
            self._merge()

    def _merge(self) -> None:
        new_keys = np.fromiter((k for k, rows in self.recent.items() for _ in rows), np.uint64)
        new_rows = np.fromiter((r for rows in self.recent.values() for r in rows), np.uint32)
        order = np.argsort(new_keys, kind="stable")
        new_keys, new_rows = new_keys[order], new_rows[order]
        at = np.searchsorted(self.keys, new_keys, "right")
        self.keys = np.insert(self.keys, at, new_keys)
        self.rows = np.insert(self.rows, at, new_rows)
        self.recent = {}


class DedupIndex:
    """Main-process state of deduplication: call ``check`` on every document in a fixed order.

    Memory grows with kept documents only: about 1 KB each (a 448-byte signature, 14 band keys, the
    exact hash, the hashes of its long paragraphs), measured on 30,000 two-paragraph documents.
    """

    def __init__(self, config: DedupConfig = DEFAULT_CONFIG):
        self.config = config
        rng = np.random.default_rng([config.seed, 0xBA4D])
        # Mixes a band's rows into one key; a different multiplier per band keeps bands apart in one table.
        self._band_mult = rng.integers(0, 2**64, size=(config.bands, config.rows), dtype=np.uint64) | np.uint64(1)
        self._exact: dict[int, str] = {}
        self._paragraph_seen: dict[int, int] = {}
        self._bands = _BandTable()
        self._sigs = np.empty((1024, config.num_hashes), np.uint32)
        self._sig_ids: list[str] = []
        self.stats = {"exact": 0, "near": 0, "boilerplate": 0, "paragraphs_stripped": 0}

    @classmethod
    def from_config(cls, values: Mapping[str, Any] | None = None) -> DedupIndex:
        """An index from a mapping of DedupConfig fields (e.g. the ingest config's ``dedup`` section)."""
        names = {f.name for f in fields(DedupConfig)}
        values = dict(values or {})
        unknown = sorted(set(values) - names)
        if unknown:
            raise ValueError(f"unknown dedup settings {unknown}; expected some of {sorted(names)}")
        return cls(DedupConfig(**values))

    def _band_keys(self, sig: np.ndarray) -> np.ndarray:
        c = self.config
        rows = sig[: c.bands * c.rows].reshape(c.bands, c.rows).astype(np.uint64)
        return mix64((rows * self._band_mult).sum(axis=1, dtype=np.uint64))

    def _remember(self, doc_id: str, sig: np.ndarray) -> None:
        row = len(self._sig_ids)
        if row == len(self._sigs):
            self._sigs = np.concatenate([self._sigs, np.empty_like(self._sigs)])
        self._sigs[row] = sig
        self._sig_ids.append(doc_id)
        self._bands.add(self._band_keys(sig), row)

    def _near(self, sig: np.ndarray) -> tuple[str, float] | None:
        rows = self._bands.lookup(self._band_keys(sig))
        if not rows:
            return None
        rows = np.fromiter(sorted(rows), np.int64)
        sims = (self._sigs[rows] == sig).mean(axis=1)
        best = int(np.argmax(sims))  # ties: the earliest document
        if sims[best] >= self.config.threshold:
            return self._sig_ids[rows[best]], float(sims[best])
        return None

    def _signature(self, text: str, fp: DocFingerprint, removed: np.ndarray, removed_mask: np.ndarray):
        """The MinHash signature of what is left of the document after stripping, or None if under ngram words."""
        if fp.signatures is None:
            return None
        if not len(removed):
            return fp.signatures.min(axis=0)
        if fp.split_rows:
            rows = np.r_[True, ~removed_mask]
            sig = fp.signatures[rows].min(axis=0)
            return None if (sig == _SENTINEL).all() else sig  # every shingle started in a removed paragraph
        again = fingerprint(strip_paragraphs(text, fp, removed), fp.kind, self.config)
        return None if again.signatures is None else again.signatures.min(axis=0)

    @staticmethod
    def _exact_hash(fp: DocFingerprint, keep: np.ndarray) -> int:
        return int.from_bytes(hashlib.blake2b(fp.para_hash[keep].tobytes(), digest_size=16).digest(), "little")

    def check(self, doc_id: str, text: str, fp: DocFingerprint) -> tuple[str | None, str, int]:
        """Decides one document; returns (drop reason or None, text with repeated paragraphs removed, how many).

        A kept document is recorded, so later copies of it are dropped. Reasons start with a class:
        'boilerplate: ...', 'duplicate: exact of <id>', 'near-duplicate of <id> (est. Jaccard 0.91)'.
        """
        c = self.config
        if fp.empty:
            return "empty: no words after normalisation", text, 0
        nonempty = fp.para_chars > 0
        exact = self._exact_hash(fp, nonempty)
        if c.exact and exact in self._exact:  # checked before stripping, so a plain copy is named as one
            self.stats["exact"] += 1
            return f"duplicate: exact of {self._exact[exact]}", text, 0
        strip_idx = np.flatnonzero(fp.strippable)
        strip_hashes = fp.para_hash[strip_idx].tolist()
        removed_mask = np.zeros(len(strip_idx), bool)
        if c.paragraphs and strip_hashes:
            seen = self._paragraph_seen
            removed_mask = np.fromiter((seen.get(h, 0) >= c.paragraph_repeats for h in strip_hashes), bool,
                                       len(strip_hashes))
        removed = strip_idx[removed_mask]
        if c.near and fp.signatures is not None and len(removed) >= _REVISION_MIN_PARAGRAPHS \
                and len(removed) >= _REVISION_SHARE * int(nonempty.sum()) \
                and (hit := self._near(fp.signatures.min(axis=0))) is not None:
            # Most paragraphs repeat earlier documents and the whole is close to one of them: a revised copy
            # (cv_v2.docx), dropped whole rather than cut down to its edited paragraphs.
            self.stats["near"] += 1
            return f"near-duplicate of {hit[0]} (est. Jaccard {hit[1]:.2f})", text, 0
        if len(removed):
            keep = nonempty.copy()
            keep[removed] = False
            if not keep.any():
                self.stats["boilerplate"] += 1
                return f"boilerplate: all {len(removed)} paragraphs repeat earlier documents", text, 0
            exact = self._exact_hash(fp, keep)
            if c.exact and exact in self._exact:
                self.stats["exact"] += 1
                return f"duplicate: exact of {self._exact[exact]} once repeated paragraphs are removed", text, 0
        sig = self._signature(text, fp, removed, removed_mask) if c.near else None
        if sig is not None and (hit := self._near(sig)) is not None:
            self.stats["near"] += 1
            return f"near-duplicate of {hit[0]} (est. Jaccard {hit[1]:.2f})", text, 0

        if c.exact:
            self._exact[exact] = doc_id
        if sig is not None:
            self._remember(doc_id, sig)
        if c.paragraphs:
            for h in set(strip_hashes):  # a paragraph counts once per document, even if repeated inside it
                self._paragraph_seen[h] = self._paragraph_seen.get(h, 0) + 1
        self.stats["paragraphs_stripped"] += len(removed)
        return None, strip_paragraphs(text, fp, removed), len(removed)
