"""Per-phase wall-clock timing for training loops.

Accelerators run asynchronously. If you time a jitted step without waiting
for its result, you are timing a promise, and your model will look free.
``StepTimer`` waits when you ask it to, and keeps a rolling window per phase
so you can look at the p99, which is where the money goes.
"""

from __future__ import annotations

import contextlib
import time
from collections import defaultdict, deque
from typing import Any, Iterator

import numpy as np

try:  # tickmark works without JAX; it just can't block on device arrays.
    import jax
except ImportError:  # pragma: no cover
    jax = None


class Phase:
    """Handle yielded by :meth:`StepTimer.phase`.

    Call :meth:`watch` with the outputs of the work being timed; they are
    blocked on when the phase ends (if the phase was opened with
    ``block=True``).
    """

    def __init__(self) -> None:
        self._watched: list[Any] = []

    def watch(self, *values: Any) -> Any:
        """Register pytrees to wait for. Returns the first, for chaining."""
        self._watched.extend(values)
        return values[0] if values else None

    def _block(self) -> None:
        if jax is None:
            return
        if self._watched:
            jax.block_until_ready(self._watched)
        else:
            # Nothing registered: enqueue a trivial computation on each device
            # and wait for it. Work is executed in order per device, so this
            # waits for everything dispatched before it. Good enough.
            for device in jax.local_devices():
                jax.device_put(0, device).block_until_ready()


class StepTimer:
    """Rolling per-phase timings.

    Args:
        window: Number of most recent measurements kept per phase.

    Example::

        timer = StepTimer(window=200)
        with timer.phase("data"):
            batch = next(batches)
        with timer.phase("step", block=True) as ph:
            state, metrics = ph.watch(train_step(state, batch))
        print(timer.summary())
    """

    def __init__(self, window: int = 200) -> None:
        self.window = window
        self._times: dict[str, deque[float]] = defaultdict(lambda: deque(maxlen=window))

    @contextlib.contextmanager
    def phase(self, name: str, block: bool = False) -> Iterator[Phase]:
        """Time the enclosed block under ``name``."""
        handle = Phase()
        start = time.perf_counter()
        try:
            yield handle
        finally:
            if block:
                handle._block()
            self._times[name].append(time.perf_counter() - start)

    def percentiles(self, name: str, qs: tuple[float, ...] = (50, 90, 99)) -> dict[str, float]:
        """Percentiles of phase ``name`` in milliseconds."""
        data = np.asarray(self._times[name], dtype=np.float64) * 1e3
        if data.size == 0:
            return {f"p{q:g}": float("nan") for q in qs}
        return {f"p{q:g}": float(np.percentile(data, q)) for q in qs}

    def fraction(self, name: str) -> float:
        """Share of total recorded time spent in ``name``, over the window."""
        total = sum(sum(t) for t in self._times.values())
        return sum(self._times[name]) / total if total else float("nan")

    def summary(self) -> str:
        """A small fixed-width table. Fits in a log line budget."""
        lines = ["phase   p50      p90      p99"]
        for name in self._times:
            p = self.percentiles(name)
            lines.append(
                f"{name:<7} {p['p50']:.1f}ms".ljust(17)
                + f"{p['p90']:.1f}ms".ljust(9)
                + f"{p['p99']:.1f}ms"
            )
        return "\n".join(lines)

    def reset(self) -> None:
        """Forget everything. Call after compilation, or the first step lies."""
        self._times.clear()
