"""The chat format: conversations over the ``flaxgpt`` tokenizer's role tokens, with the SFT loss mask.

A conversation renders as::

    <|system|>You are ...<|end|><|user|>Hi<|end|><|assistant|>Hello!<|end|>

Each message is its role token, its content (encoded with ``encode_ordinary``, so a literal
``<|end|>`` typed by a user stays text), and ``<|end|>``. The loss mask is 1 on assistant content
and on the assistant's ``<|end|>`` (so the model learns to stop) and 0 elsewhere, the role tokens
included. ``add_generation_prompt`` appends ``<|assistant|>`` for the model to continue from.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from flaxgpt.data.tokenizer import Tokenizer

ROLES = {"system": "<|system|>", "user": "<|user|>", "assistant": "<|assistant|>"}
END = "<|end|>"


def _special(tokenizer: Tokenizer, token: str) -> int:
    ids = tokenizer.special_ids
    if token not in ids:
        raise ValueError(f"tokenizer {tokenizer.name!r} has no {token} token: chat needs the 'flaxgpt' tokenizer")
    return ids[token]


def render(messages: Sequence[Mapping[str, str]], tokenizer: Tokenizer, *,
           add_generation_prompt: bool = False) -> tuple[list[int], list[int]]:
    """Renders ``[{"role": ..., "content": ...}, ...]`` (roles system, user, assistant) to (token ids, loss mask).

    Raises ValueError naming the message index for an unknown role or non-string content.
    """
    ids: list[int] = []
    mask: list[int] = []
    end = _special(tokenizer, END)
    for i, message in enumerate(messages):
        role, content = message.get("role"), message.get("content")
        if role not in ROLES:
            raise ValueError(f"message {i}: role must be one of {sorted(ROLES)}, got {role!r}")
        if not isinstance(content, str):
            raise ValueError(f"message {i}: content must be a string, got {type(content).__name__}")
        train = 1 if role == "assistant" else 0
        body = tokenizer.encode(content)
        ids += [_special(tokenizer, ROLES[role]), *body, end]
        mask += [0, *([train] * len(body)), train]
    if add_generation_prompt:
        ids.append(_special(tokenizer, ROLES["assistant"]))
        mask.append(0)
    return ids, mask


def to_text(messages: Sequence[Mapping[str, str]], *, add_generation_prompt: bool = False) -> str:
    """The rendered conversation as text (what ``render`` encodes), for display and debugging."""
    text = "".join(f"{ROLES[m['role']]}{m['content']}{END}" for m in messages)
    return text + (ROLES["assistant"] if add_generation_prompt else "")
