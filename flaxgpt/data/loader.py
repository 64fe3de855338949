"""grain input pipeline: token shards -> packed, mixed, batched next-token examples.

Training pipeline, per source (each source is a shard-set directory with a weight)::

    ShardSet(split) -> its documents (all by default; or every shard_count-th, from shard_index)
      -> shuffle(seed) -> repeat(num_epochs)      a fresh permutation every epoch
      -> doc + [eot]                              shards store documents without end-of-text
      -> ConcatThenSplit into rows of seq_len + 1 tokens (segment ids and positions per row)
    then IterDataset.mix(rows of all sources, weights) -> batch(drop_remainder) -> model keys
      -> thread prefetch

Mixing happens after packing, so every mixed element is seq_len + 1 tokens and the weights are
proportions of tokens, not of documents. grain's mix is a deterministic interleave (not a random
draw) with weights rounded to integers relative to the smallest one (smallest -> 100), so shares
are exact to about 1% of the smallest weight.

Batch keys (numpy, B = batch_size rows, T = seq_len):
  inputs       int32   [B, T]  row[:-1]
  targets      int32   [B, T]  row[1:] (next token)
  weights      float32 [B, T]  1 where the target is a real token, 0 where it is padding
  segment_ids  int32   [B, T]  document number within the row of each input token, from 1; 0 = padding
  positions    int32   [B, T]  position of each input token within its segment, restarting at 0

Choices worth knowing:
  * The end-of-text token belongs to the document it ends (same segment id). Its target is the
    first token of the next document in the row, with weight 1, as GPT-2 trains: segment-masked
    attention means that prediction is made from the finished document alone, i.e. the model
    learns how documents start after an end-of-text.
  * A document cut at a row boundary continues in the next row as segment 1 with positions
    restarting at 0 (grain's ConcatThenSplit does this; attention cannot see the previous row
    anyway). Rows do not overlap, so the first token of each row is never a target (1 pair in T + 1).
  * Padding only occurs at the end of a finite pass (num_epochs set, or eval).

SFT (``sft=True``: chat shards from ``flaxgpt tokenize-chat``, which carry a per-token loss mask)
differs in three ways, all so that a packed batch gives every conversation exactly the loss it
would have alone in a row:
  * Conversations are packed whole (grain's first-fit packing over ``max(batch_size, 8)`` rows at
    a time, rows shuffled), never split across rows: a conversation continued in the next row
    would lose its context. One longer than seq_len + 1 tokens is cut to its first seq_len + 1
    tokens (the trainer reports how many). Rows are padded at the end instead.
  * No end-of-text is appended: each conversation already ends with ``<|end|>``, the turn end
    the model learns to stop on.
  * ``weights`` come from the mask: the weight of predicting token t + 1 is mask[t + 1], and 0
    where t + 1 starts another conversation (or is padding), so nothing is learned across
    conversations. Mixing weights are then shares of rows rather than of tokens.
Pretraining (``sft=False``) reads only the tokens of any shard set, masked or not.
"""

from __future__ import annotations

import atexit
import hashlib
import json
import math
import weakref
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import grain
import numpy as np
from grain.experimental import ThreadPrefetchDatasetIterator

from flaxgpt.data.packing import (
    Batch,
    Conversations,
    next_fit_rows,
    packed_conversations,
    packed_rows,
    pad_rows,
    sft_eval_rows,
    to_model_batch,
    to_sft_batch,
)
from flaxgpt.data.shards import MIXTURE_FILE, ShardSet
from flaxgpt.data.tokenizer import check_compatible

BATCH_KEYS = ("inputs", "targets", "weights", "segment_ids", "positions")

# Iterators still alive at exit are closed while the interpreter is intact: otherwise grain's
# prefetch thread is stopped from __del__ during teardown, after `queue` is gone, and Python prints
# an ignored exception.
_LIVE_ITERATORS: weakref.WeakSet = weakref.WeakSet()
atexit.register(lambda: [it.close() for it in list(_LIVE_ITERATORS)])


