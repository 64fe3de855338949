"""The OpenAI-compatible server over a tiny trained run: completions and chat equal the Generator's output, log-probs
and echo, SSE framing of both streams, errors (400 naming the field, 404), and the ``flaxgpt serve`` command."""

from __future__ import annotations

import http.client
import json
import urllib.parse

import numpy as np
import pytest
from test_generate import chat_run  # noqa: F401 (the tiny trained run, reused)

from flaxgpt.data.chat_template import END, ROLES, render
from flaxgpt.infer.generator import Generator, load_generator
from flaxgpt.infer.sampling import SamplingParams
from flaxgpt.serve.openai_api import start_server


@pytest.fixture(scope="module")
def gen(chat_run) -> Generator:  # noqa: F811
    return load_generator(chat_run)


@pytest.fixture(scope="module")
def server(gen):
    srv = start_server(gen)
    yield srv
    srv.shutdown()


def call(server, method: str, path: str, body: object = None, raw: bytes | None = None) -> tuple[int, str, str]:
    """(status, content type, body text) of one request."""
    host = urllib.parse.urlsplit(server.url)
    conn = http.client.HTTPConnection(host.hostname, host.port, timeout=60)
    data = raw if raw is not None else (None if body is None else json.dumps(body).encode())
    conn.request(method, path, body=data, headers={"Content-Type": "application/json"})
    response = conn.getresponse()
    out = (response.status, response.getheader("Content-Type"), response.read().decode())
    conn.close()
    return out


def post(server, path: str, body: object) -> tuple[int, dict]:
    status, _, text = call(server, "POST", path, body)
    return status, json.loads(text)


def greedy(gen, prompt, n: int, **kw):
    return gen.generate([prompt], SamplingParams(temperature=0.0, **kw), max_new_tokens=n)[0]


def chat_stops(gen) -> tuple[int, ...]:
    return tuple(gen.tokenizer.special_ids[t] for t in (END, *ROLES.values()))


def test_health_and_models(server, chat_run):  # noqa: F811
    assert call(server, "GET", "/health")[0] == 200
    status, _, text = call(server, "GET", "/v1/models")
    assert status == 200 and json.loads(text)["data"][0]["id"] == chat_run.name


def test_completions_equal_the_generator_with_logprobs(server, gen):
    status, r = post(server, "/v1/completions", {"prompt": "Hello there", "max_tokens": 6, "temperature": 0,
                                                 "logprobs": 3})
    want = greedy(gen, "Hello there", 6)
    assert status == 200 and r["object"] == "text_completion" and r["id"].startswith("cmpl-")
    choice = r["choices"][0]
    assert choice["text"] == want.text and choice["finish_reason"] == want.finish_reason
    assert r["usage"] == {"prompt_tokens": 2, "completion_tokens": len(want.tokens),
                          "total_tokens": 2 + len(want.tokens)}
    lp = choice["logprobs"]
    np.testing.assert_allclose(lp["token_logprobs"], want.logprobs, atol=1e-5)
    assert "".join(lp["tokens"]) == want.text and lp["text_offset"][0] == len("Hello there")
    for token, value, top in zip(lp["tokens"], lp["token_logprobs"], lp["top_logprobs"], strict=True):
        assert 3 <= len(top) <= 4 and abs(top[token] - value) < 1e-4  # the 3 best, plus the chosen one
        assert max(top.values()) >= value - 1e-6  # greedy: the chosen token is the most likely


def test_echo_with_max_tokens_0_scores_the_prompt(server, gen):
    text = "The answer is: (B)"
    status, r = post(server, "/v1/completions", {"prompt": text, "max_tokens": 0, "echo": True, "logprobs": 0})
    lp = r["choices"][0]["logprobs"]
    ids = gen.tokenizer.encode(text)
    assert status == 200 and r["choices"][0]["text"] == text and len(lp["tokens"]) == len(ids)
    assert lp["token_logprobs"][0] is None and lp["top_logprobs"][0] is None
    np.testing.assert_allclose(lp["token_logprobs"][1:], gen.score([ids[:1]], [ids[1:]])[0], atol=1e-5)
    assert [text[o:o + len(t)] for t, o in zip(lp["tokens"], lp["text_offset"], strict=True)] == lp["tokens"]


def test_several_prompts_token_ids_and_n(server, gen):
    status, r = post(server, "/v1/completions", {"prompt": ["Hello", [15496, 612]], "max_tokens": 3, "n": 2,
                                                 "temperature": 0.9, "seed": 3})
    assert status == 200 and [c["index"] for c in r["choices"]] == [0, 1, 2, 3]
    status, again = post(server, "/v1/completions", {"prompt": ["Hello", [15496, 612]], "max_tokens": 3, "n": 2,
                                                     "temperature": 0.9, "seed": 3})
    assert [c["text"] for c in again["choices"]] == [c["text"] for c in r["choices"]]  # a seed repeats


def test_chat_completions_equal_the_generator(server, gen):
    messages = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": [{"type": "text",
                                                                                          "text": "Who are you?"}]}]
    status, r = post(server, "/v1/chat/completions", {"messages": messages, "max_tokens": 5, "temperature": 0,
                                                      "logprobs": True, "top_logprobs": 2})
    plain = [messages[0], {"role": "user", "content": "Who are you?"}]
    want = greedy(gen, render(plain, gen.tokenizer, add_generation_prompt=True)[0], 5, stop_token_ids=chat_stops(gen))
    assert status == 200 and r["object"] == "chat.completion" and r["id"].startswith("chatcmpl-")
    assert r["choices"][0]["message"] == {"role": "assistant", "content": want.text}
    content = r["choices"][0]["logprobs"]["content"]
    assert len(content) == len(want.tokens) and all(len(c["top_logprobs"]) == 2 for c in content)
    np.testing.assert_allclose([c["logprob"] for c in content], want.logprobs, atol=1e-5)
    assert bytes(sum((c["bytes"] for c in content), [])).decode() == want.text


