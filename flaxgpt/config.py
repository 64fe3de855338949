"""Run configs: one ml_collections ConfigDict per run, from an ``experiments/*.py`` file plus overrides.

``default_config()`` is the schema: every key a run may set, with its default and type. An
experiment file's ``get_config()`` starts from it and changes what it needs. On the command line,
``key.sub=value`` overrides follow the config path (``model.n_layer=4 train.steps=100``); an
unknown key or a value of the wrong type is a ``ConfigError`` that names the key. Loading has no
side effects (no devices touched, nothing written). This module imports nothing else of flaxgpt: every
package may read configs, so the names a key may take live here.
"""

from __future__ import annotations

import ast
import difflib
import importlib.util
import json
import math
import re
from pathlib import Path
from typing import Any

import ml_collections

# The values some keys may take (the modules that act on them key their tables by these names).
DTYPES = ("float32", "bfloat16", "float16")  # model.dtype, model.param_dtype
REMAT_POLICIES = ("none", "full", "dots", "dots_no_batch")  # model.remat
ATTENTION_IMPLEMENTATIONS = ("auto", "xla", "cudnn")  # model.attention
DPO_LOSSES = ("sigmoid", "ipo", "hinge")  # dpo.loss
KL_ESTIMATORS = ("k1", "k3", "abs", "mse")  # ppo.kl_estimator
# run.hardware: cpu, a TPU type (v5e-8; v4/v5p names count TensorCores) or topology (v5e:2x4), gpu:KINDxN (h100x8).
HARDWARE_PATTERN = r"cpu|(v4|v5e|v5p|v6e|v5litepod|v6litepod)(-\d+|:\d+(x\d+){1,2})|(gpu:)?[a-z]\d+(x\d+)?"


class ConfigError(ValueError):
    """A bad config key or value; the message names the key."""


