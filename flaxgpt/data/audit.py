"""``flaxgpt audit DIR --canaries FILE``: search every file of an output for strings that must never be there.

A canary is a string a user planted in (or knows to be in) their raw data, such as a phone number,
a key or a street address, that privacy scrubbing should have removed. The audit decodes every
document of every shard (train and val) with the tokenizer its sidecar names, and reads every other
file of the output as text (``audit_files``): JSON and JSON Lines field by field (``documents.jsonl``,
``dropped.jsonl``, ``report.json``, ``mixture.json``, ``tokenizer.json``, shard sidecars), anything
else whole (``report.md``). Pointed at one source's shards inside an ingest output, it also reads the
files at the top of that output. Each canary found is reported with the file, the shard document
index or JSON Lines line (and record id), and the JSON field.

A canary matches when it occurs in a document:

* ``exact``: case-insensitively;
* ``whitespace``: case-insensitively with all whitespace removed from both ("Jane  Doe", "jane\\ndoe");
* ``fuzzy`` (only with ``fuzzy=True``, ``--fuzzy``): case-insensitively with everything but letters and
  digits removed from both: whitespace, line breaks and separators such as ``-``, ``.``, ``_`` inside the
  canary do not matter ("hunter2-Secret" is found as "HUNTER2 secret" or "hunter2_secret");
* ``digits``: for canaries that are mostly digits (at least 6 digits, and digits are most of the
  non-space characters), their digits inside one number of the document, where a number's digit
  groups may be joined by spaces, dashes, dots, slashes or parentheses: "+31 6 4827 1953" is found
  as "+31648271953", "0031-6-48271953" or "(6) 4827-1953 ..." containing "31648271953".

Canary file: one canary per line; blank lines and lines starting with ``#`` are ignored.
The command (``flaxgpt.cli.data``) exits with 0 when no canary is found, 1 when any is, 2 when the
audit cannot run (no shards, a shard set it cannot decode, no canaries).

Shards are decoded in chunks of documents, and each chunk is searched with one C-level ``find``
per canary and form, so the cost is dominated by decoding, not by the number of documents.
"""

from __future__ import annotations

import bisect
import re
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from tqdm import tqdm

from flaxgpt.data.audit_files import Item, file_items, output_files
from flaxgpt.data.shards import SPLITS, ShardSet, list_shards
from flaxgpt.data.tokenizer import SPEC_FILE, Tokenizer, get_tokenizer, load_spec, tokenizer_from_spec

_CHUNK_CHARS = 8_000_000  # decoded characters searched at once
_SEP = "\x00"  # between documents of a chunk: no canary form contains it
_WS = re.compile(r"\s+")
# Separators between the digit groups of one written number: "+31 (6) 4827-1953", "06.48.27.19.53".
_NUMBER_SEP = re.compile(r"(?<=\d)[ \t()./+\-]{1,3}(?=[\d(+])")
_NON_DIGITS = re.compile(r"\D+")
_NON_ALNUM = re.compile(r"[\W_]+")


@dataclass(frozen=True)
class Finding:
    """One canary found in one document."""

    canary: str
    where: str  # shard prefix (".../train-00000") or a file's path
    document: int  # index of the document in that shard (0-based), line number in a .jsonl (1-based), else 0
    match: str  # 'exact', 'whitespace', 'fuzzy' or 'digits' (see the module docstring)
    doc_id: str | None = None  # the record's id, for JSON Lines records that have one
    field: str | None = None  # the JSON path of the value ("metadata.to[0]"), for JSON and JSON Lines files


@dataclass
class AuditReport:
    """What the audit searched and every canary it found."""

    canaries: tuple[str, ...]
    findings: list[Finding] = field(default_factory=list)
    shard_sets: list[str] = field(default_factory=list)
    shards: int = 0
    documents: int = 0
    jsonl_files: list[str] = field(default_factory=list)
    jsonl_records: int = 0
    files: list[str] = field(default_factory=list)  # every file read as text (JSON Lines included)

    @property
    def clean(self) -> bool:
        """True when no canary was found anywhere."""
        return not self.findings


@dataclass(frozen=True)
class _Canary:
    text: str
    lower: str
    compact: str  # lower-case, no whitespace
    fuzzy: str  # lower-case, letters and digits only
    digits: str | None  # the digits, for mostly-digit canaries


