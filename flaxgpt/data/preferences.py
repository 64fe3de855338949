"""Comparisons for the preference stages (``train.stage=pm`` and ``dpo``): files -> token arrays -> batches.

Three file formats are read, recognised per record by their keys (``.jsonl`` or ``.jsonl.gz``):

* flaxgpt pairs, as ``flaxgpt cai revise`` (pairs.jsonl) and ``flaxgpt cai label`` (labels.jsonl)
  write them: ``{"prompt": [messages] | str, "chosen": str, "rejected": str, "label": P(chosen better)}``;
  ``label`` is optional (1.0: a hard label).
* hh-rlhf: ``{"chosen": transcript, "rejected": transcript}`` with ``"\\n\\nHuman: ...\\n\\nAssistant: ..."``
  turns; the two share every turn but the last assistant reply, which is the response compared.
* multiple choice (Anthropic's evals format): ``{"prompt": str, "corrects": [" (B)"], "incorrects": [" (A)"]}``;
  every correct option is compared with every incorrect one.

A comparison is encoded twice, once per response, as the chat template renders it: the prompt
conversation, ``<|assistant|>``, the response, ``<|end|>`` (raw text prompts: the prompt's text, the
option's text, ``<|end|>``). The end-of-response token is where the preference model reads its reward,
and it is inside the response mask (as SFT trains it), so the model learns to end its turns.
Prompts too long for ``seq_len`` keep their last tokens; responses too long are cut and still end in
the end token (the count is reported).

Arrays (the pair-batch contract of flaxgpt/train/stages/pairs.py), N comparisons, T = seq_len:
  tokens int32 [N,2,T] (pad: the tokenizer's pad id), mask float32 [N,2,T], last int32 [N,2], label float32 [N];
  index 0 of the pair axis is the chosen response.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import grain
import numpy as np

from flaxgpt.data.chat import parse_hh
from flaxgpt.data.chat_template import END, render
from flaxgpt.data.jsonfile import open_jsonl
from flaxgpt.data.tokenizer import Tokenizer

PAIR_KEYS = ("tokens", "mask", "last", "label")


@dataclasses.dataclass(frozen=True)
class Comparison:
    """One preference: ``chosen`` is better than ``rejected`` with probability ``label`` given ``prompt``."""

    prompt: tuple[Mapping[str, str], ...] | str  # chat messages ending on a user turn, or raw text
    chosen: str
    rejected: str
    label: float = 1.0
    where: str = ""  # file:line, for error messages and reports


def _open_lines(path: Path) -> Iterator[tuple[int, str]]:
    """(line number, line) of the non-blank lines of a text or gzip file (``open_jsonl``)."""
    with open_jsonl(path) as f:
        for n, line in enumerate(f, 1):
            if line.strip():
                yield n, line


@dataclasses.dataclass
class ReadReport:
    """What reading comparison files skipped: records read, skipped records counted by reason, and the first
    few skipped as ``file:line: reason``."""

    records: int = 0
    skipped: dict[str, int] = dataclasses.field(default_factory=dict)
    examples: list[str] = dataclasses.field(default_factory=list)

    def skip(self, where: str, reason: str) -> None:
        self.skipped[reason] = self.skipped.get(reason, 0) + 1
        if len(self.examples) < 5:
            self.examples.append(f"{where}: {reason}")

    @property
    def n_skipped(self) -> int:
        return sum(self.skipped.values())

    def summary(self) -> str:
        """One line: "skipped 4 of 2,312 records (4 x hh-rlhf: ...); first: file:12: ..." ("" when none)."""
        if not self.skipped:
            return ""
        reasons = "; ".join(f"{n} x {r}" for r, n in sorted(self.skipped.items(), key=lambda kv: -kv[1]))
        return (f"skipped {self.n_skipped:,} of {self.records:,} records ({reasons}); first: "
                + " | ".join(self.examples[:3]))


def _messages(value: Any, where: str) -> tuple[Mapping[str, str], ...] | str:
    if isinstance(value, str):
        return value
    if isinstance(value, list) and value and all(isinstance(m, dict) and isinstance(m.get("content"), str)
                                                 and m.get("role") in ("system", "user", "assistant")
                                                 for m in value):
        return tuple({"role": m["role"], "content": m["content"]} for m in value)
    raise ValueError(f"{where}: 'prompt' must be a string or a list of {{role, content}} messages")


def _from_hh(record: dict, where: str) -> Comparison:
    chosen, rejected = parse_hh(record["chosen"]), parse_hh(record["rejected"])
    if not chosen or not rejected or chosen[-1]["role"] != "assistant" or rejected[-1]["role"] != "assistant":
        raise ValueError(f"{where}: hh-rlhf 'chosen'/'rejected' must be transcripts ending in an Assistant turn")
    prompt = tuple(chosen[:-1])
    if not prompt or prompt[-1]["role"] != "user":
        raise ValueError(f"{where}: hh-rlhf transcript has no Human turn before its last Assistant turn")
    return Comparison(prompt, chosen[-1]["content"], rejected[-1]["content"], 1.0, where)


def _record_comparisons(record: Any, where: str, letters: bool = False) -> list[Comparison]:
    """The comparisons of one parsed record (any of the three formats); ValueError saying what is wrong.

    Anthropic's HHH evaluations carry both forms: the options as letters (``corrects``/``incorrects``, " (A)")
    and as the two full conversations (``text_correct``/``text_incorrect``, hh-rlhf transcripts). The pair of
    conversations is read unless ``letters``: a letter after a long prompt cut to a small model's context
    measures which letter the model prefers, not which response."""
    if not isinstance(record, dict):
        raise ValueError(f"{where}: expected a JSON object")
    if not letters and isinstance(record.get("text_correct"), str) and isinstance(record.get("text_incorrect"), str):
        return [_from_hh({"chosen": record["text_correct"], "rejected": record["text_incorrect"]}, where)]
    if "corrects" in record or "incorrects" in record:
        prompt = record.get("prompt")
        good, bad = record.get("corrects"), record.get("incorrects")
        if not isinstance(prompt, str) or not isinstance(good, list) or not isinstance(bad, list):
            raise ValueError(f"{where}: multiple choice needs 'prompt' (str), 'corrects' and 'incorrects' (lists)")
        return [Comparison(prompt, g, b, 1.0, where) for g in good for b in bad]
    if "prompt" in record:
        chosen, rejected = record.get("chosen"), record.get("rejected")
        if not isinstance(chosen, str) or not isinstance(rejected, str):
            raise ValueError(f"{where}: 'chosen' and 'rejected' must be strings")
        label = record.get("label", 1.0)
        if not isinstance(label, int | float) or not 0.0 <= label <= 1.0:
            raise ValueError(f"{where}: 'label' must be a probability in [0, 1], got {label!r}")
        return [Comparison(_messages(record["prompt"], where), chosen, rejected, float(label), where)]
    if "chosen" in record and "rejected" in record:
        return [_from_hh(record, where)]
    raise ValueError(f"{where}: unknown comparison format (keys {sorted(record)}); expected flaxgpt pairs "
                     "{prompt, chosen, rejected[, label]}, hh-rlhf {chosen, rejected} or multiple choice "
                     "{prompt, corrects, incorrects}")


def read_comparisons(path: str | Path, strict: bool = False, report: ReadReport | None = None,
                     letters: bool = False) -> list[Comparison]:
    """Every comparison in one file (any of the three formats). A malformed record (not JSON, an hh-rlhf
    transcript whose turns do not pair up, a missing key) is skipped and counted in ``report`` by reason;
    with ``strict`` it is a ValueError naming file and line. A file with no comparison at all is an error.
    ``letters``: HHH records as their letter options (``_record_comparisons``)."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"comparison file not found: {path}")
    report = report if report is not None else ReadReport()
    out: list[Comparison] = []
    records, skipped = report.records, report.n_skipped
    for n, line in _open_lines(path):
        where = f"{path}:{n}"
        report.records += 1
        try:
            try:
                record = json.loads(line)
            except json.JSONDecodeError as err:
                raise ValueError(f"{where}: not JSON ({err.msg})") from err
            comps = _record_comparisons(record, where, letters)
        except ValueError as err:
            if strict:
                raise
            report.skip(where, str(err).removeprefix(f"{where}: "))
            continue
        out += comps
    if not out:
        n_records, n_skipped = report.records - records, report.n_skipped - skipped
        what = (f"all {n_records:,} records are malformed ({report.summary()})" if n_skipped
                else "the file has no records")
        raise ValueError(f"{path}: no comparisons to read: {what}")
    return out