class _PrefetchIterator(ThreadPrefetchDatasetIterator):
    """grain's thread prefetch with an idempotent close (grain's runs again from __del__)."""

    def close(self) -> None:
        if not self._closed:
            super().close()


class _PrefetchIterDataset(grain.IterDataset):
    def __init__(self, parent: grain.IterDataset, buffer_size: int):
        super().__init__(parent)
        self._buffer_size = buffer_size

    def __iter__(self) -> grain.DatasetIterator:
        return _PrefetchIterator(self._parent.__iter__(), self._buffer_size)


def _unpack_source(name: str, spec: Any) -> tuple[Path, float]:
    if isinstance(spec, str | Path):
        raise ValueError(f"data source {name!r}: expected (path, weight), got only a path {spec!r}")
    try:
        path, weight = (spec["path"], spec["weight"]) if not isinstance(spec, tuple | list) else spec
    except (KeyError, TypeError, ValueError):
        raise ValueError(f"data source {name!r}: expected (path, weight), got {spec!r}") from None
    try:
        weight = float(weight)
    except (TypeError, ValueError):
        raise ValueError(f"data source {name!r}: weight must be a number, got {weight!r}") from None
    if not (math.isfinite(weight) and weight > 0):
        raise ValueError(f"data source {name!r}: weight must be > 0, got {weight}")
    return Path(path), weight


def expand_mixtures(sources: Mapping[str, Any]) -> dict[str, tuple[Path, float]]:
    """Sources as name -> (shard directory, weight), with every `flaxgpt ingest` output expanded.

    A source whose path holds a ``mixture.json`` (an ingest output) becomes one source per shard
    folder listed there, named ``NAME/SUB``, sharing the source's weight in the proportions the
    ingest config gave (so personal 0.7 and general 0.3 stay 70/30 however many sources each has).
    """
    out: dict[str, tuple[Path, float]] = {}
    for name, spec in sources.items():
        path, weight = _unpack_source(name, spec)
        mixture_file = path / MIXTURE_FILE
        if not mixture_file.is_file():
            out[name] = (path, weight)
            continue
        try:
            parts = json.loads(mixture_file.read_text())["sources"]
            total = sum(float(p["weight"]) for p in parts.values())
        except (ValueError, KeyError, TypeError) as err:
            raise ValueError(f"data source {name!r}: {mixture_file} is not a valid mixture file ({err})") from None
        if not parts:
            raise ValueError(f"data source {name!r}: {mixture_file} lists no sources with training documents")
        for sub, part in parts.items():
            out[f"{name}/{sub}"] = (path / part["path"], weight * float(part["weight"]) / total)
    return out


def _open_sources(sources: Mapping[str, Any], split: str, eot_id: int,
                  sft: bool = False) -> dict[str, tuple[ShardSet, float]]:
    """Opens each source's ShardSet, checking paths, weights, one shared tokenizer and eot_id (and masks for SFT)."""
    if not sources:
        raise ValueError("no data sources given")
    opened: dict[str, tuple[ShardSet, float]] = {}
    for name, spec in sources.items():
        path, weight = _unpack_source(name, spec)
        if not path.is_dir():
            raise FileNotFoundError(f"data source {name!r}: shard directory {path} not found")
        try:
            shards = ShardSet(path, split)
        except (FileNotFoundError, ValueError) as e:
            raise type(e)(f"data source {name!r}: {e}") from None
        if sft and not shards.has_mask:
            raise ValueError(f"data source {name!r}: the {split} shards in {path} have no loss mask (plain "
                             "`flaxgpt tokenize` output); SFT trains on conversations made by `flaxgpt tokenize-chat`")
        opened[name] = (shards, weight)
    first_name, (first, _) = next(iter(opened.items()))
    for name, (shards, _) in opened.items():
        a = shards.tokenizer_meta
        check_compatible(a, first.tokenizer_meta, f"data source {name!r} ({shards.directory}) vs data source "
                                                  f"{first_name!r} ({first.directory})")
        if not 0 <= eot_id < shards.vocab_size:
            raise ValueError(f"eot_id {eot_id} is outside the vocabulary (size {shards.vocab_size}) of data source "
                             f"{name!r} ({shards.directory})")
        if a.get("eot_id", eot_id) != eot_id:
            raise ValueError(f"eot_id {eot_id} differs from the end-of-text id {a['eot_id']} of the tokenizer "
                             f"that made data source {name!r} ({shards.directory})")
    return opened


