"""GPT-2 byte-pair encoding through tiktoken, loaded offline from the bundled rank file.

Two tokenizers share GPT-2's 50,257 ids:
  * ``gpt2``: exactly GPT-2 (``<|endoftext|>`` = 50256), for pretraining and HuggingFace parity;
  * ``flaxgpt``: GPT-2 plus the special tokens the chat template, Constitutional AI and batching
    (``<|pad|>``) use, numbered from 50257 upwards (still far below the uint16 limit of the token shards).

Either can carry a *personal vocabulary* (``flaxgpt.data.vocab`` picks it): frequent terms of one person's
corpus that GPT-2 splits into many pieces, each made one ordinary token numbered after the specials.
  * A word term (``" Halvorsen"``, ``"Halvorsen"``: letters with an optional leading space, exactly a
    GPT-2 pre-token) is added to the BPE ranks. tiktoken looks every pre-token up whole before running
    BPE, so such a word becomes its token with no merge path and no cost; the new ranks come after all of
    GPT-2's, so other words keep their GPT-2 pieces unless BPE ends next to a term-sized pair (still lossless).
  * A compound term (``"data_loader"``, ``" flax-gpt"``: parts joined by ``-`` or ``_``) spans several
    pre-tokens, which tiktoken never joins, so after encoding the run of ids that spells it is replaced by
    its id (``_CompoundMerger``), only where it starts and ends on a word boundary.
Decoding is plain tiktoken decoding in both cases, so it round-trips exactly.

Data is always encoded with ``encode`` (tiktoken's ``encode_ordinary``): text a user feeds in can
never produce a control token, even if it literally contains ``<|endoftext|>``.

A tokenizer is described by its *spec* (``Tokenizer.spec()``, a small JSON-able dict) from which
``tokenizer_from_spec`` rebuilds it exactly; ``save_spec`` stores it as ``tokenizer.json`` next to the
shards. ``metadata()`` (name, hash, vocab_size, eot_id) is what shards and checkpoints record, and
``check_compatible`` refuses to combine two that differ.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import tiktoken
from tiktoken.load import load_tiktoken_bpe

from flaxgpt.data.jsonfile import read_json

GPT2_RANKS = Path(__file__).parent / "assets" / "gpt2.tiktoken"
GPT2_RANKS_SHA256 = "306cd27f03c1a714eca7108e03d66b7dc042abe8c258b44c199a7ed9838dd930"
# tiktoken's pattern for r50k_base (GPT-2).
GPT2_PATTERN = r"""'(?:[sdmt]|ll|ve|re)| ?\p{L}++| ?\p{N}++| ?[^\s\p{L}\p{N}]++|\s++$|\s+(?!\S)|\s"""
EOT = "<|endoftext|>"
PAD = "<|pad|>"
# Extra special tokens of the ``flaxgpt`` tokenizer, in id order after 50256 (append only: ids must not move).
FLAXGPT_SPECIALS = (
    "<|system|>",
    "<|user|>",
    "<|assistant|>",
    "<|end|>",
    "<|constitutional|>",
    "<|critique|>",
    "<|revision|>",
    PAD,
)
TOKENIZERS = ("gpt2", "flaxgpt")
MAX_VOCAB = 65536  # token shards store uint16 ids: every id must be below this
PERSONAL_SUFFIX = "+personal"
MAX_TERM_CHARS = 48
# Goes into the hash of personal tokenizers only: bump it if the way terms are encoded changes.
PERSONAL_SCHEME = "word-ranks+compound-merge/1"
SPEC_FORMAT = "flaxgpt-tokenizer"
SPEC_VERSION = 1
SPEC_FILE = "tokenizer.json"


_JOINER = re.compile(r"[-_]")


def term_kind(term: str) -> str | None:
    """'word' (letters, optionally after one space: a GPT-2 pre-token), 'compound' (letter/digit parts
    joined by ``-`` or ``_``, the first starting with a letter) or None if ``term`` cannot be a personal term."""
    body = term[1:] if term.startswith(" ") else term
    if not body[:1].isalpha():
        return None
    if body.isalpha():
        return "word"
    parts = _JOINER.split(body)
    if len(parts) > 1 and all(p and all(c.isalpha() or c.isnumeric() for c in p) for p in parts):
        return "compound"
    return None


