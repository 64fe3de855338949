"""Learning rate x 3 for the micro model, short runs: a few minutes on a laptop CPU.

    make demo    # or just its ingest: flaxgpt ingest examples/persona/sources.py --out runs/demo/data/persona
    make sweep   # = flaxgpt sweep experiments/sweeps/micro_lr.py -> runs/sweeps/micro_lr/results.md, sweep.png

Each run is experiments/micro.py with its train.lr and the fixed overrides below, in runs/sweeps/micro_lr/lr=...;
rerunning skips the runs that reached train.steps.
"""

from flaxgpt.launch.sweep import Sweep


def get_sweep():
    return Sweep(
        name="micro_lr",
        base="experiments/micro.py",
        grid={"train.lr": [5e-4, 2e-3, 8e-3]},
        fixed={
            "data.sources.personal.path": "runs/demo/data/persona",
            "train.steps": 120,  # micro.py trains 400: enough here to rank learning rates
            "train.warmup_steps": 20,
            "train.eval_every": 40,
            "train.eval_batches": 4,
            "checkpoint.every": 40,
        },
        metric="val_loss",  # lower is better
    )
