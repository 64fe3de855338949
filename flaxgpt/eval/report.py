"""An evaluation result (flaxgpt.eval.runner) -> report.json, report.md and a self-contained report.html.

The headline table has the runs as columns and one row per suite headline (and per other metric with
a target in ``TARGETS``), each value marked pass/fail against its target. A suite a run could not
run shows as "missing (why)", never as a number. The HTML page inlines its CSS and its plots
(base64 PNGs drawn with matplotlib's Agg backend): the headline metrics per run as bars with their
targets, per-principle adherence, each run's loss curves (its metrics.jsonl), and tables of the worst
examples (unsafe responses, missed facts, principle violations, wrongly ordered comparisons). All
text is HTML-escaped.
"""

from __future__ import annotations

import base64
import html
import io
import json
import math
from pathlib import Path
from typing import Any

from flaxgpt.train.logger import pyplot, read_metrics

PASS, FAIL = "✓", "✗"
RATE_WORDS = ("accuracy", "rate", "adherence", "exact", "p_safe")  # metrics shown as percentages
EXAMPLES_MD, EXAMPLES_HTML = 5, 10  # worst examples per run and suite
CELL_CHARS = 400  # longer texts are cut in tables

# suite -> (which details are examples, the columns shown, the title of their table)
WORST: dict[str, tuple[Any, tuple[str, ...], str]] = {
    "safety": (lambda d: d.get("safe") is False, ("prompt", "response", "p_safe"), "Unsafe responses"),
    "facts": (lambda d: d.get("match") is False, ("question", "answers", "response"), "Missed facts"),
    "adherence": (lambda d: "p_follows" in d, ("principle", "prompt", "response", "p_follows"),
                  "Principle violations"),
    "revision": (lambda d: d.get("win") == 0.0, ("principle", "previous", "revision"), "Revisions judged worse"),
    "helpfulness": (lambda d: d.get("win") == 0.0, ("prompt", "response", "baseline_response"),
                    "Responses judged less helpful than the baseline"),
    "comparison": (lambda d: d.get("correct") is False, ("prompt", "chosen", "rejected", "margin"),
                   "Comparisons ordered wrongly"),
}


# ------------------------------------------------------------------------------------------------ values


def is_rate(key: str) -> bool:
    """Whether a metric is a share (shown as a percentage)."""
    return any(w in key for w in RATE_WORDS)


def fmt(key: str, value: Any) -> str:
    """A metric value for display."""
    if not isinstance(value, int | float):
        return str(value)
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if is_rate(key):
        return f"{100 * value:.1f}%"
    if key == "n" or key.endswith("/n"):
        return f"{int(value):,}"
    return f"{value:.4g}"


def target_text(key: str, targets: dict) -> str:
    """'< 30' / '> 90.0%' for a metric with a target, else ''."""
    if key not in targets:
        return ""
    op, threshold = targets[key]
    return f"{op} {fmt(key, threshold)}"


def passes(key: str, value: float, targets: dict) -> bool | None:
    """Whether ``value`` meets the target of ``key`` (None: no target)."""
    if key not in targets or not isinstance(value, int | float):
        return None
    op, threshold = targets[key]
    return value < threshold if op == "<" else value > threshold


def headline_rows(result: dict) -> list[tuple[str, str | None]]:
    """(suite, metric) rows of the headline table: each suite's headline, then its other metrics with a target;
    (suite, None) for a suite no run has numbers for."""
    targets = result.get("targets", {})
    rows: list[tuple[str, str | None]] = []
    for name in result["suites"]:
        keys: list[str] = []
        for run in result["runs"].values():
            r = run["suites"].get(name) or {}
            if r.get("missing_reason") is None and r.get("metrics"):
                keys += [k for i, k in enumerate(r["metrics"]) if (i == 0 or k in targets) and k not in keys]
        rows += [(name, k) for k in keys] or [(name, None)]
    return rows


def cell(result: dict, run: str, suite: str, key: str | None) -> tuple[str, bool | None]:
    """(display text, passed) of one run's metric; 'missing (why)' for a suite it could not run."""
    r = result["runs"][run]["suites"].get(suite)
    if r is None:
        return "not run", None
    if r.get("missing_reason") is not None:
        return f"missing ({r['missing_reason']})", None
    if key is None or key not in r["metrics"]:
        return "–", None
    value = r["metrics"][key]
    ok = passes(key, value, result.get("targets", {}))
    return fmt(key, value) + ("" if ok is None else f" {PASS if ok else FAIL}"), ok


