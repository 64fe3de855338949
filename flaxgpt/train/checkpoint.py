"""Checkpoints: one orbax CheckpointManager per run directory, checksummed, restored all or nothing.

Each checkpoint step holds five items: ``state`` (the TrainState, sharded arrays), ``data`` (the data
iterator's position), ``config`` (the resolved run config), ``tokenizer`` (its metadata) and ``meta`` (the
devices and processes that wrote it). Saves are asynchronous; orbax writes to a temporary folder and renames it
on commit, and just before that rename process 0 writes ``checksums.json`` (size and CRC-32 of every file) into
it, so a checkpoint and its checksums appear together.

Restoring tries the newest checkpoint first and tells two failures apart by evidence, never by an error's
wording:
  * a checkpoint whose saved tree (paths, shapes, dtypes, read from orbax's metadata) differs from the one the
    config builds is a *config change*: ``CheckpointMismatch`` names the differing leaves and config keys, and
    nothing is touched;
  * a checkpoint with a missing, truncated or altered file (checksums), unreadable metadata, or files that fail
    to load is *damaged*: it is set aside (renamed ``<step>.corrupt`` by process 0) once an older one restores,
    and when none restores ``CheckpointsDamaged`` lists every one with its reason and nothing is moved.
The data iterator moves only after the state restored, and goes back to where it was if anything fails.

Every process runs the same global data iterator (``flaxgpt.train.stages``), so each process's data file holds
the same position: a run restored on another number of processes reads any of them.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import shutil
import zlib
from pathlib import Path
from typing import Any

import grain
import jax
import orbax.checkpoint as ocp
from etils import epath
from jax.experimental import multihost_utils

log = logging.getLogger("flaxgpt")

CHECKSUMS_FILE = "checksums.json"
_TMP_MARK = ".orbax-checkpoint-tmp"  # orbax's in-progress folder: <step>.orbax-checkpoint-tmp[-<time>]
_NOT_SUMMED = {CHECKSUMS_FILE, "commit_success.txt", "_CHECKPOINT_METADATA"}  # orbax may rewrite these at commit
_CONFIG_NOT_STATE = ("run.", "checkpoint.", "dist.", "evals.", "train.steps", "train.log_every", "train.eval_")


class CheckpointMismatch(ValueError):
    """A checkpoint is intact but holds a different tree than the config builds (model or optimizer changed)."""


class CheckpointsDamaged(RuntimeError):
    """No checkpoint of the run restores; the message lists each with its reason (nothing was moved or deleted)."""


def _file_sums(folder: Path) -> dict[str, list[int]]:
    """relative path -> [size, crc32] of every file under ``folder`` that orbax does not rewrite at commit."""
    sums = {}
    for path in sorted(p for p in folder.rglob("*") if p.is_file() and p.name not in _NOT_SUMMED):
        crc = 0
        with path.open("rb") as f:
            while chunk := f.read(1 << 22):
                crc = zlib.crc32(chunk, crc)
        sums[path.relative_to(folder).as_posix()] = [path.stat().st_size, crc]
    return sums


def _write_checksums(checkpoints: Path) -> None:
    """orbax's post-finalization callback: checksums into the step's temporary folder, before its rename."""
    if jax.process_index() != 0:
        return
    for tmp in checkpoints.glob(f"*{_TMP_MARK}*"):  # one save is in flight at a time
        (tmp / CHECKSUMS_FILE).write_text(json.dumps({"algorithm": "crc32", "files": _file_sums(tmp)}))


def verify_checksums(step_dir: Path) -> str | None:
    """None when every file listed in ``step_dir``'s checksums is there with its size and CRC, else the reason.

    A checkpoint without checksums (written before they existed, or by `flaxgpt convert import`) passes.
    """
    listed = step_dir / CHECKSUMS_FILE
    if not listed.exists():
        return None
    try:
        expected = json.loads(listed.read_text())["files"]
    except (ValueError, KeyError, TypeError) as err:
        return f"{CHECKSUMS_FILE} is unreadable ({err})"
    found = _file_sums(step_dir)
    for name, (size, crc) in expected.items():
        if name not in found:
            return f"{name} is missing"
        if found[name][0] != size:
            return f"{name} has {found[name][0]} bytes, {size} were written (truncated or overwritten)"
        if found[name][1] != crc:
            return f"{name} does not match its checksum (altered bytes)"
    return None


def make_manager(directory: str | Path, *, keep: int) -> ocp.CheckpointManager:
    """A CheckpointManager over ``directory/checkpoints`` keeping the last ``keep`` steps (checksummed saves).

    Saves always go through orbax's async checkpointer: its commit callback writes the checksums (``save``'s
    ``wait`` makes a save synchronous).
    """
    checkpoints = Path(directory).absolute() / "checkpoints"
    options = ocp.CheckpointManagerOptions(
        max_to_keep=keep, enable_async_checkpointing=True, create=True, cleanup_tmp_directories=True,
        async_options=ocp.AsyncOptions(post_finalization_callback=lambda: _write_checksums(checkpoints)))
    return ocp.CheckpointManager(checkpoints, options=options)


def topology() -> dict[str, Any]:
    """The processes and devices of this run, saved with each checkpoint as its ``meta`` item."""
    return {"process_count": jax.process_count(), "device_count": jax.device_count(),
            "platform": jax.devices()[0].platform}


def save(manager: ocp.CheckpointManager, step: int, state: Any, data_iter: Any, config: dict,
         tokenizer: dict, *, force: bool = False, wait: bool = False) -> bool:
    """Starts saving ``step`` (returns at once unless ``wait``); returns whether a save was started."""
    items = dict(state=ocp.args.StandardSave(state), config=ocp.args.JsonSave(config),
                 tokenizer=ocp.args.JsonSave(tokenizer), meta=ocp.args.JsonSave(topology()))
    if data_iter is not None:
        items["data"] = grain.checkpoint.CheckpointSave(data_iter)
    started = manager.save(step, args=ocp.args.Composite(**items), force=force)
    if wait:
        manager.wait_until_finished()
    return started


def _key_name(key: Any) -> str:
    for attr in ("key", "name", "idx"):
        if hasattr(key, attr):
            return str(getattr(key, attr))
    return str(key)


def _leaf_table(tree: Any) -> dict[str, tuple[tuple[int, ...], str]]:
    """'/'-joined path -> (shape, dtype) of every array leaf; attribute, dict and index keys look alike, so a
    saved tree (orbax writes dataclasses and named tuples as dicts) compares with the one a config builds."""
    leaves = jax.tree_util.tree_flatten_with_path(tree)[0]
    return {"/".join(_key_name(k) for k in path): (tuple(leaf.shape), str(jax.numpy.dtype(leaf.dtype)))
            for path, leaf in leaves if leaf is not None}


def _flat_config(values: Any, prefix: str = "") -> dict[str, Any]:
    if not isinstance(values, dict):
        return {prefix[:-1]: values}
    out = {}
    for k, v in values.items():
        out.update(_flat_config(v, f"{prefix}{k}."))
    return out


def config_changes(saved: dict, current: dict) -> list[str]:
    """``key: saved -> now`` for config keys that shape the state (not run, checkpoint or logging keys)."""
    a, b = _flat_config(saved), _flat_config(current)
    keys = sorted(k for k in set(a) | set(b) if not k.startswith(_CONFIG_NOT_STATE))
    return [f"{k}: {a.get(k)!r} -> {b.get(k)!r}" for k in keys if _as_json(a.get(k)) != _as_json(b.get(k))]


def _as_json(value: Any) -> Any:
    return json.loads(json.dumps(value))  # tuples and lists alike


def tree_differences(step_dir: Path, abstract_state: Any) -> list[str]:
    """How the state saved in ``step_dir`` differs from ``abstract_state`` (paths, shapes, dtypes); [] if alike.

    Raises when orbax's metadata cannot be read (damage)."""
    saved = _leaf_table(ocp.StandardCheckpointHandler().metadata(epath.Path(step_dir / "state")).tree)
    built = _leaf_table(abstract_state)
    diffs = [f"{p}: saved {saved[p][0]} {saved[p][1]}, config builds {built[p][0]} {built[p][1]}"
             for p in sorted(set(saved) & set(built)) if saved[p] != built[p]]
    diffs += [f"{p}: in the checkpoint, not built by this config" for p in sorted(set(saved) - set(built))]
    diffs += [f"{p}: built by this config, not in the checkpoint" for p in sorted(set(built) - set(saved))]
    return diffs


