"""Secrets: private key blocks, provider tokens, AWS keys, URL passwords and key-value secrets.

Everything here is found without tokenising the text: provider tokens from runs of 16+ word characters in
the word view, key-value pairs from a few keyword stems in the lower-cased view.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

from flaxgpt.ingest.privacy.text import _entropy, _high_entropy, _Span, _View

_PRIVATE_KEY = re.compile(
    rb"-----BEGIN[A-Z0-9 ]*PRIVATE KEY(?: BLOCK)?-----"
    rb"(?:.*?-----END[A-Z0-9 ]*PRIVATE KEY(?: BLOCK)?-----"
    # Without END: the header and base64 lines that follow, one newline (or an escaped "\n") apart.
    rb"|(?:(?:\\n|[ \t]*\r?\n)[ \t]*(?:[A-Za-z0-9+/]{16,}={0,2}|[A-Za-z0-9+/]{1,15}={1,2}|[A-Za-z-]+: [^\n\\]*))*)",
    re.S)
_PUTTY = re.compile(rb"PuTTY-User-Key-File-\d+:[^\n]*(?:\r?\n(?:[A-Za-z-]+: [^\n]*|[A-Za-z0-9+/]+={0,2}))*")
_PROVIDER = re.compile(rb"""(?<![A-Za-z0-9])(?:
    (?P<AWS_KEY>(?:A3T[A-Z0-9]|ABIA|ACCA|AKIA|ASIA)[A-Z0-9]{16})(?![A-Za-z0-9])
  | (?P<TOKEN>gh[pousr]_[A-Za-z0-9_]{30,255}
    | github_pat_[A-Za-z0-9_]{22,255}
    | sk-(?:proj-|svcacct-|admin-|None-)?[A-Za-z0-9_-]{20,}
    | xox[abposre]-[A-Za-z0-9-]{10,}
    | [rs]k_(?:live|test)_[A-Za-z0-9]{16,}
    | glpat-[A-Za-z0-9_-]{20,}
    | pypi-AgEIcHlwaS5vcmc[A-Za-z0-9_-]{16,}
    | SG\.[A-Za-z0-9_-]{16,32}\.[A-Za-z0-9_-]{16,64}
    | AIza[A-Za-z0-9_-]{35}
    | eyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]*
    | hf_[A-Za-z0-9]{30,}
    | npm_[A-Za-z0-9]{36}
    | key-[0-9a-f]{32}(?![0-9a-f])
    | (?:AC|SK)[0-9a-f]{32}(?![0-9a-f])
    | shp(?:at|ca|pa|ss)_[a-fA-F0-9]{32}
    | dop_v1_[a-f0-9]{64}
    | lin_api_[A-Za-z0-9]{40}
    | dapi[a-f0-9]{32}(?:-\d)?(?![0-9a-f])
    | xapp-\d-[A-Z0-9]{6,}-\d{6,}-[a-f0-9]{10,}
    ))""", re.X)  # gitleaks' and GitHub secret scanning's formats (Hugging Face, npm, Mailgun, Twilio, Databricks...)
_LOWER_PREFIXES = frozenset({b"gh", b"gi", b"sk", b"xo", b"rk", b"gl", b"py", b"hf", b"np", b"ke", b"sh", b"do",
                             b"li", b"da", b"xa"})
_MIN_RUN = b"w" * 16  # every provider token starts with (or, after "SG.", is) a run of 16+ word characters
_FCM_KEY = re.compile(rb"(?<![A-Za-z0-9])AAAA[A-Za-z0-9_-]{7}:APA91[A-Za-z0-9_-]{40,}")
_TELEGRAM_BOT = re.compile(rb"(?<![A-Za-z0-9:])\d{8,10}:AA[A-Za-z0-9_-]{30,40}(?![A-Za-z0-9_-])")
_HOOK_URL = re.compile(rb"hooks\.slack\.com/(?:services|workflows|triggers)/([A-Za-z0-9/_-]{8,})"
                       rb"|hooks\.zapier\.com/hooks/catch/([0-9]+/[A-Za-z0-9]+)")
_AWS_SECRET = re.compile(rb"(?<![A-Za-z0-9/+])[A-Za-z0-9/+]{40}(?![A-Za-z0-9/+=])")
_URL_USERINFO = re.compile(rb"://([^\s/?#@:\"'<>]{1,256}):([^\s/?@\"'<>]{1,256})@")  # "#" in a password: "Kq9#vB2z@"


# Documentation's stand-ins in a provider's format: "AKIAIOSFODNN7EXAMPLE", "sk_test_XXXXXXXXXXXXXXXX".
_STAND_IN = re.compile(rb"(?i:example)|XXXXXX|xxxxxx")
_MASKED_PATH = re.compile(rb"(?:(?:(.)\1{2,}|\.\.\.|<[^/>]*>)(?:/|$))+")  # "XXXX/YYYY/ZZZZ", ".../...", "<id>/<key>"


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
        if m is not None and not _STAND_IN.search(b, m.start(), m.end()):
            yield _Span(m.start(), m.end(), "AWS_KEY" if m.group("AWS_KEY") else "TOKEN")
        if m is not None:
            end = max(end, m.end())
        i = w.find(_MIN_RUN, end)
    if b":APA91" in b:  # Firebase Cloud Messaging's legacy server key ("AAAA...:APA91b..."): a colon inside
        for m in _FCM_KEY.finditer(b):
            yield _Span(m.start(), m.end(), "TOKEN")
    if b":AA" in b:  # a Telegram bot's token: its id, a colon, then "AA..."
        for m in _TELEGRAM_BOT.finditer(b):
            yield _Span(m.start(), m.end(), "TOKEN")
    if b"hooks.slack.com/" in b or b"hooks.zapier.com/" in b:
        for m in _HOOK_URL.finditer(b):
            group = 1 if m.group(1) else 2  # the secret path: Slack's or Zapier's
            if not _MASKED_PATH.fullmatch(m.group(group)):  # ".../services/XXXX/YYYY/ZZZZ" stands for one
                yield _Span(m.start(group), m.end(group), "TOKEN")
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
_REPLACE_ME = re.compile(r"(?i)replace[_-]?(?:me|this|with)|insert[_-]?(?:your|here|key|token)|fill[_-]?me[_-]?in")
_CODE_REF = re.compile(r"[A-Za-z_][\w.]*")
_CODE_CALL = re.compile(r"[A-Za-z_][\w.]*[(\[]")  # get_password(...), data["pw"]
# A plain word is prose ("the secret: practice"), not a mid-line password (those have a digit, symbol, ...).
_PLAIN_WORD = re.compile(r"[^\W\d_]+(?:['’-][^\W\d_]+)*")
_WORD_FOLLOWS = re.compile(rb"[ \t]+[A-Za-z]")


_YAML_TAG = re.compile(r"!(?:vault|[A-Z][A-Za-z]+)")
# Keys that hold a password's setting, not a password: PASSWORD_RESET_TIMEOUT = 3600, password_min_length: 12.
_SETTING_KEY = re.compile(r"(?i)(?:^|[_.\-])(?:timeout|length|len|min|max|age|ttl|expiry|attempts|retries|count|size"
                          r"|days|hours|minutes|seconds|policy|hashers?|field|label|hint|regex|pattern|strength|rounds"
                          r"|iterations|validators?|url|path|file|dir|prompt)(?:$|[_.\-])")
# A public key's fingerprint, id or hash: published on purpose, so not a secret when the line says so.
_KEY_DIGEST = re.compile(r"(?:0x)?(?:[0-9A-Fa-f]{16}|[0-9A-Fa-f]{40})|[0-9A-Fa-f]{64}|(?:[0-9A-Fa-f]{4} ?){10}"
                         r"|SHA(?:256|512):[A-Za-z0-9+/]{43,86}=*|(?:[0-9a-fA-F]{2}:){15,31}[0-9a-fA-F]{2}")
_PUBLIC_CONTEXT = re.compile(rb"pub(?:lic)?|gpg|pgp|fingerprint|fpr|signing|host[ _-]?key|ssh|verify|recv-keys"
                             rb"|key[ _-]?id|keyid|sha(?:1|256|512)?|checksum|digest")
_PRIVATE_CONTEXT = re.compile(rb"secret|private|api|access|auth|token|pass|hmac|client|session|bearer")


def _public_key_digest(v: _View, key_start: int, key_end: int, value: str) -> bool:
    """True if ``value`` is a key fingerprint/id/hash and the line up to the key says it is a public key's."""
    if _KEY_DIGEST.fullmatch(value) is None:
        return False
    context = v.lo[max(v.b.rfind(b"\n", 0, key_start) + 1, key_start - 80):key_end]
    return _PUBLIC_CONTEXT.search(context) is not None and _PRIVATE_CONTEXT.search(context) is None


