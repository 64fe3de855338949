"""OpenAI wire format for the flaxgpt server: request fields checked one by one (a bad one is a ``BadRequest``
naming it), prompts and chat messages to token ids, and the ``logprobs`` objects of both APIs.

Log-prob shapes (as OpenAI and vLLM send them):

* completions: ``{"tokens": [str], "token_logprobs": [float | None], "top_logprobs": [{token: logprob} | None],
  "text_offset": [int]}``; offsets count characters from the start of the prompt, also without ``echo``; with
  ``echo`` the prompt's tokens come first and the very first has no log-prob (None). A top dict holds the k most
  likely tokens plus the chosen one.
* chat: ``{"content": [{"token", "logprob", "bytes", "top_logprobs": [{"token", "logprob", "bytes"}]}]}``.

A token that is not whole UTF-8 on its own is written ``bytes:\\xNN...`` (its ``bytes`` field stays exact).
"""

from __future__ import annotations

import codecs
import dataclasses
from collections.abc import Sequence
from typing import Any

from flaxgpt.data.chat_template import END, ROLES, render
from flaxgpt.infer.generator import Completion, Generator
from flaxgpt.infer.sampling import SamplingParams
from flaxgpt.infer.scoring import TOP_K

MAX_N = 16  # choices per prompt


class BadRequest(Exception):  # noqa: N818 (named after the HTTP status it becomes)
    """A request the server refuses: ``status`` (400 unless said), the field at fault (``param``), the error type."""

    def __init__(self, message: str, param: str | None = None, *, status: int = 400,
                 kind: str = "invalid_request_error"):
        super().__init__(message)
        self.param, self.status, self.kind = param, status, kind


def error_body(err: BadRequest) -> dict:
    """The OpenAI error object for ``err``."""
    return {"error": {"message": str(err), "type": err.kind, "param": err.param, "code": err.status}}


# ------------------------------------------------------------------------------------------------ fields


def _number(body: dict, name: str, default: Any, kind: type, lo: float | None = None, hi: float | None = None) -> Any:
    value = body.get(name)
    if value is None:
        return default
    ok = isinstance(value, int | float) if kind is float else isinstance(value, int)
    if isinstance(value, bool) or not ok:
        raise BadRequest(f"{name} must be {'a number' if kind is float else 'an integer'}, got {value!r}", name)
    if (lo is not None and value < lo) or (hi is not None and value > hi):
        bounds = f">= {lo}" if hi is None else f"in [{lo}, {hi}]"
        raise BadRequest(f"{name}={value!r} must be {bounds}", name)
    return kind(value)


def _bool(body: dict, name: str, default: bool = False) -> bool:
    value = body.get(name)
    if value is None:
        return default
    if not isinstance(value, bool):
        raise BadRequest(f"{name} must be true or false, got {value!r}", name)
    return value


@dataclasses.dataclass(frozen=True)
class Options:
    """What to return, besides sampling: choices per prompt, length, echo, top log-probs, a usage chunk."""

    n: int = 1
    max_tokens: int | None = None  # None: up to the end of the context (chat's default)
    echo: bool = False
    logprobs: int | None = None  # None: no log-probs; k >= 0: with the k most likely alternatives
    include_usage: bool = False


def read_options(body: dict, *, chat: bool) -> Options:
    """The response options of a completions (``chat`` False) or chat request; BadRequest naming a bad field."""
    for name, unset in (("best_of", (None, 1)), ("suffix", (None, "")), ("logit_bias", (None, {})),
                        ("tools", (None, [])), ("functions", (None, []))):
        if body.get(name) not in unset:
            raise BadRequest(f"{name} is not supported by this server", name)
    n = _number(body, "n", 1, int, 1, MAX_N)
    stream_options = body.get("stream_options")
    if stream_options is not None and not isinstance(stream_options, dict):
        raise BadRequest("stream_options must be an object", "stream_options")
    include_usage = _bool(stream_options or {}, "include_usage")
    _bool(body, "stream")
    if chat:
        max_tokens = _number(body, "max_completion_tokens", None, int, 1)
        if max_tokens is None:
            max_tokens = _number(body, "max_tokens", None, int, 1)
        wanted = _bool(body, "logprobs")
        top = _number(body, "top_logprobs", None, int, 0, TOP_K)
        if top is not None and not wanted:
            raise BadRequest("top_logprobs needs logprobs: true", "top_logprobs")
        return Options(n, max_tokens, False, (top or 0) if wanted else None, include_usage)
    max_tokens = _number(body, "max_tokens", 16, int, 0)
    echo = _bool(body, "echo")
    if max_tokens == 0 and not echo:
        raise BadRequest("max_tokens must be >= 1 (0 only with echo: true, to score the prompt)", "max_tokens")
    return Options(n, max_tokens, echo, _number(body, "logprobs", None, int, 0, TOP_K), include_usage)


