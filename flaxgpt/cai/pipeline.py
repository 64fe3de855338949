"""``flaxgpt run PIPELINE``: the Constitutional AI stages in order, each skipped when its output exists.

A pipeline config is an ``experiments/cai_*.py`` whose ``get_config()`` has a ``stages`` tuple
(see experiments/cai_micro.py). The stages, each in its own folder under ``dir``:

    sft       chat SFT of the pretrained model (``base``)            -> dir/sft (or sft.run_dir)
    revise    SL-CAI: responses, critiques, revisions                 -> dir/revise
    sft_cai   SFT of the pretrained model on chat + revisions         -> dir/sft_cai
    label     RL-CAI: AI preference labels on SL-CAI response pairs  -> dir/label
    pm        preference model on the labels (+ revision pairs)       -> dir/pm
    ppo|dpo   RL against the PM, or DPO on the labels                 -> dir/ppo | dir/dpo
    evaluate  before/after on held-out red-team prompts               -> dir/evaluate

Every stage runs as the ``flaxgpt`` command a user would type (printed before it runs), so any
stage can be rerun or changed by hand. A training stage counts as done when its run has a
checkpoint at ``train.steps``; revise, label and evaluate when their report exists. Killed
pipelines resume: training stages resume from their checkpoints, revise and label skip the prompts
they already finished.
"""

from __future__ import annotations

import json
import shlex
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import ml_collections

from flaxgpt.config import ConfigError, apply_overrides, load_config

STAGES = ("sft", "revise", "sft_cai", "label", "pm", "ppo", "dpo", "evaluate")


def is_pipeline(config: ml_collections.ConfigDict) -> bool:
    """Whether a config file's ``get_config()`` is a pipeline (it lists ``stages``)."""
    return "stages" in config


def _resolve_rl(config: ml_collections.ConfigDict) -> None:
    """Replaces the placeholder stage "rl" by ``config.rl`` (ppo or dpo)."""
    if "rl" in config.stages:
        rl = config.get("rl", "ppo")
        if rl not in ("ppo", "dpo"):
            raise ConfigError(f"config key 'rl': {rl!r} is not ppo or dpo")
        config.stages = tuple(rl if s == "rl" else s for s in config.stages)


def _check(config: ml_collections.ConfigDict) -> None:
    _resolve_rl(config)
    for stage in config.stages:
        if stage not in STAGES:
            raise ConfigError(f"config key 'stages': unknown stage {stage!r}; stages are {STAGES}")
        if stage not in config and stage not in ("sft_cai",):
            raise ConfigError(f"config key '{stage}': the pipeline lists stage {stage!r} but has no section for it")
    if "ppo" in config.stages and "dpo" in config.stages:
        raise ConfigError("config key 'stages': choose ppo or dpo as the RL stage, not both")