@dataclasses.dataclass
class Restored:
    """A restored checkpoint: its step, the state, and its folder."""

    step: int
    state: Any
    path: Path


def _restore_data(step_dir: Path, data_iter: Any) -> None:
    """Moves ``data_iter`` to the position saved in ``step_dir/data``: this process's file, or (after a change
    in the number of processes) any process's, which all hold the same global position."""
    folder = step_dir / "data"
    own = folder / f"process_{jax.process_index()}-of-{jax.process_count()}.json"
    files = [own] if own.exists() else sorted(folder.glob("process_*-of-*.json"))
    if not files:
        raise FileNotFoundError(f"{folder} holds no data-iterator state")
    data_iter.set_state(json.loads(files[0].read_text()))
    if hasattr(data_iter, "start_prefetch"):  # as grain's own checkpoint handler does after set_state
        data_iter.start_prefetch()


def _attempt(manager: ocp.CheckpointManager, step: int, abstract_state: Any, data_iter: Any,
             config: dict) -> Restored:
    """Restores one checkpoint or raises: CheckpointMismatch (config change) or any other error (damage)."""
    step_dir = Path(manager.directory) / str(step)
    damage = verify_checksums(step_dir)
    if damage:
        raise OSError(damage)
    diffs = tree_differences(step_dir, abstract_state)
    if diffs:
        saved_config = step_dir / "config" / "metadata"
        keys = config_changes(json.loads(saved_config.read_text()), config) if saved_config.exists() else []
        raise CheckpointMismatch(
            f"checkpoint {step_dir} holds a different model or optimizer than this config builds: "
            f"{'; '.join(diffs[:3])}{' ...' if len(diffs) > 3 else ''}"
            + (f". Config keys that changed: {', '.join(keys[:8])}" if keys else "")
            + ". Resume with the config it was saved with (config.json in the run directory), or start anew with "
              "--restart (run.resume=false) or another run.dir")
    state = manager.restore(step, args=ocp.args.Composite(state=ocp.args.StandardRestore(abstract_state)))["state"]
    if data_iter is not None and (step_dir / "data").exists():
        # A checkpoint without data-iterator state (`flaxgpt convert import`) restores the model and optimizer;
        # the loader then starts from its beginning.
        _restore_data(step_dir, data_iter)
    return Restored(step, state, step_dir)


