"""PPO on the micro GPT against the preference model (RL-CAI's last stage).

    flaxgpt train experiments/ppo_micro.py train.init_from=runs/demo/cai/sft_cai \
        ppo.reward_from=runs/demo/cai/pm ppo.prompts=examples/cai/red_team.jsonl,examples/cai/helpful.jsonl

Each step is one rollout of ppo.rollout_batch prompts, then ppo.epochs passes of minibatch updates.
The reference policy is ``train.init_from`` (frozen); the value head trains on the shared backbone.
Numbers follow the N+ implementation details and TRL (reference/constitutional-ai.md section 4),
scaled to a 4-layer model: temperature 0.7, clip 0.2, GAE gamma 1 / lambda 0.95, whitened
advantages, KL coefficient 0.05 (k1), a penalty for responses that never end.
"""

from pathlib import Path

from flaxgpt.config import read_config_file


def get_config():
    # The micro shapes, tokenizer and context of the chat model every RL stage starts from.
    c = read_config_file(Path(__file__).with_name("sft_micro.py"))
    c.run.name = "ppo_micro"
    c.run.hardware = "cpu"  # a laptop CPU (`flaxgpt preflight` checks it fits there)
    c.data.sources = {}  # comparisons or prompts instead of chat shards
    c.model.dropout = 0.0  # off in every RL stage (PM, reference, policy, value), as TRL and N+ do
    c.train.stage = "ppo"
    c.ppo.prompts = "examples/cai/red_team.jsonl,examples/cai/helpful.jsonl"
    c.ppo.reward_from = "runs/demo/cai/pm"
    c.ppo.rollout_batch = 16
    c.ppo.minibatch = 8
    c.ppo.epochs = 4
    c.ppo.response_len = 40
    c.train.steps = 30
    c.train.lr = 1e-5
    c.train.warmup_steps = 0
    c.train.min_lr_ratio = 1.0  # constant learning rate
    c.train.weight_decay = 0.0
    c.train.log_every = 1
    c.checkpoint.every = 10
    return c
