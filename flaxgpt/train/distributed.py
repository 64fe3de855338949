"""Joining a multi-process job (several hosts, or several processes on one host) before any device is touched.

A multi-host run starts one ``flaxgpt train`` per host (or per GPU group). How each process learns the
coordinator's address, the number of processes and its own id depends on where it runs; ``join_spec`` reads
them, first match wins:

  1. explicit: ``--coordinator HOST:PORT --num-processes N --process-id I`` (or the ``dist.*`` config keys);
  2. JAX's variables: ``JAX_COORDINATOR_ADDRESS`` (+ ``JAX_COORDINATOR_PORT``), ``JAX_NUM_PROCESSES``,
     ``JAX_PROCESS_ID`` (JAX itself reads only the address);
  3. SLURM (``srun``): ``SLURM_NTASKS``, ``SLURM_PROCID``, the coordinator is the first host of
     ``SLURM_STEP_NODELIST``/``SLURM_JOB_NODELIST`` on port 61000 + job id mod 4096 (one port per job);
  4. Kubernetes: an indexed Job or JobSet (``JOB_COMPLETION_INDEX``; with ``JOBSET_NAME`` the coordinator is
     pod 0's DNS name ``<jobset>-<replicated job>-0-0.<jobset>``) or torchrun-style variables (``MASTER_ADDR``,
     ``MASTER_PORT``, ``WORLD_SIZE``, ``RANK``), with the count from ``WORLD_SIZE``/``NNODES``/``JAX_NUM_PROCESSES``;
  5. Open MPI (``OMPI_COMM_WORLD_SIZE``/``_RANK``) with a coordinator from ``JAX_COORDINATOR_ADDRESS``/``MASTER_ADDR``;
  6. Cloud TPU VMs (``TPU_WORKER_HOSTNAMES`` lists several workers): JAX finds everything itself.

An environment that says "several processes" without saying how to join is an error naming what is missing,
never N independent runs writing one run directory.
"""

from __future__ import annotations

import dataclasses
import os
import re
from collections.abc import Mapping

import jax

DEFAULT_PORT = 8476  # JAX's default coordinator port


class JoinError(ValueError):
    """The environment or flags describe several processes but not how they find each other."""


@dataclasses.dataclass(frozen=True)
class JoinSpec:
    """How this process joins: coordinator "host:port", process count and id (None: JAX detects them), and where
    they came from (for messages)."""

    coordinator: str | None
    num_processes: int | None
    process_id: int | None
    source: str


def _int(env: Mapping[str, str], name: str) -> int | None:
    value = env.get(name, "").strip()
    if not value:
        return None
    try:
        return int(value)
    except ValueError:
        raise JoinError(f"environment variable {name}={value!r} is not an integer") from None


def _with_port(host: str, port: int | str | None) -> str:
    host = host.strip()
    if re.search(r":\d+$", host) and not host.endswith("]"):
        return host
    return f"{host}:{port or DEFAULT_PORT}"


def first_host(nodelist: str) -> str:
    """The first host of a SLURM node list: 'node[03-05,9],gpu1' -> 'node03'."""
    entry = re.match(r"[^,\[]*(\[[^\]]*\])?[^,]*", nodelist.strip()).group(0)
    bracket = re.search(r"\[([^\]]*)\]", entry)
    if not bracket:
        return entry
    first = re.split(r"[,-]", bracket.group(1))[0]
    return entry[:bracket.start()] + first + entry[bracket.end():]


def _complete(spec: JoinSpec, missing_hint: str) -> JoinSpec:
    """Checks a spec that names several processes has a coordinator, a count and an id in range."""
    n, i = spec.num_processes, spec.process_id
    if n is None or n < 1:
        raise JoinError(f"{spec.source}: the number of processes is not set ({missing_hint})")
    if i is None:
        raise JoinError(f"{spec.source}: this process's id is not set ({missing_hint})")
    if not 0 <= i < n:
        raise JoinError(f"{spec.source}: process id {i} is not in [0, {n})")
    if n > 1 and not spec.coordinator:
        raise JoinError(f"{spec.source}: {n} processes but no coordinator address ({missing_hint})")
    return spec


