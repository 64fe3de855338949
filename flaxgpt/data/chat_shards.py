"""``flaxgpt tokenize-chat``: conversations -> chat token shards with a loss mask, for SFT.

Conversations come from the readers of ``flaxgpt.data.chat`` (OpenAI messages, hh-rlhf, OASST1).
Every conversation is rendered with the chat template (``flaxgpt.data.chat_template``): token ids plus
a mask that is 1 on assistant content and its ``<|end|>`` and 0 elsewhere. Trailing messages after
the last assistant turn teach nothing and are dropped; a conversation with no assistant turn left
to train on is skipped. Conversations go to ``train`` or ``val`` by a hash of their id (as
``flaxgpt tokenize`` splits documents), and are written as masked token shards
(``flaxgpt.data.shards``), one conversation per document, with no end-of-text: each ends with the
assistant's ``<|end|>``. The output is written to a temporary sibling and renamed into place, and
``summary.json`` records counts, skip reasons and conversation lengths (to choose ``data.seq_len``).
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from flaxgpt.data.chat import Record, Skipped, read_inputs
from flaxgpt.data.chat_template import END, render
from flaxgpt.data.outdir import atomic_output_dir
from flaxgpt.data.shards import SPLITS, ShardWriter
from flaxgpt.data.tokenize import MAX_LISTED_SKIPS, SUMMARY_FILE, SplitRouter, is_shard_output, split_of, split_totals
from flaxgpt.data.tokenizer import Tokenizer, load_tokenizer

LENGTH_THRESHOLDS = (128, 256, 512, 1024, 2048)  # summary: how many conversations are longer than each


def render_conversation(messages: list[Mapping[str, Any]], tokenizer: Tokenizer) -> tuple[list[int], list[int]]:
    """(token ids, loss mask) of a conversation: the chat template, with assistant messages of weight 0 untrained."""
    plain = [{"role": m["role"], "content": m["content"]} for m in messages]
    ids, mask = render(plain, tokenizer)
    if any(m.get("weight", 1) == 0 for m in messages):
        start = 0
        for i, m in enumerate(messages):
            end = len(render(plain[:i + 1], tokenizer)[0])  # where message i ends in the rendered ids
            if m.get("weight", 1) == 0:
                mask[start:end] = [0] * (end - start)
            start = end
    return ids, mask


class _MaskedWriter:
    """Lets ``SplitRouter`` (which hands its writers one opaque item) route (ids, mask) pairs."""

    def __init__(self, writer: ShardWriter):
        self.writer = writer

    def add(self, item: tuple[list[int], list[int]]) -> None:
        self.writer.add(*item)


def _length_stats(lengths: list[int]) -> dict[str, Any]:
    if not lengths:
        return {}
    arr = np.asarray(lengths)
    return {"max": int(arr.max()), "mean": round(float(arr.mean()), 1), "p50": int(np.percentile(arr, 50)),
            "p95": int(np.percentile(arr, 95)),
            "longer_than": {str(t): int((arr > t + 1).sum()) for t in LENGTH_THRESHOLDS}}


def write_chat_shards(records: Iterable[Record], out_dir: str | Path, *, name: str, tokenizer: str = "flaxgpt",
                      val_fraction: float = 0.05, progress: bool = True, inputs: list[str] | None = None) -> dict:
    """Renders conversations and writes them as masked train/val token shards in ``out_dir`` (replaced whole).

    Args:
      records: Conversation (or Skipped, only counted) items, e.g. from ``flaxgpt.data.chat.READERS[fmt](path)``.
      out_dir: output directory: new, empty, or an earlier ``tokenize-chat``/``tokenize`` output.
      name: source name recorded in every sidecar.
      tokenizer: 'flaxgpt' or a tokenizer.json (or its folder) with the chat special tokens.
      val_fraction: expected share of conversations in val, in [0, 1); above 0, two or more
        conversations always give both splits at least one.
      progress: show a tqdm progress bar over conversations.
      inputs: recorded in the summary.

    Returns:
      The summary also written to ``out_dir/summary.json``: conversations, tokens and trained
      (mask 1) tokens per split, skip counts by reason (and the first skipped ids), conversation
      length statistics in tokens, and ``longer_than``: how many exceed ``data.seq_len`` = N.
    """
    if not 0.0 <= val_fraction < 1.0:
        raise ValueError(f"val_fraction must be in [0, 1), got {val_fraction}")
    tok = load_tokenizer(tokenizer)
    if END not in tok.special_ids:
        raise ValueError(f"tokenizer {tok.name!r} has no chat tokens ({END}): use 'flaxgpt' or a personal "
                         "tokenizer built on it")
    meta = tok.metadata()
    out_dir = Path(out_dir).resolve()
    skipped: Counter = Counter()
    skipped_ids: list[dict[str, str]] = []
    lengths: list[int] = []
    with atomic_output_dir(out_dir, is_shard_output, "tokenize-chat") as tmp:
        shard_writers = {s: ShardWriter(tmp, s, tokenizer_meta=meta, source=name, loss_mask=True) for s in SPLITS}
        router = SplitRouter({s: _MaskedWriter(w) for s, w in shard_writers.items()}, guarantee_both=val_fraction > 0)
        for record in tqdm(records, unit="conv", desc=f"tokenize-chat {name}", disable=not progress):
            if isinstance(record, Skipped):
                skipped[record.reason] += 1
                if len(skipped_ids) < MAX_LISTED_SKIPS:
                    skipped_ids.append({"id": record.id, "reason": record.reason})
                continue
            try:
                ids, mask = render_conversation(record.messages, tok)
            except ValueError as e:
                raise ValueError(f"conversation {record.id}: {e}") from None
            split, h = split_of(record.id, val_fraction)
            router.add(split, h, (ids, mask))
            lengths.append(len(ids))
        if not lengths:  # nothing is written: an empty or all-malformed input is an error, not an empty dataset
            why = ("every record was skipped (" + ", ".join(f"{n} {r}" for r, n in skipped.most_common()) + ")"
                   if skipped else "the inputs hold no records")
            raise ValueError(f"tokenize-chat {name}: no conversations to write: {why}")
        router.finish()
        sidecars = {s: shard_writers[s].close() for s in SPLITS}
        summary = {
            "name": name,
            "format": "chat",
            "tokenizer": meta,
            "inputs": inputs or [],
            "val_fraction": val_fraction,
            "conversations": split_totals(sidecars, "num_documents"),
            "tokens": split_totals(sidecars, "num_tokens"),
            "trained_tokens": {s: sum(m["loss_mask"]["trained_tokens"] for m in sidecars[s]) for s in SPLITS},
            "shards": {s: len(sidecars[s]) for s in SPLITS},
            "lengths": _length_stats(lengths),
            "skipped": dict(sorted(skipped.items())),
            "skipped_conversations": skipped_ids,
        }
        (tmp / SUMMARY_FILE).write_text(json.dumps(summary, indent=2) + "\n")
    return summary


def tokenize_chat(inputs: list[str | Path], out_dir: str | Path, *, fmt: str, name: str,
                  tokenizer: str = "flaxgpt", val_fraction: float = 0.05, lang: str | None = None,
                  progress: bool = True, hh_all_turns: bool = False) -> dict:
    """Reads conversations in format ``fmt`` from files/folders and writes chat shards (see write_chat_shards);
    hh-rlhf trains its final assistant turn only unless ``hh_all_turns`` (``read_hh``)."""
    if not inputs:
        raise ValueError("no inputs given")
    records = read_inputs(inputs, fmt, lang=lang, hh_all_turns=hh_all_turns)
    return write_chat_shards(records, out_dir, name=name, tokenizer=tokenizer, val_fraction=val_fraction,
                             progress=progress, inputs=[str(p) for p in inputs])
