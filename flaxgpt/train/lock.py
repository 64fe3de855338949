"""One trainer per run directory: an exclusive lock held by process 0 of a job, for every process of it.

Two trainers writing one run directory interleave its metrics and tear each other's checkpoints. Process 0
takes ``fcntl.flock`` on ``RUN/.lock`` (released by the kernel when the process dies, even on kill -9, so no
stale lock survives a crash) and writes who holds it; the outcome is broadcast to the job's other processes, so
all of a second job's processes stop with the same message while the processes of one job share the lock.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import socket
import sys
import time
from pathlib import Path
from typing import IO

import jax
import numpy as np
from jax.experimental import multihost_utils

LOCK_FILE = ".lock"


class RunLocked(RuntimeError):
    """Another trainer holds the run directory."""


class RunLock:
    """The run directory's lock (module docstring): ``acquire()`` on every process of a job, ``release()`` at
    the end."""

    def __init__(self, run_dir: str | Path):
        self.path = Path(run_dir) / LOCK_FILE
        self._file: IO[str] | None = None

    def _try(self) -> bool:
        f = self.path.open("a+")
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            f.close()
            return False
        f.seek(0)
        f.truncate()
        f.write(json.dumps({"pid": os.getpid(), "host": socket.gethostname(), "processes": jax.process_count(),
                            "since": time.strftime("%Y-%m-%d %H:%M:%S"), "command": " ".join(sys.argv)}))
        f.flush()
        self._file = f
        return True

    def acquire(self) -> None:
        """Takes the lock for this job; raises RunLocked (on every process) naming the holder if it is taken."""
        ok = self._try() if jax.process_index() == 0 else True
        if jax.process_count() > 1:
            ok = bool(multihost_utils.broadcast_one_to_all(np.int32(ok)))
        if not ok:
            holder = "another trainer"
            with contextlib.suppress(OSError, ValueError, KeyError):
                h = json.loads(self.path.read_text())
                holder = (f"pid {h['pid']} on {h['host']} ({h['processes']} process(es), since {h['since']}: "
                          f"{h['command']})")
            raise RunLocked(f"run directory {self.path.parent} is in use by {holder}. Stop that run first, or "
                            "train into another run.dir")

    def release(self) -> None:
        """Releases the lock (process 0); safe to call twice."""
        if self._file is not None:
            fcntl.flock(self._file, fcntl.LOCK_UN)
            self._file.close()
            self._file = None
