"""Constitutions: the principles SL-CAI critiques and revises by, and RL-CAI compares responses by.

A ``Principle`` carries up to three requests, each stored as *bare text* (no framing):

* ``critique``: what the critique step asks ("Identify ways in which the response ..."); revise.py
  frames it as ``"\\n\\nCritiqueRequest: {critique}\\n\\nCritique:"``;
* ``revision``: what the revision step asks; framed as ``"\\n\\nRevisionRequest: {revision}\\n\\nRevision:"``;
* ``comparison``: the question a feedback model answers about two responses; label.py appends
  ``" Options:"`` and the options.

A principle needs a critique/revision pair, a comparison question, or both; revise samples only from
principles with a pair, label only from principles with a question. ``checker`` is ``"model"`` (the
feedback model judges) or ``"privacy"`` (the deterministic ``PrivacyRules`` of ``backends.py`` judge).

Three file formats are read, detected by suffix and shape:

1. Our own format, YAML (``.yaml``/``.yml``) or JSON::

       name: personal
       description: optional free text
       principles:
         - id: truthful                      # letters, digits, '_', '-', '.'; unique
           critique: Identify claims ...     # with revision: a critique/revision pair
           revision: Rewrite the response ...
           comparison: Which response ...    # optional when the pair is given, and vice versa
           weight: 2.0                       # sampling weight, > 0 (default 1)
           checker: model                    # model (default) or privacy

   Every key is checked: an unknown key, a missing field or a wrong type is a ValueError naming the
   file and the principle.
2. Anthropic's critique/revision instructions as published (``CritiqueRevisionInstructions.json``):
   ``{"harmful0": {"prompt": ["<critique request>"], "edit_request": "<revision request>"}, ...}``.
   The ids are the keys. The strings may or may not carry their transcript framing; leading
   ``CritiqueRequest:``/``RevisionRequest:`` labels and trailing ``Critique:``/``Revision:`` cues are
   stripped with the surrounding whitespace (see ``bare_request``), so both spellings give the same
   principle. (llm-swarm's ``{"constitutions": [{"critic", "revision"}, ...]}`` is read too.)
3. Anthropic's comparison principles (``RLMadisonInstructions.json``): a JSON list of strings, each
   ending in ``"Options:"``; that suffix and the surrounding whitespace are stripped. Ids are
   ``comparison0``, ``comparison1``, ...

``load_constitution`` takes a shipped name (``personal``, ``harmless``) or a path; ``combine`` joins
several constitutions (e.g. Anthropic's critique file with its comparison file) into one.
"""

from __future__ import annotations

import json
import math
import random
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

CHECKERS = ("model", "privacy")
SHIPPED_DIR = Path(__file__).resolve().parent / "constitutions"
_ID = re.compile(r"^[A-Za-z0-9_.-]+$")
_OWN_TOP_KEYS = {"name", "description", "principles"}
_OWN_KEYS = {"id", "critique", "revision", "comparison", "weight", "checker"}


@dataclass(frozen=True)
class Principle:
    """One principle: bare critique/revision requests and/or a comparison question, a weight, a checker."""

    id: str
    critique: str = ""
    revision: str = ""
    comparison: str = ""
    weight: float = 1.0
    checker: str = "model"

    @property
    def can_revise(self) -> bool:
        """True when the principle has a critique/revision pair (usable by ``flaxgpt cai revise``)."""
        return bool(self.critique and self.revision)

    @property
    def can_compare(self) -> bool:
        """True when the principle has a comparison question (usable by ``flaxgpt cai label``)."""
        return bool(self.comparison)


@dataclass(frozen=True)
class Constitution:
    """A named, ordered set of principles with unique ids."""

    name: str
    principles: tuple[Principle, ...]

    def __post_init__(self) -> None:
        seen: set[str] = set()
        for p in self.principles:
            if p.id in seen:
                raise ValueError(f"constitution {self.name!r}: principle id {p.id!r} appears twice")
            seen.add(p.id)

    def by_id(self, principle_id: str) -> Principle:
        """The principle called ``principle_id``; KeyError listing the known ids otherwise."""
        for p in self.principles:
            if p.id == principle_id:
                return p
        raise KeyError(f"constitution {self.name!r} has no principle {principle_id!r}; known: "
                       f"{', '.join(p.id for p in self.principles)}")

    def for_revision(self) -> Constitution:
        """The principles with a critique/revision pair; ValueError if there are none."""
        return self._subset([p for p in self.principles if p.can_revise], "a critique/revision pair")

    def for_comparison(self) -> Constitution:
        """The principles with a comparison question; ValueError if there are none."""
        return self._subset([p for p in self.principles if p.can_compare], "a comparison question")

    def _subset(self, principles: list[Principle], what: str) -> Constitution:
        if not principles:
            raise ValueError(f"constitution {self.name!r} has no principle with {what}")
        return Constitution(self.name, tuple(principles))

    def sample(self, rng: random.Random) -> Principle:
        """One principle drawn by weight, with replacement (the CAI paper draws one per step)."""
        if not self.principles:
            raise ValueError(f"constitution {self.name!r} has no principles")
        return rng.choices(self.principles, weights=[p.weight for p in self.principles])[0]


