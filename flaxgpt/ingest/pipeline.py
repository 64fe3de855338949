"""The file -> document half of ``flaxgpt ingest``: a person's files -> ``documents.jsonl`` and ``dropped.jsonl``.

Stages, per document, in this order:

1. extract   (worker processes)  each file's text, by format; unusable files are skipped with a reason
2. scrub     (workers)           secrets and PII -> typed placeholders, before anything is written
3. quality   (workers)           the filters of the document's kind; language identified
4. dedup     (main process)      exact, repeated paragraphs, MinHash LSH near-duplicates, in input order
5. write     (main process)      the kept documents to ``documents.jsonl``, the rest with a reason to
                                 ``dropped.jsonl``; counts per source into the ``IngestReport``

Workers return results in input order, and everything order-dependent happens in the main process, so
the same input gives byte-identical output whatever the number of workers. Tokenizing the kept documents
into shards is ``flaxgpt.data.corpus``'s job.
"""

from __future__ import annotations

import json
import multiprocessing
import os
import sys
from collections import Counter, deque
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

import ml_collections
from tqdm import tqdm

from flaxgpt.ingest import general
from flaxgpt.ingest.dedup import DedupIndex, fingerprint
from flaxgpt.ingest.extract.base import MAX_FILE_BYTES, Context, Document, Owner, Skip, SourceFile, SourceTree
from flaxgpt.ingest.extract.capture import captured_warnings
from flaxgpt.ingest.extract.code import extract_code_file, is_code_file
from flaxgpt.ingest.extract.documents import DOCUMENT_EXTRACTORS
from flaxgpt.ingest.extract.sources import SOURCE_EXTRACTORS
from flaxgpt.ingest.files import ARCHIVE_SEP, is_zip, open_tree
from flaxgpt.ingest.privacy import Scrubber
from flaxgpt.ingest.privacy.metadata import metadata_people, scrub_metadata, scrub_path
from flaxgpt.ingest.privacy.namesets import load_name_sets
from flaxgpt.ingest.quality.filter import QualityFilter
from flaxgpt.ingest.quality.perplexity import ScorerFactory
from flaxgpt.ingest.report import DROPPED_FILE, IngestReport, reason_class

DOCUMENTS_FILE = "documents.jsonl"
_JOB_BYTES = 1 << 20  # small files are sent to workers in groups of about this many bytes
_JOB_DOCS = 256  # documents per job for sources extracted in the main process


# ----------------------------------------------------------------------------------------------------------------
# Work done in worker processes: extract, scrub, quality-check and fingerprint.


@dataclass
class _Job:
    """A unit of worker work: files to extract, or documents already extracted in the main process."""

    source: str
    files: list[SourceFile] = field(default_factory=list)
    docs: list[Document] = field(default_factory=list)
    # Files skipped while listing the source, and files a per-source extractor read: carried through the
    # workers so that the report and dropped.jsonl see them in input order.
    skipped: list[tuple[str, str]] = field(default_factory=list)
    files_read: int = 0
    bytes_read: int = 0


@dataclass
class _Done:
    """One document after the worker stages."""

    source: str
    doc: Document
    privacy: dict[str, int]
    drop: str | None
    fingerprint: Any


@dataclass
class _JobResult:
    source: str
    done: list[_Done]
    skipped: list[tuple[str, str]]  # (file rel, reason)
    files: int
    bytes_read: int
    warnings: list[tuple[str, str]] = field(default_factory=list)  # (file rel, a library's warning while reading it)


def _owner(owner: Any) -> Owner:
    return Owner(names=tuple(owner["names"]), emails=tuple(owner["emails"]), handles=tuple(owner["handles"]))


