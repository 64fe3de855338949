"""Privacy benchmark: recall and false positives of the real ``Scrubber`` on labelled sentences and the persona.

    python -m bench.privacy_bench [--strict] [--show 5] [--sets bench/privacy] [--persona examples/persona]

Reads every ``bench/privacy/*.jsonl`` (one set per file; each line ``{"text", "family", "leak", "keep"}``
and optionally ``"people"``, names passed to the scrubber as a chat export would) and scrubs each text with
the owner of ``bench/privacy/owner.json``. A positive (non-empty ``leak``) is found when none of its
``leak`` strings survives; a negative (empty ``leak``, its ``family`` the family it is a hard negative
for) is a false positive when the scrubber put a placeholder of that family's kind into it (``<NAME>`` for
the name families, a secret's for the secret families, any other family any placeholder; other personal
data replaced in a negative is counted apart). Per family: positives, negatives, recall,
false-positive rate, precision and how many rows kept all their ``keep`` strings.

Then the bundled persona's text files, each paragraph scrubbed as the ingest scrubs a document: a
sentence is a false positive when a secret placeholder (PRIVATE_KEY, AWS_KEY, TOKEN, PASSWORD, SECRET)
lands in it that covers none of the planted canaries of ``canaries.txt``.

Targets: recall >= 0.97 for every family with positives, false positives <= 1% of each set's negatives
and of the persona's sentences. Prints PASS/FAIL per target; exits 1 on a miss only with ``--strict``.
Writes nothing.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from flaxgpt.ingest.config import load_ingest_config
from flaxgpt.ingest.extract.base import Owner
from flaxgpt.ingest.privacy import Scrubber

ROOT = Path(__file__).resolve().parents[1]
SETS = ROOT / "bench" / "privacy"
PERSONA = ROOT / "examples" / "persona"
RECALL_TARGET = 0.97
FP_TARGET = 0.01
SECRET_LABELS = frozenset({"PRIVATE_KEY", "AWS_KEY", "TOKEN", "PASSWORD", "SECRET", "USERNAME"})
# What a false positive is for a hard negative of each family: a placeholder of the kind the family's finders put.
# Other personal data in a negative (a phone number, an IP address, a test card number) is replaced by policy;
# it is counted apart ("other personal data"), not as a false positive of the family.
NAME_FAMILIES = frozenset({"greeting", "signoff", "mid_sentence", "cv_reference", "title", "with_and", "mention"})
SECRET_FAMILIES = frozenset({"prose_password", "prose_pin", "prose_api_key", "login", "kv_password", "kv_secret"})


def family_labels(family: str) -> frozenset[str] | None:
    """The placeholder labels that make a false positive for a negative of ``family`` (None: any label)."""
    if family in NAME_FAMILIES:
        return frozenset({"NAME"})
    return SECRET_LABELS if family in SECRET_FAMILIES else None
# Persona files that are about the corpus, not part of it (sources.py says so), and generated lock files.
_PERSONA_SKIP = {"README.md", "canaries.txt", "facts.jsonl", "sources.py", "make_formats.py", "package-lock.json"}
_PERSONA_SUFFIXES = {".md", ".txt", ".eml", ".csv", ".tsv", ".py", ".toml", ".json"}
_SENTENCE_END = re.compile(r"\n|(?<=[.!?])\s+")


class LabelError(ValueError):
    """A labelled row that cannot be scored: names the file, line and field."""


@dataclass
class FamilyScore:
    """Counts for one family of one set."""

    positives: int = 0
    found: int = 0
    negatives: int = 0
    false_positives: int = 0
    other_pii: int = 0  # negatives where only other personal data (phone, IP, card, ...) was replaced
    keep_rows: int = 0
    keep_ok: int = 0
    # The scrubbed texts of missed positives, of false positives and of rows that lost a keep string.
    misses: list[str] = field(default_factory=list)
    fps: list[str] = field(default_factory=list)
    lost_keeps: list[str] = field(default_factory=list)

    @property
    def recall(self) -> float | None:
        return self.found / self.positives if self.positives else None

    @property
    def fp_rate(self) -> float | None:
        return self.false_positives / self.negatives if self.negatives else None

    @property
    def precision(self) -> float | None:
        flagged = self.found + self.false_positives
        return self.found / flagged if flagged else None


def load_owner(path: Path) -> tuple[Owner, tuple[str, ...]]:
    """The owner (names, emails, handles) and ``public`` allow-list from an owner JSON file."""
    data = json.loads(path.read_text(encoding="utf-8"))
    unknown = set(data) - {"names", "emails", "handles", "public"}
    if unknown:
        raise LabelError(f"{path}: unknown field(s) {sorted(unknown)}")
    owner = Owner(names=tuple(data.get("names", ())), emails=tuple(data.get("emails", ())),
                  handles=tuple(data.get("handles", ())))
    return owner, tuple(data.get("public", ()))


def load_rows(folder: Path) -> list[dict]:
    """Every row of every ``*.jsonl`` in ``folder``, with ``set`` (the file stem) added; checks each field."""
    rows = []
    for path in sorted(folder.glob("*.jsonl")):
        lines = path.read_text(encoding="utf-8").splitlines()
        rows += [{**_row(line, f"{path}:{n}"), "set": path.stem} for n, line in enumerate(lines, 1) if line.strip()]
    return rows


def _row(line: str, where: str) -> dict:
    """One labelled row, parsed and checked; LabelError naming ``where`` and the field otherwise."""
    try:
        row = json.loads(line)
    except json.JSONDecodeError as e:
        raise LabelError(f"{where}: not JSON ({e.msg})") from None
    for key, kind in (("text", str), ("family", str), ("leak", list), ("keep", list)):
        if not isinstance(row, dict) or not isinstance(row.get(key), kind):
            raise LabelError(f"{where}: field '{key}' missing or not a {kind.__name__}")
    for key in ("leak", "keep", "people"):
        values = row.get(key, [])
        if not isinstance(values, list) or not all(isinstance(s, str) and s for s in values):
            raise LabelError(f"{where}: field '{key}' must be a list of non-empty strings")
        missing = [s for s in values if key != "people" and s not in row["text"]]
        if missing:
            raise LabelError(f"{where}: field '{key}' names {missing[0]!r}, which is not in the text")
    return row


def score_rows(rows: Iterable[dict], scrubber: Scrubber) -> dict[tuple[str, str], FamilyScore]:
    """Scores each row through ``scrubber``; returns a FamilyScore per (set, family)."""
    scores: dict[tuple[str, str], FamilyScore] = {}
    for row in rows:
        s = scores.setdefault((row.get("set", ""), row["family"]), FamilyScore())
        result = scrubber.scrub(row["text"], people=tuple(row.get("people", ())))
        if row["leak"]:
            s.positives += 1
            if any(leak in result.text for leak in row["leak"]):
                s.misses.append(result.text)
            else:
                s.found += 1
        else:
            s.negatives += 1
            labels = family_labels(row["family"])
            if labels is None and result.counts or labels is not None and labels & set(result.counts):
                s.false_positives += 1
                s.fps.append(result.text)
            elif result.counts:
                s.other_pii += 1
        if row["keep"]:
            s.keep_rows += 1
            if all(k in result.text for k in row["keep"]):
                s.keep_ok += 1
            else:
                s.lost_keeps.append(result.text)
    return scores


def read_canaries(path: Path) -> list[str]:
    """The planted strings of a canaries file (one per line, '#' comments)."""
    lines = path.read_text(encoding="utf-8").splitlines()
    return [s.strip() for s in lines if s.strip() and not s.lstrip().startswith("#")]


def persona_units(folder: Path) -> Iterable[tuple[str, str]]:
    """(file, paragraph) for every paragraph of the persona's text files."""
    for path in sorted(folder.rglob("*")):
        rel = path.relative_to(folder)
        if (not path.is_file() or path.suffix not in _PERSONA_SUFFIXES or path.name in _PERSONA_SKIP
                or rel.parts[0] == "persona_writers"):
            continue
        text = path.read_text(encoding="utf-8", errors="replace")
        for paragraph in re.split(r"\n\s*\n", text):
            if paragraph.strip():
                yield str(rel), paragraph


