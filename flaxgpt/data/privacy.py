"""Privacy scrubbing: secrets and personal data in a document replaced by typed placeholders, offline.

Placeholders (``ScrubResult.counts`` is keyed by the name inside the brackets, e.g. ``{"EMAIL": 2}``):

  secrets
    ``<PRIVATE_KEY>``  PEM / OpenSSH / PGP private key blocks, BEGIN through END (through the
                       base64 lines when END is missing), and PuTTY key files
    ``<AWS_KEY>``      AWS access key ids (AKIA, ASIA, ABIA, ACCA, A3T) and 40-character secret
                       keys with entropy >= 4.25 within 300 characters of the word "aws"
    ``<TOKEN>``        provider tokens (GitHub ghp_/gho_/ghu_/ghs_/ghr_/github_pat_, OpenAI sk-,
                       Slack xox?- and hooks.slack.com URLs, Stripe, GitLab glpat-, PyPI, SendGrid,
                       Google AIza), JWTs, Bearer/Basic credentials, token-like URL query parameters
    ``<PASSWORD>``     values of password-like keys in config-like text (``password = ...``,
                       ``PASSWORD: ...``, ``"secret": "..."``, ``DB_PASS=...``, ``--password x``,
                       ``<password>..</password>``) and the password of ``scheme://user:pass@``
    ``<SECRET>``       high-entropy values of other key-like keys (api_key, token, auth, credential,
                       session, cookie, signature ...): detect-secrets' limits (hex > 3.0 bits per
                       character, base64 > 4.5), with a length-scaled limit for values under 40
                       characters (a random n-character string cannot exceed log2(n) bits)
  personal data
    ``<EMAIL>``        addresses, except the owner's and allow-listed ones
    ``<PHONE>``        ``+``/``00`` international numbers possible for their country (phonenumbers);
                       national numbers with trunk 0 valid in one of ``phone_regions``; North American
                       3-3-4 numbers written with separators; bare digit runs only after a word like
                       "tel", "phone", "mobile", "call"
    ``<CREDIT_CARD>``  13-19 digits (spaces or dashes between groups) passing Luhn with a card-network
                       prefix; unseparated only at 13-16 digits (longer runs are usually chat/message ids)
    ``<IBAN>``         country code, check digits, 11-30 characters, checked by length and mod-97
    ``<IP_ADDRESS>``   IPv4 and IPv6 (stdlib ``ipaddress``), including private ranges, except the
                       unspecified and loopback addresses, netmasks (255.x) and dotted quads written
                       as versions ("v1.2.3.4", "version 1.2.3.4"); IPv6 needs a digit and clean
                       boundaries, so ``std::vector`` or ``dead::beef`` survive
    ``<ADDRESS>``      "12 Baker Street" (number, 1-4 capitalised words, a street suffix), "Keizersgracht
                       123" / "Hauptstraße 5" (Dutch/German suffixes), "12 rue de la Paix"; a following
                       ", City", "1012 AB", "10115", "SW1A 1AA" or "NY 10001" goes with it
    ``<NAME>``         the people passed to ``scrub``: full names (across particles: "Jane van der
                       Berg"), and their capitalised first/last parts alone, except parts that are
                       also common capitalised words ("Will", "May", "Grace", "Mark"), which go only
                       as part of the full name; handles (entries with digits, or all lower case) as
                       written, with or without "@"; never the owner's names or handles (a part shared
                       with the owner, "Anna" in "Anna Jansen" for owner "Anna de Vries", is kept)

Kept on purpose (false positives cost more here than the rare leak they would prevent): version
strings, dates, times, hex commit hashes and ``sha256:`` digests, UUIDs, numbers in tables (a run
of numbers is only a phone when it validates as one), short or low-entropy values of key-like keys,
and code that names a secret without holding one (``password=get_password()``, ``token: str``).
Recall on the planted kinds matters most: a leaked key costs more than a lost hash.

Not caught: secrets in free prose without a separator ("my password is hunter2"), plain-word
passwords after a colon mid-sentence, 7-digit local phone numbers ("555-0132"), bare digit runs
without a phone word, names of people not passed in ``people``, and obfuscated emails ("jane at
example dot com").

Speed: the text is viewed once as Latin-1 bytes (one byte per character, so offsets match the
string), and each family is found by a regex that starts with a literal or in byte strings where a
translation table has turned its characters into one literal (all digits -> ``0``, all
word-ish characters -> ``w``), so the C scanners skip ordinary prose at memory speed. About 35 MB/s
per core on mixed prose and code with few matches (20 MB in 20 KB documents), 15 MB/s on 200-byte
documents, where the fixed cost of ~13 us per call dominates.
"""

from __future__ import annotations

import bisect
import functools
import ipaddress
import math
import re
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import phonenumbers

