"""Ines's mail as a Gmail Takeout style mbox, from ``src/mail/*.eml``.

Each source file is headers, a blank line and the plain-text body. Build hints, dropped from the
output: ``X-Persona-Html: yes`` adds a text/html alternative, ``X-Persona-Quote: yes`` appends the
quoted message named by In-Reply-To (Gmail style, '>' lines), ``X-Persona-Footer: lanternfish`` appends
the company's mail disclaimer, ``X-Persona-Encoding: base64`` encodes the body in base64 instead of
quoted-printable.
"""

from __future__ import annotations

import hashlib
import html
import mailbox
import tempfile
from datetime import UTC
from email.message import EmailMessage
from email.utils import getaddresses, parsedate_to_datetime
from pathlib import Path

from .common import SRC, write_bytes

DISCLAIMERS = {"lanternfish": """
________________________________
This e-mail and any attachments are confidential and may be privileged. If
you are not the intended recipient, please tell the sender and delete this
message. Lanternfish AI B.V., Rotterdam, the Netherlands. Registered with the
Chamber of Commerce under number 81234567."""}

_HEADER_ORDER = ("From", "To", "Cc", "Date", "Subject", "Message-ID", "In-Reply-To")


def _read(path: Path) -> tuple[dict[str, str], str]:
    head, _, body = path.read_text(encoding="utf-8").partition("\n\n")
    headers = dict(line.split(": ", 1) for line in head.splitlines())
    return headers, body.rstrip("\n") + "\n"


def _quote(headers: dict[str, str], text: str) -> str:
    """Gmail's attribution line and the quoted text."""
    when = parsedate_to_datetime(headers["Date"])
    (name, addr), = getaddresses([headers["From"]])
    attribution = f"On {when:%a, %d %b %Y} at {when:%H:%M}, {name} <{addr}> wrote:"
    quoted = "\n".join(f"> {line}" if line else ">" for line in text.rstrip("\n").splitlines())
    return f"{attribution}\n\n{quoted}\n"


def _html(own: str, quote: str) -> str:
    """The plain body as Gmail-like HTML: paragraphs, a signature div, a blockquote for the quote."""
    body, _, signature = own.partition("\n--\n")
    parts = ["<div>" + "<br>".join(html.escape(line) for line in para.splitlines()) + "</div><div><br></div>"
             for para in body.strip("\n").split("\n\n")]
    if signature:
        lines = "<br>".join(html.escape(line) for line in signature.strip("\n").splitlines())
        parts.append(f'<div>-- <br><div dir="ltr" class="gmail_signature">{lines}</div></div>')
    if quote:
        attribution, _, quoted = quote.partition("\n\n")
        inner = "<br>".join(html.escape(line[2:] if line.startswith("> ") else line.lstrip(">"))
                            for line in quoted.splitlines())
        parts.append(f'<div class="gmail_quote"><div dir="ltr" class="gmail_attr">{html.escape(attribution)}<br></div>'
                     f'<blockquote class="gmail_quote" style="margin:0px 0px 0px 0.8ex;border-left:1px solid '
                     f'rgb(204,204,204);padding-left:1ex">{inner}</blockquote></div>')
    return '<div dir="ltr">' + "\n".join(parts) + "</div>\n"


def _thread_id(message_id: str) -> str:
    """A Gmail-like 64-bit decimal thread id derived from the thread's first Message-ID."""
    return str(int.from_bytes(hashlib.sha256(message_id.encode()).digest()[:8], "big") >> 1)


def build_messages(folder: Path = SRC / "mail") -> list[mailbox.mboxMessage]:
    """Every source message, in file order, as an mbox message with Takeout headers."""
    texts: dict[str, tuple[dict[str, str], str]] = {}
    roots: dict[str, str] = {}
    messages = []
    for path in sorted(folder.glob("*.eml")):
        headers, own = _read(path)
        mid, parent = headers["Message-ID"], headers.get("In-Reply-To")
        quote = _quote(*texts[parent]) if headers.get("X-Persona-Quote") == "yes" else ""
        footer = DISCLAIMERS[headers["X-Persona-Footer"]] + "\n" if "X-Persona-Footer" in headers else ""
        text = own + (f"\n{quote}" if quote else "") + footer
        texts[mid] = (headers, text)
        roots[mid] = roots.get(parent, mid)

        msg = EmailMessage()
        msg["X-GM-THRID"] = _thread_id(roots[mid])
        msg["X-Gmail-Labels"] = headers["X-Gmail-Labels"]
        for key in _HEADER_ORDER:
            if key in headers:
                msg[key] = headers[key]
        if parent:
            refs, chain = [], parent
            while chain:  # References: the whole chain back to the thread's first message
                refs.insert(0, chain)
                chain = texts[chain][0].get("In-Reply-To") if chain in texts else None
            msg["References"] = " ".join(refs)
        msg.set_content(text, cte=headers.get("X-Persona-Encoding", "quoted-printable"))
        if headers.get("X-Persona-Html") == "yes":
            msg.add_alternative(_html(own, quote) + (f"<div>{html.escape(footer)}</div>" if footer else ""),
                                subtype="html", cte="quoted-printable")
            msg.set_boundary("0000000000" + hashlib.sha1(mid.encode()).hexdigest()[:16])  # else random
        mbox_msg = mailbox.mboxMessage(msg)
        when = parsedate_to_datetime(headers["Date"]).astimezone(UTC)
        mbox_msg.set_from(f"{msg['X-GM-THRID']}@xxx {when:%a %b %d %H:%M:%S +0000 %Y}")  # Takeout's From_ line
        messages.append(mbox_msg)
    return messages


def mbox_bytes(messages: list[mailbox.mboxMessage]) -> bytes:
    """The messages as one mbox file (written by the stdlib, which also escapes '>From ' lines)."""
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "ines.mbox"
        box = mailbox.mbox(path)
        for msg in messages:
            box.add(msg)
        box.close()
        return path.read_bytes()


def write_mbox(out: Path) -> list[Path]:
    """Write ``mail/ines.mbox`` under ``out``."""
    return [write_bytes(out / "mail" / "ines.mbox", mbox_bytes(build_messages()))]
