"""One training run's context, built once: config, stage, run directory, tokenizer, model, mesh and rules,
optimizer, state shardings, checkpoint manager and metrics logger.

Training needs a few things from layers above ``train/`` (which it must not import): another run's parameters
(``train.init_from``, a frozen reference policy or preference model), a decoder for PPO rollouts, and hooks such
as the evaluation suites. They arrive as ``Services``, filled in by ``flaxgpt.launch``; without one, a config
that needs it fails with an error naming the key.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Protocol

import jax
import ml_collections
from jax.sharding import Mesh, NamedSharding

from flaxgpt.config import ConfigError, run_dir, to_json
from flaxgpt.data.tokenizer import Tokenizer, check_compatible, load_tokenizer
from flaxgpt.model.gpt import GPT, ModelConfig
from flaxgpt.train import checkpoint as ckpt
from flaxgpt.train.logger import MetricsLogger
from flaxgpt.train.optim import lr_schedule, make_optimizer
from flaxgpt.train.sharding import Compiled, batch_sharding, compile_fn, compile_step, logical_rules, make_mesh
from flaxgpt.train.stages import get_stage
from flaxgpt.train.stages.base import Hook, Stage
from flaxgpt.train.state import TrainState, abstract_train_state, create_train_state


@dataclasses.dataclass(frozen=True)
class Frozen:
    """A model from another run, held fixed: a reference policy or a preference model."""

    model: GPT
    params: Any  # placed on the run's mesh
    tokenizer_meta: dict
    where: str  # for messages: the checkpoint it came from


@dataclasses.dataclass(frozen=True)
class Sample:
    """One sampled response: its tokens (without the stop token), whether a stop token ended it, its text."""

    tokens: list[int]
    ended: bool
    text: str


class Sampler(Protocol):
    """A decoder over a policy's parameters (PPO rollouts)."""

    def set_params(self, params: Any) -> None: ...

    def sample(self, prompts: Sequence[Sequence[int]], *, max_new_tokens: int, temperature: float,
               stop_ids: Sequence[int], seeds: Sequence[int]) -> list[Sample]: ...


@dataclasses.dataclass(frozen=True)
class Services:
    """What training takes from the layers above it (module docstring); None where not given.

    Fields:
      init_from: (config, fresh state, state shardings) -> the state with ``train.init_from``'s parameters.
      load_frozen: (run directory, mesh) -> Frozen (its params placed on ``mesh`` by its own rules).
      make_sampler: (model config, params, tokenizer, mesh, rules, cache length) -> a Sampler.
      hooks: (run context) -> extra Hooks for the loop (e.g. evaluation suites every ``evals.every`` steps).
    """

    init_from: Callable[[ml_collections.ConfigDict, TrainState, Any], TrainState] | None = None
    load_frozen: Callable[[str, Mesh], Frozen] | None = None
    make_sampler: Callable[[ModelConfig, Any, Tokenizer, Mesh, Any, int], Sampler] | None = None
    hooks: Callable[[RunContext], list[Hook]] | None = None


def _missing(service: str, key: str) -> ConfigError:
    return ConfigError(f"config key '{key}' needs {service}, which this trainer was built without: train through "
                       "`flaxgpt train` or flaxgpt.launch.train")


