"""Sweeps: one experiment config trained over a grid (or a list) of overrides, one run after another, then a table
(``results.md``, ``results.csv``) and a plot (``sweep.png``) of the swept metric against the swept parameters.

A sweep file's ``get_sweep()`` returns a ``Sweep`` (or a dict of its fields). Each run's directory is
``out/<run name>``, the name made from its swept values (``lr=0.001,batch_size=16``), so rerunning the sweep finds
its runs again: a run whose latest checkpoint reached ``train.steps`` is skipped, an interrupted one resumes from
its checkpoint (``flaxgpt train`` resumes from its run directory).

Local runs train in this process (``launch.train.train``), not as ``flaxgpt train`` subprocesses: JAX starts once
for the whole sweep, and the failures a sweep expects (a NaN loss, a bad value for one run) are Python exceptions,
caught per run and recorded as ``failed`` while the sweep goes on. A hard crash (killed for memory) stops the
sweep, but a rerun picks it up where it stopped. ``TpuLauncher`` instead hands each run to ``tpu_setup/train.sh``.
"""

from __future__ import annotations

import csv
import dataclasses
import hashlib
import itertools
import math
import re
import shlex
import statistics
import subprocess
import time
import traceback
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import ml_collections

from flaxgpt.config import ConfigError, load_config, parse_value, read_config_file
from flaxgpt.launch.train import train
from flaxgpt.runs.rundir import checkpoint_steps
from flaxgpt.train.logger import pyplot, read_metrics
from flaxgpt.train.loop import NonFiniteLoss

ROOT = Path(__file__).resolve().parents[2]
TPU_SETUP = ROOT / "tpu_setup"  # train.sh --name TPU --zone ZONE -- CONFIG [overrides...], status.sh, fetch.sh
RESULTS_MD, RESULTS_CSV, PLOT_FILE = "results.md", "results.csv", "sweep.png"
OK_STATUSES = ("done", "skipped-finished", "launched", "dry run")  # status prefixes that are not failures


@dataclasses.dataclass
class Sweep:
    """What a sweep file's ``get_sweep()`` returns.

    ``grid`` (dotted key -> values; every combination runs, the first key varying slowest) or ``runs`` (a list
    of override dicts, one run each); ``fixed`` overrides apply to every run. ``metric`` is read from each run's
    ``metrics.jsonl`` (``val_loss``, ``loss``, ``val_ppl``, ...); runs are ranked by its final value.
    """

    name: str
    base: str  # the experiment config file, e.g. experiments/micro.py
    grid: dict[str, Sequence[Any]] = dataclasses.field(default_factory=dict)
    runs: list[dict[str, Any]] = dataclasses.field(default_factory=list)
    fixed: dict[str, Any] = dataclasses.field(default_factory=dict)
    metric: str = "val_loss"
    lower_is_better: bool = True
    out: str = ""  # '' means runs/sweeps/<name>

    def __post_init__(self):
        if bool(self.grid) == bool(self.runs):
            got = "both" if self.grid else "neither"
            raise ConfigError(f"sweep {self.name!r}: give either grid or runs (got {got})")
        for key, values in self.grid.items():
            if isinstance(values, str) or not isinstance(values, Sequence) or not values:
                raise ConfigError(f"sweep {self.name!r}: grid[{key!r}] must be a non-empty list of values")
        swept = set(self.keys) | set(self.fixed)
        if {"run.dir", "run.name"} & swept:
            raise ConfigError(f"sweep {self.name!r}: run.dir and run.name are set by the sweep (out/<run name>)")

    @property
    def out_dir(self) -> Path:
        return Path(self.out or f"runs/sweeps/{self.name}")

    @property
    def keys(self) -> list[str]:
        """The swept keys, in the order of the grid (or of first appearance in ``runs``)."""
        return list(self.grid) if self.grid else list(dict.fromkeys(k for r in self.runs for k in r))

    def points(self) -> list[dict[str, Any]]:
        """Each run's swept values."""
        if self.runs:
            return [dict(r) for r in self.runs]
        return [dict(zip(self.grid, combo, strict=True)) for combo in itertools.product(*self.grid.values())]


