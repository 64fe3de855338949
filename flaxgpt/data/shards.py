"""Token shards: flat uint16 token files with a document index and a JSON sidecar.

A shard set is one directory holding, per split (``train`` or ``val``) and shard number ``k``::

    {split}-{k:05d}.bin    little-endian uint16 token ids of all documents, back to back
    {split}-{k:05d}.idx    little-endian uint64 cumulative document END offsets (in tokens), so
                           document i is tokens[end[i-1]:end[i]] (with end[-1] = 0)
    {split}-{k:05d}.json   sidecar: format, version, split, shard, source, tokenizer metadata
                           (name, hash, vocab_size, eot_id), vocab_size, num_documents, num_tokens

Documents are stored WITHOUT an end-of-text token; the loader appends one. The sidecar is written
last, and each file is written under a temporary name and renamed into place, so a shard only
counts as present once its ``.json`` exists: a killed writer never leaves a half shard that looks
complete. Every split a writer touched gets at least shard 00000 (possibly empty), so readers can
tell "no documents" from "missing".
"""

from __future__ import annotations

import bisect
import json
import os
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

SPLITS = ("train", "val")
FORMAT = "flaxgpt-token-shard"
VERSION = 1
MAX_VOCAB = 65536  # uint16 token ids: the vocabulary must stay below this (the contract)
TOKEN_DTYPE = np.dtype("<u2")
INDEX_DTYPE = np.dtype("<u8")
DEFAULT_MAX_TOKENS_PER_SHARD = 2**28  # 512 MiB of uint16 per .bin
_REQUIRED_SIDECAR_KEYS = ("format", "version", "split", "shard", "source", "tokenizer", "vocab_size",
                          "num_documents", "num_tokens")
_REQUIRED_TOKENIZER_KEYS = ("name", "hash", "vocab_size")


def shard_prefix(directory: str | Path, split: str, k: int) -> Path:
    """Path of shard ``k`` of ``split`` without its extension."""
    return Path(directory) / f"{split}-{k:05d}"


def _check_split(split: str) -> None:
    if split not in SPLITS:
        raise ValueError(f"unknown split {split!r}: expected one of {SPLITS}")


def _fsync_write(path: Path, data: bytes) -> None:
    with open(path, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())


class ShardWriter:
    """Writes documents of one split into rolling token shards.

    Usage::

        with ShardWriter(out, "train", tokenizer_meta=tok.metadata(), source="blog") as w:
            for ids in docs:
                w.add(ids)
        # or: w = ShardWriter(...); ...; sidecars = w.close()

    A shard rolls over when the next document would push it past ``max_tokens_per_shard``;
    documents are never split across shards, so a single document longer than the limit gets a
    shard of its own. If the ``with`` body raises, the unfinished shard is deleted (shards already
    finished stay, each complete with its sidecar).
    """

    def __init__(self, directory: str | Path, split: str, *, tokenizer_meta: dict, source: str,
                 max_tokens_per_shard: int = DEFAULT_MAX_TOKENS_PER_SHARD):
        _check_split(split)
        missing = [k for k in _REQUIRED_TOKENIZER_KEYS if k not in tokenizer_meta]
        if missing:
            raise ValueError(f"tokenizer_meta is missing keys {missing}: got {sorted(tokenizer_meta)}")
        vocab_size = int(tokenizer_meta["vocab_size"])
        if not 0 < vocab_size < MAX_VOCAB:
            raise ValueError(f"tokenizer {tokenizer_meta['name']!r} has vocab_size {vocab_size}: token shards store "
                             f"uint16 ids, so the vocabulary must be below {MAX_VOCAB}")
        if max_tokens_per_shard < 1:
            raise ValueError(f"max_tokens_per_shard must be >= 1, got {max_tokens_per_shard}")
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)
        self.split = split
        self.source = source
        self.tokenizer_meta = dict(tokenizer_meta)
        self.vocab_size = vocab_size
        self.max_tokens_per_shard = int(max_tokens_per_shard)
        self._k = 0
        self._file = None  # open .bin.tmp of the current shard
        self._ends: list[int] = []
        self._num_tokens = 0
        self._sidecars: list[dict] = []
        self._closed = False

    def _tmp(self, ext: str) -> Path:
        return shard_prefix(self.directory, self.split, self._k).with_suffix(f".{ext}.tmp")

    def add(self, doc_tokens: Sequence[int] | np.ndarray) -> None:
        """Appends one document (token ids without an end-of-text token)."""
        if self._closed:
            raise RuntimeError(f"ShardWriter for {self.directory} ({self.split}) is closed")
        arr = np.asarray(doc_tokens)
        if arr.ndim != 1 or (arr.size and not np.issubdtype(arr.dtype, np.integer)):
            raise ValueError(f"a document must be a 1-D sequence of integer ids, got shape {arr.shape} "
                             f"dtype {arr.dtype}")
        if arr.size == 0:
            raise ValueError("empty document: skip it before writing (every stored document has >= 1 token)")
        lo, hi = int(arr.min()), int(arr.max())
        if lo < 0 or hi >= self.vocab_size:
            raise ValueError(f"token id out of range [0, {self.vocab_size}): min {lo}, max {hi}")
        if self._file is not None and self._num_tokens + arr.size > self.max_tokens_per_shard:
            self._finish_shard()
        if self._file is None:
            self._file = open(self._tmp("bin"), "wb")  # noqa: SIM115 (kept open across add() calls)
        self._file.write(arr.astype(TOKEN_DTYPE, copy=False).tobytes())
        self._num_tokens += arr.size
        self._ends.append(self._num_tokens)

    def _finish_shard(self) -> None:
        """Makes the current shard visible: .bin and .idx renamed into place, then the sidecar."""
        if self._file is None:  # an empty shard: only written so the split exists
            self._file = open(self._tmp("bin"), "wb")  # noqa: SIM115
        self._file.flush()
        os.fsync(self._file.fileno())
        self._file.close()
        self._file = None
        prefix = shard_prefix(self.directory, self.split, self._k)
        _fsync_write(self._tmp("idx"), np.asarray(self._ends, dtype=INDEX_DTYPE).tobytes())
        sidecar = {
            "format": FORMAT,
            "version": VERSION,
            "split": self.split,
            "shard": self._k,
            "source": self.source,
            "tokenizer": self.tokenizer_meta,
            "vocab_size": self.vocab_size,
            "num_documents": len(self._ends),
            "num_tokens": self._num_tokens,
            "token_dtype": TOKEN_DTYPE.str,
            "index_dtype": INDEX_DTYPE.str,
        }
        _fsync_write(self._tmp("json"), (json.dumps(sidecar, indent=2, sort_keys=True) + "\n").encode())
        os.replace(self._tmp("bin"), prefix.with_suffix(".bin"))
        os.replace(self._tmp("idx"), prefix.with_suffix(".idx"))
        # The sidecar last: its presence is what marks the shard complete.
        os.replace(self._tmp("json"), prefix.with_suffix(".json"))
        self._sidecars.append(sidecar)
        self._k += 1
        self._ends = []
        self._num_tokens = 0

    def close(self) -> list[dict]:
        """Finishes the last shard and returns the sidecars of all shards written, in order."""
        if not self._closed:
            if self._file is not None or not self._sidecars:
                self._finish_shard()
            self._closed = True
        return list(self._sidecars)

    def abort(self) -> None:
        """Deletes the unfinished shard's temporary files; finished shards stay."""
        if self._file is not None:
            self._file.close()
            self._file = None
        for ext in ("bin", "idx", "json"):
            self._tmp(ext).unlink(missing_ok=True)
        self._closed = True

    def __enter__(self) -> ShardWriter:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort()


