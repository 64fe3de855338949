"""Secrets a few words after their keyword: "login for grafana is admin admin", "psswrd for the laptop is now
Orca-Lime-7", "apikey for the geocoder (free tier) 3e9a7c5b...", "the alarm code is 6-2-4-9", "mysql -u x -pX".

The fallback of ``prose.py`` for a keyword whose fixed phrasing found nothing. Instead of enumerating the
phrasings between keyword and value, it reads a short window after the keyword (the rest of its sentence or
line, at most ``_MAX_WORDS`` words), skips the qualifiers ("for the router", "is now", "(free tier)", "btw")
and takes the first word that looks like a value of the keyword's kind:

  password   quoted or parenthesised; letters and digits mixed (6+ characters), or a symbol inside; a known
             default password; a plain word only right after a connector ("is", ":", "=") at a clause end
  pin        4-8 digits, possibly in dash- or space-separated groups ("6-2-4-9", "12-34-07"), not a count
  secret     10+ characters that look random (``_random_like``) or mix letters, digits and ``_``/``-``
  login      ``user/pass``, ``user:pass`` or ``user pass`` (the password part; both when they are equal)

plus the command-line forms ``-p<pw>``, ``-u user:pw`` and ``--password x``; codes written as a keypad takes
them ("7 3 9 1", "55 08 27", "four-two-six-nine"); labels inside a login ("u: x p: Y", "as guest with Y"); and,
in ``before_spans``, a value stated before its keyword ("Xq9#trLm is the password", "2719 is the PIN").
Words with brackets, dots or slashes (code, paths, URLs) and anything ``_code_like`` (placeholders, versions,
identifiers) are never values.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator

from flaxgpt.ingest.privacy.text import _high_entropy, _Span, _View

# Lower-case stems beyond ``prose._STEMS`` that start a keyword only this module reads.
WINDOW_STEMS = (b"pssw", b"pasw", b"combo", b"combina", b"kombina", b"lock", b"bearer", b"webhook", b"safe",
                b"keypad", b"puk", b"phrase", b"kod", b"digicode", b"alarm", b"chave",
                b"cookie", b"auth", b"mdp", b" -u", b"admin", b"root", b"guest", b"codi", b"parola", b"schloss",
                # other languages' words: password, code, key, user ('\xff' stands for letters outside Latin-1)
                b"p4ss", b"passw0", b"passord", b"adgangskode", b"salasana", b"heslo", b"jelsz", b"parol", b"parool",
                b"sandi", b"laluan", b"lozink", b"geslo", b"contrasenya", b"l\xf6sen", b"losen", b"koodi", b"k\xf3d",
                b"nyckel", b"n\xf8kkel", b"nokkel", b"n\xf8gle", b"avain", b"avaimen", b"kl\xed\xff", b"kulcs",
                b"cheia", b"cheie", b"chiave", b"anahtar", b"kunci", b"brugernavn", b"brukernavn", b"anv\xe4ndar",
                b"u\xffivatel", b"uzivatel", b"felhaszn", b"utilizator", b"kullan", b"pengguna", b"k\xe4ytt\xe4j",
                b"benutzer", b"gebruiker", b"utilisateur", b"usuario", b"usu\xe1rio", b"utente", b"u\xffytkownik")

_PW = "pw"
_PIN = "pin"
_SECRET = "secret"
_LOGIN = "login"
# The keyword at a word start, and its kind. Misspellings of password ("psswrd", "passwrod", "passwrd") and the
# other languages' words; "code"/"combo"/"lock" only next to what it opens.
_KEYWORD = re.compile(
    r"(?:(?P<pw>password(?:ed|[- ]protected)|p(?:a|\*)?s?s(?:w(?:o?r?d|ord|rod|ort|d)|wd|word|code|phrase)|pass|pwd?"
    r"|passwd|kennwort|wachtwoord"
    r"|mot[ ]de[ ]passe|mdp|contrase[ñn]a|clave|senha|unlock[ ]phrase|pass[ ]?phrase"
    r"|(?:(?<=unlock[ ])|(?<=recovery[ ])|(?<=seed[ ]))phrase"
    r"|parola[ ]d['’]ordine|has[łl]o|şifre(?:si|m|niz)?|p[a4@]ss?w[o0]rd|passord(?:et)?|adgangskode(?:n)?"
    r"|kodeord(?:et)?|l[öo]sen(?:ord(?:et)?)?|salasana(?:n|a)?|hes(?:lo|la|lem)|jelsz[óo](?:t|ja|va|m)?|parolă"
    r"|parola(?=[ \t]+(?:de|pentru|la|wifi|wi-fi)\b|[ \t]*:)|parool|(?:kata[ ])?sandi|kata[ ]laluan|lozink[ae]|geslo"
    r"|contrasenya|wi-?fi|wlan)"
    r"|(?P<pin>pin(?:[ -]?code)?|puk|keypad|safe|(?:(?:bike|locker|parental|door|gate|pad)[ -]?)?lock(?:box)?"
    r"|(?:(?:door|alarm|lock|lockbox|key|safe|gate|keypad|garage|locker|bike|entry|building|garagentor|t[üu]r)"
    r"[ -]?)?(?:code|combo|combination)|(?:zugangs|garagen|tresor|alarm|haus|tor|schlie[ßs]fach|keller)code"
    r"|(?:kluis|deur|fiets|poort|hek|toegangs)code|combinaci[óo]n|combinaison|combinazione|combinatie|kombination"
    r"|digicode|(?:pin|port|dörr|tür)[ -]?kod(?:en)?|kod|koden|koodi|alarm(?=[ \t]*:)"
    r"|c[óo]digo|codice|(?:zahlen|fahrrad|vorhänge)?schloss"
    r"|(?!kilde|käll|lähde|program|feil|fel|virhe|hiba|status|streg|streck|viiva|post|rabat|alennus|land|fejl)"
    r"[^\W\d_]{2,14}(?:koden|kode|koodi|kód|kodu))"
    r"|(?P<secret>api[ _-]?keys?|apikeys?|keys?|tokens?|secrets?|cookie|bearer|webhook(?:[ ]url)?|jeton|sleutel|chave"
    r"|schl[üu]ssel|cl[ée]|licen[cs]e(?:[ ]keys?)?|lizenz(?:schl[üu]ssel)?|klucz(?:a|em)?|nyckel(?:n)?"
    r"|n[øo]kkel(?:en)?|n[øo]gle(?:n)?|(?:api-?)?avain|avaimen|kl[ií]č|kulcs(?:a|ot)?|cheia|cheie|chiave"
    r"|anahtar[ıi]?|kunci)"
    r"|(?P<login>log(?:in|on|ged[ ]in|[ ]in(?:to)?)|sign(?:ed)?[ ]in|auth|creds?|credentials|zugangsdaten"
    r"|inlog(?:gen)?|admin|-u|brugernavn|brukernavn|anv[äa]ndar(?:e|namn)|u[žz]ivatel|felhaszn[áa]l[óo](?:n[ée]v)?"
    r"|utilizator|kullan[ıi]c[ıi](?:[ ]ad[ıi])?|pengguna|k[äa]ytt[äa]j[äa](?:tunnus)?|benutzer(?:name)?"
    r"|gebruiker(?:snaam)?|utilisateur|usuario|usu[áa]rio|utente|u[żz]ytkownik))"
    r"(?![\w-])", re.I)
# Where the window ends: a sentence end, a line break, a semicolon.
# "!!" or "?" before a lower-case word goes on: chat rarely ends a sentence that way.
_WINDOW = re.compile(r"(?:[^\n.;!?]|[.!?]+(?=\S|[ \t]+(?:[a-z0-9]|->|→|=>)))*")  # and "wifi? -> X"
_MAX_WORDS = 14
# Nouns after which the keyword is a modifier, not the secret ("password managers", "token limit").
# Words before a keyword that make the sentence about such secrets in general ("the most common password").
_ABOUT_ALL = frozenset("most common worst weakest weak bad popular famous classic typical example sample".split())  # noqa: SIM905
_KEYWORD_AS_MODIFIER = frozenset("""managers manager policy policies requirements rules field fields strength length
hashes hash hashing limit limits budget count counts usage rotation expiry flow flows page form screen prompt
dialog complexity validation history""".split())  # noqa: SIM905
_WORD = re.compile(r"\S+")
_QUOTES = {'"': '"', "'": "'", "“": "”", "‘": "’", "«": "»", "„": "“"}  # no backticks: those quote code
_CONNECTORS = frozenset("""is was are 's ’s it's its it’s : = -> => → est ist lautet c'est c’est wordt è é
är""".split())  # noqa: SIM905
# Copulas of languages where the word is also another language's common word ("on", "je", "e"): they connect a
# value only after a keyword of their language (keyword prefixes).
_COPULAS = tuple((tuple(stems.split()), frozenset(words.split())) for words, stems in (
    ("on", "salasana koodi avain avaim käyttäjä kayttaja"),
    ("es era", "contraseña contrasena clave código codigo usuario"),
    ("je", "heslo hesla kód kod klíč klic uživatel uzivatel lozink geslo"),
    ("jest to", "hasło haslo klucz użytkownik uzytkownik"), ("e este", "parol codul cheia cheie utilizator"),
    ("adalah", "kata sandi kunci pengguna"),
    ("er", "passord adgangskode kode nøkkel nokkel nøgle nogle brugernavn brukernavn"),
    ("är", "lösen losen nyckel användar anvandar")))


def _copulas(keyword: str) -> frozenset[str] | None:
    """The copulas that connect a value after ``keyword`` beyond ``_CONNECTORS`` (None: an English keyword)."""
    return next((words for stems, words in _COPULAS if keyword.startswith(stems)), None)


_FILE_OR_HOST = re.compile(r"\.(?:[a-z]{2,4}|[a-z]{2,4}\d?)$")  # "notes.txt", "host.io", "model.h5"
_PASSWORD_LABELS = frozenset("""p: pw: pwd: pass: password: pw= p= pass= pwd= password= passwort: kennwort: wachtwoord:
mdp: senha: contraseña: clave: lösen: lösenord: passord: kode: kodeord: adgangskode: salasana: heslo: hasło: haslo:
jelszó: parola: parolă: şifre: sifre: sandi: lozinka: geslo:""".split())  # noqa: SIM905
_OPENING_VERBS = frozenset("opens open unlocks unlock opened unlocked".split())  # noqa: SIM905
# Words between a connector and its value that keep the connector's force: "is now X", "was just X".
_ADVERBS = frozenset("now just literally simply still again all both nu jetzt le la il el lo".split())  # noqa: SIM905
# After these a credential-looking word is what the secret is kept in or made with: "hashed with argon2id".
_PREPOSITIONS = frozenset("in with by via using under inside from into on at".split())  # noqa: SIM905
_STRIP = ".,;:!?)("
_CLEAN = re.compile(r"[\w!@#$%^&*+=~-]+")  # no brackets, dots, slashes, quotes: those are code, paths or prose
_SECRET_CLEAN = re.compile(r"[\w!@#$%^&*+=~.-]+")  # dotted tokens (JWT-like bot tokens)
_SYMBOL_INSIDE = re.compile(r"\w[!#$%^&*+=~]+\w|\w[!#$%^&*+=~]+$")  # not "@": user@host
_PIN_VALUE = re.compile(r"[*#]?\d{4,8}[#*]?|[A-Z]\d{3,7}|\d{1,4}(?:-\d{1,4}){1,3}|\d[\dA-Z]{3,7}")
_HEX_ID = re.compile(r"[0-9a-f]{7,40}|[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}", re.I)
_PAIR = re.compile(r"([^\s/:|,]{1,64})(?:[ \t]*[/|][ \t]*|:)([^\s/|,]{1,64})")
# Prepositions after which a number is a time or a quantity, not a value ("changed in 2019", "after 3 tries").
_NOT_BEFORE_PIN = frozenset(
    "in since until by from before after at on of every per with than about around like e.g.".split())  # noqa: SIM905
# A default user and its password without a keyword: "root:toor", "guest/guest", "admin / 12345admin".
_DEFAULT_USER = re.compile(
    r"(?:admin|root|guest|administrator|pi)(?:[ \t]*[/|][ \t]*|:)(?P<p>[^\s/|,:]{2,64})(?![^\s,])", re.I)
_ADVICE = re.compile(r"(?i)\b(?:never|don['’]?t|do not|avoid|stop)\b[^.!?\n]{0,30}\b(?:use|leave|keep|ship|set)\b"
                     r"|\bdefault[- ](?:credentials?|passwords?|logins?)\b|\bfactory[- ]defaults?\b")
_BOT_TOKEN = re.compile(r"\d{6,12}:[A-Za-z0-9_-]{20,64}")  # chat bot tokens: the bot's id, then its secret
_GROUPED_KEY = re.compile(r"[A-Z0-9]{2,6}(?:-[A-Z0-9]{3,6}){3,7}")  # licence and product keys
# A default user with its password in words: "ssh as root with toor" (after "as ", checked by the caller).
_AS_USER = re.compile(r"(?:admin|root|guest|administrator)[ \t]+with[ \t]+(?:password[ \t]+)?(?P<p>[^\s,;]{3,64})",
                      re.I)
# A digit (isdigit: also '²', and '?' stands in for other scripts' digits and quotes) or a symbol of
# _SYMBOL_INSIDE, on the Latin-1 view.
_SECRET_MARK = re.compile(rb"[0-9\xb2\xb3\xb9!#$%^&*+=~?]")
_QUOTE_MARK = re.compile(rb"[\"'\xab]")
_QUOTED_WORDS = re.compile(r"[\"'“‘][^\W\d_]{3,}(?:-[^\W\d_]{3,}){3,7}[\"'”’]")


def _reach(b: bytes, start: int, window_end: int) -> int:
    """Where a value read in the window [start, window_end) can end: a quoted one runs up to 80 characters on."""
    return window_end + 80 if _QUOTE_MARK.search(b, start, window_end) else window_end
_DIGIT_MARK = re.compile(rb"[0-9\xb2\xb3\xb9?]")
_URL = re.compile(r"https?://[^\s/]+(/\S*)")
_CLI_PAIR = re.compile(r"[ \t]+([^\s:]{1,64}):(\S{3,64})")
_CLI_PASSWORD = re.compile(r"(?<!\S)(?:-p(?=[^\s-])|--password[ =]|-p[ \t]+(?=\S*\d))(?P<v>\S+)")


def window_spans(v: _View, p: int, default_passwords: frozenset[str], ok_value: Callable[[str], bool],
                 plain_ok: Callable[[str, str, int], bool]) -> list[_Span]:
    """Spans of values in the window after the keyword starting at ``p``. ``ok_value(value)`` rejects code and
    placeholders, ``plain_ok(text, word, end)`` says if a plain word after a connector is a password (both from
    ``prose.py``); ``default_passwords`` are plain words taken anywhere in a login."""
    text = v.text
    d = _DEFAULT_USER.match(text, p)
    if d is not None and (_password_word(d.group("p"), default_passwords) or d.group("p") == text[p:d.start("p")]
                          .rstrip(":/| \t")) and ok_value(d.group("p")):
        if d.group("p").lower() in default_passwords and _ADVICE.search(_sentence_around(text, p)):
            return []  # "never leave a router on admin/admin": advice about defaults, nobody's login
        return [_Span(d.start("p"), d.end("p"), "PASSWORD")]
    a = _AS_USER.match(text, p)
    if a is not None and text[max(0, p - 3):p].lower() == "as ":  # "ssh as root with toor"
        pw = a.group("p").rstrip(_STRIP)
        return [_Span(a.start("p"), a.start("p") + len(pw), "PASSWORD")] if _password_word(
            pw, default_passwords) and ok_value(pw) else []
    m = _KEYWORD.match(text, p)
    if m is None or text[p - 1:p] == "<":
        return []  # "<PASSWORD>" is a placeholder, not a keyword
    kind = m.lastgroup or _PW
    end = m.end()
    if kind == _LOGIN and m.group(0) == "-u":
        return _cli_login(text, end, ok_value)
    w = _WINDOW.match(text, end)
    window_end = w.end() if w else end
    if m.group(0).lower().startswith("webhook"):
        return _webhook_spans(text, end, window_end)
    if kind == _SECRET and _SECRET_MARK.search(v.b, end, _reach(v.b, end, window_end)) is None and (
            _QUOTE_MARK.search(v.b, end, window_end) is None or _QUOTED_WORDS.search(text, end, window_end) is None):
        return []  # a key or token has a digit or a symbol (``_candidate``), or is quoted words joined by hyphens
        # ('moss-ferret-anvil-trumpet'): most "tokens" in ML prose end here
    words = list(_WORD.finditer(text, end, window_end))[:_MAX_WORDS]
    if words and words[0].group(0).lower().rstrip(_STRIP) in _KEYWORD_AS_MODIFIER:
        return []  # "password managers like X are great", "password field is required": about passwords
    if _ABOUT_ALL.intersection(text[max(0, p - 40):p].lower().split()[-4:]):
        return []  # "the most common password in leaked dumps is 123456": passwords in general
    if m.group(0).lower() in ("code", "código", "codigo", "codice", "kod", "koden", "koodi") and not _opener_near(
            text, p, window_end):
        # "error code 1045", "status code 404": only a code that opens something, or one written as a keypad
        # code is ("4 0 7 2", "seven-one-one-four"), which no error or status code is
        spans = (_spelled_pin(text, words, i) for i in range(len(words)))
        return next((s for s in spans if s), [])
    prev, after_conn = m.group(0).lower(), False
    copulas = _copulas(prev)
    connectors = _CONNECTORS | copulas if copulas else _CONNECTORS
    wifi = prev.startswith(("wifi", "wi-fi", "wlan"))
    if copulas or wifi:  # no predicate lists for these languages ("er
        plain_ok = _never  # utløpt"); after "wifi" a plain word is the network's name or its state ("is HomeNet")
    found: list[_Span] = []
    described = False  # "the password is the same as the dev one: X": only a value after ":" or "=" counts
    hint = bool(words) and words[0].group(0).lower().rstrip(_STRIP) in ("hint", "hints", "tip")
    for i, t in enumerate(words):
        raw = t.group(0)
        if hint and raw[:1] in _QUOTES:  # "the password hint is 'favourite teacher'": the hint, quoted
            prev = raw.lower()
            continue
        if prev == "with" and (i > 1 and words[i - 2].group(0).lower() in _OPENING_VERBS
                               or i == 1 and m.group(0).lower().endswith(("passworded", "protected"))):
            prev = "is"  # "the safe opens with 18-24-06", "the Kindle is passworded with mothwing88"
        after_conn = prev in connectors or prev.endswith(":") or after_conn and prev in _ADVERBS
        stated = prev.endswith(":") or prev in ("=", "is", "are") or found and prev in ("not", "nicht", "pas", "no")
        bracketed = described and not found and raw.startswith("(")  # "is my dog's name + 2015 (Biscuit2015)"
        if (described or found and kind != _SECRET) and not stated and not bracketed:
            prev = raw.lower()
            continue  # after a value, only another stated one: "was X, the new one is Y"
        if kind == _PW and m.group(0).lower() == "pass" and not after_conn and (i > 0 or not (
                _bare_pass_value(raw) or raw[:1] in _QUOTES)):  # "pass 'tonerlow'", "pass Demo!2345"
            prev = raw.lower()
            continue  # "pass the salt", "pass `--full-trace`": a bare "pass" takes a value only as "pass X1!"
        as_user = prev == "with" and i >= 3 and words[i - 3].group(0).lower() == "as"  # "as guest with X"
        if kind == _LOGIN and (prev in _PASSWORD_LABELS or as_user) and _password_word(
                raw.rstrip(_STRIP), default_passwords) and ok_value(raw.rstrip(_STRIP)):
            return [_Span(t.start(), t.start() + len(raw.rstrip(_STRIP)), "PASSWORD")]  # "u: x p: Y", "as x with Y"
        spelled = kind == _PIN and prev not in _NOT_BEFORE_PIN or kind == _PW and after_conn  # "is two two four six"
        span = _spelled_pin(text, words, i) if spelled else None
        span = span or _candidate(text, t.start(), raw, kind, after_conn, prev, words[i + 1:], default_passwords,
                                  ok_value, plain_ok)
        core = raw.rstrip(_STRIP)
        if span is None and kind == _PW and after_conn and (_CAMEL if wifi else _CAMEL2).fullmatch(core) and ok_value(
                core):  # "the wifi at Nan's is ThongsOnTheBeach", "Password on the spreadsheet = JuneNineteen"
            span = [_Span(t.start(), t.start() + len(core), "PASSWORD")]
        if span is not None and wifi and _PAIR_NEXT.match(text, span[-1].end):
            span = None  # "wifi: HomeNet-5G / X": the network's name; its password comes after the slash
        if span is not None:
            found += span  # and on: "tokens: read-only X, read-write Y"
        elif kind == _PW and raw.lower() in ("is", "was") and i + 1 < len(words) and words[i + 1].group(
                0).lower() in ("the", "my", "a", "your", "our", "his", "her"):
            described = True  # "the password is the same one we set up": a description, not a value
        prev = raw.lower()
    if not found and kind == _PW and (nl := _TO_NEXT_LINE.match(text, window_end)) is not None:
        found = _next_line_value(text, nl.end(), ok_value)  # "Passwort fürs Gäste-WLAN\nSommerwiese_55"
    return found


def _next_line_value(text: str, start: int, ok_value: Callable[[str], bool]) -> list[_Span]:
    """A password alone on the line after its keyword's line (an answer: "her: X", "its X", "X (two capitals)"):
    one credential-like word."""
    end = text.find("\n", start)
    line = text[start:len(text) if end < 0 else end]
    m = _ANSWER.fullmatch(line)
    value = m.group("v").rstrip(",.") if m else ""
    if not value or len(value) > 64 or not (_credential_like(value) or _CAMEL.fullmatch(value)) or not ok_value(value):
        return []
    s = start + m.start("v")
    return [_Span(s, s + len(value), "PASSWORD")]


# A value stated before its keyword: "Xq9#trLm is the password", "2719 is the PIN for the phone", "I'm using
# Blueberry!Muffin9 as the master password", "zk8Tq2... is the key for the geocoding api". Up to two
# modifier words between the article and the keyword ("the admin password"); ends right before the keyword.
_BEFORE = re.compile(
    r"(?:^|(?<=\s))(?P<v>[\"'“‘`]?[^\s\"'“”‘’`]{4,64}[\"'”’`]?)[ \t]+"
    r"(?:is|was|=|as|ist|est|es|è|é|er|wordt|lautet|on|into)"
    r"[ \t]+(?:(?:the|my|our|your|his|her|their|a|an|le|la|el|il|de|het|der|die|das|mon|ma|mein|meine|mijn|mi|o)"
    r"[ \t]+)?"
    r"(?P<mods>(?:[^\W\d_]{2,15}[ \t]+){0,2})\Z", re.I)
# Modifiers that make the sentence about passwords in general: "123456 is the most common password".
_GENERIC = frozenset({"most", "common", "worst", "weakest", "best", "popular", "famous", "classic", "typical",
                      "example", "sample", "default", "standard", "same", "usual", "obvious", "first"})


def before_spans(v: _View, p: int, ok_value: Callable[[str], bool]) -> list[_Span]:
    """The value stated right before the keyword at ``p`` ("X is the password"), if it looks like one of
    the keyword's kind: a quoted or credential-like password, a 4-8 digit PIN, a random-looking key."""
    text = v.text
    m = _KEYWORD.match(text, p)
    if m is None or m.lastgroup == _LOGIN:
        return []
    if m.lastgroup == _SECRET and _DIGIT_MARK.search(v.b, max(0, p - 140), p) is None:
        return []  # a key has digits (``_secret_like``)
    b = _BEFORE.search(text, max(0, p - 140), p)
    if b is None or _GENERIC.intersection(b.group("mods").lower().split()):
        return []
    s, e = b.span("v")
    if text[s] in "\"'“‘`" and text[e - 1] in "\"'”’`":
        s, e = s + 1, e - 1
    value = text[s:e].rstrip(",;:")
    e = s + len(value)
    kind = m.lastgroup
    if not value or not ok_value(value) and not (kind == _PIN and _PIN_VALUE.fullmatch(value)):
        return []
    if kind == _PIN:
        ok = value.isdigit() and 4 <= len(value) <= 8 or _PIN_VALUE.fullmatch(value) is not None and "-" in value
    elif kind == _SECRET:
        ok = len(value) >= 10 and _SECRET_CLEAN.fullmatch(value) is not None and _secret_like(value) and not (
            _HEX_ID.fullmatch(value) and len(value) == 40)
    else:
        ok = _credential_like(value) and _SECRET_CLEAN.fullmatch(value) is not None or (
            s > 0 and text[s - 1] in "\"'“‘" and len(value) >= 4)
    return [_Span(s, e, "SECRET" if kind == _SECRET else "PASSWORD")] if ok else []