def default_config() -> ml_collections.ConfigDict:
    """The full schema with defaults (a micro-sized model that runs anywhere)."""
    c = ml_collections.ConfigDict()

    c.model = ml_collections.ConfigDict()
    c.model.vocab_size = 50257  # tokenizer ids; padded up to a multiple of 128 inside the model
    c.model.max_len = 256  # learned positions (context length)
    c.model.n_layer = 4
    c.model.n_head = 4
    c.model.d_model = 128
    c.model.d_ff = 0  # 0: 4 * d_model
    c.model.dropout = 0.0
    c.model.bias = True
    c.model.dtype = "float32"  # compute dtype: float32 | bfloat16 | float16
    c.model.param_dtype = "float32"
    c.model.remat = "none"  # none | full | dots | dots_no_batch
    c.model.attention = "auto"  # jax.nn.dot_product_attention implementation: auto | xla | cudnn
    c.model.scan_unroll = 1  # blocks per layer-loop iteration; n_layer unrolls fully (faster on CPU, longer compile)

    c.data = ml_collections.ConfigDict()
    # name -> {path: token-shard directory (from `flaxgpt tokenize`), weight: share of training tokens}
    c.data.sources = ml_collections.ConfigDict()
    c.data.tokenizer = "gpt2"  # gpt2 | flaxgpt (plus chat and CAI special tokens) | path of an ingest's tokenizer.json
    c.data.seq_len = 256  # training sequence length (<= model.max_len)
    c.data.document_mask = True  # attention stays inside each packed document; positions restart
    c.data.prefetch = 2  # batches prepared ahead of the step

    c.train = ml_collections.ConfigDict()
    c.train.stage = "pretrain"  # a registered training method (flaxgpt/train/stages): pretrain|sft|pm|dpo|orpo|ppo
    c.train.steps = 1000
    c.train.batch_size = 16  # global sequences per optimizer step
    c.train.grad_accum = 1  # micro-batches per step (each batch_size / grad_accum)
    c.train.lr = 6e-4
    c.train.min_lr_ratio = 0.1  # cosine decays to lr * min_lr_ratio
    c.train.warmup_steps = 100
    c.train.weight_decay = 0.1  # not applied to LayerNorm parameters and biases
    c.train.b1 = 0.9
    c.train.b2 = 0.95
    c.train.eps = 1e-8
    c.train.grad_clip = 1.0  # global-norm clipping; 0 disables
    c.train.seed = 0
    c.train.log_every = 10
    c.train.eval_every = 200  # 0 disables
    c.train.eval_batches = 20  # validation batches per source at each evaluation
    # (convert) A fresh run's first parameters: a run directory (latest checkpoint), RUN/checkpoints/STEP, or a
    # HuggingFace GPT-2 directory; '' means random init. Ignored when the run resumes from its own checkpoint.
    c.train.init_from = ""

    # Stages trained on comparisons (train.stage=pm|dpo|orpo) read them here (flaxgpt/data/preferences.py).
    c.prefs = ml_collections.ConfigDict()
    c.prefs.data = ""  # comma-separated files: `flaxgpt cai label`/`revise` pairs, hh-rlhf, multiple-choice JSONL
    c.prefs.val_fraction = 0.1  # comparisons held out (by a hash of the prompt) for validation
    c.prefs.max_prompt_len = 0  # 0: no limit; longer prompts keep their last tokens (the final human turn)
    c.prefs.strict = False  # True: a malformed record (e.g. an hh-rlhf transcript whose turns do not pair) aborts

    c.pm = ml_collections.ConfigDict()
    c.pm.center = True  # after training, offset the reward so the reference responses average 0

    c.dpo = ml_collections.ConfigDict()
    c.dpo.beta = 0.1
    c.dpo.loss = "sigmoid"  # sigmoid | ipo | hinge
    c.dpo.label_smoothing = 0.0  # cDPO: prob. a label is flipped; soft labels p set it per pair to 1 - p
    c.dpo.ref_from = ""  # frozen reference policy (a run directory); '' means train.init_from

    c.orpo = ml_collections.ConfigDict()
    c.orpo.beta = 0.1  # weight of the odds-ratio loss next to the preferred response's NLL (lambda in the paper)

    c.ppo = ml_collections.ConfigDict()
    c.ppo.prompts = ""  # comma-separated prompt files (JSONL of {"prompt"} or messages, hh-rlhf)
    c.ppo.reward_from = ""  # the preference model: a run directory trained with train.stage=pm
    c.ppo.ref_from = ""  # frozen reference policy; '' means train.init_from
    c.ppo.rollout_batch = 16  # prompts per rollout (each train.steps is one rollout plus its updates)
    c.ppo.response_len = 48  # max new tokens per response
    c.ppo.temperature = 0.7  # sampling temperature; policy and reference logits are divided by it too
    c.ppo.epochs = 4  # passes over each rollout
    c.ppo.minibatch = 8  # rollout rows per update (train.batch_size is ignored)
    c.ppo.clip = 0.2  # policy ratio clip
    c.ppo.vf_clip = 0.2  # value clip around the rollout's values
    c.ppo.vf_coef = 0.1
    c.ppo.gamma = 1.0
    c.ppo.lam = 0.95
    c.ppo.kl_coef = 0.05  # initial coefficient of the per-token KL penalty
    c.ppo.kl_estimator = "k1"  # k1 (log ratio) | k3 | abs | mse
    c.ppo.kl_target = 0.0  # > 0: adaptive coefficient toward this KL per response (horizon ppo.kl_horizon)
    c.ppo.kl_horizon = 10000
    c.ppo.missing_eos_penalty = 1.0  # subtracted from the score of a response that never ends
    c.ppo.whiten_rewards = False

    # Evaluation suites (flaxgpt/eval) run during training every evals.every steps, into metrics.jsonl (kind "suite").
    c.evals = ml_collections.ConfigDict()
    c.evals.every = 0  # 0 disables
    c.evals.suites = "facts"  # comma-separated suite names (`flaxgpt eval --help` lists them)
    c.evals.facts = ""  # {"question", "answers"} JSONL
    c.evals.red_team = ""  # comma-separated prompt files (safety, adherence)
    c.evals.judge = ""  # rules | pm:RUN_DIR | a feedback backend spec
    c.evals.constitution = "personal,harmless"
    c.evals.max_tokens = 32
    c.evals.limit = 16  # prompts/questions per suite: keep periodic evaluation cheap

    c.checkpoint = ml_collections.ConfigDict()
    c.checkpoint.every = 200
    c.checkpoint.keep = 3
    c.checkpoint.async_save = True

    c.mesh = ml_collections.ConfigDict()
    c.mesh.data = -1  # -1: all devices not used by the other axes
    c.mesh.fsdp = 1
    c.mesh.tensor = 1
    # logical axis -> mesh axes ('' means replicated). Parameters use vocab/embed/heads/kv/mlp/layers;
    # activations use act_batch/act_len/act_embed.
    c.mesh.rules = (
        ("vocab", "tensor"),
        ("embed", "fsdp"),
        ("heads", "tensor"),
        ("mlp", "tensor"),
        ("kv", ""),
        ("layers", ""),
        ("act_batch", "data,fsdp"),
        ("act_len", ""),
        ("act_embed", ""),
    )

    # Joining a multi-process job (flaxgpt/train/distributed.py); unset, the environment says (JAX_*, SLURM,
    # Kubernetes, TPU VM). The flags --coordinator/--num-processes/--process-id of `flaxgpt train` set these.
    c.dist = ml_collections.ConfigDict()
    c.dist.coordinator = ""  # host:port of process 0
    c.dist.num_processes = 0  # 0: from the environment
    c.dist.process_id = -1  # -1: from the environment

    c.run = ml_collections.ConfigDict()
    c.run.name = "micro"
    c.run.dir = ""  # '' means runs/<name>
    c.run.resume = True  # continue from the latest complete checkpoint in run.dir
    # Where this config is meant to train: `flaxgpt preflight` (and `make preflight`) checks that it fits there.
    c.run.hardware = "cpu"  # cpu | a TPU type or topology (v5e-8, v4-8, v5e:2x4) | gpu:KINDxN (gpu:h100x8)
    return c


