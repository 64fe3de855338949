"""``flaxgpt run PIPELINE``: the Constitutional AI stages in order, each skipped when its output exists.

A pipeline config is an ``experiments/cai_*.py`` whose ``get_config()`` has a ``stages`` tuple
(see experiments/cai_micro.py). The stages, each in its own folder under ``dir``:

    sft       chat SFT of the pretrained model (``base``)            -> dir/sft (or sft.run_dir)
    revise    SL-CAI: responses, critiques, revisions                 -> dir/revise
    sft_cai   SFT of the pretrained model on chat + revisions         -> dir/sft_cai
    label     RL-CAI: AI preference labels on SL-CAI response pairs  -> dir/label
    pm        preference model on the labels (+ revision pairs)       -> dir/pm
    ppo|dpo   RL against the PM, or DPO on the labels                 -> dir/ppo | dir/dpo
    evaluate  `flaxgpt eval` of every policy on held-out red-team prompts, judged by the PM -> dir/evaluate

Every stage runs as the ``flaxgpt`` command a user would type (printed before it runs), through the
``runner`` the pipeline is given (the ``flaxgpt`` entry point), so any stage can be rerun or changed by
hand. A training stage counts as done when its run has a checkpoint at ``train.steps``; revise, label and
evaluate when their report exists. Killed pipelines resume: training stages resume from their
checkpoints, revise and label skip the prompts they already finished.
"""

from __future__ import annotations

import dataclasses
import json
import shlex
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import ml_collections

from flaxgpt.config import ConfigError, load_config
from flaxgpt.runs.rundir import checkpoint_steps
from flaxgpt.train.logger import read_metrics

RL_STAGES = ("ppo", "dpo")  # what the placeholder stage "rl" may become (config key ``rl``)
POLICIES = ("sft", "sft_cai", "ppo", "dpo")  # stages whose output is a policy, in training order


@dataclasses.dataclass(frozen=True)
class PipelineStage:
    """One stage of the pipeline: its config section, the ``flaxgpt`` commands it runs, and what it reports.

    ``report`` lists report.json keys printed once it is done; a stage without them is a training run, done
    at its last step, and prints ``metrics`` from its metrics.jsonl. ``reuse``: the section's ``run_dir`` may name
    an existing run to use instead of training one; ``rerun``: redone whenever a stage before it ran; ``judge``:
    its run judges the evaluation (a preference model).
    """

    name: str
    section: str
    commands: Callable[[Pipeline], list[list[str]]]
    report: tuple[str, ...] = ()
    metrics: tuple[str, ...] = ("val_loss", "loss")
    reuse: bool = False
    rerun: bool = False
    judge: bool = False
    gate: Callable[[Pipeline], str | None] | None = None  # a reason to stop after this stage, or None


def _train(stage: str, extra: Callable[[Pipeline], list[str]]) -> Callable[[Pipeline], list[list[str]]]:
    """The commands of a training stage: ``flaxgpt train`` with the stage's overrides plus ``extra(pipeline)``."""
    return lambda p: [["train", *p.train_args(stage, extra(p))]]


def _revise(p: Pipeline) -> list[list[str]]:
    r = p.c.revise
    args = ["cai", "revise", "--policy", str(p.path("sft")), "--feedback", p.feedback(r), "--constitution",
            r.constitution, "--rounds", str(r.rounds), "--max-tokens", str(r.max_tokens), "--seed", str(r.seed),
            "--fit", r.get("fit", "error"), "--out", str(p.path("revise")), *p.prompt_args(r)]
    tokenize = ["tokenize-chat", str(p.path("revise") / "sft.jsonl"), "--format", "openai", "--out",
                str(p.dir / "data" / "revisions"), "--tokenizer", "flaxgpt"]
    return [args, tokenize]


def _label(p: Pipeline) -> list[list[str]]:
    lab = p.c.label
    args = ["cai", "label", "--policy", str(p.sl_policy()), "--feedback", p.feedback(lab), "--constitution",
            lab.constitution, "--max-tokens", str(lab.max_tokens), "--seed", str(lab.seed), "--fit",
            lab.get("fit", "error"), "--out", str(p.path("label")), *p.prompt_args(lab)]
    return [args + (["--cot"] if lab.cot else [])]


# A preference model trained on labels a feedback model gave by position, or all near 0.5, learns noise.
MAX_SAME_POSITION = 0.9  # share of pairs where the same position won both orders
MIN_MEAN_MARGIN = 0.02  # mean |label - 0.5|