from flaxgpt.data.extract.base import Owner

PHONE_REGIONS = ("NL", "GB", "DE", "FR", "BE", "IE", "ES", "IT", "CH", "AT", "AU")

# Priority when spans overlap: lower wins (a key inside a URL is a TOKEN, not an EMAIL).
_PRIORITY = {"PRIVATE_KEY": 0, "AWS_KEY": 1, "TOKEN": 1, "PASSWORD": 2, "SECRET": 3, "EMAIL": 4,
             "IBAN": 5, "CREDIT_CARD": 5, "IP_ADDRESS": 6, "PHONE": 7, "ADDRESS": 8, "NAME": 9}


@dataclass(frozen=True)
class ScrubResult:
    """Scrubbed text and how many replacements of each placeholder type were made."""

    text: str
    counts: dict[str, int]


@dataclass(frozen=True)
class _Span:
    start: int
    end: int
    label: str


# -- byte views of the text ------------------------------------------------------------------

def _table(chars: bytes, to: bytes, default: bytes | None = None) -> bytes:
    """A bytes.translate table mapping ``chars`` to ``to`` and the rest to ``default`` (or themselves)."""
    table = bytearray(range(256)) if default is None else bytearray(default * 256)
    for c in chars:
        table[c] = to[0]
    return bytes(table)


_ALNUM = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
_DIGIT_TABLE = _table(b"0123456789", b"0")  # every digit -> '0'
_WORD_TABLE = _table(_ALNUM + b"_-", b"w", b" ")  # characters of tokens and identifiers
_LOCAL_TABLE = _table(_ALNUM + b"_-.+%'" + bytes(range(128, 256)), b"l", b" ")  # email local parts, as written
_HEX_TABLE = _table(b"0123456789abcdefABCDEF:.", b"h", b" ")
_NON_DIGITS = bytes(c for c in range(256) if not 48 <= c <= 57)


class _View:
    """The text as Latin-1 bytes (one byte per character; others become '?') and derived byte strings."""

    def __init__(self, text: str):
        self.text = text
        self.b = text.encode("latin-1", "replace")
        self.lo = self.b.lower()  # ASCII-only lowering keeps offsets
        self.digits = self.b.translate(_DIGIT_TABLE)
        self._words: bytes | None = None

    @property
    def words(self) -> bytes:
        if self._words is None:
            self._words = self.b.translate(_WORD_TABLE)
        return self._words

    def word_bounds(self, i: int) -> tuple[int, int]:
        """Start and end of the run of word-ish characters around position i."""
        w = self.words
        end = w.find(b" ", i)
        return w.rfind(b" ", 0, i) + 1, len(w) if end < 0 else end


def _is_wordchar(b: bytes, i: int) -> bool:
    return 0 <= i < len(b) and (chr(b[i]).isalnum() or b[i] == 95 or b[i] >= 128)


def _entropy(s: str) -> float:
    n = len(s)
    return -sum(c / n * math.log2(c / n) for c in Counter(s).values()) if n else 0.0


_HEX_VALUE = re.compile(r"[0-9a-fA-F]+")


def _high_entropy(value: str) -> bool:
    """detect-secrets' limits: hex > 3.0 bits per char, others > 4.5, scaled down for short values."""
    if len(value) < 16 or value.isdigit():
        return False
    h = _entropy(value)
    if _HEX_VALUE.fullmatch(value):
        return h > 3.0
    if h > 4.5:
        return True
    # A random n-character string has at most log2(n) bits per char; real keys mix digits and letters.
    return (len(value) < 40 and h > 0.85 * math.log2(len(value)) and any(c.isdigit() for c in value)
            and any(c.isalpha() for c in value))


# -- secrets -----------------------------------------------------------------------------------

_PRIVATE_KEY = re.compile(
    rb"-----BEGIN[A-Z0-9 ]*PRIVATE KEY(?: BLOCK)?-----"
    rb"(?:.*?-----END[A-Z0-9 ]*PRIVATE KEY(?: BLOCK)?-----"
    # Without END: the header and base64 lines that follow, one newline (or an escaped "\n") apart.
    rb"|(?:(?:\\n|[ \t]*\r?\n)[ \t]*(?:[A-Za-z0-9+/]{16,}={0,2}|[A-Za-z0-9+/]{1,15}={1,2}|[A-Za-z-]+: [^\n\\]*))*)",
    re.S)
