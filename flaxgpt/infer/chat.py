"""A conversation with a Generator (``ChatSession``): the system prompt, the settings, the history, the replies.

Each reply renders the conversation with the chat template (``flaxgpt.data.chat_template``), dropping
the oldest turns when it would not leave room for the reply, and generates until the model ends its
turn (``<|end|>``, or a role token: it started the next turn itself). ``flaxgpt chat`` (flaxgpt.cli.sample)
drives one from the terminal. It needs a tokenizer with the role tokens (``flaxgpt``'s).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

from flaxgpt.data.chat_template import END, ROLES, render
from flaxgpt.infer.generator import Completion, Generator
from flaxgpt.infer.sampling import SamplingParams

# Settings ChatSession.set can change, with their types (SamplingParams fields plus the reply length).
SETTINGS = {"temperature": float, "top_k": int, "top_p": float, "min_p": float, "repetition_penalty": float,
            "presence_penalty": float, "frequency_penalty": float, "seed": int, "max_new_tokens": int}


class ChatSession:
    """A conversation with a Generator: the history, the system prompt and the sampling settings."""

    def __init__(self, generator: Generator, system: str | None = None, sampling: SamplingParams | None = None,
                 max_new_tokens: int = 256):
        tok = generator.tokenizer
        missing = [t for t in (*ROLES.values(), END) if t not in tok.special_ids]
        if missing:
            raise ValueError(f"tokenizer {tok.name!r} has no {', '.join(missing)}: chat needs a run trained with "
                             "data.tokenizer='flaxgpt' (or a personal vocabulary built on it)")
        self.generator = generator
        self.system = system or None
        self.sampling = sampling or SamplingParams(temperature=0.7)
        self.max_new_tokens = max_new_tokens
        # The model ends its turn with <|end|>; a role token means it started the next turn itself.
        self.stop_ids = tuple(tok.special_ids[t] for t in (END, *ROLES.values()))
        self.messages: list[dict[str, str]] = []

    def reset(self) -> None:
        """Forgets the conversation; the system prompt stays."""
        self.messages = []

    def set(self, name: str, value: str) -> str:
        """Changes a setting from text (``/set top_p 0.9``); returns the new value as text. ValueError if bad."""
        key = name.replace("-", "_")
        if key not in SETTINGS:
            raise ValueError(f"unknown setting {name!r}; settings: {', '.join(SETTINGS)}")
        parsed = None if key == "seed" and value.lower() == "none" else SETTINGS[key](value)
        if key == "max_new_tokens":
            if parsed < 1:
                raise ValueError("max_new_tokens must be >= 1")
            self.max_new_tokens = parsed
        else:
            self.sampling = dataclasses.replace(self.sampling, **{key: parsed})  # validated by SamplingParams
        return f"{key} = {parsed}"

    def settings(self) -> dict[str, Any]:
        """The current settings by name."""
        return {k: self.max_new_tokens if k == "max_new_tokens" else getattr(self.sampling, k) for k in SETTINGS}

    def _prompt(self) -> list[int]:
        """The rendered conversation, oldest turns dropped until a reply of max_new_tokens (or half the cache) fits."""
        head = [{"role": "system", "content": self.system}] if self.system else []
        budget = self.generator.max_len - min(self.max_new_tokens, self.generator.max_len // 2)
        turns = list(self.messages)
        while True:
            ids, _ = render(head + turns, self.generator.tokenizer, add_generation_prompt=True)
            if len(ids) <= budget or len(turns) <= 1:
                break
            turns = turns[2:] if len(turns) > 2 else turns[1:]  # drop the oldest user/assistant pair
        if len(ids) >= self.generator.max_len:
            raise ValueError(f"the message is too long: {len(ids)} tokens, the model's context is "
                             f"{self.generator.max_len}")
        self.messages = turns
        return ids

    def reply(self, text: str, on_text: Callable[[str], None] | None = None) -> Completion:
        """Adds the user's message, generates the assistant's reply (streamed to ``on_text``) and records it."""
        self.messages.append({"role": "user", "content": text})
        try:
            prompt = self._prompt()
        except ValueError:
            self.messages.pop()
            raise
        sampling = dataclasses.replace(self.sampling, stop_token_ids=self.stop_ids)
        callback = (lambda d: d.text and on_text(d.text)) if on_text else None
        done = self.generator.generate([prompt], sampling, self.max_new_tokens, callback=callback)[0]
        self.messages.append({"role": "assistant", "content": done.text})
        return done
