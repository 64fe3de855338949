"""Training a config: ``train(config)`` builds the run's context with every service and runs the one loop.

``flaxgpt.train`` cannot import the layers above it, so this is where they are plugged in (``Services``):
``train.init_from`` and frozen models (reference policy, preference model) come from run directories
(``flaxgpt.runs``), PPO samples with the KV-cache ``Generator`` (``flaxgpt.infer``), and ``evals.every`` runs the
evaluation suites (``flaxgpt.eval``) on the current parameters.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import ml_collections
from jax.sharding import Mesh

from flaxgpt.data.tokenizer import Tokenizer
from flaxgpt.eval.runner import evaluate_params, resolve_suites
from flaxgpt.eval.suite import context_from_config
from flaxgpt.infer.generator import Generator
from flaxgpt.infer.sampling import SamplingParams
from flaxgpt.model.gpt import GPT, ModelConfig
from flaxgpt.runs.init_from import init_state_from
from flaxgpt.runs.rundir import load_run
from flaxgpt.train.context import Frozen, RunContext, Sample, Services, build_context
from flaxgpt.train.loop import train as train_loop
from flaxgpt.train.stages.base import Hook


def load_frozen(run_dir: str, mesh: Mesh) -> Frozen:
    """The latest checkpoint of ``run_dir`` as a frozen model on ``mesh`` (sharded by its own rules)."""
    run = load_run(run_dir, mesh=mesh)
    return Frozen(GPT(run.model_cfg), run.params, run.tokenizer.metadata(), f"{run_dir} (step {run.step})")


class GeneratorSampler:
    """The ``Sampler`` PPO rollouts use: a Generator whose weights follow the policy (``set_params``)."""

    def __init__(self, model_cfg: ModelConfig, params: Any, tokenizer: Tokenizer, mesh: Mesh, rules: Any,
                 max_len: int):
        self.generator = Generator(model_cfg, params, tokenizer, max_len=max_len, mesh=mesh, rules=rules)

    def set_params(self, params: Any) -> None:
        self.generator.set_params(params)

    def sample(self, prompts: Sequence[Sequence[int]], *, max_new_tokens: int, temperature: float,
               stop_ids: Sequence[int], seeds: Sequence[int]) -> list[Sample]:
        """One response per prompt, row i seeded with ``seeds[i]``; ended = a stop token (or end-of-text) ended it."""
        sampling = [SamplingParams(temperature=temperature, stop_token_ids=tuple(stop_ids), seed=s) for s in seeds]
        done = self.generator.generate([list(p) for p in prompts], sampling, max_new_tokens=max_new_tokens)
        return [Sample(c.tokens, c.finish_reason == "stop", c.text) for c in done]


def suite_hooks(ctx: RunContext) -> list[Hook]:
    """The ``evals.suites`` on the current parameters every ``evals.every`` steps, logged as kind ``suite``."""
    evals = ctx.config.evals
    if evals.every <= 0:
        return []
    suites = resolve_suites(evals.suites)
    eval_ctx = context_from_config(evals)

    def run(state: Any, step: int) -> tuple[Any, dict[str, float]]:
        results = evaluate_params(state.params, ctx.config, suites, eval_ctx, step=step, tokenizer=ctx.tokenizer)
        return state, {f"{name}/{k}": float(v) for name, r in results.items() for k, v in r.metrics.items()
                       if isinstance(v, int | float)}

    return [Hook("suite", run, every=evals.every)]


SERVICES = Services(init_from=init_state_from, load_frozen=load_frozen, make_sampler=GeneratorSampler,
                    hooks=suite_hooks)


def train(config: ml_collections.ConfigDict, *, stop_at: int | None = None, show_progress: bool = True) -> dict:
    """Trains ``config`` (any registered ``train.stage``) in its run directory, resuming from its latest checkpoint;
    returns the loop's summary. ``stop_at`` pauses after that step with a checkpoint, as a preemption would."""
    return train_loop(build_context(config, SERVICES), stop_at=stop_at, show_progress=show_progress)