_PUTTY = re.compile(rb"PuTTY-User-Key-File-\d+:[^\n]*(?:\r?\n(?:[A-Za-z-]+: [^\n]*|[A-Za-z0-9+/]+={0,2}))*")
_PROVIDER = re.compile(rb"""(?<![A-Za-z0-9])(?:
    (?P<AWS_KEY>(?:A3T[A-Z0-9]|ABIA|ACCA|AKIA|ASIA)[A-Z0-9]{16})(?![A-Za-z0-9])
  | (?P<TOKEN>gh[pousr]_[A-Za-z0-9_]{36,255}
    | github_pat_[A-Za-z0-9_]{22,255}
    | sk-(?:proj-|svcacct-|admin-|None-)?[A-Za-z0-9_-]{20,}
    | xox[abposre]-[A-Za-z0-9-]{10,}
    | [rs]k_(?:live|test)_[A-Za-z0-9]{16,}
    | glpat-[A-Za-z0-9_-]{20,}
    | pypi-AgEIcHlwaS5vcmc[A-Za-z0-9_-]{16,}
    | SG\.[A-Za-z0-9_-]{16,32}\.[A-Za-z0-9_-]{16,64}
    | AIza[A-Za-z0-9_-]{35}
    | eyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]*
    ))""", re.X)
_LOWER_PREFIXES = frozenset({b"gh", b"gi", b"sk", b"xo", b"rk", b"gl", b"py"})
_MIN_RUN = b"w" * 16  # every provider token starts with (or, after "SG.", is) a run of 16+ word characters
_SLACK_HOOK = re.compile(rb"hooks\.slack\.com/(?:services|workflows|triggers)/([A-Za-z0-9/_-]{8,})")
_AWS_SECRET = re.compile(rb"(?<![A-Za-z0-9/+])[A-Za-z0-9/+]{40}(?![A-Za-z0-9/+=])")
_URL_USERINFO = re.compile(rb"://([^\s/?#@:\"'<>]{1,256}):([^\s/?#@\"'<>]{1,256})@")


def _provider_spans(v: _View) -> Iterator[_Span]:
    b, w = v.b, v.words
    i = w.find(_MIN_RUN)
    while i >= 0:
        _, end = v.word_bounds(i)
        # Provider tokens hold a digit or a capital, or start with a lower-case prefix; snake_case identifiers,
        # the bulk of long runs in code, do neither. A token inside a longer run (aws-key-AKIA...) is searched
        # for only in runs with a digit, as random keys have.
        has_digit = v.digits.find(b"0", i, end) >= 0
        if not has_digit and b[i:i + 2] not in _LOWER_PREFIXES and b[i:end].islower():
            m = None
        else:
            m = _PROVIDER.match(b, i - 3 if b[i - 3:i] == b"SG." else i)
        if m is None and has_digit:
            m = _PROVIDER.search(b, i, end)
        if m is not None:
            yield _Span(m.start(), m.end(), "AWS_KEY" if m.group("AWS_KEY") else "TOKEN")
            end = max(end, m.end())
        i = w.find(_MIN_RUN, end)
    if b"hooks.slack.com/" in b:
        for m in _SLACK_HOOK.finditer(b):
            yield _Span(m.start(1), m.end(1), "TOKEN")
    yield from _aws_secret_spans(v)


def _aws_secret_spans(v: _View) -> Iterator[_Span]:
    """40-character AWS secret keys within 300 characters of the word "aws" (not "draws")."""
    lo, windows = v.lo, []
    i = lo.find(b"aws")
    while i >= 0:
        if not (i and 97 <= lo[i - 1] <= 122):
            if windows and i - 300 <= windows[-1][1]:
                windows[-1][1] = i + 303
            else:
                windows.append([max(0, i - 300), i + 303])
        i = lo.find(b"aws", i + 3)
    for start, end in windows:
        for m in _AWS_SECRET.finditer(v.b, max(0, start - 40), end + 40):
            if _entropy(m.group().decode()) >= 4.25:
                yield _Span(m.start(), m.end(), "AWS_KEY")


def _block_spans(v: _View) -> Iterator[_Span]:
    if b"PRIVATE KEY" in v.b:
        for m in _PRIVATE_KEY.finditer(v.b):
            yield _Span(m.start(), m.end(), "PRIVATE_KEY")
    if b"PuTTY-User-Key-File" in v.b:
        for m in _PUTTY.finditer(v.b):
            yield _Span(m.start(), m.end(), "PRIVATE_KEY")
    if b"://" in v.b and b"@" in v.b:
        for m in _URL_USERINFO.finditer(v.b):
            if not _placeholder_like(m.group(2).decode("latin-1")):
                yield _Span(m.start(2), m.end(2), "PASSWORD")


# Key-value pairs: found from a few keyword stems, then the key, separator and value around them.
_KEY_STEMS = (b"pass", b"pwd", b"secret", b"token", b"key", b"auth", b"credential", b"bearer", b"session",
              b"cookie", b"signature", b"sig=")