def sentence_ranges(paragraph: str) -> list[tuple[int, int]]:
    """(start, end) of each sentence or line of a paragraph with at least three words."""
    out, pos = [], 0
    for m in [*_SENTENCE_END.finditer(paragraph), None]:
        end = m.start() if m else len(paragraph)
        if len(paragraph[pos:end].split()) >= 3:
            out.append((pos, end))
        pos = m.end() if m else end
    return out


def persona_false_positives(scrubber: Scrubber, folder: Path, canaries: Sequence[str]) -> tuple[int, list[str]]:
    """(sentences, false-positive sentences) of the persona: secret placeholders that cover no canary."""
    total, fps = 0, []
    parts = [line for c in canaries for line in c.splitlines() if line.strip()]
    for rel, paragraph in persona_units(folder):
        sentences = sentence_ranges(paragraph)
        total += len(sentences)
        result = scrubber.scrub(paragraph)
        if not SECRET_LABELS & set(result.counts):
            continue
        planted = [(i, i + len(c)) for c in parts for i in _occurrences(paragraph, c)]
        for start, end, label in result.spans:
            if label not in SECRET_LABELS or any(a < end and start < b for a, b in planted):
                continue
            for a, b in sentences:
                if a < end and start < b:
                    fps.append(f"{rel}: {paragraph[a:b]!r} ({label}: {paragraph[start:end]!r})")
    return total, sorted(set(fps))