# A user and a password as a pair after a label, with no keyword: "jira: tomasor / Vx9!kLm2Pq", "vpn: tokr +
# N0rthern#Lights", "use mqadmin / R4bb!t_Hole"; or labelled: "u: tokr p: Gr4nite!Peak".
_PAIR_SEPARATORS = (b" / ", b" + ", b" | ")
_PAIR_USER = re.compile(r"[A-Za-z][\w.@-]{1,63}")
_PAIR_LEADS = frozenset("use using with login is are".split())  # noqa: SIM905
_PAIR_VALUE = re.compile(r"[^\s,;]{6,64}")
_LABEL_STEMS = (b"u:", b"user:", b"usr:", b"username:", b"login:")
_LABEL_PAIR = re.compile(r"(?:u|user|usr|username|login)[ \t]*:[ \t]*\S+[ \t,;]+(?:p|pw|pwd|pass|password)[ \t]*:"
                         r"[ \t]*(?P<p>[^\s,;]{4,64})", re.I)


def pair_spans(v: _View, ok_value: Callable[[str], bool]) -> list[_Span]:
    """Passwords stated as the second half of a ``user / password`` pair after a label or "use", or after a
    ``p:`` label that follows a ``u:`` one; only values that look like passwords (a symbol inside, or both cases
    and a digit), so "fp16 / bf16" and "1920 / 1080" stay."""
    text, out = v.text, []
    for sep in _PAIR_SEPARATORS:
        for i in v.find_all(sep):
            line_start = text.rfind("\n", 0, i) + 1
            before = text[line_start:i]
            k = before.rfind(" ")
            if not _PAIR_USER.fullmatch(before[k + 1:]):
                continue
            lead = before[:k + 1].rstrip().lower()
            if ":" not in lead[-80:] and lead.rsplit(" ", 1)[-1] not in _PAIR_LEADS:
                continue
            m = _PAIR_VALUE.match(text, i + len(sep))
            value = m.group(0).rstrip(".,;)") if m else ""
            mixed_symbol = _SYMBOL_INSIDE.search(value) is not None and value != value.lower()  # "Rooftop!Garden"
            if (_strong_password(value) or mixed_symbol) and ok_value(value):
                out.append(_Span(m.start(), m.start() + len(value), "PASSWORD"))
    for stem in _LABEL_STEMS:
        for i in v.find_all(stem):
            if i and text[i - 1].isalnum():
                continue  # "menu:", "you:"
            m = _LABEL_PAIR.match(text, i)
            pw = m.group("p").rstrip(".,;)") if m is not None else ""
            if pw and ok_value(pw) and (_password_word(pw, frozenset()) or len(pw) >= 6 and pw.isalpha()):
                # "u: mdoyle88 p: coffeeandcats": labelled, a word of six letters or more does
                out.append(_Span(m.start("p"), m.start("p") + len(m.group("p").rstrip(".,;)")), "PASSWORD"))
    if b"@//" in v.b:
        for m in _EZCONNECT.finditer(text):  # "system/Manager#19c@//orahost:1521/ORCLPDB1"
            if _password_word(m.group("p"), frozenset()) and ok_value(m.group("p")):
                out.append(_Span(m.start("p"), m.end("p"), "PASSWORD"))
    return out