def _label_gate(p: Pipeline) -> str | None:
    """Why the labels are too weak to train a preference model on (None: they pass, or the gate is off)."""
    lab = p.c.label
    report_file = p.path("label") / "report.json"
    if not lab.get("gate", True) or not report_file.exists():
        return None
    report = json.loads(report_file.read_text())
    same, margin = report.get("same_position_wins", 0.0), report.get("mean_abs_margin", 1.0)
    if same < MAX_SAME_POSITION and margin >= MIN_MEAN_MARGIN:
        return None
    return (f"the labels carry no preference: the same position won both orders in {same:.0%} of pairs (gate: "
            f"< {MAX_SAME_POSITION:.0%}) and the mean |label - 0.5| is {margin:.3f} (gate: >= {MIN_MEAN_MARGIN}). "
            "The feedback model answers by position, not content (a small model, or prompts cut to its context: "
            "see cut_prompts in the label report). Use a stronger feedback model (label.feedback), or set "
            "label.gate=False to train on them anyway.")


def _evaluate(p: Pipeline) -> list[list[str]]:
    e = p.c.evaluate
    policies = p.policies()
    judges = [f"pm:{p.path(s)}" for s in p.c.stages if STAGES[s].judge]
    judge = judges[0] if judges else "rules"
    args = ["eval", *(str(p.path(s)) for s in policies), "--names", ",".join(policies), "--suite", e.suites,
            "--judge", judge, "--max-tokens", str(e.max_tokens), "--seed", str(e.seed), "--out",
            str(p.path("evaluate"))]
    args += [x for f in e.prompts for x in ("--red-team", f)]
    args += ["--owner-config", e.owner_config] if e.owner_config else []
    return [args + (["--limit", str(e.limit)] if e.limit else [])]


STAGES: dict[str, PipelineStage] = {s.name: s for s in (
    PipelineStage("sft", "sft", _train("sft", lambda p: [f"train.init_from={p.c.base}"]), reuse=True),
    PipelineStage("revise", "revise", _revise,
                  report=("prompts", "rounds_run", "revisions_kept", "early_stops", "pairs", "sft_examples")),
    PipelineStage("sft_cai", "sft", _train("sft_cai", lambda p: [
        f"train.init_from={p.c.base}", f"+data.sources.revisions.path={p.dir / 'data/revisions'}",
        f"data.sources.revisions.weight={p.c.sft_cai_revision_weight}", f"train.steps={p.c.sft_cai_steps}"])),
    PipelineStage("label", "label", _label,
                  report=("pairs", "mean_abs_margin", "same_position_wins", "same_position_wins_by_position"),
                  gate=_label_gate),
    PipelineStage("pm", "pm", _train("pm", lambda p: [f"train.init_from={p.sl_policy()}",
                                                      f"prefs.data={','.join(p.pm_data())}"]),
                  metrics=("val_accuracy", "val_loss"), judge=True),
    PipelineStage("ppo", "ppo", _train("ppo", lambda p: [
        f"train.init_from={p.sl_policy()}", f"ppo.reward_from={p.path('pm')}",
        f"ppo.prompts={','.join(p.c.ppo.prompts)}"]), metrics=("reward", "kl")),
    PipelineStage("dpo", "dpo", _train("dpo", lambda p: [f"train.init_from={p.sl_policy()}",
                                                         f"prefs.data={p.path('label') / 'labels.jsonl'}"]),
                  metrics=("val_accuracy", "val_reward_margin")),
    PipelineStage("evaluate", "evaluate", _evaluate, report=("runs",), rerun=True),
)}


def is_pipeline(config: ml_collections.ConfigDict) -> bool:
    """Whether a config file's ``get_config()`` is a pipeline (it lists ``stages``)."""
    return "stages" in config


def _check(config: ml_collections.ConfigDict) -> None:
    """Resolves the placeholder stage "rl" to ``config.rl`` and checks the stages; ConfigError naming the key."""
    if "rl" in config.stages:
        rl = config.get("rl", RL_STAGES[0])
        if rl not in RL_STAGES:
            raise ConfigError(f"config key 'rl': {rl!r} is not {' or '.join(RL_STAGES)}")
        config.stages = tuple(rl if s == "rl" else s for s in config.stages)
    for name in config.stages:
        if name not in STAGES:
            raise ConfigError(f"config key 'stages': unknown stage {name!r}; stages are {tuple(STAGES)}")
        if STAGES[name].section not in config:
            raise ConfigError(f"config key '{name}': the pipeline lists stage {name!r} but has no section for it")
    if all(s in config.stages for s in RL_STAGES):
        raise ConfigError(f"config key 'stages': choose {' or '.join(RL_STAGES)} as the RL stage, not both")


