"""``flaxgpt ingest SOURCES_CONFIG --out DIR``: a person's files -> clean, private, deduplicated token shards.

Stages, per document, in this order:

1. extract   (worker processes)  each file's text, by format; unusable files are skipped with a reason
2. scrub     (workers)           secrets and PII -> typed placeholders, before anything is written
3. quality   (workers)           the filters of the document's kind; language identified
4. dedup     (main process)      exact, repeated paragraphs, MinHash LSH near-duplicates, in input order
5. write     (main process)      ``documents.jsonl``, then token shards per source with a
                                 deterministic train/val split by document id

Workers return results in input order (``imap``), and everything order-dependent happens in the
main process, so the same input gives byte-identical output whatever the number of workers.
Everything is written to a hidden sibling of ``DIR`` and renamed into place at the end: an
interrupted run leaves no partial output, and rerunning it gives the same result.

Output::

    DIR/documents.jsonl        kept documents: id, source, kind, path, text, metadata
    DIR/dropped.jsonl          every dropped document and skipped file: id or path, source, reason
    DIR/shards/<source>/       token shards (train/val) of each source
    DIR/mixture.json           source -> shard folder and weight, read by the training loader
    DIR/tokenizer.json         the tokenizer spec the shards were written with
    DIR/report.json, report.md per source: files read and skipped, documents kept and dropped by
                               reason, bytes, tokens, privacy replacements, duplicates
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import shutil
import sys
import time
from collections import Counter, deque
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import ml_collections
from tqdm import tqdm

from flaxgpt.data.outdir import prepare_out_dir, swap_into_place
from flaxgpt.data.shards import SPLITS, ShardWriter
from flaxgpt.data.tokenize import SplitRouter, split_of
from flaxgpt.ingest.extract.base import MAX_FILE_BYTES, Context, Document, Owner, Skip, SourceFile, SourceTree
from flaxgpt.ingest.files import open_tree

DOCUMENTS_FILE = "documents.jsonl"
DROPPED_FILE = "dropped.jsonl"
REPORT_JSON = "report.json"
REPORT_MD = "report.md"
MIXTURE_FILE = "mixture.json"
SHARDS_DIR = "shards"
_OUTPUT_NAMES = {DOCUMENTS_FILE, DROPPED_FILE, REPORT_JSON, REPORT_MD, MIXTURE_FILE, SHARDS_DIR, "tokenizer.json"}
_JOB_BYTES = 1 << 20  # small files are sent to workers in groups of about this many bytes
_JOB_DOCS = 256  # documents per job for sources extracted in the main process
_TOKENIZE_CHARS = 4_000_000  # characters per tokenizer batch


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


class _Worker:
    """Per-process state: the extractors, the scrubber and the filters, built once from the config."""

    def __init__(self, config: dict):
        from flaxgpt.ingest import dedup, privacy, quality

        self.config = config
        owner = config["owner"]
        self.owner = Owner(names=tuple(owner["names"]), emails=tuple(owner["emails"]),
                           handles=tuple(owner["handles"]))
        self.scrubber = privacy.Scrubber(self.owner, public=tuple(owner["public"]))
        self.quality = quality.QualityFilter.from_config(config["quality"])
        self.dedup_config = dedup.DedupIndex.from_config(config["dedup"]).config
        self.fingerprint = dedup.fingerprint

    def context(self, source: dict) -> Context:
        return Context(owner=self.owner, owner_only=source["owner_only"], commit_messages=source["commit_messages"])

    def extract_file(self, file: SourceFile, source: dict) -> list[Document]:
        from flaxgpt.ingest.extract.code import extract_code_file, is_code_file
        from flaxgpt.ingest.extract.documents import DOCUMENT_EXTRACTORS

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
        if source["scrub"]:
            result = self.scrubber.scrub(doc.text, people=tuple(doc.metadata.get("people", ())))
            doc.text, counts = result.text, dict(result.counts)
        doc.metadata.pop("people", None)  # other people's names are never written out
        drop = None
        if not doc.text.strip():
            drop = "empty"
        elif source["quality"] and self.config["quality"]["enabled"]:
            drop = self.quality.check(doc.text, doc.kind)
            lang = self.quality.language(doc.text, doc.kind)
            if lang is not None:
                doc.metadata["language"] = lang
        fp = self.fingerprint(doc.text, doc.kind, config=self.dedup_config) if drop is None else None
        return _Done(source_name, doc, counts, drop, fp)

    def run(self, job: _Job) -> _JobResult:
        source = self.config["sources"][job.source]
        done, skipped, nbytes = [], list(job.skipped), job.bytes_read
        for file in job.files:
            nbytes += file.size
            try:
                docs = self.extract_file(file, source)
            except Skip as why:
                skipped.append((file.rel, str(why)))
                continue
            except Exception as err:  # one bad file never stops the run
                skipped.append((file.rel, f"error: {type(err).__name__}: {err}"))
                continue
            if not docs:
                skipped.append((file.rel, "no text"))
            done.extend(self.finish(job.source, source, d) for d in docs)
        done.extend(self.finish(job.source, source, doc) for doc in job.docs)
        return _JobResult(job.source, done, skipped, len(job.files) + job.files_read, nbytes)


_WORKER: _Worker | None = None


def _init_worker(config: dict) -> None:
    global _WORKER
    _WORKER = _Worker(config)


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
    from flaxgpt.ingest import general

    items = general.iter_tfds(source.dataset, split=source.split, data_dir=source.path or None,
                              text_key=source.text_key)
    for i, (doc_id, text) in enumerate(items):
        if source.max_documents and i >= source.max_documents:
            return
        yield Document(text=text, kind=source.doc_kind or "prose", path=doc_id)


class _Report:
    """Counts per source, turned into report.json and report.md at the end."""

    def __init__(self, sources: list[str]):
        self.s: dict[str, dict[str, Any]] = {
            name: {"files_read": 0, "files_skipped": Counter(), "bytes_read": 0, "documents_extracted": 0,
                   "documents_kept": 0, "dropped": Counter(), "bytes_kept": 0, "tokens": dict.fromkeys(SPLITS, 0),
                   "documents": dict.fromkeys(SPLITS, 0), "privacy": Counter(), "paragraphs_stripped": 0}
            for name in sources}

    def to_json(self) -> dict:
        out = {}
        for name, s in self.s.items():
            out[name] = {k: (dict(sorted(v.items())) if isinstance(v, Counter) else v) for k, v in s.items()}
        return out


def _reason_class(reason: str) -> str:
    """The report groups drop reasons by their leading words ('near-duplicate of X' -> 'near-duplicate')."""
    for sep in (":", " of ", " (", " >", " <"):
        reason = reason.split(sep, 1)[0]
    return reason.strip()


def _write_report_md(path: Path, report: dict, totals: dict) -> None:
    lines = ["# Ingest report", "",
             f"{totals['documents_kept']:,} documents kept of {totals['documents_extracted']:,} extracted "
             f"from {totals['files_read']:,} files; {totals['tokens']:,} tokens.", "",
             "| source | files read | files skipped | documents kept | dropped | MB kept | train tokens | val tokens "
             "| privacy replacements |", "|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for name, s in report.items():
        lines.append(f"| {name} | {s['files_read']} | {sum(s['files_skipped'].values())} | {s['documents_kept']} | "
                     f"{sum(s['dropped'].values())} | {s['bytes_kept'] / 1e6:.2f} | {s['tokens']['train']:,} | "
                     f"{s['tokens']['val']:,} | {sum(s['privacy'].values())} |")
    for name, s in report.items():
        lines += ["", f"## {name}", ""]
        for title, counts in (("Files skipped", s["files_skipped"]), ("Documents dropped", s["dropped"]),
                              ("Privacy replacements", s["privacy"])):
            if counts:
                lines.append(f"- {title}: " + ", ".join(f"{k} {v}" for k, v in counts.items()))
        if s["paragraphs_stripped"]:
            lines.append(f"- Repeated paragraphs stripped: {s['paragraphs_stripped']}")
        if not any((s["files_skipped"], s["dropped"], s["privacy"], s["paragraphs_stripped"])):
            lines.append("- nothing skipped, dropped or replaced")
    lines += ["", f"Every dropped document and skipped file is listed with its reason in `{DROPPED_FILE}`.", ""]
    path.write_text("\n".join(lines))


# ----------------------------------------------------------------------------------------------------------------
# The pipeline.


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
    from flaxgpt.ingest.extract.sources import SOURCE_EXTRACTORS

    owner = Owner(names=tuple(config.owner.names), emails=tuple(config.owner.emails),
                  handles=tuple(config.owner.handles))
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


def _results(config: ml_collections.ConfigDict, jobs: Iterator[_Job]) -> Iterator[_JobResult]:
    """Runs the jobs in worker processes (in order), or inline with one worker."""
    workers = config.workers or os.cpu_count() or 1
    plain = json.loads(config.to_json())
    if workers == 1:
        worker = _Worker(plain)
        for job in jobs:
            yield worker.run(job)
        return
    ctx = multiprocessing.get_context("spawn")  # never fork a process that may hold threads or JAX
    with ctx.Pool(workers, initializer=_init_worker, initargs=(plain,)) as pool:
        # apply_async with a bounded queue rather than imap: imap would list (and extract) every job up
        # front, holding the whole corpus in memory.
        pending: deque = deque()
        for job in jobs:
            pending.append(pool.apply_async(_run_job, (job,)))
            if len(pending) >= 3 * workers:
                yield pending.popleft().get()
        while pending:
            yield pending.popleft().get()


def _select(config: ml_collections.ConfigDict, results: Iterator[_JobResult], report: _Report, docs_out: Any,
            dropped: Any, bar: tqdm) -> None:
    """Dedups in input order and writes the kept documents to documents.jsonl."""
    from flaxgpt.ingest.dedup import DedupIndex

    index = DedupIndex.from_config(config.dedup)
    for res in results:
        stats = report.s[res.source]
        stats["files_read"] += res.files
        stats["bytes_read"] += res.bytes_read
        bar.update(res.bytes_read)
        for rel, reason in res.skipped:
            stats["files_skipped"][_reason_class(reason)] += 1
            dropped.write(json.dumps({"source": res.source, "path": rel, "reason": reason}) + "\n")
        for d in res.done:
            stats["documents_extracted"] += 1
            stats["privacy"].update(d.privacy)
            doc_id = f"{res.source}/{d.doc.path}"
            reason = d.drop
            text = d.doc.text
            if reason is None:
                reason, text, stripped = index.check(doc_id, text, d.fingerprint)
                stats["paragraphs_stripped"] += stripped
            if reason is not None:
                stats["dropped"][_reason_class(reason)] += 1
                dropped.write(json.dumps({"source": res.source, "id": doc_id, "reason": reason}) + "\n")
                continue
            stats["documents_kept"] += 1
            stats["bytes_kept"] += len(text.encode())
            record = {"id": doc_id, "source": res.source, "kind": d.doc.kind, "path": d.doc.path, "text": text,
                      "metadata": d.doc.metadata}
            docs_out.write(json.dumps(record, ensure_ascii=False, sort_keys=False) + "\n")
        bar.set_postfix(files=sum(s["files_read"] for s in report.s.values()),
                        docs=sum(s["documents_kept"] for s in report.s.values()))


def _read_documents(path: Path) -> Iterator[dict]:
    with open(path, encoding="utf-8") as f:
        for line in f:
            yield json.loads(line)


def _tokenize(config: ml_collections.ConfigDict, tmp: Path, report: _Report, progress: bool) -> dict:
    """documents.jsonl -> shards/<source>/ with a train/val split by document id; returns the tokenizer metadata."""
    from flaxgpt.data.tokenizer import get_tokenizer, save_spec

    tok = get_tokenizer(config.tokenizer)
    if config.personal_vocab:
        from flaxgpt.data.vocab import build_personal_vocab, personal_tokenizer

        terms = build_personal_vocab((r["text"] for r in _read_documents(tmp / DOCUMENTS_FILE)), tok,
                                     max_terms=config.personal_vocab)
        tok = personal_tokenizer(tok, terms)
    save_spec(tmp, tok)
    meta = tok.metadata()
    writers, routers = {}, {}
    for name in config.sources:
        writers[name] = {s: ShardWriter(tmp / SHARDS_DIR / name, s, tokenizer_meta=meta, source=name) for s in SPLITS}
        routers[name] = SplitRouter(writers[name], guarantee_both=config.val_fraction > 0)
    total = (tmp / DOCUMENTS_FILE).stat().st_size
    threads = os.cpu_count() or 1

    def flush(batch: list[dict]) -> None:
        for rec, ids in zip(batch, tok.encode_batch([r["text"] for r in batch], num_threads=threads), strict=True):
            split, h = split_of(rec["id"], config.val_fraction)
            routers[rec["source"]].add(split, h, ids)

    with tqdm(total=total, unit="B", unit_scale=True, desc="tokenize", disable=not progress) as bar:
        batch: list[dict] = []
        chars = 0
        for rec in _read_documents(tmp / DOCUMENTS_FILE):
            batch.append(rec)
            chars += len(rec["text"])
            if chars >= _TOKENIZE_CHARS:
                flush(batch)
                bar.update(sum(len(r["text"].encode()) for r in batch))
                batch, chars = [], 0
        flush(batch)
        bar.update(bar.total - bar.n)
    for name in config.sources:
        routers[name].finish()
        for split in SPLITS:
            sidecars = writers[name][split].close()
            report.s[name]["tokens"][split] = sum(m["num_tokens"] for m in sidecars)
            report.s[name]["documents"][split] = sum(m["num_documents"] for m in sidecars)
    return meta


def ingest(config: ml_collections.ConfigDict, out_dir: str | Path, *, progress: bool = True) -> dict:
    """Runs the whole ingest (see the module docstring) for a resolved sources config (``load_ingest_config``).

    Returns the report (also written as report.json), keyed by source name, plus a ``_totals`` entry.
    """
    out_dir = Path(out_dir).resolve()
    tmp = prepare_out_dir(out_dir, lambda n: n in _OUTPUT_NAMES, "ingest")
    report = _Report(list(config.sources))
    try:
        with open(tmp / DOCUMENTS_FILE, "w", encoding="utf-8") as docs_out, \
                open(tmp / DROPPED_FILE, "w", encoding="utf-8") as dropped, \
                tqdm(total=None, unit="B", unit_scale=True, desc="ingest", disable=not progress) as bar:
            listed = _list_sources(config)
            bar.total = sum(f.size for tree, _ in listed.values() if tree is not None for f in tree.files) or None
            _select(config, _results(config, _source_jobs(config, listed)), report, docs_out, dropped, bar)
        meta = _tokenize(config, tmp, report, progress)
        totals = {k: sum(s[k] for s in report.s.values())
                  for k in ("files_read", "documents_extracted", "documents_kept", "bytes_read", "bytes_kept")}
        totals["tokens"] = sum(sum(s["tokens"].values()) for s in report.s.values())
        per_source = report.to_json()
        result = {**per_source, "_totals": totals}
        (tmp / REPORT_JSON).write_text(json.dumps(result, indent=2) + "\n")
        _write_report_md(tmp / REPORT_MD, per_source, totals)
        mixture = {"tokenizer": meta,
                   "sources": {name: {"path": f"{SHARDS_DIR}/{name}", "weight": float(source.weight)}
                               for name, source in config.sources.items()
                               if report.s[name]["documents"]["train"] > 0}}
        (tmp / MIXTURE_FILE).write_text(json.dumps(mixture, indent=2) + "\n")
        swap_into_place(tmp, out_dir)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return result


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Adds the ``flaxgpt ingest`` arguments to ``parser``."""
    parser.add_argument("config", metavar="SOURCES_CONFIG", help="sources config file with get_config()")
    parser.add_argument("overrides", nargs="*", help="dotted overrides such as workers=1 dedup.near=False")
    parser.add_argument("--out", required=True, metavar="DIR", help="output directory (replaced as a whole)")
    parser.add_argument("--quiet", action="store_true", help="no progress bars and no report on the console")


def run(args: argparse.Namespace) -> int:
    """Runs ``flaxgpt ingest`` from parsed arguments; returns the exit status."""
    from flaxgpt.ingest.config import load_ingest_config

    config = load_ingest_config(args.config, args.overrides)
    t0 = time.perf_counter()
    result = ingest(config, args.out, progress=not args.quiet)
    seconds = time.perf_counter() - t0
    totals = result["_totals"]
    if not args.quiet:
        print((Path(args.out) / REPORT_MD).read_text())
    print(f"ingested {totals['bytes_read'] / 1e6:.1f} MB in {seconds:.1f} s "
          f"({totals['bytes_read'] / 1e6 / max(seconds, 1e-9):.2f} MB/s): {totals['documents_kept']:,} documents, "
          f"{totals['tokens']:,} tokens -> {args.out}")
    if totals["documents_kept"] == 0:
        print("warning: no documents kept", file=sys.stderr)
    return 0