# ------------------------------------------------------------------------------------------------ markdown


def _md(text: Any, html_safe: bool = False) -> str:
    """A Markdown table cell: one line, pipes escaped, cut to CELL_CHARS; ``html_safe`` also escapes < and > (model
    and prompt text, which a Markdown viewer would otherwise render as HTML)."""
    text = str(text).replace("\r", " ").replace("\n", " ").replace("|", "\\|")
    text = text if len(text) <= CELL_CHARS else text[:CELL_CHARS] + "…"
    return text.replace("<", "&lt;").replace(">", "&gt;") if html_safe else text


def headline_markdown(result: dict) -> str:
    """The headline table as Markdown (also what the CLI prints)."""
    runs = list(result["runs"])
    targets = result.get("targets", {})
    lines = ["| suite | metric | target | " + " | ".join(map(_md, runs)) + " |",
             "|---|---|---|" + "---|" * len(runs)]
    for suite, key in headline_rows(result):
        cells = [_md(cell(result, run, suite, key)[0]) for run in runs]
        lines.append(f"| {suite} | {key or '–'} | {target_text(key, targets) if key else ''} | "
                     + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def _examples(result: dict, suite: str, run: str) -> list[dict]:
    r = result["runs"][run]["suites"].get(suite) or {}
    if suite not in WORST or r.get("missing_reason") is not None:
        return []
    keep = WORST[suite][0]
    return [d for d in r.get("details", []) if isinstance(d, dict) and keep(d)]


def render_markdown(result: dict) -> str:
    """report.md: the headline table, every metric per suite, a few worst examples per run."""
    runs = list(result["runs"])
    out = ["# Evaluation report", "", "Runs: " + ", ".join(f"**{_md(n)}** (`{_md(r['run_dir'])}`)"
                                                         for n, r in result["runs"].items()), "",
           "## Headline", "", headline_markdown(result), "## All metrics", ""]
    for suite in result["suites"]:
        keys: list[str] = []
        for run in runs:
            r = result["runs"][run]["suites"].get(suite) or {}
            keys += [k for k in r.get("metrics", {}) if k not in keys]
        out += [f"### {suite}", "", "| metric | " + " | ".join(map(_md, runs)) + " |", "|---|" + "---|" * len(runs)]
        for key in keys or [None]:
            out.append(f"| {key or '–'} | " + " | ".join(_md(cell(result, run, suite, key)[0]) for run in runs) + " |")
        out.append("")
    for suite, (_, cols, title) in WORST.items():
        for run in runs:
            ex = _examples(result, suite, run)[:EXAMPLES_MD]
            if ex:
                out += [f"## {title}: {_md(run)}", "", "| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
                out += ["| " + " | ".join(_md(_value(d.get(c)), html_safe=True) for c in cols) + " |" for d in ex]
                out.append("")
    return "\n".join(out)


def _value(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:.4g}"
    if isinstance(v, list):
        return " / ".join(map(str, v))
    return "" if v is None else str(v)


# ------------------------------------------------------------------------------------------------ plots


def _png(fig) -> str:
    buf = io.BytesIO()
    fig.tight_layout()
    fig.savefig(buf, format="png", dpi=100)
    pyplot().close(fig)
    return base64.b64encode(buf.getvalue()).decode("ascii")


def _run_colors(plt, runs: list[str]) -> dict[str, str]:
    """One colour per run, the same in every plot."""
    cycle = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    return {run: cycle[i % len(cycle)] for i, run in enumerate(runs)}


def plot_headlines(result: dict) -> str | None:
    """Base64 PNG: one panel per headline row, a bar per run (none where missing), the target dashed."""
    rows = [(s, k) for s, k in headline_rows(result) if k is not None]
    if not rows:
        return None
    plt = pyplot()
    runs = list(result["runs"])
    cols = min(4, len(rows))
    nrows = -(-len(rows) // cols)
    fig, axes = plt.subplots(nrows, cols, figsize=(3.4 * cols, 2.8 * nrows), squeeze=False)
    colors = _run_colors(plt, runs)
    for ax, (suite, key) in zip(axes.flat, rows, strict=False):
        for i, run in enumerate(runs):
            r = result["runs"][run]["suites"].get(suite) or {}
            v = (r.get("metrics") or {}).get(key) if r.get("missing_reason") is None else None
            if isinstance(v, int | float) and math.isfinite(v):
                ax.bar(i, 100 * v if is_rate(key) else v, color=colors[run])
            else:
                ax.text(i, 0, "missing", rotation=90, ha="center", va="bottom", fontsize=8, color="gray")
        if key in result.get("targets", {}):
            t = result["targets"][key][1]
            ax.axhline(100 * t if is_rate(key) else t, ls="--", color="black", lw=1, label="target")
        ax.set_xlim(-0.6, len(runs) - 0.4)
        ax.set_xticks(range(len(runs)), runs, rotation=30, ha="right", fontsize=8)
        ax.set_title(f"{suite}: {key}" + (" (%)" if is_rate(key) else ""), fontsize=9)
        ax.grid(axis="y", alpha=0.3)
    for ax in list(axes.flat)[len(rows):]:
        ax.axis("off")
    return _png(fig)


def plot_adherence(result: dict) -> str | None:
    """Base64 PNG of per-principle adherence, grouped by principle, a bar per run; None without any."""
    per_run = {run: {k.split("/", 1)[1]: v for k, v in ((r["suites"].get("adherence") or {}).get("metrics")
                                                         or {}).items() if k.startswith("adherence/")}
               for run, r in result["runs"].items()}
    per_run = {run: m for run, m in per_run.items() if m}  # runs without adherence get no empty legend entry
    principles = sorted({p for m in per_run.values() for p in m})
    if not principles:
        return None
    plt = pyplot()
    colors = _run_colors(plt, list(result["runs"]))
    fig, ax = plt.subplots(figsize=(max(6, 1.1 * len(principles) + 2), 3.6))
    width = 0.8 / len(per_run)
    for i, (run, m) in enumerate(per_run.items()):
        xs = [j - 0.4 + (i + 0.5) * width for j, p in enumerate(principles) if p in m]
        ax.bar(xs, [100 * m[p] for p in principles if p in m], width, label=run, color=colors[run])
    target = result.get("targets", {}).get("min_adherence")
    if target:
        ax.axhline(100 * target[1], ls="--", color="black", lw=1, label="target")
    ax.set_xticks(range(len(principles)), principles, rotation=30, ha="right")
    ax.set_ylabel("responses following it (%)")
    ax.set_ylim(0, 105)
    ax.legend(fontsize=8)
    ax.grid(axis="y", alpha=0.3)
    return _png(fig)


def plot_losses(result: dict) -> str | None:
    """Base64 PNG of each run's training (solid) and validation (dashed) loss; None when no run logged any."""
    curves = {}
    for run, r in result["runs"].items():
        records = read_metrics(r["run_dir"])
        train = [(x["step"], x["loss"]) for x in records if x.get("kind") == "train"
                 and isinstance(x.get("loss"), int | float)]
        val = [(x["step"], x["val_loss"]) for x in records if x.get("kind") == "eval"
               and isinstance(x.get("val_loss"), int | float)]
        if train or val:
            curves[run] = (train, val)
    if not curves:
        return None
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(7, 3.8))
    colors = _run_colors(plt, list(result["runs"]))
    for run, (train, val) in curves.items():
        c = colors[run]
        if train:
            ax.plot(*zip(*train, strict=True), color=c, lw=1.2, label=f"{run} train")
        if val:
            ax.plot(*zip(*val, strict=True), "o--", color=c, lw=1.2, ms=3, label=f"{run} validation")
    ax.set_xlabel("step")
    ax.set_ylabel("loss")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    return _png(fig)


# ------------------------------------------------------------------------------------------------ html

CSS = """body{font-family:system-ui,sans-serif;margin:2em auto;max-width:1200px;color:#222;padding:0 1em}
table{border-collapse:collapse;margin:1em 0;font-size:14px}th,td{border:1px solid #ccc;padding:4px 8px;
vertical-align:top;text-align:left}th{background:#f3f3f3}td.pass{background:#e6f4e6}td.fail{background:#fbe3e3}
td.missing{color:#777;font-style:italic}td.text{max-width:420px;white-space:pre-wrap;word-break:break-word}
img{max-width:100%;border:1px solid #eee;margin:0.5em 0}code{background:#f3f3f3;padding:0 3px}"""


def _esc(v: Any) -> str:
    text = _value(v)
    return html.escape(text if len(text) <= CELL_CHARS else text[:CELL_CHARS] + "…")


def _html_headline(result: dict) -> str:
    runs = list(result["runs"])
    targets = result.get("targets", {})
    out = ["<table><tr><th>suite</th><th>metric</th><th>target</th>"
           + "".join(f"<th>{html.escape(r)}</th>" for r in runs) + "</tr>"]
    for suite, key in headline_rows(result):
        tds = []
        for run in runs:
            text, ok = cell(result, run, suite, key)
            cls = "missing" if text.startswith(("missing", "not run")) else {True: "pass", False: "fail"}.get(ok, "")
            tds.append(f'<td class="{cls}">{html.escape(text)}</td>')
        out.append(f"<tr><td>{html.escape(suite)}</td><td>{html.escape(key or '–')}</td>"
                   f"<td>{html.escape(target_text(key, targets) if key else '')}</td>{''.join(tds)}</tr>")
    return "".join(out) + "</table>"


def _img(data: str | None, alt: str) -> str:
    return "" if data is None else f'<img alt="{html.escape(alt)}" src="data:image/png;base64,{data}">'


def render_html(result: dict) -> str:
    """report.html: the headline table, plots and worst-example tables in one self-contained page."""
    runs = list(result["runs"])
    parts = ["<!DOCTYPE html><html><head><meta charset='utf-8'><title>flaxgpt evaluation</title>",
             f"<style>{CSS}</style></head><body><h1>Evaluation report</h1><ul>"]
    parts += [f"<li><b>{html.escape(n)}</b>: <code>{html.escape(r['run_dir'])}</code></li>"
              for n, r in result["runs"].items()]
    parts.append("</ul><h2>Headline</h2>" + _html_headline(result))
    judge = (result.get("context") or {}).get("judge")
    parts.append(f"<p>Judge: {html.escape(str(judge or 'none'))}. Missing means the suite could not run on that "
                 "run (the reason follows); it is never counted as a zero.</p>")
    for title, data in (("Headline metrics per run", plot_headlines(result)),
                        ("Adherence per principle", plot_adherence(result)),
                        ("Loss curves", plot_losses(result))):
        if data is not None:
            parts.append(f"<h2>{html.escape(title)}</h2>{_img(data, title)}")
    parts.append("<h2>All metrics</h2>")
    for suite in result["suites"]:
        keys: list[str] = []
        for run in runs:
            keys += [k for k in (result["runs"][run]["suites"].get(suite) or {}).get("metrics", {}) if k not in keys]
        rows = "".join(f"<tr><td>{html.escape(k or '–')}</td>"
                       + "".join(f"<td>{html.escape(cell(result, run, suite, k)[0])}</td>" for run in runs) + "</tr>"
                       for k in keys or [None])
        parts.append(f"<h3>{html.escape(suite)}</h3><table><tr><th>metric</th>"
                     + "".join(f"<th>{html.escape(r)}</th>" for r in runs) + f"</tr>{rows}</table>")
    for suite, (_, cols, title) in WORST.items():
        for run in runs:
            ex = _examples(result, suite, run)[:EXAMPLES_HTML]
            if not ex:
                continue
            head = "".join(f"<th>{html.escape(c)}</th>" for c in cols)
            body = "".join("<tr>" + "".join(f'<td class="text">{_esc(d.get(c))}</td>' for c in cols) + "</tr>"
                           for d in ex)
            parts.append(f"<h2>{html.escape(title)}: {html.escape(run)}</h2><table><tr>{head}</tr>{body}</table>")
    parts.append("</body></html>")
    return "\n".join(parts)


def write_report(result: dict, out_dir: str | Path) -> dict[str, Path]:
    """Writes report.json, report.md and report.html into ``out_dir``; returns {'json', 'md', 'html'} paths."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = {"json": out / "report.json", "md": out / "report.md", "html": out / "report.html"}
    paths["json"].write_text(json.dumps(result, indent=2, ensure_ascii=False, default=_json_default) + "\n",
                             encoding="utf-8")
    paths["md"].write_text(render_markdown(result), encoding="utf-8")
    paths["html"].write_text(render_html(result), encoding="utf-8")
    return paths


def _json_default(v: Any) -> Any:
    if hasattr(v, "tolist"):  # numpy scalars and arrays in details
        return v.tolist()
    return str(v)
