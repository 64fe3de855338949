"""Writing an output directory all at once: into a hidden sibling first, renamed into place at the end.

A killed run leaves the previous output (or nothing) rather than a half-written one, and the
next run starts over from a clean temporary directory, so a rerun gives the same bytes. Every
command that writes a folder (ingest, tokenize, tokenize-chat, convert import/export) goes through
``atomic_output_dir``.
"""

from __future__ import annotations

import contextlib
import os
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path


def sibling(out_dir: Path, tag: str) -> Path:
    """The hidden working directory next to the output (``.NAME.tmp`` while writing, ``.NAME.old`` while swapping)."""
    return out_dir.parent / f".{out_dir.name}.{tag}"


def prepare_out_dir(out_dir: Path, is_own: Callable[[str], bool], what: str) -> Path:
    """Checks ``out_dir`` may be replaced (it is new, empty, or holds only entries ``is_own`` accepts, i.e.
    earlier output of the same command ``what``) and returns a fresh temporary sibling to write into."""
    if out_dir.exists():
        if not out_dir.is_dir():
            raise ValueError(f"--out {out_dir} exists and is not a directory")
        foreign = sorted(p.name for p in out_dir.iterdir() if not is_own(p.name))
        if foreign:
            raise ValueError(f"--out {out_dir} holds files that are not {what} output ({foreign[:5]}); "
                             "refusing to replace it: choose an empty or new directory")
    tmp = sibling(out_dir, "tmp")
    if tmp.exists():  # left by a killed run
        shutil.rmtree(tmp)
    tmp.mkdir(parents=True)
    return tmp


def swap_into_place(tmp: Path, out_dir: Path) -> None:
    """Replaces ``out_dir`` by ``tmp`` (two renames; the old output is removed afterwards)."""
    old = sibling(out_dir, "old")
    if old.exists():
        shutil.rmtree(old)
    if out_dir.exists():
        os.replace(out_dir, old)
    os.replace(tmp, out_dir)
    if old.exists():
        shutil.rmtree(old)


@contextlib.contextmanager
def atomic_output_dir(out_dir: Path, is_own: Callable[[str], bool], what: str) -> Iterator[Path]:
    """Yields a fresh temporary sibling of ``out_dir`` to write the whole output into (see ``prepare_out_dir``
    for ``is_own`` and ``what``); it replaces ``out_dir`` when the block ends, and is removed if the block raises
    (KeyboardInterrupt included)."""
    tmp = prepare_out_dir(out_dir, is_own, what)
    try:
        yield tmp
        swap_into_place(tmp, out_dir)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
