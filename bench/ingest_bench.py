"""Ingest throughput: ``flaxgpt ingest`` (extract, scrub, filter, dedup, tokenize) on a generated text-heavy corpus.

    python -m bench.ingest_bench [--mb 200] [--workers 0] [--keep DIR]

Generates a deterministic corpus of Markdown, plain-text and HTML files (English-like prose drawn
from a Zipf-distributed vocabulary, with a share of exact and near duplicates, boilerplate footers
and planted e-mail addresses, phone numbers and keys so every stage has work to do), runs the real
``flaxgpt ingest`` on it, and prints MB/s of input. Target on a 2-core CPU: 5 MB/s or more.
"""

from __future__ import annotations

import argparse
import json
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np

_COMMON = """the of and to a in is that for it as was with be by on not he this are or his from at which but have an
they you were her she there one been we their all has would when if so no will more what up out can about into them
some could time than other then its only new also these two may first any like now my such over our even most made
after well where through back years much your way down should because each just those people how too good very make
still own see being work life between both under never day same another know while last might great old year off
come since against go came right used take three""".split()  # noqa: SIM905
_SYLLABLES = """ka ri to mel an sen dor vi la qu est ion ber tal mon sha ren fo lin gra pe tor al um ex ply data shard
train model batch grad loss step token jax flax mesh""".split()  # noqa: SIM905
_FOOTER = ("\n\nThis message and any attachments are confidential and intended solely for the addressee. "
           "If you received it in error, please notify the sender and delete it.\n")


def _vocabulary(rng: np.random.Generator, size: int = 20000) -> list[str]:
    words = list(_COMMON)
    while len(words) < size:
        n = int(rng.integers(1, 4))
        words.append("".join(rng.choice(_SYLLABLES, n)))
    return words


def _document(rng: np.random.Generator, words: np.ndarray, probs: np.ndarray, target: int) -> str:
    """Paragraphs of 3-7 sentences of 8-24 words, about ``target`` characters in all (drawn in one go: fast)."""
    n_words = target // 6
    ws = words[rng.choice(len(words), n_words, p=probs)]
    lengths = rng.integers(8, 25, n_words // 8)
    ends = rng.choice(np.array([".", ".", ".", "?", "!"]), len(lengths))
    per_para = rng.integers(3, 8, len(lengths))
    paras, sentences, start, k = [], [], 0, 0
    for length, end, p in zip(lengths, ends, per_para, strict=True):
        if start + length > n_words:
            break
        sentences.append(" ".join(ws[start:start + length]).capitalize() + end)
        start += length
        k += 1
        if k >= p:
            paras.append(" ".join(sentences))
            sentences, k = [], 0
    if sentences:
        paras.append(" ".join(sentences))
    if rng.random() < 0.05:
        paras.insert(int(rng.integers(0, len(paras))), f"Reach me at someone{int(rng.integers(1e6))}@mail.example "
                     f"or +31 6 {int(rng.integers(1e7, 1e8))}.")
    if rng.random() < 0.02:
        key = "".join(rng.choice(list("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghij0123456789"), 40))
        paras.append(f"aws_secret_access_key = {key}")
    return "\n\n".join(paras)


def generate_corpus(out: Path, megabytes: float, seed: int = 0) -> int:
    """Writes the benchmark corpus into ``out``; returns its size in bytes."""
    rng = np.random.default_rng(seed)
    words = np.array(_vocabulary(rng))
    ranks = np.arange(1, len(words) + 1)
    probs = 1.0 / ranks**1.1
    probs /= probs.sum()
    target_bytes = int(megabytes * 1e6)
    total, i = 0, 0
    previous = ""
    while total < target_bytes:
        sub = out / f"part-{i // 500:03d}"
        sub.mkdir(parents=True, exist_ok=True)
        if previous and rng.random() < 0.03:  # exact or near duplicate of the previous document
            text = previous if rng.random() < 0.5 else previous.replace(" the ", " a ", 3)
        else:
            text = _document(rng, words, probs, int(rng.integers(20_000, 180_000)))
        if rng.random() < 0.2:
            text += _FOOTER
        kind = i % 10
        if kind < 6:
            path, body = sub / f"doc-{i:06d}.md", f"# Notes {i}\n\n{text}\n"
        elif kind < 9:
            path, body = sub / f"doc-{i:06d}.txt", text + "\n"
        else:
            paras = "".join(f"<p>{p}</p>\n" for p in text.split("\n\n"))
            body = (f"<html><head><title>Post {i}</title></head><body><nav><a href='/'>Home</a> "
                    f"<a href='/about'>About</a></nav><article><h1>Post {i}</h1>\n{paras}</article>"
                    f"<footer>Copyright the author</footer></body></html>\n")
            path = sub / f"doc-{i:06d}.html"
        path.write_text(body)
        total += len(body.encode())
        previous = text
        i += 1
    return total


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--mb", type=float, default=200.0, help="corpus size in MB (default 200)")
    parser.add_argument("--workers", type=int, default=0, help="ingest worker processes (0 = one per core)")
    parser.add_argument("--keep", default=None, help="generate into this folder and keep it (reused if present)")
    args = parser.parse_args()

    from flaxgpt.data.corpus import ingest
    from flaxgpt.ingest.config import load_ingest_config

    work = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="flaxgpt-ingest-bench-"))
    corpus = work / "corpus"
    try:
        t0 = time.perf_counter()
        if not corpus.exists():
            generate_corpus(corpus, args.mb)
        size = sum(p.stat().st_size for p in corpus.rglob("*") if p.is_file())
        print(f"corpus: {size / 1e6:.1f} MB in {sum(1 for _ in corpus.rglob('*.*'))} files "
              f"(generated in {time.perf_counter() - t0:.1f} s)")
        config_file = work / "sources.py"
        config_file.write_text(
            "import ml_collections\n\n\ndef get_config():\n"
            "    return ml_collections.ConfigDict({'owner': {'names': ['Bench Owner']},\n"
            f"        'workers': {args.workers},\n"
            "        'sources': {'notes': {'kind': 'documents', 'path': 'corpus'}}})\n")
        config = load_ingest_config(config_file)
        t0 = time.perf_counter()
        result = ingest(config, work / "out", progress=True)
        seconds = time.perf_counter() - t0
        totals = result["_totals"]
        summary = {"input_mb": round(size / 1e6, 1), "seconds": round(seconds, 1),
                   "mb_per_s": round(size / 1e6 / seconds, 2), "target_mb_per_s": 5.0,
                   "documents_kept": totals["documents_kept"], "documents_extracted": totals["documents_extracted"],
                   "tokens": totals["tokens"], "workers": args.workers}
        print(json.dumps(summary, indent=2))
        print(f"ingest: {summary['mb_per_s']} MB/s ({'meets' if summary['mb_per_s'] >= 5 else 'below'} the 5 MB/s "
              "target)")
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