@dataclasses.dataclass
class SweepRun:
    """One run of a sweep: its name, swept values, run directory and the overrides ``flaxgpt train`` gets."""

    name: str
    values: dict[str, Any]
    run_dir: Path
    overrides: list[str]


@dataclasses.dataclass
class Row:
    """One run's line of the results table (None: not measured)."""

    run: SweepRun
    status: str
    steps: int | None = None
    total_steps: int | None = None
    final_loss: float | None = None  # last logged training loss
    best: float | None = None  # of the sweep's metric
    final: float | None = None
    tokens_per_s: float | None = None  # median over the run's logged windows

    @property
    def ok(self) -> bool:
        return self.status.startswith(OK_STATUSES)


def load_sweep(path: str | Path, overrides: Sequence[str] = (), out: str = "") -> Sweep:
    """The ``Sweep`` of a sweep file; ``key=value`` overrides join its ``fixed`` ones, ``out`` replaces its out."""
    sweep = read_config_file(path, "get_sweep")
    if isinstance(sweep, ml_collections.ConfigDict):
        sweep = sweep.to_dict()
    if isinstance(sweep, Mapping):
        sweep = Sweep(**dict(sweep))
    if not isinstance(sweep, Sweep):
        raise ConfigError(f"{path}: get_sweep() must return a Sweep or a dict of its fields, got {type(sweep)}")
    extra = {}
    for item in overrides:
        if "=" not in item:
            raise ConfigError(f"override {item!r} is not of the form key=value")
        key, text = item.split("=", 1)
        extra[key.strip()] = parse_value(text)
    return dataclasses.replace(sweep, fixed={**sweep.fixed, **extra}, out=out or sweep.out)


def override_text(key: str, value: Any) -> str:
    """``key=value`` as ``flaxgpt train`` parses it back to ``value`` (a string that would parse as something
    else, such as '1e-3' or 'true', is quoted)."""
    text = value if isinstance(value, str) and parse_value(value) == value else repr(value)
    return f"{key}={text}"


def run_name(values: Mapping[str, Any], keys: Sequence[str]) -> str:
    """A filesystem-safe name from the swept values: ``lr=0.001,batch_size=16`` (full keys where the last parts
    of two swept keys clash; hashed past 80 characters); ``base`` for a run with no swept value."""
    last = [k.rsplit(".", 1)[-1] for k in keys]
    short = {k: (s if last.count(s) == 1 else k) for k, s in zip(keys, last, strict=True)}
    name = ",".join(f"{short[k]}={values[k]}" for k in keys if k in values) or "base"
    name = re.sub(r"[^A-Za-z0-9._=,+-]", "_", name)
    return name if len(name) <= 80 else f"{name[:63]}-{hashlib.sha1(name.encode()).hexdigest()[:16]}"


def plan(sweep: Sweep) -> list[SweepRun]:
    """The sweep's runs in order; ConfigError for two runs with the same name."""
    runs = []
    for values in sweep.points():
        name = run_name(values, sweep.keys)
        run_dir = sweep.out_dir / name
        settings = {**sweep.fixed, **values}
        overrides = [override_text(k, v) for k, v in settings.items()]
        runs.append(SweepRun(name, values, run_dir, [*overrides, f"run.dir={run_dir}", f"run.name={name}"]))
    names = [r.name for r in runs]
    if len(set(names)) < len(names):
        twice = sorted({n for n in names if names.count(n) > 1})
        raise ConfigError(f"sweep {sweep.name!r}: two runs with the same values: {twice}")
    return runs


# A launcher starts one run: (run, its resolved config) -> (status, whether the sweep goes on).
Launcher = Callable[[SweepRun, ml_collections.ConfigDict], tuple[str, bool]]