def bare_request(text: str, label: str, cue: str) -> str:
    """``text`` without its transcript framing: a leading ``label:`` and a trailing ``cue:`` are removed.

    ``bare_request("\\n\\nCritiqueRequest: Find harm.\\n\\nCritique:", "CritiqueRequest", "Critique")``
    and ``bare_request("Find harm.", ...)`` both give ``"Find harm."``.
    """
    text = text.strip()
    text = re.sub(rf"^{label}\s*:\s*", "", text)
    text = re.sub(rf"\s*(?<![A-Za-z]){cue}\s*:$", "", text)
    return text.strip()


def bare_question(text: str) -> str:
    """A comparison question without the trailing ``Options:`` (and surrounding whitespace)."""
    return re.sub(r"\s*Options\s*:$", "", text.strip()).strip()


# ------------------------------------------------------------------------------------------------ parsers


def _text(value: Any, where: str, key: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"{where}: {key!r} must be a non-empty string, got {value!r}")
    return value.strip()


def _own_principle(raw: Any, where: str) -> Principle:
    if not isinstance(raw, Mapping):
        raise ValueError(f"{where}: expected a mapping with keys {sorted(_OWN_KEYS)}, got {type(raw).__name__}")
    pid = raw.get("id")
    if not isinstance(pid, str) or not _ID.match(pid):
        raise ValueError(f"{where}: 'id' must be a string of letters, digits, '_', '-', '.', got {pid!r}")
    where = f"{where} ({pid})"
    unknown = set(raw) - _OWN_KEYS
    if unknown:
        raise ValueError(f"{where}: unknown key(s) {sorted(unknown)}; allowed: {sorted(_OWN_KEYS)}")
    has = {k: k in raw and raw[k] is not None for k in ("critique", "revision", "comparison")}
    if has["critique"] != has["revision"]:
        missing = "revision" if has["critique"] else "critique"
        raise ValueError(f"{where}: missing {missing!r} ('critique' and 'revision' come as a pair)")
    if not (has["critique"] or has["comparison"]):
        raise ValueError(f"{where}: missing fields: give 'critique' and 'revision', 'comparison', or all three")
    weight = raw.get("weight", 1.0)
    if isinstance(weight, bool) or not isinstance(weight, int | float) or not math.isfinite(weight) or weight <= 0:
        raise ValueError(f"{where}: 'weight' must be a positive number, got {weight!r}")
    checker = raw.get("checker", "model")
    if checker not in CHECKERS:
        raise ValueError(f"{where}: 'checker' must be one of {list(CHECKERS)}, got {checker!r}")
    return Principle(
        id=pid,
        critique=bare_request(_text(raw["critique"], where, "critique"), "CritiqueRequest", "Critique")
        if has["critique"] else "",
        revision=bare_request(_text(raw["revision"], where, "revision"), "RevisionRequest", "Revision")
        if has["revision"] else "",
        comparison=bare_question(_text(raw["comparison"], where, "comparison")) if has["comparison"] else "",
        weight=float(weight), checker=checker)


def parse_own(data: Any, source: str) -> Constitution:
    """Our own format (already parsed from YAML/JSON) -> Constitution; ``source`` names the file in errors."""
    if not isinstance(data, Mapping):
        raise ValueError(f"{source}: expected a mapping with keys 'name' and 'principles'")
    unknown = set(data) - _OWN_TOP_KEYS
    if unknown:
        raise ValueError(f"{source}: unknown top-level key(s) {sorted(unknown)}; allowed: {sorted(_OWN_TOP_KEYS)}")
    name = data.get("name", Path(source).stem)
    if not isinstance(name, str) or not name.strip():
        raise ValueError(f"{source}: 'name' must be a non-empty string, got {name!r}")
    if not isinstance(data.get("description", ""), str):
        raise ValueError(f"{source}: 'description' must be a string")
    raw = data.get("principles")
    if not isinstance(raw, list) or not raw:
        raise ValueError(f"{source}: 'principles' must be a non-empty list")
    principles = tuple(_own_principle(p, f"{source}: principle {i}") for i, p in enumerate(raw))
    try:
        return Constitution(name.strip(), principles)
    except ValueError as e:
        raise ValueError(f"{source}: {e}") from None


