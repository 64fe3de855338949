"""Email: every ``*.mbox`` file of a source (a Gmail Takeout is one mbox) -> one Document per message.

The mbox is streamed from its ``From `` separator lines (so zip members work, and a multi-GB mailbox
is never held whole), each message parsed with the stdlib ``email`` package. The body is the first
text/plain part (else text/html turned into text), with quoted replies, forwarded messages and
signatures cut, so what is left is what the sender wrote in that message. By default only messages
the owner sent are kept. A message that cannot be parsed is reported and skipped; the source is
skipped only when it yields no message at all.
"""

from __future__ import annotations

import email
import email.errors
import email.header
import email.message
import email.utils
import re
import zipfile
from collections.abc import Iterator
from html.parser import HTMLParser

from flaxgpt.ingest.extract.base import Context, Document, Skip, SourceFile, SourceTree
from flaxgpt.ingest.extract.decode import UndecodableText, decode_text

MAX_MESSAGE_BYTES = 32 * 2**20  # past this a "message" is an attachment dump or a broken separator
_CHUNK = 2**20
_HEADER_END = re.compile(rb"\r?\n\r?\n")
_FROM_HEADER = re.compile(rb"^From:[ \t]*([^\r\n]*(?:\r?\n[ \t][^\r\n]*)*)", re.M | re.I)
# A blank line, then the next message's envelope line ("From sender Mon Jan  1 10:00:00 2024"): the weekday
# keeps an unescaped body line such as "From then on..." from splitting a message.
_SEPARATOR = re.compile(rb"\n\r?\n(From \S{0,256} +(?:Mon|Tue|Wed|Thu|Fri|Sat|Sun) )")
_OVERLAP = 300  # bytes kept from the end of a chunk so a separator cut in two is still found

# mboxrd escapes body lines that start with "From " by adding ">"; undo one level.
_FROM_ESCAPE = re.compile(rb"^>(>*From )", re.M)
# Reply attributions: "On Mon, 1 Jan 2024 at 10:00, Ann <a@x> wrote:" (Gmail wraps it over two lines).
_ATTRIBUTION = re.compile(
    r"^[ \t]*(On|Le|Am|El|Il|Op|Em|W dniu)\b[^\n]{0,300}(\n[^\n]{0,200})?"
    r"(wrote|a écrit|schrieb|escribió|ha scritto|schreef|escreveu|napisał)\s*:[ \t]*$",
    re.M,
)
# Outlook and webmail reply/forward headers: everything after them is the older message.
_QUOTE_HEADER = re.compile(
    r"^[ \t]*(-{2,}[ \t]*(Original Message|Forwarded message|Ursprüngliche Nachricht|Message d'origine)[ \t]*-{2,}"
    r"|_{20,}[ \t]*\n[ \t]*From:[^\n]*"
    r"|From:[^\n]*\n[ \t]*(Sent|Date):[^\n]*\n[ \t]*(To|Subject):[^\n]*"
    r"|Begin forwarded message:)",
    re.M | re.I,
)
_QUOTED_LINE = re.compile(r"^[ \t]*>[^\n]*\n?", re.M)
_SIG_DELIMITER = re.compile(r"^-- ?$", re.M)
_SENT_FROM = re.compile(
    r"^[ \t]*(Sent from my \w+|Sent from (Mail|Outlook|Yahoo Mail)\b|Get Outlook for \w+|Sent with \w+ Mail)[^\n]*$",
    re.M | re.I,
)
# A valediction near the end, followed by a few short lines (name, title, phone): the sign-off block.
_SIGN_OFF = re.compile(
    r"^[ \t]*(best|best regards|best wishes|kind regards|warm regards|regards|many thanks|thanks|thank you|cheers"
    r"|sincerely|yours sincerely|yours truly|all the best|take care|talk soon|cordially|bests?|thx|ta)[ \t]*[,.!]?"
    r"[ \t]*\n(?:[^\n]{0,60}\n){0,5}[^\n]{0,60}\Z",
    re.M | re.I,
)
_BLANK_RUNS = re.compile(r"\n{3,}")
_DROP_HTML = frozenset({"script", "style", "head", "title", "blockquote"})
_DROP_HTML_CLASSES = ("gmail_quote", "gmail_signature", "moz-cite", "moz-signature", "yahoo_quoted")
_BLOCK_HTML = frozenset({"p", "div", "br", "tr", "li", "h1", "h2", "h3", "h4", "h5", "h6", "table", "ul", "ol",
                         "pre", "hr"})