# Oracle's connect strings: user/password@//host:port/service.
_EZCONNECT = re.compile(r"(?<![\w/])[A-Za-z]\w{0,30}/(?P<p>[^\s/@]{3,64})@//[\w.-]+")


# A password by its shape alone, with no keyword near: "I changed it to Blue!Otter55", "use Ch3rry!Pie when it
# asks", "Tidepool&Crab91 this time". Upper and lower case, a digit and a symbol in one token no code writes.
# The symbols as "!" and everything else as " " (no "=": "DB_PASS=S3cr3t!" is an assignment; its value is the token).
_SHAPE_SYMBOLS = bytes(33 if chr(c) in "!#$%&*+~^" else 32 for c in range(256))
_SHAPE_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789!#$%&*+~^_-")
_SHAPE_TOKEN = re.compile(r"[A-Za-z0-9][A-Za-z0-9!#$%&*+~^_-]{6,39}")
_EXAMPLE_BEFORE = re.compile(
    r"(?i)(?:\be\.g\.,?|\bfor (?:example|instance),?|\bz\.\s?b\.|\bbijv\.|\bp\. ?ex\.)[ \t]*[\"'“‘(]?\Z")
_CODE_OPERATORS = ("==", "!=", "+=", "-=", "*=", "&&", "||", "->", "=>", "**", "++", "--", "<=", ">=", "^=", "|=")