def parse_anthropic_critiques(data: Any, source: str) -> Constitution:
    """Anthropic's ``{"id": {"prompt": [critique], "edit_request": revision}}`` (or llm-swarm's) -> Constitution."""
    if isinstance(data, Mapping) and isinstance(data.get("constitutions"), list):  # llm-swarm's shape
        data = {f"principle{i}": {"prompt": [c.get("critic")] if isinstance(c, Mapping) else c,
                                  "edit_request": c.get("revision") if isinstance(c, Mapping) else None}
                for i, c in enumerate(data["constitutions"])}
    if not isinstance(data, Mapping) or not data:
        raise ValueError(f"{source}: expected an object of principles {{\"id\": {{\"prompt\", \"edit_request\"}}}}")
    principles = []
    for pid, entry in data.items():
        where = f"{source}: principle {pid!r}"
        if not isinstance(entry, Mapping) or set(entry) != {"prompt", "edit_request"}:
            keys = sorted(entry) if isinstance(entry, Mapping) else type(entry).__name__
            raise ValueError(f"{where}: expected exactly the keys ['edit_request', 'prompt'], got {keys}")
        prompt = entry["prompt"]
        if isinstance(prompt, list):  # published as a one-string list
            if len(prompt) != 1:
                raise ValueError(f"{where}: 'prompt' must hold exactly one critique request, got {len(prompt)}")
            prompt = prompt[0]
        critique = bare_request(_text(prompt, where, "prompt"), "CritiqueRequest", "Critique")
        revision = bare_request(_text(entry["edit_request"], where, "edit_request"), "RevisionRequest", "Revision")
        if not critique or not revision:
            raise ValueError(f"{where}: the request is empty once its framing is stripped")
        principles.append(Principle(id=str(pid), critique=critique, revision=revision))
    return Constitution(Path(source).stem, tuple(principles))


def parse_anthropic_comparisons(data: Any, source: str) -> Constitution:
    """Anthropic's comparison principles (a list of strings ending in "Options:") -> Constitution."""
    if not isinstance(data, list) or not data:
        raise ValueError(f"{source}: expected a non-empty list of comparison questions")
    principles = []
    for i, q in enumerate(data):
        question = bare_question(_text(q, f"{source}: item {i}", "question"))
        if not question:
            raise ValueError(f"{source}: item {i}: the question is empty once 'Options:' is stripped")
        principles.append(Principle(id=f"comparison{i}", comparison=question))
    return Constitution(Path(source).stem, tuple(principles))


# ------------------------------------------------------------------------------------------------ loading


def _read(path: Path) -> Any:
    text = path.read_text(encoding="utf-8-sig")
    try:
        if path.suffix.lower() in (".yaml", ".yml"):
            return yaml.safe_load(text)
        return json.loads(text)
    except (yaml.YAMLError, json.JSONDecodeError) as e:
        raise ValueError(f"{path}: not valid {'YAML' if path.suffix.lower() in ('.yaml', '.yml') else 'JSON'}: "
                         f"{e}") from None


def shipped_names() -> list[str]:
    """Names of the constitutions shipped with flaxgpt (``flaxgpt/cai/constitutions/*.yaml``)."""
    return sorted(p.stem for p in SHIPPED_DIR.glob("*.yaml"))


def load_constitution(path_or_name: str | Path) -> Constitution:
    """A constitution from a shipped name (``personal``, ``harmless``) or a file in any of the three formats.

    The format is detected: ``.yaml``/``.yml`` is our own format; ``.json`` is our own format when it
    is an object with ``principles``, Anthropic's comparison list when it is a list, and Anthropic's
    critique/revision object otherwise. Raises FileNotFoundError or ValueError naming the file.
    """
    spec = str(path_or_name)
    if spec in shipped_names() and not Path(spec).exists():
        path = SHIPPED_DIR / f"{spec}.yaml"
    else:
        path = Path(spec)
        if not path.is_file():
            raise FileNotFoundError(f"constitution not found: {spec!r} is neither a file nor a shipped name "
                                    f"({', '.join(shipped_names())})")
    suffix = path.suffix.lower()
    if suffix not in (".yaml", ".yml", ".json"):
        raise ValueError(f"{path}: expected a .yaml, .yml or .json constitution")
    data = _read(path)
    if suffix != ".json" or (isinstance(data, Mapping) and "principles" in data):
        return parse_own(data, str(path))
    if isinstance(data, list):
        return parse_anthropic_comparisons(data, str(path))
    return parse_anthropic_critiques(data, str(path))


def combine(constitutions: Sequence[Constitution], name: str | None = None) -> Constitution:
    """One constitution holding the principles of all, in order; ValueError when two share an id."""
    if not constitutions:
        raise ValueError("combine: no constitutions given")
    if len(constitutions) == 1 and name is None:
        return constitutions[0]
    principles = tuple(p for c in constitutions for p in c.principles)
    return Constitution(name or "+".join(c.name for c in constitutions), principles)


def load_constitutions(specs: Iterable[str | Path] = (), *, critiques: str | Path | None = None,
                       comparisons: str | Path | None = None) -> Constitution:
    """Loads and combines constitutions: names/paths (comma lists allowed), plus Anthropic's two files.

    ``critiques`` is a critique/revision instructions file and ``comparisons`` a comparison list
    (either format is also detected when passed in ``specs``). With nothing given: ``personal``.
    """
    names = [s.strip() for spec in specs for s in str(spec).split(",") if s.strip()]
    loaded = [load_constitution(s) for s in names]
    for path, parse in ((critiques, parse_anthropic_critiques), (comparisons, parse_anthropic_comparisons)):
        if path is not None:
            p = Path(path)
            if not p.is_file():
                raise FileNotFoundError(f"constitution file not found: {p}")
            loaded.append(parse(_read(p), str(p)))
    return combine(loaded or [load_constitution("personal")])