class _HTMLText(HTMLParser):
    """Visible text of an HTML email, without scripts, styles and quoted (blockquote, gmail_quote) parts."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self.depth = 0  # >0 while inside an element whose text is dropped
        self.stack: list[bool] = []  # per open dropped-capable element: whether it started a drop

    def handle_starttag(self, tag: str, attrs: list) -> None:
        cls = dict(attrs).get("class") or ""
        drops = tag in _DROP_HTML or any(c in cls for c in _DROP_HTML_CLASSES)
        if tag in _BLOCK_HTML:
            self.parts.append("\n")
        if tag in ("br", "hr", "img", "meta", "link", "input"):
            return  # void elements have no end tag
        self.stack.append(drops)
        self.depth += drops

    def handle_endtag(self, tag: str) -> None:
        if tag in ("br", "hr", "img", "meta", "link", "input"):
            return
        if self.stack:
            self.depth -= self.stack.pop()
        if tag in _BLOCK_HTML:
            self.parts.append("\n")

    def handle_data(self, data: str) -> None:
        if not self.depth:
            self.parts.append(data)


def html_to_text(html: str) -> str:
    """Visible text of an HTML fragment or page (quoted parts dropped), with paragraph breaks as newlines."""
    parser = _HTMLText()
    try:
        parser.feed(html)
        parser.close()
    except (AssertionError, ValueError):  # HTMLParser's way of giving up on hopeless markup
        pass
    text = "".join(parser.parts).replace("\xa0", " ")
    text = "\n".join(line.strip() for line in text.split("\n"))
    return _BLANK_RUNS.sub("\n\n", text).strip()


def _drop_attributions(body: str) -> str:
    """Removes "On ... wrote:" lines. One followed by "> " lines only introduces a quote (the quote goes
    later, and a bottom-posted reply after it stays); otherwise the older message follows unquoted, so the
    body is cut there."""
    out, last = [], 0
    for m in _ATTRIBUTION.finditer(body):
        out.append(body[last:m.start()])
        if not body[m.end():m.end() + 200].lstrip().startswith(">"):
            return "".join(out)
        last = m.end()
    out.append(body[last:])
    return "".join(out)


def strip_quotes_and_signature(body: str) -> str:
    """What the sender wrote in a message body: quoted replies, forwarded/original messages, the
    signature (after "-- ") and a trailing sign-off block removed."""
    body = _drop_attributions(body.replace("\r\n", "\n").replace("\r", "\n"))
    for pattern in (_QUOTE_HEADER, _SIG_DELIMITER):
        m = pattern.search(body)
        if m:
            body = body[:m.start()]
    body = _QUOTED_LINE.sub("", body)
    body = _SENT_FROM.sub("", body).rstrip()
    m = _SIGN_OFF.search(body)
    if m and m.start() > 0:
        body = body[:m.start()]
    return _BLANK_RUNS.sub("\n\n", body).strip()


def _decode_header(value: object) -> str:
    """A header as text, RFC 2047 encoded words decoded; never raises."""
    if value is None:
        return ""
    try:
        return str(email.header.make_header(email.header.decode_header(str(value))))
    except (ValueError, LookupError, UnicodeError, email.errors.HeaderParseError):
        return str(value)


def _decode_payload(part: email.message.Message) -> str:
    payload = part.get_payload(decode=True) or b""
    charset = part.get_content_charset()
    if charset:
        try:
            return payload.decode(charset)
        except (LookupError, UnicodeDecodeError):
            pass  # a wrong or unknown declared charset: decode as any other text
    try:
        return decode_text(payload).text
    except UndecodableText:
        return payload.decode("latin-1")  # a body is never lost: every byte is a latin-1 character


def message_body(msg: email.message.Message) -> str:
    """The text of a message: its first inline text/plain part, else its first text/html part as text."""
    html = None
    for part in msg.walk():
        if part.is_multipart() or part.get_content_maintype() != "text":
            continue
        if (part.get("Content-Disposition") or "").strip().lower().startswith("attachment"):
            continue
        subtype = part.get_content_subtype()
        if subtype == "plain":
            return _decode_payload(part)
        if subtype == "html" and html is None:
            html = _decode_payload(part)
    return html_to_text(html) if html is not None else ""


def _mbox_messages(file: SourceFile) -> Iterator[bytes | None]:
    """Raw bytes of each message of an mbox stream (envelope "From " line dropped), split at "From " lines
    that follow a blank line; None in place of a message over ``MAX_MESSAGE_BYTES``. Reads in chunks, so
    any stream with ``read(n)`` works and memory stays at about one message."""
    with file.open() as f:
        buf = f.read(_CHUNK)
        if not buf.strip():
            return
        if not buf.startswith(b"From "):
            raise Skip("not an mbox file: it does not start with a 'From ' line")
        start = pos = 0  # buf[start:] is the message being read (envelope line first); search resumes at pos
        eof = oversized = False
        while True:
            m = _SEPARATOR.search(buf, pos)
            if m is None and not eof:
                if len(buf) - start > MAX_MESSAGE_BYTES:  # keep only enough to find the next separator
                    oversized, start = True, len(buf) - _OVERLAP
                buf, pos, start = buf[start:], max(0, len(buf) - start - _OVERLAP), 0
                chunk = f.read(_CHUNK)
                eof = not chunk
                buf += chunk
                continue
            end = m.start() + 1 if m else len(buf)
            if oversized:
                yield None
            else:
                body = buf.find(b"\n", start, end)
                yield buf[body + 1:end] if body >= 0 else b""
            if m is None:
                return
            start = pos = m.start(1)
            oversized = False


def _people(msg: email.message.Message, ctx: Context) -> tuple[list[str], list[str]]:
    """(display names of the non-owner participants, To addresses as shown) of a message."""
    people: list[str] = []
    to: list[str] = []
    for header in ("From", "To", "Cc", "Reply-To"):
        values = [_decode_header(v) for v in msg.get_all(header, [])]
        for name, addr in email.utils.getaddresses(values):
            if header == "To":
                to.append(email.utils.formataddr((name, addr)) if name else addr)
            if name and not ctx.owner.is_owner(name=name, email=addr) and name not in people:
                people.append(name)
    return people, to


def _from_owner(from_header: str, ctx: Context) -> bool:
    """True if a raw From header value names the owner: by address when the owner has addresses (reliable),
    else by display name."""
    emails = ctx.owner.emails
    if emails and not any(e.lower() in from_header.lower() for e in emails):
        return False  # the cheap test first: most of a mailbox is other people's mail
    name, addr = email.utils.parseaddr(_decode_header(from_header))
    return ctx.owner.is_owner(email=addr) if emails else ctx.owner.is_owner(name=name, email=addr)


def _message_document(raw: bytes, file: SourceFile, index: int, ctx: Context, seen: set[str]) -> Document | None:
    """One Document for one raw message (None if it is not the owner's, or nothing is left of it)."""
    if ctx.owner_only:  # judged from the raw header block, before paying for a full parse
        end = _HEADER_END.search(raw)
        sender = _FROM_HEADER.search(raw, 0, end.start() if end else len(raw))
        if not sender or not _from_owner(sender.group(1).decode("utf-8", errors="replace"), ctx):
            return None
    msg = email.message_from_bytes(_FROM_ESCAPE.sub(rb"\1", raw))
    text = strip_quotes_and_signature(message_body(msg))
    if not text:
        return None
    msg_id = (msg.get("Message-ID") or "").strip().strip("<>").strip()
    key = msg_id if msg_id and msg_id not in seen else f"{index}"
    seen.add(key)
    people, to = _people(msg, ctx)
    metadata = {"subject": _decode_header(msg.get("Subject")), "date": str(msg.get("Date") or ""), "to": to,
                "people": people, "source": "mbox"}
    if msg.get("X-GM-THRID"):
        metadata["thread"] = str(msg.get("X-GM-THRID"))
    return Document(text=text, kind="email", path=f"{file.rel}#{key}", metadata=metadata)


def extract_mbox(tree: SourceTree, ctx: Context) -> Iterator[Document]:
    """Every message of every ``*.mbox`` file in ``tree`` -> one "email" Document each (only the owner's
    messages when ``ctx.owner_only``); metadata subject, date, to, people. Raises Skip when no message is
    usable."""
    files = [f for f in tree.files if f.suffix == ".mbox"]
    if not files:
        raise Skip("no *.mbox file in the source")
    kept = seen_messages = 0
    for file in files:
        seen: set[str] = set()
        try:
            for index, raw in enumerate(_mbox_messages(file)):
                seen_messages += 1
                if raw is None:
                    ctx.skip(f"{file.rel}#{index}", f"oversized message: more than {MAX_MESSAGE_BYTES} bytes")
                    continue
                try:
                    doc = _message_document(raw, file, index, ctx, seen)
                except Exception as e:  # noqa: BLE001 (one malformed message must not lose the mailbox)
                    ctx.skip(f"{file.rel}#{index}", f"unreadable message: {type(e).__name__}: {e}")
                    continue
                if doc is not None:
                    kept += 1
                    yield doc
        except Skip as e:
            ctx.skip(file.rel, str(e))
        except (OSError, EOFError, ValueError, zipfile.BadZipFile) as e:  # a corrupt zip member, a truncated file
            ctx.skip(file.rel, f"unreadable mbox: {type(e).__name__}: {e}")
    if kept == 0:
        if seen_messages and ctx.owner_only:
            raise Skip(f"none of {seen_messages} messages was sent by the owner (owner emails: "
                       f"{', '.join(ctx.owner.emails) or 'none configured'})")
        raise Skip("no readable message with text in the mbox files")
