"""Warnings that extractor libraries (pypdf, python-docx, trafilatura, ...) print while reading one file, caught
so the report and the console can say which file they are about.

Libraries warn through ``warnings.warn`` or a ``logging`` logger, and neither names the file being read
("Ignoring wrong pointing object 6 0"). ``captured_warnings()`` swaps both channels for a list while one
file is extracted; the caller reports each message with the file's path.
"""

from __future__ import annotations

import contextlib
import logging
import warnings
from collections import Counter
from collections.abc import Iterator

MAX_MESSAGES = 20  # per file: a broken PDF can warn thousands of times


class _ListHandler(logging.Handler):
    def __init__(self, records: list[logging.LogRecord]):
        super().__init__(logging.WARNING)
        self.records = records

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@contextlib.contextmanager
def captured_warnings() -> Iterator[list[str]]:
    """Catches the warnings and WARNING-or-worse log records raised inside the block (instead of printing
    them); yields a list that holds them, once the block ends, as distinct messages ("pypdf: text", with
    " (xN)" when repeated), at most ``MAX_MESSAGES``."""
    messages: list[str] = []
    records: list[logging.LogRecord] = []
    root = logging.getLogger()
    saved = root.handlers[:]
    root.handlers = [_ListHandler(records)]
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")  # the default shows a warning once per place: the next file's would hide
            yield messages
    finally:
        root.handlers = saved
        counts = Counter([f"{r.name.split('.')[0]}: {r.getMessage()}" for r in records]
                         + [f"{w.category.__name__}: {w.message}" for w in caught])
        messages.extend(m if n == 1 else f"{m} (x{n})" for m, n in list(counts.items())[:MAX_MESSAGES])
        if len(counts) > MAX_MESSAGES:
            messages.append(f"... and {len(counts) - MAX_MESSAGES} other warnings")