def sampling_params(body: dict, stop_ids: Sequence[int] = ()) -> SamplingParams:
    """The request's sampling fields as SamplingParams (top_k -1 means off, as in vLLM)."""
    stop = body.get("stop")
    if isinstance(stop, str):
        stop = [stop]
    if stop is not None and (not isinstance(stop, list) or not all(isinstance(s, str) and s for s in stop)):
        raise BadRequest("stop must be a non-empty string or a list of them", "stop")
    try:
        return SamplingParams(
            temperature=_number(body, "temperature", 1.0, float, 0), top_p=_number(body, "top_p", 1.0, float),
            top_k=max(0, _number(body, "top_k", 0, int, -1)), min_p=_number(body, "min_p", 0.0, float),
            repetition_penalty=_number(body, "repetition_penalty", 1.0, float),
            presence_penalty=_number(body, "presence_penalty", 0.0, float, -2, 2),
            frequency_penalty=_number(body, "frequency_penalty", 0.0, float, -2, 2),
            stop=tuple(stop or ()), stop_token_ids=tuple(stop_ids), ignore_eos=_bool(body, "ignore_eos"),
            seed=_number(body, "seed", None, int))
    except ValueError as err:  # SamplingParams names the field: "SamplingParams.top_p=0.0: must be in (0, 1]"
        field = str(err).split("=", 1)[0].removeprefix("SamplingParams.")
        raise BadRequest(str(err).removeprefix("SamplingParams."), field) from None


# ------------------------------------------------------------------------------------------------ prompts


def parse_prompts(prompt: Any, gen: Generator) -> tuple[list[str], list[list[int]]]:
    """A completions ``prompt`` (string, strings, token ids, lists of token ids) -> (texts, token ids)."""
    tok = gen.tokenizer
    if isinstance(prompt, str):
        items: list = [prompt]
    elif isinstance(prompt, list) and prompt and all(isinstance(t, int) and not isinstance(t, bool) for t in prompt):
        items = [prompt]
    elif isinstance(prompt, list) and prompt and all(isinstance(p, str | list) for p in prompt):
        items = prompt
    else:
        raise BadRequest("prompt must be a string, a list of strings, token ids or lists of token ids", "prompt")
    texts, ids = [], []
    for i, item in enumerate(items):
        if isinstance(item, str):
            texts.append(item)
            ids.append(tok.encode(item) or [tok.eot_id])  # an empty prompt starts at <|endoftext|>, as GPT-2
            continue
        if not item or not all(isinstance(t, int) and not isinstance(t, bool) for t in item):
            raise BadRequest(f"prompt {i}: a token-id prompt must be a non-empty list of integers", "prompt")
        if not all(0 <= t < gen.cfg.vocab_size for t in item):
            raise BadRequest(f"prompt {i}: token ids must be in [0, {gen.cfg.vocab_size})", "prompt")
        texts.append(tok.decode(item))
        ids.append(list(item))
    return texts, ids


def chat_prompt(messages: Any, gen: Generator) -> tuple[list[int], tuple[int, ...]]:
    """Chat ``messages`` -> (the rendered prompt ending in ``<|assistant|>``, the token ids that end the reply)."""
    if not isinstance(messages, list) or not messages:
        raise BadRequest("messages must be a non-empty list", "messages")
    plain = []
    for i, m in enumerate(messages):
        if not isinstance(m, dict):
            raise BadRequest(f"messages[{i}] must be an object", f"messages[{i}]")
        role, content = m.get("role"), m.get("content")
        role = "system" if role == "developer" else role
        if role not in ROLES:
            raise BadRequest(f"messages[{i}].role must be one of {sorted(ROLES)}, got {role!r}", f"messages[{i}].role")
        if isinstance(content, list):  # content parts: only text is understood
            if not all(isinstance(p, dict) and p.get("type") == "text" and isinstance(p.get("text"), str)
                       for p in content):
                raise BadRequest(f"messages[{i}].content: only text parts are supported", f"messages[{i}].content")
            content = "".join(p["text"] for p in content)
        if not isinstance(content, str):
            raise BadRequest(f"messages[{i}].content must be a string", f"messages[{i}].content")
        plain.append({"role": role, "content": content})
    specials = gen.tokenizer.special_ids
    if any(t not in specials for t in (END, *ROLES.values())):
        raise BadRequest(f"this model's tokenizer ({gen.tokenizer.name}) has no chat tokens: use /v1/completions",
                         "messages")
    ids, _ = render(plain, gen.tokenizer, add_generation_prompt=True)
    return ids, tuple(specials[t] for t in (END, *ROLES.values()))


