"""Bytes -> text for every text file the ingest reads: UTF-8 first, then detection, never silent mojibake.

``decode_text(data)`` decides, in this order:

1. a byte-order mark names the encoding (UTF-8, UTF-16, UTF-32);
2. NUL bytes in the first 8 KiB mark binary data (``UndecodableText``);
3. valid UTF-8 is taken as it is: the common case pays for nothing else;
4. UTF-8 with a few invalid bytes (no more than it has valid multi-byte characters) stays UTF-8, each
   bad byte becoming U+FFFD, and the count is returned (a stray byte must not turn "Café" into "CafÃ©");
5. anything else goes to charset-normalizer (cp1252, latin-1, Shift-JIS, cp1251, ...). Short Western
   texts fit many single-byte code pages equally well; cp1252, by far the most common legacy encoding of
   personal files, is taken whenever it fits as well as the detector's own pick.

The result says which encoding was used, so extractors can put it in a document's metadata.
"""

from __future__ import annotations

import codecs
import re
from dataclasses import dataclass

import charset_normalizer

_BOMS = ((codecs.BOM_UTF32_LE, "utf-32"), (codecs.BOM_UTF32_BE, "utf-32"), (codecs.BOM_UTF8, "utf-8-sig"),
         (codecs.BOM_UTF16_LE, "utf-16"), (codecs.BOM_UTF16_BE, "utf-16"))  # UTF-32 LE starts like UTF-16 LE
_BINARY_SCAN = 8192
_BAD_BYTE = re.compile("[\udc80-\udcff]")  # what surrogateescape makes of each undecodable byte
_MULTIBYTE = re.compile("[^\x00-\x7f\udc80-\udcff]")
_PREFERRED = "cp1252"
_WIDE = ("utf_16", "utf_32")
_CHAOS_SLACK = 0.1  # a candidate this much more "chaotic" than the detector's pick still counts as fitting


class UndecodableText(ValueError):
    """The bytes are binary or fit no text encoding; the message says which."""


@dataclass(frozen=True)
class DecodedText:
    """Text with line ends normalised to LF, the encoding it was read with, and the bytes replaced by U+FFFD."""

    text: str
    encoding: str = "utf-8"
    replaced_bytes: int = 0

    def metadata(self) -> dict:
        """``{}`` for clean UTF-8, else the encoding (and replaced bytes) to record in a document's metadata."""
        if self.encoding == "utf-8" and not self.replaced_bytes:
            return {}
        meta: dict = {"encoding": self.encoding}
        if self.replaced_bytes:
            meta["replaced_bytes"] = self.replaced_bytes
        return meta


def _lf(text: str) -> str:
    return text.replace("\r\n", "\n").replace("\r", "\n")


def _detect(data: bytes) -> tuple[str, str] | None:
    """(text, encoding) from charset-normalizer, preferring cp1252 among equally good fits; None if nothing fits."""
    # Without a BOM and with no NUL byte (checked before), UTF-16/32 is a misreading of single-byte text.
    matches = [m for m in charset_normalizer.from_bytes(data) if not m.encoding.startswith(_WIDE)]
    if not matches:
        return None
    best = matches[0]  # charset-normalizer ranks its matches best first
    for m in matches:
        if (_PREFERRED in m.could_be_from_charset and m.chaos <= best.chaos + _CHAOS_SLACK
                and m.coherence >= best.coherence):
            return data.decode(_PREFERRED), _PREFERRED
    return str(best), best.encoding


def decode_text(data: bytes) -> DecodedText:
    """Takes a file's bytes; returns its text (LF line ends, no BOM) with the encoding used and the number of
    invalid UTF-8 bytes replaced. Raises UndecodableText for binary data or bytes no encoding fits."""
    for bom, encoding in _BOMS:
        if data.startswith(bom):
            try:
                return DecodedText(_lf(data.decode(encoding)), encoding.removesuffix("-sig"))
            except UnicodeDecodeError:
                raise UndecodableText(f"not valid {encoding.upper()} text despite its byte-order mark") from None
    if b"\x00" in data[:_BINARY_SCAN]:
        raise UndecodableText("binary content")
    try:
        return DecodedText(_lf(data.decode("utf-8")))
    except UnicodeDecodeError:
        pass
    loose = data.decode("utf-8", "surrogateescape")
    bad = len(_BAD_BYTE.findall(loose))
    if bad <= len(_MULTIBYTE.findall(loose)):
        return DecodedText(_lf(_BAD_BYTE.sub("\ufffd", loose)), "utf-8", bad)
    detected = _detect(data)
    if detected is None:
        raise UndecodableText("not text in any encoding charset-normalizer knows")
    return DecodedText(_lf(detected[0]), detected[1])