class _Worker:
    """Per-process state: the extractors, the scrubber and the filters, built once from the config."""

    def __init__(self, config: dict, scorer_factory: ScorerFactory | None):
        self.config = config
        self.owner = _owner(config["owner"])
        self.scrubber = Scrubber(self.owner, public=tuple(config["owner"]["public"]))
        self.quality = QualityFilter.from_config(config["quality"], scorer_factory)
        self.dedup_config = DedupIndex.from_config(config["dedup"]).config

    def context(self, source: dict) -> Context:
        return Context(owner=self.owner, owner_only=source["owner_only"], commit_messages=source["commit_messages"])

    def extract_file(self, file: SourceFile, source: dict) -> list[Document]:
        extractor = DOCUMENT_EXTRACTORS.get(file.suffix)
        if extractor is None:
            if not is_code_file(file.rel):
                raise Skip(f"unsupported format {file.suffix or '(no extension)'}")
            extractor = extract_code_file
        return list(extractor(file, self.context(source)))

    def finish(self, source_name: str, source: dict, doc: Document) -> _Done:
        if source["doc_kind"]:
            doc.kind = source["doc_kind"]
        elif source["kind"] in ("text", "tfds"):
            doc.kind = "web"
        counts: dict[str, int] = {}
        people = metadata_people(doc.metadata, self.scrubber) if source["scrub"] else ()
        doc.metadata.pop("people", None)  # other people's names are never written out
        if source["scrub"]:
            # Code is not prose: its identifiers are never taken for names found by context.
            result = self.scrubber.scrub(doc.text, people=people, find_names=doc.kind != "code")
            doc.metadata, meta_counts = scrub_metadata(doc.metadata, self.scrubber, people)
            doc.path = scrub_path(doc.path, self.scrubber)
            doc.text, counts = result.text, dict(Counter(result.counts) + meta_counts)
        drop = None
        if not doc.text.strip():
            drop = "empty"
        elif source["quality"] and self.config["quality"]["enabled"]:
            drop = self.quality.check(doc.text, doc.kind)
            lang = self.quality.language(doc.text, doc.kind)
            if lang is not None:
                doc.metadata["language"] = lang
        fp = fingerprint(doc.text, doc.kind, config=self.dedup_config) if drop is None else None
        return _Done(source_name, doc, counts, drop, fp)

    def run(self, job: _Job) -> _JobResult:
        source = self.config["sources"][job.source]
        done, skipped, nbytes, warned = [], list(job.skipped), job.bytes_read, []
        for file in job.files:
            nbytes += file.size
            with captured_warnings() as messages:
                try:
                    docs = self.extract_file(file, source)
                except Skip as why:
                    docs = None
                    skipped.append((file.rel, str(why)))
                except Exception as err:  # one bad file never stops the run
                    docs = None
                    skipped.append((file.rel, f"error: {type(err).__name__}: {err}"))
            warned.extend((file.rel, m) for m in messages)
            if docs is None:
                continue
            if not docs:
                skipped.append((file.rel, "no text"))
            done.extend(self.finish(job.source, source, d) for d in docs)
        done.extend(self.finish(job.source, source, doc) for doc in job.docs)
        return _JobResult(job.source, done, skipped, len(job.files) + job.files_read, nbytes, warned)


_WORKER: _Worker | None = None


def _init_worker(config: dict, scorer_factory: ScorerFactory | None) -> None:
    global _WORKER
    _WORKER = _Worker(config, scorer_factory)


def _run_job(job: _Job) -> _JobResult:
    return _WORKER.run(job)


# ----------------------------------------------------------------------------------------------------------------
# Producing jobs, in a deterministic order.


def _file_jobs(name: str, files: list[SourceFile]) -> Iterator[_Job]:
    batch: list[SourceFile] = []
    size = 0
    for f in files:
        batch.append(f)
        size += f.size
        if size >= _JOB_BYTES:
            yield _Job(name, files=batch)
            batch, size = [], 0
    if batch:
        yield _Job(name, files=batch)


def _doc_jobs(name: str, docs: Iterator[Document]) -> Iterator[_Job]:
    batch: list[Document] = []
    for doc in docs:
        batch.append(doc)
        if len(batch) >= _JOB_DOCS:
            yield _Job(name, docs=batch)
            batch = []
    if batch:
        yield _Job(name, docs=batch)