def read_sidecar(path: str | Path) -> dict:
    """Reads and checks a shard sidecar; ``path`` is the ``.json`` file or the shard prefix."""
    path = Path(path)
    if path.suffix != ".json":
        path = path.with_suffix(".json")
    try:
        meta = json.loads(path.read_text())
    except FileNotFoundError:
        raise FileNotFoundError(f"shard sidecar not found: {path}") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise ValueError(f"{path}: not a valid JSON sidecar ({e})") from None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise ValueError(f"{path}: not a flaxgpt token shard sidecar (format != {FORMAT!r})")
    if meta.get("version") != VERSION:
        raise ValueError(f"{path}: shard format version {meta.get('version')!r}, this flaxgpt reads {VERSION}")
    missing = [k for k in _REQUIRED_SIDECAR_KEYS if k not in meta]
    if missing:
        raise ValueError(f"{path}: sidecar is missing keys {missing}")
    missing = [k for k in _REQUIRED_TOKENIZER_KEYS if k not in meta["tokenizer"]]
    if missing:
        raise ValueError(f"{path}: sidecar 'tokenizer' is missing keys {missing}")
    return meta


def list_shards(directory: str | Path, split: str) -> list[Path]:
    """Sorted prefixes (``{dir}/{split}-{k:05d}``) of the complete shards of ``split`` in ``directory``.

    Raises FileNotFoundError naming the directory when it holds no shard of that split, and
    ValueError when shard numbers have a gap (a partial or mixed-up shard set).
    """
    _check_split(split)
    directory = Path(directory)
    if not directory.is_dir():
        raise FileNotFoundError(f"shard directory not found: {directory}")
    prefixes = sorted(p.with_suffix("") for p in directory.glob(f"{split}-[0-9][0-9][0-9][0-9][0-9].json"))
    if not prefixes:
        raise FileNotFoundError(f"no {split!r} shards in {directory} (expected {split}-00000.json etc.; "
                                "run `flaxgpt tokenize` to make them)")
    numbers = [int(p.name.split("-")[1]) for p in prefixes]
    if numbers != list(range(len(numbers))):
        raise ValueError(f"{directory}: {split!r} shard numbers {numbers} are not 0..{len(numbers) - 1}; "
                         "the shard set is incomplete")
    return prefixes


