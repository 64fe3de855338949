"""Deterministic, resumable ordering of records across shards.

The order in which records are read is a pure function of four things: the
shard sizes, the seed, the epoch and the two knobs (``interleave`` and
``window``). Nothing in this module keeps state between calls. That is the
whole design; everything else is bookkeeping.

Three levels of shuffling, each deterministic:

1. shard order, permuted per epoch;
2. round-robin interleave over ``interleave`` open shards;
3. a permutation inside fixed windows of ``window`` records.

Because windows never share state, resuming at position ``p`` only needs the
window that contains ``p``. Nothing before it has to be replayed.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Iterator, Sequence

import numpy as np

# Salts keep the seeds of the different levels apart. The values are
# arbitrary; changing them changes every ordering ever produced, so don't.
_SHARD_ORDER_SALT = 0
_WINDOW_SALT = 1


def derive_seed(*parts: int) -> int:
    """Derive a 64-bit seed from a tuple of integers.

    Identical on every machine and every Python process. The built-in
    ``hash`` is randomised per process for strings, and I have been bitten by
    that once. Once was enough.

    Args:
        *parts: Integers to mix, e.g. ``(seed, epoch, window_index)``.

    Returns:
        A non-negative integer below 2**64.
    """
    data = ",".join(str(int(p)) for p in parts).encode("ascii")
    return int.from_bytes(hashlib.blake2b(data, digest_size=8).digest(), "little")


def shard_order(num_shards: int, seed: int, epoch: int) -> np.ndarray:
    """Return the order in which shards are opened in ``epoch``."""
    rng = np.random.default_rng(derive_seed(seed, epoch, _SHARD_ORDER_SALT))
    return rng.permutation(num_shards)


def interleave(shard_sizes: Sequence[int], order: Sequence[int], k: int) -> np.ndarray:
    """Round-robin over ``k`` open shards, refilling slots in ``order``.

    When a shard runs out, the next shard in ``order`` takes its slot, so the
    round-robin pattern stays stable. Empty shards are skipped.

    Args:
        shard_sizes: Number of records in each shard.
        order: Shard indices in the order they should be opened.
        k: Number of shards open at once.

    Returns:
        An int64 array of shape ``(total_records, 2)`` with rows
        ``(shard_index, record_index)``.
    """
    if k < 1:
        raise ValueError(f"interleave must be >= 1, got {k}")
    pending = (int(s) for s in order if shard_sizes[s] > 0)
    slots: list[list[int]] = []
    for shard in pending:
        slots.append([shard, 0])
        if len(slots) == k:
            break

    out: list[tuple[int, int]] = []
    while slots:
        i = 0
        while i < len(slots):
            shard, record = slots[i]
            out.append((shard, record))
            if record + 1 < shard_sizes[shard]:
                slots[i][1] = record + 1
                i += 1
                continue
            nxt = next(pending, None)
            if nxt is None:
                slots.pop(i)  # do not advance i: the next slot moved into place
            else:
                slots[i] = [nxt, 0]
                i += 1
    return np.asarray(out, dtype=np.int64).reshape(-1, 2)


def window_permutation(n: int, window: int, seed: int, epoch: int) -> np.ndarray:
    """Permute positions ``0..n-1`` inside consecutive windows.

    The last window may be short. (The test suite has a dataset of 4,001
    records for exactly this reason.)
    """
    perm = np.empty(n, dtype=np.int64)
    for start in range(0, n, window):
        stop = min(start + window, n)
        perm[start:stop] = start + _window(start // window, stop - start, seed, epoch)
    return perm


def _window(index: int, length: int, seed: int, epoch: int) -> np.ndarray:
    rng = np.random.default_rng(derive_seed(seed, epoch, _WINDOW_SALT, index))
    return rng.permutation(length)


@dataclass(frozen=True)
class EpochPlan:
    """The full read order for one epoch.

    Attributes:
        shard_sizes: Records per shard, in the dataset's canonical order.
        seed: Run seed. Goes in the checkpoint.
        epoch: Epoch number. Goes in the checkpoint.
        interleave: Shards open at once.
        window: Window size for the in-window shuffle.
    """

    shard_sizes: tuple[int, ...]
    seed: int
    epoch: int
    interleave: int = 8
    window: int = 2048

    @property
    def num_records(self) -> int:
        return int(sum(self.shard_sizes))

    def records(self) -> np.ndarray:
        """Return ``(shard, record)`` pairs in read order for the epoch."""
        order = shard_order(len(self.shard_sizes), self.seed, self.epoch)
        stream = interleave(self.shard_sizes, order, self.interleave)
        perm = window_permutation(len(stream), self.window, self.seed, self.epoch)
        return stream[perm]

    def iter_from(
        self, position: int = 0, host: int = 0, num_hosts: int = 1
    ) -> Iterator[tuple[int, int, int]]:
        """Yield ``(position, shard, record)`` from ``position`` onwards.

        Host ``h`` of ``n`` takes global positions ``h, h + n, h + 2n, ...``.
        The global sequence does not depend on ``num_hosts``, so a run can
        restart on a different number of machines and see the same data.
        """
        if not 0 <= host < num_hosts:
            raise ValueError(f"host {host} not in [0, {num_hosts})")
        recs = self.records()
        first = position + (host - position) % num_hosts
        for pos in range(first, len(recs), num_hosts):
            shard, record = recs[pos]
            yield pos, int(shard), int(record)

    def state(self, position: int) -> dict[str, int]:
        """The resumption state. Three integers; read it, it's short."""
        return {"epoch": self.epoch, "position": position, "seed": self.seed}
