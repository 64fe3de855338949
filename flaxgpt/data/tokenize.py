"""``flaxgpt tokenize``: text files and documents.jsonl -> train/val token shards.

Inputs are files or folders (walked recursively in sorted order, hidden entries skipped). Every
text file with a known suffix is one document; every line of a ``.jsonl`` file is one document
taken from its ``"text"`` field. Each document goes to ``train`` or ``val`` by a hash of its id
(its path relative to the input folder; for jsonl the record's ``"id"`` if it has one, else the
line number), so the split is deterministic and adding files never moves other documents.
Text is encoded with ``encode_ordinary``: ``<|endoftext|>`` typed in a file is ordinary text.

The whole output is written to a sibling temporary directory and renamed into place at the end,
so a killed run leaves the previous output (or nothing) rather than a partial shard set.
"""

from __future__ import annotations

import fnmatch
import hashlib
import json
import os
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tqdm import tqdm

from flaxgpt.data.outdir import atomic_output_dir, sibling
from flaxgpt.data.shards import DEFAULT_MAX_TOKENS_PER_SHARD, SPLITS, ShardWriter
from flaxgpt.data.tokenizer import get_tokenizer

TEXT_SUFFIXES = frozenset({
    # prose and markup
    ".txt", ".text", ".md", ".markdown", ".rst", ".org", ".adoc", ".tex", ".bib", ".html", ".htm", ".xml",
    # code and config (not .json/.csv/.ipynb: mostly data or embedded outputs; `flaxgpt ingest` extracts those)
    ".py", ".pyi", ".js", ".jsx", ".ts", ".tsx", ".c", ".h", ".cc", ".cpp", ".hpp", ".cs", ".java",
    ".kt", ".scala", ".go", ".rs", ".rb", ".php", ".pl", ".lua", ".swift", ".m", ".r", ".jl", ".hs", ".ml",
    ".ex", ".exs", ".clj", ".el", ".vim", ".sh", ".bash", ".zsh", ".fish", ".ps1", ".sql", ".css", ".scss",
    ".yaml", ".yml", ".toml", ".ini", ".cfg", ".conf", ".proto", ".cmake", ".mk", ".dockerfile",
})
JSONL_SUFFIXES = frozenset({".jsonl"})
SUMMARY_FILE = "summary.json"
MAX_LISTED_SKIPS = 1000  # summary.json lists at most this many skipped files by name
_BATCH_CHARS = 4_000_000  # characters handed to one encode_batch call
_BATCH_DOCS = 512


@dataclass
class _Doc:
    doc_id: str
    text: str


@dataclass
class _Stats:
    files_seen: int = 0
    files_used: int = 0
    skipped: Counter = field(default_factory=Counter)
    skipped_files: list = field(default_factory=list)

    def skip(self, path: str, reason: str) -> None:
        self.skipped[reason] += 1
        if len(self.skipped_files) < MAX_LISTED_SKIPS:
            self.skipped_files.append({"path": path, "reason": reason})


def _is_hidden(rel: Path) -> bool:
    return any(part.startswith(".") for part in rel.parts)


def _walk(inputs: list[Path], exclude: frozenset[Path] = frozenset()) -> Iterator[tuple[Path, str]]:
    """Yields (file, display path) for every file under the inputs, sorted within each input.

    Hidden directories (.git, .venv, ...) are yielded once, as an entry to skip, and not entered.
    Directories in ``exclude`` (resolved paths: the output and its temporary siblings) are not
    entered either, so tokenizing a folder that contains the output never reads earlier output.
    """
    for root in inputs:
        if root.is_file():
            yield root, root.name
            continue
        for dirpath, dirnames, filenames in os.walk(root):
            here = Path(dirpath)
            for name in sorted(n for n in dirnames if n.startswith(".")):
                yield here / name, (here / name).relative_to(root).as_posix()
            dirnames[:] = sorted(n for n in dirnames
                                 if not n.startswith(".") and (here / n).resolve() not in exclude)
            for name in sorted(filenames):
                yield here / name, (here / name).relative_to(root).as_posix()


def split_of(doc_id: str, val_fraction: float) -> tuple[str, float]:
    """The split of a document, decided by a hash of its id: ('train' | 'val', the hash in [0, 1))."""
    h = int.from_bytes(hashlib.sha256(doc_id.encode()).digest()[:8], "big") / 2**64
    return ("val" if h < val_fraction else "train"), h


def _read_text(path: Path) -> str | None:
    """File contents as text with a BOM removed and CRLF normalised, or None if not UTF-8."""
    try:
        return path.read_bytes().decode("utf-8-sig").replace("\r\n", "\n")
    except UnicodeDecodeError:
        return None