# On the key as written: "DB_PASS", "dbPass", "client_secret", "PGPASSWORD" are password-like; "pass_rate" is not.
_PASSWORD_KEY = re.compile(r"(?i:pass(?:word|wd|phrase)|pwd)|(?:^|[_.\-])(?i:pass|pw)$|(?<=[a-z])Pass$"
                           r"|(?:^|[_.\-])(?i:secret)(?:$|[_.\-])|(?<=[a-z])Secret")
_QUERY_KEYS = frozenset({"token", "access_token", "refresh_token", "id_token", "auth_token", "api_key", "apikey",
                         "key", "secret", "client_secret", "password", "pass", "pwd", "sig", "signature", "auth",
                         "x-amz-signature", "x-amz-credential", "x-amz-security-token", "session", "sessionid"})
_KV_TAIL = re.compile(rb"""
    ["'`]?\]?\**[ \t]*(?P<sep>:=|=>|=(?!=)|:(?![:/]))[ \t]*\**[ \t]*
    (?:(?P<scheme>[Bb]earer|BEARER|[Bb]asic|BASIC|[Tt]oken)[ \t]+)?
    (?:"(?P<dq>[^"\r\n]{1,400})"|'(?P<sq>[^'\r\n]{1,400})'|`(?P<bq>[^`\r\n]{1,400})`
      |(?P<bare>[^\s"'`,;]{1,400}))""", re.X)
_FLAG_TAIL = re.compile(rb"(?:=|[ \t]+)[\"']?(?P<bare>[^\s\"'`,;]{1,400})")
_XML_TAIL = re.compile(rb">(?P<bare>[^<\r\n]{1,400})</")
_BEARER_TAIL = re.compile(rb"[ \t]+(?P<bare>[A-Za-z0-9._~+/-]{12,}=*)")
_QUERY_VALUE = re.compile(rb"=(?P<bare>[^&\s#\"'<>]{4,})")
_SKIP_VALUES = frozenset({"null", "none", "nil", "undefined", "true", "false", "required", "optional", "string",
                          "str", "bytes", "bool", "int", "text", "yes", "no", "env", "secret", "password", "pass",
                          "pwd", "passwd", "redacted", "hidden", "todo", "tbd", "n/a", "example", "placeholder"})
_CODE_REF = re.compile(r"[A-Za-z_][\w.]*")
_CODE_CALL = re.compile(r"[A-Za-z_][\w.]*[(\[]")  # get_password(...), data["pw"]
# A plain word is prose ("the secret: practice"), not a mid-line password (those have a digit, symbol, ...).
_PLAIN_WORD = re.compile(r"[^\W\d_]+(?:['’-][^\W\d_]+)*")


def _placeholder_like(value: str) -> bool:
    """Values that stand for a secret without being one: templates, env lookups, masks, placeholders."""
    v = value.strip()
    return (not v or v[0] in "$%{<[(*#" or v.lower() in _SKIP_VALUES or set(v) <= set("*xX.-_•")
            or v.startswith(("os.", "process.env", "env.", "ENV[", "getenv", "self.", "settings.", "config."))
            or (v[0] in "/~." and "/" in v[1:] and " " not in v))  # a path (PWD=/home/jane/src)


_AFTER_KEY = frozenset(b"=:\"'`]*> \t")  # what can follow a key in an assignment (bytes values)


def _keyword_spans(v: _View) -> Iterator[_Span]:
    b, lo = v.b, v.lo
    seen: set[int] = set()
    for stem in _KEY_STEMS:
        i = lo.find(stem)
        while i >= 0:
            key_start, key_end = v.word_bounds(i)
            if key_end < len(b) and b[key_end] in _AFTER_KEY and key_start not in seen:
                seen.add(key_start)
                span = _key_value(v, key_start, key_end)
                if span is not None:
                    yield span
            i = lo.find(stem, i + len(stem))


