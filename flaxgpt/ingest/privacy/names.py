"""Names of other people: an index of their name parts and handles, and the spans they cover."""

from __future__ import annotations

import functools
import re
from collections.abc import Iterator
from dataclasses import dataclass

from flaxgpt.ingest.extract.base import Owner
from flaxgpt.ingest.privacy.text import _Span

# Capitalised words that are also names: replaced only next to another part of the same name.
_COMMON = """A An The I It We You He She They This That These Those And Or But If So As At By For
From In Into Of On To Up With Is Be Do Go No Not My Me Us Our Your His Her Its Can May Might Will Would Shall
Should Must June July April August March Sunday Monday Tuesday Wednesday Thursday Friday Saturday Summer Winter
Spring Autumn Fall New Old Young Long Little Hope Faith Grace Joy Dawn Rose Lily Ivy Iris Violet Sky Star Bill
Sue Pat Art Miles Frank Grant Mark Guy Chase Hunter Drew Gene Wade Dean Earl King Brown White Green Black Gray
Grey Love Best Good"""
_COMMON_WORDS = frozenset(_COMMON.split())
# Titles and honorifics: part of how a name is written ("Mr. Chidi Okafor"), never a name part to replace.
_TITLES = ("Mr Mrs Ms Mx Miss Dr Prof Professor Dame Sir Herr Frau Mme Mlle Mevr Dhr Sra Srta Sig Dott Doctor Maître "
           "Lic Licda Ing Ir Señor Señora Signor Signora Monsieur")
TITLE_WORDS = frozenset(_TITLES.split())


@dataclass(frozen=True)
class _People:
    strong: frozenset[str]
    weak: frozenset[str]
    particles: frozenset[str]
    tokens: re.Pattern | None
    handles: re.Pattern | None


_NAME_PART = re.compile(r"[^\W\d_]+(?:['’-][^\W\d_]+)*")


@functools.lru_cache(maxsize=1024)
def _people_index(people: tuple[str, ...], owner: Owner) -> _People:
    """Name parts and handles to replace for ``people``, never touching the owner's names."""
    owner_parts = {p for n in owner.names for p in _NAME_PART.findall(n)}
    strong, weak, particles, handles = set(), set(), set(), set()
    for person in people:
        person = person.strip()
        if not person or owner.is_owner(name=person, email=person, handle=person.lstrip("@")):
            continue
        name_like = re.fullmatch(r"[^\W\d_]+(?:['’.\- ]+[^\W\d_]+)*\.?", person)
        if not name_like or not any(p[0].isupper() for p in _NAME_PART.findall(person)):
            if len(person.lstrip("@")) >= 3:
                handles.add(person.lstrip("@"))
            continue
        for part in _NAME_PART.findall(person):
            if part in owner_parts or len(part) < 2 or part in TITLE_WORDS:
                continue
            if part[0].islower():
                particles.add(part)
            elif part in _COMMON_WORDS:
                weak.add(part)
            else:
                strong.add(part)
    initials = "".join(sorted({p[0] for p in strong | weak}))
    tokens = re.compile(rf"[{re.escape(initials)}][^\W\d_]*(?:['’-][^\W\d_]+)*") if initials else None
    handle_re = None
    if handles:
        alts = "|".join(re.escape(h) for h in sorted(handles, key=len, reverse=True))
        handle_re = re.compile(rf"(?<![\w.@-])@?(?:{alts})(?![\w-])", re.I)
    return _People(frozenset(strong), frozenset(weak), frozenset(particles), tokens, handle_re)


def _name_spans(text: str, people: _People) -> Iterator[_Span]:
    found: list[tuple[int, int, bool]] = []  # (start, end, strong)
    if people.tokens is not None:
        for m in people.tokens.finditer(text):
            s, e = m.span()
            if s and (text[s - 1].isalnum() or text[s - 1] == "_"):
                continue
            word = m.group()
            if word.endswith(("'s", "’s")) and word[:-2] in people.strong | people.weak:
                word, e = word[:-2], e - 2
            if word in people.strong or word in people.weak:
                found.append((s, e, word in people.strong))
    # Merge parts of one name ("Jane van der Berg") into one span; weak parts only count next to strong ones.
    merged: list[list] = []
    for s, e, strong in found:
        if merged:
            gap = text[merged[-1][1]:s]
            if gap.strip() == "" and len(gap) <= 2 or gap.strip() and all(w in people.particles for w in gap.split()):
                merged[-1][1], merged[-1][2] = e, merged[-1][2] or strong
                continue
        merged.append([s, e, strong])
    for s, e, strong in merged:
        if strong or " " in text[s:e]:  # a weak part alone stays; a whole name ("Will Summer") goes
            yield _Span(s, e, "NAME")
    if people.handles is not None:
        for m in people.handles.finditer(text):
            yield _Span(m.start(), m.end(), "NAME")
