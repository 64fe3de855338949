"""``flaxgpt ingest SOURCES_CONFIG --out DIR``: a person's files -> clean, private, deduplicated token shards.

The files -> documents stages (extract, scrub, quality, dedup) are ``flaxgpt.ingest.pipeline``'s; this
module tokenizes the kept documents into shards per source, with a deterministic train/val split by
document id (validation taking at most ``max_val_share`` of a source's text), optionally with a personal
vocabulary, and writes the mixture and the report. Everything is written to a hidden sibling of ``DIR`` and
renamed into place at the end (``flaxgpt.data.outdir``): an interrupted run leaves no partial output, and
rerunning it gives the same result. An output folder inside a source (or around one) is refused.

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

import json
import os
from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

import ml_collections
from tqdm import tqdm

from flaxgpt.data.outdir import atomic_output_dir
from flaxgpt.data.shards import MIXTURE_FILE, SPLITS, ShardWriter
from flaxgpt.data.tokenize import SplitRouter, split_of
from flaxgpt.data.tokenizer import SPEC_FILE, get_tokenizer, save_spec
from flaxgpt.data.vocab import build_personal_vocab, personal_tokenizer
from flaxgpt.ingest.pipeline import DOCUMENTS_FILE, extract_documents, read_documents
from flaxgpt.ingest.quality.perplexity import ScorerFactory
from flaxgpt.ingest.report import DROPPED_FILE, REPORT_JSON, REPORT_MD, IngestReport

SHARDS_DIR = "shards"
_OUTPUT_NAMES = {DOCUMENTS_FILE, DROPPED_FILE, REPORT_JSON, REPORT_MD, MIXTURE_FILE, SHARDS_DIR, SPEC_FILE}
_TOKENIZE_AHEAD_CHARS = 4_000_000  # characters of documents being tokenized ahead of the shard writer


def _tokenize(config: ml_collections.ConfigDict, tmp: Path, report: IngestReport, progress: bool) -> dict:
    """documents.jsonl -> shards/<source>/ with a train/val split by document id; returns the tokenizer metadata."""
    tok = get_tokenizer(config.tokenizer)
    if config.personal_vocab:
        terms = build_personal_vocab((r["text"] for r in read_documents(tmp / DOCUMENTS_FILE)), tok,
                                     max_terms=config.personal_vocab)
        tok = personal_tokenizer(tok, terms)
    save_spec(tmp, tok)
    meta = tok.metadata()
    writers, routers = {}, {}
    for name in config.sources:
        writers[name] = {s: ShardWriter(tmp / SHARDS_DIR / name, s, tokenizer_meta=meta, source=name) for s in SPLITS}
        # Validation takes at most max_val_share of each source's text (bytes, known before tokenizing).
        routers[name] = SplitRouter(writers[name], guarantee_both=config.val_fraction > 0,
                                    val_budget=config.max_val_share * report.s[name]["bytes_kept"])
    total = (tmp / DOCUMENTS_FILE).stat().st_size

    def write(rec: dict, encoded: Future) -> None:
        size = len(rec["text"].encode())
        split, h = split_of(rec["id"], config.val_fraction)
        routers[rec["source"]].add(split, h, encoded.result(), size=size)
        bar.update(size)

    # tiktoken releases the GIL, so a pool of one thread per core encodes the next documents while this thread
    # reads documents.jsonl and writes shards: no batch waits for its slowest document, and no core idles while
    # the shards are written. The results are taken in document order, so the shards are the same.
    with tqdm(total=total, unit="B", unit_scale=True, desc="tokenize", disable=not progress) as bar, \
            ThreadPoolExecutor(os.cpu_count() or 1) as pool:
        pending: deque[tuple[dict, Future]] = deque()
        ahead = 0
        for rec in read_documents(tmp / DOCUMENTS_FILE):
            pending.append((rec, pool.submit(tok.encode_array, rec["text"])))
            ahead += len(rec["text"])
            while ahead >= _TOKENIZE_AHEAD_CHARS:
                done, encoded = pending.popleft()
                ahead -= len(done["text"])
                write(done, encoded)
        for done, encoded in pending:
            write(done, encoded)
        bar.update(bar.total - bar.n)
    for name in config.sources:
        routers[name].finish()
        for split in SPLITS:
            sidecars = writers[name][split].close()
            report.s[name]["tokens"][split] = sum(m["num_tokens"] for m in sidecars)
            report.s[name]["documents"][split] = sum(m["num_documents"] for m in sidecars)
    return meta


def check_out_dir(config: ml_collections.ConfigDict, out_dir: Path) -> None:
    """Raises ValueError naming both paths when ``out_dir`` is inside a source (or a source is inside it).

    Refused rather than left out of the listing: the output would sit among the person's own files (their
    backups, their next export) and a later run with another --out would read it back as their writing.
    """
    for name, source in config.sources.items():
        if source.kind == "tfds" or not source.path:
            continue
        root = Path(source.path).resolve()
        if out_dir == root or root in out_dir.parents:
            raise ValueError(f"--out {out_dir} is inside source {name!r} ({root}): the next run would read its own "
                             "output as your writing; choose an output folder outside every source")
        if out_dir in root.parents:
            raise ValueError(f"source {name!r} ({root}) is inside --out {out_dir}, which is replaced as a whole; "
                             "choose an output folder outside every source")


def ingest(config: ml_collections.ConfigDict, out_dir: str | Path, *, progress: bool = True,
           scorer_factory: ScorerFactory | None = None) -> dict:
    """Runs the whole ingest (see the module docstring) for a resolved sources config (``load_ingest_config``).

    ``scorer_factory`` builds the perplexity scorer of ``quality.perplexity_run`` (the ``flaxgpt ingest`` command
    passes ``flaxgpt.infer.perplexity.PerplexityScorer``). Returns the report (also written as report.json),
    keyed by source name, plus a ``_totals`` entry.
    """
    out_dir = Path(out_dir).resolve()
    check_out_dir(config, out_dir)
    report = IngestReport(list(config.sources), SPLITS)
    with atomic_output_dir(out_dir, lambda n: n in _OUTPUT_NAMES, "ingest") as tmp:
        extract_documents(config, tmp, report, progress=progress, scorer_factory=scorer_factory)
        meta = _tokenize(config, tmp, report, progress)
        result = report.write(tmp)
        mixture = {"tokenizer": meta,
                   "sources": {name: {"path": f"{SHARDS_DIR}/{name}", "weight": float(source.weight)}
                               for name, source in config.sources.items()
                               if report.s[name]["documents"]["train"] > 0}}
        (tmp / MIXTURE_FILE).write_text(json.dumps(mixture, indent=2) + "\n")
    return result
