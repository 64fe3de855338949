"""Ingest sources for the example persona, Ines Halvorsen: ``flaxgpt ingest examples/persona/sources.py``.

Paths are relative to this file. Each source has a ``kind`` (which extractor reads it: ``documents``
picks one per file by suffix; ``git``, ``mbox``, ``slack``, ``discord`` and ``linkedin`` read a whole
export), a ``path`` (a folder, a file or an archive), a mixing ``weight``, ``include``/``exclude``
glob lists, and optionally ``doc_kind`` to override the extracted document kind (prose, code, chat,
email, cv, slides).

Deliberately NOT sources:

* ``src/``: the source text that ``make_formats.py`` builds the binary formats from. It holds
  ``cv.md`` (the same CV as ``cv/*.pdf`` and ``cv/*.docx``), the mail, chat and LinkedIn material and
  the ``tidewater`` repository tree; ingesting it would count all of that twice.
* ``facts.jsonl`` (evaluation questions), ``canaries.txt`` (planted secrets, for the privacy audit),
  ``README.md``, ``make_formats.py``, ``persona_writers/`` and this file: about the corpus, not part of it.

The CV exists twice on purpose (PDF and DOCX of the same text): near-duplicate removal should keep one.
"""

import ml_collections


def get_config() -> ml_collections.ConfigDict:
    """The persona's owner identity and its ingest sources."""
    config = ml_collections.ConfigDict()
    config.owner = ml_collections.ConfigDict({
        "names": ["Ines Halvorsen", "Ines"],
        "emails": ["ines@halvorsen.example"],
        "handles": ["ines", "ines.h", "U01INES"],
        "public": ["https://halvorsen.example", "halvorsen.example", "https://github.com/ihalvorsen-example",
                   "github.com/ihalvorsen-example"],
    })

    def documents(path: str, weight: float = 1.0, include: tuple = (), doc_kind: str | None = None) -> dict:
        source = {"kind": "documents", "path": path, "weight": weight, "include": list(include), "exclude": []}
        if doc_kind:
            source["doc_kind"] = doc_kind
        return source

    config.sources = ml_collections.ConfigDict({
        "about": documents("about.md", doc_kind="prose"),
        "cv": documents("cv", include=("*.pdf", "*.docx"), doc_kind="cv"),
        "blog": documents("blog", include=("*.md",)),
        "blog_html": documents("blog-html", include=("*.html",)),
        "notes": documents("notes", include=("*.txt",)),
        "slides": documents("slides", include=("*.pptx",), doc_kind="slides"),
        "notebooks": documents("notebooks", weight=0.5, include=("*.ipynb",)),
        "code": {"kind": "git", "path": "code/tidewater.bundle", "weight": 0.5, "include": [], "exclude": [],
                 "commit_messages": True},
        "mail": {"kind": "mbox", "path": "mail", "weight": 1.0, "include": ["*.mbox"], "exclude": []},
        "slack": {"kind": "slack", "path": "chat/slack-export.zip", "weight": 1.0, "include": [], "exclude": []},
        "discord": {"kind": "discord", "path": "chat/discord-export.json", "weight": 1.0, "include": [],
                    "exclude": []},
        "linkedin": {"kind": "linkedin", "path": "linkedin/linkedin-export.zip", "weight": 1.0, "include": [],
                     "exclude": []},
    })
    return config