class ShardSet:
    """All documents of one split of a shard set, as a grain random-access data source.

    ``len(s)`` is the number of documents and ``s[i]`` the int32 tokens of document i (no
    end-of-text), counting across shards in shard order. Token and index files are opened lazily
    as ``np.memmap`` on first access in each process and never pickled, so a ShardSet pickles to
    a few hundred bytes and can be sent to grain worker processes.
    """

    def __init__(self, directory: str | Path, split: str = "train"):
        self.directory = Path(directory)
        self.split = split
        self._prefixes = list_shards(self.directory, split)
        self.meta: list[dict] = [read_sidecar(p) for p in self._prefixes]
        self._check_consistent()
        counts = [int(m["num_documents"]) for m in self.meta]
        self._doc_starts = [int(x) for x in np.cumsum([0, *counts[:-1]])]
        self._num_docs = sum(counts)
        self.num_tokens: int = sum(int(m["num_tokens"]) for m in self.meta)
        self._lock = threading.Lock()
        self._arrays: list[tuple[np.ndarray, np.ndarray]] | None = None
        self._pid: int | None = None

    def _check_consistent(self) -> None:
        """All shards must come from one tokenizer and have files of the size their sidecars say."""
        first = self.meta[0]["tokenizer"]
        for prefix, m in zip(self._prefixes, self.meta, strict=True):
            tok = m["tokenizer"]
            if (tok["name"], tok["hash"], int(tok["vocab_size"])) != (first["name"], first["hash"],
                                                                      int(first["vocab_size"])):
                raise ValueError(f"{prefix}.json: tokenizer {tok['name']}/{tok['hash']} (vocab {tok['vocab_size']}) "
                                 f"differs from {self._prefixes[0]}.json: {first['name']}/{first['hash']} "
                                 f"(vocab {first['vocab_size']}); one shard set must use one tokenizer")
            if m["split"] != self.split:
                raise ValueError(f"{prefix}.json: sidecar says split {m['split']!r}, file name says {self.split!r}")
            if int(m["vocab_size"]) >= MAX_VOCAB:
                raise ValueError(f"{prefix}.json: vocab_size {m['vocab_size']} does not fit uint16 shards")
            for ext, expected in ((".bin", int(m["num_tokens"]) * TOKEN_DTYPE.itemsize),
                                  (".idx", int(m["num_documents"]) * INDEX_DTYPE.itemsize)):
                path = prefix.with_suffix(ext)
                if not path.exists():
                    raise FileNotFoundError(f"{path} is missing although its sidecar exists")
                size = path.stat().st_size
                if size != expected:
                    raise ValueError(f"{path}: {size} bytes, sidecar implies {expected}; the shard is corrupt")

    @property
    def tokenizer_meta(self) -> dict:
        """Tokenizer metadata shared by all shards (name, hash, vocab_size, eot_id)."""
        return dict(self.meta[0]["tokenizer"])

    @property
    def vocab_size(self) -> int:
        """Vocabulary size of the tokenizer that made the shards."""
        return int(self.meta[0]["vocab_size"])

    def _open(self) -> list[tuple[np.ndarray, np.ndarray]]:
        # Reopen after fork: a memmap inherited from the parent would work, but a fresh one keeps
        # each process's page-cache accounting and file handles its own.
        if self._arrays is None or self._pid != os.getpid():
            with self._lock:
                if self._arrays is None or self._pid != os.getpid():
                    arrays = []
                    for prefix, m in zip(self._prefixes, self.meta, strict=True):
                        if int(m["num_documents"]) == 0:  # mmap cannot map an empty file
                            arrays.append((np.empty(0, TOKEN_DTYPE), np.empty(0, INDEX_DTYPE)))
                            continue
                        arrays.append((np.memmap(prefix.with_suffix(".bin"), dtype=TOKEN_DTYPE, mode="r"),
                                       np.memmap(prefix.with_suffix(".idx"), dtype=INDEX_DTYPE, mode="r")))
                    self._arrays = arrays
                    self._pid = os.getpid()
        return self._arrays

    def __len__(self) -> int:
        return self._num_docs

    def __getitem__(self, index: int) -> np.ndarray:
        i = int(index)
        if i < 0:
            i += self._num_docs
        if not 0 <= i < self._num_docs:
            raise IndexError(f"document {index} out of range for {self!r}")
        shard = bisect.bisect_right(self._doc_starts, i) - 1
        j = i - self._doc_starts[shard]
        tokens, ends = self._open()[shard]
        start = int(ends[j - 1]) if j else 0
        return np.array(tokens[start:int(ends[j])], dtype=np.int32)

    def document_lengths(self) -> np.ndarray:
        """Token count of every document (int64, in document order), read from the indexes only."""
        parts = []
        for tokens, ends in self._open():
            del tokens
            ends = np.asarray(ends, dtype=np.int64)
            parts.append(np.diff(ends, prepend=0))
        return np.concatenate(parts) if parts else np.empty(0, np.int64)

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        # Never pickle the data: workers reopen the memmaps themselves.
        state["_arrays"] = None
        state["_pid"] = None
        state["_lock"] = None
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return (f"ShardSet({str(self.directory)!r}, split={self.split!r}, shards={len(self._prefixes)}, "
                f"documents={self._num_docs}, tokens={self.num_tokens})")

