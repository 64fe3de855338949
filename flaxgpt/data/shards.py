"""Token shards: flat uint16 token files with a document index and a JSON sidecar.
(One module over 400 lines: the format's writer and its reader stay together, as each checks what the other writes.)

A shard set is one directory holding, per split (``train`` or ``val``) and shard number ``k``::

    {split}-{k:05d}.bin    little-endian uint16 token ids of all documents, back to back
    {split}-{k:05d}.idx    little-endian uint64 cumulative document END offsets (in tokens), so
                           document i is tokens[end[i-1]:end[i]] (with end[-1] = 0)
    {split}-{k:05d}.json   sidecar: format, version, split, shard, source, tokenizer metadata
                           (name, hash, vocab_size, eot_id), vocab_size, num_documents, num_tokens
    {split}-{k:05d}.mask   optional: one uint8 loss-mask value (0 or 1) per token, same length as the
                           .bin; present exactly when the sidecar has a ``loss_mask`` entry
                           ({"dtype": "|u1", "trained_tokens": number of ones})

Documents are stored WITHOUT an end-of-text token; the loader appends one (pretraining). Chat
shards (``flaxgpt tokenize-chat``, for SFT) carry the loss mask: 1 on the tokens a model is trained
to produce (assistant content and its end of turn), 0 elsewhere. Pretraining shards have no mask
file, which means all ones, and every reader of tokens sees both kinds the same way. The sidecar is written
last, and each file is written under a temporary name and renamed into place, so a shard only
counts as present once its ``.json`` exists: a killed writer never leaves a half shard that looks
complete. Every split a writer touched gets at least shard 00000 (possibly empty), so readers can
tell "no documents" from "missing".
"""

from __future__ import annotations

import array
import bisect
import json
import os
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from flaxgpt.data.jsonfile import read_json

SPLITS = ("train", "val")
FORMAT = "flaxgpt-token-shard"
VERSION = 1
MAX_VOCAB = 65536  # uint16 token ids: the vocabulary must stay below this (the contract)
TOKEN_DTYPE = np.dtype("<u2")
INDEX_DTYPE = np.dtype("<u8")
MASK_DTYPE = np.dtype("|u1")
DEFAULT_MAX_TOKENS_PER_SHARD = 2**28  # 512 MiB of uint16 per .bin
MIXTURE_FILE = "mixture.json"  # a folder of shard sets with their weights (`flaxgpt ingest` output)
_REQUIRED_SIDECAR_KEYS = ("format", "version", "split", "shard", "source", "tokenizer", "vocab_size",
                          "num_documents", "num_tokens")
_REQUIRED_TOKENIZER_KEYS = ("name", "hash", "vocab_size")


def shard_prefix(directory: str | Path, split: str, k: int) -> Path:
    """Path of shard ``k`` of ``split`` without its extension."""
    return Path(directory) / f"{split}-{k:05d}"


def _check_split(split: str) -> None:
    if split not in SPLITS:
        raise ValueError(f"unknown split {split!r}: expected one of {SPLITS}")