def read_canaries(path: str | Path) -> list[str]:
    """Canary strings of a file: one per line, blank lines and ``#`` comments skipped, duplicates dropped."""
    lines = Path(path).read_text(encoding="utf-8-sig").splitlines()
    seen: dict[str, None] = {}
    for line in lines:
        line = line.strip()
        if line and not line.startswith("#"):
            seen.setdefault(line, None)
    return list(seen)


def _canary(text: str) -> _Canary:
    compact = _WS.sub("", text.lower())
    digits = _NON_DIGITS.sub("", text)
    mostly_digits = len(digits) >= 6 and len(digits) * 2 > len(_WS.sub("", text))
    return _Canary(text, text.lower(), compact, _NON_ALNUM.sub("", text.lower()), digits if mostly_digits else None)


class _Matcher:
    """Searches batches of documents for all canaries in their three forms."""

    def __init__(self, canaries: Sequence[str], fuzzy: bool = False):
        self.canaries = [_canary(c) for c in canaries]
        self.any_digits = any(c.digits for c in self.canaries)
        self.fuzzy = fuzzy

    def search(self, docs: Sequence[str]) -> Iterator[tuple[int, _Canary, str]]:
        """Yields (index in docs, canary, match form) once per canary and document."""
        lower = [d.lower() for d in docs]
        forms = [("exact", lower, lambda c: c.lower),
                 ("whitespace", [_WS.sub("", d) for d in lower], lambda c: c.compact)]
        if self.fuzzy:
            forms.append(("fuzzy", [_NON_ALNUM.sub("", d) for d in lower], lambda c: c.fuzzy))
        if self.any_digits:
            numbers = [_NON_DIGITS.sub(_SEP, _NUMBER_SEP.sub("", d)) for d in docs]
            forms.append(("digits", numbers, lambda c: c.digits))
        found: set[tuple[int, int]] = set()
        for form, texts, key in forms:
            joined = _SEP.join(texts)
            starts = [0]
            for t in texts[:-1]:
                starts.append(starts[-1] + len(t) + 1)
            for k, canary in enumerate(self.canaries):
                needle = key(canary)
                if not needle:
                    continue
                i = joined.find(needle)
                while i >= 0:
                    doc = bisect.bisect_right(starts, i) - 1
                    if (doc, k) not in found:
                        found.add((doc, k))
                        yield doc, canary, form
                    i = joined.find(needle, starts[doc + 1] if doc + 1 < len(starts) else len(joined))


def find_shard_dirs(path: str | Path) -> list[Path]:
    """Shard directories at or below ``path``: ``path`` itself if it holds shards, else every such sub-directory."""
    path = Path(path)
    if not path.is_dir():
        raise FileNotFoundError(f"not a directory: {path}")

    def has_shards(d: Path) -> bool:
        return any((d / f"{s}-00000.json").exists() for s in SPLITS)

    if has_shards(path):
        return [path]
    found = sorted(d for d in path.rglob("*") if d.is_dir() and not any(p.startswith(".") for p in
                                                                        d.relative_to(path).parts) and has_shards(d))
    if not found:
        raise FileNotFoundError(f"no token shards in {path} or below (expected train-00000.json etc.)")
    return found


def _tokenizer_for(shard_dir: Path, meta: dict, cache: dict) -> Tokenizer:
    """The tokenizer a sidecar names: a built-in one, or one rebuilt from the tokenizer.json next to the
    shards or in a directory above them; ValueError if its hash differs from the sidecar's."""
    key = (meta["name"], meta["hash"])
    if key in cache:
        return cache[key]
    tok = None
    try:
        tok = get_tokenizer(meta["name"])
    except ValueError:
        for d in (shard_dir, *list(shard_dir.parents)[:3]):
            if (d / SPEC_FILE).is_file():
                tok = tokenizer_from_spec(load_spec(d))
                break
    if tok is None:
        raise ValueError(f"{shard_dir}: shards use tokenizer {meta['name']!r}, which is neither built in nor "
                         f"described by a {SPEC_FILE} next to the shards or above them")
    if tok.metadata()["hash"] != meta["hash"]:
        raise ValueError(f"{shard_dir}: shards were written with tokenizer {meta['name']!r} hash {meta['hash']}, "
                         f"but it rebuilds with hash {tok.metadata()['hash']}; decoding would give other text")
    cache[key] = tok
    return tok


