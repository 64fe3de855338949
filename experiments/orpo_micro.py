"""ORPO on the micro GPT: SFT on the preferred responses and an odds-ratio preference loss, no reference model.

    flaxgpt train experiments/orpo_micro.py prefs.data=runs/demo/cai/label/labels.jsonl \
        train.init_from=runs/demo/cai/sft_cai

``orpo.beta`` weighs the odds-ratio term (the paper's lambda). Comparisons as for DPO (``prefs.data``).
"""

from pathlib import Path

from flaxgpt.config import read_config_file


def get_config():
    c = read_config_file(Path(__file__).with_name("dpo_micro.py"))
    c.run.name = "orpo_micro"
    c.run.hardware = "cpu"  # a laptop CPU (`flaxgpt preflight` checks it fits there)
    c.train.stage = "orpo"
    c.orpo.beta = 0.1
    c.train.lr = 1e-4
    return c