def _each(b: bytes, sub: bytes) -> Iterator[int]:
    """Start of each occurrence of ``sub`` in ``b``."""
    i = b.find(sub)
    while i >= 0:
        yield i
        i = b.find(sub, i + 1)


def shaped_password_spans(v: _View, ok_value: Callable[[str], bool]) -> list[_Span]:
    """Tokens shaped like a made-up password wherever they stand: 7-40 characters with upper and lower case
    letters, a digit, and one of ``!#$%&*+~^`` after a letter or digit; not code (operators, calls, paths,
    addresses, URLs)."""
    text, out, done = v.text, [], -1
    marks = v.b.translate(_SHAPE_SYMBOLS)  # found by substring search: 5x faster than a regex scan
    for i in _each(marks, b"!"):
        if i <= done or i == 0 or not text[i - 1].isalnum():
            continue  # "x = 1", "# heading", "!important"
        start = v.words.rfind(b" ", 0, i) + 1  # the letters and digits right before the symbol
        if text[i + 1:i + 2] not in _SHAPE_CHARS and not any(c.isdigit() for c in text[start:i]):
            continue  # "great!", "Hello!": a symbol that ends a word with no digit ends no password
        while start > 1 and i - start < 40 and text[start - 1] in _SHAPE_CHARS:
            start -= 1
        token = _SHAPE_TOKEN.match(text, start)
        if token is None:
            continue
        end = token.end()
        done = end
        value = token.group()
        if (end < len(text) and text[end] in _SHAPE_CHARS or start and text[start - 1] in "@/\\:.$%{<"
                or end < len(text) and text[end] in "@/(["):
            continue  # longer than a password, or part of an address, a path, a template or a call
        if _EXAMPLE_BEFORE.search(text, max(0, start - 16), start):
            continue  # "the hint says 'e.g. Tr0ub4dor&3'": an example, not somebody's password
        if (any(c.isupper() for c in value) and any(c.islower() for c in value) and any(c.isdigit() for c in value)
                and not any(op in value for op in _CODE_OPERATORS) and ok_value(value)):
            out.append(_Span(start, end, "PASSWORD"))
    return out