def read_all(paths: str | Sequence[str | Path], strict: bool = False,
             report: ReadReport | None = None) -> list[Comparison]:
    """Comparisons of several files (a comma-separated string or a list), in order (``read_comparisons``)."""
    if isinstance(paths, str):
        paths = [p.strip() for p in paths.split(",") if p.strip()]
    if not paths:
        raise ValueError("config key 'prefs.data' is empty: name comparison files (comma-separated)")
    return [c for p in paths for c in read_comparisons(p, strict, report)]


def prompt_key(prompt: tuple[Mapping[str, str], ...] | str) -> str:
    """A stable text form of a prompt (for the train/validation split and de-duplication)."""
    if isinstance(prompt, str):
        return prompt
    return json.dumps([[m["role"], m["content"]] for m in prompt], ensure_ascii=False)


def split(comparisons: Sequence[Comparison], val_fraction: float) -> tuple[list[Comparison], list[Comparison]]:
    """(train, val) by a hash of the prompt: both responses of a prompt, and every pair of a prompt, stay together."""
    train, val = [], []
    for c in comparisons:
        h = int.from_bytes(hashlib.sha1(prompt_key(c.prompt).encode()).digest()[:8], "little") / 2**64
        (val if h < val_fraction else train).append(c)
    return train, val