class Pipeline:
    """The stage folders of one pipeline config and how to run each stage (module docstring)."""

    def __init__(self, config: ml_collections.ConfigDict, runner: Callable[[list[str]], int]):
        _check(config)
        self.c = config
        self.dir = Path(config.dir)
        self.runner = runner

    def path(self, stage: str) -> Path:
        """Where ``stage`` writes (the chat SFT may reuse an existing run: ``sft.run_dir``)."""
        spec = STAGES[stage]
        if spec.reuse and self.c[spec.section].run_dir:
            return Path(self.c[spec.section].run_dir)
        return self.dir / stage

    def sl_policy(self) -> Path:
        """The supervised policy the RL stages start from: SL-CAI when the pipeline trains it, else the chat SFT."""
        return self.path("sft_cai" if "sft_cai" in self.c.stages else "sft")

    def final_policy(self) -> Path:
        """The last policy the pipeline trains (RL, else SL-CAI, else SFT)."""
        return self.path(self.policies()[-1])

    def policies(self) -> list[str]:
        """The policy stages, in training order: the chat SFT (trained here or reused), then those listed."""
        return [POLICIES[0], *(s for s in POLICIES[1:] if s in self.c.stages)]

    def pm_data(self) -> list[str]:
        """The preference model's comparisons: the AI labels, and the revision pairs when asked."""
        files = [str(self.path("label") / "labels.jsonl")]
        return files + ([str(self.path("revise") / "pairs.jsonl")] if self.c.pm.with_revision_pairs else [])

    def feedback(self, section: ml_collections.ConfigDict) -> str:
        """The feedback backend of a revise/label section (default: the chat SFT model)."""
        return section.feedback or str(self.path("sft"))

    def prompt_args(self, section: ml_collections.ConfigDict) -> list[str]:
        """The prompt-set options of a revise/label section."""
        args = [x for f in section.prompts for x in ("--prompts", f)]
        args += ["--facts", section.facts] if section.facts else []
        args += ["--owner-config", section.owner_config] if section.owner_config else []
        return args + (["--limit", str(section.limit)] if section.limit else [])

    def train_args(self, stage: str, extra: Sequence[str] = ()) -> list[str]:
        """(experiment file, overrides...) of a training stage; ``extra`` overrides come last and win."""
        section = self.c[STAGES[stage].section]
        keys = {o.split("=", 1)[0] for o in extra}
        overrides = [o for o in section.overrides if o.split("=", 1)[0] not in keys]
        return [section.config, f"run.dir={self.path(stage)}", *overrides, *extra]

    def command(self, stage: str) -> list[list[str]]:
        """The ``flaxgpt`` argument lists a stage runs, in order."""
        return STAGES[stage].commands(self)

    def done(self, stage: str) -> bool:
        """Whether ``stage``'s output is complete (its report exists, or its run reached train.steps)."""
        if STAGES[stage].report:
            return (self.path(stage) / "report.json").exists()
        config_file, *overrides = self.command(stage)[0][1:]
        steps = load_config(config_file, overrides).train.steps
        done = checkpoint_steps(self.path(stage))
        return bool(done) and done[-1] >= steps

    def run(self, only: Sequence[str] = ()) -> int:
        """Runs every stage not done yet (or just ``only``); returns 0 or the failing command's status.

        The last stage (the evaluation) is redone whenever a stage before it ran, or it is asked for by name.
        """
        self.dir.mkdir(parents=True, exist_ok=True)
        ran = False
        for stage in self.c.stages:
            if only and stage not in only:
                continue
            redo = STAGES[stage].rerun and (ran or stage in only)
            if self.done(stage) and not redo:
                print(f"== {stage}: done already ({self.path(stage)}), skipped")
                if (why := self._gate(stage)) is not None:
                    return why
                continue
            t0 = time.perf_counter()
            print(f"== {stage}")
            for args in self.command(stage):
                print("$ flaxgpt " + shlex.join(args), flush=True)
                status = self.runner(args)
                if status:
                    print(f"pipeline stopped: stage {stage} failed (exit status {status})")
                    return status
            ran = True
            print(f"== {stage}: {self.produced(stage)} ({time.perf_counter() - t0:.0f} s)")
            if (why := self._gate(stage)) is not None:
                return why
        return 0

    def _gate(self, stage: str) -> int | None:
        """1 (printing why) when ``stage``'s gate stops the pipeline, else None."""
        gate = STAGES[stage].gate
        reason = gate(self) if gate is not None else None
        if reason is None:
            return None
        print(f"pipeline stopped after {stage}: {reason}")
        return 1

    def produced(self, stage: str) -> str:
        """One line saying what a finished stage left behind."""
        out, spec = self.path(stage), STAGES[stage]
        if spec.report:
            report = json.loads((out / "report.json").read_text()) if (out / "report.json").exists() else {}
            facts = ", ".join(f"{k} {_short(report[k])}" for k in spec.report if k in report)
            return f"{facts} -> {out}"
        last: dict = {}
        for r in read_metrics(out):
            last.update({k: v for k, v in r.items() if isinstance(v, int | float)})
        facts = ", ".join(f"{k} {last[k]:.4g}" for k in spec.metrics if k in last)
        return f"run {out} (step {last.get('step', '?')}{', ' + facts if facts else ''})"


def _short(value: object) -> str:
    """A report value for one line: a dict as its keys."""
    return ",".join(value) if isinstance(value, dict) else str(value)
