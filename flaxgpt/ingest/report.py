"""The ingest report: counts per source, written as ``report.json`` and ``report.md``.

Per source: files read and skipped (by reason), documents extracted, kept and dropped (by reason), bytes
read and kept, privacy replacements by type, repeated paragraphs stripped, documents read in an encoding other
than UTF-8 and invalid UTF-8 bytes replaced, extractor libraries' warnings with their file, and the tokens and
documents of each split (filled in by ``flaxgpt.data.corpus`` once the kept documents are tokenized).
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

DROPPED_FILE = "dropped.jsonl"  # every dropped document and skipped file, with its reason (report.md names it)
REPORT_JSON = "report.json"
REPORT_MD = "report.md"
_TOTALS = ("files_read", "documents_extracted", "documents_kept", "bytes_read", "bytes_kept")


class IngestReport:
    """Counts per source (``s[name]``), turned into report.json and report.md at the end."""

    def __init__(self, sources: Sequence[str], splits: Sequence[str]):
        self.s: dict[str, dict[str, Any]] = {
            name: {"files_read": 0, "files_skipped": Counter(), "bytes_read": 0, "documents_extracted": 0,
                   "documents_kept": 0, "dropped": Counter(), "bytes_kept": 0, "tokens": dict.fromkeys(splits, 0),
                   "documents": dict.fromkeys(splits, 0), "privacy": Counter(), "paragraphs_stripped": 0,
                   # text not read as plain UTF-8: documents per encoding, invalid UTF-8 bytes replaced by U+FFFD
                   "encodings": Counter(), "bytes_replaced": 0,
                   "warnings": []}  # "file: message" from extractor libraries (pypdf, ...)
            for name in sources}

    def to_json(self) -> dict:
        """Per source, its counts as plain dicts (reason counters sorted by reason)."""
        out = {}
        for name, s in self.s.items():
            out[name] = {k: (dict(sorted(v.items())) if isinstance(v, Counter) else v) for k, v in s.items()}
        return out

    def totals(self) -> dict[str, int]:
        """Files, documents, bytes and tokens summed over the sources."""
        totals = {k: sum(s[k] for s in self.s.values()) for k in _TOTALS}
        totals["tokens"] = sum(sum(s["tokens"].values()) for s in self.s.values())
        return totals

    def write(self, directory: Path) -> dict:
        """Writes report.json and report.md into ``directory``; returns the report.json content (per source,
        plus a ``_totals`` entry)."""
        per_source, totals = self.to_json(), self.totals()
        result = {**per_source, "_totals": totals}
        (directory / REPORT_JSON).write_text(json.dumps(result, indent=2) + "\n")
        _write_report_md(directory / REPORT_MD, per_source, totals)
        return result


def reason_class(reason: str) -> str:
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
        if s["encodings"]:
            lines.append("- Documents not in plain UTF-8: " + ", ".join(f"{k} {v}" for k, v in s["encodings"].items()))
        if s["bytes_replaced"]:
            lines.append(f"- Invalid UTF-8 bytes replaced by U+FFFD: {s['bytes_replaced']}")
        lines += [f"- Warning: {w}" for w in s["warnings"]]
        if not any((s["files_skipped"], s["dropped"], s["privacy"], s["paragraphs_stripped"], s["encodings"],
                    s["warnings"])):
            lines.append("- nothing skipped, dropped or replaced")
    lines += ["", f"Every dropped document and skipped file is listed with its reason in `{DROPPED_FILE}`.", ""]
    path.write_text("\n".join(lines))
