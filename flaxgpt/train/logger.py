"""Where metrics go: ``metrics.jsonl`` (one JSON object per record), TensorBoard events, and a loss plot."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

METRICS_FILE = "metrics.jsonl"
PLOT_FILE = "loss.png"


def read_metrics(run_dir: str | Path) -> list[dict[str, Any]]:
    """All records of a run's metrics log, oldest first (a torn last line from a kill is skipped)."""
    path = Path(run_dir) / METRICS_FILE
    if not path.exists():
        return []
    records = []
    for line in path.read_text().splitlines():
        try:
            records.append(json.loads(line))
        except json.JSONDecodeError:
            continue
    return records


class MetricsLogger:
    """Appends metric records for one process-0 run; on resume drops records past the restored step.

    A run killed after step 13 but resumed from its step-10 checkpoint would otherwise log
    steps 11-13 twice.
    """

    def __init__(self, run_dir: str | Path, *, resume_step: int = 0, tensorboard: bool = True):
        self.run_dir = Path(run_dir)
        self.path = self.run_dir / METRICS_FILE
        kept = [r for r in read_metrics(self.run_dir) if r.get("step", 0) <= resume_step]
        self.path.write_text("".join(json.dumps(r) + "\n" for r in kept))
        self._file = self.path.open("a")
        self._tb = None
        if tensorboard:
            from tensorboardX import SummaryWriter  # heavy (protobuf): imported only when a run logs

            self._tb = SummaryWriter(str(self.run_dir / "tensorboard"), purge_step=resume_step + 1)

    def write(self, step: int, kind: str, values: dict[str, float]) -> None:
        """Logs ``values`` for ``step``; ``kind`` is 'train' or 'eval' (the TensorBoard prefix)."""
        record = {"step": step, "kind": kind, **{k: _clean(v) for k, v in values.items()}}
        self._file.write(json.dumps(record) + "\n")
        self._file.flush()
        if self._tb is not None:
            for k, v in values.items():
                if isinstance(v, int | float) and math.isfinite(v):
                    self._tb.add_scalar(f"{kind}/{k}", v, step)

    def close(self) -> None:
        self._file.close()
        if self._tb is not None:
            self._tb.close()


def _clean(v: Any) -> Any:
    v = float(v) if hasattr(v, "__float__") and not isinstance(v, int | str) else v
    if isinstance(v, float) and not math.isfinite(v):
        return str(v)  # JSON has no nan/inf
    return v


def pyplot():
    """matplotlib's pyplot with the file-only Agg backend (no display needed)."""
    import matplotlib  # heavy: imported only when a plot is drawn

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt  # after choosing the backend

    return plt


def plot_loss(run_dir: str | Path, title: str | None = None) -> Path | None:
    """Writes ``loss.png`` (training loss and validation loss against step); returns its path."""
    records = read_metrics(run_dir)
    train = [(r["step"], r["loss"]) for r in records if r.get("kind") == "train" and isinstance(r.get("loss"), float)]
    evals = [(r["step"], r["val_loss"]) for r in records if r.get("kind") == "eval" and "val_loss" in r]
    if not train:
        return None
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(7, 4), dpi=120)
    ax.plot(*zip(*train, strict=True), label="train loss", lw=1.2)
    if evals:
        ax.plot(*zip(*evals, strict=True), "o-", label="validation loss", lw=1.5, ms=4)
    ax.set_xlabel("step")
    ax.set_ylabel("cross-entropy (nats/token)")
    ax.set_title(title or Path(run_dir).name)
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    out = Path(run_dir) / PLOT_FILE
    fig.savefig(out)
    plt.close(fig)
    return out


PPO_PLOT_FILE = "ppo.png"
_PPO_PANELS = (("reward", "score"), ("kl", "kl_coef"), ("entropy",), ("clipfrac", "explained_variance"))


def plot_ppo(run_dir: str | Path, title: str | None = None) -> Path | None:
    """Writes ``ppo.png``: PM reward (and the shaped score), KL to the reference, entropy, clip fraction and
    value explained variance per rollout; returns its path (None without PPO records)."""
    records = [r for r in read_metrics(run_dir) if r.get("kind") == "train" and "reward" in r]
    if not records:
        return None
    plt = pyplot()
    fig, axes = plt.subplots(1, len(_PPO_PANELS), figsize=(14, 3.4), dpi=110)
    steps = [r["step"] for r in records]
    for ax, keys in zip(axes, _PPO_PANELS, strict=True):
        for key in keys:
            values = [r.get(key) for r in records]
            if all(isinstance(v, float | int) for v in values):
                ax.plot(steps, values, lw=1.3, label=key)
        ax.set_xlabel("rollout")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    fig.suptitle(title or Path(run_dir).name)
    fig.tight_layout()
    out = Path(run_dir) / PPO_PLOT_FILE
    fig.savefig(out)
    plt.close(fig)
    return out
