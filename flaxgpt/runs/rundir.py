"""Reading a run directory back: its checkpoints, the config and tokenizer they were saved with, their parameters.

A run directory (written by the trainer, ``flaxgpt.train``) holds ``config.json``, ``metrics.jsonl`` and
``checkpoints/<step>/`` with the items ``state`` (the TrainState), ``data`` (the loader's position), ``config``
(the resolved config) and ``tokenizer`` (its metadata). Everything that uses a trained model without resuming
its training (inference, ``train.init_from``, frozen reference and preference models, HuggingFace export,
evaluation) reads it here: ``read_params`` reads only ``state/params`` of one step (no optimizer state), as
numpy arrays or straight into the requested shardings; the config is the one saved with that checkpoint
(falling back to ``config.json``); the tokenizer is the one the config names, checked against the metadata
saved with the checkpoint.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import orbax.checkpoint as ocp

from flaxgpt.config import from_dict
from flaxgpt.data.tokenizer import Tokenizer, check_compatible, load_tokenizer
from flaxgpt.model.gpt import GPT, ModelConfig
from flaxgpt.train.sharding import logical_rules, logical_shardings


@dataclasses.dataclass
class RunModel:
    """What ``load_run`` returns: everything needed to run a trained model."""

    run_dir: Path
    step: int
    config: ml_collections.ConfigDict
    model_cfg: ModelConfig
    tokenizer: Tokenizer
    params: Any  # the stacked param tree (ARCHITECTURE.md "one param pytree")


def checkpoint_steps(run_dir: str | Path) -> list[int]:
    """Steps of the complete checkpoints in a run directory, oldest first."""
    d = Path(run_dir) / "checkpoints"
    return sorted(int(p.name) for p in d.iterdir() if p.is_dir() and p.name.isdigit()) if d.exists() else []


def checkpoint_dir(run_dir: str | Path, step: int | None) -> tuple[int, Path]:
    """(step, its checkpoint folder) for ``step`` or, if None, the latest; FileNotFoundError naming the run."""
    run_dir = Path(run_dir)
    steps = checkpoint_steps(run_dir)
    if not steps:
        raise FileNotFoundError(f"no checkpoint in {run_dir / 'checkpoints'} (train the run first)")
    if step is None:
        step = steps[-1]
    elif step not in steps:
        raise FileNotFoundError(f"{run_dir}: no checkpoint for step {step} (have {steps})")
    return step, run_dir / "checkpoints" / str(step)


def _saved_item(run_dir: Path, step: int | None, item: str) -> dict | None:
    """The JSON item ``item`` saved with checkpoint ``step`` (latest if None), or None when there is none."""
    if not checkpoint_steps(run_dir):
        return None
    saved = checkpoint_dir(run_dir, step)[1] / item / "metadata"
    return json.loads(saved.read_text()) if saved.exists() else None


def read_run_config(run_dir: str | Path, step: int | None = None) -> ml_collections.ConfigDict:
    """The resolved config saved with checkpoint ``step`` (default: latest), else the run's config.json."""
    run_dir = Path(run_dir)
    saved = _saved_item(run_dir, step, "config")
    if saved is not None:
        return from_dict(saved)
    path = run_dir / "config.json"
    if not path.exists():
        raise FileNotFoundError(f"{run_dir} is not a run directory (no config.json)")
    return from_dict(json.loads(path.read_text()))


def saved_tokenizer_meta(run_dir: str | Path, step: int | None = None) -> dict:
    """The tokenizer metadata saved with checkpoint ``step`` (default: latest); {} when none was saved."""
    return _saved_item(Path(run_dir), step, "tokenizer") or {}