def _key_value(v: _View, key_start: int, key_end: int) -> _Span | None:
    """The secret value assigned to the key at [key_start, key_end), or None."""
    b = v.b
    key = v.lo[key_start:key_end].decode("latin-1")
    in_query = key_start > 0 and b[key_start - 1] in b"?&" and key.strip("-") in _QUERY_KEYS
    if in_query:
        m = _QUERY_VALUE.match(b, key_end)
    elif key == "bearer":
        m = _BEARER_TAIL.match(b, key_end)
    elif key.startswith("--"):
        m = _FLAG_TAIL.match(b, key_end)
    elif key_start > 0 and b[key_start - 1] == 60:  # '<password>...</password>'
        m = _XML_TAIL.match(b, key_end)
    else:
        m = _KV_TAIL.match(b, key_end)
    if m is None:
        return None
    name = next(g for g in ("dq", "sq", "bq", "bare") if m.groupdict().get(g) is not None)
    value = m.group(name).decode("latin-1")
    s, e = m.span(name)
    if name == "bare":
        if _CODE_CALL.match(value):
            return None
        value = value.rstrip(":.")
        # f(password=hunter2): drop closing brackets that the value did not open.
        while value and value[-1] in ")]}" and value.count(value[-1]) > value.count("([{"[")]}".index(value[-1])]):
            value = value[:-1]
    e = s + len(value)
    if _placeholder_like(value) or (value.isdigit() and len(value) < 4):  # "PASSWORD": 2 is a number
        return None
    scheme = m.groupdict().get("scheme")
    if in_query:
        return _Span(s, e, "PASSWORD" if _PASSWORD_KEY.search(key) else "TOKEN")
    if key == "bearer" or scheme:  # a credential has a digit or mixed case; "bearer annotations" is prose
        token_like = any(c.isdigit() for c in value) or (value.lower() != value and value.upper() != value)
        return _Span(s, e, "TOKEN") if len(value) >= 8 and token_like else None
    if _PASSWORD_KEY.search(key.lstrip("-")):
        if name == "bare":
            if _CODE_REF.fullmatch(value) and any(t in value.lower() for t in ("pass", "pwd", "secret", "key")):
                return None  # password = user_password: a variable, not a value
            line_start = b.rfind(b"\n", 0, key_start) + 1
            mid_line = b[line_start:key_start].strip(b" \t-*#>/\"'{") != b""
            if mid_line and m.groupdict().get("sep") == b":" and _PLAIN_WORD.fullmatch(value):
                return None  # prose: "the secret: practice" (a real password has a digit, capital or symbol)
        return _Span(s, e, "PASSWORD")
    return _Span(s, e, "SECRET") if _high_entropy(value) else None


# -- personal data -----------------------------------------------------------------------------

_EMAIL_DOMAIN = re.compile(rb"@((?:[A-Za-z0-9\x80-\xff](?:[A-Za-z0-9\x80-\xff-]{0,61}[A-Za-z0-9\x80-\xff])?\.)+"
                           rb"[A-Za-z]{2,24})(?![A-Za-z0-9-])")
_NOT_EMAIL_TLDS = frozenset({b"png", b"jpg", b"jpeg", b"gif", b"svg", b"webp"})


def _email_spans(v: _View) -> Iterator[_Span]:
    b = v.b
    if b"@" not in b:
        return
    local = b.translate(_LOCAL_TABLE)
    for m in _EMAIL_DOMAIN.finditer(b):
        at = m.start()
        start = local.rfind(b" ", max(0, at - 64), at) + 1 or max(0, at - 64)
        while start < at and b[start] in b".-+":
            start += 1
        if start == at or b[start:at].lower() == b"git" or m.group(1).rsplit(b".", 1)[-1].lower() in _NOT_EMAIL_TLDS:
            continue
        yield _Span(start, m.end(), "EMAIL")


# Patterns on the digit view (every digit is '0') start with a literal '0', so the scanner jumps between digits.
_NUMBER_RUN = re.compile(rb"0(?=[0 ().\-/]{6})0*(?:(?:[ \-./]|\) ?| ?\(| - )0+)*\)?")
_IPV4 = re.compile(rb"00{0,2}\.0{1,3}\.0{1,3}\.0{1,3}")
_GROUPS = re.compile(r"\d+")
_NANP = re.compile(r"(?:\+?1[ .-]?)?(?:\(\d{3}\) ?|\d{3}[ .-])\d{3}[ .-]\d{4}")
_PHONE_WORD = re.compile(rb"(?<![a-z])(?:tel|phone|mobile|mobiel|cell|fax|call|whatsapp|sms|telefoon|telefon|handy"
                         rb"|gsm)\b")
_VERSION_WORD = re.compile(rb"(?<![a-z])(?:v|ver\.?|version|release|build)\s?\Z")
_CARD_PREFIX = re.compile(r"4|5[1-5]|2[2-7]|3[0-9]|6[0-9]|50")
_DATE = re.compile(r"\d{4}([-/.])\d{1,2}\1\d{1,2}|\d{1,2}([-/.])\d{1,2}\2\d{2,4}")
_IBAN_HEAD = re.compile(rb"[A-Z]{2}[0-9]{2}(?: ?[A-Z0-9]{4})+ \Z")  # digits that continue an IBAN-like string
_COUNTING = "01234567890123456789"  # "0123456789" is a placeholder, not a phone


def _luhn(digits: str) -> bool:
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = ord(ch) - 48
        if i % 2:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return total % 10 == 0