def join_spec(env: Mapping[str, str] | None = None, *, coordinator: str = "", num_processes: int = 0,
              process_id: int = -1) -> JoinSpec | None:
    """How this process joins its job (module docstring), or None for a single-process run.

    Raises JoinError when the flags or environment describe several processes but leave out how to join.
    """
    env = os.environ if env is None else env
    if coordinator or num_processes > 0 or process_id >= 0:
        spec = JoinSpec(_with_port(coordinator, None) if coordinator else None, num_processes or None,
                        process_id if process_id >= 0 else None, "--coordinator/--num-processes/--process-id")
        return _complete(spec, "give all three, or dist.coordinator, dist.num_processes, dist.process_id")
    if any(env.get(k) for k in ("JAX_COORDINATOR_ADDRESS", "JAX_NUM_PROCESSES", "JAX_PROCESS_ID")):
        address = env.get("JAX_COORDINATOR_ADDRESS", "")
        spec = JoinSpec(_with_port(address, env.get("JAX_COORDINATOR_PORT")) if address else None,
                        _int(env, "JAX_NUM_PROCESSES"), _int(env, "JAX_PROCESS_ID"), "JAX_* environment")
        return _complete(spec, "set JAX_COORDINATOR_ADDRESS=host:port, JAX_NUM_PROCESSES and JAX_PROCESS_ID")
    slurm_n = _int(env, "SLURM_STEP_NUM_TASKS") or _int(env, "SLURM_NTASKS")
    if slurm_n and slurm_n > 1:
        nodes = env.get("SLURM_STEP_NODELIST") or env.get("SLURM_JOB_NODELIST") or ""
        port = 61000 + (_int(env, "SLURM_JOB_ID") or 0) % 4096
        spec = JoinSpec(_with_port(first_host(nodes), port) if nodes else None, slurm_n, _int(env, "SLURM_PROCID"),
                        "SLURM environment")
        return _complete(spec, "run under srun, which sets SLURM_PROCID and SLURM_STEP_NODELIST")
    index = _int(env, "JOB_COMPLETION_INDEX")
    world = _int(env, "WORLD_SIZE") or _int(env, "NNODES")
    if (index is not None and (index > 0 or world)) or (world and world > 1):
        address = env.get("MASTER_ADDR", "")
        if not address and env.get("JOBSET_NAME"):
            jobset = env["JOBSET_NAME"]
            address = f"{jobset}-{env.get('REPLICATED_JOB_NAME', 'workers')}-0-0.{jobset}"
        spec = JoinSpec(_with_port(address, env.get("MASTER_PORT")) if address else None, world,
                        index if index is not None else _int(env, "RANK"), "Kubernetes/torchrun environment")
        if spec.num_processes == 1:
            return None
        return _complete(spec, "set WORLD_SIZE (or NNODES) and MASTER_ADDR, or JAX_COORDINATOR_ADDRESS")
    mpi_n = _int(env, "OMPI_COMM_WORLD_SIZE")
    if mpi_n and mpi_n > 1:
        address = env.get("MASTER_ADDR", "")
        spec = JoinSpec(_with_port(address, env.get("MASTER_PORT")) if address else None, mpi_n,
                        _int(env, "OMPI_COMM_WORLD_RANK"), "Open MPI environment")
        return _complete(spec, "set MASTER_ADDR (the host of rank 0) or JAX_COORDINATOR_ADDRESS")
    if len([w for w in env.get("TPU_WORKER_HOSTNAMES", "").split(",") if w]) > 1:
        return JoinSpec(None, None, None, "Cloud TPU VM (TPU_WORKER_HOSTNAMES)")
    return None


def join(spec: JoinSpec | None) -> bool:
    """Joins the job ``spec`` describes (call before any device is used); returns whether it did."""
    if spec is None or spec.num_processes == 1:
        return False
    # Processes on CPUs exchange collectives through gloo (JAX's CPU client has none by default); no effect
    # on GPU or TPU devices.
    jax.config.update("jax_cpu_collectives_implementation", "gloo")
    if spec.coordinator is None:
        jax.distributed.initialize()
    else:
        jax.distributed.initialize(spec.coordinator, spec.num_processes, spec.process_id)
    if spec.num_processes is not None and jax.process_count() != spec.num_processes:
        raise JoinError(f"{spec.source}: joined {jax.process_count()} processes, expected {spec.num_processes}")
    return True