def _end_id(tokenizer: Tokenizer) -> int:
    return tokenizer.special_ids.get(END, tokenizer.eot_id)


def encode_prompt(prompt: tuple[Mapping[str, str], ...] | str, tokenizer: Tokenizer) -> list[int]:
    """A prompt's ids up to where the response starts (chat: through ``<|assistant|>``)."""
    if isinstance(prompt, str):
        return tokenizer.encode(prompt)
    return render(list(prompt), tokenizer, add_generation_prompt=True)[0]


@dataclasses.dataclass
class EncodeStats:
    """What encoding had to cut."""

    prompts_cut: int = 0
    responses_cut: int = 0


def encode_response(prompt_ids: list[int], response: str, tokenizer: Tokenizer, seq_len: int,
                    max_prompt_len: int, stats: EncodeStats) -> tuple[list[int], int, int]:
    """(ids, response start, end-token index) of prompt + response + end token, fitted into ``seq_len``."""
    body = tokenizer.encode(response)
    room = seq_len - 1  # the end token
    keep = min(len(prompt_ids), max_prompt_len or len(prompt_ids), max(room - len(body), 1), room - 1)
    if keep < len(prompt_ids):
        stats.prompts_cut += 1
        prompt_ids = prompt_ids[len(prompt_ids) - keep:]
    if len(prompt_ids) + len(body) > room:
        stats.responses_cut += 1
        body = body[: room - len(prompt_ids)]
    ids = [*prompt_ids, *body, _end_id(tokenizer)]
    return ids, len(prompt_ids), len(ids) - 1


def encode_responses(prompts: Sequence[tuple[Mapping[str, str], ...] | str], responses: Sequence[str],
                     tokenizer: Tokenizer, seq_len: int, max_prompt_len: int = 0,
                     ) -> tuple[dict[str, np.ndarray], EncodeStats]:
    """Rows of prompt i + response i + end token: {'tokens' int32 [N,T], 'mask' float32 [N,T], 'last' int32 [N]}."""
    n = len(responses)
    pad = tokenizer.pad_id if tokenizer.pad_id is not None else tokenizer.eot_id
    tokens = np.full((n, seq_len), pad, np.int32)
    mask = np.zeros((n, seq_len), np.float32)
    last = np.zeros((n,), np.int32)
    stats = EncodeStats()
    cache: dict[str, list[int]] = {}
    for i, (prompt, response) in enumerate(zip(prompts, responses, strict=True)):
        key = prompt_key(prompt)
        if key not in cache:
            cache = {key: encode_prompt(prompt, tokenizer)}  # pairs come in twos: keep the last prompt only
        ids, start, end = encode_response(cache[key], response, tokenizer, seq_len, max_prompt_len, stats)
        tokens[i, : len(ids)] = ids
        mask[i, start: end + 1] = 1.0
        last[i] = end
    return {"tokens": tokens, "mask": mask, "last": last}, stats