def _jsonl_docs(path: Path, rel: str, stats: _Stats) -> Iterator[_Doc]:
    """One document per line of a JSON-lines file (field "text"); blank lines are ignored."""
    with open(path, "rb") as f:
        for lineno, raw in enumerate(f, 1):
            where = f"{path}:{lineno}"
            if not raw.strip():
                continue
            try:
                record = json.loads(raw.decode("utf-8-sig"))  # -sig: tolerate a BOM on line 1
            except (UnicodeDecodeError, json.JSONDecodeError) as e:
                raise ValueError(f"{where}: not a UTF-8 JSON line ({e})") from None
            if not isinstance(record, dict) or "text" not in record:
                raise ValueError(f"{where}: JSON line has no \"text\" field")
            text = record["text"]
            if not isinstance(text, str):
                raise ValueError(f"{where}: \"text\" must be a string, got {type(text).__name__}")
            # Prefer the record's own id so re-ordering documents.jsonl keeps every document's split.
            key = record.get("id")
            doc_id = f"{rel}#{key}" if isinstance(key, str | int) and not isinstance(key, bool) else f"{rel}:{lineno}"
            if not text.strip():
                stats.skip(f"{rel}:{lineno}", "empty")
                continue
            yield _Doc(doc_id, text)


def _documents(inputs: list[Path], exclude: frozenset[Path], stats: _Stats, bar: tqdm,
               exclude_globs: tuple[str, ...] = ()) -> Iterator[_Doc]:
    """Every document of the inputs in a deterministic order, recording skipped entries in stats."""
    seen: set[Path] = set()
    for path, rel in _walk(inputs, exclude):
        stats.files_seen += 1
        bar.update(1)
        resolved = path.resolve()
        suffix = path.suffix.lower()
        if any(fnmatch.fnmatch(rel, g) or fnmatch.fnmatch(path.name, g) for g in exclude_globs):
            stats.skip(rel, "excluded")
        elif resolved in seen:
            stats.skip(rel, "duplicate_input")
        elif _is_hidden(Path(rel)):
            stats.skip(rel, "hidden")
        elif suffix in JSONL_SUFFIXES:
            seen.add(resolved)
            stats.files_used += 1
            yield from _jsonl_docs(path, rel, stats)
        elif suffix not in TEXT_SUFFIXES:
            stats.skip(rel, f"unsupported_suffix{suffix}" if suffix else "no_suffix")
        else:
            seen.add(resolved)
            text = _read_text(path)
            if text is None:
                stats.skip(rel, "not_utf8")
            elif not text.strip():
                stats.skip(rel, "empty")
            else:
                stats.files_used += 1
                yield _Doc(rel, text)


def _batches(docs: Iterator[_Doc]) -> Iterator[list[_Doc]]:
    batch: list[_Doc] = []
    chars = 0
    for doc in docs:
        batch.append(doc)
        chars += len(doc.text)
        if chars >= _BATCH_CHARS or len(batch) >= _BATCH_DOCS:
            yield batch
            batch, chars = [], 0
    if batch:
        yield batch


def is_shard_output(name: str) -> bool:
    """Whether a file name is one a shard-set command (tokenize, tokenize-chat) writes: shards or its summary."""
    return name == SUMMARY_FILE or name.startswith(tuple(f"{s}-" for s in SPLITS))


def split_totals(sidecars: dict[str, list[dict]], key: str) -> dict[str, int]:
    """``key`` (``num_documents``, ``num_tokens``) summed over the shard sidecars of each split."""
    return {s: sum(m[key] for m in sidecars[s]) for s in SPLITS}


class SplitRouter:
    """Streams documents to the train/val writers, holding back one document per split.

    The held documents are the ones that move if a split would otherwise end up empty: the train
    document with the smallest hash (the one nearest the val side) and the val document with the
    largest. Everything else is written as it comes, so memory stays at two documents.

    With ``val_budget``, validation takes documents only while their ``size`` (any unit: ingest passes
    bytes) adds up to no more than the budget; the others train. The train document held for an empty
    validation split is then the smallest one that fits, so a source of one large document and a few
    small ones keeps the large one for training.
    """

    def __init__(self, writers: dict[str, ShardWriter], guarantee_both: bool, val_budget: float | None = None):
        self.writers = writers
        self.guarantee_both = guarantee_both
        self.val_budget = val_budget
        self.val_size = 0.0
        self.counts = dict.fromkeys(SPLITS, 0)
        self.held: dict[str, tuple[Any, list[int], float] | None] = dict.fromkeys(SPLITS)

    def _write(self, split: str, ids: list[int]) -> None:
        self.writers[split].add(ids)
        self.counts[split] += 1

    def add(self, split: str, h: float, ids: list[int], size: float | None = None) -> None:
        """Routes one document (its split and hash from ``split_of``, its tokens, its size for ``val_budget``)."""
        size = float(len(ids) if size is None else size)
        if split == "val" and self.val_budget is not None:
            if self.val_size + size > self.val_budget:
                split = "train"  # validation has taken its share of this source
            else:
                self.val_size += size
        if not self.guarantee_both:
            self._write(split, ids)
            return
        if split == "train":
            fits = self.val_budget is None or size <= self.val_budget
            key = (not fits, size if self.val_budget is not None else 0.0, h)
        else:
            key = -h
        held = self.held[split]
        if held is None or key < held[0]:
            if held is not None:
                self._write(split, held[1])
            self.held[split] = (key, ids, size)
        else:
            self._write(split, ids)

    def finish(self) -> None:
        """Writes the held documents, moving one into a split that would otherwise be empty."""
        n = {s: self.counts[s] + (self.held[s] is not None) for s in SPLITS}
        for split, other in (("train", "val"), ("val", "train")):
            held = self.held[split]
            if held is None:
                continue
            # Move the held document if that leaves both splits non-empty, or if it is the only
            # document (a one-document source trains on it rather than only validating on it);
            # never into validation past its budget.
            move = n[other] == 0 and (n[split] >= 2 or other == "train")
            if move and other == "val" and self.val_budget is not None:
                move = self.val_size + held[2] <= self.val_budget
            if move:
                n[other], n[split] = n[other] + 1, n[split] - 1
            self._write(other if move else split, held[1])
            self.held[split] = None


