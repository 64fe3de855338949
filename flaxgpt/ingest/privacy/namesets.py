"""First and last names from the ``names-dataset`` package, as compact sets cached on disk.

names-dataset (MIT, PyPI) ships 730k first and 980k last names with their rank per country, drawn
from a 533M-user social-network dump, as two pickles that take ~12 s and ~1 GB to load. Only the
names matter here, so the first load keeps single-word names ranked within ``MAX_RANK`` in some
country and writes them to a small cache (``$FLAXGPT_CACHE`` or ``~/.cache/flaxgpt``; about 3 MB,
loaded in well under a second by each worker). Nothing is downloaded: the data comes with the package.

The dump is noisy ("The", "Street", "Berlin" are "first names" somewhere), so these sets only
confirm a word that context already marks as a likely name; ``flaxgpt.ingest.privacy.people``
holds the context rules and the stop lists. The cache also keeps the first names that Webster's
word list (``english-words``, public domain) has as lower-case words ("Rose", "Bill", "Will", "Amber"):
a name written in lower case ("saw hamid at the station") counts only when it is none of those.
"""

from __future__ import annotations

import contextlib
import functools
import gzip
import importlib.metadata
import os
import pickle
import tempfile
from dataclasses import dataclass
from pathlib import Path

MAX_RANK = 5000  # names ranked within this in at least one country
TOP_RANK = 1000  # "common" first names: what weak contexts ("with X and Y") require
_PACKAGE = "names-dataset"
_WORDS_PACKAGE = "english-words"


@dataclass(frozen=True)
class NameSets:
    """Single-word names in their dataset spelling ("Priya", "O'Brien", "Kovacs")."""

    first: frozenset[str]
    top_first: frozenset[str]  # first names ranked within TOP_RANK somewhere
    last: frozenset[str]
    words: frozenset[str]  # first names that are also lower-case English words ("Rose", "Bill", "Amber")


def cache_dir() -> Path:
    """The folder for derived data: ``$FLAXGPT_CACHE``, else ``$XDG_CACHE_HOME/flaxgpt`` or ``~/.cache/flaxgpt``."""
    if os.environ.get("FLAXGPT_CACHE"):
        return Path(os.environ["FLAXGPT_CACHE"])
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "flaxgpt"


def _cache_file() -> Path:
    version, words = importlib.metadata.version(_PACKAGE), importlib.metadata.version(_WORDS_PACKAGE)
    return cache_dir() / f"names-dataset-{version}-r{MAX_RANK}-t{TOP_RANK}-words{words}-i.txt.gz"


def _word(name: str) -> bool:
    return len(name) >= 2 and name[0].isupper() and name.replace("-", "").replace("'", "").isalpha()


def _derive() -> tuple[list[str], list[str], list[str], list[str]]:
    """(first, top first, last, word) names read from the packages' pickles (the slow part: ~12 s, ~1 GB)."""
    import names_dataset  # optional heavy data: only read when the cache is missing
    from english_words import get_english_words_set

    root = Path(names_dataset.__file__).parent / "v3"

    def best_ranks(kind: str) -> dict[str, int]:
        with gzip.open(root / f"{kind}_names.pkl.gz") as f:
            table = pickle.load(f)  # noqa: S301 (the package's own data file)
        return {n: min(v["rank"].values()) for n, v in table.items() if v.get("rank") and _word(n)}

    first = best_ranks("first")
    last = best_ranks("last")
    kept = sorted(n for n, r in first.items() if r <= MAX_RANK)
    lower_words = {w for w in get_english_words_set(["web2"], lower=False, alpha=True) if w.islower()}
    top = sorted(n for n, r in first.items() if r <= TOP_RANK)
    return (kept, top, sorted(n for n, r in last.items() if r <= MAX_RANK),
            [n for n in kept if _english_word(n.lower(), lower_words)])


def _english_word(word: str, lower_words: set[str]) -> bool:
    """True if ``word`` or the stem it inflects is a lower-case word of the list (which has no inflections):
    "banks", "liked", "trees", "marines"."""
    if word in lower_words:
        return True
    stems = [word[:-1]] if word.endswith("s") else []
    if word.endswith(("es", "ed")):
        stems += [word[:-2], word[:-1]]
    if word.endswith("ies"):
        stems.append(word[:-3] + "y")
    if word.endswith("ing"):
        stems += [word[:-3], word[:-3] + "e"]
    return any(len(stem) >= 3 and stem in lower_words for stem in stems)


def _write(path: Path, first: list[str], top: list[str], last: list[str], words: list[str]) -> None:
    """Writes the cache atomically (a half-written file is never read)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    body = "\n".join(["#first", *first, "#top", *top, "#last", *last, "#words", *words]) + "\n"
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".names-", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(gzip.compress(body.encode("utf-8"), mtime=0))
        os.chmod(tmp, 0o644)  # mkstemp makes it private; the names are public data, shared by users
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _read(path: Path) -> tuple[list[str], list[str], list[str], list[str]]:
    parts: dict[str, list[str]] = {"#first": [], "#top": [], "#last": [], "#words": []}
    current = parts["#first"]
    for line in gzip.decompress(path.read_bytes()).decode("utf-8").splitlines():
        if line in parts:
            current = parts[line]
        elif line:
            current.append(line)
    return parts["#first"], parts["#top"], parts["#last"], parts["#words"]


@functools.lru_cache(maxsize=1)
def load_name_sets() -> NameSets:
    """The name sets, from the cache (built from the package data on first use; an unwritable cache
    folder only means the next process derives them again)."""
    path = _cache_file()
    try:
        first, top, last, words = _read(path)
    except (OSError, EOFError, UnicodeDecodeError):
        first, top, last, words = _derive()
        with contextlib.suppress(OSError):
            _write(path, first, top, last, words)
    return NameSets(frozenset(first), frozenset(top), frozenset(last), frozenset(words))


if __name__ == "__main__":  # `python -m flaxgpt.ingest.privacy.namesets`: build the cache (make setup does)
    sets = load_name_sets()
    print(f"{len(sets.first):,} first names ({len(sets.top_first):,} common, {len(sets.words):,} also words), "
          f"{len(sets.last):,} last names -> {_cache_file()}")