# Phrases that set or use a secret without naming it: "I changed it to tigerlily88", "it's now winterjollof24",
# "same as always: mangotree42", "the laptop unlocks with kofi&ama4ever".
_CUES = (b" it to ", b"it's now ", b" unlocks with ", b" opens with ", b"same as always", b"go-to is ", b"now it's ")
# "the new one is Winterfell2025": only a strong password (``_strong_password``) after these.
_STRONG_CUES = (b" one is ", b" one's ")  # not "try X": "try gpt2-medium-355M" is a model
_CUE_VALUE = re.compile(r"[ \t:]*[\"'“‘`]?(?P<v>[^\s\"'”’`]{6,64})")
_PAIR_NEXT = re.compile(r"[ \t]*[/|]")
# Instructions that use a secret without naming it: "type X then press enter", "use PANDA-rest-0412 to open",
# "you'll need Kestrel_on_the_wire to open it", "unprotect it with: lentil-soup-season".
_INSTRUCTION_STEMS = (b"type ", b"use ", b"need ", b"enter ", b"pon ", b"tippe ", b"typ ")
_INSTRUCTION = re.compile(
    r"(?i:type|use|need|enter|pon|tippe|typ)[ \t]+['\"“‘`]?(?P<v>[^\s'\"”’`]{4,64}?)['\"”’`]?[ \t]+"
    r"(?:(?P<enter>(?i:then|and|und|en|y)[ \t]+(?i:press|hit|druk|drück|pulsa)[ \t]+(?i:enter|return|intro))"
    r"|(?i:to|then)[ \t]+(?i:open|unlock|log[ ]?in|sign[ ]in|decrypt|get[ ]in|unprotect)\b"
    r"|(?i:y[ ]listo|and[ ]you'?re[ ]in))")