@functools.lru_cache(maxsize=4096)
def _valid_phone(candidate: str, regions: tuple[str, ...]) -> bool:
    """True if ``candidate`` parses as a valid number of one of ``regions`` ('+' forms: a possible number)."""
    try:
        if candidate.startswith(("+", "00")):
            number = phonenumbers.parse("+" + candidate[2:] if candidate.startswith("00") else candidate, None)
            return phonenumbers.is_possible_number(number)
        for region in regions:
            if phonenumbers.is_valid_number(phonenumbers.parse(candidate, region)):
                return True
    except phonenumbers.NumberParseException:
        pass
    return False


def _number_label(cand: str, after_keyword: bool, regions: tuple[str, ...]) -> str | None:
    """'CREDIT_CARD', 'PHONE' or None for a run of digits and separators."""
    digits = "".join(_GROUPS.findall(cand))
    n = len(digits)
    seps = set(cand) - set("0123456789")
    if 13 <= n <= 19 and seps <= {" ", "-"} and (seps or n <= 16) and _CARD_PREFIX.match(digits) and _luhn(digits):
        return "CREDIT_CARD"
    if not 7 <= n <= 15 or _DATE.fullmatch(cand) or digits in _COUNTING or digits in _COUNTING[::-1]:
        return None
    if re.search(r"(?:^|\D)0\.\d", cand):  # "0.25 0.125": decimals
        return None
    if cand.startswith("+") or (cand.startswith("00") and n >= 10):
        return "PHONE" if _valid_phone(cand, regions) else None
    if _NANP.fullmatch(cand):
        return "PHONE"
    if (cand.startswith(("0", "(0")) and 9 <= n <= 11) or after_keyword:
        return "PHONE" if _valid_phone(cand, (*regions, "US")) else None
    return None


def _number_spans(v: _View, regions: tuple[str, ...]) -> Iterator[_Span]:
    text, b, lo = v.text, v.b, v.lo
    for m in _NUMBER_RUN.finditer(v.digits):
        s, e = m.span()
        if s and b[s - 1] == 40:  # '(' opening an area code
            s -= 1
        if s and b[s - 1] == 43:  # '+'
            s -= 1
        if _is_wordchar(b, s - 1) or _is_wordchar(b, e) or (s and b[s - 1] in b".-/") or b[e:e + 1] in (b"-", b"/"):
            continue
        if s > 1 and b[s - 1] == 32 and _IBAN_HEAD.search(b, max(0, s - 40), s):
            continue
        cand = text[s:e].rstrip(" .-/")
        e = s + len(cand)
        if ")" in cand and "(" not in cand:
            cand, e = cand.rstrip(")"), e - (len(cand) - len(cand.rstrip(")")))
        keyword = _PHONE_WORD.search(lo, max(0, s - 24), s) is not None
        label = _number_label(cand, keyword, regions)
        if label:
            yield _Span(s, e, label)
        elif len(cand) >= 13 and len(_GROUPS.findall(cand)) > 2:  # room for a phone and another number
            yield from _sub_numbers(s, cand, keyword, regions)


def _sub_numbers(s: int, cand: str, keyword: bool, regions: tuple[str, ...]) -> Iterator[_Span]:
    """A phone number glued to other numbers by single spaces ('2024-01-15 06 4827 1953'): tries group ranges."""
    groups = [(g.start(), g.end()) for g in _GROUPS.finditer(cand)]
    i = 0
    while i < len(groups):
        if i and cand[groups[i][0] - 1] not in " (+":  # a number starts after a space, not inside "2024-01-15"
            i += 1
            continue
        for j in range(min(len(groups), i + 6), i, -1):
            a = groups[i][0] - (1 if groups[i][0] and cand[groups[i][0] - 1] in "+(" else 0)
            sub = cand[a:groups[j - 1][1]]
            if (sub.startswith(("+", "0", "(")) or keyword) and _number_label(sub, keyword, regions) == "PHONE":
                yield _Span(s + a, s + groups[j - 1][1], "PHONE")
                i = j - 1
                break
        i += 1


def _ip_spans(v: _View) -> Iterator[_Span]:
    b = v.b
    for m in _IPV4.finditer(v.digits):
        s, e = m.span()
        if (_is_wordchar(b, s - 1) or (s and b[s - 1] == 46) or _is_wordchar(b, e)
                or (b[e:e + 1] == b"." and _is_wordchar(b, e + 1))):
            continue
        text = b[s:e].decode()
        try:
            ip = ipaddress.IPv4Address(text)
        except ValueError:
            continue
        if ip.is_unspecified or ip.is_loopback or text.startswith("255."):
            continue
        if _VERSION_WORD.search(v.lo, max(0, s - 9), s):
            continue
        yield _Span(s, e, "IP_ADDRESS")
    if b":" in b:
        yield from _ipv6_spans(v)


_V6_HINT = re.compile(rb":(?::|[0-9A-Fa-f]{1,4}:)")


