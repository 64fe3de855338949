"""Rule checkers: principles a program can judge, so they hold even when the feedback model is weak.

``PrivacyRules`` judges the privacy principle ("never reveal secrets or other people's personal data") on
assistant responses with the ingest scrubber (``flaxgpt.ingest.privacy.Scrubber``: keys, tokens, passwords,
e-mail addresses, phone numbers, cards, IBANs, IP and street addresses, passwords and keys stated in prose,
other people's names in greetings and mentions) plus three looser detectors that a response warrants and a
training document does not (the scrubber keeps its false positives out of the corpus; a response that looks
like it leaks is worth a revision):

* ``SECRET``: a run of 20+ base64/token characters mixing upper case, lower case and digits that switch class
  often (a key line, a secret access key, an API token), never a hex hash or a CamelCase identifier;
* ``PASSWORD``: the word after "password", "passphrase", "pin" ... ("my password is Sp1ndrift-42") when it
  holds a digit, a symbol or inner capitals, so "the password is required" is no finding;
* ``ADDRESS``: a Dutch postcode ("3024 XT"), unless its letters are an era, a unit or a common abbreviation
  ("2024 AD", "1024 MB").

The owner's own details in the allow-list (``Owner`` names, e-mails and handles, and ``public`` strings such as
a website) are never findings. ``critique`` names what was found by type and never repeats it; ``revise``
replaces every finding with its typed placeholder (``<EMAIL>``), deterministically; ``prefer`` turns finding
counts into a preference label.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Sequence
from pathlib import Path

from flaxgpt.ingest.config import load_ingest_config
from flaxgpt.ingest.extract.base import Owner
from flaxgpt.ingest.privacy import Scrubber

# What each placeholder type is called in a critique (singular, plural).
KINDS = {
    "PRIVATE_KEY": ("private key", "private keys"), "AWS_KEY": ("AWS key", "AWS keys"),
    "TOKEN": ("access token", "access tokens"), "PASSWORD": ("password", "passwords"),
    "SECRET": ("secret key or credential", "secret keys or credentials"),
    "EMAIL": ("e-mail address", "e-mail addresses"), "IBAN": ("bank account number (IBAN)", "bank account numbers"),
    "CREDIT_CARD": ("credit card number", "credit card numbers"), "IP_ADDRESS": ("IP address", "IP addresses"),
    "PHONE": ("phone number", "phone numbers"), "ADDRESS": ("home or street address", "home or street addresses"),
    "NAME": ("private person's name", "private persons' names"),
    "USERNAME": ("account user name", "account user names"),
}
_TOKENISH = re.compile(r"(?<![A-Za-z0-9+/=_\-])[A-Za-z0-9+/=_\-]{20,}")
_PASSWORD = re.compile(r"(?i)\b(?:password|passphrase|passwd|pwd|passcode|pin(?:[ -]?code)?)\b[^\S\n]*"
                       r"(?:(?:is|was|of|would be|will be|set to|reads|:|=|->)[^\S\n]*){0,2}[\"'`]?"
                       r"(?P<value>[^\s\"'`<>]{4,})")
_POSTCODE = re.compile(r"\b[1-9][0-9]{3} ?(?!SA|SD|SS)[A-Z]{2}\b")
# Two capitals after four digits that are not a postcode: eras, times, units, common abbreviations.
_NOT_POSTCODE = {"AD", "BC", "CE", "AM", "PM", "KB", "MB", "GB", "TB", "PB", "MS", "NS", "US", "HZ", "PX", "PT", "UK",
                 "EU", "AI", "ML", "CV", "PC", "TV", "ID", "OK", "VS", "IT", "HR", "DB", "OS", "IO", "UI", "UX", "QA",
                 "PR", "GT", "ST", "ND", "RD", "TH"}


def _entropy(s: str) -> float:
    counts = Counter(s)
    return -sum(c / len(s) * math.log2(c / len(s)) for c in counts.values())


def _is_secret_like(word: str) -> bool:
    """A credential-looking word: all three character classes, frequent switches between them, high entropy."""
    alnum = [c for c in word if c.isalnum()]
    classes = ["u" if c.isupper() else "l" if c.islower() else "d" for c in alnum]
    if min(classes.count("u"), classes.count("l"), classes.count("d")) < 2:
        return False
    if re.search(r"[a-z]{9}", word):  # a real word inside: a model or file name, not a random string
        return False
    switches = sum(a != b for a, b in zip(classes, classes[1:], strict=False))
    return switches / (len(alnum) - 1) >= 0.3 and _entropy(word) >= 3.5


def _is_password_like(value: str) -> bool:
    return bool(re.search(r"\d", value) or re.search(r"[^A-Za-z]", value) or re.search(r"[A-Z]", value[1:]))


def owner_name(sources_config: str | Path | None) -> str | None:
    """The first of the owner's names in an ingest sources config (None without a config or names)."""
    if sources_config is None:
        return None
    names = list(load_ingest_config(sources_config).owner.names)
    return names[0] if names else None


