"""Preference model on the micro GPT (RL-CAI): a scalar reward read at the end-of-response token.

    flaxgpt train experiments/pm_micro.py prefs.data=runs/demo/cai/label/labels.jsonl \
        train.init_from=runs/demo/cai/sft_cai

``prefs.data`` takes `flaxgpt cai label` soft labels, `flaxgpt cai revise` pairs, hh-rlhf files and
multiple-choice JSONL (comma-separated). The PM starts from the SL-CAI model (its language knowledge)
with a fresh reward head; one or a few epochs at a low learning rate, as preference models train.
After the last step the reward is offset so the comparisons' responses average zero (pm.center).
"""

from pathlib import Path

from flaxgpt.config import read_config_file


def get_config():
    # The micro shapes, tokenizer and context of the chat model every RL stage starts from.
    c = read_config_file(Path(__file__).with_name("sft_micro.py"))
    c.run.name = "pm_micro"
    c.run.hardware = "cpu"  # a laptop CPU (`flaxgpt preflight` checks it fits there)
    c.data.sources = {}  # comparisons or prompts instead of chat shards
    c.model.dropout = 0.0  # off in every RL stage (PM, reference, policy, value), as TRL and N+ do
    c.train.stage = "pm"
    c.prefs.data = "runs/demo/cai/label/labels.jsonl"
    c.prefs.val_fraction = 0.15
    c.train.steps = 120
    c.train.batch_size = 8
    c.train.lr = 3e-4
    c.train.warmup_steps = 10
    c.train.weight_decay = 0.0
    c.train.eval_every = 40
    c.checkpoint.every = 60
    return c