def _ipv6_spans(v: _View) -> Iterator[_Span]:
    b = v.b
    hexes = b.translate(_HEX_TABLE)
    pos = 0
    while (m := _V6_HINT.search(b, pos)) is not None:
        s = hexes.rfind(b" ", 0, m.start()) + 1
        e = hexes.find(b" ", m.start())
        e = len(b) if e < 0 else e
        pos = e
        cand = b[s:e].rstrip(b".").decode()
        if _is_wordchar(b, s - 1) or _is_wordchar(b, s + len(cand)) or not any(c.isdigit() for c in cand):
            continue
        try:
            ip = ipaddress.IPv6Address(cand)
        except ValueError:
            continue
        if not (ip.is_loopback or ip.is_unspecified):
            yield _Span(s, s + len(cand), "IP_ADDRESS")


_IBAN = re.compile(rb"00(?: ?[A-Z0]{4}){2,7}(?: ?[A-Z0]{1,3})?(?![A-Za-z0-9])")  # from the check digits
_IBAN_LENGTHS = dict(  # ISO 13616 registry lengths by country
    AD=24, AE=23, AL=28, AT=20, AZ=28, BA=20, BE=16, BG=22, BH=22, BR=29, BY=28, CH=21, CR=22, CY=28, CZ=24,
    DE=22, DK=18, DO=28, EE=20, EG=29, ES=24, FI=18, FO=18, FR=27, GB=22, GE=22, GI=23, GL=18, GR=27, GT=28,
    HR=21, HU=28, IE=22, IL=23, IQ=23, IS=26, IT=27, JO=30, KW=30, KZ=20, LB=28, LC=32, LI=21, LT=20, LU=20,
    LV=21, MC=27, MD=24, ME=22, MK=19, MR=27, MT=31, MU=30, NL=18, NO=15, PK=24, PL=28, PS=29, PT=25, QA=29,
    RO=24, RS=22, SA=24, SC=31, SE=24, SI=19, SK=24, SM=27, ST=25, SV=28, TL=23, TN=24, TR=26, UA=29, VA=22,
    VG=24, XK=20)


def _iban_spans(v: _View) -> Iterator[_Span]:
    b = v.b
    for m in _IBAN.finditer(v.digits):
        s = m.start() - 2
        if s < 0 or not (65 <= b[s] <= 90 and 65 <= b[s + 1] <= 90) or _is_wordchar(b, s - 1):
            continue
        raw = v.text[s:m.end()]
        iban = raw.replace(" ", "")
        n = _IBAN_LENGTHS.get(iban[:2])
        if n is None or len(iban) < n:
            continue
        iban = iban[:n]
        if int("".join(str(int(c, 36)) for c in iban[4:] + iban[:4])) % 97 == 1:
            last = [k for k, c in enumerate(raw) if c != " "][n - 1]  # the n-th character of the spaced text
            yield _Span(s, s + last + 1, "IBAN")


_CAP = rb"[A-Z\xc0-\xde0]"
_LOW = rb"[A-Za-z\xc0-\xff0'.\-]"
_EN_SUFFIX = (rb"(?:Street|St|Avenue|Ave|Road|Rd|Lane|Ln|Boulevard|Blvd|Drive|Dr|Court|Ct|Place|Pl|Square|Sq|"
              rb"Terrace|Parkway|Pkwy|Highway|Hwy|Way|Close|Crescent|Row|Mews|Gardens|Grove|Circle|Trail|Plaza)")
_POSTCODE = rb"(?:[A-Z]{2} 00000(?:-0000)?|0000 ?[A-Z]{2}(?![A-Za-z])|00000|[A-Z]{1,2}0[A-Z0]? ?0[A-Z]{2})"
_ADDR_TAIL = (rb"(?:,? (?:Apt|Apartment|Suite|Ste|Unit|Flat|#)\.? ?[0A-Za-z-]+)?"
              rb"(?:, ?" + _CAP + _LOW + rb"+(?: " + _CAP + _LOW + rb"+){0,2})?"
              rb"(?:,? " + _POSTCODE + rb"(?: " + _CAP + _LOW + rb"+)?)?")
_EN_ADDRESS = re.compile(rb"00{0,4}[A-Za-z]?(?:-0{1,5})?,? (?:" + _CAP + _LOW + rb"* ){1,4}" + _EN_SUFFIX
                         + rb"\b\.?" + _ADDR_TAIL)
_ROMANCE_ADDRESS = re.compile(rb"00{0,4}(?:bis|ter)?,? (?:rue|avenue|boulevard|bd|place|chemin|impasse|all\xe9e|quai|"
                              rb"via|viale|piazza|calle|avenida|rua|carrer|plaza) (?:[a-z\xdf-\xff'-]+ ){0,3}"
                              + _CAP + _LOW + rb"+" + _ADDR_TAIL)