class _CompoundMerger:
    """Replaces the id runs that spell compound terms by the terms' own ids, leftmost-longest.

    A compound is several GPT-2 pre-tokens (``data``, ``_``, ``loader``), and pre-tokens are encoded
    independently, so wherever the compound stands alone its ids are exactly ``encode(term)``. A run
    only counts when it sits on word boundaries: the id before must not end in a letter (unless the term
    starts with a space, which always begins a pre-token) and the id after must not continue the last
    part (a letter after a letter, a digit after a digit). The joiner ids (``-``, ``_``) anchor the
    search, so documents without them cost one scan.
    """

    def __init__(self, encoding: tiktoken.Encoding, compounds: Sequence[tuple[str, int]]):
        self.joiners = tuple(encoding.encode_single_token(j) for j in ("-", "_"))
        # first part's ids -> [(all ids, term id, term has a leading space, term ends in a digit)], longest first
        self.by_head: dict[tuple[int, ...], list[tuple[list[int], int, bool, bool]]] = {}
        for term, tid in compounds:
            ids = encoding.encode_ordinary(term)
            head = next(i for i, t in enumerate(ids) if t in self.joiners)
            self.by_head.setdefault(tuple(ids[:head]), []).append((ids, tid, term[0] == " ", term[-1].isdigit()))
        for runs in self.by_head.values():
            runs.sort(key=lambda r: -len(r[0]))
        self.head_lens = sorted({len(h) for h in self.by_head}, reverse=True)
        self.ends_letter, self.starts_letter, self.starts_digit = _edge_classes(encoding)
        self.ends_head = np.zeros(encoding.n_vocab, dtype=bool)  # id can be the last of a first part
        self.ends_head[[h[-1] for h in self.by_head]] = True

    def __call__(self, ids: list[int]) -> list[int]:
        """Ids from ``encode_ordinary`` -> the same text with compound terms as single ids."""
        if not any(j in ids for j in self.joiners):
            return ids
        arr = np.array(ids, dtype=np.int32)
        joins = np.flatnonzero((arr == self.joiners[0]) | (arr == self.joiners[1]))
        joins = joins[joins > 0]
        joins = joins[self.ends_head[arr[joins - 1]]].tolist()  # only joiners right after a first part
        out: list[int] = []
        done = 0  # ids before this are already in out
        n = len(ids)
        for j in joins:
            if j < done:
                continue
            match = self._match_at(ids, j, done, n)
            if match is not None:
                start, end, tid = match
                out.extend(ids[done:start])
                out.append(tid)
                done = end
        if not out:
            return ids
        out.extend(ids[done:])
        return out

    def _match_at(self, ids: list[int], j: int, lo: int, n: int) -> tuple[int, int, int] | None:
        """(start, end, term id) of the longest term whose first joiner is ids[j], or None."""
        for hl in self.head_lens:
            start = j - hl
            if start < lo:
                continue
            runs = self.by_head.get(tuple(ids[start:j]))
            if not runs:
                continue
            mid_word = start > 0 and self.ends_letter[ids[start - 1]]
            for run, tid, spaced, ends_digit in runs:
                if mid_word and not spaced:  # a leading space always begins a word; a letter never ends one
                    continue
                end = start + len(run)
                if end > n or ids[start:end] != run:
                    continue
                if end < n and (self.starts_digit if ends_digit else self.starts_letter)[ids[end]]:
                    continue  # the last part goes on: not this word
                return start, end, tid
        return None