_CORRECTION_STEMS = (b" not ", b" et pas ", b" y no ", b" o era ", b" en niet ", b" e n\xe3o ", b" und nicht ",
                     b" or was ")
_CORRECTION = re.compile(r"(?<![\w!#$%&*+~^-])([\w!#$%&*+~^-]{6,64})[?,]?[ \t]+(?:not|et pas|y no|o era|en niet|e não"
                         r"|und nicht|or was)[ \t]+([\w!#$%&*+~^-]{6,64})")
_CUE_PHRASE = re.compile(r"[ \t]*(?P<q>[\"'“‘])(?P<v>[^\W\d_]{2,}(?:[ \t][^\W\d_]{2,}){2,7})[\"'”’]")


def cued_password_spans(v: _View, ok_value: Callable[[str], bool]) -> list[_Span]:
    """The value after a phrase that sets or uses a secret without naming it, when it looks like a credential
    (letters and digits mixed, or a symbol inside): "changed it to tigerlily88", but not "set it to 4096"."""
    out = []
    for stem in _INSTRUCTION_STEMS:  # "type sunflowerfield then press enter", "you'll need X to open it"
        for i in v.find_all(stem):
            if i and v.text[i - 1].isalnum():
                continue
            m = _INSTRUCTION.match(v.text, i)
            value = m.group("v") if m else ""
            if value and ok_value(value) and (_credential_like(value) or "_" in value or _CAMEL2.fullmatch(value)
                                              or m.group("enter") and value.isalpha() and value.islower()
                                              or value.isdigit() and 4 <= len(value) <= 8):
                out.append(_Span(m.start("v"), m.end("v"), "PASSWORD"))
    # "sorry, it's Lantern9 not Lantern6", "c'est Lavande44 et pas Lavande45", "mariposa123? o era mariposa321": a
    # credential corrected, both stated (alike, and each with letters, digits and a capital or symbol).
    for stem in _CORRECTION_STEMS:
        for i in v.find_all(stem):
            if _SECRET_MARK.search(v.b, max(0, i - 16), i) is None:
                continue  # a credential before "not" has a digit or a symbol: most "not"s end here
            m = _CORRECTION.search(v.text, max(0, i - 66), i + len(stem) + 66)
            if m is not None and m.start(2) >= i and all(_credential_like(m.group(g)) and ok_value(m.group(g))
                                                        for g in (1, 2)) and (
                    m.group(1)[:4].lower() == m.group(2)[:4].lower()) and (
                    _strong_password(m.group(1)) or _strong_password(m.group(2))
                    or _KEYWORD.search(v.text, v.text.rfind("\n", 0, i) + 1, i) is not None):
                out += [_Span(m.start(1), m.end(1), "PASSWORD"), _Span(m.start(2), m.end(2), "PASSWORD")]
    for cue in _CUES + _STRONG_CUES:
        for i in v.find_all(cue):
            phrase = _CUE_PHRASE.match(v.text, i + len(cue)) if cue in (b" unlocks with ", b" opens with ") else None
            if phrase is not None:  # "keepass db opens with 'drift wood lantern fig'"
                out.append(_Span(phrase.start("v"), phrase.end("v"), "PASSWORD"))
                continue
            m = _CUE_VALUE.match(v.text, i + len(cue))
            value = m.group("v").rstrip(".,;:!?)") if m else ""
            if value and _credential_like(value) and _CLEAN.fullmatch(value) and ok_value(value) and not (
                    _HEX_ID.fullmatch(value) or value[0].isdigit()) and (
                    cue not in _STRONG_CUES or _strong_password(value) and "=" not in value):
                out.append(_Span(m.start("v"), m.start("v") + len(value), "PASSWORD"))
    return out


_RANDOM_RUN = b"w" * 24


def random_token_spans(v: _View, ok_value: Callable[[str], bool]) -> list[_Span]:
    """Keys by their look alone: 24-128 characters of letters, digits, "_" and "-" with at least three capitals,
    three lower-case letters and three digits, and high entropy ("use 7Hq2Lm9RtVz4Kp8Nb1Xc6Jd3Fs0Gw5Ye2Ua when the
    CLI asks"); hex ids (no capitals) and words joined by "_" (low entropy) stay."""
    words, text, out = v.words, v.text, []
    i = words.find(_RANDOM_RUN)
    while i >= 0:
        start, end = v.word_bounds(i)
        value = text[start:end]
        if (len(value) <= 128 and sum(c.isupper() for c in value) >= 3 and sum(c.islower() for c in value) >= 3
                and sum(c.isdigit() for c in value) >= 3 and _high_entropy(value) and ok_value(value)
                and text[start - 1:start] not in ("/", "@", ".", "=", ":", "$", "+")  # paths, fingerprints, hashes
                and text[end:end + 1] not in ("/", "@", ".", "+", "=")):  # and base64, which other finders take whole
            out.append(_Span(start, end, "SECRET"))
        i = words.find(_RANDOM_RUN, end)
    return out


def _never(text: str, word: str, end: int) -> bool:
    return False


def _strong_password(value: str) -> bool:
    """Letters and digits with a symbol inside, or with both cases: "Accra#2019", "PalomitasX3", "Kq7zT2mW"."""
    if len(value) < 6 or not any(c.isdigit() for c in value) or not any(c.isalpha() for c in value):
        return False
    return _SYMBOL_INSIDE.search(value) is not None or any(c.isupper() for c in value) and any(
        c.islower() for c in value)


def _webhook_spans(text: str, end: int, window_end: int) -> list[_Span]:
    """A webhook's URL after its keyword: the path from its first key-like segment on is the secret."""
    url = _URL.search(text, end, window_end)
    if url is None:
        return []
    pos = url.start(1) + 1
    for segment in url.group(1)[1:].rstrip(".,;)").split("/"):
        if len(segment) >= 6 and _credential_like(segment) and not _HEX_ID.fullmatch(segment):
            return [_Span(pos, url.start(1) + len(url.group(1).rstrip(".,;)")), "SECRET")]
        pos += len(segment) + 1
    return []


def _bare_pass_value(raw: str) -> bool:
    """True if ``raw`` right after a bare "pass" is a credential ("pass Demo!2345"), not code ("multiplier=100")."""
    value = raw.rstrip(_STRIP)
    return _CLEAN.fullmatch(value) is not None and "=" not in value and any(c.isdigit() for c in value) and any(
        c.isupper() or not c.isalnum() for c in value)


