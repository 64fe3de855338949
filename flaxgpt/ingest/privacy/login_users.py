"""The user half of a login whose password was found: "username segun.adeola, password X", "hannah_b_1990 / X",
"log in as qa_maria with X", "postgres://analytics_ro:X@host", "-u ci-pusher -p X", "User ID=rpt_reader;Password=X".

A user name is personal data: it names an account, and is often made of its owner's name. It is replaced with
``<USERNAME>`` only next to a password already found (``prose``, ``secrets``), read back from the password on the
same line; default accounts ("admin", "root", "postgres") name nobody and stay, and the owner's handles are
allow-listed by the scrubber like their e-mail addresses.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator

from flaxgpt.ingest.privacy.text import _Span

_USER_WORDS = (r"user(?:[ _-]?(?:name|id))?|login|account|acct|usuario|usuário|utente|utilisateur|identifiant"
               r"|benutzer(?:name)?|gebruiker(?:snaam)?|användar(?:e|namn)|brugernavn|brukernavn|uživatel|aluno"
               r"|u|usr|uid|admin")
_USER = r"[\w.@\\-]{2,64}"
_TOKEN = re.compile(_USER)
# Read back from the password: a labelled user on the line ("username X, password ", "User ID=X;Password="), a
# pair ("X / ", "X:" in a URL or after "creds"), or "as X with ".
_BEFORE = re.compile(
    rf"(?i)(?:\b(?:{_USER_WORDS})\b[ \t]*[:=]?[ \t]*(?P<filler>(?:[^\s:=/]{{1,12}}[ \t]+){{0,3}}?)['\"]?(?P<u>{_USER})"
    rf"['\"]?[ \t,;]*\n?[^\n]{{0,45}}?"
    rf"|(?<![\w.@\\-])(?P<p>{_USER})(?:[ \t]*[/|+][ \t]*|:|[ \t]+and[ \t]+then[ \t]+)"
    rf"|\bas[ \t]+(?P<a>{_USER})[ \t]+with[ \t]+(?:password[ \t]+)?"
    rf"|-u[ \t]+(?P<c>{_USER})[ \t]+(?:-p[ \t]*)?"
    rf"|(?<![\w.@\\-])(?P<d>\w+\\[\w.-]{{2,64}}),[ \t]*)\Z")  # "DOMAIN\\aokonkwo, Autumn2025!"
# ... or after it: "passphrase is 'X'; user is bastion-ops".
_AFTER = re.compile(rf"[^\n]{{0,40}}?\b(?:{_USER_WORDS})\b[ \t]*(?:is|:|=)[ \t]*['\"]?(?P<u>{_USER})")
_NETWORK = re.compile(r"(?i)\b(?:wi-?fi|wlan|ssid|network|netzwerk|netwerk|réseau|red)\b[^\n]{0,12}\Z")
# Accounts that name nobody, and words a label can be followed by.
_GENERIC = frozenset("""admin administrator root pi guest user users test postgres ubuntu sa default demo anonymous
nobody operator office www-data ec2-user is the for and with of on at to in your my their our id name email e-mail
accounts account same below above here there password pass pw pwd login details is: was""".split())  # noqa: SIM905


def username_spans(text: str, passwords: Iterable[_Span],
                   owner_words: frozenset[str] = frozenset()) -> Iterator[_Span]:
    """``USERNAME`` spans of the user names stated with the given PASSWORD spans; a user name made of the owner's
    names (``owner_words``, lower case: "anna", "anna.devries") is the owner's own and stays."""
    for pw in passwords:
        line_start = text.rfind("\n", 0, pw.start) + 1
        start = text.rfind("\n", 0, max(0, line_start - 1)) + 1  # "Usuario: x\nContraseña: y": the line before
        m = _closest(text, max(start, pw.start - 160), pw.start) or _AFTER.match(text, pw.end)
        if m is None:
            continue
        group = next(g for g in ("u", "p", "a", "c", "d") if g in m.re.groupindex and m.group(g))
        start, user = m.start(group), m.group(group).rstrip(".,;:")
        if group == "u" and not _user_like(user):  # "usuário da VPN é pedro.santos.ext": the word that looks like one
            tokens = list(_TOKEN.finditer(text, start, min(pw.start, start + 60)))[1:4]
            later = [t for t in tokens if _user_like(t.group())]
            if later:
                start, user = later[0].start(), later[0].group().rstrip(".,;:")
            elif "filler" in m.re.groupindex and m.group("filler"):
                continue
        if user.split("\\")[-1].lower() in _GENERIC or not _user_like(user) and not user.islower():
            continue  # a default account, or a capitalised word ("Login Page")
        if set(re.split(r"[._\-@\\]", user.lower())) <= owner_words:
            continue
        if _NETWORK.search(text, max(0, start - 30), start):
            continue  # "wifi: HomeNet-5G / X": the network's name
        yield _Span(start, start + len(user), "USERNAME")


def _user_like(word: str) -> bool:
    return any(c.isdigit() or c in "._-@\\" for c in word.rstrip(".,;:"))


def _closest(text: str, lo: int, end: int) -> re.Match[str] | None:
    """The match of ``_BEFORE`` ending at ``end`` that starts closest to it."""
    best, pos = None, lo
    while (m := _BEFORE.search(text, pos, end)) is not None:
        best, pos = m, m.start() + 1
    return best
