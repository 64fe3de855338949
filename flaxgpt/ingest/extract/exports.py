"""Account exports: LinkedIn ("Get a copy of your data") and Notion ("Markdown & CSV").

LinkedIn: the owner's profile, positions, education, skills (and other CV sections) become one "cv"
Document; each post (``ShareCommentary`` in Shares.csv / Shares_*.csv) and each article becomes a
"prose" Document. Connections, messages, invitations and the like are other people's data and are
never read. Notion: each page is one "prose" Document, each database CSV one "prose" Document of
rendered rows. Unreadable members are reported and skipped; the source is skipped only when
nothing in it is usable.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterator
from urllib.parse import unquote

from flaxgpt.ingest.extract.base import Context, Document, Skip, SourceFile, SourceTree
from flaxgpt.ingest.extract.mail import html_to_text

csv.field_size_limit(2**26)  # a long post or page property is one field; csv's default cap is 128 KiB


def read_csv_rows(file: SourceFile, expected: frozenset[str], ctx: Context) -> list[dict[str, str]]:
    """Rows of a CSV as {column: value}, the header being the first row holding one of the ``expected``
    column names (LinkedIn puts notes lines above the header of some files). Raises Skip if there is none."""
    text = file.read_text(ctx.max_file_bytes)
    reader = csv.reader(io.StringIO(text))
    wanted = {c.lower() for c in expected}
    header: list[str] | None = None
    rows = []
    try:
        for row in reader:
            cells = [c.strip() for c in row]
            if header is None:
                if wanted & {c.lower() for c in cells}:
                    header = cells
            elif any(cells):
                rows.append(dict(zip(header, cells, strict=False)))
    except csv.Error as e:
        raise Skip(f"malformed CSV: {e}") from None
    if header is None:
        raise Skip(f"no header row with any of {sorted(expected)}")
    return rows


# ---------------------------------------------------------------- LinkedIn

# file stem (lower case) -> (section title, columns that identify the header)
_CV_FILES = {
    "profile": ("", frozenset({"First Name", "Headline", "Summary"})),
    "positions": ("Experience", frozenset({"Company Name", "Title"})),
    "education": ("Education", frozenset({"School Name", "Degree Name"})),
    "skills": ("Skills", frozenset({"Name"})),
    "languages": ("Languages", frozenset({"Name", "Proficiency"})),
    "certifications": ("Certifications", frozenset({"Name", "Authority"})),
    "projects": ("Projects", frozenset({"Title", "Description"})),
    "honors": ("Honors and awards", frozenset({"Title", "Issued On"})),
    "publications": ("Publications", frozenset({"Name", "Publisher"})),
    "volunteering": ("Volunteering", frozenset({"Company Name", "Role"})),
    "courses": ("Courses", frozenset({"Name", "Number"})),
}
_SHARES = re.compile(r"(?i)^shares(_[^/]*)?\.csv$")
_SHARE_COLUMNS = frozenset({"ShareCommentary"})


def _dates(row: dict, start: str, end: str) -> str:
    a, b = row.get(start, ""), row.get(end, "")
    if not a and not b:
        return ""
    return f" ({a or '?'} - {b or 'present'})"


def _join(*parts: str, sep: str = ", ") -> str:
    return sep.join(p for p in parts if p)


def _render_profile(rows: list[dict]) -> list[str]:
    # Address, birth date and zip code are left out: private, and not something a CV model should learn.
    out = []
    for r in rows[:1]:
        head = [_join(r.get("First Name", ""), r.get("Last Name", ""), sep=" "), r.get("Headline", ""),
                _join(r.get("Geo Location", ""), r.get("Industry", ""), sep=" | "), r.get("Websites", "")]
        out += [line for line in head if line]
        if r.get("Summary"):
            out += ["", "About", r["Summary"]]
    return out


def _render_row(stem: str, r: dict) -> list[str]:
    if stem == "positions":
        return [f"{_join(r.get('Title', ''), r.get('Company Name', ''), sep=' at ')}"
                f"{_dates(r, 'Started On', 'Finished On')}", r.get("Location", ""), r.get("Description", "")]
    if stem == "education":
        return [f"{_join(r.get('Degree Name', ''), r.get('School Name', ''))}{_dates(r, 'Start Date', 'End Date')}",
                r.get("Notes", ""), r.get("Activities", "")]
    if stem == "volunteering":
        return [f"{_join(r.get('Role', ''), r.get('Company Name', ''), sep=' at ')}"
                f"{_dates(r, 'Started On', 'Finished On')}", r.get("Cause", ""), r.get("Description", "")]
    if stem == "languages":
        return [_join(r.get("Name", ""), f"({r['Proficiency']})" if r.get("Proficiency") else "", sep=" ")]
    title = r.get("Title") or r.get("Name") or ""
    when = _dates(r, "Started On", "Finished On") or (f" ({r['Issued On']})" if r.get("Issued On") else "")
    return [f"{title}{when}", _join(r.get("Authority", ""), r.get("Publisher", "")), r.get("Description", ""),
            r.get("Url", "")]


def _cv_text(sections: dict[str, list[dict]]) -> str:
    """The CV sections in a fixed order as plain text."""
    blocks: list[str] = []
    for stem, (title, _) in _CV_FILES.items():
        rows = sections.get(stem)
        if not rows:
            continue
        if stem == "profile":
            lines = _render_profile(rows)
        elif stem == "skills":
            lines = [title, ", ".join(r["Name"] for r in rows if r.get("Name"))]
        else:
            lines = [title]
            for r in rows:
                lines += [line for line in _render_row(stem, r) if line] + [""]
        blocks.append("\n".join(lines).strip())
    return "\n\n".join(b for b in blocks if b)


def extract_linkedin(tree: SourceTree, ctx: Context) -> Iterator[Document]:
    """A LinkedIn data export (CSV files, possibly in a wrapper folder) -> one "cv" Document (profile,
    positions, education, skills and other CV sections) and one "prose" Document per post and article.
    Connections and messages are not read. Raises Skip when the export holds none of these."""
    sections: dict[str, list[dict]] = {}
    rels: dict[str, str] = {}
    count = 0
    for file in tree.files:
        stem = file.name.lower().removesuffix(".csv")
        if file.suffix != ".csv" or stem not in _CV_FILES or stem in sections:
            continue
        try:
            sections[stem] = read_csv_rows(file, _CV_FILES[stem][1], ctx)
            rels[stem] = file.rel
        except (Skip, OSError, EOFError, ValueError) as e:
            ctx.skip(file.rel, str(e))
    cv = _cv_text(sections)
    if cv:
        count += 1
        yield Document(text=cv, kind="cv", path=f"{rels.get('profile') or min(rels.values())}#cv",
                       metadata={"source": "linkedin", "sections": sorted(k for k, v in sections.items() if v)})
    for file in tree.files:
        if _SHARES.match(file.name):
            try:
                rows = read_csv_rows(file, _SHARE_COLUMNS, ctx)
            except (Skip, OSError, EOFError, ValueError) as e:
                ctx.skip(file.rel, str(e))
                continue
            for i, row in enumerate(rows):
                text = (row.get("ShareCommentary") or "").strip()
                if len(text) > 1 and text[0] == text[-1] == '"':  # LinkedIn sometimes quotes the whole post again
                    text = text[1:-1].strip()
                if text:
                    count += 1
                    yield Document(text=text, kind="prose", path=f"{file.rel}#{i}",
                                   metadata={"source": "linkedin", "date": row.get("Date", ""),
                                             "url": row.get("ShareLink", "")})
        elif "articles/" in file.rel.lower() and file.suffix in (".html", ".htm"):
            try:
                text = html_to_text(file.read_text(ctx.max_file_bytes))
            except (Skip, OSError, EOFError, ValueError) as e:
                ctx.skip(file.rel, str(e))
                continue
            if text:
                count += 1
                yield Document(text=text, kind="prose", path=file.rel, metadata={"source": "linkedin"})
    if count == 0:
        raise Skip("no LinkedIn profile, positions, education, skills, posts or articles in the export")


# ---------------------------------------------------------------- Notion

_NOTION_ID = re.compile(r"\s+([0-9a-f]{32}|[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})$")
_LOCAL_IMAGE = re.compile(r"!\[[^\]\n]*\]\((?![a-z][a-z0-9+.-]*:)[^)\n]*\)\n?", re.I)
_LOCAL_LINK = re.compile(r"\[([^\]\n]*)\]\((?![a-z][a-z0-9+.-]*:)[^)\n]*\)", re.I)


def notion_title(name: str) -> str:
    """A Notion file or folder name without its extension, ``_all`` suffix and 32-hex page id."""
    stem = unquote(name.rsplit("/", 1)[-1])
    for ext in (".md", ".csv"):
        stem = stem.removesuffix(ext)
    stem = stem.removesuffix("_all")
    return _NOTION_ID.sub("", stem).strip()


def _notion_page(file: SourceFile, ctx: Context) -> Document:
    text = file.read_text(ctx.max_file_bytes)
    text = _LOCAL_LINK.sub(r"\1", _LOCAL_IMAGE.sub("", text)).strip()
    title = notion_title(file.name)
    lines = text.split("\n", 1)
    if lines[0].startswith("# "):
        title = lines[0][2:].strip() or title
        body = lines[1].strip() if len(lines) > 1 else ""
    else:
        body = text
    if not body:
        raise Skip("empty page")
    parent = file.rel.rsplit("/", 2)
    meta = {"source": "notion", "title": title}
    if len(parent) == 3:
        meta["parent"] = notion_title(parent[1])
    return Document(text=f"# {title}\n\n{body}", kind="prose", path=file.rel, metadata=meta)


def _notion_database(file: SourceFile, ctx: Context) -> Document:
    text = file.read_text(ctx.max_file_bytes)
    try:
        rows = list(csv.reader(io.StringIO(text)))
    except csv.Error as e:
        raise Skip(f"malformed CSV: {e}") from None
    if len(rows) < 2:
        raise Skip("empty database")
    header = [h.strip() for h in rows[0]]
    title = notion_title(file.name)
    lines = [f"# {title}", ""]
    for row in rows[1:]:
        cells = [f"{h}: {v.strip()}" for h, v in zip(header, row, strict=False) if v.strip()]
        if cells:
            lines.append("; ".join(cells))
    if len(lines) == 2:
        raise Skip("empty database")
    return Document(text="\n".join(lines), kind="prose", path=file.rel,
                    metadata={"source": "notion", "title": title, "rows": len(lines) - 2})


def extract_notion(tree: SourceTree, ctx: Context) -> Iterator[Document]:
    """A Notion "Markdown & CSV" export -> one "prose" Document per page (.md, title without its id) and
    per database (``<name>_all.csv``, or ``<name>.csv`` when there is no ``_all`` file), rows rendered as
    ``column: value`` lines. Raises Skip when there is no usable page or database."""
    files = tree.files
    all_csvs = {f.rel[: -len("_all.csv")] for f in files if f.rel.endswith("_all.csv")}
    count = 0
    for file in files:
        try:
            if file.suffix == ".md":
                doc = _notion_page(file, ctx)
            elif file.suffix == ".csv":
                if file.rel[:-4] in all_csvs:
                    continue  # the filtered view of a database whose _all.csv is read instead
                doc = _notion_database(file, ctx)
            else:
                reason = ("Notion HTML export: export as Markdown & CSV" if file.suffix == ".html"
                          else "not a Notion page or database")
                ctx.skip(file.rel, reason)
                continue
        except (Skip, OSError, EOFError, ValueError) as e:
            ctx.skip(file.rel, str(e))
            continue
        count += 1
        yield doc
    if count == 0:
        raise Skip("no Notion page (.md) or database (.csv) with content in the export")