def encode_comparisons(comparisons: Sequence[Comparison], tokenizer: Tokenizer, seq_len: int,
                       max_prompt_len: int = 0) -> tuple[dict[str, np.ndarray], EncodeStats]:
    """The pair arrays (module docstring) of ``comparisons`` and what had to be cut."""
    n = len(comparisons)
    rows, stats = encode_responses([c.prompt for c in comparisons for _ in range(2)],
                                   [r for c in comparisons for r in (c.chosen, c.rejected)],
                                   tokenizer, seq_len, max_prompt_len)
    arrays = {k: v.reshape(n, 2, *v.shape[1:]) for k, v in rows.items()}
    arrays["label"] = np.array([c.label for c in comparisons], np.float32).reshape(n)
    return arrays, stats


@dataclasses.dataclass
class PairSets:
    """The comparisons of a run, encoded: train and validation pair arrays, and one line saying what was cut."""

    train: dict[str, np.ndarray]
    val: dict[str, np.ndarray]
    summary: str
    skipped: dict[str, int] = dataclasses.field(default_factory=dict)  # malformed records skipped, by reason


def load_pair_sets(files: str | Sequence[str | Path], tokenizer: Tokenizer, *, seq_len: int, max_prompt_len: int,
                   val_fraction: float, strict: bool = False) -> PairSets:
    """``prefs.data``'s comparisons split train/validation by prompt (``split``) and encoded (``encode_comparisons``);
    malformed records skipped and counted unless ``strict`` (``read_comparisons``).

    Raises ValueError when every comparison falls in the validation split.
    """
    report = ReadReport()
    comparisons = read_all(files, strict, report)
    train_c, val_c = split(comparisons, val_fraction)
    if not train_c:
        raise ValueError(f"prefs.data: all {len(comparisons)} comparisons fell in the validation split "
                         f"(prefs.val_fraction={val_fraction})")
    train, stats = encode_comparisons(train_c, tokenizer, seq_len, max_prompt_len)
    val, val_stats = encode_comparisons(val_c, tokenizer, seq_len, max_prompt_len)
    summary = (f"prefs.data: {len(train_c):,} train / {len(val_c):,} validation comparisons; "
               f"{stats.prompts_cut + val_stats.prompts_cut} prompts and "
               f"{stats.responses_cut + val_stats.responses_cut} responses cut to data.seq_len={seq_len}")
    if report.skipped:
        summary += f"; {report.summary()} (prefs.strict=True aborts instead)"
    return PairSets(train, val, summary, dict(report.skipped))


class _Rows(grain.sources.RandomAccessDataSource):
    """Row i of every array (arrays held in memory: comparison sets are small next to pretraining shards)."""

    def __init__(self, arrays: Mapping[str, np.ndarray]):
        self._arrays = dict(arrays)
        self._n = len(next(iter(arrays.values())))

    def __len__(self) -> int:
        return self._n

    def __getitem__(self, i: int) -> dict[str, np.ndarray]:
        return {k: v[i] for k, v in self._arrays.items()}


def build_pair_iterator(arrays: Mapping[str, np.ndarray], *, batch_size: int, seed: int,
                        shard_index: int = 0, shard_count: int = 1) -> grain.DatasetIterator:
    """A checkpointable, endless iterator of shuffled pair batches ([batch_size, ...] per key).

    Each epoch is a new permutation. By default every process iterates all comparisons (the trainer's global
    batch); ``shard_index``/``shard_count`` take every count-th comparison instead. Raises ValueError when there
    are fewer comparisons than a batch.
    """
    ds = grain.MapDataset.source(_Rows(arrays))[shard_index::shard_count]
    if len(ds) < batch_size:
        raise ValueError(f"{len(ds)} training comparisons on this host, fewer than one batch of {batch_size}: "
                         "add comparisons or lower train.batch_size")
    return iter(ds.shuffle(seed=seed).repeat(None).batch(batch_size, drop_remainder=True).to_iter_dataset())