def frames(text: str) -> list[str]:
    """The SSE events of a stream: each must be one ``data: ...`` line ended by a blank line."""
    assert text.endswith("\n\n")
    events = text[:-2].split("\n\n")
    assert all(e.startswith("data: ") and "\n" not in e for e in events)
    return [e[len("data: "):] for e in events]


def test_chat_stream_is_openai_sse(server, gen):
    body = {"messages": [{"role": "user", "content": "Hi"}], "max_tokens": 6, "temperature": 0, "stream": True,
            "stream_options": {"include_usage": True}}
    status, ctype, text = call(server, "POST", "/v1/chat/completions", body)
    assert status == 200 and ctype == "text/event-stream"
    events = frames(text)
    assert events[-1] == "[DONE]"
    chunks = [json.loads(e) for e in events[:-1]]
    assert all(c["object"] == "chat.completion.chunk" and c["id"] == chunks[0]["id"] for c in chunks)
    assert chunks[0]["choices"][0]["delta"] == {"role": "assistant", "content": ""}
    *content, usage = chunks
    assert usage["choices"] == [] and usage["usage"]["completion_tokens"] >= 1
    assert [c["choices"][0]["finish_reason"] for c in content][-1] in ("stop", "length")
    assert all(c["choices"][0]["finish_reason"] is None for c in content[:-1])
    streamed = "".join(c["choices"][0]["delta"].get("content", "") for c in content)
    _, r = post(server, "/v1/chat/completions", {**body, "stream": False})
    assert streamed == r["choices"][0]["message"]["content"]


def test_completion_stream_with_echo(server):
    body = {"prompt": "Once upon", "max_tokens": 5, "temperature": 0, "stream": True, "echo": True}
    status, ctype, text = call(server, "POST", "/v1/completions", body)
    events = frames(text)
    chunks = [json.loads(e) for e in events[:-1]]
    assert status == 200 and events[-1] == "[DONE]" and all(c["object"] == "text_completion" for c in chunks)
    _, r = post(server, "/v1/completions", {**body, "stream": False})
    assert "".join(c["choices"][0]["text"] for c in chunks) == r["choices"][0]["text"]
    assert r["choices"][0]["text"].startswith("Once upon")


@pytest.mark.parametrize("path,body,param", [
    ("/v1/completions", {"max_tokens": 3}, "prompt"),
    ("/v1/completions", {"prompt": "x", "temperature": "hot"}, "temperature"),
    ("/v1/completions", {"prompt": "x", "top_p": 0}, "top_p"),
    ("/v1/completions", {"prompt": "x", "max_tokens": 0}, "max_tokens"),
    ("/v1/completions", {"prompt": "x", "n": 0}, "n"),
    ("/v1/completions", {"prompt": "x", "logprobs": 99}, "logprobs"),
    ("/v1/completions", {"prompt": "x", "stop": [""]}, "stop"),
    ("/v1/completions", {"prompt": [[1, 2], [99999999]]}, "prompt"),
    ("/v1/completions", {"prompt": "word " * 200}, "prompt"),
    ("/v1/completions", {"prompt": "x", "stream": True, "logprobs": 1}, "logprobs"),
    ("/v1/chat/completions", {"messages": []}, "messages"),
    ("/v1/chat/completions", {"messages": [{"role": "robot", "content": "hi"}]}, "messages[0].role"),
    ("/v1/chat/completions", {"messages": [{"role": "user", "content": 5}]}, "messages[0].content"),
    ("/v1/chat/completions", {"messages": [{"role": "user", "content": "x"}], "top_logprobs": 2}, "top_logprobs"),
])
def test_bad_fields_are_400_naming_the_field(server, path, body, param):
    status, r = post(server, path, body)
    assert status == 400 and r["error"]["param"] == param and r["error"]["type"] == "invalid_request_error"
    assert r["error"]["message"]


def test_malformed_json_and_unknown_paths(server):
    status, ctype, text = call(server, "POST", "/v1/completions", raw=b'{"prompt": "x",')
    assert status == 400 and ctype == "application/json" and "malformed JSON" in json.loads(text)["error"]["message"]
    assert call(server, "POST", "/v1/completions", raw=b"[1, 2]")[0] == 400
    status, _, text = call(server, "POST", "/v1/embeddings", {"input": "x"})
    assert status == 404 and "unknown path" in json.loads(text)["error"]["message"]
    assert call(server, "GET", "/v2/nothing")[0] == 404
    assert call(server, "GET", "/health")[0] == 200  # still serving


def test_api_key_is_required_when_set(gen):
    srv = start_server(gen, api_key="sesame")
    try:
        assert call(srv, "GET", "/v1/models")[0] == 401
        assert call(srv, "GET", "/health")[0] == 200
    finally:
        srv.shutdown()


def test_flaxgpt_serve_command_is_registered(capsys):
    from flaxgpt.cli.main import main

    with pytest.raises(SystemExit) as exit_:
        main(["serve", "--help"])
    assert exit_.value.code == 0
    out = capsys.readouterr().out
    assert all(flag in out for flag in ("RUN_DIR", "--host", "--port", "--int8"))
