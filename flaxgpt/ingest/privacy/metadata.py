"""Everything written next to a document's text, scrubbed like the text: metadata values, paths, reasons.

A mail's ``to``, ``subject`` and a file's ``author`` carry other people's names and addresses just as
the body does, and ids and skip reasons carry file names (a Message-ID is an address). They go
through the same ``Scrubber``; a path that changes gets a short hash of the original appended, so ids
stay unique ("ines.mbox#<EMAIL>~3f2a9c1e").
"""

from __future__ import annotations

import hashlib
from collections import Counter
from collections.abc import Sequence
from typing import Any

from flaxgpt.ingest.privacy.scrubber import Scrubber

AUTHOR_KEYS = ("author", "authors", "creator", "last_modified_by")  # metadata naming a person


def metadata_people(metadata: dict, scrubber: Scrubber) -> tuple[str, ...]:
    """The names a document's metadata gives for other people: ``people`` (chat members, mail senders)
    and author-like fields that are not the owner."""
    people = [str(p) for p in metadata.get("people", ())]
    for key in AUTHOR_KEYS:
        values = metadata.get(key)
        for value in values if isinstance(values, list) else [values]:
            if isinstance(value, str) and value.strip() and not scrubber.owner.is_owner(name=value, email=value):
                people.append(value.strip())
    return tuple(people)


def scrub_metadata(metadata: dict, scrubber: Scrubber, people: Sequence[str] = ()) -> tuple[dict, Counter]:
    """Returns a copy of ``metadata`` with every string value (in nested lists and dicts too) scrubbed,
    an author-like value that is one of ``people`` becoming ``<NAME>``, and the replacements counted."""
    counts: Counter = Counter()

    def scrub(value: Any, key: str | None = None) -> Any:
        if isinstance(value, str):
            if key in AUTHOR_KEYS and value.strip() in people:
                counts["NAME"] += 1
                return "<NAME>"
            result = scrubber.scrub(value, people)
            counts.update(result.counts)
            return result.text
        if isinstance(value, dict):
            return {k: scrub(v, k) for k, v in value.items()}
        if isinstance(value, list | tuple):
            return [scrub(v, key) for v in value]
        return value

    return scrub(metadata), counts


def scrub_path(path: str, scrubber: Scrubber) -> str:
    """``path`` with addresses and secrets replaced (no name finding: file names are not prose); when it
    changes, a hash of the original is appended so that two paths stay two ids."""
    result = scrubber.scrub(path, find_names=False)
    if result.text == path:
        return path
    return f"{result.text}~{hashlib.blake2b(path.encode(), digest_size=4).hexdigest()}"