def _edge_classes(encoding: tiktoken.Encoding) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per id: does its text end in a letter, start with a letter, start with a digit."""
    n = encoding.n_vocab
    ends_letter, starts_letter, starts_digit = (np.zeros(n, dtype=bool) for _ in range(3))
    for i in range(n):
        try:
            text = encoding.decode_single_token_bytes(i).decode("utf-8", "ignore")
        except KeyError:  # an unused id between the ranks and the specials
            continue
        if text:
            ends_letter[i] = text[-1].isalpha()
            starts_letter[i] = text[0].isalpha()
            starts_digit[i] = text[0].isdigit()
    return ends_letter, starts_letter, starts_digit


@dataclass(frozen=True)
class Tokenizer:
    """A named tiktoken encoding with the ids flaxgpt needs, optionally with personal terms."""

    name: str
    encoding: tiktoken.Encoding
    base: str = ""  # 'gpt2' or 'flaxgpt' ("" means the same as name)
    personal: tuple[str, ...] = ()  # personal terms, ids base vocab_size, base vocab_size + 1, ...
    _merge: _CompoundMerger | None = field(default=None, repr=False, compare=False)

    @property
    def base_name(self) -> str:
        """The built-in tokenizer this one extends ('gpt2' or 'flaxgpt')."""
        return self.base or self.name

    @property
    def vocab_size(self) -> int:
        """Number of ids, special tokens included (the model pads this up to a multiple of 128)."""
        return self.encoding.n_vocab

    @property
    def eot_id(self) -> int:
        """Id of ``<|endoftext|>`` (50256 in every flaxgpt tokenizer)."""
        return self.encoding.eot_token

    @property
    def pad_id(self) -> int | None:
        """Id of ``<|pad|>`` (``flaxgpt`` tokenizers), or None when the tokenizer has none (``gpt2``)."""
        return self.special_ids.get(PAD)

    @property
    def special_ids(self) -> dict[str, int]:
        """Control token text -> id (never produced by ``encode``)."""
        return {tok: self.encoding.encode_single_token(tok) for tok in self.encoding.special_tokens_set}

    @property
    def personal_ids(self) -> dict[str, int]:
        """Personal term -> its id (empty without a personal vocabulary)."""
        first = self.vocab_size - len(self.personal)
        return {term: first + i for i, term in enumerate(self.personal)}

    def encode(self, text: str) -> list[int]:
        """Text -> ids, treating special-token text as ordinary text."""
        ids = self.encoding.encode_ordinary(text)
        return self._merge(ids) if self._merge is not None else ids

    def encode_array(self, text: str) -> np.ndarray | list[int]:
        """``encode``'s ids, as a uint32 array where tiktoken gives one directly: no list of Python ints is built
        to be turned back into an array (the two cost about a third as much as encoding). tiktoken's ``encode``
        with no special token allowed or disallowed is ``encode_ordinary``. A list where that cannot be: a
        personal vocabulary merges terms on the list; text tiktoken refuses (a lone surrogate) goes through
        ``encode``, which repairs it first."""
        if self._merge is not None:
            return self.encode(text)
        try:
            return self.encoding.encode_to_numpy(text, allowed_special=set(), disallowed_special=())
        except (UnicodeEncodeError, ValueError):
            return self.encode(text)

    def encode_batch(self, texts: list[str], num_threads: int = 4) -> list[list[int]]:
        """Texts -> ids of each, as ``encode`` (tiktoken encodes them on ``num_threads`` threads)."""
        batch = self.encoding.encode_ordinary_batch(texts, num_threads=num_threads)
        return [self._merge(ids) for ids in batch] if self._merge is not None else batch

    def decode(self, ids) -> str:
        """Ids (any integer sequence or array) -> text; the exact inverse of ``encode``."""
        return self.encoding.decode([int(i) for i in ids])

    def metadata(self) -> dict:
        """What a shard or checkpoint records so a mismatch is caught when they are combined."""
        return {"name": self.name, "hash": self._hash, "vocab_size": self.vocab_size, "eot_id": self.eot_id}

    @functools.cached_property
    def _hash(self) -> str:
        specials = sorted(self.special_ids.items(), key=lambda kv: kv[1])
        text = GPT2_RANKS_SHA256 + GPT2_PATTERN + repr(specials)
        if self.personal:  # appended only when present, so gpt2 and flaxgpt keep their recorded hashes
            text += PERSONAL_SCHEME + repr(sorted(self.personal_ids.items(), key=lambda kv: kv[1]))
        return hashlib.sha256(text.encode()).hexdigest()[:16]

    def spec(self) -> dict:
        """A JSON-able description from which ``tokenizer_from_spec`` rebuilds this tokenizer exactly."""
        return {
            "format": SPEC_FORMAT,
            "version": SPEC_VERSION,
            "name": self.name,
            "base": self.base_name,
            "specials": dict(sorted(self.special_ids.items(), key=lambda kv: kv[1])),
            "personal": [[term, i] for term, i in self.personal_ids.items()],
            "vocab_size": self.vocab_size,
            "hash": self._hash,
        }


@functools.cache
def _gpt2_ranks() -> dict[bytes, int]:
    if not GPT2_RANKS.exists():
        raise FileNotFoundError(f"GPT-2 BPE ranks missing: {GPT2_RANKS} (reinstall flaxgpt)")
    return load_tiktoken_bpe(str(GPT2_RANKS), expected_hash=GPT2_RANKS_SHA256)


def get_tokenizer(name: str = "gpt2", personal: Sequence[str] = ()) -> Tokenizer:
    """Returns the tokenizer ``name`` ('gpt2' or 'flaxgpt'), with ``personal`` terms as extra single tokens.

    Personal terms get ids from the base vocabulary size on, in the order given. Each must be a word
    (letters, optional leading space) or a compound (letter/digit parts joined by ``-`` or ``_``) that
    GPT-2 does not already have as one token. No network access; tokenizers are cached.
    """
    if name.endswith(PERSONAL_SUFFIX):
        raise ValueError(f"tokenizer {name!r} has a personal vocabulary: rebuild it from the tokenizer.json saved "
                         "with its shards or checkpoint (tokenizer_from_spec(load_spec(directory)))")
    if isinstance(personal, str):
        raise TypeError("personal must be a sequence of terms, not one string")
    return _build(name, tuple(personal))


@functools.cache
def _build(name: str, personal: tuple[str, ...]) -> Tokenizer:
    ranks = _gpt2_ranks()
    specials = {EOT: 50256}
    if name == "flaxgpt":
        specials.update({tok: 50257 + i for i, tok in enumerate(FLAXGPT_SPECIALS)})
    elif name != "gpt2":
        raise ValueError(f"unknown tokenizer {name!r}: expected 'gpt2' or 'flaxgpt'")
    n_base = max(specials.values()) + 1
    if n_base + len(personal) >= MAX_VOCAB:
        raise ValueError(f"{len(personal)} personal terms on {name!r} ({n_base} ids) make {n_base + len(personal)} "
                         f"ids: token shards store uint16, so at most {MAX_VOCAB - 1 - n_base} terms fit")
    if personal:
        _check_terms(personal, ranks)
        ranks = {**ranks, **{term.encode(): n_base + i for i, term in enumerate(personal)}}
    enc = tiktoken.Encoding(name=f"flaxgpt-{name}{PERSONAL_SUFFIX if personal else ''}", pat_str=GPT2_PATTERN,
                            mergeable_ranks=ranks, special_tokens=specials)
    compounds = [(t, n_base + i) for i, t in enumerate(personal) if term_kind(t) == "compound"]
    return Tokenizer(name=name + (PERSONAL_SUFFIX if personal else ""), encoding=enc, base=name,
                     personal=personal, _merge=_CompoundMerger(enc, compounds) if compounds else None)


def _check_terms(terms: tuple[str, ...], ranks: dict[bytes, int]) -> None:
    """Raises ValueError naming the first personal term that cannot be a token of its own."""
    seen: set[str] = set()
    for term in terms:
        if not isinstance(term, str) or term_kind(term) is None:
            raise ValueError(f"personal term {term!r}: expected letters (optionally after one space) or letter/digit "
                             "parts joined by '-' or '_'")
        if len(term) > MAX_TERM_CHARS:
            raise ValueError(f"personal term {term!r} is longer than {MAX_TERM_CHARS} characters")
        if term in seen:
            raise ValueError(f"personal term {term!r} is listed twice")
        if term.encode() in ranks:
            raise ValueError(f"personal term {term!r} is already one GPT-2 token")
        seen.add(term)


def tokenizer_from_spec(spec: dict) -> Tokenizer:
    """Rebuilds the tokenizer a spec (``Tokenizer.spec()``) describes; ValueError if it cannot be exact."""
    if not isinstance(spec, dict) or spec.get("format") != SPEC_FORMAT:
        raise ValueError(f"not a flaxgpt tokenizer spec (format != {SPEC_FORMAT!r})")
    if spec.get("version") != SPEC_VERSION:
        raise ValueError(f"tokenizer spec version {spec.get('version')!r}, this flaxgpt reads {SPEC_VERSION}")
    base, personal = spec.get("base"), spec.get("personal", [])
    if base not in TOKENIZERS:
        raise ValueError(f"tokenizer spec: unknown base {base!r}, expected one of {TOKENIZERS}")
    if not isinstance(personal, list) or not all(isinstance(p, list) and len(p) == 2 for p in personal):
        raise ValueError("tokenizer spec: 'personal' must be a list of [term, id] pairs")
    tok = get_tokenizer(base, tuple(term for term, _ in personal))
    ours = tok.spec()
    for key in ("specials", "personal", "hash"):
        if key in spec and spec[key] != ours[key]:
            raise ValueError(f"tokenizer spec: {key!r} differs from what this flaxgpt builds from it "
                             f"(spec hash {spec.get('hash')}, rebuilt {ours['hash']}); ids would mean other text")
    return tok


def save_spec(directory: str | Path, tokenizer: Tokenizer) -> Path:
    """Writes ``tokenizer.spec()`` to ``directory/tokenizer.json`` (atomically) and returns the path."""
    path = Path(directory) / SPEC_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(tokenizer.spec(), indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    os.replace(tmp, path)
    return path


def load_spec(directory: str | Path) -> dict:
    """Reads ``directory/tokenizer.json``; rebuild the tokenizer with ``tokenizer_from_spec``."""
    path = Path(directory) / SPEC_FILE
    spec = read_json(path, "tokenizer spec", "tokenizer spec")
    if not isinstance(spec, dict) or spec.get("format") != SPEC_FORMAT:
        raise ValueError(f"{path}: not a flaxgpt tokenizer spec (format != {SPEC_FORMAT!r})")
    return spec


def load_tokenizer(name_or_path: str) -> Tokenizer:
    """The tokenizer a config names: 'gpt2', 'flaxgpt', or a folder holding a ``tokenizer.json`` spec (an
    ingest output with a personal vocabulary) or the path of such a file."""
    if name_or_path in ("gpt2", "flaxgpt"):
        return get_tokenizer(name_or_path)
    path = Path(name_or_path).expanduser()
    if path.name == SPEC_FILE:
        path = path.parent
    return tokenizer_from_spec(load_spec(path))


def check_compatible(meta_a: dict, meta_b: dict, where: str) -> None:
    """Raises ValueError if two tokenizer metadata dicts (``metadata()``) name different tokenizers.

    ``where`` says which files are being combined, e.g. ``"shards in data/ vs checkpoint runs/x/100"``;
    the message names both tokenizers and hashes so the user can tell which side to rebuild.
    """
    a, b = meta_a.get("hash"), meta_b.get("hash")
    if a is None or b is None or a != b or meta_a.get("vocab_size") != meta_b.get("vocab_size"):
        raise ValueError(f"{where}: tokenizers differ: {meta_a.get('name')!r} (hash {a}, vocab "
                         f"{meta_a.get('vocab_size')}) vs {meta_b.get('name')!r} (hash {b}, vocab "
                         f"{meta_b.get('vocab_size')}); token ids would mean other text: re-tokenize or use the "
                         "matching tokenizer")
