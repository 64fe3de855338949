"""Checkpoints: one orbax CheckpointManager per run directory.

Each checkpoint step holds four items: ``state`` (the TrainState, sharded arrays), ``data`` (the
grain iterator's position), ``config`` (the resolved run config) and ``tokenizer`` (its metadata).
Saves are asynchronous; only complete checkpoints are visible to restore (orbax writes to a
temporary directory and renames on commit), and a latest checkpoint that fails to restore falls
back to the one before it with a warning.
"""

from __future__ import annotations

import logging
import shutil
from pathlib import Path
from typing import Any

import grain
import orbax.checkpoint as ocp

log = logging.getLogger("flaxgpt")


def make_manager(directory: str | Path, *, keep: int, async_save: bool = True) -> ocp.CheckpointManager:
    """A CheckpointManager over ``directory/checkpoints`` keeping the last ``keep`` steps."""
    options = ocp.CheckpointManagerOptions(max_to_keep=keep, enable_async_checkpointing=async_save,
                                           create=True, cleanup_tmp_directories=True)
    return ocp.CheckpointManager(Path(directory).absolute() / "checkpoints", options=options)


def save(manager: ocp.CheckpointManager, step: int, state: Any, data_iter: Any, config: dict,
         tokenizer: dict, *, force: bool = False) -> bool:
    """Starts saving ``step`` (returns at once when async); returns whether a save was started."""
    items = dict(state=ocp.args.StandardSave(state), config=ocp.args.JsonSave(config),
                 tokenizer=ocp.args.JsonSave(tokenizer))
    if data_iter is not None:
        items["data"] = grain.checkpoint.CheckpointSave(data_iter)
    return manager.save(step, args=ocp.args.Composite(**items), force=force)


class CheckpointMismatch(ValueError):
    """A checkpoint is intact but holds a different tree than the config builds (model or optimizer changed)."""


# Phrases of orbax/tensorstore errors that mean "intact files, other shapes", not damage.
_MISMATCH_MARKERS = ("tree structures do not match", "shape", "Shape", "dtype")


def restore_latest(manager: ocp.CheckpointManager, abstract_state: Any, data_iter: Any) -> tuple[int, Any] | None:
    """Restores the newest checkpoint that loads, newest first; returns (step, state) or None.

    ``data_iter`` (if given) is moved to the saved position in place. A checkpoint that fails to
    load (corrupt or half-written files) is moved aside to ``<step>.corrupt`` with a warning and the
    one before it is tried. A checkpoint whose tree does not match the config raises
    CheckpointMismatch (nothing is moved: the files are fine, the config is not).
    """
    for step in sorted(manager.all_steps(), reverse=True):
        items = dict(state=ocp.args.StandardRestore(abstract_state))
        # A checkpoint without data-iterator state (one written by `flaxgpt convert import`) restores the
        # model and optimizer; the loader then starts from its beginning.
        if data_iter is not None and (Path(manager.directory) / str(step) / "data").exists():
            items["data"] = grain.checkpoint.CheckpointRestore(data_iter)
        try:
            restored = manager.restore(step, args=ocp.args.Composite(**items))
        except Exception as err:  # orbax raises many types for damaged files; report and fall back
            path = Path(manager.directory) / str(step)
            if any(marker in str(err) for marker in _MISMATCH_MARKERS):
                raise CheckpointMismatch(
                    f"checkpoint {path} holds a different model or optimizer than this config builds "
                    f"({str(err).splitlines()[0][:300]}). Resume with the config it was saved with "
                    f"(see config.json in the run directory), or start anew with run.resume=false or another "
                    f"run.dir") from err
            log.warning("checkpoint %s does not restore (%s: %s); falling back to the one before",
                        path, type(err).__name__, str(err).splitlines()[0][:200])
            if path.exists():
                shutil.move(str(path), str(path.with_name(f"{step}.corrupt")))
            manager.reload()
            continue
        return step, restored["state"]
    return None
