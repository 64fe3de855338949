"""Preflight: will a config's training step fit its hardware, and how fast can it run there, before renting it.

TPUs: the project's real step (the stage's ``make_step``, the run's state and batch shardings, ``compile_step``) is
compiled ahead of time for a TPU topology from a CPU machine (libtpu's compile-only devices, ``.venv-tpu``); XLA's
``memory_analysis`` gives the per-chip arguments, temporaries and outputs, and a step that does not fit fails to
compile with RESOURCE_EXHAUSTED, whose numbers are reported. GPUs and CPUs cannot be compiled for here: their
memory is an analytic estimate (the state's exact per-device shards, activations under the remat policy).

Time: FLOPs per optimizer update from the nanoGPT formula (``flaxgpt.train.mfu``: 6N + 12LHQT per token, the MFU
numerator; XLA's cost_analysis counts a scanned loop body once and is not used), times the tokens of one step.
Hardware FLOPs add what remat recomputes (the forward again under 'full'), so the step time at 100% of the chips'
peak is a floor, and model/hardware FLOPs is the MFU ceiling: the best MFU that remat policy allows.
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
import os
import re
import sys
import tempfile
from collections.abc import Iterator
from typing import Any

import jax
import jax.numpy as jnp
import ml_collections
from jax.sharding import AbstractMesh

from flaxgpt.config import HARDWARE_PATTERN, ConfigError
from flaxgpt.data.loader import BATCH_KEYS
from flaxgpt.data.preferences import PAIR_KEYS
from flaxgpt.model.gpt import DTYPES, ModelConfig
from flaxgpt.train.context import Training, build_training
from flaxgpt.train.mfu import PEAK_FLOPS, flops_per_token_nanogpt
from flaxgpt.train.sharding import MESH_AXES, batch_sharding, compile_step, make_mesh, mesh_shape
from flaxgpt.train.stages import get_stage, ppo
from flaxgpt.train.stages.base import Stage

GiB = 2**30
DEFAULT_MFU = 0.4  # the assumed MFU of the "estimated step time" column: a well-tuned dense GPT on TPU


@dataclasses.dataclass(frozen=True)
class Chip:
    """One accelerator generation: its device kind (the key of ``mfu.PEAK_FLOPS``) and memory per chip."""

    kind: str
    hbm: float  # bytes per chip (GPUs: what JAX may use of it, see GPU_MEMORY_FRACTION)
    cores_in_name: int = 1  # v4/v5p type names count TensorCores (2 per chip); v5e/v6e names count chips
    megacore: bool = False  # the two TensorCores of a chip act as one JAX device

    @property
    def peak(self) -> float:
        return PEAK_FLOPS[self.kind]


# Public spec sheets (reference/training-frameworks.md section 6).
TPUS = {
    "v4": Chip("TPU v4", 32 * GiB, cores_in_name=2, megacore=True),
    "v5e": Chip("TPU v5 lite", 16 * GiB),
    "v5p": Chip("TPU v5p", 95 * GiB, cores_in_name=2, megacore=True),
    "v6e": Chip("TPU v6 lite", 32 * GiB),
}
TPU_ALIASES = {"v5litepod": "v5e", "v6litepod": "v6e"}  # gcloud's accelerator-type names
# JAX preallocates this share of a GPU's memory (XLA_PYTHON_CLIENT_MEM_FRACTION's default): the most a step may use.
GPU_MEMORY_FRACTION = 0.75
GPUS = {
    "h100": Chip("NVIDIA H100", 80e9 * GPU_MEMORY_FRACTION),
    "h200": Chip("NVIDIA H200", 141e9 * GPU_MEMORY_FRACTION),
    "a100": Chip("NVIDIA A100", 80e9 * GPU_MEMORY_FRACTION),
}


@dataclasses.dataclass(frozen=True)
class Target:
    """Where a config is meant to run: a TPU slice, some GPUs of one kind, or this machine's CPU."""

    spec: str  # as written: v5e-8, v5e:2x4, gpu:h100x8, cpu
    platform: str  # tpu | gpu | cpu
    chips: int
    chip: Chip | None = None  # None: a CPU
    topology: str = ""  # TPUs: libtpu's topology name (v5e:2x4)

    @property
    def label(self) -> str:
        return f"{self.spec} ({self.topology})" if self.topology and self.topology != self.spec else self.spec