def read_config_file(path: str | Path, function: str = "get_config") -> Any:
    """Imports a config file (experiment, ingest sources or sweep) and returns its ``get_config()`` (or the
    ``function`` named, e.g. ``get_sweep``), unvalidated."""
    path = Path(path)
    if not path.exists():
        raise ConfigError(f"config file not found: {path}")
    spec = importlib.util.spec_from_file_location(f"flaxgpt_config_{path.stem}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    if not hasattr(module, function):
        raise ConfigError(f"{path} has no {function}()")
    return getattr(module, function)()


def load_config(path: str | Path, overrides: list[str] | tuple[str, ...] = ()) -> ml_collections.ConfigDict:
    """Loads ``get_config()`` from an experiment file, applies ``key=value`` overrides, validates."""
    config = read_config_file(path)
    apply_overrides(config, overrides)
    validate(config)
    return config


def parse_value(text: str) -> Any:
    """The value of a ``key=value`` override: a Python literal, true/false, or else the bare string."""
    low = text.strip().lower()
    if low in ("true", "false"):
        return low == "true"
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError):
        return text  # a bare string such as a path


def coerce_value(key: str, old: Any, new: Any) -> Any:
    """Returns ``new`` converted to the type of ``old`` when that is lossless, else raises naming ``key``."""
    if isinstance(old, bool) or isinstance(new, bool):
        if isinstance(old, bool) and isinstance(new, bool):
            return new
    elif isinstance(old, float) and isinstance(new, int | float):
        return float(new)
    elif isinstance(old, int) and isinstance(new, int):
        return new
    elif isinstance(old, str):
        return new if isinstance(new, str) else str(new)
    elif isinstance(old, tuple | list) and isinstance(new, tuple | list):
        return tuple(new)
    elif old is None:
        return new
    raise ConfigError(f"config key '{key}' expects {type(old).__name__}, got {new!r} ({type(new).__name__})")