def train_locally(show_progress: bool = True) -> Launcher:
    """Trains each run in this process; a NaN loss or any other exception fails that run only."""

    def launch(run: SweepRun, config: ml_collections.ConfigDict) -> tuple[str, bool]:
        try:
            summary = train(config, show_progress=show_progress)
        except NonFiniteLoss as err:
            return f"failed: {str(err).split(';')[0]}", True
        except Exception as err:  # the sweep goes on: one bad run is a row of the table, not the end
            if not isinstance(err, ValueError | FileNotFoundError):  # those messages name the problem already
                traceback.print_exc()
            return f"failed: {type(err).__name__}: {err}", True
        if summary["status"] != "completed":  # SIGINT/SIGTERM: saved; the user wants the sweep to stop too
            return f"{summary['status']} at step {summary['step']}", False
        start = summary.get("start_step", 0)
        return "done" + (f" (resumed from step {start})" if start else ""), True

    return launch


def print_locally(base: str) -> Launcher:
    """Prints each run's ``flaxgpt train`` command line instead of training it (a dry run)."""

    def launch(run: SweepRun, config: ml_collections.ConfigDict) -> tuple[str, bool]:
        print("$ " + shlex.join(["flaxgpt", "train", base, *run.overrides]), flush=True)
        return "dry run", True

    return launch


class TpuLauncher:
    """Each run through ``tpu_setup``: ``train.sh`` starts it (detached) on every worker; ``status.sh --training``
    is polled until no worker trains (train.sh refuses to start a run while one is running, so runs go one after
    another); ``fetch.sh`` copies its run directory back from worker 0, where the table reads it. Run the sweep
    from the repository root (fetch.sh copies into the checkout); an absolute ``run.dir`` (a filesystem the
    workers share) is not fetched."""

    def __init__(self, base: str, tpu_name: str, zone: str, *, dry_run: bool = False, poll_s: float = 60.0,
                 scripts: str | Path = TPU_SETUP, sleep: Callable[[float], Any] = time.sleep):
        self.base, self.target, self.dry_run, self.poll_s = base, ["--name", tpu_name, "--zone", zone], dry_run, poll_s
        self.scripts, self.sleep = Path(scripts), sleep
        if not dry_run and not (self.scripts / "train.sh").exists():
            raise FileNotFoundError(f"{self.scripts / 'train.sh'} not found (the TPU launch script)")

    def train_command(self, run: SweepRun) -> list[str]:
        return [str(self.scripts / "train.sh"), *self.target, "--", self.base, *run.overrides]

    def fetch_command(self, run: SweepRun) -> list[str]:
        return [str(self.scripts / "fetch.sh"), *self.target, str(run.run_dir)]

    def wait_until_idle(self) -> None:
        """Returns once no worker is training (status.sh prints 'HOST: training (pid ...)' for each that is)."""
        status = [str(self.scripts / "status.sh"), *self.target, "--training"]
        while ": training (pid" in subprocess.run(status, check=True, capture_output=True, text=True).stdout:
            self.sleep(self.poll_s)

    def __call__(self, run: SweepRun, config: ml_collections.ConfigDict) -> tuple[str, bool]:
        train_cmd, fetch_cmd = self.train_command(run), self.fetch_command(run)
        print("$ " + shlex.join(train_cmd), flush=True)
        if self.dry_run:
            print("  (then wait until it ends, and fetch: " + shlex.join(fetch_cmd) + ")")
            return "dry run", True
        try:
            self.wait_until_idle()  # a run started by hand may still hold the TPU
            if code := subprocess.run(train_cmd, check=False).returncode:
                return f"failed: train.sh exit status {code}", True
            self.sleep(self.poll_s)
            self.wait_until_idle()
        except subprocess.CalledProcessError as err:  # the TPU's state is unknown: no next run on it
            return f"failed: status.sh exit status {err.returncode}", False
        if run.run_dir.is_absolute():
            return "launched (absolute run.dir: not fetched)", True
        if code := subprocess.run(fetch_cmd, check=False).returncode:
            return f"failed: fetch.sh exit status {code}", True
        if finished_step(run.run_dir, config.train.steps) is None:
            return "failed: ended before train.steps (tpu_setup/logs.sh shows why)", True
        return "done (on the TPU)", True


