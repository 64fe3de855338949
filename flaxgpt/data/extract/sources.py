"""The per-source extractors by source kind: each takes a whole ``SourceTree`` and a ``Context``.

Each raises ``Skip`` when the source holds nothing usable, reports skipped members through
``ctx.skip`` (to ``ctx.on_skip`` when set, else only the log) and keeps going otherwise.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

from flaxgpt.data.extract.base import Context, Document, SourceTree
from flaxgpt.data.extract.chat import extract_discord, extract_slack
from flaxgpt.data.extract.code import extract_git
from flaxgpt.data.extract.exports import extract_linkedin, extract_notion
from flaxgpt.data.extract.mail import extract_mbox

SourceExtractor = Callable[[SourceTree, Context], Iterator[Document]]

SOURCE_EXTRACTORS: dict[str, SourceExtractor] = {
    "git": extract_git,
    "mbox": extract_mbox,
    "slack": extract_slack,
    "discord": extract_discord,
    "linkedin": extract_linkedin,
    "notion": extract_notion,
}