def apply_overrides(config: ml_collections.ConfigDict, overrides: list[str] | tuple[str, ...]) -> None:
    """Applies ``a.b.c=value`` strings in place. A new entry is made only where asked for with a leading ``+``,
    and only under ``data.sources`` (``+data.sources.NAME.path=DIR``): a misspelt source name is an error that
    lists the known ones, not a second source trained on silently."""
    for item in overrides:
        if "=" not in item:
            raise ConfigError(f"override {item!r} is not of the form key=value")
        key, text = item.split("=", 1)
        key = key.strip()
        adding = key.startswith("+")
        key = key.lstrip("+")
        parts = key.split(".")
        node = config
        for i, part in enumerate(parts[:-1]):
            if part not in node:
                if ".".join(parts[:i]) == "data.sources" and adding:  # a new data source
                    node[part] = ml_collections.ConfigDict({"path": "", "weight": 1.0})
                elif ".".join(parts[:i]) == "data.sources":
                    known = ", ".join(sorted(node.keys())) or "none"
                    raise ConfigError(f"unknown data source '{part}' (in override '{key}'); this config's sources: "
                                      f"{known}. To add a source, write +{key}=...")
                else:
                    _unknown(key, ".".join(parts[: i + 1]), node, part)
            node = node[part]
            if not isinstance(node, ml_collections.ConfigDict):
                raise ConfigError(f"config key '{'.'.join(parts[: i + 1])}' is a value, not a section (in '{key}')")
        leaf = parts[-1]
        if leaf not in node:
            _unknown(key, key, node, leaf)
        old = node[leaf]
        value = parse_value(text)
        if isinstance(old, ml_collections.ConfigDict):
            raise ConfigError(f"config key '{key}' is a section; set one of its keys: {sorted(old.keys())}")
        with node.unlocked():
            node[leaf] = coerce_value(key, old, value)


def _unknown(full_key: str, bad: str, node: ml_collections.ConfigDict, part: str) -> None:
    close = difflib.get_close_matches(part, list(node.keys()), n=3)
    hint = f"; did you mean {', '.join(close)}?" if close else f"; known keys here: {', '.join(sorted(node.keys()))}"
    raise ConfigError(f"unknown config key '{bad}' (in override '{full_key}'){hint}")


def _check(cond: bool, key: str, message: str) -> None:
    if not cond:
        raise ConfigError(f"config key '{key}': {message}")


def _floats(node: ml_collections.ConfigDict, prefix: str = ""):
    for k, v in node.items():
        if isinstance(v, ml_collections.ConfigDict):
            yield from _floats(v, f"{prefix}{k}.")
        elif isinstance(v, float):
            yield prefix + k, v


