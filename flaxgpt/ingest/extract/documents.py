"""The per-file extractors for documents, by lower-case file suffix."""

from __future__ import annotations

from collections.abc import Callable, Iterator

from flaxgpt.ingest.extract.base import Context, Document, SourceFile
from flaxgpt.ingest.extract.office import extract_docx, extract_pptx
from flaxgpt.ingest.extract.pdf import extract_pdf
from flaxgpt.ingest.extract.web import extract_html, extract_notebook, extract_text_file

DOCUMENT_EXTRACTORS: dict[str, Callable[[SourceFile, Context], Iterator[Document]]] = {
    ".pdf": extract_pdf,
    ".docx": extract_docx,
    ".pptx": extract_pptx,
    ".html": extract_html,
    ".htm": extract_html,
    ".md": extract_text_file,
    ".markdown": extract_text_file,
    ".rst": extract_text_file,
    ".txt": extract_text_file,
    ".text": extract_text_file,
    ".ipynb": extract_notebook,
}
