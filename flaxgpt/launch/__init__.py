"""Launching jobs: the layers below composed into what a ``flaxgpt`` command runs.

    train.py  train a config: the one loop (flaxgpt.train) with run directories (flaxgpt.runs), the decoder
              (flaxgpt.infer) for PPO rollouts and the evaluation suites (flaxgpt.eval) as hooks
    preflight.py  will a config's step fit its hardware: compiled for a TPU slice ahead of time (libtpu), or an
                  analytic estimate for GPUs and CPUs; per-device memory, FLOPs, step-time bounds
    sweep.py      one config over a grid or list of overrides, run after run (here, or each through
                  tpu_setup/train.sh), finished runs skipped -> results table (md, csv) and plot
"""
