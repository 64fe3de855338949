"""What every extractor takes and gives back: files to read, documents out, skips with a reason.

An extractor is a function ``(SourceFile | SourceTree, Context) -> Iterator[Document]``.

* Per-file extractors (PDF, DOCX, PPTX, HTML, Markdown, notebooks, ...) take one ``SourceFile``.
* Per-source extractors (a git repository, a Slack or LinkedIn export, an mbox) take the whole
  ``SourceTree`` of their source, because one of their documents can span several files.

A file that cannot be used (encrypted, corrupt, image-only, binary, too large) makes the extractor
raise ``Skip("reason")``: the pipeline records the file and the reason in the report and goes on.
Any other exception from an extractor is also caught per file and reported as
``"error: <ExceptionType>: <message>"``, so one bad file never stops a run; ``Skip`` is for the
reasons a user should read as expected, not as a bug.
"""

from __future__ import annotations

import fnmatch
import io
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

from flaxgpt.ingest.extract.decode import DecodedText, UndecodableText, decode_text

log = logging.getLogger(__name__)

# Document kinds: each has its own quality profile (web filters would wrongly drop CVs, slides, chats).
# "web" is general text from the internet or a public corpus, the only kind the web filters apply to.
KINDS = ("prose", "code", "chat", "email", "cv", "slides", "web")

MAX_FILE_BYTES = 64 * 2**20  # larger files are skipped as "oversized"


class Skip(Exception):  # noqa: N818 (it is a control-flow signal, not an error)
    """Raised by an extractor to skip the file it was given; the message is the reason shown in the report."""


@dataclass(frozen=True)
class Owner:
    """The person whose corpus this is: picks their own messages and allow-lists their public details."""

    names: tuple[str, ...] = ()
    emails: tuple[str, ...] = ()
    handles: tuple[str, ...] = ()  # chat/user names and ids: Slack ids or names, Discord names, git authors

    def is_owner(self, *, name: str | None = None, email: str | None = None, handle: str | None = None) -> bool:
        """True if any given identifier (case-insensitive) belongs to the owner."""
        def norm(s: str | None) -> str:
            return (s or "").strip().lower()

        return bool(
            (name and norm(name) in {norm(n) for n in self.names})
            or (email and norm(email) in {norm(e) for e in self.emails})
            or (handle and norm(handle) in {norm(h) for h in self.handles} | {norm(n) for n in self.names})
        )


@dataclass(frozen=True)
class Context:
    """Options an extractor may use: whose corpus it is and what to keep."""

    owner: Owner = Owner()
    owner_only: bool = True  # email/chat: keep only conversations where the owner wrote something
    commit_messages: bool = False  # git: also emit the owner's commit messages as one document
    max_file_bytes: int = MAX_FILE_BYTES
    # Per-source extractors report members they skip (a bad day file of a chat export) here and go on.
    on_skip: Callable[[str, str], None] | None = None

    def skip(self, rel: str, reason: str) -> None:
        """Reports one skipped member of a multi-file source to ``on_skip`` (and the debug log)."""
        if self.on_skip is not None:
            self.on_skip(rel, reason)
        log.debug("skipped %s: %s", rel, reason)


