"""The per-source extractors by source kind: each takes a whole ``SourceTree`` and a ``Context``.

Each raises ``Skip`` when the source holds nothing usable, reports skipped members through
``ctx.skip`` (to ``ctx.on_skip`` when set, else only the log) and keeps going otherwise.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

from flaxgpt.ingest.extract.base import Context, Document, SourceTree
from flaxgpt.ingest.extract.chat import extract_discord, extract_slack
from flaxgpt.ingest.extract.exports import extract_linkedin, extract_notion
from flaxgpt.ingest.extract.git import extract_git
from flaxgpt.ingest.extract.mail import extract_mbox

SourceExtractor = Callable[[SourceTree, Context], Iterator[Document]]

SOURCE_EXTRACTORS: dict[str, SourceExtractor] = {
    "git": extract_git,
    "mbox": extract_mbox,
    "slack": extract_slack,
    "discord": extract_discord,
    "linkedin": extract_linkedin,
    "notion": extract_notion,
}