def _set_aside(manager: ocp.CheckpointManager, damaged: list[tuple[int, str]]) -> None:
    """Process 0 renames damaged checkpoints ``<step>.corrupt``; every process waits for it, then rereads."""
    if jax.process_index() == 0:
        for step, _ in damaged:
            path = Path(manager.directory) / str(step)
            if path.exists():
                shutil.move(str(path), str(path.with_name(f"{step}.corrupt")))
    if jax.process_count() > 1:
        multihost_utils.sync_global_devices("flaxgpt:set-aside-damaged-checkpoints")
    manager.reload()


def restore_latest(manager: ocp.CheckpointManager, abstract_state: Any, data_iter: Any,
                   config: dict) -> Restored | None:
    """The newest checkpoint that restores (module docstring), or None when there is none.

    Raises CheckpointMismatch for a config change and CheckpointsDamaged when every checkpoint is damaged.
    ``data_iter`` (if given) is moved to the restored position; after a failure it is where it was.
    """
    steps = sorted(manager.all_steps(), reverse=True)
    if not steps:
        return None
    start = data_iter.get_state() if data_iter is not None else None
    damaged: list[tuple[int, str]] = []
    for step in steps:
        try:
            restored = _attempt(manager, step, abstract_state, data_iter, config)
        except CheckpointMismatch:
            if data_iter is not None:
                data_iter.set_state(start)
            raise
        except Exception as err:  # any failure to read intact-looking files is damage; the reason is reported
            if data_iter is not None:
                data_iter.set_state(start)
            reason = f"{type(err).__name__}: {str(err).splitlines()[0][:300] if str(err) else ''}"
            log.warning("checkpoint %s is damaged (%s); trying the one before", Path(manager.directory) / str(step),
                        reason)
            damaged.append((step, reason))
            continue
        if damaged:
            _set_aside(manager, damaged)
        return restored
    listing = "\n".join(f"  {Path(manager.directory) / str(s)}: {r}" for s, r in damaged)
    raise CheckpointsDamaged(f"no checkpoint of {Path(manager.directory).parent} restores:\n{listing}\n"
                             "Nothing was moved or deleted, and the metrics history is untouched. Restore the files "
                             "(for example from a copy), or start over with --restart (run.resume=false).")