def finished_step(run_dir: Path, total: int) -> int | None:
    """The latest checkpoint step when it reached ``total`` (the run is finished), else None."""
    steps = checkpoint_steps(run_dir)
    return steps[-1] if steps and steps[-1] >= total else None


def run_sweep(sweep: Sweep, launch: Launcher | None = None, *, write: bool = True) -> list[Row]:
    """Runs the sweep's unfinished runs in order with ``launch`` (default: in this process), then writes and prints
    the results table and plot (unless ``write`` is False). Every config is loaded (and checked) before any run."""
    launch = launch or train_locally()
    runs = plan(sweep)
    configs = [load_config(sweep.base, run.overrides) for run in runs]
    rows, going = [], True
    for i, (run, config) in enumerate(zip(runs, configs, strict=True), 1):
        total = config.train.steps
        if not going:
            status = "not run"
        elif (step := finished_step(run.run_dir, total)) is not None:
            status = "skipped-finished"
            print(f"== run {i}/{len(runs)}: {run.name}: finished already (step {step}), skipped", flush=True)
        else:
            print(f"== run {i}/{len(runs)}: {run.name} ({run.run_dir})", flush=True)
            status, going = launch(run, config)
            print(f"== run {i}/{len(runs)}: {run.name}: {status}", flush=True)
        rows.append(measure(run, status, total, sweep.metric, sweep.lower_is_better))
    if write:
        write_results(sweep, rows)
    return rows


def _numbers(records: list[dict], key: str) -> list[float]:
    return [float(r[key]) for r in records if isinstance(r.get(key), int | float) and math.isfinite(r[key])]


def measure(run: SweepRun, status: str, total: int, metric: str, lower_is_better: bool = True) -> Row:
    """The run's row, read from its ``metrics.jsonl`` (whatever it holds, for a failed run too)."""
    records = read_metrics(run.run_dir)
    trained = [r for r in records if r.get("kind") == "train"]
    values = _numbers(records, metric)
    losses, speeds = _numbers(trained, "loss"), _numbers(trained, "tokens_per_s")
    return Row(run, status, max((r["step"] for r in trained), default=None), total,
               losses[-1] if losses else None, (min if lower_is_better else max)(values) if values else None,
               values[-1] if values else None, statistics.median(speeds) if speeds else None)


def best_row(rows: Sequence[Row], lower_is_better: bool = True) -> Row | None:
    """The run with the best final metric (None when no run has one)."""
    scored = [r for r in rows if r.final is not None]
    return (min if lower_is_better else max)(scored, key=lambda r: r.final) if scored else None


def columns(sweep: Sweep) -> list[str]:
    """The table's columns: run, each swept key, steps, losses and the metric, tokens/s, status."""
    train_loss = [] if sweep.metric == "loss" else ["final loss"]
    return ["run", *sweep.keys, "steps", *train_loss, f"best {sweep.metric}", f"final {sweep.metric}",
            "tokens/s", "status"]


def table_rows(sweep: Sweep, rows: Sequence[Row]) -> list[list[Any]]:
    """The cells of each row, in ``columns`` order (None: not measured)."""
    out = []
    for r in rows:
        steps = f"{r.steps if r.steps is not None else 0}/{r.total_steps}"
        losses = [] if sweep.metric == "loss" else [r.final_loss]
        out.append([r.run.name, *(r.run.values.get(k) for k in sweep.keys), steps, *losses, r.best, r.final,
                    r.tokens_per_s, r.status])
    return out


def _cell(v: Any) -> str:
    if v is None:
        return "-"
    if isinstance(v, float):
        return f"{v:.4g}" if abs(v) < 1e5 else f"{v:,.0f}"
    return str(v).replace("|", "\\|")