@dataclasses.dataclass
class RunContext:
    """Everything a run builds once (module docstring). Build it with ``build_context``."""

    config: ml_collections.ConfigDict
    stage: Stage
    services: Services
    run_dir: Path
    tokenizer: Tokenizer
    model_cfg: ModelConfig
    model: GPT
    mesh: Mesh
    rules: tuple
    tx: Any
    schedule: Any
    abstract_state: Any  # shapes, dtypes and shardings of the TrainState (for restoring)
    shardings: Any  # the TrainState's shardings
    manager: Any  # orbax CheckpointManager over run_dir/checkpoints
    main_process: bool
    logger: MetricsLogger | None = None  # opened by start_logging once the resume step is known
    _initial: tuple[TrainState, Any] | None = None

    @property
    def data_parallel(self) -> int:
        """Devices a batch is split over (mesh.data x mesh.fsdp)."""
        return self.mesh.shape["data"] * self.mesh.shape["fsdp"]

    def host_batch(self) -> int:
        """This host's rows per step, after checking train.batch_size splits over hosts, micro-batches, devices."""
        t = self.config.train
        hosts = jax.process_count()
        micro = t.batch_size // t.grad_accum
        if t.batch_size % hosts:
            raise ValueError(f"train.batch_size={t.batch_size} must divide over {hosts} hosts")
        if micro % self.data_parallel:
            raise ValueError(f"micro-batch train.batch_size/train.grad_accum={micro} must be divisible by the "
                             f"data-parallel devices mesh.data*mesh.fsdp={self.data_parallel}")
        return t.batch_size // hosts

    def batch_sharding(self, ndim: int, leading: int = 0) -> NamedSharding:
        """Arrays of ``ndim`` axes split over the data-parallel devices along axis ``leading``."""
        return batch_sharding(self.mesh, ndim, leading=leading)

    def compile(self, fn: Callable, **kwargs: Any) -> Compiled:
        """``fn`` compiled for this run's mesh and rules (``flaxgpt.train.sharding.compile_fn``)."""
        return compile_fn(fn, self.mesh, self.rules, **kwargs)

    def compile_step(self, step_fn: Callable, batch_shardings: Any) -> Compiled:
        """A step compiled with this run's state shardings, the state donated."""
        return compile_step(step_fn, self.shardings, batch_shardings, self.mesh, self.rules)

    def initial_state(self) -> tuple[TrainState, Any]:
        """The run's first state and its shardings (random init, then ``train.init_from``'s parameters); built
        once, so a data builder that needs the first parameters (DPO's reference) and the loop share it."""
        if self._initial is None:
            t = self.config.train
            state, shardings = create_train_state(self.model, self.tx, t.seed, self.mesh, self.rules,
                                                  self.config.data.seq_len)
            if t.init_from:
                if self.services.init_from is None:
                    raise _missing("a run-directory reader", "train.init_from")
                state = self.services.init_from(self.config, state, shardings)
            self._initial = (state, shardings)
        return self._initial

    def load_frozen(self, spec: str, key: str, what: str) -> Frozen:
        """The model of run directory ``spec`` (config key ``key``, a ``what``), checked to share the tokenizer."""
        if not spec:
            raise ValueError(f"config key '{key}': {self.stage.name} needs the {what} (a run directory)")
        if not Path(spec).expanduser().is_dir():
            raise FileNotFoundError(f"config key '{key}': {spec} is not a run directory")
        if self.services.load_frozen is None:
            raise _missing("a run-directory reader", key)
        frozen = self.services.load_frozen(str(Path(spec).expanduser()), self.mesh)
        check_compatible(frozen.tokenizer_meta, self.tokenizer.metadata(), f"{key} {spec} vs data.tokenizer")
        return frozen

    def make_sampler(self, params: Any, key: str) -> Sampler:
        """A decoder over ``params`` on this run's mesh, its cache ``data.seq_len`` long (``key``: the config key
        that asked for it)."""
        if self.services.make_sampler is None:
            raise _missing("a decoder", key)
        return self.services.make_sampler(self.model_cfg, params, self.tokenizer, self.mesh, self.rules,
                                          self.config.data.seq_len)

    def start_logging(self, resume_step: int) -> None:
        """Writes config.json and (process 0) opens metrics.jsonl, dropping records past ``resume_step``."""
        if self.main_process:
            (self.run_dir / "config.json").write_text(to_json(self.config) + "\n")
            self.logger = MetricsLogger(self.run_dir, resume_step=resume_step)

    def log(self, step: int, kind: str, record: dict[str, float]) -> None:
        """Writes a metrics record (process 0 only)."""
        if self.logger is not None:
            self.logger.write(step, kind, record)

    def save(self, step: int, state: TrainState, data_checkpoint: Any) -> None:
        """Starts saving checkpoint ``step``: state, data iterator, resolved config, tokenizer metadata."""
        ckpt.save(self.manager, step, state, data_checkpoint, self.config.to_dict(), self.tokenizer.metadata(),
                  force=True)

    def restore(self, data_checkpoint: Any) -> tuple[int, TrainState] | None:
        """(step, state) of the latest checkpoint that restores (moving ``data_checkpoint`` to its position), or
        None when there is none or ``run.resume`` is off."""
        if not (self.config.run.resume and self.manager.all_steps()):
            return None
        return ckpt.restore_latest(self.manager, self.abstract_state, data_checkpoint)

    def close(self) -> None:
        """Waits for pending checkpoint writes, then closes the manager and the logger."""
        self.manager.wait_until_finished()
        self.manager.close()
        if self.logger is not None:
            self.logger.close()


def build_context(config: ml_collections.ConfigDict, services: Services = Services()) -> RunContext:
    """Checks ``config`` against its stage and tokenizer and builds the run's context (creates the run directory).

    Raises ConfigError/ValueError naming the key for a stage that is not registered, a config the stage cannot
    run, or a model vocabulary smaller than the tokenizer's.
    """
    stage = get_stage(config.train.stage)
    stage.check(config)
    rdir = run_dir(config)
    rdir.mkdir(parents=True, exist_ok=True)
    tokenizer = load_tokenizer(config.data.tokenizer)
    if config.model.vocab_size < tokenizer.vocab_size:
        raise ValueError(f"model.vocab_size={config.model.vocab_size} is smaller than tokenizer "
                         f"{tokenizer.name!r} ({tokenizer.vocab_size} ids); "
                         f"set model.vocab_size={tokenizer.vocab_size}")
    if config.evals.every > 0 and services.hooks is None:
        raise _missing("the evaluation suites", "evals.every")
    model_cfg = ModelConfig.from_config(config.model)
    model = GPT(model_cfg)
    mesh = make_mesh(config.mesh)
    rules = logical_rules(config.mesh.rules)
    updates = stage.updates_per_step(config)
    tx = make_optimizer(config.train, stage.trainable, updates_per_step=updates)
    abstract, shardings = abstract_train_state(model, tx, mesh, rules, config.data.seq_len)
    manager = ckpt.make_manager(rdir, keep=config.checkpoint.keep, async_save=config.checkpoint.async_save)
    return RunContext(config, stage, services, rdir, tokenizer, model_cfg, model, mesh, rules, tx,
                      lr_schedule(config.train, updates_per_step=updates), abstract, shardings, manager,
                      jax.process_index() == 0)