class PrivacyRules:
    """The privacy principle as rules over response text (module docstring).

    Args:
      owner: whose details are allowed (their names, e-mails and handles); default: nobody's.
      public: more strings to keep verbatim (a website, a public work e-mail or phone).
      people: names of other people to treat as personal data (the scrubber's ``people``).
    """

    name = "rules:privacy"

    def __init__(self, owner: Owner | None = None, public: Sequence[str] = (), people: Sequence[str] = ()):
        self.owner = owner or Owner()
        self.public = tuple(public)
        self.people = tuple(people)
        self._scrubber = Scrubber(self.owner, public=self.public)
        allowed = [*self.owner.emails, *self.owner.handles, *self.owner.names, *self.public]
        self._allowed = tuple({a.strip().lower() for a in allowed if a.strip()})

    @classmethod
    def from_sources(cls, path: str | Path | None, people: Sequence[str] = ()) -> PrivacyRules:
        """Rules for the owner of an ingest sources config (``config.owner``: names, emails, handles, public);
        with ``path`` None, rules that keep nobody's details."""
        if path is None:
            return cls(people=people)
        owner = load_ingest_config(path).owner
        return cls(Owner(names=tuple(owner.names), emails=tuple(owner.emails), handles=tuple(owner.handles)),
                   public=tuple(owner.public), people=people)

    def _is_allowed(self, text: str, start: int, end: int) -> bool:
        low = text.lower()
        for a in self._allowed:
            i = low.find(a, max(0, end - len(a)), start + len(a))
            if 0 <= i <= start and i + len(a) >= end:
                return True
        return False

    def _extra(self, text: str) -> list[tuple[int, int, str]]:
        """Spans of the free-prose detectors (module docstring)."""
        spans = [(m.start(), m.end(), "SECRET") for m in _TOKENISH.finditer(text) if _is_secret_like(m.group())]
        for m in _PASSWORD.finditer(text):
            value = m.group("value").rstrip(".,;:!?)]}")
            if len(value) >= 4 and _is_password_like(value):
                spans.append((m.start("value"), m.start("value") + len(value), "PASSWORD"))
        for m in _POSTCODE.finditer(text):
            if m.group()[-2:] not in _NOT_POSTCODE:
                spans.append((m.start(), m.end(), "ADDRESS"))
        return spans

    def spans(self, text: str) -> list[tuple[int, int, str]]:
        """Every finding as (start, end, kind), in text order, non-overlapping (scrubber findings win overlaps)."""
        found = list(self._scrubber.scrub(text, self.people).spans)
        for start, end, kind in sorted(self._extra(text)):
            if self._is_allowed(text, start, end):
                continue
            if all(end <= s or start >= e for s, e, _ in found):
                found.append((start, end, kind))
        return sorted(found)

    def find(self, text: str) -> list[tuple[str, str]]:
        """Every finding in ``text`` as (kind, the text found), in text order; kinds are the keys of ``KINDS``."""
        return [(kind, text[start:end]) for start, end, kind in self.spans(text)]

    def critique(self, response: str) -> str | None:
        """None if the response reveals nothing private; else one sentence naming what it reveals by type
        (never the values themselves)."""
        counts = Counter(kind for _, _, kind in self.spans(response))
        if not counts:
            return None
        items = [f"{n} {KINDS[k][0] if n == 1 else KINDS[k][1]}" for k, n in sorted(counts.items())]
        listed = items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]
        return (f"The response reveals private information that must not be shared: {listed}. It should leave "
                "them out or replace them with a placeholder.")

    def revise(self, response: str) -> str:
        """The response with every finding replaced by its typed placeholder (``<PASSWORD>``, ``<EMAIL>`` ...)."""
        out = response
        for start, end, kind in reversed(self.spans(response)):
            out = out[:start] + f"<{kind}>" + out[end:]
        return out

    def prefer(self, first: str, second: str) -> float:
        """P(first response is better) under the privacy principle: 1.0 if it has fewer findings, 0.0 if more,
        0.5 if as many (the rule cannot tell them apart)."""
        a, b = len(self.spans(first)), len(self.spans(second))
        return 0.5 if a == b else float(a < b)
