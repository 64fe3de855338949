"""One training run's context, built once: config, stage, run directory, tokenizer, model, mesh and rules,
optimizer, state shardings, checkpoint manager and metrics logger.

Training needs a few things from layers above ``train/`` (which it must not import): another run's parameters
(``train.init_from``, a frozen reference policy or preference model), a decoder for PPO rollouts, and hooks such
as the evaluation suites. They arrive as ``Services``, filled in by ``flaxgpt.launch``; without one, a config
that needs it fails with an error naming the key.
"""

from __future__ import annotations

import dataclasses
import math
import shutil
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Protocol

import jax
import ml_collections
from jax.experimental import multihost_utils
from jax.sharding import Mesh, NamedSharding

from flaxgpt.config import ConfigError, run_dir, to_json
from flaxgpt.data.tokenizer import Tokenizer, check_compatible, load_tokenizer
from flaxgpt.model.gpt import GPT, ModelConfig
from flaxgpt.train import checkpoint as ckpt
from flaxgpt.train.lock import RunLock
from flaxgpt.train.logger import METRICS_FILE, PLOT_FILE, MetricsLogger
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
    lock: RunLock | None = None  # this job's hold on run_dir, released by close()
    logger: MetricsLogger | None = None  # opened by start_logging once the resume step is known
    resumed_from: Path | None = None  # the checkpoint this run restored
    _initial: tuple[TrainState, Any] | None = None

    @property
    def data_parallel(self) -> int:
        """Devices a batch is split over (mesh.data x mesh.fsdp)."""
        return self.mesh.shape["data"] * self.mesh.shape["fsdp"]

    def global_batch(self) -> int:
        """Rows per step (``train.batch_size``), after checking they split into micro-batches over the devices.

        Every process builds the same global batch and places the rows of its own devices (``put_batch``), so
        a run computes the same on any number of processes and its data position is one for all of them.
        """
        t = self.config.train
        micro = t.batch_size // t.grad_accum
        if micro % self.data_parallel:
            raise ValueError(f"micro-batch train.batch_size/train.grad_accum={micro} must be divisible by the "
                             f"data-parallel devices mesh.data*mesh.fsdp={self.data_parallel}")
        return t.batch_size

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
                  force=True, wait=not self.config.checkpoint.async_save)

    def restore(self, data_checkpoint: Any) -> tuple[int, TrainState] | None:
        """(step, state) of the latest checkpoint that restores (moving ``data_checkpoint`` to its position), or
        None when there is none. Raises CheckpointMismatch / CheckpointsDamaged (``flaxgpt.train.checkpoint``)."""
        restored = ckpt.restore_latest(self.manager, self.abstract_state, data_checkpoint, self.config.to_dict())
        if restored is None:
            return None
        self.resumed_from = restored.path
        return restored.step, restored.state

    def close(self) -> None:
        """Waits for pending checkpoint writes, then closes the manager and the logger and releases the lock."""
        try:
            self.manager.wait_until_finished()
            self.manager.close()
            if self.logger is not None:
                self.logger.close()
        finally:
            if self.lock is not None:
                self.lock.release()


def build_context(config: ml_collections.ConfigDict, services: Services = Services()) -> RunContext:
    """Checks ``config`` against its stage and tokenizer and builds the run's context (creates the run directory).

    Raises ConfigError/ValueError naming the key for a stage that is not registered, a config the stage cannot
    run, or a model vocabulary smaller than the tokenizer's.
    """
    stage = get_stage(config.train.stage)
    stage.check(config)
    rdir = run_dir(config)
    tokenizer = load_tokenizer(config.data.tokenizer)
    if config.model.vocab_size < tokenizer.vocab_size:
        raise ValueError(f"model.vocab_size={config.model.vocab_size} is smaller than tokenizer "
                         f"{tokenizer.name!r} ({tokenizer.vocab_size} ids); "
                         f"set model.vocab_size={tokenizer.vocab_size}")
    if config.evals.every > 0 and services.hooks is None:
        raise _missing("the evaluation suites", "evals.every")
    p = build_training(config, stage, make_mesh(config.mesh))
    rdir.mkdir(parents=True, exist_ok=True)
    lock = RunLock(rdir)
    lock.acquire()  # before the checkpoint manager, which clears the unfinished saves it finds
    try:
        if not config.run.resume:
            _set_aside_history(rdir)
        manager = ckpt.make_manager(rdir, keep=config.checkpoint.keep)
    except BaseException:
        lock.release()
        raise
    return RunContext(config, stage, services, rdir, tokenizer, p.model_cfg, p.model, p.mesh, p.rules, p.tx,
                      p.schedule, p.abstract_state, p.shardings, manager, jax.process_index() == 0, lock)


