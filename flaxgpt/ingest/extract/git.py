"""Git: every file a repository tracks at HEAD -> Documents (``extract_code_file``), plus commit messages.

``extract_git`` reads a repository through the ``git`` command only (``ls-tree`` + ``cat-file
--batch``), never through the working tree, so untracked and ignored files never leak in. The
source may be a working tree, a bare clone, or a ``*.bundle`` file (cloned bare into a temporary
directory). Files it skips are reported through ``ctx.skip``; the whole repository is skipped
only when it is not a repository or nothing in it is usable.
"""

from __future__ import annotations

import os
import subprocess
import tempfile
import threading
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

from flaxgpt.ingest.extract.base import Context, Document, Skip, SourceFile, SourceTree
from flaxgpt.ingest.extract.code import VENDORED_DIRS, extract_code_file, path_skip_reason, size_limit

_GIT_TIMEOUT_S = 600


def _git_env(root: Path) -> dict[str, str]:
    # The ceiling stops git from walking up into an enclosing repository (a folder inside $HOME's dotfiles repo).
    env = dict(os.environ, GIT_CEILING_DIRECTORIES=str(root.resolve().parent), GIT_TERMINAL_PROMPT="0",
               LC_ALL="C")
    env.pop("GIT_DIR", None)
    env.pop("GIT_WORK_TREE", None)
    return env


def _git_cmd(root: Path, *args: str) -> list[str]:
    # Only read commands are run, with the settings through which a repository's own config could make
    # them run a program switched off. safe.directory=*: the owner's data may sit on a mount owned by
    # another uid, which git would otherwise refuse ("dubious ownership").
    return ["git", "-c", "core.fsmonitor=false", "-c", "log.showSignature=false", "-c", "safe.directory=*",
            "-C", str(root), *args]


def _run(cmd: list[str], env: dict[str, str], timed_out: str) -> tuple[int, bytes, str | None]:
    """Runs a git command; returns (exit status, stdout, the last line of stderr or None). Raises Skip when git
    is not installed, or with ``timed_out`` when it runs past the time limit."""
    try:
        proc = subprocess.run(cmd, capture_output=True, env=env, timeout=_GIT_TIMEOUT_S)
    except FileNotFoundError:
        raise Skip("the git command is not installed") from None
    except subprocess.TimeoutExpired:
        raise Skip(timed_out) from None
    msg = proc.stderr.decode(errors="replace").strip().splitlines()
    return proc.returncode, proc.stdout, (msg[-1] if msg else None)


def _git(root: Path, *args: str) -> bytes:
    """Runs ``git args`` in ``root`` and returns stdout; raises Skip with git's message on failure."""
    status, out, err = _run(_git_cmd(root, *args), _git_env(root), f"git {args[0]} timed out after {_GIT_TIMEOUT_S} s")
    if status:
        raise Skip(f"git {args[0]} failed: {err or 'exit ' + str(status)}")
    return out


def _head(root: Path) -> str:
    """The commit to read: HEAD, else the default-looking branch (a bundle or clone can lack a HEAD)."""
    try:
        return _git(root, "rev-parse", "--verify", "--quiet", "HEAD^{commit}").decode().strip()
    except Skip:
        pass
    refs = _git(root, "for-each-ref", "--format=%(refname)", "refs/heads", "refs/remotes").decode().split()
    for preferred in ("refs/heads/main", "refs/heads/master"):
        if preferred in refs:
            return preferred
    if refs:
        return refs[0]
    raise Skip("git repository has no commits")


def _tracked_blobs(root: Path, rev: str) -> list[tuple[str, str, int]]:
    """(object id, path, size) of every regular file in the tree of ``rev`` (no symlinks or submodules)."""
    out = _git(root, "ls-tree", "-r", "-z", "--long", "--full-tree", rev)
    blobs = []
    for entry in out.split(b"\0"):
        if not entry:
            continue
        meta, _, path = entry.partition(b"\t")
        mode, kind, oid, size = meta.split()
        if kind == b"blob" and mode in (b"100644", b"100755"):
            blobs.append((oid.decode(), path.decode("utf-8", errors="replace"), int(size)))
    return blobs


def _cat_blobs(root: Path, oids: list[str]) -> Iterator[bytes]:
    """The contents of ``oids`` in order, streamed from one ``git cat-file --batch`` process."""
    proc = subprocess.Popen(_git_cmd(root, "cat-file", "--batch"), stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.DEVNULL, env=_git_env(root))

    def feed() -> None:  # a thread, so a full stdout pipe can never deadlock against a full stdin pipe
        try:
            proc.stdin.write("".join(oid + "\n" for oid in oids).encode())
            proc.stdin.close()
        except BrokenPipeError:
            pass

    writer = threading.Thread(target=feed, daemon=True)
    writer.start()
    try:
        for _ in oids:
            header = proc.stdout.readline().split()
            if len(header) != 3:
                raise Skip(f"git cat-file gave an unexpected answer: {b' '.join(header)[:80]!r}")
            size = int(header[2])
            data = proc.stdout.read(size)
            proc.stdout.read(1)  # the newline after each object
            yield data
    finally:
        proc.stdout.close()
        proc.kill()
        proc.wait()
        writer.join()


def _commit_messages(root: Path, rev: str, ctx: Context, label: str) -> Document | None:
    """The owner's commit messages (merges excluded) as one prose Document, or None if there are none."""
    out = _git(root, "log", "--no-merges", "--format=%an%x00%ae%x00%B%x1e", rev)
    messages = []
    for record in out.decode("utf-8", errors="replace").split("\x1e"):
        fields = record.strip("\n").split("\0", 2)
        if len(fields) == 3 and ctx.owner.is_owner(name=fields[0], email=fields[1]) and fields[2].strip():
            messages.append(fields[2].strip())
    if not messages:
        return None
    return Document(text="\n\n".join(messages), kind="prose", path=f"{label}#commit-messages",
                    metadata={"source": "git", "commits": len(messages)})


