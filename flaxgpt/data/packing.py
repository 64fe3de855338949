"""Packing documents and conversations into rows, and rows into the model's batch keys (see ``flaxgpt.data.loader``).

Pretraining rows: documents + end-of-text, concatenated and split into rows of seq_len + 1 tokens (grain's
ConcatThenSplit), with segment ids and positions. SFT rows: whole conversations, first-fit packed (training)
or next-fit packed in order (evaluation). ``to_model_batch`` and ``to_sft_batch`` turn packed rows into
``inputs``/``targets``/``weights``/``segment_ids``/``positions``.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import grain
import numpy as np
from grain.experimental import ConcatThenSplitIterDataset, FirstFitPackIterDataset

from flaxgpt.data.shards import ShardSet

Batch = dict[str, np.ndarray]

# Document reads are memmap slices: a couple of threads hide page faults without GIL contention.
READ_OPTIONS = grain.ReadOptions(num_threads=2, prefetch_buffer_size=32)


@dataclasses.dataclass(frozen=True)
class AppendEot:
    """Document tokens -> {'tokens': tokens + [eot]} (int32), the element ConcatThenSplit packs."""

    eot_id: int

    def __call__(self, doc: np.ndarray) -> dict[str, np.ndarray]:
        tokens = np.empty(len(doc) + 1, dtype=np.int32)
        tokens[:-1] = doc
        tokens[-1] = self.eot_id
        return {"tokens": tokens}


@dataclasses.dataclass(frozen=True)
class Conversations:
    """A grain source over chat shards: conversation i as {'tokens': int32, 'mask': uint8}, cut to ``max_len``."""

    shards: ShardSet
    max_len: int

    def __len__(self) -> int:
        return len(self.shards)

    def __getitem__(self, index: int) -> dict[str, np.ndarray]:
        return {"tokens": self.shards[index][:self.max_len], "mask": self.shards.mask(index)[:self.max_len]}


class _JsonSafePackIterator(grain.DatasetIterator):
    """Passes a ConcatThenSplit iterator through, repairing its state after a JSON round trip.

    grain 0.2.18 marks "no remainder" with the tuple (-1, -1) and compares with ``!=``; once a
    checkpoint has been through JSON (as grain.checkpoint.CheckpointHandler does) the tuple is a
    list, the comparison says "remainder", and restoring silently drops a document. Turning the
    lists back into tuples restores exactly.
    """

    def __next__(self) -> Any:
        return next(self._parent)

    def get_state(self) -> dict[str, Any]:
        return self._parent.get_state()

    def set_state(self, state: dict[str, Any]) -> None:
        state = dict(state)
        state["remainder_slices"] = {k: tuple(v) for k, v in state["remainder_slices"].items()}
        self._parent.set_state(state)


class _JsonSafePackIterDataset(grain.IterDataset):
    """Wraps a ConcatThenSplit dataset so its iterators restore exactly from JSON checkpoints."""

    def __iter__(self) -> grain.DatasetIterator:
        return _JsonSafePackIterator(self._parent.__iter__())


def to_model_batch(batch: dict[str, np.ndarray]) -> Batch:
    """Packed rows [B, T + 1] -> the model's keys (``flaxgpt.data.loader``'s docstring says what each holds)."""
    tokens, seg, pos = batch["tokens"], batch["tokens_segment_ids"], batch["tokens_positions"]
    return {
        "inputs": np.ascontiguousarray(tokens[:, :-1], dtype=np.int32),
        "targets": np.ascontiguousarray(tokens[:, 1:], dtype=np.int32),
        "weights": (seg[:, 1:] != 0).astype(np.float32),
        "segment_ids": np.ascontiguousarray(seg[:, :-1], dtype=np.int32),
        "positions": np.ascontiguousarray(pos[:, :-1], dtype=np.int32),
    }


def to_sft_batch(batch: dict[str, np.ndarray]) -> Batch:
    """Packed conversations [B, T + 1] -> the model's keys, weights from the loss mask (``flaxgpt.data.loader``)."""
    tokens, mask, seg, pos = batch["tokens"], batch["mask"], batch["tokens_segment_ids"], batch["tokens_positions"]
    same_conversation = (seg[:, 1:] == seg[:, :-1]) & (seg[:, 1:] != 0)
    return {
        "inputs": np.ascontiguousarray(tokens[:, :-1], dtype=np.int32),
        "targets": np.ascontiguousarray(tokens[:, 1:], dtype=np.int32),
        "weights": (mask[:, 1:] * same_conversation).astype(np.float32),
        "segment_ids": np.ascontiguousarray(seg[:, :-1], dtype=np.int32),
        "positions": np.ascontiguousarray(pos[:, :-1], dtype=np.int32),
    }


def packed_rows(docs: grain.MapDataset, *, seq_len: int, eot_id: int) -> grain.IterDataset:
    """Documents -> rows of seq_len + 1 tokens with segment ids and positions."""
    rows = ConcatThenSplitIterDataset(docs.map(AppendEot(eot_id)).to_iter_dataset(READ_OPTIONS),
                                      length_struct={"tokens": seq_len + 1})
    return _JsonSafePackIterDataset(rows)


def packed_conversations(convs: grain.MapDataset, *, seq_len: int, batch_size: int, seed: int) -> grain.IterDataset:
    """Conversations (already cut to seq_len + 1) -> whole-conversation rows with segment ids and positions."""
    row = seq_len + 1
    return FirstFitPackIterDataset(convs.to_iter_dataset(READ_OPTIONS), length_struct={"tokens": row, "mask": row},
                                   num_packing_bins=max(batch_size, 8), seed=seed, shuffle_bins=True)


def next_fit_rows(lengths: np.ndarray, row_len: int) -> list[list[int]]:
    """Indices of the conversations in each row when packed in order, whole, a new row when one does not fit."""
    rows: list[list[int]] = []
    free = 0
    for i, n in enumerate(np.minimum(lengths, row_len)):
        if n > free:
            rows.append([])
            free = row_len
        rows[-1].append(i)
        free -= int(n)
    return rows


def sft_eval_rows(convs: Conversations, rows: list[list[int]], row_len: int) -> dict[str, np.ndarray]:
    """Builds packed rows [len(rows), row_len] from conversation indices (the keys grain's packers give)."""
    out = {k: np.zeros((len(rows), row_len), np.int32) for k in ("tokens", "mask", "tokens_segment_ids",
                                                                 "tokens_positions")}
    for r, members in enumerate(rows):
        at = 0
        for seg, i in enumerate(members, 1):
            conv = convs[i]
            n = len(conv["tokens"])
            out["tokens"][r, at:at + n] = conv["tokens"]
            out["mask"][r, at:at + n] = conv["mask"]
            out["tokens_segment_ids"][r, at:at + n] = seg
            out["tokens_positions"][r, at:at + n] = np.arange(n)
            at += n
    return out


def pad_rows(batch: dict[str, np.ndarray], batch_size: int) -> dict[str, np.ndarray]:
    """Pads packed rows [n, T + 1] with zero rows (segment id 0, so weight 0) up to batch_size."""
    n = len(batch["tokens"])
    if n == batch_size:
        return batch
    return {k: np.concatenate([v, np.zeros((batch_size - n, *v.shape[1:]), v.dtype)]) for k, v in batch.items()}