class Pipeline:
    """The stage folders of one pipeline config and how to run each stage."""

    def __init__(self, config: ml_collections.ConfigDict, runner: Callable[[list[str]], int]):
        _check(config)
        self.c = config
        self.dir = Path(config.dir)
        self.runner = runner

    # ---- where each stage's output is
    def path(self, stage: str) -> Path:
        if stage == "sft" and self.c.sft.run_dir:
            return Path(self.c.sft.run_dir)
        return self.dir / stage

    @property
    def rl_stage(self) -> str | None:
        return next((s for s in ("ppo", "dpo") if s in self.c.stages), None)

    def final_policy(self) -> Path:
        """The last policy the pipeline trains (RL, else SL-CAI, else SFT)."""
        for stage in ("ppo", "dpo", "sft_cai", "sft"):
            if stage in self.c.stages or stage == "sft":
                return self.path(stage)
        raise AssertionError

    # ---- done checks
    def _train_done(self, stage: str, config_file: str, overrides: Sequence[str]) -> bool:
        from flaxgpt.runs.rundir import checkpoint_steps

        steps = load_config(config_file, list(overrides)).train.steps
        done = checkpoint_steps(self.path(stage))
        return bool(done) and done[-1] >= steps

    def done(self, stage: str) -> bool:
        if stage in ("revise", "label", "evaluate"):
            return (self.path(stage) / "report.json").exists()
        config_file, overrides = self.train_args(stage)
        return self._train_done(stage, config_file, overrides)

    # ---- the commands
    def train_args(self, stage: str) -> tuple[str, list[str]]:
        """(experiment file, overrides) of a training stage."""
        c = self.c
        section = c.sft if stage == "sft_cai" else c[stage]
        overrides = [f"run.dir={self.path(stage)}", *section.overrides]
        if stage == "sft_cai":  # its own length (sft_cai_steps), not the chat SFT's
            overrides = [o for o in overrides if not o.startswith("train.steps=")]
        if stage == "sft":
            overrides.append(f"train.init_from={c.base}")
        elif stage == "sft_cai":
            overrides += [f"train.init_from={c.base}", f"data.sources.revisions.path={self.dir / 'data/revisions'}",
                          f"data.sources.revisions.weight={c.sft_cai_revision_weight}",
                          f"train.steps={c.sft_cai_steps}"]
        elif stage == "pm":
            labels = [str(self.path("label") / "labels.jsonl")]
            if c.pm.with_revision_pairs:
                labels.append(str(self.path("revise") / "pairs.jsonl"))
            overrides += [f"train.init_from={self._sl_policy()}", f"prefs.data={','.join(labels)}"]
        elif stage == "dpo":
            overrides += [f"train.init_from={self._sl_policy()}",
                          f"prefs.data={self.path('label') / 'labels.jsonl'}"]
        elif stage == "ppo":
            overrides += [f"train.init_from={self._sl_policy()}", f"ppo.reward_from={self.path('pm')}",
                          f"ppo.prompts={','.join(c.ppo.prompts)}"]
        return section.config, overrides

    def _sl_policy(self) -> Path:
        return self.path("sft_cai" if "sft_cai" in self.c.stages else "sft")

    def _feedback(self, section: ml_collections.ConfigDict) -> str:
        return section.feedback or str(self.path("sft"))

    def command(self, stage: str) -> list[list[str]]:
        """The ``flaxgpt`` argument lists a stage runs, in order."""
        c = self.c
        if stage in ("sft", "sft_cai", "pm", "ppo", "dpo"):
            config_file, overrides = self.train_args(stage)
            return [["train", config_file, *overrides]]
        if stage == "revise":
            r = c.revise
            args = ["cai", "revise", "--policy", str(self.path("sft")), "--feedback", self._feedback(r),
                    "--constitution", r.constitution, "--rounds", str(r.rounds), "--max-tokens", str(r.max_tokens),
                    "--seed", str(r.seed), "--out", str(self.path("revise"))]
            args += [x for p in r.prompts for x in ("--prompts", p)]
            args += ["--facts", r.facts] if r.facts else []
            args += ["--owner-config", r.owner_config] if r.owner_config else []
            args += ["--limit", str(r.limit)] if r.limit else []
            tokenize = ["tokenize-chat", str(self.path("revise") / "sft.jsonl"), "--format", "openai", "--out",
                        str(self.dir / "data" / "revisions"), "--tokenizer", "flaxgpt"]
            return [args, tokenize]
        if stage == "label":
            lab = c.label
            args = ["cai", "label", "--policy", str(self._sl_policy()), "--feedback", self._feedback(lab),
                    "--constitution", lab.constitution, "--max-tokens", str(lab.max_tokens), "--seed",
                    str(lab.seed), "--out", str(self.path("label"))]
            args += [x for p in lab.prompts for x in ("--prompts", p)]
            args += ["--facts", lab.facts] if lab.facts else []
            args += ["--owner-config", lab.owner_config] if lab.owner_config else []
            args += ["--limit", str(lab.limit)] if lab.limit else []
            args += ["--cot"] if lab.cot else []
            return [args]
        raise ValueError(f"stage {stage!r} is not a command")

    def run(self, only: Sequence[str] = ()) -> int:
        """Runs every stage not done yet (or just ``only``); returns 0 or the failing command's status."""
        from flaxgpt.cai.compare import evaluate_stage

        self.dir.mkdir(parents=True, exist_ok=True)
        ran = False
        for stage in self.c.stages:
            if only and stage not in only:
                continue
            # The comparison is redone whenever a stage before it ran (or it is asked for by name).
            fresh_eval = stage == "evaluate" and (ran or stage in only)
            if self.done(stage) and not fresh_eval:
                print(f"== {stage}: done already ({self.path(stage)}), skipped")
                continue
            t0 = time.perf_counter()
            print(f"== {stage}")
            if stage == "evaluate":
                evaluate_stage(self)
            else:
                for args in self.command(stage):
                    print("$ flaxgpt " + shlex.join(args), flush=True)
                    status = self.runner(args)
                    if status:
                        print(f"pipeline stopped: stage {stage} failed (exit status {status})")
                        return status
            ran = True
            print(f"== {stage}: {produced(self, stage)} ({time.perf_counter() - t0:.0f} s)")
        return 0


def produced(p: Pipeline, stage: str) -> str:
    """One line saying what a finished stage left behind."""
    out = p.path(stage)
    if stage in ("revise", "label", "evaluate"):
        report = json.loads((out / "report.json").read_text()) if (out / "report.json").exists() else {}
        keys = {"revise": ("prompts", "rounds_run", "revisions_kept", "early_stops", "pairs", "sft_examples"),
                "label": ("pairs", "mean_abs_margin", "same_position_wins", "same_position_wins_by_position"),
                "evaluate": ("runs_compared", "prompts")}[stage]
        facts = ", ".join(f"{k} {report[k]}" for k in keys if k in report)
        return f"{facts} -> {out}"
    from flaxgpt.train.logger import read_metrics

    rows = read_metrics(out)
    last = {}
    for r in rows:
        last.update({k: v for k, v in r.items() if isinstance(v, int | float)})
    keys = {"pm": ("val_accuracy", "val_loss"), "dpo": ("val_accuracy", "val_margin"),
            "ppo": ("reward", "kl")}.get(stage, ("val_loss", "loss"))
    facts = ", ".join(f"{k} {last[k]:.4g}" for k in keys if k in last)
    return f"run {out} (step {last.get('step', '?')}{', ' + facts if facts else ''})"


def run_pipeline(path: str, overrides: Sequence[str] = (), only: Sequence[str] = ()) -> int:
    """Loads a pipeline config file with overrides and runs it (``flaxgpt run``)."""
    from flaxgpt.cli.main import main
    from flaxgpt.config import read_config_file

    config = read_config_file(path)
    apply_overrides(config, list(overrides))
    return Pipeline(config, main).run(only)