def run_tokenizer(run_dir: str | Path, config: ml_collections.ConfigDict, step: int | None = None) -> Tokenizer:
    """The tokenizer ``data.tokenizer`` names, refused if it differs from the one saved with the checkpoint."""
    tokenizer = load_tokenizer(config.data.tokenizer)
    saved = saved_tokenizer_meta(run_dir, step)
    if saved:
        check_compatible(saved, tokenizer.metadata(), f"checkpoint {checkpoint_dir(run_dir, step)[1]} vs "
                                                      f"data.tokenizer {config.data.tokenizer!r}")
    return tokenizer


def _boxed_params(model_cfg: ModelConfig) -> Any:
    """The model's param tree as shapes with their logical axis names (nothing allocated)."""
    return jax.eval_shape(lambda: GPT(model_cfg).init(jax.random.PRNGKey(0), jnp.zeros((1, 1), jnp.int32)))["params"]


def param_shardings(model_cfg: ModelConfig, mesh: jax.sharding.Mesh, rules) -> Any:
    """NamedShardings of the stacked param tree on ``mesh`` under logical-axis ``rules``."""
    return logical_shardings(_boxed_params(model_cfg), mesh, rules)


def read_params(run_dir: str | Path, step: int | None = None, *, shardings: Any = None) -> tuple[int, Any]:
    """Only the parameters of checkpoint ``step`` (default: latest): (step, params).

    With ``shardings`` (a tree of shardings like the params, e.g. ``param_shardings``) the params are placed
    with them; without, they are numpy arrays on the host. ValueError naming the checkpoint when its params do
    not have the tree ``shardings`` describes.
    """
    step, ckpt_dir = checkpoint_dir(Path(run_dir), step)
    state_dir = (ckpt_dir / "state").absolute()
    handler = ocp.PyTreeCheckpointHandler()
    try:
        tree = handler.metadata(state_dir).tree
        if "params" not in tree:
            raise ValueError(f"{state_dir} holds no 'params' (keys: {sorted(tree)})")
        item = {"params": tree["params"]}
        if shardings is None:
            restore_args = jax.tree.map(lambda _: ocp.RestoreArgs(restore_type=np.ndarray), item)
        else:
            try:
                restore_args = {"params": jax.tree.map(lambda _, s: ocp.ArrayRestoreArgs(sharding=s), item["params"],
                                                       shardings)}
            except ValueError as err:
                raise ValueError(f"{ckpt_dir}: the parameters do not match the model of its config "
                                 f"({str(err).splitlines()[0][:300]})") from err
        restored = handler.restore(state_dir, args=ocp.args.PyTreeRestore(item=item, restore_args=restore_args,
                                                                           partial_restore=True))
    finally:
        handler.close()
    return step, restored["params"]


def load_run(run_dir: str | Path, step: int | None = None, *, mesh: jax.sharding.Mesh | None = None) -> RunModel:
    """Config, tokenizer and params of a run's checkpoint ``step`` (default: latest), on ``mesh`` if given
    (sharded by the run's ``mesh.rules``), else on the first device."""
    run_dir = Path(run_dir)
    config = read_run_config(run_dir, step)
    model_cfg = ModelConfig.from_config(config.model)
    tokenizer = run_tokenizer(run_dir, config, step)
    if mesh is not None:
        shardings = param_shardings(model_cfg, mesh, logical_rules(config.mesh.rules))
    else:
        device = jax.sharding.SingleDeviceSharding(jax.devices()[0])
        shardings = jax.tree.map(lambda _: device, nn.unbox(_boxed_params(model_cfg)))
    step, params = read_params(run_dir, step, shardings=shardings)
    return RunModel(run_dir, step, config, model_cfg, tokenizer, params)


def read_run_params(run_dir: str | Path, step: int | None = None,
                    ) -> tuple[ml_collections.ConfigDict, int, dict[str, Any], dict]:
    """(config the checkpoint was saved with, step, params as numpy, tokenizer metadata) of a run's checkpoint
    ``step`` (None: the latest)."""
    config = read_run_config(run_dir, step)
    step, params = read_params(run_dir, step)
    return config, step, params, saved_tokenizer_meta(run_dir, step)
