"""Personal data: emails, phone numbers, credit cards, IBANs, IP addresses and street addresses."""

from __future__ import annotations

import functools
import ipaddress
import re
from collections.abc import Iterator

import phonenumbers

from flaxgpt.ingest.privacy.text import _HEX_TABLE, _LOCAL_TABLE, _is_wordchar, _Span, _View

PHONE_REGIONS = ("NL", "GB", "DE", "FR", "BE", "IE", "ES", "IT", "CH", "AT", "AU")

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
# Words before a dotted number that make it a version or a section, not an address ("section 4.4.7.1").
_VERSION_WORD = re.compile(rb"(?<![a-z])(?:v|ver\.?|version|release|build|section|sect\.|chapter|clause|\xa7)\s?\Z")
_CARD_PREFIX = re.compile(r"4|5[1-5]|2[2-7]|3[0-9]|6[0-9]|50")
_DATE = re.compile(r"\d{4}([-/.])\d{1,2}\1\d{1,2}|\d{1,2}([-/.])\d{1,2}\2\d{2,4}")
_IBAN_HEAD = re.compile(rb"[A-Z]{2}[0-9]{2}(?: ?[A-Z0-9]{4})+ \Z")  # digits that continue an IBAN-like string
_ZIP4 = re.compile(rb"\d{5}-\d{4}(?![\d-])")
_STATE_BEFORE = re.compile(rb"(?<![A-Za-z])[A-Z]{2},?[ \t]+\Z")
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
        if _ZIP4.match(b, s) and _STATE_BEFORE.search(b, max(0, s - 5), s):
            continue  # "Boston, MA 02110-1301": a US ZIP+4 code, not a phone (it goes with its address)
        cand = text[s:e].rstrip(" .-/")
        e = s + len(cand)
        if text[e:e + 1] == ":" and text[e + 1:e + 3].isdigit():  # "[07.05.2025 22:10]": its last group is an hour
            cand = cand[:cand.rfind(" ") + 1 if " " in cand else 0].rstrip(" .-/")
            e = s + len(cand)
            if not cand:
                continue
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


# An organisation's name just before the number: "Free Software Foundation, Inc., 51 Franklin Street" (the
# licence headers in code comments) is a published office address, not a person's.
_ORG_BEFORE = re.compile(rb"(?<![A-Za-z])(?:Inc|Foundation|Ltd|LLC|GmbH|B\.V|N\.V|Corp|Corporation|Limited|PLC|AG)"
                         rb"\.?,?[\s#*/;!-]*\Z")


def _address_spans(v: _View) -> Iterator[_Span]:
    b, digits = v.b, v.digits
    for pattern in (_EN_ADDRESS, _ROMANCE_ADDRESS, _POSTCODE_CITY):
        for m in pattern.finditer(digits):
            if not _is_wordchar(b, m.start() - 1) and not _ORG_BEFORE.search(b, max(0, m.start() - 40), m.start()):
                yield _Span(m.start(), m.end(), "ADDRESS")
    text = v.text
    for m in _EU_NUMBER.finditer(digits):
        street = _EU_STREET.search(text, max(0, m.start() - 48), m.start())
        tail = _EU_TAIL.match(text, m.start())
        if street and tail and not (street.start() and text[street.start() - 1].isalnum()):
            yield _Span(street.start(), tail.end(), "ADDRESS")
