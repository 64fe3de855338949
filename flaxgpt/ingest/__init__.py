"""Ingest: a person's files -> clean, private, deduplicated documents (the first half of ``flaxgpt ingest``).

Imports only ``flaxgpt.config``; ``flaxgpt.data.corpus`` tokenizes what it produces. Modules, in the order
data flows through them:

    config     the sources config: owner, sources and their kinds, dedup and quality settings
    files      a source's files (folder, file or zip archive), listed and read in place
    extract/   one extractor per family of formats (PDF, office, web, mail, chat, exports, code, git)
    general    a general corpus from TensorFlow Datasets, mixed in by weight
    privacy/   secrets and personal data -> typed placeholders
    quality/   per-kind quality filters, language identification, the (injected) perplexity filter
    hashing    FineWeb text normalisation and vectorised span and n-gram hashing
    dedup      repeated paragraphs, exact and MinHash near-duplicates, decided in input order
    report     the per-source counts, written as report.json and report.md
    pipeline   the worker pool and the main-process dedup: files -> documents.jsonl and dropped.jsonl
"""
