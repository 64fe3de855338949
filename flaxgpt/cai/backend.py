"""The feedback-backend interface: what SL-CAI revision, RL-CAI labelling and evaluation judges call.

A backend is any object with these three methods (``typing.Protocol``: no base class needed):

* ``complete(prompts, params)`` continues raw text prompts (the few-shot ``Human:/Assistant:``
  critique and revision transcripts) and returns one string per prompt.
* ``chat(conversations, params)`` answers chat conversations (lists of ``{"role", "content"}``
  messages, roles system/user/assistant) with the assistant's next message.
* ``score_options(prompts, options)`` returns, for each prompt, the log-probability of each option
  string as its continuation (e.g. ``" (A)"`` and ``" (B)"``). A backend that cannot score (a server
  that returns no log-probs) returns None, and callers fall back to sampling the answer.

Every method takes and returns whole batches, so a local model runs them as one jitted batch and a
remote endpoint runs them concurrently.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from typing import Protocol, runtime_checkable

Message = Mapping[str, str]


@dataclasses.dataclass(frozen=True)
class GenParams:
    """Sampling settings of one ``complete``/``chat`` call (the CAI paper samples everything at T=1)."""

    max_tokens: int = 128
    temperature: float = 1.0
    top_p: float = 1.0
    stop: tuple[str, ...] = ()  # strings that end a text (not included in it)
    seed: int | None = None  # None: fresh randomness; an int makes local sampling (and the cache key) repeatable


@runtime_checkable
class Backend(Protocol):
    """A feedback model (see the module docstring)."""

    name: str  # shown in reports and stored with every label and revision

    def complete(self, prompts: Sequence[str], params: GenParams) -> list[str]: ...

    def chat(self, conversations: Sequence[Sequence[Message]], params: GenParams) -> list[str]: ...

    def score_options(self, prompts: Sequence[str], options: Sequence[str]) -> list[list[float]] | None: ...
