"""Launching jobs: the layers below composed into what a ``flaxgpt`` command runs.

    train.py  train a config: the one loop (flaxgpt.train) with run directories (flaxgpt.runs), the decoder
              (flaxgpt.infer) for PPO rollouts and the evaluation suites (flaxgpt.eval) as hooks
"""
