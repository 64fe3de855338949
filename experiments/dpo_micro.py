"""DPO on the micro GPT: the SL-CAI policy learns the AI preference labels directly (no reward model).

    flaxgpt train experiments/dpo_micro.py prefs.data=runs/demo/cai/label/labels.jsonl \
        train.init_from=runs/demo/cai/sft_cai

The reference policy is the starting point (``dpo.ref_from`` empty: ``train.init_from``); its
log-probs are computed once and kept in the run directory. Soft labels from `flaxgpt cai label` act
as per-pair label smoothing (cDPO); ``dpo.loss`` picks sigmoid, ipo or hinge.
"""

from pathlib import Path

from flaxgpt.config import read_config_file


def get_config():
    # The micro shapes, tokenizer and context of the chat model every RL stage starts from.
    c = read_config_file(Path(__file__).with_name("sft_micro.py"))
    c.run.name = "dpo_micro"
    c.run.hardware = "cpu"  # a laptop CPU (`flaxgpt preflight` checks it fits there)
    c.data.sources = {}  # comparisons or prompts instead of chat shards
    c.model.dropout = 0.0  # off in every RL stage (PM, reference, policy, value), as TRL and N+ do
    c.train.stage = "dpo"
    c.prefs.data = "runs/demo/cai/label/labels.jsonl"
    c.prefs.val_fraction = 0.15
    c.dpo.beta = 0.1
    c.dpo.loss = "sigmoid"
    c.train.steps = 100
    c.train.batch_size = 8
    c.train.lr = 5e-5
    c.train.warmup_steps = 10
    c.train.weight_decay = 0.0
    c.train.eval_every = 50
    c.checkpoint.every = 50
    return c
