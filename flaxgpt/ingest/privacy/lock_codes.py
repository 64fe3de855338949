"""Codes that open something, stated near what they open: "front door:\\n0 8 2 7 5", "kapı şifresi 2468*",
"keypad 3341*", "the key box next to the entrance opens with 2514", "pin for the parcel locker: 481 937".

Found from the number: a keypad code's shape (3-8 digits, or digit groups joined by spaces, dashes or dots),
then, in the same clause up to 80 characters back, a word for a lock or a code and a connector (":", "is",
"to", "opens with", ...) or the code word right before it. A plain lock noun ("gate", "locker") needs a
connector, so "gate 23" and "locker 12" stay; error, status and exit codes stay (their own words say so).
"""

from __future__ import annotations

import re
import string

from flaxgpt.ingest.privacy.text import _Span, _View

# A keypad code as written: "5829", "481 937", "6 6 0 2", "22-5-17", "3·7·1·9" (on the Latin-1 view), with an
# optional "*" or "#" around it; not part of a longer number, word, time, date or amount (what comes before it
# is checked in ``lock_code_spans``).
_CODE_VALUE = re.compile(rb"(?P<v>[0-9](?:[0-9]{0,2}(?:[ \xb7.-][0-9]{1,3}){1,7}|[0-9]{2,7}))[*#]?"
                         rb"(?![\w/:%$\x80\xa3\xa5]|[.,-][0-9])")  # one leading digit: the engine skips to digits fast
_NOT_BEFORE = frozenset(b".,:/+*#$\xa3\x80-_" + (string.ascii_letters + string.digits).encode())
_UNIT_AFTER = re.compile(r"[ \t]*(?:euros?|eur|usd|dollars?|pounds?|gbp|zł|zl|kr|lira|tl|€|\$|£|km|kg|mb|gb|ms|"
                         r"min(?:utes?)?|h|hours?|am|pm|x|times|people|days?|years?|yrs|st|nd|rd|th|k|combinations?|options|"
                         r"possibilities|tries|attempts|digits?)\b", re.I)
_CLAUSE_END = re.compile(r"[.;!?](?:\s|$)|\n\s*\n")
# Words for what a code opens, and words for the code itself (any language the language ID reports often).
_LOCKS = frozenset("""door doors gate alarm lock locks locker lockbox keybox keysafe keypad safe padlock box shed
mailbox suitcase entrance building freezer atm voicemail sim unlock unlocks vault garage intercom
tür haustür tor schloss fahrradschloss tresor kluis sleutelkluis deur poort kapı kapının porta portão portal puerta
portón cadenas coffre portail brama bramy bramę klatka klatki domofon skrytka bancomat cajero atm
dør døren porten låset förrådet förråd postkassen postkasse brevlådan garasjen garaget garagen ovi oven portti
kapu kapunál ajtó riasztó széf ușii ușa bloc blocului interfon trezor trezoru trezorul sejf furtka drzwi dveře
dveří brána brány pintu gerbang brankas kassaskåpet pengeskabet alarme alarmen alarmu alarmului entry cadeado
armário candado lucchetto""".split())  # noqa: SIM905
# Words for the code: specific ones name a code that opens something; generic ones ("code", "pin") need a lock word
# near or a 4+ digit value after a connector ("the pin is 4411", but "the API returns code 200").
_SPECIFIC_CODE_WORDS = frozenset("""passcode pincode combination combo kombi kombination puk digicode şifre şifresi
şifrem şifreyi""".split())  # noqa: SIM905
_GENERIC_CODE_WORDS = frozenset("""code codes pin kod kodu kodem koden código codigo codice kode kodun kodunu koodi
kód kódja kódot codul""".split())  # noqa: SIM905
# Luggage and bike locks have three-digit combinations; other codes need four digits or a specific code word.
_THREE_DIGIT_LOCKS = frozenset("lock padlock suitcase schloss cadenas cadeado candado lucchetto dial".split())  # noqa: SIM905
# Codes that are no secret: the word before or after the code word says so ("error code 1045", "código postal").
_NOT_SECRET = frozenset("""error status exit return http response zip postal post area country promo discount
coupon voucher tracking reference ref gpio qr bar barcode source sample example cheat color colour iso
postale kilde käll källkod lähde program feil fel virhe hiba status streg streck viiva rabat rabatt alennus land
landekode maa fejl""".split())  # noqa: SIM905
_NOT_SECRET_PREFIXES = tuple(_NOT_SECRET)  # "postcode", "barcode"
# What may stand right before the code, after the lock or code word.
_CONNECTOR_WORDS = """is es ist est to = : — – - → -> was are set now use with opens open unlocks unlock then just
still actually number no er är on je jest e este é è adalah not nicht pas 👉 ➡ it's it’s c'est"""
_CONNECTORS = frozenset(_CONNECTOR_WORDS.split())
_WORD = re.compile(r"[^\W\d_]+(?:['’-][^\W\d_]+)*|[=:→—–👉➡-]+|->")
_ALARM_CODE = re.compile(r"(?!(?:19|20)\d\d\b)\d{4,8}(?:[,;.!]|\s*$|\s+(?:then|and|to)\b)")
_MAX_WORDS = 12  # words of the clause looked at, back from the code


