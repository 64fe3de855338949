"""A minimal OpenAI-compatible HTTP server over one flaxgpt run (standard library only).

    GET  /health                 {"status": "ok"}
    GET  /v1/models              the one model (named after the run directory unless --name)
    POST /v1/completions         prompt: a string, a list of strings, token ids or lists of token ids; max_tokens,
                                 temperature, top_p, top_k, min_p, the penalties, stop, seed, n, logprobs (top-k,
                                 up to infer.scoring.TOP_K), echo (max_tokens 0 with echo only scores the prompt)
    POST /v1/chat/completions    messages through the chat template (flaxgpt.data.chat_template); max_tokens or
                                 max_completion_tokens, logprobs / top_logprobs, the same sampling fields
    ``"stream": true``           server-sent events ``data: {chunk}\\n\\n`` in OpenAI's chunk shapes, then
                                 ``data: [DONE]\\n\\n``; ``stream_options.include_usage`` adds a usage chunk

Malformed JSON or a bad field is a 400 whose OpenAI-style error object names the field (``error.param``); an
unknown path is a 404. Requests run one at a time: a ``ThreadingHTTPServer`` thread per connection, one lock
around the Generator (its compiled buckets serve every request; a request batches its own prompts and ``n``).
Log-probs of generated tokens come from the sampler; top alternatives and echoed prompt tokens from one scoring
forward (``flaxgpt.infer.scoring``). Streaming with log-probs is not supported (a 400 says so).
"""

from __future__ import annotations

import json
import logging
import secrets
import threading
import time
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from flaxgpt.infer.generator import Completion, Generator, TokenDelta, load_generator
from flaxgpt.infer.sampling import SamplingParams
from flaxgpt.serve.protocol import (
    BadRequest,
    Options,
    chat_prompt,
    completion_logprobs,
    error_body,
    parse_prompts,
    read_options,
    sampling_params,
)

log = logging.getLogger(__name__)


class OpenAIServer(ThreadingHTTPServer):
    """The HTTP server: ``serve_forever()`` in the foreground, or ``start()`` in a daemon thread (tests).

    ``url`` is its base URL, ``stats`` counts requests per path, ``shutdown()`` stops it and frees the port.
    """

    daemon_threads = True

    def __init__(self, generator: Generator, host: str = "127.0.0.1", port: int = 8000, *, name: str | None = None,
                 api_key: str | None = None):
        if generator.tokenizer is None:
            raise ValueError("the server needs a Generator with a tokenizer")
        self.generator = generator
        run = getattr(generator, "run", None)
        self.model_name = name or (Path(run.run_dir).name if run is not None else "flaxgpt")
        self.api_key = api_key
        self.created = int(time.time())
        self.lock = threading.Lock()  # one request on the device at a time
        self.stats: Counter[str] = Counter()
        self._stats_lock = threading.Lock()
        self._thread: threading.Thread | None = None
        super().__init__((host, port), _Handler)

    @property
    def url(self) -> str:
        """``http://host:port`` (the bound port, also when 0 asked for a free one)."""
        host, port = self.server_address[:2]
        return f"http://{host}:{port}"

    def count(self, path: str) -> None:
        with self._stats_lock:
            self.stats[path] += 1

    def start(self) -> OpenAIServer:
        """Serves in a daemon thread; returns self."""
        self._thread = threading.Thread(target=self.serve_forever, name="flaxgpt-serve", daemon=True)
        self._thread.start()
        return self

    def shutdown(self) -> None:
        """Stops serving (waits for the loop when it runs) and closes the socket."""
        if self._thread is not None:
            super().shutdown()
            self._thread.join()
            self._thread = None
        self.server_close()


def start_server(model: str | Path | Generator, host: str = "127.0.0.1", port: int = 0, **kw: Any) -> OpenAIServer:
    """A server for a run directory or Generator, started in a background thread (port 0: a free port).
    ``kw``: OpenAIServer's name/api_key, or load_generator's int8/max_len/step for a directory."""
    server_kw = {k: kw.pop(k) for k in ("name", "api_key") if k in kw}
    if not isinstance(model, Generator):
        model = load_generator(model, kw.pop("step", None), **kw)
    elif kw:
        raise TypeError(f"unexpected arguments for a ready Generator: {sorted(kw)}")
    return OpenAIServer(model, host, port, **server_kw).start()


