"""``flaxgpt preflight``: will each config's train step fit its hardware, and how fast could it run there.

    flaxgpt preflight CONFIG... [key=value ...] [--topology v5e-8] [--gpu h100x8] [--cpu] [--json FILE]

Without --topology/--gpu/--cpu each config is checked on its own ``run.hardware``. TPU targets compile the real
step for the slice (needs libtpu: run it as ``.venv-tpu/bin/flaxgpt``; ``make setup-tpu`` makes that environment);
GPUs and CPUs get an analytic estimate. Exit status: 0 when everything fits, 1 when something does not, 2 on a
bad config or hardware name.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from pathlib import Path

import jax

from flaxgpt.cai.pipeline import is_pipeline
from flaxgpt.cli.main import USAGE_ERROR
from flaxgpt.config import ConfigError, apply_overrides, read_config_file, validate
from flaxgpt.launch.preflight import DEFAULT_MFU, GiB, NoTPUCompiler, Report, preflight

DOES_NOT_FIT = 1


def add_arguments(p: argparse.ArgumentParser) -> None:
    """``flaxgpt preflight CONFIG... [key=value ...] [--topology T] [--gpu G] [--cpu] [--mfu X] [--json FILE]``."""
    p.add_argument("items", nargs="+", metavar="CONFIG_OR_OVERRIDE",
                   help="experiment files (experiments/*.py) and key=value overrides applied to each")
    p.add_argument("--topology", action="append", default=[],
                   help="TPU type or topology to compile for, e.g. v5e-8, v4-8, v5p-16, v6e-8 or v5e:2x4 "
                        "(v4/v5p type names count TensorCores, 2 per chip); repeatable")
    p.add_argument("--gpu", action="append", default=[], help="GPUs for an analytic estimate, e.g. h100x8; repeatable")
    p.add_argument("--cpu", action="store_true", help="also this machine's CPU (analytic estimate against its RAM)")
    p.add_argument("--mfu", type=float, default=DEFAULT_MFU, help="assumed MFU of the estimated step time")
    p.add_argument("--json", default="", help="also write the reports as JSON to this file ('-': stdout)")


def _targets(args: argparse.Namespace, config_hardware: str) -> list[str]:
    given = [*args.topology, *(g if g.startswith("gpu:") else f"gpu:{g}" for g in args.gpu)]
    given += ["cpu"] if args.cpu else []
    return given or [config_hardware]


def _gib(x: float) -> str:
    return f"{x / GiB:.2f}"


def _seconds(x: float) -> str:
    if math.isnan(x):
        return "-"
    return f"{x * 1e3:.1f} ms" if x < 1 else f"{x:.2f} s"


COLUMNS = ("config", "hardware", "chips", "mesh d/f/t", "args GiB", "temps GiB", "out GiB", "total GiB",
           "memory GiB", "fits", "TFLOP/step", "t@100%", "t@MFU", "MFU ceiling", "method")


def table(reports: list[Report]) -> str:
    """The reports as a Markdown table (one row each), the assumed MFU in the header."""
    mfus = sorted({r.mfu for r in reports})
    cols = [c.replace("t@MFU", f"t@{'/'.join(f'{m:.0%}' for m in mfus)} MFU") for c in COLUMNS]
    rows = [[r.config, r.hardware, str(r.chips), "/".join(str(v) for v in r.mesh.values()), _gib(r.arguments),
             _gib(r.temporaries), _gib(r.outputs), _gib(r.total), _gib(r.memory), "yes" if r.fits else "NO",
             f"{r.model_flops / 1e12:.1f}", _seconds(r.floor_time), _seconds(r.step_time), f"{r.mfu_ceiling:.0%}",
             r.method] for r in reports]
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    """Checks every config on its targets, prints the table; the exit status says whether all fit."""
    # Nothing runs on a device here: keep JAX's own backend the CPU (with libtpu installed it would probe for a TPU).
    jax.config.update("jax_platforms", "cpu")
    overrides = [a for a in args.items if "=" in a]
    paths = [a for a in args.items if "=" not in a]
    if not paths:
        raise ConfigError("name at least one config file (e.g. experiments/gpt2_124m.py)")
    reports: list[Report] = []
    failed: list[str] = []
    for path in paths:
        config = read_config_file(path)
        if is_pipeline(config):
            print(f"{path}: a pipeline; the training configs its stages run are checked on their own")
            continue
        apply_overrides(config, overrides)
        validate(config)
        for hardware in _targets(args, config.run.hardware):
            start = time.perf_counter()
            print(f"{path} on {hardware} ...", end=" ", flush=True, file=sys.stderr)
            try:
                report = preflight(Path(path).stem, config, hardware, args.mfu)
            except NoTPUCompiler as err:
                print(f"\nerror: {err}", file=sys.stderr)
                return USAGE_ERROR
            except (ConfigError, ValueError) as err:  # this config on this hardware; the others still run
                print(f"\nerror: {err}", file=sys.stderr)
                failed.append(f"{path} on {hardware}: {err}")
                continue
            print(f"{'fits' if report.fits else 'does NOT fit'} ({time.perf_counter() - start:.1f} s)",
                  file=sys.stderr)
            reports.append(report)
    if reports:
        print(table(reports))
        for r in reports:
            if r.note:
                print(f"{r.config} on {r.hardware}: {r.note}")
    print("memory per device; FLOPs per optimizer update (nanoGPT's 6N + 12LHQT per token); t@100%: at the chips' "
          "peak with remat's recompute; MFU ceiling: model / hardware FLOPs")
    if args.json:
        text = json.dumps([r.to_dict() for r in reports], indent=1)
        if args.json == "-":
            print(text)
        else:
            Path(args.json).write_text(text + "\n")
    for line in failed:
        print(f"error: {line}")
    if failed:
        return USAGE_ERROR
    return 0 if all(r.fits for r in reports) else DOES_NOT_FIT

