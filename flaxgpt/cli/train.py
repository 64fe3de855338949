"""``flaxgpt train``, ``flaxgpt run`` and ``flaxgpt info``: arguments and the calls they make.

    flaxgpt train CONFIG [key=value ...]           train any registered stage (resumes from the run directory)
    flaxgpt run PIPELINE [key=value ...] [--only]  a pipeline's stages in order (a training config: as train)
    flaxgpt info RUN_DIR                           what a run is and how far it got
"""

from __future__ import annotations

import argparse
import sys

from flaxgpt.cai.pipeline import Pipeline, is_pipeline
from flaxgpt.cli.main import main
from flaxgpt.config import apply_overrides, load_config, read_config_file
from flaxgpt.launch.train import train
from flaxgpt.runs.info import describe_run
from flaxgpt.train.loop import NonFiniteLoss
from flaxgpt.train.sharding import maybe_init_distributed
from flaxgpt.train.stages import STAGES

NON_FINITE_STATUS = 3  # exit status of a run stopped by a NaN/inf loss (its last good checkpoint is kept)


def add_train_arguments(p: argparse.ArgumentParser) -> None:
    """``flaxgpt train CONFIG [key=value ...]``."""
    p.add_argument("config", help="experiment file with get_config(), e.g. experiments/micro.py")
    p.add_argument("overrides", nargs="*", help="dotted overrides such as model.n_layer=4 train.steps=100")
    p.epilog = "train.stage: " + "; ".join(f"{name}: {stage.doc}" for name, stage in STAGES.items())


def run_train(args: argparse.Namespace) -> int:
    """Trains the config (joining a multi-host job first when the environment describes one)."""
    config = load_config(args.config, args.overrides)
    maybe_init_distributed()
    try:
        train(config)
    except NonFiniteLoss as err:
        print(f"error: {err}", file=sys.stderr)
        return NON_FINITE_STATUS
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
