"""The scrubber: every finder run over one view of the text, overlaps resolved by priority, then replaced."""

from __future__ import annotations

import bisect
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

from flaxgpt.ingest.extract.base import Owner
from flaxgpt.ingest.privacy.login_users import username_spans
from flaxgpt.ingest.privacy.names import _name_spans, _people_index
from flaxgpt.ingest.privacy.namesets import load_name_sets
from flaxgpt.ingest.privacy.people import context_name_spans
from flaxgpt.ingest.privacy.pii import (
    PHONE_REGIONS,
    _address_spans,
    _email_spans,
    _iban_spans,
    _ip_spans,
    _number_spans,
)
from flaxgpt.ingest.privacy.prose import _prose_spans
from flaxgpt.ingest.privacy.secrets import _block_spans, _keyword_spans, _provider_spans
from flaxgpt.ingest.privacy.text import _NON_DIGITS, _Span, _View, latin1

# Priority when spans overlap: lower wins (a key inside a URL is a TOKEN, not an EMAIL).
_PRIORITY = {"PRIVATE_KEY": 0, "AWS_KEY": 1, "TOKEN": 1, "PASSWORD": 2, "SECRET": 3, "EMAIL": 4,
             "IBAN": 5, "CREDIT_CARD": 5, "IP_ADDRESS": 6, "PHONE": 7, "ADDRESS": 8, "USERNAME": 8, "NAME": 9}


@dataclass(frozen=True)
class ScrubResult:
    """Scrubbed text, how many replacements of each placeholder type were made, and where: the replaced
    ``(start, end, label)`` spans of the input text, in order."""

    text: str
    counts: dict[str, int]
    spans: tuple[tuple[int, int, str], ...] = ()


class Scrubber:
    """Replaces secrets and personal data with placeholders, keeping the owner's allow-listed details.

    Cheap to build and picklable (compiled patterns live at module level), so each worker process
    can make its own. ``public`` strings (a website, a public work email or phone) pass untouched,
    as do ``owner.emails``, ``owner.handles`` and ``owner.names``.
    """

    def __init__(self, owner: Owner, public: Sequence[str] = (), *,
                 phone_regions: Sequence[str] = PHONE_REGIONS) -> None:
        self.owner = owner
        self.public = tuple(p for p in public if p and p.strip())
        self.phone_regions = tuple(phone_regions)
        allowed = [*owner.emails, *owner.handles, *self.public]
        self._allowed = tuple(sorted({latin1(a.strip()).lower() for a in allowed if a.strip()}))
        # The owner's name parts and their runs written together ("de vries" -> "devries"): the owner's user names.
        # A public person's surname alone ("Prof. Knuth's cheques" for "Donald Knuth") is theirs too.
        self._public_surnames = frozenset(p.split()[-1].lower() for p in self.public
                                          if 2 <= len(p.split()) <= 4 and all(w[:1].isupper() for w in p.split()))
        self._owner_words = frozenset("".join(ws[i:j]).lower() for ws in (n.split() for n in owner.names)
                                      for i in range(len(ws)) for j in range(i + 1, len(ws) + 1))
        # Allow-listed phone numbers compare by their last 9 digits (+31 20 ... == 020 ...).
        digits = [(a, latin1(a).translate(None, _NON_DIGITS)) for a in allowed]
        self._allowed_phones = frozenset(d[-9:] for a, d in digits
                                         if len(d) >= 7 and 2 * len(d) > len("".join(a.split())))

    def scrub(self, text: str, people: Sequence[str] = (), *, find_names: bool = True) -> ScrubResult:
        """Returns ``text`` with secrets and personal data replaced, and the count of each placeholder.

        ``people``: names (or handles) of other people the document is known to mention, such as
        the senders of a mail thread or the members of a chat; the owner's names are skipped.
        ``find_names``: also find other people's names by context (greetings, sign-offs, titles, CV
        references, "with X and Y", @mentions; ``people.py``); off for code, whose identifiers are not names.
        """
        if not text:
            return ScrubResult(text, {})
        view = _View(text)
        spans = [*_block_spans(view), *_provider_spans(view), *_keyword_spans(view), *_prose_spans(view),
                 *_email_spans(view),
                 *_number_spans(view, self.phone_regions), *_ip_spans(view), *_iban_spans(view),
                 *_address_spans(view)]
        if people:
            spans += _name_spans(text, _people_index(tuple(people), self.owner))
        if find_names:
            spans += context_name_spans(view, self.owner, load_name_sets())
        if not spans:
            return ScrubResult(text, {})
        spans += username_spans(text, [s for s in spans if s.label == "PASSWORD"], self._owner_words)
        kept = _resolve(s for s in spans if not self._is_allowed(view, s))
        counts = Counter(s.label for s in kept)
        parts, pos = [], 0
        for s in kept:
            parts += (text[pos:s.start], f"<{s.label}>")
            pos = s.end
        parts.append(text[pos:])
        return ScrubResult("".join(parts), dict(counts), tuple((s.start, s.end, s.label) for s in kept))

    def _is_allowed(self, view: _View, span: _Span) -> bool:
        """True if the span lies inside an occurrence of an allow-listed string (or is an allowed phone, or a public
        person's surname)."""
        if span.label == "NAME" and view.text[span.start:span.end].lower() in self._public_surnames:
            return True
        if span.label == "PHONE" and self._allowed_phones:
            digits = view.b[span.start:span.end].translate(None, _NON_DIGITS)
            if digits[-9:] in self._allowed_phones:
                return True
        lo = view.lo
        for a in self._allowed:
            i = lo.find(a, max(0, span.end - len(a)), span.start + len(a))
            if 0 <= i <= span.start and i + len(a) >= span.end:
                return True
        return False


def _resolve(spans: Iterator[_Span]) -> list[_Span]:
    """Non-overlapping spans in text order, higher-priority (then longer) spans winning overlaps."""
    starts: list[int] = []
    chosen: list[_Span] = []
    for span in sorted(spans, key=lambda s: (_PRIORITY[s.label], s.start - s.end)):
        k = bisect.bisect_right(starts, span.start)
        if k and chosen[k - 1].end > span.start or k < len(chosen) and chosen[k].start < span.end:
            continue
        starts.insert(k, span.start)
        chosen.insert(k, span)
    return chosen
