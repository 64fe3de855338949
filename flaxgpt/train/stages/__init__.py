"""The stage registry: every training method ``train.stage`` may name, one ``Stage`` record each (``base.py``).

    lm.py     pretrain, sft: masked next-token loss on token shards
    pairs.py  what the stages trained on comparisons share (pair data, step, validation)
    pm.py     the preference model
    dpo.py    direct preference optimisation against a frozen reference
    orpo.py   odds-ratio preference optimisation (SFT + preference, no reference)
    ppo.py    PPO against a preference model, on the policy's own rollouts

This is the only place that maps stage names to code: adding a method is one module and one line below.
"""

from __future__ import annotations

from flaxgpt.config import ConfigError
from flaxgpt.train.stages import dpo, lm, orpo, pm, ppo
from flaxgpt.train.stages.base import Stage

STAGES: dict[str, Stage] = {s.name: s for s in (lm.PRETRAIN, lm.SFT, pm.STAGE, dpo.STAGE, orpo.STAGE, ppo.STAGE)}


def get_stage(name: str) -> Stage:
    """The registered Stage called ``name``; ConfigError naming ``train.stage`` (and the known ones) otherwise."""
    try:
        return STAGES[name]
    except KeyError:
        raise ConfigError(f"config key 'train.stage': {name!r} is not a training stage; registered: "
                          f"{', '.join(STAGES)}") from None