HISTORY = ("checkpoints", METRICS_FILE, "tensorboard", PLOT_FILE, "config.json")


def _set_aside_history(rdir: Path) -> None:
    """``run.resume=false`` (``--restart``): moves the run's checkpoints and metrics to ``previous/<time>/``
    (process 0; nothing is deleted) so the run starts over in the same directory."""
    found = [rdir / name for name in HISTORY if (rdir / name).exists()]
    if found and jax.process_index() == 0:
        dest = rdir / "previous" / time.strftime("%Y%m%d-%H%M%S")
        dest.mkdir(parents=True, exist_ok=True)
        for path in found:
            shutil.move(str(path), str(dest / path.name))
        print(f"run.resume=false: the earlier run's {', '.join(p.name for p in found)} moved to {dest}")
    if jax.process_count() > 1:
        multihost_utils.sync_global_devices("flaxgpt:set-aside-history")


def check_mesh_fits(model_cfg: ModelConfig, mesh: Any, rules: Sequence[tuple[str, Any]]) -> None:
    """Raises ConfigError naming the model key and mesh axes when a parameter dimension does not split evenly
    over the mesh axes ``mesh.rules`` shards it on (JAX's own error names neither)."""
    dims = {"heads": ("model.n_head", model_cfg.n_head), "mlp": ("model.d_ff", model_cfg.ffn),
            "embed": ("model.d_model", model_cfg.d_model), "kv": ("model.d_model/model.n_head", model_cfg.head_dim),
            "vocab": ("model.vocab_size (padded)", model_cfg.vocab_padded)}
    for logical, axes in rules:
        if logical not in dims or axes is None:
            continue
        axes = (axes,) if isinstance(axes, str) else tuple(axes)
        size = math.prod(mesh.shape[a] for a in axes)
        key, value = dims[logical]
        if value % size:
            mesh_keys = " x ".join(f"mesh.{a}={mesh.shape[a]}" for a in axes)
            raise ConfigError(f"config key '{key}': {value} does not split over {mesh_keys} (mesh.rules shards "
                              f"'{logical}' on {', '.join(axes)}); pick sizes that divide it")


@dataclasses.dataclass(frozen=True)
class Training:
    """What a stage's step is built and compiled from (``build_training``): a RunContext holds these; preflight
    (``flaxgpt.launch.preflight``) compiles the step from them for a TPU topology without making a run."""

    model_cfg: ModelConfig
    model: GPT
    mesh: Any  # a Mesh, or an AbstractMesh when only the state's per-device shapes are wanted
    rules: tuple
    tx: Any
    schedule: Any
    abstract_state: Any  # shapes, dtypes and shardings of the TrainState
    shardings: Any  # the TrainState's shardings


def build_training(config: ml_collections.ConfigDict, stage: Stage, mesh: Any) -> Training:
    """The model, rules, optimizer and schedule (scaled by the stage's ``updates_per_step``) of ``config`` and its
    train state's shapes and shardings over ``mesh``; allocates nothing."""
    model_cfg = ModelConfig.from_config(config.model)
    model = GPT(model_cfg)
    rules = logical_rules(config.mesh.rules)
    check_mesh_fits(model_cfg, mesh, rules)
    updates = stage.updates_per_step(config)
    tx = make_optimizer(config.train, stage.trainable, updates_per_step=updates)
    abstract, shardings = abstract_train_state(model, tx, mesh, rules, config.data.seq_len)
    return Training(model_cfg, model, mesh, rules, tx, lr_schedule(config.train, updates_per_step=updates),
                    abstract, shardings)