def _host_shard(shard_index: int, shard_count: int) -> tuple[int, int]:
    if not 0 <= shard_index < shard_count:
        raise ValueError(f"shard_index must be in [0, shard_count={shard_count}), got {shard_index}")
    return int(shard_index), int(shard_count)


def _source_seed(seed: int, name: str) -> int:
    """A per-source shuffle seed in [0, 2**32): sources get unrelated orders from one run seed."""
    return int.from_bytes(hashlib.sha256(f"{seed}/{name}".encode()).digest()[:4], "little")


def _check_sizes(seq_len: int, batch_size: int) -> None:
    if seq_len < 1 or batch_size < 1:
        raise ValueError(f"seq_len and batch_size must be >= 1, got seq_len={seq_len}, batch_size={batch_size}")


def build_train_iterator(sources: Mapping[str, tuple[str | Path, float]], *, seq_len: int, batch_size: int,
                         seed: int, eot_id: int, split: str = "train", shard_index: int = 0,
                         shard_count: int = 1, num_epochs: int | None = None,
                         prefetch: int = 2, sft: bool = False) -> grain.DatasetIterator:
    """Returns a checkpointable iterator of training batches (keys: BATCH_KEYS).

    Args:
      sources: name -> (shard-set directory, weight > 0). Weights are shares of tokens.
      seq_len: tokens per row T (rows hold T + 1 tokens: inputs and shifted targets).
      batch_size: rows per batch on this host.
      seed: shuffle seed; the same seed gives the same batches.
      eot_id: end-of-text id appended to every document (not in SFT); must match the shards' tokenizer.
      split: 'train' or 'val'.
      shard_index, shard_count: read every shard_count-th document of each source, from shard_index. The
        trainer leaves the default (all documents): every process builds the same global batch and places
        its own devices' rows, which makes runs and checkpoints independent of the number of processes.
      num_epochs: None repeats every source forever (each epoch a new permutation); an integer
        makes a finite stream that stops when the first source has done that many epochs.
      prefetch: batches a background thread prepares ahead (0: none). The iterator's state still
        describes only the batches handed out, so checkpoints are exact.
      sft: chat shards with loss masks: whole conversations packed, weights from the masks, no
        end-of-text appended (see the module docstring). Every source must carry masks.

    Returns:
      A grain DatasetIterator: get_state()/set_state(), and usable with
      grain.checkpoint.CheckpointSave/CheckpointRestore in an orbax CheckpointManager.
    """
    _check_sizes(seq_len, batch_size)
    if num_epochs is not None and num_epochs < 1:
        raise ValueError(f"num_epochs must be None or >= 1, got {num_epochs}")
    if prefetch < 0:
        raise ValueError(f"prefetch must be >= 0, got {prefetch}")
    index, count = _host_shard(shard_index, shard_count)
    opened = _open_sources(sources, split, eot_id, sft)
    rows, weights = {}, {}
    for name, (shards, weight) in opened.items():
        docs = grain.MapDataset.source(Conversations(shards, seq_len + 1) if sft else shards)[index::count]
        if len(docs) == 0:
            raise ValueError(f"data source {name!r} ({shards.directory}) has {len(shards)} {split} documents, "
                             f"none for host {index} of {count}; every host needs at least one")
        # shuffle before repeat: grain folds the epoch into the shuffle seed, so each epoch is a
        # new permutation of this host's documents and epochs never interleave.
        docs = docs.shuffle(seed=_source_seed(seed, name)).repeat(num_epochs)
        if sft:
            rows[name] = packed_conversations(docs, seq_len=seq_len, batch_size=batch_size,
                                               seed=_source_seed(seed + 1, name))
        else:
            rows[name] = packed_rows(docs, seq_len=seq_len, eot_id=eot_id)
        weights[name] = weight
    # A mapping (not a list) keys each source's state by name in checkpoints.
    ds = grain.IterDataset.mix(rows, weights)
    ds = ds.batch(batch_size, drop_remainder=True).map(to_sft_batch if sft else to_model_batch)
    if prefetch:
        ds = _PrefetchIterDataset(ds, prefetch)
    it = iter(ds)
    _LIVE_ITERATORS.add(it)
    return it


