"""Feedback backends (``flaxgpt.cai.backend.Backend``): a local flaxgpt run, or any OpenAI-compatible endpoint.

``make_backend(spec)`` builds one from a string; the grammar of ``spec``::

    RUN_DIR                     a flaxgpt run directory (its latest checkpoint): LocalBackend
    run:RUN_DIR                 the same, explicitly
    openai:BASE_URL[?KEY=VALUE&...]
                                an OpenAI-compatible server: OpenAIBackend. BASE_URL is http(s)://host[:port][/v1]
                                ("/v1" is added when missing). Keys: model (default: the first of GET /v1/models),
                                api (completions | chat: the endpoint complete() and score_options() use),
                                concurrency, timeout (seconds), retries, backoff (seconds). Any other key is an
                                error naming it. The API key comes from OPENAI_API_KEY (never from the spec).

e.g. ``runs/feedback``, ``openai:http://127.0.0.1:8000?model=feedback&api=completions&concurrency=8``.

``LocalBackend`` batches each call through one ``flaxgpt.infer.generator.Generator``. A prompt longer than the model's
context is fitted by the backend's ``fit`` policy: ``left`` keeps its last tokens (the library default: a few-shot
prefix must not crash a 128-token model; one warning), ``right`` its first, ``middle`` its start and end, and
``error`` refuses it with a message naming the prompt, its length and the context (``flaxgpt cai``'s default).
``cut_prompts`` counts the prompts cut.

``OpenAIBackend`` (flaxgpt.cai.openai_backend) calls an OpenAI-compatible server: retries with backoff, bounded
concurrency, an on-disk response cache, option scoring through echoed log-probs. ``PrivacyRules``
(flaxgpt.cai.rules) judges the privacy principle by rules, so it holds even with a weak feedback model.
"""

from __future__ import annotations

import dataclasses
import logging
import urllib.parse
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from flaxgpt.cai.backend import Backend, GenParams, Message
from flaxgpt.cai.openai_backend import BackendError, OpenAIBackend
from flaxgpt.cai.rules import PrivacyRules
from flaxgpt.data.chat_template import END, ROLES, render
from flaxgpt.infer.generator import Generator, load_generator
from flaxgpt.infer.sampling import SamplingParams

__all__ = ["BackendError", "LocalBackend", "OpenAIBackend", "PrivacyRules", "make_backend"]
log = logging.getLogger(__name__)

FIT_POLICIES = ("error", "left", "right", "middle")  # how a prompt longer than the context is fitted (LocalBackend)
SPEC_KEYS: dict[str, Callable[[str], Any]] = {"model": str, "api": str, "concurrency": int, "timeout": float,
                                              "retries": int, "backoff": float}


# ------------------------------------------------------------------------------------------------ local


