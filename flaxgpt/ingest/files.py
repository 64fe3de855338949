"""Finding the files of a source: a folder, one file, or a zip archive, read in place.

``open_tree(path)`` lists every file of a source as a ``SourceTree`` without reading any content.
What it cannot use it reports through ``on_skip(rel, reason)`` and leaves out: hidden entries,
files or folders matched by the exclude globs, symlink loops and broken links, unreadable
entries, zip members with unsafe names (``..`` components, absolute paths, drive letters: "unsafe path"),
oversized files, corrupt archives, suspected zip bombs (a member that claims to expand
more than ``MAX_ZIP_RATIO`` times, or an archive whose members add up to more than
``MAX_ARCHIVE_BYTES``), and archives nested inside archives. Zip files found inside a folder are
opened in place too, their members listed as ``folder/export.zip!/member``.
"""

from __future__ import annotations

import fnmatch
import os
import re
import stat
import zipfile
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from flaxgpt.ingest.extract.base import MAX_FILE_BYTES, DiskOpener, SourceFile, SourceTree

MAX_ZIP_RATIO = 200  # uncompressed/compressed size above which a large member is taken for a zip bomb
MAX_ARCHIVE_BYTES = 8 * 2**30  # total uncompressed size allowed for one archive
_RATIO_MIN_BYTES = 2**20  # small members compress very well legitimately (a file of spaces): only check big ones
ARCHIVE_SEP = "!/"
_DRIVE = re.compile(r"^[A-Za-z]:")  # C:\x, C:/x and C:x are all rooted on a Windows drive

OnSkip = Callable[[str, str], None]


@dataclass(frozen=True)
class ZipMemberOpener:
    """Opens one member of a zip archive (re-opening the archive, so it pickles into worker processes)."""

    archive: Path
    member: str

    def __call__(self) -> BinaryIO:
        zf = zipfile.ZipFile(self.archive)
        try:
            handle = zf.open(self.member)
        except BaseException:
            zf.close()
            raise
        return _ClosingMember(handle, zf)


class _ClosingMember:
    """A zip member's stream that also closes its archive."""

    def __init__(self, handle: BinaryIO, zf: zipfile.ZipFile):
        self._handle, self._zf = handle, zf

    def read(self, n: int = -1) -> bytes:
        return self._handle.read(n)

    def readable(self) -> bool:
        return True

    def close(self) -> None:
        self._handle.close()
        self._zf.close()

    def __enter__(self) -> _ClosingMember:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def matches_any(rel: str, patterns: Iterable[str]) -> bool:
    """True if ``rel`` matches a glob: patterns without '/' match any path component or the file name,
    patterns with '/' match the whole relative path ('*' crosses '/')."""
    parts = rel.split("/")
    for pattern in patterns:
        if "/" in pattern.strip("/"):
            if fnmatch.fnmatch(rel, pattern.strip("/")):
                return True
        elif any(fnmatch.fnmatch(part, pattern) for part in parts):
            return True
    return False


def is_unsafe_member(name: str) -> bool:
    """True for a zip member name that points outside its archive: a ``..`` component, an absolute path
    (``/x``, ``\\x``) or a Windows drive (``C:\\x``, ``C:/x``); both slashes count as separators."""
    return name.startswith(("/", "\\")) or bool(_DRIVE.match(name)) or ".." in re.split(r"[/\\]", name)


def _ignore(rel: str, reason: str) -> None:
    del rel, reason


def is_zip(path: Path) -> bool:
    return path.suffix.lower() == ".zip" or (path.suffix.lower() in {".jar"} and zipfile.is_zipfile(path))


