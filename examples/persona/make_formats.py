"""Build the persona's binary and export formats from the source text in ``src/``.

Usage::

    python examples/persona/make_formats.py [OUT_DIR]      # default: examples/persona itself

Writes, under OUT_DIR:

    cv/ines-halvorsen-cv.pdf, cv/ines-halvorsen-cv.docx   from src/cv.md
    slides/nordml-2023-talk.pptx                          from src/slides/nordml-2023-talk.md
    blog-html/*.html                                      from src/blog-html/*.md
    code/tidewater.bundle                                 from src/tidewater/ (history in persona_writers/git.py)
    mail/ines.mbox                                        from src/mail/*.eml
    chat/slack-export.zip, chat/discord-export.json       from src/slack/, src/discord/
    linkedin/linkedin-export.zip                          from src/linkedin/*.csv
    notebooks/plot-your-schedule.ipynb                    from src/notebooks/plot-your-schedule.py

The output is deterministic: the same bytes on every run (fixed document dates, PDF creation date and
id, zip member dates, git author/committer names and dates). The built files are committed, so nobody
needs the writer libraries (fpdf2, python-docx, python-pptx, git) to use the persona; this script
records how they were made. tests/test_persona.py checks that the committed files match a fresh build.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
if str(HERE) not in sys.path:  # imported by path (the tests); appended so it never shadows other modules
    sys.path.append(str(HERE))

from persona_writers.chat import write_chat  # noqa: E402
from persona_writers.cv import write_cv  # noqa: E402
from persona_writers.git import write_bundle  # noqa: E402
from persona_writers.html import write_blog_html  # noqa: E402
from persona_writers.linkedin import write_linkedin  # noqa: E402
from persona_writers.mail import write_mbox  # noqa: E402
from persona_writers.notebook import write_notebooks  # noqa: E402
from persona_writers.slides import write_slides  # noqa: E402

WRITERS = (write_cv, write_slides, write_blog_html, write_bundle, write_mbox, write_chat, write_linkedin,
           write_notebooks)


def build(out: Path = HERE) -> list[Path]:
    """Write every built format under ``out``; returns the written paths."""
    out = Path(out)
    return [path for writer in WRITERS for path in writer(out)]


def main(argv: list[str] | None = None) -> int:
    """Command line: build into OUT_DIR (default: this folder) and list what was written."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("out", nargs="?", type=Path, default=HERE, help="output folder (default: %(default)s)")
    args = parser.parse_args(argv)
    for path in build(args.out):
        print(f"{path.stat().st_size:>8}  {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