def _repo_documents(root: Path, ctx: Context, prefix: str, skipped: Counter) -> Iterator[Document]:
    """Documents of one repository on disk; ``prefix`` goes before every path (``repo.bundle!/``)."""
    rev = _head(root)
    wanted = []
    dirs: Counter = Counter()  # a vendored or build folder is reported once, not once per file in it
    for oid, path, size in _tracked_blobs(root, rev):
        reason = path_skip_reason(path)
        if reason is None and size > size_limit(path, ctx):
            reason = f"oversized: {size} bytes"
        if reason is None:
            wanted.append((oid, path))
        elif reason.startswith(("vendored:", "build output:")):
            dirs[reason] += 1
        else:
            skipped[reason.split(":")[0]] += 1
            ctx.skip(prefix + path, reason)
    for reason, n in sorted(dirs.items()):
        why, folder = reason.split(": ", 1)
        skipped[why] += n
        ctx.skip(prefix + folder, f"{why} ({n} file{'' if n == 1 else 's'})")
    for (_, path), data in zip(wanted, _cat_blobs(root, [oid for oid, _ in wanted]), strict=True):
        file = SourceFile.from_bytes(prefix + path, data)
        try:
            for doc in extract_code_file(file, ctx):
                doc.metadata["source"] = "git"
                yield doc
        except Skip as e:
            skipped[str(e).split(":")[0].split(" (")[0]] += 1
            ctx.skip(file.rel, str(e))
    if ctx.commit_messages:
        doc = _commit_messages(root, rev, ctx, prefix.rstrip("!/") or "git")
        if doc:
            yield doc


def _clone_bundle(file: SourceFile, tmp: Path) -> Path:
    """A bare clone of a bundle file under ``tmp`` (the bundle is copied out first if it is a zip member)."""
    bundle = file.disk_path
    if bundle is None:
        bundle = tmp / "source.bundle"
        with file.open() as src, open(bundle, "wb") as dst:
            while chunk := src.read(2**20):
                dst.write(chunk)
    dest = tmp / "repo.git"
    status, _, err = _run(["git", "clone", "--quiet", "--bare", str(bundle), str(dest)], _git_env(tmp),
                          f"git clone of {file.rel} timed out")
    if status:
        raise Skip(f"not a valid git bundle: {file.rel} ({err or 'git clone failed'})")
    return dest


def _looks_like_repo(path: Path) -> bool:
    """A working tree (``.git`` folder or file) or a bare repository, judged from the file system."""
    return (path / ".git").exists() or ((path / "HEAD").is_file() and (path / "objects").is_dir()
                                        and (path / "refs").is_dir())


def _find_repos(root: Path, max_depth: int = 3) -> list[Path]:
    """Repositories in a folder of repositories (``~/code``), nearest first, not looking inside a repo."""
    found: list[Path] = []
    for dirpath, dirnames, _ in os.walk(root):
        here = Path(dirpath)
        depth = len(here.relative_to(root).parts)
        if here != root and _looks_like_repo(here):
            found.append(here)
            dirnames.clear()
            continue
        keep = depth < max_depth
        dirnames[:] = sorted(d for d in dirnames if keep and not d.startswith(".") and d not in VENDORED_DIRS)
    return found


def _is_repo(root: Path) -> bool:
    try:
        _git(root, "rev-parse", "--git-dir")
        return True
    except Skip:
        return False


def extract_git(tree: SourceTree, ctx: Context) -> Iterator[Document]:
    """Every file git tracks at HEAD of the repository in ``tree`` -> Documents (see ``extract_code_file``),
    plus the owner's commit messages when ``ctx.commit_messages``. ``tree.disk_root`` may be a working tree,
    a bare repository, or a folder of repositories (paths then start with the repository's folder); each
    ``*.bundle`` file of the tree is cloned and read too (paths start with ``name.bundle!/``). Raises Skip
    when there is no repository or no usable file in any."""
    repos: list[tuple[Path, str]] = []
    bundles = [f for f in tree.files if f.suffix == ".bundle"]
    if tree.disk_root is not None:
        root = Path(tree.disk_root)
        if _is_repo(root):
            repos, bundles = [(root, "")], []  # a bundle committed to the repository is just a file of it
        else:
            repos = [(repo, repo.relative_to(root).as_posix() + "/") for repo in _find_repos(root)]
            bundles = [f for f in bundles if not any(f.rel.startswith(prefix) for _, prefix in repos)]
    if not repos and not bundles:
        raise Skip(f"not a git repository: {tree.label} (no repository folder and no *.bundle file)")
    single = len(repos) + len(bundles) == 1
    skipped: Counter = Counter()
    count = 0
    for repo, prefix in repos:
        try:
            for doc in _repo_documents(repo, ctx, prefix, skipped):
                count += 1
                yield doc
        except Skip as e:
            if single:
                raise
            ctx.skip(prefix.rstrip("/"), str(e))
    for bundle in bundles:
        with tempfile.TemporaryDirectory(prefix="flaxgpt-git-") as tmp:
            try:
                root = _clone_bundle(bundle, Path(tmp))
                for doc in _repo_documents(root, ctx, bundle.rel + "!/", skipped):
                    count += 1
                    yield doc
            except Skip as e:
                if single:
                    raise
                ctx.skip(bundle.rel, str(e))
    if count == 0:
        summary = ", ".join(f"{n} {why}" for why, n in skipped.most_common(5)) or "no tracked files"
        raise Skip(f"no usable files in the git repositor{'y' if single else 'ies'} ({summary})")