def _zip_members(archive: Path, prefix: str, include: tuple[str, ...], exclude: tuple[str, ...],
                 max_file_bytes: int, on_skip: OnSkip) -> list[SourceFile]:
    """Files inside one zip archive, with the bomb and size checks of the module docstring."""
    label = prefix.removesuffix(ARCHIVE_SEP) or archive.name
    try:
        with zipfile.ZipFile(archive) as zf:
            infos = zf.infolist()
    except (zipfile.BadZipFile, OSError, EOFError, ValueError) as err:
        on_skip(label, f"corrupt zip: {err}")
        return []
    total = sum(i.file_size for i in infos)
    if total > MAX_ARCHIVE_BYTES:
        on_skip(label, f"zip bomb suspected: members expand to {total} bytes > {MAX_ARCHIVE_BYTES}")
        return []
    out = []
    for info in sorted(infos, key=lambda i: i.filename):
        name = info.filename
        if info.is_dir() or name.startswith("__MACOSX/"):
            continue
        rel = prefix + name
        if is_unsafe_member(name):
            on_skip(rel, "unsafe path")
            continue
        if any(part.startswith(".") for part in name.split("/")):
            on_skip(rel, "hidden")
            continue
        if exclude and matches_any(name, exclude) or include and not matches_any(name, include):
            on_skip(rel, "excluded by glob")
            continue
        if info.flag_bits & 0x1:
            on_skip(rel, "encrypted zip member")
            continue
        if info.file_size > max_file_bytes:
            on_skip(rel, f"oversized: {info.file_size} bytes > limit {max_file_bytes}")
            continue
        if info.file_size > _RATIO_MIN_BYTES and info.file_size > MAX_ZIP_RATIO * max(info.compress_size, 1):
            on_skip(rel, f"zip bomb suspected: {info.compress_size} bytes expand to {info.file_size}")
            continue
        if name.lower().endswith(".zip"):
            on_skip(rel, "nested archive inside an archive (not opened)")
            continue
        out.append(SourceFile(rel=rel, size=info.file_size, opener=ZipMemberOpener(archive, name)))
    return out


def _walk_folder(root: Path, include: tuple[str, ...], exclude: tuple[str, ...], max_file_bytes: int,
                 on_skip: OnSkip) -> list[SourceFile]:
    """Every usable file under ``root`` in sorted order, following symlinks but never around a loop."""
    out: list[SourceFile] = []
    seen_dirs: set[tuple[int, int]] = set()

    def visit(folder: Path, rel_folder: str) -> None:
        try:
            st = folder.stat()
        except OSError as err:
            on_skip(rel_folder or ".", f"unreadable folder: {err.strerror or err}")
            return
        key = (st.st_dev, st.st_ino)
        if key in seen_dirs:
            on_skip(rel_folder, "symlink loop (folder already visited)")
            return
        seen_dirs.add(key)
        try:
            names = sorted(os.listdir(folder))
        except OSError as err:
            on_skip(rel_folder or ".", f"unreadable folder: {err.strerror or err}")
            return
        for name in names:
            path = folder / name
            rel = f"{rel_folder}/{name}" if rel_folder else name
            if name.startswith("."):
                on_skip(rel, "hidden")
                continue
            try:
                st = path.stat()  # follows symlinks
            except OSError as err:
                reason = "symlink loop" if err.errno == 40 else (
                    "broken symlink" if path.is_symlink() else f"unreadable: {err.strerror or err}")
                on_skip(rel, reason)
                continue
            if exclude and matches_any(rel, exclude):
                on_skip(rel, "excluded by glob")
                continue
            if stat.S_ISDIR(st.st_mode):
                visit(path, rel)
                continue
            if not stat.S_ISREG(st.st_mode):
                on_skip(rel, "not a regular file")
                continue
            if is_zip(path):
                out.extend(_zip_members(path, rel + ARCHIVE_SEP, include, exclude, max_file_bytes, on_skip))
                continue
            if include and not matches_any(rel, include):
                on_skip(rel, "excluded by glob")
                continue
            if st.st_size > max_file_bytes:
                on_skip(rel, f"oversized: {st.st_size} bytes > limit {max_file_bytes}")
                continue
            if not os.access(path, os.R_OK):
                on_skip(rel, "unreadable: permission denied")
                continue
            out.append(SourceFile(rel=rel, size=st.st_size, opener=DiskOpener(path), disk_path=path))

    visit(root, "")
    return out


def open_tree(path: str | Path, include: Iterable[str] = (), exclude: Iterable[str] = (),
              on_skip: OnSkip | None = None, max_file_bytes: int = MAX_FILE_BYTES) -> SourceTree:
    """The files of one source: a folder (walked recursively), a zip archive (members read in place), or
    one file. Raises FileNotFoundError naming the path if it does not exist."""
    path = Path(path)
    include, exclude = tuple(include), tuple(exclude)
    on_skip = on_skip or _ignore
    if not path.exists():
        raise FileNotFoundError(f"source path does not exist: {path}")
    if path.is_dir():
        return SourceTree(label=path.name, files=tuple(_walk_folder(path, include, exclude, max_file_bytes, on_skip)),
                          disk_root=path)
    if is_zip(path):
        return SourceTree(label=path.name,
                          files=tuple(_zip_members(path, "", include, exclude, max_file_bytes, on_skip)))
    size = path.stat().st_size
    if size > max_file_bytes:
        on_skip(path.name, f"oversized: {size} bytes > limit {max_file_bytes}")
        return SourceTree(label=path.name, files=())
    return SourceTree(label=path.name, files=(SourceFile.from_path(path, rel=path.name),))