def _opener_near(text: str, p: int, end: int) -> bool:
    """True if one of the six words before ``p`` in its sentence or a word up to ``end`` names something a code
    opens ("the office alarm is armed at 7pm; code 5521")."""
    before = text[max(0, p - 60):p].lower()
    cut = max(before.rfind(". "), before.rfind("\n"), before.rfind("! "), before.rfind("? "))
    words = before[cut + 1:].split()[-6:] + text[p:end].lower().split()
    return any(w.strip(".,:;'").split("'")[-1] in _OPENERS for w in words)


_OPENERS = frozenset("""door alarm lock lockbox keybox keysafe padlock safe gate keypad garage locker bike shed entry
building front back vault immeuble edificio prédio gebouw entrada entrée porte portail portão garagem garaje
cadeado cofre domofon domofonu intercom sleutelkastje voordeur keysafe alarme cadenas coffre puerta portón
alarma candado caja deur poort kluis slot
alarm tür tor schloss tresor alarmanlage porta portone cancello allarme lucchetto cassaforte""".split())  # noqa: SIM905


def _candidate(text: str, s: int, raw: str, kind: str, after_conn: bool, prev: str, rest: list[re.Match[str]],
               default_passwords: frozenset[str], ok_value: Callable[[str], bool],
               plain_ok: Callable[[str, str, int], bool]) -> list[_Span] | None:
    """The span(s) of the word ``raw`` at ``s`` if it is a value of ``kind``, else None."""
    close = _QUOTES.get(raw[:1])
    if close and raw[1:].lower() in ("s", "s,"):
        return None  # "the password's X": the connector, not a quote
    if close:
        line_end = text.find("\n", s)
        q = text.find(close, s + 1, min(s + 80, len(text) if line_end < 0 else line_end))
        value = text[s + 1:q] if q > s + 1 and not text[q + 1:q + 2].isalnum() else ""
        ok = kind != _PIN and len(value) >= 3 and ok_value(value) and (after_conn or kind == _PW) and (
            (_credential_like(value) or _WORDS_JOINED.fullmatch(value) is not None) and " " not in value
            if kind == _SECRET else after_conn or " " not in value)
        possessive = close == "'" and value.endswith("s") and text[s - 1:s].isalpha()
        if value and not value.startswith("<") and ok and not possessive:
            return [_Span(s + 1, q, "SECRET" if kind == _SECRET else "PASSWORD")]
        return None
    if raw.startswith("(") and raw.rstrip(".,;:").endswith(")") and len(raw) > 3:
        value = raw[1:raw.rstrip(".,;:").rfind(")")]
        ok = kind == _PW and _CLEAN.fullmatch(value) is not None and ok_value(value) and (
            _credential_like(value) or len(value) >= 5 and value.isalpha() and value.islower()
            and value not in ("free", "temp", "again", "staging", "prod"))
        return [_Span(s + 1, s + 1 + len(value), "PASSWORD")] if ok else None
    value = raw.rstrip(_STRIP).lstrip("(")
    emphasis = len(value) - len(value.lstrip("*_"))
    if emphasis and value.endswith(value[:emphasis]) and len(value) > 2 * emphasis:
        value = value[emphasis:-emphasis]  # "is **Quasar!Moth**", "is *fietsbel2*": Markdown emphasis
    s += raw.find(value) if value else 0
    if kind == _PIN and after_conn and value[:1] in ("*", "#") and value[1:].isdigit() and 4 <= len(value) - 1 <= 8:
        return [_Span(s + 1, s + len(value), "PASSWORD")]  # "the gate code is *4096", "entry code is #2214"
    if kind == _PIN and value and _PIN_VALUE.fullmatch(value) and "-" in value:
        pass  # "12-34-07" reads as a date to ``ok_value``; after a lock word it is a combination
    elif not value or not ok_value(value):
        return None
    if kind == _PIN and after_conn and "-" in value and _credential_like(value):
        return [_Span(s, s + len(value), "PASSWORD")]  # "combination: orbit-Kettle-42"
    if kind == _PIN:
        if prev in _NOT_BEFORE_PIN or prev.startswith("#") or raw.startswith("#"):
            return None
        return [_Span(s, s + len(value), "PASSWORD")] if _PIN_VALUE.fullmatch(value) and (
            value.isdigit() or "-" in value or after_conn) and not _unit_next(rest) else None
    if kind == _SECRET:
        if _BOT_TOKEN.fullmatch(value) or _GROUPED_KEY.fullmatch(value) and _credential_like(value):
            return [_Span(s, s + len(value), "SECRET")]  # "771203884:BZq-Lm2...", "MK-2291-ZQPV-7731-RXTL"
        if not _SECRET_CLEAN.fullmatch(value) or len(value) < 10:
            return None
        right_after = prev in ("key", "secret", "token", "api key", "apikey")  # "app key 6f1e9a3c...": no commit
        if _HEX_ID.fullmatch(value) and (not after_conn and len(value) < 16 or len(value) == 40 and not right_after
                                         or "-" in value):
            return None  # commit hashes, key fingerprints and request ids
        if value[:2].lower() == "0x":
            return None  # "the release signing key (public): 0x4AEE18F83AFDEB23"
        return [_Span(s, s + len(value), "SECRET")] if _secret_like(value) else None
    pair = _PAIR.fullmatch(value) if kind in (_LOGIN, _PW) else None
    if pair is not None:
        return _pair_spans(s, pair, default_passwords)
    if prev in _PREPOSITIONS and kind != _LOGIN and not after_conn:  # but Finnish "salasana on X": "on" is "is"
        return None
    if kind == _LOGIN and rest and _CLEAN.fullmatch(value):
        # "login for grafana is admin admin", "with kiosk / kiosk123", "webmaster / letmein"
        nxt = rest[0].group(0)
        if nxt in ("/", "|", ":") and len(rest) > 1:
            pw = rest[1].group(0).rstrip(_STRIP)
            if _password_word(pw, default_passwords) and pw.lower() not in ("pass", "password", "pw"):
                return [_Span(rest[1].start(), rest[1].start() + len(pw), "PASSWORD")]
        if after_conn and nxt.rstrip(_STRIP).lower() == value.lower() and value.lower() in default_passwords:
            return [_Span(s, s + len(value), "PASSWORD"),
                    _Span(rest[0].start(), rest[0].start() + len(value), "PASSWORD")]
        return None
    if kind == _PW and after_conn and "." in value and _SECRET_CLEAN.fullmatch(value) and _credential_like(value) \
            and not _FILE_OR_HOST.search(value):
        return [_Span(s, s + len(value), "PASSWORD")]  # "password for the cloud account: Olive.Tree.1987"
    if kind == _LOGIN or not _CLEAN.fullmatch(value):
        return None
    if kind == _PW and after_conn and value.isdigit() and 4 <= len(value) <= 12 and not _unit_next(rest):
        return [_Span(s, s + len(value), "PASSWORD")]  # "passcode for the meeting room door = 661902"
    if _credential_like(value) or value.lower() in default_passwords and prev in ("password", "pw", "pass", "pwd"):
        return [_Span(s, s + len(value), "PASSWORD")]
    word = value.replace("_", "")
    if kind == _PW and after_conn and prev != "=" and word.isalpha() and plain_ok(text, word, s + len(value)):
        return [_Span(s, s + len(value), "PASSWORD")]  # "the pass for the family acct is jellyfish_dance"
    return None