def serve(run_dir: str | Path, host: str = "127.0.0.1", port: int = 8000, *, step: int | None = None,
          int8: bool = False, max_len: int | None = None, name: str | None = None, api_key: str | None = None,
          warmup: bool = False) -> None:
    """Loads a run and serves it until interrupted (Ctrl-C)."""
    generator = load_generator(run_dir, step, int8=int8, max_len=max_len)
    if warmup:
        log.warning("compiling every bucket (--warmup)...")
        generator.warmup()
    server = OpenAIServer(generator, host, port, name=name, api_key=api_key)
    print(f"serving {server.model_name} (step {generator.run.step}) on {server.url}/v1", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()


# ------------------------------------------------------------------------------------------------ requests


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: OpenAIServer

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 (the base class's name)
        log.debug("%s %s", self.address_string(), format % args)

    def _send_json(self, status: int, body: dict) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _error(self, err: BadRequest) -> None:
        self._send_json(err.status, error_body(err))

    def _authorized(self) -> bool:
        if not self.server.api_key or self.headers.get("Authorization") == f"Bearer {self.server.api_key}":
            return True
        self._error(BadRequest("invalid or missing API key (Authorization: Bearer ...)", status=401,
                               kind="authentication_error"))
        return False

    def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
        path = self.path.split("?", 1)[0].rstrip("/")
        self.server.count(path)
        if path in ("/health", "/v1/health"):
            self._send_json(200, {"status": "ok"})
        elif not self._authorized():
            return
        elif path == "/v1/models":
            self._send_json(200, {"object": "list", "data": [
                {"id": self.server.model_name, "object": "model", "created": self.server.created,
                 "owned_by": "flaxgpt", "max_model_len": self.server.generator.max_len}]})
        else:
            self._error(BadRequest(f"unknown path {path!r}", status=404, kind="not_found_error"))

    def do_POST(self) -> None:  # noqa: N802
        path = self.path.split("?", 1)[0].rstrip("/")
        self.server.count(path)
        raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))  # read it all: keep-alive stays in sync
        if not self._authorized():
            return
        handlers = {"/v1/completions": self._completions, "/v1/chat/completions": self._chat}
        if path not in handlers:
            self._error(BadRequest(f"unknown path {path!r}", status=404, kind="not_found_error"))
            return
        try:
            try:
                body = json.loads(raw)
            except ValueError as err:
                raise BadRequest(f"malformed JSON body: {err}") from None
            if not isinstance(body, dict):
                raise BadRequest("the request body must be a JSON object")
            handlers[path](body)
        except BadRequest as err:
            self._error(err)
        except (BrokenPipeError, ConnectionResetError):
            log.info("client went away during %s", path)
        except Exception as err:  # a bug, not the client's fault: say so, keep serving
            log.exception("error serving %s", path)
            self._error(BadRequest(f"internal error: {type(err).__name__}: {err}", status=500, kind="server_error"))

    # ---- the two endpoints

    def _completions(self, body: dict) -> None:
        gen = self.server.generator
        opts = read_options(body, chat=False)
        texts, ids = parse_prompts(body.get("prompt"), gen)
        for i, p in enumerate(ids):
            limit = gen.cfg.max_len if opts.max_tokens == 0 else gen.max_len - 1
            if len(p) > limit:
                raise BadRequest(f"prompt {i} has {len(p)} tokens; at most {limit} fit the model's context "
                                 f"({gen.max_len} tokens) with room to generate", "prompt")
        self._respond(body, opts, texts, ids, sampling_params(body), chat=False)

    def _chat(self, body: dict) -> None:
        gen = self.server.generator
        opts = read_options(body, chat=True)
        prompt, stop_ids = chat_prompt(body.get("messages"), gen)
        if len(prompt) >= gen.max_len:
            raise BadRequest(f"the messages render to {len(prompt)} tokens; the model's context is {gen.max_len}",
                             "messages")
        self._respond(body, opts, [""], [prompt], sampling_params(body, stop_ids), chat=True)

    def _respond(self, body: dict, opts: Options, texts: list[str], ids: list[list[int]], sampling: SamplingParams,
                 *, chat: bool) -> None:
        gen, n = self.server.generator, opts.n
        rows = [p for p in ids for _ in range(n)]
        row_texts = [t for t in texts for _ in range(n)]
        max_new = opts.max_tokens if opts.max_tokens is not None else gen.max_len - max(map(len, rows))
        head = {"id": ("chatcmpl-" if chat else "cmpl-") + secrets.token_hex(12), "object": None,
                "created": int(time.time()), "model": self.server.model_name}  # "object" is set per response
        if body.get("stream"):
            self._stream(head, opts, rows, row_texts, sampling, max_new, chat=chat)
            return
        with self.server.lock:
            done = (gen.generate(rows, sampling, max_new) if max_new > 0 else
                    [Completion(p, [], "", [], "length") for p in rows])
            logprobs = completion_logprobs(gen, rows, row_texts, done, opts, chat=chat)
        choices = []
        for i, (c, text) in enumerate(zip(done, row_texts, strict=True)):
            if chat:
                choice = {"index": i, "message": {"role": "assistant", "content": c.text},
                          "logprobs": logprobs[i], "finish_reason": c.finish_reason}
            else:
                choice = {"index": i, "text": (text if opts.echo else "") + c.text, "logprobs": logprobs[i],
                          "finish_reason": c.finish_reason}
            choice["stop_reason"] = c.stop_reason if isinstance(c.stop_reason, str) else None
            choices.append(choice)
        prompt_tokens = sum(len(p) for p in ids)
        completion_tokens = sum(len(c.tokens) for c in done)
        self._send_json(200, {**head, "object": "chat.completion" if chat else "text_completion", "choices": choices,
                              "usage": {"prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens,
                                        "total_tokens": prompt_tokens + completion_tokens}})

    def _stream(self, head: dict, opts: Options, rows: list[list[int]], row_texts: list[str],
                sampling: SamplingParams, max_new: int, *, chat: bool) -> None:
        if opts.logprobs is not None:
            raise BadRequest("logprobs with stream=true is not supported", "logprobs")
        if max_new < 1:
            raise BadRequest("max_tokens must be >= 1 when streaming", "max_tokens")
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Cache-Control", "no-cache")
        self.send_header("Connection", "close")  # the end of the stream is the end of the connection
        self.end_headers()
        self.close_connection = True
        obj = "chat.completion.chunk" if chat else "text_completion"

        def send(choices: list[dict], **extra: Any) -> None:
            self.wfile.write(f"data: {json.dumps({**head, 'object': obj, 'choices': choices, **extra})}\n\n".encode())
            self.wfile.flush()

        def choice(i: int, text: str | None, finish: str | None, role: bool = False) -> dict:
            if chat:
                delta = {"role": "assistant", "content": ""} if role else ({"content": text} if text else {})
                return {"index": i, "delta": delta, "logprobs": None, "finish_reason": finish}
            return {"index": i, "text": text or "", "logprobs": None, "finish_reason": finish}

        for i, text in enumerate(row_texts):  # the role first (chat), or the echoed prompt (completions)
            if chat or (opts.echo and text):
                send([choice(i, text, None, role=chat)])

        def on_delta(d: TokenDelta) -> None:
            if d.text or d.finish_reason:
                send([choice(d.index, d.text, d.finish_reason)])

        try:
            with self.server.lock:
                done = self.server.generator.generate(rows, sampling, max_new, callback=on_delta)
        except (BrokenPipeError, ConnectionResetError):
            raise
        except Exception as err:  # headers are out: report in the stream, as OpenAI servers do
            log.exception("error while streaming")
            self.wfile.write(f"data: {json.dumps(error_body(BadRequest(str(err), status=500)))}\n\n".encode())
            self.wfile.write(b"data: [DONE]\n\n")
            return
        if opts.include_usage:
            prompt_tokens = sum(len(p) for p in rows[::opts.n])
            completion_tokens = sum(len(c.tokens) for c in done)
            send([], usage={"prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens,
                            "total_tokens": prompt_tokens + completion_tokens})
        self.wfile.write(b"data: [DONE]\n\n")
        self.wfile.flush()