@dataclass(frozen=True)
class SourceFile:
    """One file of a source, on disk or inside a zip archive, read in place (never unpacked to disk).

    ``rel`` is the path shown in reports: relative to the source root, with ``!/`` between an
    archive and a member (``export.zip!/general/2024-01-02.json``). ``disk_path`` is set only for
    files that exist on disk as themselves (tools such as git need a real path).
    """

    rel: str
    size: int
    opener: Callable[[], BinaryIO]
    disk_path: Path | None = None

    @property
    def name(self) -> str:
        return self.rel.rsplit("/", 1)[-1]

    @property
    def suffix(self) -> str:
        """Lower-case extension with the dot ('.pdf'), or '' if none."""
        name = self.name
        return name[name.rfind("."):].lower() if "." in name.lstrip(".") else ""

    def open(self) -> BinaryIO:
        return self.opener()

    def read_bytes(self, limit: int = MAX_FILE_BYTES) -> bytes:
        """The whole file; raises Skip('oversized ...') past ``limit`` bytes (checked while reading, so a
        zip member that lies about its size cannot blow up memory)."""
        if self.size > limit:
            raise Skip(f"oversized: {self.size} bytes > limit {limit}")
        chunks, total = [], 0
        with self.open() as f:
            # Chunked, never f.read(limit + 1): that can allocate the whole limit up front.
            while chunk := f.read(min(1 << 24, limit + 1 - total)):
                chunks.append(chunk)
                total += len(chunk)
                if total > limit:
                    raise Skip(f"oversized: more than {limit} bytes")
        return b"".join(chunks)

    def decode(self, limit: int = MAX_FILE_BYTES) -> DecodedText:
        """The file as text (``decode.decode_text``: UTF-8, a few bad bytes replaced, or a detected encoding),
        with the encoding used; raises Skip for binary or undecodable content."""
        try:
            return decode_text(self.read_bytes(limit))
        except UndecodableText as why:
            raise Skip(str(why)) from None

    def read_text(self, limit: int = MAX_FILE_BYTES) -> str:
        """The text of ``decode`` alone (BOM dropped, CRLF -> LF); raises Skip if binary or undecodable."""
        return self.decode(limit).text

    @classmethod
    def from_bytes(cls, rel: str, data: bytes) -> SourceFile:
        """A file held in memory (tests, and members extracted from a nested archive)."""
        return cls(rel=rel, size=len(data), opener=BytesOpener(data))

    @classmethod
    def from_path(cls, path: Path, rel: str | None = None) -> SourceFile:
        """A file on disk."""
        path = Path(path)
        return cls(rel=rel or path.name, size=path.stat().st_size, opener=DiskOpener(path), disk_path=path)


# Openers are small classes rather than lambdas so that SourceFiles pickle into worker processes.
@dataclass(frozen=True)
class BytesOpener:
    data: bytes

    def __call__(self) -> BinaryIO:
        return io.BytesIO(self.data)


@dataclass(frozen=True)
class DiskOpener:
    path: Path

    def __call__(self) -> BinaryIO:
        return open(self.path, "rb")


@dataclass
class Document:
    """One extracted document, before privacy scrubbing, dedup and quality filtering.

    ``path`` says where it came from (a file's ``rel``, plus ``#...`` for a part of it such as a
    message id or a chat window), and is unique within a source: it becomes the document's id.
    """

    text: str
    kind: str
    path: str
    metadata: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"document {self.path!r}: unknown kind {self.kind!r}, expected one of {KINDS}")


@dataclass(frozen=True)
class SourceTree:
    """All files of one source (a folder, a single file, or an archive), sorted by ``rel``.

    Built by ``flaxgpt.ingest.files.open_tree``, which applies include/exclude globs, skips hidden
    entries, symlink loops, oversized files and zip bombs (reporting each), and reads archives in
    place. For an archive root, ``rel`` is the member path inside it (``users.json``,
    ``general/2024-01-02.json``); ``label`` names the source root (shown in reports).
    ``disk_root`` is the folder on disk when the source is a folder (git needs a real path), else None.
    """

    label: str
    files: tuple[SourceFile, ...]
    disk_root: Path | None = None

    def get(self, rel: str) -> SourceFile | None:
        """The file at ``rel`` or None."""
        for f in self.files:
            if f.rel == rel:
                return f
        return None

    def glob(self, pattern: str) -> list[SourceFile]:
        """Files whose ``rel`` matches the fnmatch ``pattern`` ('*' also crosses '/')."""
        return [f for f in self.files if fnmatch.fnmatch(f.rel, pattern)]

    @classmethod
    def from_mapping(cls, label: str, members: dict[str, bytes]) -> SourceTree:
        """An in-memory tree (tests): ``{rel: bytes}``."""
        return cls(label=label, files=tuple(SourceFile.from_bytes(r, members[r]) for r in sorted(members)))
