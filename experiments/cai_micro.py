"""The micro Constitutional AI pipeline on the example persona (part of `make demo`, CPU, minutes).

    flaxgpt run experiments/cai_micro.py                    # every stage not done yet
    flaxgpt run experiments/cai_micro.py --only pm,ppo      # just these
    flaxgpt run experiments/cai_micro.py rl=dpo dir=runs/demo/cai_dpo   # DPO instead of PPO

It needs the pretrained micro model and the chat data `make demo` makes first (runs/demo/micro,
runs/demo/data/chat). Stages and folders are described in flaxgpt/cai/pipeline.py. The feedback
model defaults to the SFT model itself (as the CAI paper uses one helpful model for critiques and
labels); point ``revise.feedback``/``label.feedback`` at any backend for better feedback:
another run directory or an OpenAI-compatible endpoint, e.g.
``openai:http://localhost:8080/v1?model=llama&api=chat``.
"""

import ml_collections


def get_config():
    c = ml_collections.ConfigDict()
    c.dir = "runs/demo/cai"
    c.base = "runs/demo/micro"  # the pretrained model both SFT stages start from
    c.stages = ("sft", "revise", "sft_cai", "label", "pm", "rl", "evaluate")
    c.rl = "ppo"  # the "rl" stage: ppo (against the PM) or dpo (on the labels; the PM then only scores)

    c.sft = ml_collections.ConfigDict()
    c.sft.config = "experiments/sft_micro.py"
    c.sft.overrides = ("data.sources.chat.path=runs/demo/data/chat", "train.steps=150")
    c.sft.run_dir = "runs/demo/sft_micro"  # reuse the demo's chat model when it exists ('' -> dir/sft)

    c.revise = ml_collections.ConfigDict()
    c.revise.constitution = "personal,harmless"
    c.revise.prompts = ("examples/cai/red_team.jsonl",)
    c.revise.facts = "examples/persona/facts.jsonl"  # helpfulness prompts about the owner
    c.revise.owner_config = "examples/persona/sources.py"  # whose public details the privacy rules keep
    c.revise.feedback = ""  # '' -> the SFT model
    # The micro model's 128-token context cannot hold the few-shot critique and label prompts: keep their last
    # tokens (the request itself) rather than fail; `flaxgpt cai` reports how many were cut.
    c.revise.fit = "left"
    c.revise.rounds = 2
    c.revise.max_tokens = 40
    c.revise.limit = 0  # 0: every prompt
    c.revise.seed = 0

    # SL-CAI: the pretrained model fine-tuned on the original chat data plus the final revisions.
    c.sft_cai_steps = 150
    c.sft_cai_revision_weight = 1.0

    c.label = ml_collections.ConfigDict()
    c.label.constitution = "personal,harmless"
    c.label.prompts = ("examples/cai/red_team.jsonl", "examples/cai/helpful.jsonl")
    c.label.facts = "examples/persona/facts.jsonl"
    c.label.owner_config = "examples/persona/sources.py"
    c.label.feedback = ""
    c.label.max_tokens = 40
    c.label.limit = 0
    c.label.cot = False
    c.label.fit = "left"
    # A 7M-parameter feedback model labels by position, not content (its labels would stop the pipeline at the
    # label-quality gate); the demo trains on them anyway to show every stage run. Real runs keep the gate on.
    c.label.gate = False
    c.label.seed = 0

    c.pm = ml_collections.ConfigDict()
    c.pm.config = "experiments/pm_micro.py"
    c.pm.overrides = ()
    c.pm.with_revision_pairs = True  # also learn revision-over-initial pairs (hard labels)

    c.ppo = ml_collections.ConfigDict()
    c.ppo.config = "experiments/ppo_micro.py"
    c.ppo.overrides = ()
    c.ppo.prompts = ("examples/cai/red_team.jsonl", "examples/cai/helpful.jsonl")

    c.dpo = ml_collections.ConfigDict()
    c.dpo.config = "experiments/dpo_micro.py"
    c.dpo.overrides = ()

    # `flaxgpt eval` of every policy on held-out red-team prompts, judged by the PM (the privacy rules without one).
    c.evaluate = ml_collections.ConfigDict()
    c.evaluate.suites = "safety"
    c.evaluate.prompts = ("examples/cai/red_team_test.jsonl",)
    c.evaluate.owner_config = "examples/persona/sources.py"
    c.evaluate.limit = 0
    c.evaluate.max_tokens = 40
    c.evaluate.seed = 0
    return c
