"""Ingest: a person's files -> documents (extract, privacy, dedup, quality, report)."""