# ------------------------------------------------------------------------------------------------ log-probs


def token_text(gen: Generator, token: int) -> tuple[str, bytes]:
    """(the token as OpenAI writes it, its bytes)."""
    try:
        raw = gen.tokenizer.encoding.decode_single_token_bytes(token)
    except KeyError:
        return "", b""
    try:
        return raw.decode("utf-8"), raw
    except UnicodeDecodeError:
        return "bytes:" + "".join(f"\\x{b:02x}" for b in raw), raw


def text_offsets(gen: Generator, tokens: Sequence[int], start: int = 0) -> list[int]:
    """Character offset where each token's text begins, counting from ``start`` (bytes of a character split over
    tokens count at the token that completes it)."""
    decoder = codecs.getincrementaldecoder("utf-8")("replace")
    offsets, pos = [], start
    for t in tokens:
        offsets.append(pos)
        pos += len(decoder.decode(token_text(gen, t)[1]))
    return offsets


def _reported(gen: Generator, c: Completion) -> list[int]:
    """The generated tokens a response reports: those that begin inside its text (a stop string's are cut)."""
    if not isinstance(c.stop_reason, str):
        return list(c.tokens)
    return [t for t, o in zip(c.tokens, text_offsets(gen, c.tokens), strict=True) if o < len(c.text)]


def completion_logprobs(gen: Generator, rows: list[list[int]], texts: list[str], done: list[Completion],
                        opts: Options, *, chat: bool) -> list[dict | None]:
    """The ``logprobs`` object of each choice (None each when not asked). Needs the generator's lock."""
    if opts.logprobs is None:
        return [None] * len(rows)
    k, echo = opts.logprobs, opts.echo and not chat
    outs = [_reported(gen, c) for c in done]
    need = k > 0 or echo  # the sampler gave the chosen tokens' log-probs; anything else takes a forward
    scored = gen.token_logprobs([p + o for p, o in zip(rows, outs, strict=True)], top=k > 0) if need else None
    result = []
    for r, (prompt, out, c) in enumerate(zip(rows, outs, done, strict=True)):
        P = len(prompt)
        picked, vals, ids = scored[r] if scored else (None, None, None)
        seq = prompt + out if echo else out
        first = 0 if echo else P  # index in prompt + out of the first reported token
        # Token j's log-prob: the forward's for prompt tokens, the sampler's for generated ones (the same numbers).
        lps = [None if echo and j == 0 else (float(picked[j - 1]) if j < P else c.logprobs[j - P])
               for j in range(first, P + len(out))]
        tops = [None if echo and j == 0 else
                [(int(t), float(v)) for t, v in zip(ids[j - 1, :k], vals[j - 1, :k], strict=True)] if k else []
                for j in range(first, P + len(out))]
        if chat:
            entries = []
            for t, lp, alt in zip(seq, lps, tops, strict=True):
                s, raw = token_text(gen, t)
                entries.append({"token": s, "logprob": lp, "bytes": list(raw), "top_logprobs": [
                    {"token": token_text(gen, a)[0], "logprob": v, "bytes": list(token_text(gen, a)[1])}
                    for a, v in alt]})
            result.append({"content": entries})
            continue
        start = 0 if echo else len(texts[r])
        tops_json = []
        for t, lp, alt in zip(seq, lps, tops, strict=True):
            if alt is None:
                tops_json.append(None)
                continue
            entry = {token_text(gen, a)[0]: v for a, v in alt}
            entry.setdefault(token_text(gen, t)[0], lp)  # the chosen token is always listed (as vLLM does)
            tops_json.append(entry)
        result.append({"tokens": [token_text(gen, t)[0] for t in seq], "token_logprobs": lps,
                       "top_logprobs": tops_json, "text_offset": text_offsets(gen, seq, start)})
    return result