def _placeholder_like(value: str) -> bool:
    """Values that stand for a secret without being one: templates, env lookups, masks, placeholders."""
    v = value.strip()
    return (not v or v[0] in "$%{<[(*#" or v.lower() in _SKIP_VALUES or set(v) <= set("*xX.-_•●·?")
            or "..." in v or "…" in v or "****" in v  # masked: "sk-...4f2a", "ghp_…Xz", "AKIA****WXYZ"
            or _REPLACE_ME.search(v) is not None  # "REPLACE_ME", "changeme-please", "<insert-key>"
            or "example" in v.lower()  # documentation's stand-ins: "AKIAIOSFODNN7EXAMPLE", "sk-example-123"
            or _YAML_TAG.fullmatch(v) is not None  # password: !vault | (Ansible), !Ref (CloudFormation)
            or v.startswith(("os.", "process.env", "env.", "ENV[", "getenv", "self.", "settings.", "config."))
            or (v[0] in "/~." and "/" in v[1:] and " " not in v))  # a path (PWD=/home/jane/src)


_AFTER_KEY = frozenset(b"=:\"'`]*> \t")  # what can follow a key in an assignment (bytes values)
_BLANKS = frozenset(b" \t")
_SEPARATOR_AFTER_BLANKS = re.compile(rb"[ \t]*[:=]")