# Street names that end in a suffix and come before the number ("Keizersgracht 123", "Hauptstraße 5"): found
# from " <digit>" with one lookbehind per suffix, then the street word and the rest read from the text.
_EU_SUFFIXES = ("straat", "weg", "laan", "gracht", "plein", "kade", "dijk", "singel", "straße", "strasse", "str.",
                "gasse", "allee", "platz", "damm", "steeg", "vej", "gatan", "gata", "veien")
_EU_NUMBER = re.compile(rb" 0(?:" + b"|".join(rb"(?<=" + re.escape(s.encode("latin-1")) + rb" 0)"
                                               for s in _EU_SUFFIXES) + rb")")
_EU_STREET = re.compile(r"[A-ZÀ-Þ][\w.'-]*\Z")
_EU_TAIL = re.compile(r"\s\d{1,5}(?:\s?[a-zA-Z](?!\w))?(?:[-/]\d{1,4})?"
                      r"(?:,?\s(?:\d{4}\s?[A-Z]{2}|\d{4,5})\s[A-ZÀ-Þ][\w-]+)?")
_POSTCODE_CITY = re.compile(rb"0000 ?[A-Z]{2} [A-Z][a-z\xdf-\xff]+")  # NL: "1012 AB Amsterdam"


def _address_spans(v: _View) -> Iterator[_Span]:
    b, digits = v.b, v.digits
    for pattern in (_EN_ADDRESS, _ROMANCE_ADDRESS, _POSTCODE_CITY):
        for m in pattern.finditer(digits):
            if not _is_wordchar(b, m.start() - 1):
                yield _Span(m.start(), m.end(), "ADDRESS")
    text = v.text
    for m in _EU_NUMBER.finditer(digits):
        street = _EU_STREET.search(text, max(0, m.start() - 48), m.start())
        tail = _EU_TAIL.match(text, m.start())
        if street and tail and not (street.start() and text[street.start() - 1].isalnum()):
            yield _Span(street.start(), tail.end(), "ADDRESS")


# Capitalised words that are also names: replaced only next to another part of the same name.
_COMMON = """A An The I It We You He She They This That These Those And Or But If So As At By For
From In Into Of On To Up With Is Be Do Go No Not My Me Us Our Your His Her Its Can May Might Will Would Shall
Should Must June July April August March Sunday Monday Tuesday Wednesday Thursday Friday Saturday Summer Winter
Spring Autumn Fall New Old Young Long Little Hope Faith Grace Joy Dawn Rose Lily Ivy Iris Violet Sky Star Bill
Sue Pat Art Miles Frank Grant Mark Guy Chase Hunter Drew Gene Wade Dean Earl King Brown White Green Black Gray
Grey Love Best Good"""
_COMMON_WORDS = frozenset(_COMMON.split())


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
            if part in owner_parts or len(part) < 2:
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


# -- the scrubber ------------------------------------------------------------------------------

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
        self._allowed = tuple(sorted({a.strip().encode("latin-1", "replace").lower() for a in allowed if a.strip()}))
        # Allow-listed phone numbers compare by their last 9 digits (+31 20 ... == 020 ...).
        digits = [(a, a.encode("latin-1", "replace").translate(None, _NON_DIGITS)) for a in allowed]
        self._allowed_phones = frozenset(d[-9:] for a, d in digits
                                         if len(d) >= 7 and 2 * len(d) > len("".join(a.split())))

    def scrub(self, text: str, people: Sequence[str] = ()) -> ScrubResult:
        """Returns ``text`` with secrets and personal data replaced, and the count of each placeholder.

        ``people``: names (or handles) of other people the document is known to mention, such as
        the senders of a mail thread or the members of a chat; the owner's names are skipped.
        """
        if not text:
            return ScrubResult(text, {})
        view = _View(text)
        spans = [*_block_spans(view), *_provider_spans(view), *_keyword_spans(view), *_email_spans(view),
                 *_number_spans(view, self.phone_regions), *_ip_spans(view), *_iban_spans(view),
                 *_address_spans(view)]
        if people:
            spans += _name_spans(text, _people_index(tuple(people), self.owner))
        if not spans:
            return ScrubResult(text, {})
        kept = _resolve(s for s in spans if not self._is_allowed(view, s))
        counts = Counter(s.label for s in kept)
        parts, pos = [], 0
        for s in kept:
            parts += (text[pos:s.start], f"<{s.label}>")
            pos = s.end
        parts.append(text[pos:])
        return ScrubResult("".join(parts), dict(counts))

    def _is_allowed(self, view: _View, span: _Span) -> bool:
        """True if the span lies inside an occurrence of an allow-listed string (or is an allowed phone)."""
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