def markdown(sweep: Sweep, rows: Sequence[Row]) -> str:
    """``results.md``: what was swept, the table, and the best run."""
    cols, cells = columns(sweep), table_rows(sweep, rows)
    lines = [f"# Sweep {sweep.name}", "",
             f"Base config `{sweep.base}`; fixed overrides: "
             f"{', '.join(f'`{override_text(k, v)}`' for k, v in sweep.fixed.items()) or 'none'}. "
             f"Ranked by final `{sweep.metric}` ({'lower' if sweep.lower_is_better else 'higher'} is better).", "",
             "| " + " | ".join(cols) + " |", "|" + "|".join("---" for _ in cols) + "|"]
    lines += ["| " + " | ".join(_cell(v) for v in row) + " |" for row in cells]
    best = best_row(rows, sweep.lower_is_better)
    lines += ["", f"Best: **{best.run.name}** (final {sweep.metric} {best.final:.4g}, {best.run.run_dir})" if best
              else f"Best: none (no run logged {sweep.metric})"]
    return "\n".join(lines) + "\n"


def write_results(sweep: Sweep, rows: Sequence[Row]) -> Path:
    """Writes results.md, results.csv and sweep.png into the sweep's out dir; prints the Markdown; returns it."""
    out = sweep.out_dir
    out.mkdir(parents=True, exist_ok=True)
    text = markdown(sweep, rows)
    (out / RESULTS_MD).write_text(text)
    with (out / RESULTS_CSV).open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(columns(sweep))
        writer.writerows([["" if v is None else v for v in row] for row in table_rows(sweep, rows)])
    plot = plot_sweep(sweep, rows)
    print("\n" + text + f"\nresults: {out / RESULTS_MD}, {out / RESULTS_CSV}" + (f", {plot}" if plot else ""))
    return out


def plot_sweep(sweep: Sweep, rows: Sequence[Row]) -> Path | None:
    """Writes ``sweep.png``: the final metric against the first swept key, one line per value of the others (a log
    axis for positive numbers spanning 10x or more, else categories); returns its path (None without points)."""
    scored = [r for r in rows if r.final is not None]
    if not scored:
        return None
    x_key, others = (sweep.keys[0], sweep.keys[1:]) if sweep.keys else (None, [])
    xs = [r.run.values.get(x_key, "-") if x_key else r.run.name for r in scored]
    numeric = all(isinstance(x, int | float) and not isinstance(x, bool) for x in xs)
    if not numeric:  # categories, in the order the sweep runs them
        labels = list(dict.fromkeys(str(x) for x in xs))
        xs = [labels.index(str(x)) for x in xs]
    groups: dict[str, list[tuple[float, float]]] = {}
    for x, r in zip(xs, scored, strict=True):
        label = ", ".join(f"{k}={r.run.values.get(k, '-')}" for k in others) or sweep.metric
        groups.setdefault(label, []).append((x, r.final))
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(7, 4), dpi=120)
    for label, points in groups.items():
        ax.plot(*zip(*sorted(points), strict=True), "o-", label=label, lw=1.5, ms=5)
    best = best_row(scored, sweep.lower_is_better)
    ax.plot([xs[scored.index(best)]], [best.final], "*", color="black", ms=14, label=f"best: {best.run.name}")
    if numeric and min(xs) > 0 and max(xs) >= 10 * min(xs):
        ax.set_xscale("log")
        ax.set_xticks(sorted(set(xs)), [f"{x:g}" for x in sorted(set(xs))])  # the swept values, not 10^k
        ax.minorticks_off()
    if not numeric:
        ax.set_xticks(range(len(labels)), labels, rotation=30 if len(labels) > 4 else 0)
    ax.set_xlabel(x_key or "run")
    ax.set_ylabel(f"final {sweep.metric}")
    ax.set_title(f"sweep {sweep.name} ({'lower' if sweep.lower_is_better else 'higher'} is better)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    path = sweep.out_dir / PLOT_FILE
    fig.savefig(path)
    plt.close(fig)
    return path