def _keyword_spans(v: _View) -> Iterator[_Span]:
    b = v.b
    seen: set[int] = set()
    for stem in _KEY_STEMS:
        for i in v.find_all(stem):
            key_start, key_end = v.word_bounds(i)
            if key_end < len(b) and b[key_end] in _AFTER_KEY and key_start not in seen:
                seen.add(key_start)
                if b[key_end] in _BLANKS and _SEPARATOR_AFTER_BLANKS.match(b, key_end) is None and not (
                        b.startswith(b"--", key_start) or v.lo.startswith(b"bearer", key_start)):
                    continue  # "the token budget": only a flag or "Bearer" takes its value after a space
                span = _key_value(v, key_start, key_end)
                if span is not None:
                    yield span


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
    if _PASSWORD_KEY.search(key.lstrip("-")) and not _SETTING_KEY.search(key):
        if name == "bare":
            if _CODE_REF.fullmatch(value) and any(t in value.lower() for t in ("pass", "pwd", "secret", "key")):
                return None  # password = user_password: a variable, not a value
            line_start = b.rfind(b"\n", 0, key_start) + 1
            mid_line = b[line_start:key_start].strip(b" \t-*#>/\"'{") != b""
            if mid_line and m.groupdict().get("sep") == b":" and _PLAIN_WORD.fullmatch(value):
                return None  # prose: "the secret: practice" (a real password has a digit, capital or symbol)
            if _PLAIN_WORD.fullmatch(value) and _WORD_FOLLOWS.match(b, e) and "phrase" not in key:
                return None  # "Password: see the shared vault entry" is a sentence, not a value
        return _Span(s, e, "PASSWORD")
    if _public_key_digest(v, key_start, key_end, value):
        return None  # "My GPG key: 3A1F...", "pubkey: <sha256>", "host key: SHA256:..."
    return _Span(s, e, "SECRET") if _high_entropy(value) else None
