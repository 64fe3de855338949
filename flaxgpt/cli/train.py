"""``flaxgpt train``, ``flaxgpt run`` and ``flaxgpt info``: arguments and the calls they make.

    flaxgpt train CONFIG [key=value ...]           train any registered stage (resumes from the run directory;
                                                   --restart starts over; --coordinator ... joins many processes)
    flaxgpt run PIPELINE [key=value ...] [--only]  a pipeline's stages in order (a training config: as train)
    flaxgpt info RUN_DIR                           what a run is and how far it got
"""

from __future__ import annotations

import argparse
import signal
import sys

from flaxgpt.cai.pipeline import Pipeline, is_pipeline
from flaxgpt.cli.main import main
from flaxgpt.config import apply_overrides, load_config, read_config_file
from flaxgpt.launch.train import train
from flaxgpt.runs.info import describe_run
from flaxgpt.train.checkpoint import CheckpointsDamaged
from flaxgpt.train.distributed import join, join_spec
from flaxgpt.train.lock import RunLocked
from flaxgpt.train.loop import NonFiniteLoss
from flaxgpt.train.stages import STAGES

# Exit statuses of `flaxgpt train` besides 0 (finished, or paused by stop_at) and 2 (bad config or input):
NON_FINITE_STATUS = 3  # a NaN/inf loss stopped the run (nothing saved after it)
DAMAGED_STATUS = 4  # no checkpoint restores (listed with reasons; nothing moved, history kept)
LOCKED_STATUS = 5  # another trainer holds the run directory
# A SIGTERM (preemption) or SIGINT saves a checkpoint, then exits 128 + the signal number (143 or 130), as a
# process killed by it would: schedulers (SLURM --requeue, Kubernetes restart policies) see a job to run again.
STATUS_AFTER_SIGNAL = 128
EPILOG = ("exit status: 0 done; 2 bad config or input; 3 non-finite loss; 4 no checkpoint restores; 5 run directory "
          "in use; 143/130 stopped by SIGTERM/SIGINT after saving a checkpoint (requeue to resume)")


def add_train_arguments(p: argparse.ArgumentParser) -> None:
    """``flaxgpt train CONFIG [key=value ...] [--restart] [--coordinator H:P --num-processes N --process-id I]``."""
    p.add_argument("config", help="experiment file with get_config(), e.g. experiments/micro.py")
    p.add_argument("overrides", nargs="*", help="dotted overrides such as model.n_layer=4 train.steps=100")
    p.add_argument("--restart", action="store_true",
                   help="start over in the run directory: its checkpoints and metrics move to previous/<time>/ "
                        "(run.resume=false)")
    p.add_argument("--coordinator", default="", help="multi-process: host:port of process 0 (dist.coordinator)")
    p.add_argument("--num-processes", type=int, default=0, help="multi-process: how many (dist.num_processes)")
    p.add_argument("--process-id", type=int, default=-1, help="multi-process: this one's id (dist.process_id)")
    p.epilog = ("train.stage: " + "; ".join(f"{name}: {stage.doc}" for name, stage in STAGES.items())
                + ". " + EPILOG)


def run_train(args: argparse.Namespace) -> int:
    """Trains the config, first joining the multi-process job the flags, config or environment describe."""
    overrides = list(args.overrides) + (["run.resume=false"] if getattr(args, "restart", False) else [])
    config = load_config(args.config, overrides)
    d = config.dist
    join(join_spec(coordinator=getattr(args, "coordinator", "") or d.coordinator,
                   num_processes=getattr(args, "num_processes", 0) or d.num_processes,
                   process_id=max(getattr(args, "process_id", -1), d.process_id)))
    try:
        summary = train(config)
    except NonFiniteLoss as err:
        print(f"error: {err}", file=sys.stderr)
        return NON_FINITE_STATUS
    except CheckpointsDamaged as err:
        print(f"error: {err}", file=sys.stderr)
        return DAMAGED_STATUS
    except RunLocked as err:
        print(f"error: {err}", file=sys.stderr)
        return LOCKED_STATUS
    if summary.get("signal"):
        return STATUS_AFTER_SIGNAL + signal.Signals[summary["signal"]].value
    return 0


def add_run_arguments(p: argparse.ArgumentParser) -> None:
    """``flaxgpt run PIPELINE [key=value ...] [--only STAGES]``."""
    p.add_argument("config", help="experiments/cai_micro.py (a pipeline) or any training experiment file")
    p.add_argument("overrides", nargs="*", help="dotted overrides, e.g. rl=dpo revise.rounds=4")
    p.add_argument("--only", default="", help="comma-separated stages to run (others are left alone)")


def run_pipeline(args: argparse.Namespace) -> int:
    """Runs a pipeline config's stages as ``flaxgpt`` commands (through ``main``); a training config trains."""
    config = read_config_file(args.config)
    if not is_pipeline(config):
        return run_train(args)
    apply_overrides(config, list(args.overrides))
    only = [s.strip() for s in args.only.split(",") if s.strip()]
    return Pipeline(config, main).run(only)


def add_info_arguments(p: argparse.ArgumentParser) -> None:
    """``flaxgpt info RUN_DIR``."""
    p.add_argument("run_dir")


def run_info(args: argparse.Namespace) -> int:
    """Prints the run's description."""
    print(describe_run(args.run_dir))
    return 0
