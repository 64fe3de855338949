"""Blog posts as full HTML pages (site navigation, sidebar, cookie notice, footer around the article)
from ``src/blog-html/*.md``. An HTML extractor has to pull the article out of the page chrome."""

from __future__ import annotations

import html
import re
from datetime import datetime
from pathlib import Path

from .common import OWNER_EMAIL, OWNER_NAME, SRC, inline_runs, markdown_blocks, write_bytes

_TAGS = {"b": "strong", "i": "em", "code": "code"}

_PAGE = """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title} | {owner}</title>
<meta name="description" content="{description}">
<meta property="og:title" content="{title}">
<meta property="og:type" content="article">
<link rel="stylesheet" href="/assets/site.css">
<link rel="alternate" type="application/rss+xml" title="{owner}" href="/feed.xml">
<script>
  // privacy-friendly page counter: no cookies, no personal data
  window.counter = window.counter || [];
  window.counter.push(["page", location.pathname]);
</script>
</head>
<body>
<div class="cookie-notice" role="dialog">This site uses no cookies. This notice is here out of habit.
  <button type="button">OK</button></div>
<header class="site-header">
  <a class="site-title" href="/">{owner}</a>
  <nav class="site-nav" aria-label="Main">
    <ul>
      <li><a href="/">Home</a></li>
      <li><a href="/blog/" aria-current="page">Blog</a></li>
      <li><a href="/talks/">Talks</a></li>
      <li><a href="/projects/">Projects</a></li>
      <li><a href="/about/">About</a></li>
    </ul>
  </nav>
</header>
<div class="layout">
<main id="content">
<article class="post h-entry">
<header class="post-header">
<h1 class="p-name">{title}</h1>
<p class="post-meta"><time class="dt-published" datetime="{iso}">{date}</time> &middot; {tags}</p>
</header>
<div class="post-body e-content">
{body}
</div>
</article>
<nav class="post-nav" aria-label="More posts">
  <a rel="prev" href="/blog/">&larr; Older posts</a>
  <a rel="next" href="/blog/">Newer posts &rarr;</a>
</nav>
</main>
<aside class="sidebar">
  <section class="widget about">
    <h2>About</h2>
    <p>I train small language models at Lanternfish AI in Rotterdam and maintain shardcat, sievekit,
    tickmark and cadenza. I also play the piano, slowly.</p>
  </section>
  <section class="widget recent">
    <h2>Recent posts</h2>
    <ul>
{recent}
    </ul>
  </section>
  <section class="widget tags">
    <h2>Tags</h2>
    <p><a href="/tags/data/">data</a> <a href="/tags/jax/">jax</a> <a href="/tags/pretraining/">pretraining</a>
    <a href="/tags/piano/">piano</a> <a href="/tags/running/">running</a> <a href="/tags/life/">life</a></p>
  </section>
  <section class="widget newsletter">
    <h2>Newsletter</h2>
    <p>One e-mail when there is a new post. Nothing else, ever.</p>
    <form action="/subscribe" method="post">
      <label for="email">E-mail address</label>
      <input id="email" name="email" type="email" placeholder="you@example.com">
      <button type="submit">Subscribe</button>
    </form>
  </section>
</aside>
</div>
<footer class="site-footer">
  <p>&copy; 2019&ndash;2024 {owner}. Text licensed CC BY 4.0; code samples MIT.</p>
  <p><a href="/feed.xml">RSS</a> &middot; <a href="mailto:{email}">{email}</a> &middot;
  <a href="https://github.com/ihalvorsen-example">GitHub</a></p>
  <p class="colophon">Built with a static site generator and too much care about the dataloader.</p>
</footer>
</body>
</html>
"""

_RECENT = [
    ("2024-12-29-2024-in-numbers", "2024 in numbers"),
    ("2024-10-13-read-the-data", "Read the data before you train on it"),
    ("2024-09-08-small-models-honest-evals", "Small models, honest evals"),
    ("2024-05-26-nine-days-on-the-rota-vicentina", "Nine days on the Rota Vicentina"),
    ("2024-02-11-a-loss-spike-postmortem", "A loss spike postmortem"),
]


def _inline(text: str) -> str:
    out = []
    for style, part in inline_runs(text):
        part = html.escape(part, quote=False)
        out.append(f"<{_TAGS[style]}>{part}</{_TAGS[style]}>" if style else part)
    return "".join(out)


def render_post(source: str) -> str:
    """One post's Markdown (``# title``, ``*date*``, ``tags: a, b``, body) -> a full HTML page."""
    blocks = markdown_blocks(source)
    title = blocks[0].text
    date = blocks[1].text.strip("*")
    tags = [t.strip() for t in blocks[2].text.removeprefix("tags:").split(",")]
    body: list[str] = []
    open_list = ""
    for block in blocks[3:]:
        tag = ("ol" if block.ordered else "ul") if block.kind == "li" else ""
        if open_list and tag != open_list:
            body.append(f"</{open_list}>")
            open_list = ""
        if tag and not open_list:
            body.append(f"<{tag}>")
            open_list = tag
        if block.kind == "li":
            body.append(f"<li>{_inline(block.text)}</li>")
        elif block.kind.startswith("h"):
            body.append(f"<h2>{_inline(block.text)}</h2>")
        else:
            body.append(f"<p>{_inline(block.text)}</p>")
    if open_list:
        body.append(f"</{open_list}>")
    first = next(b.text for b in blocks[3:] if b.kind == "p")
    return _PAGE.format(
        title=html.escape(title), owner=OWNER_NAME, email=OWNER_EMAIL, date=date,
        iso=datetime.strptime(date, "%d %B %Y").date().isoformat(),
        description=html.escape(re.sub(r"\s+", " ", first)[:150], quote=True),
        tags=", ".join(f'<a href="/tags/{t}/">{t}</a>' for t in tags), body="\n".join(body),
        recent="\n".join(f'      <li><a href="/blog/{slug}/">{html.escape(t)}</a></li>' for slug, t in _RECENT),
    )


def write_blog_html(out: Path) -> list[Path]:
    """Write ``blog-html/<post>.html`` for every ``src/blog-html/<post>.md`` under ``out``."""
    return [write_bytes(out / "blog-html" / f"{md.stem}.html", render_post(md.read_text("utf-8")).encode())
            for md in sorted((SRC / "blog-html").glob("*.md"))]