def _tpu_dims(chips: int, n_axes: int) -> tuple[int, ...]:
    """A slice's chip grid as Cloud TPU lays it out: 4 -> 2x2 (v5e) or 2x2x1 (v4), 8 -> 2x4 or 2x2x2, ..."""
    if chips == 1 and n_axes == 2:
        return (1, 1)
    if chips < 4 or chips & (chips - 1):
        raise ConfigError(f"no standard TPU slice of {chips} chips: give the topology as e.g. v5e:2x4 or v4:2x2x2")
    dims = [2, 2] + [1] * (n_axes - 2)
    while math.prod(dims) < chips:
        smallest = min(dims)
        i = max(j for j, d in enumerate(dims) if d == smallest)  # ties: the last axis grows first (2x2x2 -> 2x2x4)
        dims[i] *= 2
    return tuple(dims)


def parse_hardware(spec: str) -> Target:
    """A hardware name -> Target. TPU type names as gcloud writes them (v4-8 is 4 chips: v4 and v5p count
    TensorCores; v5e-8 is 8 chips), raw topologies (v5e:2x4), ``gpu:h100x8`` (or ``h100x8``), ``cpu``."""
    s = spec.strip().lower()
    if not re.fullmatch(HARDWARE_PATTERN, s):
        raise ConfigError(f"hardware {spec!r}: expected cpu, a TPU type (v4-8, v5e-8, v5p-16, v6e-8), a topology "
                          f"(v5e:2x4, v4:2x2x2) or gpu:KINDxN ({', '.join(GPUS)})")
    if s == "cpu":
        return Target(spec, "cpu", 1)
    tpu = re.fullmatch(r"([a-z]+\d[a-z]*)([-:])(.+)", s)
    if tpu is None:  # gpu:h100x8, h100x8, h100
        kind, count = re.fullmatch(r"(?:gpu:)?([a-z]+\d*)(?:x(\d+))?", s).groups()
        if kind not in GPUS:
            raise ConfigError(f"hardware {spec!r}: unknown GPU {kind!r}; known: {', '.join(GPUS)}")
        return Target(spec, "gpu", int(count or 1), GPUS[kind])
    generation, sep, rest = tpu.groups()
    generation = TPU_ALIASES.get(generation, generation)
    if generation not in TPUS:
        raise ConfigError(f"hardware {spec!r}: unknown TPU generation {generation!r}; known: {', '.join(TPUS)}")
    chip = TPUS[generation]
    n_axes = 3 if chip.megacore else 2  # v4/v5p are 3-D tori
    if sep == ":":
        dims = tuple(int(d) for d in rest.split("x"))
        if len(dims) != n_axes:
            raise ConfigError(f"hardware {spec!r}: a {generation} topology has {n_axes} axes (e.g. "
                              f"{generation}:{'x'.join(map(str, _tpu_dims(4, n_axes)))})")
    else:
        if int(rest) % chip.cores_in_name:
            raise ConfigError(f"hardware {spec!r}: {generation} type names count TensorCores, 2 per chip")
        dims = _tpu_dims(int(rest) // chip.cores_in_name, n_axes)
    return Target(spec, "tpu", math.prod(dims), chip, f"{generation}:{'x'.join(map(str, dims))}")


@contextlib.contextmanager
def _quiet_stderr() -> Iterator[None]:
    """Sends file descriptor 2 (where libtpu's C++ logging writes) to a file; replays it if the body raises."""
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as log:
        os.dup2(log.fileno(), 2)
        try:
            yield
        except BaseException:
            os.dup2(saved, 2)
            log.seek(0)
            sys.stderr.write(log.read().decode(errors="replace"))
            raise
        finally:
            os.dup2(saved, 2)
            os.close(saved)


class NoTPUCompiler(RuntimeError):
    """libtpu is missing (or does not know the topology): TPU targets cannot be compiled in this environment."""


def topology_devices(target: Target) -> list[Any]:
    """The compile-only devices of a TPU slice (needs libtpu: ``make .venv-tpu``); no TPU is touched."""
    from jax.experimental import topologies  # with libtpu only; jax.experimental is not imported by default

    # Compile-only: no chip is opened, so several processes may load libtpu at once (by default the first holds a
    # lock file), and libtpu need not ask a cloud metadata server what machine this is.
    os.environ.setdefault("ALLOW_MULTIPLE_LIBTPU_LOAD", "1")
    os.environ.setdefault("TPU_SKIP_MDS_QUERY", "1")
    bounds = (1, 1, 1) if target.chips == 1 else (2, 2, 1)  # chips per host, as Cloud TPU hosts hold them
    try:
        with _quiet_stderr():  # libtpu's start-up warnings about the TPU this machine does not have
            desc = topologies.get_topology_desc(
                topology_name=target.topology, platform="tpu", chip_config_name="megacore" if target.chip.megacore
                else "default", chips_per_host_bounds=bounds, num_slices=1, wrap=(False, False, False))
    except Exception as err:  # no libtpu: jax raises RuntimeError or JaxRuntimeError depending on the path
        raise NoTPUCompiler(f"cannot describe TPU topology {target.topology}: {str(err).splitlines()[0]}; compiling "
                            "for TPU needs libtpu (`make setup-tpu`, then .venv-tpu/bin/flaxgpt preflight)") from err
    return list(desc.devices)


# The arrays of one step's batch, by the batch-key contract the stage reads: trailing shape after [A, b] (T is
# data.seq_len) and dtype. Token rows per batch row: 2 for comparisons (both responses).
_LM = {k: (("T",), jnp.float32 if k == "weights" else jnp.int32) for k in BATCH_KEYS}
_PAIRS = {"tokens": ((2, "T"), jnp.int32), "mask": ((2, "T"), jnp.float32), "last": ((2,), jnp.int32),
          "label": ((), jnp.float32), "ref_logp": ((2,), jnp.float32)}
_ROLLOUT = {k: (("T",), jnp.int32 if k == "tokens" else jnp.float32) for k in ppo.KEYS}


def step_batch(config: ml_collections.ConfigDict, stage: Stage) -> dict[str, tuple[tuple[int, ...], Any]]:
    """{key: (shape [A, b, ...], dtype)} of one compiled step's batch (what the loop puts on devices)."""
    t, seq = config.train, config.data.seq_len
    if set(stage.batch_keys) == set(ppo.KEYS):  # rollout minibatches: one update of ppo.minibatch rows per step
        table, lead = _ROLLOUT, (1, config.ppo.minibatch)
    elif set(PAIR_KEYS) <= set(stage.batch_keys):
        table, lead = _PAIRS, (t.grad_accum, t.batch_size // t.grad_accum)
    else:
        table, lead = _LM, (t.grad_accum, t.batch_size // t.grad_accum)
    unknown = set(stage.batch_keys) - set(table)
    if unknown:
        raise ConfigError(f"preflight does not know the shape of batch keys {sorted(unknown)} of train.stage="
                          f"{stage.name}")
    return {k: (lead + tuple(seq if d == "T" else d for d in table[k][0]), table[k][1]) for k in stage.batch_keys}


def _token_array(batch: dict[str, jax.ShapeDtypeStruct], seq_len: int) -> jax.ShapeDtypeStruct:
    """The batch's array of token rows ([A, b, (2,) T]): the largest whose last axis is the sequence."""
    return max((x for x in batch.values() if x.shape[-1] == seq_len), key=lambda x: math.prod(x.shape))


@dataclasses.dataclass
class Report:
    """One config on one target: memory per device (bytes), whether it fits, FLOPs and time estimates."""

    config: str
    hardware: str
    platform: str
    chips: int
    mesh: dict[str, int]
    method: str  # "compiled" (XLA's memory analysis for the TPU) or "analytic estimate"
    arguments: float  # per device: the state's shards and the batch
    temporaries: float
    outputs: float  # beyond those aliased to the donated state
    total: float
    memory: float  # what one device has (GPUs: JAX's default share)
    fits: bool
    model_flops: float  # per step (one optimizer update), the MFU numerator
    hardware_flops: float  # model FLOPs plus what remat recomputes
    peak: float  # FLOP/s of all chips together (0: unknown, a CPU)
    mfu: float  # assumed MFU of step_time
    params: int
    tokens_per_step: int
    note: str = ""
    estimate: dict[str, float] = dataclasses.field(default_factory=dict)  # the analytic split, for comparison

    @property
    def floor_time(self) -> float:
        """Seconds per step at 100% of peak (hardware FLOPs): no run can be faster."""
        return self.hardware_flops / self.peak if self.peak else math.nan

    @property
    def step_time(self) -> float:
        """Seconds per step at the assumed MFU."""
        return self.model_flops / (self.peak * self.mfu) if self.peak else math.nan

    @property
    def mfu_ceiling(self) -> float:
        """Model / hardware FLOPs: the MFU of a step that runs at 100% of peak (below 1 with remat)."""
        return self.model_flops / self.hardware_flops

    def to_dict(self) -> dict[str, Any]:
        return {**dataclasses.asdict(self), "floor_time": self.floor_time, "step_time": self.step_time,
                "mfu_ceiling": self.mfu_ceiling}


def _per_device(tree: Any) -> float:
    """Bytes one device holds of a tree of sharded ShapeDtypeStructs."""
    return float(sum(math.prod(x.sharding.shard_shape(x.shape)) * x.dtype.itemsize for x in jax.tree.leaves(tree)))


def remat_recompute(cfg: ModelConfig, seq_len: int) -> float:
    """Training FLOPs per token that the remat policy adds by recomputing forward work (nanoGPT's terms: 2N of
    the 6N is the forward, 4LHQT of the 12LHQT): 'full' redoes the whole forward of every block, 'dots_no_batch'
    the attention matmuls; 'dots' saves every matmul (it recomputes only elementwise work)."""
    blocks = cfg.n_layer * (4 * cfg.d_model**2 + 2 * cfg.d_model * cfg.ffn)  # block weights (no biases/norms)
    attention = 4 * cfg.n_layer * cfg.n_head * cfg.head_dim * seq_len
    return {"full": 2 * blocks + attention, "dots_no_batch": attention}.get(cfg.remat, 0.0)


def activation_bytes(cfg: ModelConfig, rows: int, seq_len: int, flash: bool) -> dict[str, float]:
    """Bytes one device holds for the backward pass of ``rows`` sequences (one micro-batch), by remat policy.

    Per block and token, without remat: 9 [D] and 2 [F] tensors in the compute dtype (layer norms in/out, QKV,
    attention output, projections, MLP in/out; Korthikanti et al.'s 34·D bytes in bf16 for F = 4D), plus the
    attention matrix: float32 logits and probabilities [H, T] (XLA's attention), or a float32 log-sum-exp per head
    (flash). 'full' keeps each block's input and recomputes one block at a time; 'dots' keeps every matmul output
    (float32 attention logits included), 'dots_no_batch' all but the attention matmuls' (recomputed per block).
    Returns ``activations`` (kept through the backward pass), ``recompute`` (one block's, live while that block's
    backward runs) and ``logits`` (the LM head's and their float32 gradient).
    """
    cb = jnp.dtype(DTYPES[cfg.dtype]).itemsize
    tokens, D, F, L, H = rows * seq_len, cfg.d_model, cfg.ffn, cfg.n_layer, cfg.n_head
    attn = rows * H * seq_len * (4 if flash else seq_len * 8)
    block = tokens * (9 * D + 2 * F) * cb + attn
    carry = tokens * D * cb  # each block's input, saved by the layer scan
    saved, recompute = {
        "none": (L * block, 0),
        "full": (L * carry, block),
        "dots": (L * (carry + tokens * (6 * D + F) * cb + (attn if flash else rows * H * seq_len**2 * 4)), 0),
        "dots_no_batch": (L * (carry + tokens * (5 * D + F) * cb), attn),
    }[cfg.remat]
    return {"activations": float(saved), "recompute": float(recompute),
            "logits": float(tokens * cfg.vocab_padded * (cb + 4))}


@dataclasses.dataclass(frozen=True)
class Plan:
    """A config's step, ready to compile or estimate: the built training pieces and one step's batch."""

    config: ml_collections.ConfigDict
    stage: Stage
    training: Training
    batch: dict[str, jax.ShapeDtypeStruct]  # sharded over the mesh's ('data', 'fsdp') axes

    @property
    def mesh_sizes(self) -> dict[str, int]:
        return dict(zip(MESH_AXES, self.training.mesh.axis_sizes, strict=True))


def plan(config: ml_collections.ConfigDict, mesh: Any) -> Plan:
    """The training pieces of ``config`` over ``mesh`` (a Mesh of TPU devices, or an AbstractMesh) and its step's
    batch; ValueError naming the key when the micro-batch does not split over the data-parallel devices."""
    stage = get_stage(config.train.stage)
    training = build_training(config, stage, mesh)
    shapes = step_batch(config, stage)
    data_parallel = mesh.shape["data"] * mesh.shape["fsdp"]
    rows = next(iter(shapes.values()))[0][1]
    if rows % data_parallel:
        raise ValueError(f"a step's micro-batch of {rows} rows does not split over the {data_parallel} data-parallel "
                         "devices (mesh.data x mesh.fsdp): change train.batch_size, train.grad_accum or the mesh")
    batch = {k: jax.ShapeDtypeStruct(s, d, sharding=batch_sharding(mesh, len(s), leading=1))
             for k, (s, d) in shapes.items()}
    return Plan(config, stage, training, batch)


def estimate(p: Plan, flash: bool = False) -> dict[str, float]:
    """Analytic bytes per device: state (exact shards), batch, gradients, activations and logits."""
    c = p.config
    params = _per_device(p.training.abstract_state.params)
    state = _per_device(p.training.abstract_state)
    tokens = _token_array(p.batch, c.data.seq_len)
    rows = math.prod(tokens.sharding.shard_shape(tokens.shape)[1:-1])  # one micro-batch's token rows per device
    acts = activation_bytes(p.training.model_cfg, rows, c.data.seq_len, flash)
    # Gradients in the parameters' dtype: with micro-batches, the running sum and one micro-batch's. The optimizer
    # computes the new state (params, m, v) before it replaces the donated one.
    grads = params * (2 if c.train.grad_accum > 1 else 1)
    return {"state": state, "batch": _per_device(p.batch), "gradients": grads, "update": state, **acts}


def _flops(p: Plan, tokens: int) -> tuple[float, float, int]:
    """(model FLOPs, hardware FLOPs, parameters) of one step of ``tokens`` tokens."""
    cfg, seq = p.training.model_cfg, p.config.data.seq_len
    n_params = sum(x.size for x in jax.tree.leaves(p.training.abstract_state.params))
    n_model = n_params - 2 * (cfg.d_model + 1)  # without the value and reward heads, as the loop counts
    per_token = flops_per_token_nanogpt(cfg, seq, n_model)
    return per_token * tokens, (per_token + remat_recompute(cfg, seq)) * tokens, n_params


def _report(name: str, target: Target, p: Plan, mfu: float, **memory: Any) -> Report:
    tokens = math.prod(_token_array(p.batch, p.config.data.seq_len).shape)
    model_flops, hw_flops, n_params = _flops(p, tokens)
    peak = target.chip.peak * target.chips if target.chip else 0.0
    return Report(config=name, hardware=target.label, platform=target.platform, chips=target.chips,
                  mesh=p.mesh_sizes, model_flops=model_flops, hardware_flops=hw_flops, peak=peak, mfu=mfu,
                  params=int(n_params), tokens_per_step=tokens, **memory)


_SIZE = r"([\d.]+)\s*([KMGT]?)i?B?"
_UNITS = {"": 1, "K": 2**10, "M": 2**20, "G": 2**30, "T": 2**40}


def _bytes(number: str, unit: str) -> float:
    return float(number) * _UNITS[unit]


def parse_oom(message: str) -> dict[str, float]:
    """The numbers of XLA:TPU's out-of-memory compile error: the HBM it needs, and the parts it names."""
    out = {}
    if m := re.search(rf"Used {_SIZE} of {_SIZE} hbm", message):
        out["total"] = _bytes(*m.group(1, 2))
    if m := re.search(rf"HLO temporaries \({_SIZE}\) exceeds? available HBM", message):
        out["temporaries"] = _bytes(*m.group(1, 2))
    for part in ("program", "arguments", "output", "temporaries"):  # "Total hbm usage >= ...: program 29.07G ..."
        if part not in out and (m := re.search(rf"\b{part} {_SIZE}", message)):
            out[part] = _bytes(*m.group(1, 2))
    return out


def compile_tpu(name: str, config: ml_collections.ConfigDict, target: Target, mfu: float = DEFAULT_MFU) -> Report:
    """Compiles ``config``'s real train step for the TPU slice ``target``; per-chip memory from XLA."""
    devices = topology_devices(target)
    p = plan(config, make_mesh(config.mesh, devices))
    t = p.training
    step = p.stage.make_step(t.model, t.tx, t.schedule, config)
    compiled = compile_step(step, t.shardings, {k: v.sharding for k, v in p.batch.items()}, t.mesh, t.rules)
    guess = estimate(p)
    try:
        mem = compiled.lower(t.abstract_state, p.batch).compile().memory_analysis()
    except Exception as err:  # XLA's JaxRuntimeError: only RESOURCE_EXHAUSTED is an answer, the rest a failure
        if "RESOURCE_EXHAUSTED" not in str(err):
            raise
        oom = parse_oom(str(err))
        args = oom.get("arguments", _per_device(t.abstract_state) + _per_device(p.batch))
        temps = oom.get("temporaries", max(oom.get("total", 0.0) - args, 0.0))
        return _report(name, target, p, mfu, method="compiled", arguments=args, temporaries=temps, outputs=0.0,
                       total=oom.get("total", args + temps), memory=target.chip.hbm, fits=False,
                       note="does not fit: " + _first_line(str(err), "RESOURCE_EXHAUSTED"), estimate=guess)
    outputs = mem.output_size_in_bytes - mem.alias_size_in_bytes  # the donated state is updated in place
    total = mem.argument_size_in_bytes + outputs + mem.temp_size_in_bytes + mem.generated_code_size_in_bytes
    return _report(name, target, p, mfu, method="compiled", arguments=float(mem.argument_size_in_bytes),
                   temporaries=float(mem.temp_size_in_bytes), outputs=float(outputs), total=float(total),
                   memory=target.chip.hbm, fits=total <= target.chip.hbm, estimate=guess)


def _first_line(message: str, marker: str) -> str:
    line = next((ln for ln in message.splitlines() if marker in ln), message.splitlines()[0])
    return line.strip()[:300]


def host_memory() -> float:
    """This machine's RAM in bytes."""
    return float(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES"))


def estimate_report(name: str, config: ml_collections.ConfigDict, target: Target,
                    mfu: float = DEFAULT_MFU) -> Report:
    """The analytic estimate for GPUs (per GPU under the config's mesh) and CPUs (against this machine's RAM)."""
    sizes = mesh_shape([config.mesh.data, config.mesh.fsdp, config.mesh.tensor], target.chips)
    p = plan(config, AbstractMesh(sizes, MESH_AXES))
    flash = target.platform == "gpu" and config.model.attention == "cudnn"
    parts = estimate(p, flash=flash)
    args = parts["state"] + parts["batch"]
    # All at once, to err on the safe side: XLA may free the head's logits before a block's recompute. Against
    # XLA:TPU's compiled numbers (GPT-2 small on v5e:2x2 under each remat policy and with micro-batches; small_350m
    # on v5e:2x4) the total comes out from 13% under to 48% over ('full' remat, where XLA reuses the logits' memory).
    temps = sum(parts[k] for k in ("gradients", "update", "activations", "recompute", "logits"))
    memory = target.chip.hbm if target.chip else host_memory()
    note = "" if target.chip else f"runs on any machine with {(args + temps) / GiB:.1f} GiB of free RAM"
    return _report(name, target, p, mfu, method="analytic estimate", arguments=args, temporaries=temps, outputs=0.0,
                   total=args + temps, memory=memory, fits=args + temps <= memory, note=note, estimate=parts)


def preflight(name: str, config: ml_collections.ConfigDict, hardware: str, mfu: float = DEFAULT_MFU) -> Report:
    """``config`` (named ``name``) on ``hardware`` (a ``run.hardware`` value): compiled for TPUs, else estimated."""
    target = parse_hardware(hardware)
    if target.platform == "tpu":
        return compile_tpu(name, config, target, mfu)
    return estimate_report(name, config, target, mfu)
