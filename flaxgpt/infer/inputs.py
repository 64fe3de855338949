"""Requests in, static shapes out: prompts (text or token ids) to checked ids, and the power-of-two buckets.

Decoding (``flaxgpt.infer.generator``) and scoring (``flaxgpt.infer.scoring``) pad every batch and every
sequence up to a bucket, so repeated requests reuse compiled executables instead of compiling new shapes.
"""

from __future__ import annotations

from collections.abc import Sequence

from flaxgpt.data.tokenizer import Tokenizer

MIN_BUCKET = 16  # shortest length bucket: shorter prompts share one compiled prefill / scoring forward


def pow2(n: int, low: int = 1) -> int:
    """The smallest power of two >= ``n``, and at least ``low``."""
    return max(low, 1 << max(0, n - 1).bit_length())


def length_bucket(length: int, limit: int) -> int:
    """Padded length for sequences of at most ``length`` tokens: a power of two >= MIN_BUCKET, capped at ``limit``."""
    return min(pow2(length, MIN_BUCKET), limit)


def batch_bucket(n: int, data_parallel: int, minimum: int = 1) -> int:
    """Rows a batch of ``n`` (at least ``minimum``) is padded to: a power of two times ``data_parallel``."""
    return data_parallel * pow2(-(-max(n, minimum) // data_parallel))


def checked_ids(value: str | Sequence[int], tokenizer: Tokenizer | None, vocab_size: int, what: str, *,
                empty_eot: bool = True) -> list[int]:
    """A text or token-id sequence -> its token ids, each checked to be in [0, vocab_size).

    With ``empty_eot`` an empty one becomes ``[<|endoftext|>]`` (a prompt starts there, as GPT-2's do).
    ValueError naming ``what`` (e.g. "prompt 2") for text without a tokenizer or an id outside the vocabulary.
    """
    if isinstance(value, str):
        if tokenizer is None:
            raise ValueError(f"{what} is text: text needs a tokenizer (Generator(..., tokenizer=...))")
        ids = tokenizer.encode(value)
    else:
        ids = [int(t) for t in value]
    if not ids and empty_eot:
        if tokenizer is None:
            raise ValueError(f"{what} is empty")
        ids = [tokenizer.eot_id]
    bad = [t for t in ids if not 0 <= t < vocab_size]
    if bad:
        raise ValueError(f"{what}: token ids {bad[:5]} outside the vocabulary [0, {vocab_size})")
    return ids