def tokenize_paths(inputs: list[str | Path], out_dir: str | Path, *, name: str, tokenizer: str = "gpt2",
                   val_fraction: float = 0.05, max_tokens_per_shard: int = DEFAULT_MAX_TOKENS_PER_SHARD,
                   progress: bool = True, exclude: tuple[str, ...] = ()) -> dict:
    """Tokenizes files and folders into a train/val shard set in ``out_dir``.

    Args:
      inputs: files or folders; folders are walked recursively in sorted order.
      out_dir: output directory; replaced as a whole at the end (must be new, empty, or earlier output).
      name: source name recorded in every shard sidecar.
      tokenizer: 'gpt2' or 'flaxgpt'.
      val_fraction: expected share of documents in val, in [0, 1). Above 0, any corpus of >= 2
        documents gets at least one document in each split.
      max_tokens_per_shard: roll to a new shard file past this many tokens.
      progress: show a tqdm progress bar over files.
      exclude: glob patterns; a file whose path relative to its input (or whose name) matches is skipped.

    Returns:
      The summary also written to ``out_dir/summary.json``: documents and tokens per split,
      files seen/used, skip counts by reason and the skipped files.
    """
    if not 0.0 <= val_fraction < 1.0:
        raise ValueError(f"val_fraction must be in [0, 1), got {val_fraction}")
    if not inputs:
        raise ValueError("no inputs given")
    paths = [Path(p) for p in inputs]
    for p in paths:
        if not p.exists():
            raise FileNotFoundError(f"input not found: {p}")
    tok = get_tokenizer(tokenizer)
    meta = tok.metadata()
    out_dir = Path(out_dir).resolve()  # so '.' has a parent for the temporary sibling
    stats = _Stats()
    exclude_dirs = frozenset({out_dir, sibling(out_dir, "tmp"), sibling(out_dir, "old")})
    total_files = sum(1 for _ in _walk(paths, exclude_dirs))

    with atomic_output_dir(out_dir, is_shard_output, "tokenize") as tmp:
        writers = {s: ShardWriter(tmp, s, tokenizer_meta=meta, source=name, max_tokens_per_shard=max_tokens_per_shard)
                   for s in SPLITS}
        router = SplitRouter(writers, guarantee_both=val_fraction > 0)
        n_tokens = 0
        threads = os.cpu_count() or 1
        with tqdm(total=total_files, unit="file", desc=f"tokenize {name}", disable=not progress) as bar:
            for batch in _batches(_documents(paths, exclude_dirs, stats, bar, tuple(exclude))):
                for doc, ids in zip(batch, tok.encode_batch([d.text for d in batch], num_threads=threads),
                                    strict=True):
                    split, h = split_of(doc.doc_id, val_fraction)
                    router.add(split, h, ids)
                    n_tokens += len(ids)
                bar.set_postfix(tokens=f"{n_tokens:,}")
        router.finish()
        sidecars = {s: writers[s].close() for s in SPLITS}
        summary = {
            "name": name,
            "tokenizer": meta,
            "inputs": [str(p) for p in inputs],
            "val_fraction": val_fraction,
            "documents": split_totals(sidecars, "num_documents"),
            "tokens": split_totals(sidecars, "num_tokens"),
            "shards": {s: len(sidecars[s]) for s in SPLITS},
            "files": {"seen": stats.files_seen, "used": stats.files_used,
                      "skipped": stats.files_seen - stats.files_used},
            "skipped": dict(sorted(stats.skipped.items())),
            "skipped_files": stats.skipped_files,
        }
        (tmp / SUMMARY_FILE).write_text(json.dumps(summary, indent=2) + "\n")
    return summary
