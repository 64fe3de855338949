"""An OpenAI-compatible endpoint as a feedback backend (``flaxgpt.cai.backend.Backend``), standard library only.

``OpenAIBackend`` speaks POST /v1/completions and /v1/chat/completions: at most ``concurrency`` requests in flight
(a thread pool per call, a semaphore over all calls); connection errors, timeouts, HTTP 429 and 5xx are retried
with exponential backoff (other 4xx raise ``BackendError`` with the server's message); with ``cache_dir`` every
response is stored as one JSON file named by a hash of the URL path and the canonical JSON body (written to a
temporary file, then renamed), so a rerun does not pay twice. Requests are cached by body alone: one with
``seed`` None and temperature > 0 returns its first sample again on a rerun (pass distinct seeds, or no cache, to
draw fresh samples).

``score_options`` reads the options' tokens through ``echo`` + ``logprobs`` on the completions API (max_tokens 0,
or 1 where the server refuses 0; tokens are assigned to the option by ``text_offset``). A server that echoes no
prompt log-probs, and the chat API, get the top log-probs of the first generated token instead, compared where
the options' texts first differ; a server with no log-probs at all gives None.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import os
import tempfile
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections import Counter
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from http.client import HTTPException
from pathlib import Path
from typing import Any

from flaxgpt.cai.backend import GenParams, Message

log = logging.getLogger(__name__)

APIS = ("completions", "chat")
TOP_LOGPROBS = 5  # alternatives asked for when scoring by the first generated token (the completions API's limit)


class BackendError(RuntimeError):
    """A request the endpoint refused (``status``: its HTTP status) or that kept failing after every retry."""

    def __init__(self, message: str, status: int | None = None):
        super().__init__(message)
        self.status = status


def _error_message(err: urllib.error.HTTPError) -> str:
    try:
        body = err.read().decode("utf-8", "replace")
    except OSError:
        return str(err.reason)
    try:
        return str(json.loads(body)["error"]["message"])
    except (ValueError, KeyError, TypeError):
        return body.strip()[:500] or str(err.reason)


def _field(obj: Any, *path: str | int) -> Any:
    """obj[path[0]][path[1]]...; BackendError naming the missing field of a malformed response."""
    for i, key in enumerate(path):
        try:
            obj = obj[key]
        except (KeyError, IndexError, TypeError):
            raise BackendError(f"malformed response: no {'.'.join(map(str, path[:i + 1]))}") from None
    return obj


class OpenAIBackend:
    """An OpenAI-compatible endpoint as a feedback model (module docstring: retries, concurrency, cache).

    Args:
      base_url: ``http(s)://host[:port]`` with or without ``/v1``.
      model: the model name to send; None: the first model of GET /v1/models.
      api: ``completions`` (raw text prompts) or ``chat`` (each prompt sent as one user message; for servers
        without /v1/completions). ``chat()`` always uses /v1/chat/completions.
      api_key: sent as a Bearer token; default: the OPENAI_API_KEY environment variable (none if unset).
      timeout: seconds per HTTP attempt. retries: further attempts after a failed one. backoff: the first wait in
        seconds, doubled each retry (a server's Retry-After, up to 60 s, is honoured when longer).
      concurrency: requests in flight at once, over all calls of this backend.
      cache_dir: keep every response here (one JSON file per request) and answer repeats from it.
    """

    def __init__(self, base_url: str, model: str | None = None, *, api: str = "completions",
                 api_key: str | None = None, timeout: float = 60.0, retries: int = 3, backoff: float = 0.5,
                 concurrency: int = 4, cache_dir: str | Path | None = None, name: str | None = None):
        checks = [("base_url", base_url, base_url.startswith(("http://", "https://")), "must start with http(s)://"),
                  ("api", api, api in APIS, f"must be one of {APIS}"),
                  ("timeout", timeout, timeout > 0, "must be > 0"), ("retries", retries, retries >= 0, "must be >= 0"),
                  ("backoff", backoff, backoff >= 0, "must be >= 0"),
                  ("concurrency", concurrency, concurrency >= 1, "must be >= 1")]
        for field, value, ok, message in checks:
            if not ok:
                raise ValueError(f"OpenAIBackend.{field}={value!r}: {message}")
        base = base_url.rstrip("/")
        self.base_url = base if base.endswith("/v1") else base + "/v1"
        self.api, self.timeout, self.retries, self.backoff = api, timeout, retries, backoff
        self.concurrency = concurrency
        self.api_key = api_key if api_key is not None else os.environ.get("OPENAI_API_KEY")
        self.cache_dir = Path(cache_dir) if cache_dir else None
        self._model = model
        self.name = name or f"openai:{self.base_url}" + (f"?model={model}" if model else "")
        self.stats: Counter[str] = Counter()  # requests (HTTP attempts), retries, cache_hits
        self._lock = threading.Lock()
        self._slots = threading.BoundedSemaphore(concurrency)
        self._score_mode: str | None = None  # 'echo0' / 'echo1' (max_tokens), 'top' or 'none', found on first use

    # ---- HTTP

    @property
    def model(self) -> str:
        """The model name requests carry (asked from GET /v1/models once when not given)."""
        if self._model is None:
            data = _field(self._request("GET", "/models"), "data")
            if not data:
                raise BackendError(f"{self.base_url}/models lists no model: pass model=...")
            self._model = str(_field(data, 0, "id"))
        return self._model

    def _count(self, key: str) -> None:
        with self._lock:
            self.stats[key] += 1

    def _request(self, method: str, path: str, body: dict | None = None) -> Any:
        url = self.base_url + path
        headers = {"Content-Type": "application/json", "Accept": "application/json"}
        if self.api_key:
            headers["Authorization"] = f"Bearer {self.api_key}"
        data = None if body is None else json.dumps(body).encode()
        last = ""
        for attempt in range(self.retries + 1):
            wait = self.backoff * 2 ** attempt
            try:
                with self._slots:
                    self._count("requests")
                    request = urllib.request.Request(url, data=data, headers=headers, method=method)
                    with urllib.request.urlopen(request, timeout=self.timeout) as response:
                        payload = response.read()
                try:
                    return json.loads(payload)
                except ValueError:
                    raise BackendError(f"{url}: the response is not JSON: {payload[:200]!r}") from None
            except urllib.error.HTTPError as err:
                message = _error_message(err)
                if err.code != 429 and err.code < 500:
                    raise BackendError(f"{url}: HTTP {err.code}: {message}", err.code) from None
                last = f"HTTP {err.code}: {message}"
                retry_after = err.headers.get("Retry-After", "") if err.headers else ""
                if retry_after.replace(".", "", 1).isdigit():
                    wait = max(wait, min(float(retry_after), 60.0))
            except (urllib.error.URLError, ConnectionError, TimeoutError, HTTPException) as err:
                last = f"{type(err).__name__}: {getattr(err, 'reason', err)}"
            if attempt < self.retries:
                self._count("retries")
                log.info("%s: %s; retrying in %.1f s", url, last, wait)
                time.sleep(wait)
        raise BackendError(f"{url}: failed after {self.retries + 1} attempts: {last}")

    def _post(self, path: str, body: dict) -> Any:
        """POST with the on-disk cache: a stored response for the same path and body is returned as is."""
        if self.cache_dir is None:
            return self._request("POST", path, body)
        canonical = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
        key = hashlib.sha256(f"{urllib.parse.urlsplit(self.base_url).path}{path}\n{canonical}".encode()).hexdigest()
        file = self.cache_dir / key[:2] / f"{key}.json"
        try:
            response = json.loads(file.read_text("utf-8"))["response"]
            self._count("cache_hits")
            return response
        except (OSError, ValueError, KeyError):
            pass  # not cached (or a damaged file: ask again and overwrite it)
        response = self._request("POST", path, body)
        file.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=file.parent, prefix=".tmp-", suffix=".json")
        try:  # written whole, then renamed: a reader never sees a partial file
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                json.dump({"path": path, "request": body, "response": response}, f, ensure_ascii=False)
            os.replace(tmp, file)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        return response

    def _map(self, fn: Callable[[Any], Any], items: Sequence[Any]) -> list[Any]:
        if len(items) <= 1:
            return [fn(x) for x in items]
        with ThreadPoolExecutor(max_workers=min(self.concurrency, len(items))) as pool:
            return list(pool.map(fn, items))

    # ---- Backend

    def _sampling(self, params: GenParams) -> dict:
        body = {"max_tokens": params.max_tokens, "temperature": params.temperature, "top_p": params.top_p}
        if params.stop:
            body["stop"] = list(params.stop)
        if params.seed is not None:
            body["seed"] = params.seed
        return body

    def complete(self, prompts: Sequence[str], params: GenParams) -> list[str]:
        """Continues raw-text prompts (the chat API gets each as one user message); one string per prompt."""
        if self.api == "chat":
            return self.chat([[{"role": "user", "content": p}] for p in prompts], params)
        body = {"model": self.model, **self._sampling(params)}
        return self._map(lambda p: str(_field(self._post("/completions", {**body, "prompt": p}), "choices", 0,
                                              "text")), list(prompts))

    def chat(self, conversations: Sequence[Sequence[Message]], params: GenParams) -> list[str]:
        """The assistant's next message for each conversation (POST /v1/chat/completions)."""
        body = {"model": self.model, **self._sampling(params)}

        def one(messages: Sequence[Message]) -> str:
            response = self._post("/chat/completions", {**body, "messages": [dict(m) for m in messages]})
            return _field(response, "choices", 0, "message").get("content") or ""

        return self._map(one, list(conversations))

    def score_options(self, prompts: Sequence[str], options: Sequence[str]) -> list[list[float]] | None:
        """Log-prob of each option after each prompt (module docstring: echo, else first-token top log-probs);
        None when the server returns no log-probs."""
        if not prompts or not options:
            return [[] for _ in prompts]
        if self.api == "completions" and self._score_mode in (None, "echo0", "echo1"):
            for mode in ((self._score_mode,) if self._score_mode else ("echo0", "echo1")):
                try:
                    result = self._score_echo(prompts, options, int(mode[-1]))
                except BackendError as err:
                    if err.status is None or err.status >= 500:
                        raise
                    log.info("%s: echo scoring with %s refused (%s)", self.name, mode, err)
                    continue
                if result is not None:
                    self._score_mode = mode
                    return result
                break  # the server answers but gives no prompt log-probs: max_tokens will not change that
            self._score_mode = "top"
        self._score_mode = self._score_mode or "top"
        return None if self._score_mode == "none" else self._score_top(prompts, options)

    def _score_echo(self, prompts: Sequence[str], options: Sequence[str], max_tokens: int) -> list[list[float]] | None:
        def one(pair: tuple[str, str]) -> float | None:
            prompt, option = pair
            body = {"model": self.model, "prompt": prompt + option, "max_tokens": max_tokens, "echo": True,
                    "logprobs": 1, "temperature": 0.0}
            lp = _field(self._post("/completions", body), "choices", 0).get("logprobs")
            if not lp or not lp.get("text_offset") or not lp.get("tokens"):
                return None
            lo, hi, total, covered = len(prompt), len(prompt) + len(option), 0.0, 0
            for token, value, start in zip(lp["tokens"], lp["token_logprobs"], lp["text_offset"], strict=False):
                if start < hi and start + len(token) > lo:  # a token of the option (or across its start)
                    covered += 1
                    total += value or 0.0  # None only for a text's first token (nothing before it)
            return total if covered or not option else None  # no prompt tokens came back: echo unsupported

        pairs = [(p, o) for p in prompts for o in options]
        first = one(pairs[0])  # a probe: tells whether this server echoes log-probs at all
        if first is None:
            return None
        sums = [first, *self._map(one, pairs[1:])]
        if any(s is None for s in sums):
            return None
        n = len(options)
        return [sums[i * n:(i + 1) * n] for i in range(len(prompts))]

    def _score_top(self, prompts: Sequence[str], options: Sequence[str]) -> list[list[float]] | None:
        """Scores from the top log-probs of the first generated token, compared where the options first differ.

        On the completions API the prompt is extended by the options' common text, so the next token is where they
        differ; the chat API cannot continue a text, so its first token is matched against each option as written.
        A listed token counts for every option it starts (or that starts it); one that fits all options says nothing
        and is dropped; an option no listed token fits gets the lowest listed log-prob (an upper bound)."""
        common = os.path.commonprefix(list(options))
        rest = [o[len(common):] for o in options]
        chat, model = self.api == "chat", self.model
        targets = [{t for t in ((o.strip(), r.strip(), r) if chat else (r,)) if t} for o, r in zip(options, rest,
                                                                                                  strict=True)]

        def one(prompt: str) -> list[tuple[str, float]] | None:
            if chat:
                body = {"model": model, "messages": [{"role": "user", "content": prompt}], "max_tokens": 1,
                        "temperature": 0.0, "logprobs": True, "top_logprobs": TOP_LOGPROBS}
                lp = _field(self._post("/chat/completions", body), "choices", 0).get("logprobs")
                content = (lp or {}).get("content") or []
                return [(t["token"], t["logprob"]) for t in content[0].get("top_logprobs") or []] if content else None
            body = {"model": model, "prompt": prompt + common, "max_tokens": 1, "temperature": 0.0,
                    "logprobs": TOP_LOGPROBS}
            lp = _field(self._post("/completions", body), "choices", 0).get("logprobs")
            top = (lp or {}).get("top_logprobs") or []
            return list(top[0].items()) if top and top[0] else None

        out = []
        for listed in self._map(one, list(prompts)):
            if not listed:
                self._score_mode = "none"
                return None
            floor = min(v for _, v in listed)
            scores = []
            for goal in targets:
                hits = {}
                for token, value in listed:
                    t = token.strip() if chat else token
                    fits = [any(g.startswith(t) or t.startswith(g) for g in tg) for tg in targets] if t else []
                    if t and any(g.startswith(t) or t.startswith(g) for g in goal) and not all(fits):
                        hits[token] = value
                top = max(hits.values(), default=floor)  # log-sum-exp of the hits (exactly the value for one)
                scores.append(top + math.log(sum(math.exp(v - top) for v in hits.values())) if hits else floor)
            out.append(scores)
        return out