def _chunks(items: Iterable[Item]) -> Iterator[list[Item]]:
    chunk, chars = [], 0
    for item in items:
        chunk.append(item)
        chars += len(item.text)
        if chars >= _CHUNK_CHARS:
            yield chunk
            chunk, chars = [], 0
    if chunk:
        yield chunk


def _search(matcher: _Matcher, items: Iterable[Item], where: str) -> Iterator[Finding]:
    for chunk in _chunks(items):
        for k, canary, form in matcher.search([item.text for item in chunk]):
            item = chunk[k]
            yield Finding(canary.text, where, item.document, form, item.doc_id, item.field)


def _shard_sets(dirs: list[Path]) -> list[tuple[Path, ShardSet]]:
    sets = []
    for d in dirs:
        for split in SPLITS:
            try:
                list_shards(d, split)
            except FileNotFoundError:
                continue
            sets.append((d, ShardSet(d, split)))
    return sets


def _text_files(path: Path) -> list[Path]:
    """The files besides shard data at or below ``path``, plus the files at the top of the ingest output
    that ``path`` belongs to when it is one source's shards (``DIR/shards/<source>``)."""
    files = set(output_files(path))
    for up in (path.parent, path.parent.parent):
        if (up / "shards").is_dir() and path.resolve().is_relative_to((up / "shards").resolve()):
            files |= {f for f in up.iterdir() if f.is_file() and not f.name.startswith(".")}
    return sorted(files)


def _counted(items: Iterator[Item], report: AuditReport) -> Iterator[Item]:
    """Passes JSON Lines items through, counting their records (lines) in ``report``."""
    last = None
    for item in items:
        if item.document != last:
            report.jsonl_records += 1
            last = item.document
        yield item


def audit(paths: Sequence[str | Path], canaries: Sequence[str], *, progress: bool = True,
          fuzzy: bool = False) -> AuditReport:
    """Searches the shard sets at or below ``paths`` and every other file of the output for ``canaries``.

    Args:
      paths: shard directories, or directories holding several (an ingest output).
      canaries: the strings to look for (see the module docstring for how they match).
      progress: show a tqdm progress bar over shards.
      fuzzy: also match ignoring case, whitespace and every separator (the ``fuzzy`` form).

    Returns:
      An AuditReport listing every (canary, document) found and what was searched. Raises
      FileNotFoundError when a path holds no shards, ValueError for no canaries or shards whose
      tokenizer cannot be rebuilt exactly.
    """
    canaries = tuple(c for c in canaries if c.strip())
    if not canaries:
        raise ValueError("no canaries to look for")
    matcher = _Matcher(canaries, fuzzy)
    report = AuditReport(canaries)
    roots = [Path(p) for p in paths]
    dirs = sorted({d for p in roots for d in find_shard_dirs(p)})
    sets = _shard_sets(dirs)
    tokenizers: dict = {}
    for d, ss in sets:
        _tokenizer_for(d, ss.tokenizer_meta, tokenizers)  # fail before decoding anything
    report.shard_sets = [str(d) for d in dirs]
    with tqdm(total=sum(len(ss.meta) for _, ss in sets), unit="shard", desc="audit", disable=not progress) as bar:
        for d, ss in sets:
            tok = _tokenizer_for(d, ss.tokenizer_meta, tokenizers)
            first = 0
            for prefix, meta in zip(list_shards(d, ss.split), ss.meta, strict=True):
                n = int(meta["num_documents"])
                docs = (Item(j, tok.decode(ss[first + j].tolist())) for j in range(n))
                report.findings += _search(matcher, docs, str(prefix))
                report.shards += 1
                report.documents += n
                first += n
                bar.update(1)
    for path in sorted({f for p in roots for f in _text_files(p)}):
        items = file_items(path)
        if path.suffix == ".jsonl":
            items = _counted(items, report)
            report.jsonl_files.append(str(path))
        report.findings += _search(matcher, items, str(path))
        report.files.append(str(path))
    return report
