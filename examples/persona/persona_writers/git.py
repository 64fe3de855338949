"""The ``tidewater`` repository (Ines's four libraries) as a git bundle, from ``src/tidewater/``.

The history is replayed from the list below with fixed author and committer names, e-mails and dates
and no user or system git config, so commit ids are the same on every machine and git version.
"""

from __future__ import annotations

import os
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

from .common import OWNER_EMAIL, OWNER_NAME, SRC, write_bytes

TREE = SRC / "tidewater"
INES = f"{OWNER_NAME} <{OWNER_EMAIL}>"
TOMASZ = "Tomasz Wierzba <tomasz.wierzba@quillwork.example>"
LOTTE = "Lotte Verbeek <lotte.verbeek@lanternfish.example>"

# shuffle.py as first committed: a finished shard's slot was skipped in the round-robin (Tomasz's fix below).
_FIXED = """                slots.pop(i)  # do not advance i: the next slot moved into place
            else:
                slots[i] = [nxt, 0]
                i += 1
"""
_BUGGY = """                slots.pop(i)
            else:
                slots[i] = [nxt, 0]
            i += 1
"""
EARLIER = {"shardcat/shardcat/shuffle.py": (_FIXED, _BUGGY)}


@dataclass(frozen=True)
class Commit:
    """One commit: when, who, the message, and the paths it sets to their ``src/tidewater`` content
    (``early`` paths get the ``EARLIER`` version instead)."""

    date: str
    author: str
    message: str
    paths: tuple[str, ...]
    early: tuple[str, ...] = ()


HISTORY = [
    Commit("2020-04-12T21:14:09+02:00", INES, """Start tidewater: one home for my small libraries

Four repositories would mean four CI configs to forget about. One
repository, one release script, one author.""", ("README.md", ".gitignore")),
    Commit("2020-04-19T20:02:51+02:00", INES, """shardcat: record format with an offset footer

[u32 length][bytes] records, then every record's offset, the count and
"SCAT". Seeking is one ranged read for the footer and one for the record.""",
           ("shardcat/shardcat/format.py",)),
    Commit("2020-05-03T22:41:17+02:00", INES, """shardcat: deterministic, resumable three-level shuffle

Shard order per epoch, round-robin interleave over open shards, and a
permutation inside fixed windows. Windows share no state, so resuming at
position p only needs the window that contains p.""", ("shardcat/shardcat/shuffle.py", "shardcat/README.md"),
           early=("shardcat/shardcat/shuffle.py",)),
    Commit("2020-11-09T10:26:33+01:00", TOMASZ, """shardcat: don't skip a slot when a shard runs out

When a shard was exhausted and no shard was pending, interleave() popped
its slot and still advanced i, so the shard that moved into that slot
lost its turn in the round-robin. Found with the 4,001-record test.""", ("shardcat/shardcat/shuffle.py",)),
    Commit("2021-03-14T19:48:02+01:00", INES, """sievekit: MinHash signatures and LSH banding

Word 5-gram shingles, numbers normalised for similarity only, blake2b
fingerprints. Deterministic across machines and processes. Vendors a
pure-Python murmur3 for the hash benchmark only.""",
           ("sievekit/README.md", "sievekit/sievekit/minhash.py", "sievekit/sievekit/lsh.py",
            "sievekit/bench/compare_hashes.py", "third_party/murmur3/murmur3.py", "third_party/murmur3/LICENSE")),
    Commit("2022-12-04T16:05:40+01:00", INES, """tickmark: step timers and MFU helpers for JAX loops

Times the phases of a training step (wait for data, step, host work) and
reports model FLOPs utilisation. Not a profiler: it tells you where to
point one.""", ("tickmark/README.md", "tickmark/tickmark/timer.py", "tickmark/tickmark/mfu.py")),
    Commit("2022-12-11T11:30:12+01:00", INES, """docs: site skeleton

The generator is an npm package, so there is a package-lock.json now. I
am not happy about it either.""", ("docs/package.json", "docs/package-lock.json", "docs/index.md")),
    Commit("2023-02-26T21:55:48+01:00", INES, """cadenza: learning-rate schedules as pure functions

constant, linear_warmup, cosine, inverse_sqrt, wsd, join, shift and
render. Plot your schedule before you train.""", ("cadenza/README.md", "cadenza/cadenza/schedules.py")),
    Commit("2023-07-20T15:12:06+02:00", LOTTE, """cadenza: tests for warmup and WSD boundaries

Checks the value at the exact boundary steps, where off-by-one errors
live, and that join() passes global steps.""", ("cadenza/tests/test_schedules.py",)),
    Commit("2023-09-10T18:03:29+02:00", INES, """tools: one release script for all four libraries

Refuses dirty trees, other branches and existing tags, and releases one
library at a time.""", ("tools/release.py", "tools/release.toml")),
]


def _identity(who: str) -> tuple[str, str]:
    name, _, email = who.partition(" <")
    return name, email.rstrip(">")


def _git(repo: Path, env: dict[str, str], *args: str) -> str:
    return subprocess.run(["git", "-C", str(repo), *args], env=env, check=True, capture_output=True,
                          text=True).stdout


def bundle_bytes() -> bytes:
    """Replay ``HISTORY`` into a fresh repository and return ``git bundle create --all`` of it."""
    with tempfile.TemporaryDirectory() as tmp:
        repo, home = Path(tmp) / "tidewater", Path(tmp) / "home"
        repo.mkdir()
        home.mkdir()
        # Only our settings count: no user/system config, no signing, one pack thread (stable packs).
        env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(home), "LC_ALL": "C",
               "GIT_CONFIG_NOSYSTEM": "1", "GIT_CONFIG_GLOBAL": os.devnull, "GIT_CONFIG_SYSTEM": os.devnull}
        _git(repo, env, "init", "-q", "-b", "main")
        for key, value in [("core.autocrlf", "false"), ("commit.gpgsign", "false"), ("pack.threads", "1"),
                           ("core.fileMode", "true")]:
            _git(repo, env, "config", key, value)
        for commit in HISTORY:
            for rel in commit.paths:
                text = (TREE / rel).read_text(encoding="utf-8")
                if rel in commit.early:
                    new, old = EARLIER[rel]
                    if new not in text:
                        raise RuntimeError(f"{rel}: the text to revert for the early version is gone")
                    text = text.replace(new, old)
                dest = repo / rel
                dest.parent.mkdir(parents=True, exist_ok=True)
                dest.write_text(text, encoding="utf-8")
                dest.chmod(0o644)
            _git(repo, env, "add", "--", *commit.paths)
            name, email = _identity(commit.author)
            commit_env = dict(env, GIT_AUTHOR_NAME=name, GIT_AUTHOR_EMAIL=email, GIT_AUTHOR_DATE=commit.date,
                              GIT_COMMITTER_NAME=name, GIT_COMMITTER_EMAIL=email, GIT_COMMITTER_DATE=commit.date)
            _git(repo, commit_env, "commit", "-q", "--no-verify", "-m", commit.message)
        missing = sorted({p.relative_to(TREE).as_posix() for p in TREE.rglob("*") if p.is_file()}
                         - {p for c in HISTORY for p in c.paths})
        if missing:
            raise RuntimeError(f"src/tidewater files no commit adds: {missing}")
        bundle = Path(tmp) / "tidewater.bundle"
        _git(repo, env, "bundle", "create", "-q", str(bundle), "--all")
        return bundle.read_bytes()


def write_bundle(out: Path) -> list[Path]:
    """Write ``code/tidewater.bundle`` under ``out``."""
    return [write_bytes(out / "code" / "tidewater.bundle", bundle_bytes())]
