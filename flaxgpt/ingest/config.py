"""The sources config of ``flaxgpt ingest``: whose corpus it is, where their files are, and what to keep.

A sources config is an ml_collections ``get_config()`` file like every flaxgpt config::

    config.owner = {"names": [...], "emails": [...], "handles": [...], "public": [...]}
    config.sources = {"cv": {"kind": "documents", "path": "cv", "doc_kind": "cv"},
                      "code": {"kind": "git", "path": "code/repo.bundle", "weight": 0.5, "commit_messages": True},
                      ...}

Paths are relative to the config file. Every key the user leaves out takes its default from
``default_ingest_config`` (top level) or ``SOURCE_DEFAULTS`` (per source); an unknown key or a
wrong type is a ``ConfigError`` naming it, like the training config.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import ml_collections

from flaxgpt.config import ConfigError, coerce_value, parse_value, read_config_file
from flaxgpt.ingest.extract.base import KINDS

# What each source kind reads. documents: a folder/file/zip of PDF, DOCX, PPTX, HTML, Markdown, text,
# notebooks and code files. text: a general corpus folder of text files. tfds: a prepared TFDS dataset.
SOURCE_KINDS = ("documents", "git", "mbox", "slack", "discord", "linkedin", "notion", "text", "tfds")

SOURCE_DEFAULTS: dict[str, Any] = {
    "kind": "documents",
    "path": "",  # relative to the config file; for tfds, the data_dir ('' = TFDS's default)
    "weight": 1.0,  # share of training tokens, relative to the other sources (the loader normalises)
    "include": (),  # glob patterns: only matching files are read ('' = all)
    "exclude": (),  # glob patterns: matching files and folders are skipped
    "doc_kind": "",  # force every document of this source to one kind (prose, code, chat, email, cv, slides)
    "owner_only": True,  # mail and chat: keep only the owner's messages and the conversations they wrote in
    "commit_messages": False,  # git: also keep the owner's commit messages as one document
    "scrub": True,  # replace secrets and PII (general public corpora may turn it off for speed)
    "quality": True,  # apply the quality filters of the document's kind
    "dataset": "",  # tfds: dataset name, e.g. 'wikipedia/20230601.en'
    "split": "train",  # tfds: split to read
    "text_key": "text",  # tfds: feature holding the text
    "max_documents": 0,  # stop after this many documents (0 = all); for sampling a large general corpus
}


def default_ingest_config() -> ml_collections.ConfigDict:
    """Every top-level ingest setting with its default (``sources`` empty)."""
    c = ml_collections.ConfigDict()
    c.owner = ml_collections.ConfigDict({
        "names": (),  # the owner's names: their messages are kept, their name is never scrubbed
        "emails": (),  # the owner's addresses: pick their sent mail; kept verbatim
        "handles": (),  # chat and git identities (Slack ids or names, Discord names, git author names)
        "public": (),  # other public details to keep verbatim (website, public work address, ...)
    })
    c.sources = ml_collections.ConfigDict()
    c.tokenizer = "flaxgpt"  # 'gpt2' or 'flaxgpt' (GPT-2 plus chat and constitutional special tokens)
    c.personal_vocab = 0  # add up to N frequent corpus terms that GPT-2 splits into many pieces (0 = off)
    c.val_fraction = 0.05  # share of documents held out for validation, chosen by a hash of the document id
    c.max_val_share = 0.1  # most of a source's text validation may take: the rest trains (tiny sources)
    c.workers = 0  # extraction processes (0 = one per CPU core)
    c.dedup = ml_collections.ConfigDict({
        "exact": True,  # drop documents whose normalised text was already seen
        "paragraphs": True,  # strip paragraphs repeated across documents (footers, disclaimers)
        "near": True,  # MinHash LSH near-duplicate documents (5-word shingles, 14 bands x 8 rows)
        "threshold": 0.8,  # estimated Jaccard at or above which a near-duplicate is dropped
    })
    c.quality = ml_collections.ConfigDict({
        "enabled": True,
        "languages": (),  # ISO codes to keep, e.g. ('en', 'nl'); empty keeps every language
        "min_language_score": 0.5,  # below this, the detected language is not trusted for the languages filter
        "perplexity_run": "",  # a flaxgpt run directory whose model scores documents ('' = off)
        "perplexity_max": 10000.0,  # drop documents whose perplexity under that model is above this
    })
    return c


def _merge(target: ml_collections.ConfigDict, values: Any, where: str) -> None:
    """Copies ``values`` onto ``target`` key by key, checking each key exists and each type fits."""
    items = values.items() if hasattr(values, "items") else None
    if items is None:
        raise ConfigError(f"config key '{where}' must be a section (a dict), got {values!r}")
    for key, value in items:
        full = f"{where}.{key}" if where else key
        if key not in target:
            raise ConfigError(f"unknown config key '{full}'; known keys here: {sorted(target.keys())}")
        old = target[key]
        if isinstance(old, ml_collections.ConfigDict):
            _merge(old, value, full)
            continue
        if isinstance(value, ml_collections.ConfigDict | dict):
            raise ConfigError(f"config key '{full}' is a value, not a section")
        with target.unlocked():
            target[key] = coerce_value(full, old, tuple(value) if isinstance(value, list) else value)


def _source(name: str, values: Any) -> ml_collections.ConfigDict:
    source = ml_collections.ConfigDict(dict(SOURCE_DEFAULTS))
    _merge(source, values, f"sources.{name}")
    if source.kind not in SOURCE_KINDS:
        raise ConfigError(f"config key 'sources.{name}.kind' must be one of {SOURCE_KINDS}, got {source.kind!r}")
    if source.doc_kind and source.doc_kind not in KINDS:
        raise ConfigError(f"config key 'sources.{name}.doc_kind' must be '' or one of {KINDS}, "
                          f"got {source.doc_kind!r}")
    if not source.weight > 0:
        raise ConfigError(f"config key 'sources.{name}.weight' must be > 0, got {source.weight}")
    if source.kind == "tfds" and not source.dataset:
        raise ConfigError(f"config key 'sources.{name}.dataset' must name a TFDS dataset for kind 'tfds'")
    if source.kind != "tfds" and not source.path:
        raise ConfigError(f"config key 'sources.{name}.path' is empty")
    if not name.replace("_", "").replace("-", "").isalnum():
        raise ConfigError(f"source name {name!r} must be letters, digits, '-' and '_' (it names a folder)")
    return source


def load_ingest_config(path: str | Path, overrides: list[str] | tuple[str, ...] = ()) -> ml_collections.ConfigDict:
    """Reads a sources config file, fills in defaults, applies ``key=value`` overrides and validates.

    Returns the resolved config with every source path made absolute (relative to the config file).
    """
    path = Path(path)
    user = read_config_file(path)
    config = default_ingest_config()
    user_sources = user.get("sources", {}) if hasattr(user, "get") else {}
    rest = {k: v for k, v in user.items() if k != "sources"}
    _merge(config, rest, "")
    if not user_sources:
        raise ConfigError(f"{path}: 'sources' is empty: list at least one source")
    with config.sources.unlocked():
        for name in sorted(user_sources):  # sorted: the output order never depends on dict order
            config.sources[name] = _source(name, user_sources[name])
    for item in overrides:
        if "=" not in item:
            raise ConfigError(f"override {item!r} is not of the form key=value")
        key, text = item.split("=", 1)
        *parents, leaf = key.strip().split(".")
        node = config
        for part in parents:
            if part not in node or not isinstance(node[part], ml_collections.ConfigDict):
                raise ConfigError(f"unknown config key '{key}'")
            node = node[part]
        _merge(node, {leaf: parse_value(text)}, ".".join(parents))
    for name, source in config.sources.items():
        _source(name, source.to_dict())  # re-check after overrides
        if source.path and not Path(source.path).is_absolute():
            source.path = str((path.parent / source.path).resolve())
    if not 0 <= config.val_fraction < 1:
        raise ConfigError(f"config key 'val_fraction' must be in [0, 1), got {config.val_fraction}")
    if not 0 <= config.max_val_share <= 1:
        raise ConfigError(f"config key 'max_val_share' must be in [0, 1], got {config.max_val_share}")
    if config.tokenizer not in ("gpt2", "flaxgpt"):
        raise ConfigError(f"config key 'tokenizer' must be 'gpt2' or 'flaxgpt', got {config.tokenizer!r}")
    if not 0 < config.dedup.threshold <= 1:
        raise ConfigError(f"config key 'dedup.threshold' must be in (0, 1], got {config.dedup.threshold}")
    return config