def _tfds_docs(source: ml_collections.ConfigDict) -> Iterator[Document]:
    items = general.iter_tfds(source.dataset, split=source.split, data_dir=source.path or None,
                              text_key=source.text_key)
    for i, (doc_id, text) in enumerate(items):
        if source.max_documents and i >= source.max_documents:
            return
        yield Document(text=text, kind=source.doc_kind or "prose", path=doc_id)


def _list_sources(config: ml_collections.ConfigDict) -> dict[str, tuple[SourceTree | None, list[tuple[str, str]]]]:
    """Each source's file tree (None for tfds) and the files skipped while listing it; reads no content."""
    listed = {}
    for name, source in config.sources.items():
        skipped: list[tuple[str, str]] = []
        tree = None
        if source.kind != "tfds":
            # Exports and mailboxes are single files of any size (a Gmail Takeout mbox is often gigabytes);
            # their extractors stream them.
            limit = MAX_FILE_BYTES if source.kind in ("documents", "text") else 2**62
            tree = open_tree(source.path, include=source.include, exclude=source.exclude, max_file_bytes=limit,
                             on_skip=lambda rel, why, skipped=skipped: skipped.append((rel, why)))
        listed[name] = (tree, skipped)
    return listed


def _source_jobs(config: ml_collections.ConfigDict, listed: dict) -> Iterator[_Job]:
    """Every job of every source, in source-name order. Skipped files ride on the jobs so the report and
    dropped.jsonl see them in input order."""
    owner = _owner(config.owner)
    for name, source in config.sources.items():
        tree, skipped = listed[name]
        if tree is None:
            yield from _doc_jobs(name, _tfds_docs(source))
            continue
        if source.kind in ("documents", "text"):
            yield _Job(name, skipped=skipped)
            yield from _file_jobs(name, list(tree.files))
            continue
        extractor = SOURCE_EXTRACTORS[source.kind]
        ctx = Context(owner=owner, owner_only=source.owner_only, commit_messages=source.commit_messages,
                      max_file_bytes=2**62, on_skip=lambda rel, why, skipped=skipped: skipped.append((rel, why)))
        try:
            yield from _doc_jobs(name, extractor(tree, ctx))
        except Skip as why:
            skipped.append((tree.label, str(why)))
        except Exception as err:  # a broken export skips the rest of that source, with the reason in the report
            skipped.append((tree.label, f"error: {type(err).__name__}: {err}"))
        yield _Job(name, skipped=skipped, files_read=len(tree.files), bytes_read=sum(f.size for f in tree.files))


def _results(config: ml_collections.ConfigDict, jobs: Iterator[_Job],
             scorer_factory: ScorerFactory | None) -> Iterator[_JobResult]:
    """Runs the jobs in worker processes (in order), or inline with one worker."""
    workers = config.workers or os.cpu_count() or 1
    plain = json.loads(config.to_json())
    if not plain["quality"]["perplexity_run"]:
        scorer_factory = None  # unused: spawned workers then never import its module (JAX, the model)
    if workers == 1:
        worker = _Worker(plain, scorer_factory)
        for job in jobs:
            yield worker.run(job)
        return
    QualityFilter.from_config(plain["quality"], scorer_factory)  # a config error is raised here, not in each worker
    load_name_sets()  # builds the name cache once (first run only), not in every worker at the same time
    ctx = multiprocessing.get_context("spawn")  # never fork a process that may hold threads or JAX
    with ctx.Pool(workers, initializer=_init_worker, initargs=(plain, scorer_factory)) as pool:
        # apply_async with a bounded queue rather than imap: imap would list (and extract) every job up
        # front, holding the whole corpus in memory.
        pending: deque = deque()
        for job in jobs:
            pending.append(pool.apply_async(_run_job, (job,)))
            if len(pending) >= 3 * workers:
                yield pending.popleft().get()
        while pending:
            yield pending.popleft().get()


