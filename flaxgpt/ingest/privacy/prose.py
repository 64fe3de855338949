"""Secrets stated in words: "my password is hunter2", "PIN: 4821", "login root / X", "the api key is X".

Found from keyword stems in the lower-cased view (``bytes.find``: about 20 scans of the text, some
shared with the key-value finder); at the word of each hit, or the modifier word before it, an
anchored regex reads the keyword phrase ("wifi password", "api key", "Passwort", "mot de passe",
"door code"), an optional qualifier ("for the NAS", "(staging)", "I use everywhere"), the connector
("is", "ist", "est", "will be", "changed to", ":", "=", a dash, or nothing) and then the value, which
is kept only when it looks like one:

  passwords  quoted, or a token with a digit or a symbol, or 4+ digits; a plain word only after a
             connector, at the end of its clause and not a common predicate ("is wrong", "is stored
             in the vault", "is in 1Password"); never after no connector ("password managers")
  PINs       4-10 digits (door/alarm/gate codes too), not a count ("4 digits", "12 characters")
  api keys, tokens, secrets
             10+ characters that look random (letters and digits interleaved, or high entropy): an
             ML text's "token 50256", "the EOS token is <|endoftext|>" and "token: str" stay
  logins     ``login USER / PASS``, ``creds: USER:PASS``: PASS a credential or a default password

Code that names a secret without holding one (``password = get_password()``, ``token: str``,
``password=user_password``, ``PASSWORD=$DB_PASSWORD``), versions, dates, paths, URLs, placeholders
and password-manager names are never values. Only the value is replaced; keyword and sentence stay.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

from flaxgpt.ingest.privacy.lock_codes import lock_code_spans
from flaxgpt.ingest.privacy.prose_window import (
    WINDOW_STEMS,
    before_spans,
    cued_password_spans,
    pair_spans,
    random_token_spans,
    shaped_password_spans,
    window_spans,
)
from flaxgpt.ingest.privacy.secrets import _CODE_CALL, _placeholder_like, _public_key_digest
from flaxgpt.ingest.privacy.text import _high_entropy, _Span, _View

# Lower-case stems that every keyword phrase contains. Each absent one costs a scan (~1 ms/MB), so the list is
# short: "pass" also finds Passwort, passord and mot de passe; "pass", "token", "key" and "secret" are shared
# with the key-value finder (``_View.find_all``); the other languages' own words are looked for only in text
# without " the " (found within a line or two of English, so English text pays one short scan for them, and
# a Dutch password in an English document needs a keyword like "password"), and those with a non-ASCII
# letter only in text that has one.
_STEMS = (b"pass", b"pw", b"pin", b"code", b"key", b"token", b"secret", b"wifi", b"log", b"cred", b"licen")
_FOREIGN_STEMS = (b"kennw", b"wachtw", b"senha", b"clave", b"sleutel", b"zugang", b"identifiant", b"jeton", b"inlog",
                  b"haslo", b"lizenz", b"klucz")
# Letters outside Latin-1 are 'ÿ' (\xff) in the view: "hasło", "şifre".
_NON_ASCII_STEMS = (b"contrase", b"l\xf6senord", b"schl\xfc", b"cl\xe9", b"c\xf3dig", b"has\xffo", b"\xffifre")
_LOGIN_STEMS = frozenset({b"pass", b"log", b"cred", b"wifi", b"zugang", b"identifiant", b"inlog"})
_COMPOUND_STEMS = frozenset({b"pass", b"pw", b"key", b"code", b"kennw", b"wachtw", b"schloss",
                             b"lock", b"kod"})  # apikey, Routerpasswort, Portkoden
_MODIFIED_STEMS = frozenset({b"pass", b"key", b"code", b"token", b"secret", b"pin", b"sleutel", b"schl\xfc"})
_HEADLESS_STEMS = frozenset({b"pass", b"key", b"sleutel", b"schl\xfc"})  # no keyword alone: "access key", "passe"
# Words before a head word that make the phrase ("access key", "door code"); "user" in "user/pass".
_MODIFIERS = frozenset(b"""api access secret auth bot refresh session deploy client signing license licence product
activation bearer admin master encryption door gate alarm lock garage safe entry building keypad unlock security
pin user username personal wifi wi-fi wlan""".split())

_PASSWORD_WORD = (r"pass(?:word|wd|code|phrase|wort|ord(?:et)?)|pass[ -](?:word|code|phrase)|kennwort|wachtwoord"
                  r"|mot[ ]de[ ]passe|contrase[ñn]a|senha|l[öo]senord(?:et)?")
_PIN_WORD = (r"pin(?:[ -]?(?:code|nummer|number|no\.?))?|code"
             r"|(?:door|gate|alarm|lock|garage|safe|entry|building|keypad|unlock|access|security)[ -]?code")
_SECRET_WORD = (r"api[ _-]?(?:key|token|secret)|apikey|secret(?:[ _-]?(?:key|token))?|token|jeton"
                r"|(?:access|auth|bot|refresh|session|deploy|client|signing|license|licence|product|activation"
                r"|bearer|admin|master|encryption)[ _-]?(?:key|token|secret)"
                r"|api-?schl[üu]ssel|api-?sleutel|clave[ ](?:de[ ](?:la[ ])?)?api|cl[ée][ ](?:d'|de[ ]l')?api")
_QUALIFIER = (r"(?P<qual>[ \t]+\([^()\n]{1,40}\)"
              r"|[ \t]+(?:for|to|of|on|at|from|f[üu]r|vom|von|zum|zur|voor|van|op|pour|du|de|del|para|per|till|för|på)"
              r"(?:[ \t]+[^\s:=()]{1,40}){1,3}?"
              # a relative clause: "the password (that) I use everywhere is ..."
              r"|[ \t]+(?:that|which|(?:that[ \t]+)?(?:i|we|you|he|she|they))(?:[ \t]+[^\s:=()]{1,40}){1,3}?)?")


_SP = r"(?:[ \t]+|[ \t]*\n[ \t]*)"  # a space, or a line break of hard-wrapped mail


def _connector(q: str) -> str:
    """The connector alternatives, groups named with suffix ``q``; after a qualifier only the strong ones."""
    strong = (rf"(?P<hard{q}>[ \t]*(?::=|=>|->|=(?!=)|:(?![:/]))[ \t]*\n?[ \t]*)"
              rf"|(?P<to{q}>{_SP}(?:(?:is|was|has[ \t]+been|got){_SP})?(?:(?:changed|set|reset|updated|rotated"
              rf"|switched){_SP})?(?:to|naar){_SP})"
              rf"|(?P<is{q}>(?:{_SP}(?:is|was|ist|lautet|war|est|es|era|è|é|er|är|wordt|wird|será|sera|blijft"
              r"|bleibt|now|(?:will|would|should|must|shall)[ \t]+be)" + ("" if q else r"|['’]s") + ")"
              r"(?:[ \t]+(?:now|still|just|simply|actually|currently|nu|jetzt|maintenant|ahora|agora|nog|noch|again))?"
              rf"[ \t]*[:=-]?{_SP})")
    return strong if q else strong + r"|(?P<dash>[ \t]+[-–—]{1,2}[ \t]+|[-–—]{1,2}[ \t]+)|(?P<bare>[ \t]+)"


_PROSE = re.compile(
    r"(?<![\w/-])(?:(?P<pin>" + _PIN_WORD + r")|(?P<pw>(?:[^\W\d_]{2,15}-?)??(?:" + _PASSWORD_WORD + r")"
    r"|pwd|passwd|pass|p/?w)|(?P<wifi>wi-?fi|wlan)|(?P<secret>" + _SECRET_WORD + r"))"
    r"(?P<more>[ _-]?(?:pass(?:word|wort|code|phrase)?|pw|pwd|code|key|pin|wachtwoord|kennwort))?"
    r"(?![\w-])(?P<paren>\))?" + _QUALIFIER
    + r"(?(qual)(?:" + _connector("_q") + r")|(?:" + _connector("") + r"))", re.I)
_CHANGE_VERB = re.compile(r"(?i)\b(?:chang|set|reset|updat|rotat|switch|wijzig|veranderd)\w*\b[^.\n]{0,40}\Z")
# "login root / X", "creds: admin:admin", "user/pass: jane / X", "wifi: HomeNet / X"
_LOGIN = re.compile(
    r"(?<![\w/-])(?:log[ -]?(?:in|on)|credentials?|creds|zugangsdaten|zugang|inloggegevens|inlog|identifiants"
    r"|wi-?fi|wlan|user(?:name)?[ ]?/[ ]?pass(?:word)?)(?![\w-])"
    r"(?:[ \t]+for(?:[ \t]+[^\s:/|]{1,40}){1,3}?)?(?:[ \t]+(?:is|are|details|info|data|as|with))?"
    r"[ \t]*(?:->|=>|[:=-])?[ \t]*"
    r"(?P<user>[^\s/:|,\"'`()]{1,64})(?:[ \t]*[/|][ \t]*|:|[ \t]*,[ \t]*(?:(?:pw|pwd|pass(?:word)?)[ \t]*[:=]?[ \t]*)?"
    r"|[ \t]+(?:pw|pwd|pass(?:word)?)[ \t]*[:=]?[ \t]*)(?=\S)"
    # the command line "sshpass -p X"
    r"|(?<![\w-])sshpass[ \t]+-p[ \t]*(?=\S)", re.I)

_RUN = re.compile(r"\S{1,100}")
_QUOTES = {'"': '"', "'": "'", "`": "`", "“": "”", "‘": "’", "«": "»", "„": "“", "‚": "‘"}
_PLAIN = re.compile(r"[^\W\d_]+(?:['’-][^\W\d_]+)*")
_DIGITS = re.compile(r"\d{4,10}[#*]?")  # "the door code is 1984#"
_APP_PASSWORD = re.compile(r"[a-z]{4}(?: [a-z]{4}){3}\b")  # Google app passwords: "abcd efgh ijkl mnop"
_NOT_VALUE = re.compile(
    r"[A-Z][A-Z0-9]*(?:_[A-Z0-9]+)+"  # ENV_VAR_NAMES
    r"|(?i:v?\d+(?:\.\d+)+[\w+-]*"  # versions
    r"|\d{1,4}[-/.]\d{1,2}[-/.]\d{1,4}|\d{1,2}:\d{2}(?::\d{2})?(?:am|pm)?"  # dates, times
    r"|\d+[-+]?(?:char|character|digit|letter|word|symbol|byte|bit|token|day|hour|minute|month|year)s?"
    r"|(?:https?|ftp|ssh)://\S*|www\.\S*|[^@\s]+@[^@\s]+\.\w+"  # URLs, emails (those have their own finders)
    r"|(?:sha\d*|md5|blake2b?):\S*"  # digests in docs
    r"|[A-Za-z_]\w*(?:\.[A-Za-z_]\w*)+"  # config.token, os.environ, example.com
    r"|\w*(?:your|example|placeholder|dummy|redacted|xxx)\w*(?:[-_]\w+)*)")  # your-api-key-here
# An identifier naming a secret: the keyword next to "_" or at its end ("db_pass", "pin_hash", "apiKey"), not
# inside a word by chance ("lapinbleu93", "Aspen2024") or at its start ("pinecone42").
_KW = r"(?:pass(?:word|wd)?|pwd|secret|token|key|pin)"
_IDENT_WITH_KEYWORD = re.compile(rf"(?i)[a-z_][a-z0-9_]*(?:_{_KW}|{_KW}_)[a-z0-9_]*|[a-z_][a-z0-9_]*{_KW}")
_SNAKE = re.compile(r"[a-z][a-z0-9]*(?:_[a-z0-9]+)+")
_UNIT = re.compile(r"\s*(?:[-+]|or\s+more|\+)?\s*(?:char|character|digit|letter|word|symbol|byte|bit|token"
                   r"|day|hour|minute|week|month|year|time|attempt|tr(?:y|ie)|line|loc|zeichen|stellen|tekens|cijfers"
                   r"|caract[eè]re|chiffre|d[íi]gito|car[áa]cter)", re.I)
_CLAUSE_END = re.compile(r"[ \t]*(?:$|\n|[.,;!?)(\[—–\u2600-\U0001faff]|-\s|(?:and|but|or|so|lol|haha|btw|thanks|thx"
                         r"|cheers|und|aber|en|maar|et|mais|y|pero|ok|no[ ]spaces|all[ ]one[ ]word|all[ ]lower ?case"
                         r"|all[ ]caps|case[ ]sensitive)\b|:\)|;\))", re.I)
_MANAGERS = frozenset({"1password", "lastpass", "bitwarden", "keepass", "keepassxc", "dashlane", "keychain",
                       "vault", "nordpass", "passbolt", "enpass"})
# Words that follow "is"/":" in ordinary sentences about a password (adjectives, participles, function words).
_PREDICATES = frozenset("""
a an the this that these those it its my your our their his her mine yours ours theirs one two three
in on at of for to from with by via under inside into onto over about as like not no never none nothing
now still just also only even too very so quite really pretty super way much more less most least all
both either neither any some every each and or but because since if then than be being been is are was
here there where what which who how why when whatever something anything everything someone same
set sent kept written shared needed required optional mandatory wrong right correct incorrect invalid
valid expired weak strong long short simple easy hard difficult tricky complex complicated different
identical similar new old fine ok okay good bad great terrible awful horrible secure insecure safe unsafe
random unique secret private public personal hidden visible empty blank missing gone lost unknown known
obvious important temporary permanent case-sensitive sensitive ready done enabled disabled active
inactive locked blocked compromised leaked default generated rotated revoked encrypted hashed encoded
plain plaintext literally basically probably definitely actually apparently supposedly due enough
required mandatory forbidden allowed attached below above elsewhere somewhere everywhere back off up
down out away home ridiculous silly stupid dumb weird strange boring annoying lame huge tiny big small
see ask check use enter choose pick type try find get read look given taken forgotten broken chosen stolen
shown seen sufficient insufficient necessary unnecessary fixed wrongly correctly up-to-date outdated
key crucial essential useless pointless why needed tbd irrelevant unchanged unset null
falsch richtig geheim abgelaufen ungültig gültig neu alt lang kurz sicher unsicher leer nicht noch schon
im auf unter das der die ein eine mein dein unser hier dort weg zu sehr gleich anders bekannt unbekannt
fout verkeerd juist goed verlopen ongeldig geldig nieuw oud kort veilig onveilig leeg niet nog al op onder
het de een mijn jouw ons daar te heel zelfde anders bekend onbekend
faux correct expiré invalide valide nouveau ancien court sûr vide pas encore déjà dans sur sous le la les
un une mon ton notre ici là trop très même différent
incorrecta incorrecto correcta correcto secreta secreto caducada inválida válida nueva vieja larga corta
segura vacía todavía ya en sobre bajo el los las mi tu nuestro aquí allí muy igual diferente
""".split())  # noqa: SIM905
_PREDICATE_SUFFIXES = ("ed", "ing", "able", "ible", "ive", "ous", "ful", "less")
_DEFAULT_PASSWORDS = frozenset({"admin", "root", "toor", "guest", "changeme", "letmein", "default", "test", "demo",
                                "pass", "secret", "password", "qwerty", "welcome", "master", "ubnt", "raspberry"})
_FUNCTION_WORDS = frozenset("a an the in on at of for to from with by is are was my your our it and or not".split())  # noqa: SIM905
_WEAK = ("bare", "dash")  # connectors after which only a credential-looking value counts
# Keywords of languages _PREDICATES has no words of: after them only a credential-like or quoted value counts.
_NO_PREDICATE_LISTS = ("passord", "lösenord", "losenord", "adgangskode", "kodeord", "salasana", "hes", "hasło",
                       "haslo", "jelsz", "parol", "sandi", "lozink", "geslo", "şifre")
_PASSWORD_STEMS = ("pass", "pw", "wacht", "kennw", "mot de", "contrase", "senha", "senord")
_PHRASE = re.compile(r"[^\W\d_]+(?:[ \t]+(?:[^\W\d_]+|\d{1,6}(?=[\s,;.!?]|$))){1,7}")
_HYPHEN_WORDS = re.compile(r"[^\W\d_]{3,}(?:-[^\W\d_]{3,}){2,7}")
# "master pw: Harbor Lights Over Kestrel Bay 9": capitalised words ending in a number, the whole line
_TITLE_PHRASE = re.compile(r"(?:[A-Z][^\W\d_]+[ \t]+){2,7}\d{1,6}[ \t]*(?:$|\n)", re.M)
_LINE_REST = re.compile(r"[^\n]{1,80}")
_SLASH_NEXT = re.compile(r"[ \t]*[/|]")


def _prose_spans(v: _View) -> Iterator[_Span]:
    """Spans of secret values stated in words, labelled PASSWORD (passwords, PINs, logins) or SECRET."""
    lo = v.lo
    stems = _STEMS
    if b" the " not in lo:
        stems += _FOREIGN_STEMS if lo.isascii() else _FOREIGN_STEMS + _NON_ASCII_STEMS
    words, tried = v.words, set[int]()
    for stem in stems + WINDOW_STEMS:
        login = stem in _LOGIN_STEMS
        for i in v.find_all(stem):
            # A phrase starts at the stem's word ("password", "api_token", "WLAN-Passwort"); a stem inside
            # another word can only start a compound ("apikey", "Adminpasswort"); " -u" starts at its dash.
            start = i + 1 if stem[0] == 32 else words.rfind(b" ", 0, i) + 1
            i = max(i, start)
            if start in tried or (start != i and stem not in _COMPOUND_STEMS and words[i - 1] == 119
                                  and lo[i - 1] not in b"-_"):
                continue
            tried.add(start)
            spans, matched = _spans_at(v, start, login)
            yield from spans
            # ... or at a modifier before it, when the word alone states nothing: "door code", "user/pass",
            # "mot de passe" (asked only then: most hits in code and ML text are no keyword at all).
            p = -1
            if not spans and (matched or stem in _HEADLESS_STEMS) and stem in _MODIFIED_STEMS:
                p = _modifier_before(v, start)
                if p >= 0 and p not in tried:
                    tried.add(p)
                    spans = _spans_at(v, p, True)[0]
                    yield from spans
            # ... or, when no fixed phrasing fits, a few words further on ("login for grafana is admin admin").
            # Tried at the modifier ("mot de passe") and after a hyphen ("wp-admin", "API-sleutel") too.
            for q in (start, p, i if i > start and lo[i - 1] == 45 else -1):
                if not spans and q >= 0:
                    spans = window_spans(v, q, _DEFAULT_PASSWORDS, _window_value, _plain_value)
                    yield from spans
            # ... or the value stated before it ("Xq9#trLm is the password").
            if not spans:
                yield from before_spans(v, start, _window_value)
    yield from pair_spans(v, _window_value)  # "jira: tomasor / Vx9!kLm2Pq", with no keyword at all
    yield from shaped_password_spans(v, _window_value)  # "I changed it to Blue!Otter55"
    yield from cued_password_spans(v, _window_value)  # "it's now winterjollof24"
    yield from lock_code_spans(v)  # "front door:\n0 8 2 7 5", "kapı şifresi 2468*"
    yield from random_token_spans(v, _window_value)  # "use 7Hq2Lm9RtVz4Kp8Nb1Xc6Jd3Fs0Gw5Ye2Ua when the CLI asks"


def _modifier_before(v: _View, start: int) -> int:
    """Start of the word before the one at ``start`` if it is a modifier of a keyword, else -1."""
    lo = v.lo
    if start < 2 or lo[start - 1] not in b" \t/":
        return -1
    if start >= 7 and lo.startswith(b"mot de ", start - 7):
        return start - 7
    gap = lo[max(0, start - 3):start]
    j = start - (len(gap) - len(gap.rstrip(b" \t/")))  # back over up to 3 spaces or slashes
    if j == 0 or v.words[j - 1] == 32:
        return -1
    p = v.words.rfind(b" ", 0, j) + 1
    return p if lo[p:j] in _MODIFIERS else -1


def _spans_at(v: _View, p: int, login: bool) -> tuple[list[_Span], bool]:
    """The stated values of a keyword phrase (or, with ``login``, of a login) starting at ``p``, and whether
    a keyword phrase or login starts there at all."""
    spans = []
    m = _PROSE.match(v.text, p)
    if m is not None and (span := _stated_value(v, m)) is not None:
        spans.append(span)
    m2 = _LOGIN.match(v.text, p) if login else None
    if m2 is not None and (span := _login_value(v.text, m2)) is not None:
        spans.append(span)
    return spans, m is not None or m2 is not None


def _read_value(text: str, p: int) -> tuple[int, int, bool]:
    """(start, end, quoted) of the value written at ``p``: a quoted string, or a run of non-space characters."""
    close = _QUOTES.get(text[p:p + 1])
    if close:
        line_end = text.find("\n", p)
        q = text.find(close, p + 1, min(p + 102, len(text) if line_end < 0 else line_end))
        if q > p + 1:
            return p + 1, q, True
    m = _RUN.match(text, p)
    value = m.group(0).rstrip(".,;:?") if m else ""
    # Drop closing brackets and quotes the value did not open ("(pw hunter2)", 'is "x"').
    while value and value[-1] in ")]}>\"'”’»" and value.count(value[-1]) > value.count(
            {")": "(", "]": "[", "}": "{", ">": "<"}.get(value[-1], "\0")):
        value = value[:-1].rstrip(".,;:?")
    return p, p + len(value), False


def _code_like(value: str) -> bool:
    """Values that are code or stand-ins: calls, placeholders, versions, URLs, identifiers naming a secret."""
    return (_placeholder_like(value) or _CODE_CALL.match(value) is not None or value[0] in "\"'`"
            or "<" in value and ">" in value or "`" in value or _NOT_VALUE.fullmatch(value) is not None
            or _IDENT_WITH_KEYWORD.fullmatch(value) is not None or value.lower() in _MANAGERS
            or not any(c.isalnum() for c in value))


# An SSH public key's base64 blob starts with its length-prefixed type: ssh-rsa, ssh-ed25519, ecdsa-sha2-...
_SSH_PUBLIC_KEY = ("AAAAB3NzaC1yc2E", "AAAAC3NzaC1lZDI1NTE5", "AAAAE2VjZHNhLXNoYTIt", "AAAAB3NzaC1kc3M")


def _window_value(value: str) -> bool:
    """A word ``prose_window`` may take as a value: not code, a placeholder, a manager's name or a predicate;
    an identifier or dotted name only when it looks random ("s7aging_pg_Pass", "MTA0ODI3.Gx7pQz.k9LmN2vR4")."""
    if not value or value.lower() in _PREDICATES or value.lower() in _MANAGERS or _placeholder_like(value):
        return False
    if value.startswith(_SSH_PUBLIC_KEY):
        return False  # an SSH public key's blob, shared on purpose
    if not _code_like(value):
        return True
    mixed = any(c.isdigit() for c in value) and any(c.isupper() for c in value) and any(c.islower() for c in value)
    return mixed and _NOT_VALUE.fullmatch(value.split(".")[0]) is None and "(" not in value


def _plain_value(text: str, value: str, end: int) -> bool:
    """A plain word is a password only at the end of its clause and when it is not a usual predicate."""
    w = value.lower()
    return (len(w) >= 4 and w not in _PREDICATES and not w.endswith(_PREDICATE_SUFFIXES)
            and _IDENT_WITH_KEYWORD.fullmatch(w) is None and _CLAUSE_END.match(text, end) is not None)


def _random_like(value: str) -> bool:
    """Tokens and keys: 10+ characters with letters and digits interleaved, or high entropy; not snake_case."""
    if len(value) < 10 or _SNAKE.fullmatch(value):
        return False
    flips = sum(1 for a, b in zip(value, value[1:], strict=False) if a.isdigit() != b.isdigit() and a.isalnum()
                and b.isalnum())
    return (flips >= 3 and any(c.isalpha() for c in value)) or _high_entropy(value)


def _stated_value(v: _View, m: re.Match[str]) -> _Span | None:
    """The value after a keyword phrase and connector, if it is one, as a PASSWORD or SECRET span."""
    text = v.text
    s, e, quoted = _read_value(text, m.end())
    value = text[s:e]
    if m.group("secret") and not m.group("more") and len(value) < 10 or not value or _code_like(value):
        return None  # a token or key is 10+ characters: most "token" hits in ML text end here
    conn = m.lastgroup.removesuffix("_q") if m.lastgroup else "bare"  # hard, is, to, dash or bare
    if conn == "to" and not _CHANGE_VERB.search(text, max(0, m.start() - 60), m.start()) and "chang" not in m[0]:
        return None  # "I gave my password to Mark": only "changed/set ... to X" states a value
    more = (m.group("more") or "").lower()
    keyword = (m.group("pw") or "").lower() + more
    if (m.group("pin") or "").lower() == "code" and not m.group("qual"):
        return None  # "error code 1045": only "the code for the bike shed is 5512"
    if keyword == "pass" and (conn in _WEAK or m.group("qual") or not any(c.isdigit() for c in value)):
        return None  # "pass the salt", "1 pass is sufficient", "kwargs to pass to :meth:`f`": "my pass is X1"
    if m.group("paren") and not keyword:
        return None  # "(..., !mhlo.token) -> tensor<3x4>": only "the zip (password) is X"
    if conn == "hard" and "=" in m.group(m.lastgroup) and _PLAIN.fullmatch(value):
        return None  # "user, pw = auth, None": code assigns names, prose rarely states a password with "="
    if m.group("pin") or (not keyword and any(t in more for t in ("code", "pin"))):
        return _Span(s, e, "PASSWORD") if _DIGITS.fullmatch(value) and not _UNIT.match(text, e) else None
    if keyword and any(t in keyword for t in _PASSWORD_STEMS):
        if keyword.startswith(_NO_PREDICATE_LISTS) and _PLAIN.fullmatch(value) and not quoted:
            return None  # "Passordet ditt er utløpt": a plain word is a password only where _PREDICATES can tell
        return _password_value(text, s, e, quoted, conn, "phrase" in keyword)
    if m.group("wifi"):  # "wifi: X" alone: a WPA key has 8+ characters and is not a word; "wifi: SSID / X" is a login
        ok = len(value) >= 8 and not _PLAIN.fullmatch(value) and not _SLASH_NEXT.match(text, e)
        return _Span(s, e, "PASSWORD") if ok else None
    if _public_key_digest(v, m.start(), m.end(), value):
        return None  # "the release signing key (public): 0x4AEE18F83AFDEB23"
    return _Span(s, e, "SECRET") if _random_like(value) else None



def _password_value(text: str, s: int, e: int, quoted: bool, conn: str, phrase: bool) -> _Span | None:
    """The password at [s, e) after a connector ``conn``, unless it reads as an ordinary word or a count."""
    value = text[s:e]
    if quoted:
        return _Span(s, e, "PASSWORD")
    if (app := _APP_PASSWORD.match(text, s)) is not None:
        return _Span(s, app.end(), "PASSWORD")
    if _PLAIN.fullmatch(value):
        if conn == "bare":
            return None  # "password managers", "reset your password here"
        if _HYPHEN_WORDS.fullmatch(value):
            return _Span(s, e, "PASSWORD")  # "is glacial-umbrella-pepper-tide", but not "is up-to-date"
        if phrase or conn == "hard" and _TITLE_PHRASE.match(text, s):
            return _passphrase(text, s, conn)
        return _Span(s, e, "PASSWORD") if _plain_value(text, value, e) else None
    if value.isdigit():
        return _Span(s, e, "PASSWORD") if len(value) >= 4 and not _UNIT.match(text, e) else None
    return _Span(s, e, "PASSWORD") if len(value) >= 4 else None


def _passphrase(text: str, s: int, conn: str) -> _Span | None:
    """"the passphrase is correct horse battery staple": 2-8 plain words up to the end of the clause;
    after ":" or "=" the rest of the line ("passphrase: Ferris wheel at midnight 42")."""
    if conn == "hard":
        rest = _LINE_REST.match(text, s)
        line = rest.group(0).rstrip(" \t.") if rest else ""
        first = line.split()[0].lower() if line.strip() else ""
        if not first or first in _PREDICATES or first.endswith(_PREDICATE_SUFFIXES):
            return None
        return _Span(s, s + len(line), "PASSWORD")
    m = _PHRASE.match(text, s)
    if m is None:
        return None
    words = m.group(0).lower().split()
    if any(w in _FUNCTION_WORDS for w in words) or all(w in _PREDICATES for w in words) or (
            len(words) == 2 and (words[0] in _PREDICATES or words[0].endswith(_PREDICATE_SUFFIXES))):
        return None  # "is stored in the vault", "is very secure", "is too long"
    return _Span(s, m.end(), "PASSWORD") if _CLAUSE_END.match(text, m.end()) else None


def _login_value(text: str, m: re.Match[str]) -> _Span | None:
    """The password of ``login USER / PASS``: a credential (digit or symbol) or a known default password."""
    s, e, quoted = _read_value(text, m.end())
    value = text[s:e]
    if not value or _code_like(value) or len(value) < 4 and value.lower() not in _DEFAULT_PASSWORDS:
        return None
    if _PLAIN.fullmatch(value) and value.lower() not in _DEFAULT_PASSWORDS and not quoted:
        return None
    return _Span(s, e, "PASSWORD")
