"""A trained model from a run directory: its config, tokenizer and parameters (no optimizer state).

Inference (``flaxgpt.infer.generator``, ``flaxgpt.infer.quant``, the perplexity quality filter) needs only the
parameters of a checkpoint, so ``restore_params`` reads just ``state/params`` of one step, straight
into the requested shardings (one device by default). The config is the one saved with that
checkpoint (``checkpoints/<step>/config``), falling back to the run's ``config.json``; the tokenizer
is the one the config names, checked against the tokenizer metadata saved with the checkpoint.
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

from flaxgpt.config import from_dict
from flaxgpt.runs.info import checkpoint_steps
from flaxgpt.model.gpt import GPT, ModelConfig
from flaxgpt.train.sharding import logical_rules, logical_shardings
from flaxgpt.data.tokenizer import Tokenizer, check_compatible, load_tokenizer


@dataclasses.dataclass
class RunModel:
    """What ``load_run`` returns: everything needed to run a trained model."""

    run_dir: Path
    step: int
    config: ml_collections.ConfigDict
    model_cfg: ModelConfig
    tokenizer: Tokenizer
    params: Any  # the stacked param tree (ARCHITECTURE.md "one param pytree")


def checkpoint_dir(run_dir: Path, step: int | None) -> tuple[int, Path]:
    """(step, its checkpoint folder) for ``step`` or, if None, the latest; FileNotFoundError naming the run."""
    steps = checkpoint_steps(run_dir)
    if not steps:
        raise FileNotFoundError(f"no checkpoint in {run_dir / 'checkpoints'} (train the run first)")
    if step is None:
        step = steps[-1]
    elif step not in steps:
        raise FileNotFoundError(f"{run_dir}: no checkpoint for step {step} (have {steps})")
    return step, run_dir / "checkpoints" / str(step)


def read_run_config(run_dir: str | Path, step: int | None = None) -> ml_collections.ConfigDict:
    """The resolved config saved with checkpoint ``step`` (default: latest), else the run's config.json."""
    run_dir = Path(run_dir)
    if checkpoint_steps(run_dir):
        saved = checkpoint_dir(run_dir, step)[1] / "config" / "metadata"
        if saved.exists():
            return from_dict(json.loads(saved.read_text()))
    path = run_dir / "config.json"
    if not path.exists():
        raise FileNotFoundError(f"{run_dir} is not a run directory (no config.json)")
    return from_dict(json.loads(path.read_text()))


def run_tokenizer(run_dir: str | Path, config: ml_collections.ConfigDict, step: int | None = None) -> Tokenizer:
    """The tokenizer ``data.tokenizer`` names, refused if it differs from the one saved with the checkpoint."""
    run_dir = Path(run_dir)
    tokenizer = load_tokenizer(config.data.tokenizer)
    if checkpoint_steps(run_dir):
        saved = checkpoint_dir(run_dir, step)[1] / "tokenizer" / "metadata"
        if saved.exists():
            check_compatible(json.loads(saved.read_text()), tokenizer.metadata(),
                             f"checkpoint {saved.parent.parent} vs data.tokenizer {config.data.tokenizer!r}")
    return tokenizer


def param_shardings(model_cfg: ModelConfig, mesh: jax.sharding.Mesh, rules) -> Any:
    """NamedShardings of the stacked param tree on ``mesh`` under logical-axis ``rules``."""
    boxed = jax.eval_shape(lambda: GPT(model_cfg).init(jax.random.PRNGKey(0), jnp.zeros((1, 1), jnp.int32)))
    return logical_shardings(boxed["params"], mesh, rules)


def restore_params(run_dir: str | Path, model_cfg: ModelConfig, step: int | None = None,
                   shardings: Any = None) -> tuple[int, Any]:
    """Reads only the parameters of checkpoint ``step`` (default: latest); returns (step, params).

    ``shardings``: a tree of shardings like the params (``param_shardings``), or None for the first device.
    """
    import orbax.checkpoint as ocp

    run_dir = Path(run_dir)
    step, ckpt_dir = checkpoint_dir(run_dir, step)
    boxed = jax.eval_shape(lambda: GPT(model_cfg).init(jax.random.PRNGKey(0), jnp.zeros((1, 1), jnp.int32)))
    abstract = nn.unbox(boxed["params"])
    if shardings is None:
        device = jax.sharding.SingleDeviceSharding(jax.devices()[0])
        shardings = jax.tree.map(lambda _: device, abstract)
    restore_args = {"params": jax.tree.map(lambda s: ocp.ArrayRestoreArgs(sharding=s), shardings)}
    with ocp.PyTreeCheckpointer() as ckptr:
        try:
            state = ckptr.restore((ckpt_dir / "state").absolute(), args=ocp.args.PyTreeRestore(
                item={"params": abstract}, restore_args=restore_args, partial_restore=True))
        except (ValueError, KeyError) as err:
            raise ValueError(f"{ckpt_dir}: the parameters do not match the model of its config "
                             f"({str(err).splitlines()[0][:300]})") from err
    return step, state["params"]


def load_run(run_dir: str | Path, step: int | None = None, *, mesh: jax.sharding.Mesh | None = None) -> RunModel:
    """Config, tokenizer and params of a run's checkpoint ``step`` (default: latest), on ``mesh`` if given
    (sharded by the run's ``mesh.rules``), else on the first device."""
    run_dir = Path(run_dir)
    config = read_run_config(run_dir, step)
    model_cfg = ModelConfig.from_config(config.model)
    tokenizer = run_tokenizer(run_dir, config, step)
    shardings = None
    if mesh is not None:
        shardings = param_shardings(model_cfg, mesh, logical_rules(config.mesh.rules))
    step, params = restore_params(run_dir, model_cfg, step, shardings)
    return RunModel(run_dir, step, config, model_cfg, tokenizer, params)