def _occurrences(text: str, sub: str) -> Iterable[int]:
    i = text.find(sub)
    while i >= 0:
        yield i
        i = text.find(sub, i + 1)


def _fmt(x: float | None) -> str:
    return "  -  " if x is None else f"{x:.3f}"


def report(scores: dict[tuple[str, str], FamilyScore], persona: tuple[int, list[str]] | None,
           show: int) -> list[tuple[str, bool]]:
    """Prints the per-family table, examples of misses and the targets; returns (target, met) pairs."""
    print(f"{'set':10} {'family':18} {'pos':>4} {'neg':>4} {'recall':>7} {'FP rate':>8} {'precision':>9} {'keep':>9}")
    for (set_name, family), s in sorted(scores.items()):
        keep = f"{s.keep_ok}/{s.keep_rows}" if s.keep_rows else "-"
        print(f"{set_name:10} {family:18} {s.positives:4} {s.negatives:4} {_fmt(s.recall):>7} {_fmt(s.fp_rate):>8} "
              f"{_fmt(s.precision):>9} {keep:>9}")
    for (set_name, family), s in sorted(scores.items()):
        for what, examples in (("missed", s.misses), ("false positive", s.fps), ("lost keep", s.lost_keeps)):
            for text in examples[:show]:
                print(f"  {set_name}/{family} {what}: {text!r}")
    results = []
    for (set_name, family), s in sorted(scores.items()):
        if s.positives:
            recall = s.recall or 0.0
            results.append((f"recall {set_name}/{family} {recall:.3f} >= {RECALL_TARGET}", recall >= RECALL_TARGET))
    for set_name in sorted({k[0] for k in scores}):
        neg = sum(s.negatives for k, s in scores.items() if k[0] == set_name)
        fp = sum(s.false_positives for k, s in scores.items() if k[0] == set_name)
        other = sum(s.other_pii for k, s in scores.items() if k[0] == set_name)
        if other:
            print(f"  {set_name}: {other}/{neg} negatives had other personal data replaced (phones, IPs, cards, "
                  "addresses: replaced by policy, not counted as false positives)")
        if neg:
            results.append((f"false positives {set_name}: {fp}/{neg} = {fp / neg:.3f} <= {FP_TARGET}",
                            fp / neg <= FP_TARGET))
    if persona is not None:
        total, fps = persona
        for line in fps[:show]:
            print(f"  persona false positive: {line}")
        rate = len(fps) / total if total else 0.0
        results.append((f"false positives persona: {len(fps)}/{total} sentences = {rate:.4f} <= {FP_TARGET}",
                        rate <= FP_TARGET))
    for name, ok in results:
        print(f"{'PASS' if ok else 'FAIL'}  {name}")
    return results


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sets", type=Path, default=SETS, help="folder of labelled *.jsonl sets and owner.json")
    parser.add_argument("--persona", type=Path, default=PERSONA, help="persona folder (sources.py, canaries.txt)")
    parser.add_argument("--no-persona", action="store_true", help="skip the persona's false-positive count")
    parser.add_argument("--show", type=int, default=5, help="examples of misses and false positives per family")
    parser.add_argument("--strict", action="store_true", help="exit 1 when a target is missed")
    args = parser.parse_args(argv)
    try:
        owner, public = load_owner(args.sets / "owner.json")
        rows = load_rows(args.sets)
    except (OSError, LabelError) as e:
        print(f"privacy bench: {e}", file=sys.stderr)
        return 2
    scores = score_rows(rows, Scrubber(owner, public=public))
    persona = None
    if not args.no_persona:
        config = load_ingest_config(args.persona / "sources.py")
        o = config.owner
        persona_scrubber = Scrubber(Owner(names=tuple(o.names), emails=tuple(o.emails), handles=tuple(o.handles)),
                                    public=tuple(o.public))
        persona = persona_false_positives(persona_scrubber, args.persona, read_canaries(args.persona / "canaries.txt"))
    results = report(scores, persona, args.show)
    return 1 if args.strict and not all(ok for _, ok in results) else 0


if __name__ == "__main__":
    sys.exit(main())
