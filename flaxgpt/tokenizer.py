"""GPT-2 byte-pair encoding through tiktoken, loaded offline from the bundled rank file.

Two tokenizers share GPT-2's 50,257 ids:
  * ``gpt2``: exactly GPT-2 (``<|endoftext|>`` = 50256), for pretraining and HuggingFace parity;
  * ``flaxgpt``: GPT-2 plus the special tokens the chat template and Constitutional AI use,
    numbered from 50257 upwards (still far below the uint16 limit of the token shards).

Data is always encoded with ``encode`` (tiktoken's ``encode_ordinary``): text a user feeds in can
never produce a control token, even if it literally contains ``<|endoftext|>``.
"""

from __future__ import annotations

import functools
import hashlib
from dataclasses import dataclass
from pathlib import Path

import tiktoken
from tiktoken.load import load_tiktoken_bpe

GPT2_RANKS = Path(__file__).parent / "assets" / "gpt2.tiktoken"
GPT2_RANKS_SHA256 = "306cd27f03c1a714eca7108e03d66b7dc042abe8c258b44c199a7ed9838dd930"
# tiktoken's pattern for r50k_base (GPT-2).
GPT2_PATTERN = r"""'(?:[sdmt]|ll|ve|re)| ?\p{L}++| ?\p{N}++| ?[^\s\p{L}\p{N}]++|\s++$|\s+(?!\S)|\s"""
EOT = "<|endoftext|>"
# Extra special tokens of the ``flaxgpt`` tokenizer, in id order after 50256.
FLAXGPT_SPECIALS = (
    "<|system|>",
    "<|user|>",
    "<|assistant|>",
    "<|end|>",
    "<|constitutional|>",
    "<|critique|>",
    "<|revision|>",
)
MAX_VOCAB = 65536  # token shards store uint16 ids


@dataclass(frozen=True)
class Tokenizer:
    """A named tiktoken encoding with the ids flaxgpt needs."""

    name: str
    encoding: tiktoken.Encoding

    @property
    def vocab_size(self) -> int:
        """Number of ids, special tokens included (the model pads this up to a multiple of 128)."""
        return self.encoding.n_vocab

    @property
    def eot_id(self) -> int:
        return self.encoding.eot_token

    @property
    def special_ids(self) -> dict[str, int]:
        return {tok: self.encoding.encode_single_token(tok) for tok in self.encoding.special_tokens_set}

    def encode(self, text: str) -> list[int]:
        """Text -> ids, treating special-token text as ordinary text."""
        return self.encoding.encode_ordinary(text)

    def encode_batch(self, texts: list[str], num_threads: int = 4) -> list[list[int]]:
        return self.encoding.encode_ordinary_batch(texts, num_threads=num_threads)

    def decode(self, ids) -> str:
        return self.encoding.decode([int(i) for i in ids])

    def metadata(self) -> dict:
        """What a shard or checkpoint records so a mismatch is caught when they are combined."""
        specials = sorted(self.special_ids.items(), key=lambda kv: kv[1])
        digest = hashlib.sha256(
            (GPT2_RANKS_SHA256 + GPT2_PATTERN + repr(specials)).encode()
        ).hexdigest()[:16]
        return {"name": self.name, "hash": digest, "vocab_size": self.vocab_size, "eot_id": self.eot_id}


@functools.cache
def _gpt2_ranks() -> dict[bytes, int]:
    if not GPT2_RANKS.exists():
        raise FileNotFoundError(f"GPT-2 BPE ranks missing: {GPT2_RANKS} (reinstall flaxgpt)")
    return load_tiktoken_bpe(str(GPT2_RANKS), expected_hash=GPT2_RANKS_SHA256)


@functools.cache
def get_tokenizer(name: str = "gpt2") -> Tokenizer:
    """Returns the tokenizer called ``name`` ('gpt2' or 'flaxgpt'); no network access."""
    ranks = _gpt2_ranks()
    specials = {EOT: 50256}
    if name == "flaxgpt":
        specials.update({tok: 50257 + i for i, tok in enumerate(FLAXGPT_SPECIALS)})
    elif name != "gpt2":
        raise ValueError(f"unknown tokenizer {name!r}: expected 'gpt2' or 'flaxgpt'")
    enc = tiktoken.Encoding(name=f"flaxgpt-{name}", pat_str=GPT2_PATTERN, mergeable_ranks=ranks,
                            special_tokens=specials)
    assert enc.n_vocab <= MAX_VOCAB
    return Tokenizer(name=name, encoding=enc)