def _num_eval_batches(lengths: np.ndarray, seq_len: int, batch_size: int) -> int:
    """Batches that documents of these lengths fill once each gets an eot and they are packed."""
    tokens = int(lengths.sum()) + len(lengths)
    rows = -(-tokens // (seq_len + 1))
    return -(-rows // batch_size)


def build_eval_batches(sources: Mapping[str, tuple[str | Path, float]], *, seq_len: int, batch_size: int,
                       eot_id: int, split: str = "val", max_batches: int | None = None,
                       shard_index: int = 0, shard_count: int = 1, sft: bool = False) -> dict[str, list[Batch]]:
    """Every source's documents of ``split`` as a list of batches: one pass, in order, no shuffle.

    ``shard_index``/``shard_count`` take a slice of the documents (default: all). The last batch is padded with rows of
    weight 0, and every host returns the same number of batches per source (hosts with fewer
    tokens get extra all-padding batches), so collective eval steps would stay in lockstep. Weights in
    ``sources`` are checked but unused. All batches are held in memory: use max_batches to bound
    the first batches taken from a large validation split. With ``sft`` (chat shards), whole
    conversations are packed in order, each cut to seq_len + 1 tokens, weights from their masks.
    """
    _check_sizes(seq_len, batch_size)
    if max_batches is not None and max_batches < 0:
        raise ValueError(f"max_batches must be None or >= 0, got {max_batches}")
    index, count = _host_shard(shard_index, shard_count)
    opened = _open_sources(sources, split, eot_id, sft)
    out: dict[str, list[Batch]] = {}
    for name, (shards, _) in opened.items():
        if sft:
            out[name] = _sft_eval_batches(shards, seq_len=seq_len, batch_size=batch_size, max_batches=max_batches,
                                          index=index, count=count)
            continue
        lengths = shards.document_lengths()
        n = max(_num_eval_batches(lengths[h::count], seq_len, batch_size) for h in range(count))
        if max_batches is not None:
            n = min(n, max_batches)
        batches: list[Batch] = []
        docs = grain.MapDataset.source(shards)[index::count]
        if len(docs) and n:
            it = iter(packed_rows(docs, seq_len=seq_len, eot_id=eot_id).batch(batch_size))
            try:
                for batch in it:
                    batches.append(to_model_batch(pad_rows(batch, batch_size)))
                    if len(batches) == n:
                        break
            finally:
                it.close()  # stops the read-ahead threads now rather than at garbage collection
        while len(batches) < n:
            empty = {k: np.zeros((batch_size, seq_len + 1), np.int32)
                     for k in ("tokens", "tokens_segment_ids", "tokens_positions")}
            batches.append(to_model_batch(empty))
        out[name] = batches
    return out


def _sft_eval_batches(shards: ShardSet, *, seq_len: int, batch_size: int, max_batches: int | None, index: int,
                      count: int) -> list[Batch]:
    """One host's eval batches of whole conversations, as many on every host (padded with empty batches)."""
    row_len = seq_len + 1
    lengths = shards.document_lengths()
    n = max(-(-len(next_fit_rows(lengths[h::count], row_len)) // batch_size) for h in range(count))
    if max_batches is not None:
        n = min(n, max_batches)
    convs = Conversations(shards, row_len)
    host_docs = np.arange(len(shards))[index::count]
    rows = [[int(host_docs[i]) for i in row] for row in next_fit_rows(lengths[index::count], row_len)]
    rows += [[]] * (n * batch_size - len(rows))  # empty rows: all padding, weight 0
    return [to_sft_batch(sft_eval_rows(convs, rows[b * batch_size:(b + 1) * batch_size], row_len))
            for b in range(n)]