def lock_code_spans(v: _View) -> list[_Span]:
    """PASSWORD spans of keypad codes stated right after what they open or the word for the code."""
    if b"0" not in v.digits:  # every digit is "0" there
        return []
    text, b, out = v.text, v.b, []
    for m in _CODE_VALUE.finditer(b):  # starts at a digit: fast to scan for (a leading lookbehind is not)
        s, e = m.span("v")
        p = s - 1 if s and b[s - 1] in b"*#" else s  # "*3091"
        if p and (b[p - 1] in _NOT_BEFORE or b[p - 1] >= 0xc0):
            continue  # part of a word, a longer number, a decimal, a time, a path or an amount
        digits = sum(c.isdigit() for c in text[s:e])
        if not 3 <= digits <= 8 or _UNIT_AFTER.match(text, m.end()) or text[m.end():m.end() + 1] == "%":
            continue
        if _stated_for_lock(text, s, digits):
            out.append(_Span(s, e, "PASSWORD"))
    return out


def _stated_for_lock(text: str, s: int, digits: int) -> bool:
    """True if the clause before ``s`` names a lock or a code and then states the code at ``s``."""
    line_start = text.rfind("\n", 0, s) + 1
    own_line = not text[line_start:s].strip(" \t→>*•-") and line_start > 1
    if own_line:  # "front door:\n0 8 2 7 5", "gate at the allotment\n→ 0 3 0 9": the line before names the lock
        line_start = text.rfind("\n", 0, line_start - 1) + 1
    before = text[max(line_start, s - 80):s]
    cut = max((m.end() for m in _CLAUSE_END.finditer(before)), default=0)
    words = [w.lower() for w in _WORD.findall(before[cut:])][-_MAX_WORDS:]
    k = next((k for k in range(len(words) - 1, -1, -1) if _code_word(words[k]) or _lock_word(words[k])), -1)
    if own_line:  # on its own line, the code word of the line before goes with it ("keypad by the garage")
        k = next((j for j in range(len(words) - 1, -1, -1) if _code_word(words[j]) or words[j] == "keypad"), k)
    if k < 0:
        return False
    trigger, between = words[k], words[k + 1:]
    if k and words[k - 1] in _NOT_SECRET or between and between[0] in _NOT_SECRET:
        return False  # "error code 1045", "código postal es 28013"
    specific = any(w in _SPECIFIC_CODE_WORDS or _compound_code(w) for w in words)
    lock_near = any(_lock_word(w) for w in words)
    if own_line and (_code_word(trigger) or trigger == "keypad"):  # "use the keypad by the garage\n3 7 7 0"
        between = []
    elif not between and k and _lock_word(trigger) and _code_word(words[k - 1]):
        trigger, between = words[k - 1], [trigger]  # "codice bancomat 80431", "kod bramy 1234"
    if between:  # "the key box ... opens with 2514", "pin for the parcel locker: 481 937"
        if between[-1] not in _CONNECTORS and not (len(between) == 1 and _lock_word(between[0])
                                                   and _code_word(trigger)):
            return False
    elif trigger in ("alarm", "alarme", "alarma"):  # "alarm 3390, door code same as before"
        if not _ALARM_CODE.match(text, s):
            return False  # "the alarm 2024 report", "alarm 06:30"
    elif not (_code_word(trigger) or trigger == "keypad" or trigger == "unlock"):
        return False  # "gate 23", "locker 12": a lock's number, not its code
    if trigger in _GENERIC_CODE_WORDS and not (specific or lock_near) and (digits < 4 or not between):
        return False
    return digits >= 4 or specific or any(w in _THREE_DIGIT_LOCKS for w in words)


def _compound_code(word: str) -> bool:
    """"Haustürcode", "Fahrradschloss-Kombi", "kapı şifresi": a compound whose last part names a code."""
    return (word.endswith(("code", "kombi", "şifresi", "kode", "koden", "kod", "koodi", "kód"))
            and word not in _GENERIC_CODE_WORDS and not word.startswith(_NOT_SECRET_PREFIXES))


def _code_word(word: str) -> bool:
    return word in _SPECIFIC_CODE_WORDS or word in _GENERIC_CODE_WORDS or _compound_code(word)


def _lock_word(word: str) -> bool:
    return word in _LOCKS or word.endswith(("schloss", "kluis", "tür", "box")) or word.startswith(_LOCK_STEMS)


_LOCK_STEMS = ("alarm", "kapı", "trezor", "garage", "garasj")  # inflected: "alarmının", "trezoru", "garasjen"
