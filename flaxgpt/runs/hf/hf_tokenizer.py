"""HuggingFace tokenizer files for an exported model, built offline from flaxgpt's bundled GPT-2 ranks.

``write_hf_tokenizer`` writes ``tokenizer.json`` (the ``tokenizers`` library's format: byte-level BPE
with GPT-2's vocabulary and merges, the special tokens as added tokens) and ``tokenizer_config.json``
(special-token roles and, for the ``flaxgpt`` tokenizer, a chat template that renders the same tokens
as ``flaxgpt.data.chat_template``). Nothing is downloaded: the vocabulary and the merges are derived from
the tiktoken rank file flaxgpt ships.

GPT-2's merges are recovered from the ranks: a token's merge is the pair that byte-pair encoding
reaches when only lower-ranked tokens may form, so merging in rank order reproduces tiktoken's
encoding. Personal vocabularies are not written: their word terms are whole-word lookups and their
compounds span pre-tokens, which HuggingFace's BPE cannot express exactly (``flaxgpt_tokenizer.json``
still records them).
"""

from __future__ import annotations

import functools
import json
from pathlib import Path

from tiktoken.load import load_tiktoken_bpe

from flaxgpt.data.chat_template import END, ROLES
from flaxgpt.data.tokenizer import EOT, GPT2_RANKS, GPT2_RANKS_SHA256, PAD, Tokenizer

# The chat template of flaxgpt.data.chat_template, in the Jinja form transformers' apply_chat_template runs.
CHAT_TEMPLATE = ("{% for message in messages %}{{ '<|' + message['role'] + '|>' + message['content'] + '"
                 + END + "' }}{% endfor %}{% if add_generation_prompt %}{{ '" + ROLES["assistant"] + "' }}{% endif %}")


@functools.cache
def _byte_to_unicode() -> dict[int, str]:
    """GPT-2's reversible map of the 256 bytes to printable characters (byte-level BPE's alphabet)."""
    keep = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), 256))
    chars = keep[:]
    n = 0
    for b in range(256):
        if b not in keep:
            keep.append(b)
            chars.append(256 + n)
            n += 1
    return {b: chr(c) for b, c in zip(keep, chars, strict=True)}


def _text(token: bytes) -> str:
    table = _byte_to_unicode()
    return "".join(table[b] for b in token)


def _bpe(ranks: dict[bytes, int], token: bytes, max_rank: int) -> list[bytes]:
    """Byte-pair encodes ``token`` using only tokens ranked below ``max_rank``."""
    parts = [bytes([b]) for b in token]
    while len(parts) > 1:
        best, at = None, -1
        for i in range(len(parts) - 1):
            r = ranks.get(parts[i] + parts[i + 1])
            if r is not None and r < max_rank and (best is None or r < best):
                best, at = r, i
        if best is None:
            break
        parts[at: at + 2] = [parts[at] + parts[at + 1]]
    return parts


@functools.cache
def gpt2_vocab_and_merges() -> tuple[dict[str, int], list[str]]:
    """GPT-2's byte-level vocabulary (token text -> id) and merges ("left right", in priority order)."""
    ranks = load_tiktoken_bpe(str(GPT2_RANKS), expected_hash=GPT2_RANKS_SHA256)
    vocab = {_text(tok): rank for tok, rank in ranks.items()}
    merges = []
    for tok, rank in sorted(ranks.items(), key=lambda kv: kv[1]):
        if len(tok) == 1:
            continue
        parts = _bpe(ranks, tok, rank)
        if len(parts) != 2:  # every GPT-2 token is one merge of two lower-ranked ones
            raise ValueError(f"GPT-2 rank file: token {rank} is not a merge of two lower-ranked tokens")
        merges.append(f"{_text(parts[0])} {_text(parts[1])}")
    return vocab, merges


def tokenizer_json(tokenizer: Tokenizer) -> dict:
    """The ``tokenizer.json`` of ``tokenizer`` (a ``gpt2`` or ``flaxgpt`` tokenizer without personal terms)."""
    if tokenizer.personal:
        raise ValueError(f"tokenizer {tokenizer.name!r} has a personal vocabulary, which HuggingFace's byte-level "
                         "BPE cannot reproduce exactly; use flaxgpt_tokenizer.json with flaxgpt")
    vocab, merges = gpt2_vocab_and_merges()
    specials = sorted(tokenizer.special_ids.items(), key=lambda kv: kv[1])
    byte_level = {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": True, "use_regex": True}
    return {
        "version": "1.0", "truncation": None, "padding": None,
        "added_tokens": [{"id": i, "content": tok, "single_word": False, "lstrip": False, "rstrip": False,
                          "normalized": False, "special": True} for tok, i in specials],
        "normalizer": None,
        "pre_tokenizer": byte_level,
        "post_processor": {**byte_level, "trim_offsets": False},
        "decoder": byte_level,
        "model": {"type": "BPE", "dropout": None, "unk_token": None, "continuing_subword_prefix": "",
                  "end_of_word_suffix": "", "fuse_unk": False, "byte_fallback": False, "ignore_merges": False,
                  "vocab": {**vocab, **dict(specials)}, "merges": merges},
    }


def tokenizer_config(tokenizer: Tokenizer, max_len: int) -> dict:
    """``tokenizer_config.json``: the class, the special tokens' roles and (flaxgpt) the chat template."""
    config = {"tokenizer_class": "GPT2Tokenizer", "model_max_length": max_len, "add_prefix_space": False,
              "clean_up_tokenization_spaces": False, "bos_token": EOT, "eos_token": EOT, "unk_token": EOT}
    if tokenizer.pad_id is not None:
        config["pad_token"] = PAD
    if all(tok in tokenizer.special_ids for tok in (*ROLES.values(), END)):
        config["chat_template"] = CHAT_TEMPLATE
    return config


def write_hf_tokenizer(directory: str | Path, tokenizer: Tokenizer, max_len: int) -> list[Path]:
    """Writes ``tokenizer.json`` and ``tokenizer_config.json`` into ``directory``; returns their paths."""
    d = Path(directory)
    files = {"tokenizer.json": tokenizer_json(tokenizer),
             "tokenizer_config.json": tokenizer_config(tokenizer, max_len)}
    for name, content in files.items():
        (d / name).write_text(json.dumps(content, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")
    return [d / name for name in files]
