"""``flaxgpt sweep``: arguments and the calls they make.

    flaxgpt sweep SWEEP [key=value ...]                       train every run here, one after another
    flaxgpt sweep SWEEP --via tpu --tpu-name N --zone Z       each run on the TPU VM: train.sh, wait, fetch.sh
    flaxgpt sweep SWEEP --dry-run                             print the command lines only
"""

from __future__ import annotations

import argparse

from flaxgpt.launch.sweep import TpuLauncher, load_sweep, print_locally, run_sweep, train_locally


def add_arguments(p: argparse.ArgumentParser) -> None:
    """``flaxgpt sweep SWEEP [key=value ...] [--out DIR] [--via local|tpu --tpu-name N --zone Z] [--dry-run]``."""
    p.add_argument("sweep", help="sweep file with get_sweep(), e.g. experiments/sweeps/micro_lr.py")
    p.add_argument("overrides", nargs="*", help="dotted overrides for every run (added to the sweep's fixed ones)")
    p.add_argument("--out", default="", help="results and run directories (default: the sweep's, runs/sweeps/NAME)")
    p.add_argument("--via", choices=("local", "tpu"), default="local",
                   help="local: train here, in this process; tpu: tpu_setup/train.sh once per run, one after another")
    p.add_argument("--tpu-name", default="", help="with --via tpu: the TPU VM (train.sh --name)")
    p.add_argument("--zone", default="", help="with --via tpu: its zone")
    p.add_argument("--poll", type=float, default=60.0, help="with --via tpu: seconds between checks that a run ended")
    p.add_argument("--dry-run", action="store_true", help="print each run's command line; run and write nothing")


def run(args: argparse.Namespace) -> int:
    """Runs the sweep; exit status 1 when a run failed (the table says which), 0 otherwise."""
    sweep = load_sweep(args.sweep, args.overrides, out=args.out)
    if args.via == "tpu":
        if not (args.tpu_name and args.zone):
            raise ValueError("--via tpu needs --tpu-name and --zone")
        launch = TpuLauncher(sweep.base, args.tpu_name, args.zone, dry_run=args.dry_run, poll_s=args.poll)
    elif args.dry_run:
        launch = print_locally(sweep.base)
    else:
        launch = train_locally()
    rows = run_sweep(sweep, launch, write=not args.dry_run)
    return 0 if all(r.ok for r in rows) else 1