def _select(config: ml_collections.ConfigDict, results: Iterator[_JobResult], report: IngestReport,
            docs_out: TextIO, dropped: TextIO, bar: tqdm) -> None:
    """Dedups in input order and writes the kept documents to documents.jsonl."""
    index = DedupIndex.from_config(config.dedup)
    scrubber = Scrubber(_owner(config.owner), public=tuple(config.owner.public))  # for paths and reasons written
    for res in results:
        stats = report.s[res.source]
        stats["files_read"] += res.files
        stats["bytes_read"] += res.bytes_read
        bar.update(res.bytes_read)
        for rel, reason in res.skipped:
            stats["files_skipped"][reason_class(reason)] += 1
            rel, reason = scrub_path(rel, scrubber), scrubber.scrub(reason, find_names=False).text
            dropped.write(json.dumps({"source": res.source, "path": rel, "reason": reason}) + "\n")
        for rel, message in res.warnings:
            stats["warnings"].append(scrubber.scrub(f"{scrub_path(rel, scrubber)}: {message}", find_names=False).text)
            bar.write(f"warning: {_file_path(config.sources[res.source].path, rel)}: {message}", file=sys.stderr)
        for d in res.done:
            stats["documents_extracted"] += 1
            if "encoding" in d.doc.metadata:  # not plain UTF-8 (extract.decode)
                stats["encodings"][d.doc.metadata["encoding"]] += 1
                stats["bytes_replaced"] += d.doc.metadata.get("replaced_bytes", 0)
            stats["privacy"].update(d.privacy)
            doc_id = f"{res.source}/{d.doc.path}"
            reason = d.drop
            text = d.doc.text
            if reason is None:
                reason, text, stripped = index.check(doc_id, text, d.fingerprint)
                stats["paragraphs_stripped"] += stripped
            if reason is not None:
                stats["dropped"][reason_class(reason)] += 1
                dropped.write(json.dumps({"source": res.source, "id": doc_id, "reason": reason}) + "\n")
                continue
            stats["documents_kept"] += 1
            stats["bytes_kept"] += len(text.encode())
            record = {"id": doc_id, "source": res.source, "kind": d.doc.kind, "path": d.doc.path, "text": text,
                      "metadata": d.doc.metadata}
            docs_out.write(json.dumps(record, ensure_ascii=False, sort_keys=False) + "\n")
        bar.set_postfix(files=sum(s["files_read"] for s in report.s.values()),
                        docs=sum(s["documents_kept"] for s in report.s.values()))


def _file_path(source_path: str, rel: str) -> str:
    """Where a file of a source is, for messages: the folder joined with ``rel``, ``archive.zip!/member``, or the
    source file itself."""
    root = Path(source_path)
    if root.is_dir():
        return str(root / rel)
    return f"{root}{ARCHIVE_SEP}{rel}" if is_zip(root) else str(root)


def extract_documents(config: ml_collections.ConfigDict, out_dir: Path, report: IngestReport, *,
                      progress: bool = True, scorer_factory: ScorerFactory | None = None) -> None:
    """Runs stages 1-5 for a resolved sources config (``load_ingest_config``): writes ``documents.jsonl`` and
    ``dropped.jsonl`` into ``out_dir`` and counts into ``report`` (built for ``config.sources``).

    ``scorer_factory`` builds the perplexity scorer when ``quality.perplexity_run`` is set (ValueError otherwise).
    """
    with open(out_dir / DOCUMENTS_FILE, "w", encoding="utf-8") as docs_out, \
            open(out_dir / DROPPED_FILE, "w", encoding="utf-8") as dropped, \
            tqdm(total=None, unit="B", unit_scale=True, desc="ingest", disable=not progress) as bar:
        listed = _list_sources(config)
        bar.total = sum(f.size for tree, _ in listed.values() if tree is not None for f in tree.files) or None
        _select(config, _results(config, _source_jobs(config, listed), scorer_factory), report, docs_out, dropped,
                bar)


def read_documents(path: Path) -> Iterator[dict]:
    """The records of a ``documents.jsonl``, in order."""
    with open(path, encoding="utf-8") as f:
        for line in f:
            yield json.loads(line)