_TO_NEXT_LINE = re.compile(r"[?.!: \t]*\n(?:[ \t]*\n)?")  # "wifi pw?\n\nits X": the answer on the next line
_ANSWER = re.compile(r"[ \t>]*(?:[\w ]{1,12}:[ \t]*)?(?:it'?s[ \t]+|it is[ \t]+)?(?P<v>\S+)[ \t]*"
                     r"(?:\([^)\n]*\)|,[^\n]*)?[ \t]*")
_CAMEL = re.compile(r"(?:[A-Z][a-z]+){3,}\d*")  # "GullsAtDawn", "ThongsOnTheBeach": words run together
_CAMEL2 = re.compile(r"(?:[A-Z][a-z]+){2,}\d*")  # "JuneNineteen" (after a wifi keyword, two words are a network)
_WORDS_JOINED = re.compile(r"[^\W\d_]{3,}(?:-[^\W\d_]{3,}){3,7}")  # a diceware secret: "moss-ferret-anvil-trumpet"
_DIGIT_WORDS = frozenset("""zero oh one two three four five six seven eight nine null eins zwei drei vier fünf sechs
sieben acht neun nul een twee drie vier vijf zes zeven acht negen zéro un deux trois quatre cinq sept huit neuf
cero uno dos tres cuatro cinco seis siete ocho nueve um uma dois duas três quatro cinco sete oito nove due tre
quattro cinque sei sette otto""".split())  # noqa: SIM905
_SPELLED = re.compile(r"[^\W\d_]+(?:-[^\W\d_]+){3,7}")


def _spelled_pin(text: str, words: list[re.Match[str]], i: int) -> list[_Span] | None:
    """A code written in groups or words from ``words[i]`` on: "7 3 9 1", "55 08 27", "four-two-six-nine",
    "four two six nine" (4-8 digits in all), as one span; None if it does not start there."""
    raw = words[i].group(0)
    spelled = _SPELLED.fullmatch(raw.rstrip(_STRIP))
    if spelled and all(w in _DIGIT_WORDS for w in spelled.group(0).lower().split("-")):
        return [_Span(words[i].start(), words[i].start() + spelled.end(), "PASSWORD")]
    group = raw.rstrip(_STRIP)
    digit_group = group.isdigit() and len(group) <= 2
    if not digit_group and group.lower() not in _DIGIT_WORDS:
        return None
    j, count, end = i, 0, words[i].start()
    while j < len(words):
        g = words[j].group(0)
        core = g.rstrip(_STRIP)
        if digit_group and core.isdigit() and len(core) <= 2 or not digit_group and core.lower() in _DIGIT_WORDS:
            count += len(core) if digit_group else 1
            end = words[j].start() + len(core)
            j += 1
            if core != g:
                break  # "7 3 9 1, then the key symbol": a comma ends the code
        else:
            break
    if 4 <= count <= 8 and j - i >= (2 if digit_group else 4) and not _unit_next(words[j:]):
        return [_Span(words[i].start(), end, "PASSWORD")]
    return None


def _unit_next(rest: list[re.Match[str]]) -> bool:
    """True if the next word makes the number a count ("4 digits", "30 seconds")."""
    return bool(rest) and rest[0].group(0).lower().rstrip(_STRIP).rstrip("s") in (
        "digit", "character", "char", "second", "minute", "hour", "day", "try", "tries", "attempt", "time", "letter",
        "combination", "option", "possibilitie")


def _credential_like(value: str) -> bool:
    """Letters and digits mixed (6+ characters) or a symbol between word characters; not a version or hex id."""
    has_digit = any(c.isdigit() for c in value)
    has_alpha = any(c.isalpha() for c in value)
    if len(value) >= 6 and has_digit and has_alpha and not _HEX_ID.fullmatch(value):
        return True
    return len(value) >= 5 and has_alpha and _SYMBOL_INSIDE.search(value) is not None


def _secret_like(value: str) -> bool:
    """A key or token: letters and digits interleaved at least three times, with both cases or separators."""
    flips = sum(1 for a, b in zip(value, value[1:], strict=False) if a.isdigit() != b.isdigit() and a.isalnum()
                and b.isalnum())
    return flips >= 3 and any(c.isalpha() for c in value)


def _password_word(value: str, default_passwords: frozenset[str]) -> bool:
    """A password part of a login pair: a credential-like word, a default password, or 4+ digits."""
    return bool(value) and (_credential_like(value) or value.lower() in default_passwords
                            or value.isdigit() and len(value) >= 4)


def _sentence_around(text: str, p: int) -> str:
    """The sentence or line around ``p`` (up to 200 characters each way)."""
    lo, hi = max(0, p - 200), min(len(text), p + 200)
    start = max(text.rfind(c, lo, p) for c in ".!?\n") + 1
    ends = [i for i in (text.find(c, p, hi) for c in ".!?\n") if i >= 0]
    return text[max(start, lo):min(ends) if ends else hi]


def _pair_spans(s: int, pair: re.Match[str], default_passwords: frozenset[str]) -> list[_Span] | None:
    """``user/pass`` or ``user:pass`` at ``s``: the password part, or both parts when they are equal."""
    user, pw = pair.group(1), pair.group(2)
    if not user[:1].isalnum() or not _password_word(pw, default_passwords) and (pw != user or pw.isdigit()):
        return None  # "a 4/4" is a score
    if pw.lower() in ("pass", "password", "pw") or user.lower() in ("http", "https", "ssh"):
        return None
    spans = [_Span(s + pair.start(2), s + pair.end(2), "PASSWORD")]
    if pw == user:
        spans.append(_Span(s + pair.start(1), s + pair.end(1), "PASSWORD"))
    return spans


def _cli_login(text: str, end: int, ok_value: Callable[[str], bool]) -> list[_Span]:
    """``-u user:pw`` (curl) and ``-u user -pPW`` (mysql): the password after the user."""
    m = _CLI_PAIR.match(text, end)
    if m is not None and ok_value(m.group(2)):
        return [_Span(m.start(2), m.end(2), "PASSWORD")]
    m = _CLI_PASSWORD.search(text, end, min(len(text), end + 80))
    if m is not None and "\n" not in text[end:m.start()] and ok_value(m.group("v")):
        return [_Span(m.start("v"), m.end("v"), "PASSWORD")]
    return []