def _as_ids(doc_tokens: Sequence[int] | np.ndarray) -> np.ndarray:
    """``np.asarray(doc_tokens)``, about 1.5x as fast for the plain list of ints a tokenizer returns.

    numpy scans such a list once to find its dtype and again to convert it; ``array('q')`` converts it in
    one C pass and refuses anything np.asarray would not make int64 of (floats, strings, nested lists, ints
    past int64), which then goes to np.asarray so ``add`` reports it as before. A list starting with a bool
    goes there too: np.asarray makes a bool array, not ints, of a list of bools.
    """
    if type(doc_tokens) is list and doc_tokens and type(doc_tokens[0]) is not bool:
        try:
            return np.frombuffer(array.array("q", doc_tokens), np.int64)
        except (TypeError, OverflowError):
            pass
    return np.asarray(doc_tokens)


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

    With ``loss_mask=True`` every ``add`` takes a per-token mask too, written to ``.mask`` files
    (chat shards for SFT); without it the writer makes plain pretraining shards.

    A shard rolls over when the next document would push it past ``max_tokens_per_shard``;
    documents are never split across shards, so a single document longer than the limit gets a
    shard of its own. If the ``with`` body raises, the unfinished shard is deleted (shards already
    finished stay, each complete with its sidecar).
    """

    def __init__(self, directory: str | Path, split: str, *, tokenizer_meta: dict, source: str,
                 max_tokens_per_shard: int = DEFAULT_MAX_TOKENS_PER_SHARD, loss_mask: bool = False):
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
        self.loss_mask = bool(loss_mask)
        self._mask_file = None  # open .mask.tmp of the current shard (loss_mask only)
        self._trained_tokens = 0
        self._ends: list[int] = []
        self._num_tokens = 0
        self._sidecars: list[dict] = []
        self._closed = False

    def _tmp(self, ext: str) -> Path:
        return shard_prefix(self.directory, self.split, self._k).with_suffix(f".{ext}.tmp")

    def add(self, doc_tokens: Sequence[int] | np.ndarray, mask: Sequence[int] | np.ndarray | None = None) -> None:
        """Appends one document (token ids without an end-of-text token) and, for a ``loss_mask`` writer,
        its mask (one 0 or 1 per token)."""
        if self._closed:
            raise RuntimeError(f"ShardWriter for {self.directory} ({self.split}) is closed")
        arr = _as_ids(doc_tokens)
        if arr.ndim != 1 or (arr.size and not np.issubdtype(arr.dtype, np.integer)):
            raise ValueError(f"a document must be a 1-D sequence of integer ids, got shape {arr.shape} "
                             f"dtype {arr.dtype}")
        if arr.size == 0:
            raise ValueError("empty document: skip it before writing (every stored document has >= 1 token)")
        lo, hi = int(arr.min()), int(arr.max())
        if lo < 0 or hi >= self.vocab_size:
            raise ValueError(f"token id out of range [0, {self.vocab_size}): min {lo}, max {hi}")
        mask_arr = self._check_mask(mask, arr.size)
        if self._file is not None and self._num_tokens + arr.size > self.max_tokens_per_shard:
            self._finish_shard()
        if self._file is None:
            self._file = open(self._tmp("bin"), "wb")  # noqa: SIM115 (kept open across add() calls)
            if self.loss_mask:
                self._mask_file = open(self._tmp("mask"), "wb")  # noqa: SIM115
        if mask_arr is not None:
            self._mask_file.write(mask_arr.tobytes())
            self._trained_tokens += int(mask_arr.sum())
        self._file.write(np.ascontiguousarray(arr, TOKEN_DTYPE))  # written straight from the array's buffer
        self._num_tokens += arr.size
        self._ends.append(self._num_tokens)

    def _check_mask(self, mask: Sequence[int] | np.ndarray | None, n: int) -> np.ndarray | None:
        if not self.loss_mask:
            if mask is not None:
                raise ValueError("a mask was given to a ShardWriter made without loss_mask=True")
            return None
        if mask is None:
            raise ValueError("this ShardWriter has loss_mask=True: add(tokens, mask) needs the mask")
        m = np.asarray(mask)
        if m.shape != (n,):
            raise ValueError(f"the mask must have one value per token: mask shape {m.shape}, {n} tokens")
        if m.size and not (np.issubdtype(m.dtype, np.integer) or m.dtype == bool):
            raise ValueError(f"mask values must be integers 0 or 1, got dtype {m.dtype}")
        if not np.isin(m, (0, 1)).all():
            raise ValueError(f"mask values must be 0 or 1, got {np.unique(m)[:5].tolist()}")
        return m.astype(MASK_DTYPE)

    def _finish_shard(self) -> None:
        """Makes the current shard visible: .bin, .idx (and .mask) renamed into place, then the sidecar."""
        if self._file is None:  # an empty shard: only written so the split exists
            self._file = open(self._tmp("bin"), "wb")  # noqa: SIM115
            if self.loss_mask:
                self._mask_file = open(self._tmp("mask"), "wb")  # noqa: SIM115
        for f in (self._file, self._mask_file):
            if f is not None:
                f.flush()
                os.fsync(f.fileno())
                f.close()
        self._file = self._mask_file = None
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
        if self.loss_mask:
            sidecar["loss_mask"] = {"dtype": MASK_DTYPE.str, "trained_tokens": self._trained_tokens}
        _fsync_write(self._tmp("json"), (json.dumps(sidecar, indent=2, sort_keys=True) + "\n").encode())
        os.replace(self._tmp("bin"), prefix.with_suffix(".bin"))
        os.replace(self._tmp("idx"), prefix.with_suffix(".idx"))
        if self.loss_mask:
            os.replace(self._tmp("mask"), prefix.with_suffix(".mask"))
        # The sidecar last: its presence is what marks the shard complete.
        os.replace(self._tmp("json"), prefix.with_suffix(".json"))
        self._sidecars.append(sidecar)
        self._k += 1
        self._ends = []
        self._num_tokens = 0
        self._trained_tokens = 0

    def close(self) -> list[dict]:
        """Finishes the last shard and returns the sidecars of all shards written, in order."""
        if not self._closed:
            if self._file is not None or not self._sidecars:
                self._finish_shard()
            self._closed = True
        return list(self._sidecars)

    def abort(self) -> None:
        """Deletes the unfinished shard's temporary files; finished shards stay."""
        for f in (self._file, self._mask_file):
            if f is not None:
                f.close()
        self._file = self._mask_file = None
        for ext in ("bin", "idx", "mask", "json"):
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
    meta = read_json(path, "shard sidecar", "JSON sidecar")
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
    mask = meta.get("loss_mask")
    if mask is not None and (not isinstance(mask, dict) or mask.get("dtype") != MASK_DTYPE.str):
        raise ValueError(f"{path}: sidecar 'loss_mask' must be {{'dtype': {MASK_DTYPE.str!r}, ...}}, got {mask!r}")
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
    end-of-text), counting across shards in shard order; ``s.mask(i)`` is its uint8 loss mask (all
    ones for shards without a mask file; ``s.has_mask`` says whether every shard has one). Token,
    index and mask files are opened lazily as ``np.memmap`` on first access in each process and
    never pickled, so a ShardSet pickles to a few hundred bytes and can be sent to grain worker
    processes.
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
        self._arrays: list[tuple[np.ndarray, np.ndarray, np.ndarray | None]] | None = None
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
            files = [(".bin", int(m["num_tokens"]) * TOKEN_DTYPE.itemsize),
                     (".idx", int(m["num_documents"]) * INDEX_DTYPE.itemsize)]
            if "loss_mask" in m:
                files.append((".mask", int(m["num_tokens"]) * MASK_DTYPE.itemsize))
            for ext, expected in files:
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

    @property
    def has_mask(self) -> bool:
        """True when every shard carries a loss mask (chat shards); False for pretraining shards."""
        return all("loss_mask" in m for m in self.meta)

    @property
    def trained_tokens(self) -> int:
        """Tokens with mask 1 (all tokens of shards without a mask)."""
        return sum(int(m["loss_mask"]["trained_tokens"]) if "loss_mask" in m else int(m["num_tokens"])
                   for m in self.meta)

    def _open(self) -> list[tuple[np.ndarray, np.ndarray, np.ndarray | None]]:
        # Reopen after fork: a memmap inherited from the parent would work, but a fresh one keeps
        # each process's page-cache accounting and file handles its own.
        if self._arrays is None or self._pid != os.getpid():
            with self._lock:
                if self._arrays is None or self._pid != os.getpid():
                    arrays = []
                    for prefix, m in zip(self._prefixes, self.meta, strict=True):
                        has_mask = "loss_mask" in m
                        if int(m["num_documents"]) == 0:  # mmap cannot map an empty file
                            arrays.append((np.empty(0, TOKEN_DTYPE), np.empty(0, INDEX_DTYPE),
                                           np.empty(0, MASK_DTYPE) if has_mask else None))
                            continue
                        mask = np.memmap(prefix.with_suffix(".mask"), dtype=MASK_DTYPE, mode="r") if has_mask else None
                        arrays.append((np.memmap(prefix.with_suffix(".bin"), dtype=TOKEN_DTYPE, mode="r"),
                                       np.memmap(prefix.with_suffix(".idx"), dtype=INDEX_DTYPE, mode="r"), mask))
                    self._arrays = arrays
                    self._pid = os.getpid()
        return self._arrays

    def __len__(self) -> int:
        return self._num_docs

    def _locate(self, index: int) -> tuple[tuple[np.ndarray, np.ndarray, np.ndarray | None], int, int]:
        """(the arrays of the shard holding document ``index``, its start, its end) within that shard."""
        i = int(index)
        if i < 0:
            i += self._num_docs
        if not 0 <= i < self._num_docs:
            raise IndexError(f"document {index} out of range for {self!r}")
        shard = bisect.bisect_right(self._doc_starts, i) - 1
        j = i - self._doc_starts[shard]
        arrays = self._open()[shard]
        ends = arrays[1]
        return arrays, (int(ends[j - 1]) if j else 0), int(ends[j])

    def __getitem__(self, index: int) -> np.ndarray:
        (tokens, _, _), start, end = self._locate(index)
        return np.array(tokens[start:end], dtype=np.int32)

    def mask(self, index: int) -> np.ndarray:
        """The uint8 loss mask of document ``index`` (all ones if its shard has no mask file)."""
        (_, _, mask), start, end = self._locate(index)
        if mask is None:
            return np.ones(end - start, MASK_DTYPE)
        return np.array(mask[start:end], dtype=MASK_DTYPE)

    def document_lengths(self) -> np.ndarray:
        """Token count of every document (int64, in document order), read from the indexes only."""
        parts = []
        for _, ends, _ in self._open():
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

