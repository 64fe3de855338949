"""Runs evaluation suites over runs: ``evaluate`` (run directories) and ``evaluate_params`` (the trainer's
in-memory parameters).

Every (run, suite) pair runs on its own: a suite that raises becomes a result marked missing with the
error (and the traceback is logged), so one broken suite or run never loses the others' numbers.
The result is plain JSON::

    {"runs": {NAME: {"run_dir": str, "suites": {SUITE: SuiteResult.to_json()}}},
     "suites": [SUITE, ...], "targets": TARGETS, "context": {...the EvalContext, paths as strings...}}
"""

from __future__ import annotations

import dataclasses
import gc
import logging
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import flax.linen as nn
from tqdm import tqdm

import flaxgpt.eval.suites  # noqa: F401 - importing the package registers every suite in SUITES
from flaxgpt.cai.backends import LocalBackend
from flaxgpt.config import run_dir
from flaxgpt.data.tokenizer import load_tokenizer
from flaxgpt.eval.suite import SUITES, TARGETS, EvalContext, EvalRun, SuiteResult
from flaxgpt.infer.generator import Generator
from flaxgpt.model.gpt import ModelConfig
from flaxgpt.runs.rundir import RunModel

log = logging.getLogger("flaxgpt")


def resolve_suites(suites: str | Sequence[str]) -> list[str]:
    """Suite names from a comma list or sequence; "all" is every registered suite. ValueError for unknown ones."""
    registry = SUITES
    names = [s.strip() for s in (suites.split(",") if isinstance(suites, str) else suites) if s.strip()]
    if not names or names == ["all"]:
        return list(registry)
    unknown = [s for s in names if s not in registry]
    if unknown:
        raise ValueError(f"--suite: unknown suite(s) {', '.join(unknown)}; known: {', '.join(registry)} or all")
    return names


def run_names(run_dirs: Sequence[str | Path], names: Sequence[str] | None = None) -> list[str]:
    """Display names: ``names`` if given (one per run), else each directory's name, made unique."""
    if names:
        if len(names) != len(run_dirs):
            raise ValueError(f"--names: {len(names)} names for {len(run_dirs)} runs")
        if len(set(names)) != len(names):
            raise ValueError(f"--names: names must differ, got {list(names)}")
        return list(names)
    out: list[str] = []
    for d in run_dirs:
        base = Path(d).resolve().name or str(d)
        name, k = base, 2
        while name in out:
            name, k = f"{base}_{k}", k + 1
        out.append(name)
    return out


def run_suite(name: str, run: EvalRun, ctx: EvalContext) -> SuiteResult:
    """One suite on one run; an exception becomes a missing result naming the error (traceback logged)."""
    t0 = time.perf_counter()
    try:
        result = SUITES[name](run, ctx)
    except Exception as err:  # noqa: BLE001 - reported in the result; the other suites go on
        log.exception("suite %r failed on run %r", name, run.name)
        first = str(err).splitlines()[0] if str(err) else ""
        result = SuiteResult.missing(name, f"error: {type(err).__name__}: {first[:500]}")
    result.seconds = time.perf_counter() - t0
    return result


def context_json(ctx: EvalContext) -> dict[str, Any]:
    """The context as JSON: paths as strings, the judge as its name."""
    out: dict[str, Any] = {}
    for f in dataclasses.fields(ctx):
        v = getattr(ctx, f.name)
        if f.name == "judge":
            v = None if v is None else getattr(v, "name", type(v).__name__)
        elif isinstance(v, Path):
            v = str(v)
        elif isinstance(v, tuple):
            v = [str(x) for x in v]
        out[f.name] = v
    return out


def evaluate_runs(runs: Sequence[EvalRun], suites: str | Sequence[str], ctx: EvalContext, *,
                  progress: bool = True) -> dict[str, Any]:
    """Every suite on every EvalRun (models built lazily and dropped after each run); the result JSON."""
    names = resolve_suites(suites)
    result: dict[str, Any] = {"runs": {}, "suites": names, "targets": {k: list(v) for k, v in TARGETS.items()},
                              "context": context_json(ctx)}
    bar = tqdm(total=len(runs) * len(names), disable=not progress, unit="suite", desc="eval", dynamic_ncols=True)
    try:
        for run in runs:
            entry = result["runs"][run.name] = {"run_dir": str(run.run_dir), "suites": {}}
            for name in names:
                bar.set_postfix_str(f"{run.name}: {name}", refresh=True)
                entry["suites"][name] = run_suite(name, run, ctx).to_json()
                bar.update(1)
            run._backend = run._run = None  # one run's model in memory at a time
            gc.collect()
    finally:
        bar.close()
    return result


def evaluate(run_dirs: Sequence[str | Path], suites: str | Sequence[str], ctx: EvalContext, *,
             names: Sequence[str] | None = None, progress: bool = True) -> dict[str, Any]:
    """Runs ``suites`` (names, a comma list, or "all") on each run directory; returns the result JSON (module
    docstring). ``names`` are the runs' display names (default: their directory names)."""
    if not run_dirs:
        raise ValueError("no run directories to evaluate")
    for d in run_dirs:
        if not Path(d).is_dir():
            raise FileNotFoundError(f"run directory not found: {d}")
    runs = [EvalRun(Path(d), n) for d, n in zip(run_dirs, run_names(run_dirs, names), strict=True)]
    return evaluate_runs(runs, suites, ctx, progress=progress)


def params_run(params: Any, config: Any, *, name: str = "current", step: int = 0, tokenizer: Any = None) -> EvalRun:
    """An EvalRun over in-memory ``params`` of ``config`` (the trainer's current state): its backend is a
    LocalBackend over a Generator of those params, ``load()`` a RunModel holding them."""
    tokenizer = tokenizer or load_tokenizer(config.data.tokenizer)
    model_cfg = ModelConfig.from_config(config.model)
    params = nn.unbox(params)
    rdir = run_dir(config)
    run = EvalRun(rdir, name)
    run._run = RunModel(rdir, step, config, model_cfg, tokenizer, params)
    run._backend = LocalBackend(Generator(model_cfg, params, tokenizer), name=f"params:{name}")
    return run


_CURRENT: dict[int, EvalRun] = {}  # id(config) -> the EvalRun evaluate_params keeps between calls


def evaluate_params(params: Any, config: Any, suites: str | Sequence[str], ctx: EvalContext, *,
                    step: int = 0, tokenizer: Any = None) -> dict[str, SuiteResult]:
    """Suites on in-memory ``params`` (e.g. from the trainer every N steps) -> {suite: SuiteResult}.

    Repeated calls with the same ``config`` reuse one Generator and swap the weights in (``set_params``), so decoding
    compiles once per training run rather than at every evaluation.
    """
    run = _CURRENT.get(id(config))
    if run is None:
        run = params_run(params, config, step=step, tokenizer=tokenizer)
        _CURRENT.clear()
        _CURRENT[id(config)] = run
    else:
        run._backend.generator.set_params(params)
        run._run.params, run._run.step = nn.unbox(params), step
        run.__dict__.pop("_judged_responses", None)  # responses of the previous weights
    return {name: run_suite(name, run, ctx) for name in resolve_suites(suites)}