def validate(c: ml_collections.ConfigDict) -> None:
    """Checks cross-field rules that types alone cannot; raises ConfigError naming the key."""
    for key, value in _floats(c):
        _check(math.isfinite(value), key, f"{value} is not a finite number")
    m, d, t = c.model, c.data, c.train
    _check(m.n_layer > 0 and m.n_head > 0 and m.d_model > 0, "model", "n_layer, n_head, d_model must be > 0")
    _check(m.d_model % m.n_head == 0, "model.d_model", f"{m.d_model} is not divisible by n_head={m.n_head}")
    _check(0 < m.vocab_size < 65536, "model.vocab_size", "must be in (0, 65536): token shards are uint16")
    _check(m.dtype in DTYPES, "model.dtype", f"{m.dtype!r} not in {DTYPES}")
    _check(m.param_dtype in DTYPES, "model.param_dtype", f"{m.param_dtype!r} not in {DTYPES}")
    _check(m.remat in REMAT_POLICIES, "model.remat", f"{m.remat!r} not in {REMAT_POLICIES}")
    _check(m.attention in ATTENTION_IMPLEMENTATIONS, "model.attention", f"{m.attention!r} not auto|xla|cudnn")
    _check(0.0 <= m.dropout < 1.0, "model.dropout", "must be in [0, 1)")
    _check(m.scan_unroll >= 1, "model.scan_unroll", "must be >= 1 (values >= model.n_layer unroll fully)")
    _check(0 < d.seq_len <= m.max_len, "data.seq_len", f"{d.seq_len} must be in (0, model.max_len={m.max_len}]")
    _check(d.tokenizer in ("gpt2", "flaxgpt") or Path(d.tokenizer).expanduser().exists(), "data.tokenizer",
           f"{d.tokenizer!r} is not gpt2, flaxgpt, or an existing tokenizer.json (or a folder holding one)")
    for name, src in d.sources.items():
        _check(isinstance(src, ml_collections.ConfigDict) and set(src.keys()) == {"path", "weight"},
               f"data.sources.{name}", "must be {path: str, weight: float}")
        _check(float(src.weight) > 0, f"data.sources.{name}.weight", "must be > 0")
    _check(t.steps > 0, "train.steps", "must be > 0")
    _check(t.grad_accum > 0, "train.grad_accum", "must be > 0")
    _check(t.batch_size % t.grad_accum == 0, "train.batch_size",
           f"{t.batch_size} is not divisible by train.grad_accum={t.grad_accum}")
    _check(t.lr > 0, "train.lr", "must be > 0")
    _check(t.warmup_steps >= 0, "train.warmup_steps", "must be >= 0 (capped at train.steps)")
    _check(t.log_every > 0, "train.log_every", "must be > 0")
    _check(not t.init_from or Path(t.init_from).expanduser().exists(), "train.init_from",  # (convert)
           f"{t.init_from!r} does not exist: expected a run directory, RUN/checkpoints/STEP or a HuggingFace GPT-2 "
           "directory")
    _check(0.0 <= c.prefs.val_fraction < 1.0, "prefs.val_fraction", "must be in [0, 1)")
    _check(c.prefs.max_prompt_len >= 0, "prefs.max_prompt_len", "must be >= 0 (0: no limit)")
    _check(c.dpo.loss in DPO_LOSSES, "dpo.loss", f"{c.dpo.loss!r} not in {DPO_LOSSES}")
    _check(c.dpo.beta > 0, "dpo.beta", "must be > 0")
    _check(0.0 <= c.dpo.label_smoothing < 0.5, "dpo.label_smoothing", "must be in [0, 0.5)")
    _check(c.orpo.beta > 0, "orpo.beta", "must be > 0")
    p = c.ppo
    for key in ("rollout_batch", "response_len", "epochs", "minibatch"):
        _check(p[key] > 0, f"ppo.{key}", "must be > 0")
    _check(p.rollout_batch % p.minibatch == 0, "ppo.rollout_batch",
           f"{p.rollout_batch} is not a multiple of ppo.minibatch={p.minibatch}")
    _check(p.temperature > 0, "ppo.temperature", "must be > 0 (the policy samples its rollouts)")
    _check(p.kl_estimator in KL_ESTIMATORS, "ppo.kl_estimator", f"{p.kl_estimator!r} not in {KL_ESTIMATORS}")
    _check(0.0 <= p.lam <= 1.0 and 0.0 <= p.gamma <= 1.0, "ppo.lam", "ppo.gamma and ppo.lam must be in [0, 1]")
    _check(c.evals.every >= 0, "evals.every", "must be >= 0 (0: no suites during training)")
    _check(c.evals.every == 0 or bool(c.evals.suites.strip()), "evals.suites", "name the suites to run")
    _check(c.checkpoint.every > 0, "checkpoint.every", "must be > 0")
    _check(c.checkpoint.keep > 0, "checkpoint.keep", "must be > 0")
    _check(c.dist.num_processes >= 0, "dist.num_processes", "must be >= 0 (0: from the environment)")
    sizes = [c.mesh.data, c.mesh.fsdp, c.mesh.tensor]
    _check(all(s == -1 or s > 0 for s in sizes) and sizes.count(-1) <= 1, "mesh",
           f"sizes {sizes}: each > 0, at most one -1")
    _check(re.fullmatch(HARDWARE_PATTERN, c.run.hardware.lower()) is not None, "run.hardware",
           f"{c.run.hardware!r} is not cpu, a TPU type or topology (v5e-8, v4:2x2x1) or gpu:KINDxN (gpu:h100x8)")


def run_dir(c: ml_collections.ConfigDict) -> Path:
    """The run directory: ``run.dir`` or ``runs/<run.name>``."""
    return Path(c.run.dir or f"runs/{c.run.name}")


def to_json(c: ml_collections.ConfigDict) -> str:
    """The resolved config as JSON (tuples become lists)."""
    return json.dumps(c.to_dict(), indent=2, sort_keys=True)


def from_dict(values: dict) -> ml_collections.ConfigDict:
    """Rebuilds a config saved with ``to_json`` on top of the schema (so old runs gain new defaults)."""
    config = default_config()

    def merge(node: ml_collections.ConfigDict, vals: dict, prefix: str) -> None:
        for k, v in vals.items():
            if isinstance(v, dict):
                if k not in node:
                    node[k] = ml_collections.ConfigDict()
                merge(node[k], v, f"{prefix}{k}.")
            elif k in node:
                node[k] = coerce_value(prefix + k, node[k], tuple(tuple(x) if isinstance(x, list) else x for x in v)
                                  if isinstance(v, list) else v)
            else:
                node[k] = v

    merge(config, values, "")
    return config