class LocalBackend:
    """A flaxgpt run (or a ready Generator) as a feedback model; every call is batched on the device.

    Args:
      model: a run directory, or a ``Generator`` (shared, e.g. with a server or a PPO loop).
      batch_size: prompts per generate/score call.
      int8, max_len: passed to ``load_generator`` when ``model`` is a directory.
    """

    def __init__(self, model: str | Path | Any, *, batch_size: int = 16, int8: bool = False,
                 max_len: int | None = None, name: str | None = None, fit: str = "left"):
        if batch_size < 1:
            raise ValueError(f"batch_size={batch_size} must be >= 1")
        if fit not in FIT_POLICIES:
            raise ValueError(f"fit={fit!r}: expected one of {', '.join(FIT_POLICIES)}")
        self.fit, self.cut_prompts = fit, 0
        self.generator = model if isinstance(model, Generator) else load_generator(model, int8=int8, max_len=max_len)
        if self.generator.tokenizer is None:
            raise ValueError("LocalBackend needs a Generator with a tokenizer")
        run = getattr(self.generator, "run", None)
        self.name = name or (f"run:{model}" if not isinstance(model, Generator) else
                             f"run:{run.run_dir}" if run is not None else "local")
        self.batch_size = batch_size
        self._warned = False
        specials = self.generator.tokenizer.special_ids
        # The model ends its turn with <|end|>; a role token means it began the next turn itself.
        self._chat_stops = tuple(specials[t] for t in (END, *ROLES.values()) if t in specials)

    def _fit(self, ids: list[int], keep: int) -> list[int]:
        """``ids`` cut to ``keep`` tokens by the ``fit`` policy (warning once per backend when that cuts anything);
        ValueError under ``fit="error"``."""
        if len(ids) <= keep:
            return ids
        if self.fit == "error":
            text = self.generator.tokenizer.decode(ids[:40]).replace("\n", " ")
            raise ValueError(f"{self.name}: a prompt of {len(ids)} tokens does not fit the model's context "
                             f"({self.generator.max_len} tokens, {keep} of them for the prompt): {text[:80]!r}...; "
                             "choose how to fit prompts with --fit left|right|middle (or a model with a longer "
                             "context)")
        self.cut_prompts += 1
        if not self._warned:
            self._warned = True
            log.warning("%s: a prompt of %d tokens does not fit the model's context; keeping its %s %d tokens "
                        "(shown once; later prompts are cut the same way)", self.name, len(ids),
                        {"left": "last", "right": "first", "middle": "first and last"}[self.fit], keep)
        if self.fit == "right":
            return ids[:keep]
        if self.fit == "middle":
            head = keep // 2
            return ids[:head] + ids[len(ids) - (keep - head):]
        return ids[len(ids) - keep:]

    def _generate(self, prompts: list[list[int]], params: GenParams, stop_ids: tuple[int, ...] = ()) -> list[str]:
        gen = self.generator
        room = max(1, min(params.max_tokens, gen.max_len // 2))  # new tokens the cache must still hold
        prompts = [self._fit(p, gen.max_len - room) for p in prompts]
        sampling = SamplingParams(temperature=params.temperature, top_p=params.top_p, stop=tuple(params.stop),
                                  stop_token_ids=stop_ids)
        out: list[str] = []
        for start in range(0, len(prompts), self.batch_size):
            # Row i of a call seeds with (seed, i): offset the seed per chunk so chunks do not repeat each other.
            seed = None if params.seed is None else params.seed + start
            done = gen.generate(prompts[start:start + self.batch_size], dataclasses.replace(sampling, seed=seed),
                                max_new_tokens=params.max_tokens)
            out += [c.text for c in done]
        return out

    def complete(self, prompts: Sequence[str], params: GenParams) -> list[str]:
        """Continues raw-text prompts; one string per prompt. A special token (a chat-tuned model's ``<|end|>``,
        a role token) ends the text: raw text never contains one, so it means the model left the transcript."""
        stops = tuple(self.generator.tokenizer.special_ids.values())
        return self._generate([self.generator.tokenizer.encode(p) for p in prompts], params, stops)

    def chat(self, conversations: Sequence[Sequence[Message]], params: GenParams) -> list[str]:
        """The assistant's next message for each conversation (chat template; stops at ``<|end|>``)."""
        ids = [render(c, self.generator.tokenizer, add_generation_prompt=True)[0] for c in conversations]
        return self._generate(ids, params, self._chat_stops)

    def _split(self, prompt: str, option: str) -> tuple[list[int], list[int]]:
        """(prompt ids, option ids), tokenized as one text when the prompt's tokens survive that (as an
        OpenAI-compatible server that echoes ``prompt + option`` sees them), else separately."""
        tok = self.generator.tokenizer
        head, whole = tok.encode(prompt), tok.encode(prompt + option)
        tail = whole[len(head):] if whole[:len(head)] == head else tok.encode(option)
        return head or [tok.eot_id], tail

    def score_options(self, prompts: Sequence[str], options: Sequence[str]) -> list[list[float]]:
        """Log-probability of each option as the continuation of each prompt (sum over the option's tokens)."""
        limit = self.generator.cfg.max_len
        pairs = []
        for p in prompts:
            for o in options:
                head, tail = self._split(p, o)
                if len(tail) >= limit:
                    raise ValueError(f"option {o[:40]!r} has {len(tail)} tokens; the model's context is {limit}")
                pairs.append((self._fit(head, limit - len(tail)), tail))
        sums: list[float] = []
        for start in range(0, len(pairs), self.batch_size):
            chunk = pairs[start:start + self.batch_size]
            scored = self.generator.score([h for h, _ in chunk], [t for _, t in chunk])
            sums += [float(sum(s)) for s in scored]
        n = len(options)
        return [sums[i * n:(i + 1) * n] for i in range(len(prompts))]


# ------------------------------------------------------------------------------------------------ spec


def make_backend(spec: str, *, cache_dir: str | Path | None = None, fit: str | None = None, **kw: Any) -> Backend:
    """A backend from a spec string (grammar in the module docstring); ``kw`` go to the backend's constructor
    (spec keys first, ``kw`` override them). ``cache_dir`` applies to remote backends (a local run is not cached),
    ``fit`` to local ones (a server fits prompts itself). ValueError naming the problem for a malformed spec, an
    unknown key or a path that is no directory."""
    if spec.startswith("openai:"):
        url, _, query = spec[len("openai:"):].partition("?")
        options: dict[str, Any] = {}
        if query:
            try:
                items = urllib.parse.parse_qsl(query, keep_blank_values=True, strict_parsing=True)
            except ValueError as err:
                raise ValueError(f"backend spec {spec!r}: malformed query {query!r} ({err})") from None
            for key, value in items:
                if key not in SPEC_KEYS:
                    raise ValueError(f"backend spec {spec!r}: unknown key {key!r} (known: {', '.join(SPEC_KEYS)})")
                if key in options:
                    raise ValueError(f"backend spec {spec!r}: key {key!r} given twice")
                try:
                    options[key] = SPEC_KEYS[key](value)
                except ValueError:
                    raise ValueError(f"backend spec {spec!r}: {key}={value!r} is not a valid "
                                     f"{SPEC_KEYS[key].__name__}") from None
        if not url.startswith(("http://", "https://")):
            raise ValueError(f"backend spec {spec!r}: expected openai:http(s)://host[:port][/v1][?key=value&...]")
        return OpenAIBackend(url, cache_dir=cache_dir, **{**options, **kw})
    path = Path(spec[len("run:"):] if spec.startswith("run:") else spec)
    if not path.is_dir():
        raise ValueError(f"backend spec {spec!r}: {str(path)!r} is not a run directory (specs: RUN_DIR, run:RUN_DIR "
                         "or openai:http://host:port?model=NAME)")
    return LocalBackend(path, **({"fit": fit} if fit is not None else {}), **kw)
