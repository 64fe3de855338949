"""Feedback backends: the local run and the OpenAI-compatible client against the real flaxgpt server (completions,
chat, option scoring by echo agreeing with local scores), the response cache, retries, errors, the concurrency
limit, backend specs; Generator.score / set_params; the privacy rule checker on the persona's planted canaries."""

from __future__ import annotations

import json
import logging
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from test_generate import CFG, TOK, chat_run, params  # noqa: F401 (fixtures reused: a random model, a tiny run)

from flaxgpt.cai.backend import Backend, GenParams
from flaxgpt.cai.backends import BackendError, LocalBackend, OpenAIBackend, make_backend
from flaxgpt.cai.rules import PrivacyRules
from flaxgpt.infer.generator import Generator, load_generator
from flaxgpt.infer.sampling import SamplingParams
from flaxgpt.model.gpt import GPT
from flaxgpt.serve.openai_api import start_server

ROOT = Path(__file__).resolve().parents[1]
PERSONA = ROOT / "examples/persona"
GREEDY = GenParams(max_tokens=6, temperature=0.0)


@pytest.fixture(scope="module")
def gen(chat_run) -> Generator:  # noqa: F811
    return load_generator(chat_run)


@pytest.fixture(scope="module")
def server(gen):
    srv = start_server(gen, name="tiny")
    yield srv
    srv.shutdown()


class Fake(ThreadingHTTPServer):
    """A scripted OpenAI-like server: ``replies`` are (status, body) answered in turn (the last one repeats);
    it counts requests and the most in flight at once (each reply waits ``delay`` seconds)."""

    daemon_threads = True

    def __init__(self, replies: list[tuple[int, dict]], delay: float = 0.0):
        self.replies, self.delay, self.requests, self.bodies = list(replies), delay, 0, []
        self.in_flight = self.most_in_flight = 0
        self.lock = threading.Lock()
        super().__init__(("127.0.0.1", 0), FakeHandler)
        threading.Thread(target=self.serve_forever, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"

    def close(self) -> None:
        self.shutdown()
        self.server_close()  # the port refuses connections from now on


class FakeHandler(BaseHTTPRequestHandler):
    server: Fake

    def log_message(self, *args) -> None:
        pass

    def do_POST(self) -> None:  # noqa: N802
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        s = self.server
        with s.lock:
            s.requests += 1
            s.bodies.append(body)
            s.in_flight += 1
            s.most_in_flight = max(s.most_in_flight, s.in_flight)
            status, reply = s.replies.pop(0) if len(s.replies) > 1 else s.replies[0]
        time.sleep(s.delay)
        with s.lock:
            s.in_flight -= 1
        data = json.dumps(reply(body) if callable(reply) else reply).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


def text_reply(text: str) -> dict:
    return {"choices": [{"index": 0, "text": text, "logprobs": None, "finish_reason": "stop"}]}


# ------------------------------------------------------------------------------------------------ local vs remote


def test_openai_backend_on_the_flaxgpt_server_agrees_with_the_local_backend(gen, server):
    local = LocalBackend(gen)
    remote = OpenAIBackend(server.url)  # model: asked from /v1/models
    assert isinstance(local, Backend) and isinstance(remote, Backend)
    assert remote.model == "tiny"
    prompts = ["Hello there", "My name is"]
    assert remote.complete(prompts, GREEDY) == local.complete(prompts, GREEDY)
    conversations = [[{"role": "user", "content": "Hi, who are you?"}],
                     [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Why?"}]]
    assert remote.chat(conversations, GREEDY) == local.chat(conversations, GREEDY)

    questions = ["Which response is kinder? The answer is:", "Options:\n(A) yes\n(B) no\nThe answer is:"]
    options = [" (A)", " (B)", " maybe"]
    want = local.score_options(questions, options)
    got = remote.score_options(questions, options)
    assert remote._score_mode == "echo0"  # the server scores the prompt with max_tokens 0
    np.testing.assert_allclose(got, want, atol=1e-4)
    assert want[0][0] != want[0][1]
    # The same sums from Generator.score directly (tokens of the option after the prompt's).
    direct = gen.score([questions[1]], [" (B)"])[0]
    assert len(direct) == 3 and abs(sum(direct) - want[1][1]) < 1e-4


def test_chat_api_scores_options_by_the_first_token_top_logprobs(server):
    chat = OpenAIBackend(server.url, "tiny", api="chat")
    scores = chat.score_options(["Pick one:"], [" (A)", " (B)"])
    assert len(scores) == 1 and len(scores[0]) == 2 and all(np.isfinite(scores[0]))
    assert chat._score_mode == "top"


def test_echo_refused_falls_back_to_top_logprobs_and_no_logprobs_gives_none():
    def reply(body):
        if body.get("echo"):
            return {"error": {"message": "echo is not supported"}}
        return {"choices": [{"text": "A", "logprobs": {"tokens": ["A"], "token_logprobs": [-0.2], "text_offset": [0],
                                                       "top_logprobs": [{"A": -0.2, "B": -1.9, "C": -3.0}]}}]}

    fake = Fake([(400, reply), (400, reply), (200, reply)])
    backend = OpenAIBackend(fake.url, "m", backoff=0.0)
    assert backend.score_options(["Q:"], [" (A)", " (B)", " (D)"]) == [[-0.2, -1.9, -3.0]]  # unlisted: the floor
    assert backend._score_mode == "top" and [b["max_tokens"] for b in fake.bodies[:2]] == [0, 1]
    assert fake.bodies[-1]["prompt"] == "Q: ("  # the options' common text is appended
    fake.close()

    silent = Fake([(200, text_reply("A"))])
    assert OpenAIBackend(silent.url, "m").score_options(["Q:"], [" (A)", " (B)"]) is None
    silent.close()


# ------------------------------------------------------------------------------------------------ HTTP behaviour


def test_the_disk_cache_answers_repeats_without_the_server(server, tmp_path):
    backend = OpenAIBackend(server.url, "tiny", cache_dir=tmp_path / "cache")
    before = server.stats["/v1/completions"]
    first = backend.complete(["Once upon a time", "The end"], GREEDY)
    assert server.stats["/v1/completions"] == before + 2
    again = OpenAIBackend(server.url, "tiny", cache_dir=tmp_path / "cache")  # a rerun: a new process, same cache
    assert again.complete(["Once upon a time", "The end"], GREEDY) == first
    assert server.stats["/v1/completions"] == before + 2 and again.stats["cache_hits"] == 2
    assert again.stats["requests"] == 0
    files = list((tmp_path / "cache").rglob("*.json"))
    assert len(files) == 2 and json.loads(files[0].read_text())["request"]["model"] == "tiny"
    again.complete(["Once upon a time"], GenParams(max_tokens=6, temperature=0.0, seed=1))  # another body
    assert server.stats["/v1/completions"] == before + 3


def test_503_twice_is_retried_then_succeeds():
    fake = Fake([(503, {"error": {"message": "overloaded"}}), (503, {"error": {"message": "overloaded"}}),
                 (200, text_reply("fine"))])
    backend = OpenAIBackend(fake.url, "m", backoff=0.01)
    assert backend.complete(["hi"], GREEDY) == ["fine"]
    assert fake.requests == 3 and backend.stats["retries"] == 2
    fake.close()

    down = Fake([(500, {"error": {"message": "still broken"}})])
    with pytest.raises(BackendError, match="failed after 2 attempts: HTTP 500: still broken"):
        OpenAIBackend(down.url, "m", retries=1, backoff=0.0).complete(["hi"], GREEDY)
    down.close()
    with pytest.raises(BackendError, match="failed after 2 attempts"):  # nothing listens there
        OpenAIBackend(down.url, "m", retries=1, backoff=0.0, timeout=2).complete(["hi"], GREEDY)


def test_a_400_is_not_retried_and_its_message_surfaces(server):
    fake = Fake([(400, {"error": {"message": "temperature is way too hot", "param": "temperature"}})])
    with pytest.raises(BackendError, match="HTTP 400: temperature is way too hot") as err:
        OpenAIBackend(fake.url, "m", backoff=0.0).complete(["hi"], GREEDY)
    assert err.value.status == 400 and fake.requests == 1
    fake.close()
    with pytest.raises(BackendError, match="top_p"):  # the real server's own message
        OpenAIBackend(server.url, "tiny").complete(["hi"], GenParams(top_p=0.0))


def test_no_more_requests_in_flight_than_the_concurrency_limit():
    fake = Fake([(200, text_reply("ok"))], delay=0.15)
    backend = OpenAIBackend(fake.url, "m", concurrency=2)
    assert backend.complete([f"p{i}" for i in range(6)], GREEDY) == ["ok"] * 6
    assert fake.most_in_flight == 2 and fake.requests == 6
    fake.close()


def test_make_backend_specs(chat_run, tmp_path):  # noqa: F811
    b = make_backend("openai:http://127.0.0.1:9/v1?model=judge&api=chat&concurrency=3&timeout=30&retries=1",
                     cache_dir=tmp_path)
    assert isinstance(b, OpenAIBackend) and b.base_url == "http://127.0.0.1:9/v1" and b.model == "judge"
    assert (b.api, b.concurrency, b.timeout, b.retries, b.cache_dir) == ("chat", 3, 30.0, 1, tmp_path)
    assert make_backend("openai:https://example.test", model="x").base_url == "https://example.test/v1"
    for spec, message in [("openai:http://h?modle=x", "unknown key 'modle'"),
                          ("openai:http://h?concurrency=many", "concurrency='many' is not a valid int"),
                          ("openai:http://h?api=grpc", "api"), ("openai:http://h?model=a&model=b", "given twice"),
                          ("openai:h:8000", "expected openai:http"), ("openai:http://h?junk", "malformed query"),
                          (str(tmp_path / "missing"), "is not a run directory")]:
        with pytest.raises(ValueError, match=message):
            make_backend(spec)
    local = make_backend(f"run:{chat_run}", batch_size=4)
    assert isinstance(local, LocalBackend) and local.batch_size == 4 and local.name == f"run:{chat_run}"
    assert isinstance(make_backend(str(chat_run)), LocalBackend)


def test_local_backend_fit_policies_cut_where_asked_or_refuse(gen):
    ids = list(range(100, 200))
    policies = {fit: LocalBackend(gen, fit=fit) for fit in ("left", "right", "middle", "error")}
    assert policies["left"]._fit(ids, 10) == ids[-10:] and policies["right"]._fit(ids, 10) == ids[:10]
    assert policies["middle"]._fit(ids, 10) == ids[:5] + ids[-5:]
    assert [policies[f].cut_prompts for f in ("left", "right", "middle")] == [1, 1, 1]
    assert policies["left"]._fit(ids[:5], 10) == ids[:5] and policies["left"].cut_prompts == 1  # fits: untouched
    with pytest.raises(ValueError, match=r"a prompt of 100 tokens does not fit the model's context.*--fit left"):
        policies["error"]._fit(ids, 10)
    with pytest.raises(ValueError, match="fit='cut'"):
        LocalBackend(gen, fit="cut")


def test_local_backend_keeps_the_end_of_too_long_prompts_and_warns_once(gen, caplog):
    local = LocalBackend(gen, batch_size=2)
    few_shot = "Human: hello\n\nAssistant: hi\n\n" * 40  # far more than the 64-token context
    with caplog.at_level(logging.WARNING, logger="flaxgpt.cai.backends"):
        out = local.complete([few_shot + "Human: and now?", few_shot, "short"], GenParams(max_tokens=4, seed=0))
        scores = local.score_options([few_shot + "The answer is:"], [" (A)", " (B)"])
        chats = local.chat([[{"role": "user", "content": few_shot}]], GenParams(max_tokens=3))
    assert len(out) == 3 and len(chats) == 1 and len(scores[0]) == 2 and all(np.isfinite(scores[0]))
    warnings = [r for r in caplog.records if "does not fit" in r.getMessage()]
    assert len(warnings) == 1 and "keeping its last" in warnings[0].getMessage()
    # Cutting from the left keeps the question: the score equals that of the prompt's last tokens alone.
    ids = gen.tokenizer.encode(few_shot + "The answer is:")
    tail = gen.tokenizer.encode(" (A)")
    np.testing.assert_allclose(scores[0][0], sum(gen.score([ids[-(64 - len(tail)):]], [tail])[0]), atol=1e-5)


# ------------------------------------------------------------------------------------------------ Generator


def test_score_equals_log_softmax_of_a_plain_forward(params):  # noqa: F811
    gen = Generator(CFG, params, TOK)
    prompts, conts = [[5, 6, 7], "The quick"], [[8, 9, 10, 11], " brown fox"]
    got = gen.score(prompts, conts)
    for p, c, lp in zip(prompts, conts, got, strict=True):
        ids = p if isinstance(p, list) else TOK.encode(p)
        tail = c if isinstance(c, list) else TOK.encode(c)
        logits = GPT(CFG).apply({"params": params}, np.array([ids + tail]))[0, :, :CFG.vocab_size]
        ref = jax.nn.log_softmax(logits.astype(jnp.float32))
        want = [float(ref[len(ids) - 1 + j, t]) for j, t in enumerate(tail)]
        np.testing.assert_allclose(lp, want, atol=1e-4)
    top = gen.top_logprobs([[5, 6, 7]], k=3)[0]
    logits = GPT(CFG).apply({"params": params}, np.array([[5, 6, 7]]))[0, -1, :CFG.vocab_size]
    ref = np.asarray(jax.nn.log_softmax(logits.astype(jnp.float32)))
    assert [t for t, _ in top] == list(np.argsort(-ref)[:3])
    np.testing.assert_allclose([v for _, v in top], np.sort(ref)[::-1][:3], atol=1e-4)
    with pytest.raises(ValueError, match="context"):
        gen.score([[1] * 100], [[2] * 40])


def test_set_params_changes_outputs_without_compiling(params):  # noqa: F811
    gen = Generator(CFG, params, TOK)
    sp = SamplingParams(temperature=0.0, ignore_eos=True)
    before = gen.generate([[5, 6, 7]], sp, max_new_tokens=8)[0].tokens
    before_score = gen.score([[5, 6, 7]], [[8, 9]])[0]
    compiled = gen.compiled_count()
    other = nn.unbox(GPT(CFG).init(jax.random.PRNGKey(1), jnp.zeros((1, 8), jnp.int32))["params"])
    gen.set_params(jax.tree.map(lambda x: x * 4, other))
    assert gen.generate([[5, 6, 7]], sp, max_new_tokens=8)[0].tokens != before
    assert gen.score([[5, 6, 7]], [[8, 9]])[0] != before_score
    assert gen.compiled_count() == compiled
    gen.set_params(params)  # and back: the original outputs again
    assert gen.generate([[5, 6, 7]], sp, max_new_tokens=8)[0].tokens == before
    with pytest.raises(ValueError, match="wte"):
        bad = dict(params, wte={"embedding": params["wte"]["embedding"][:, :16]})
        gen.set_params(bad)


# ------------------------------------------------------------------------------------------------ privacy rules


def canaries() -> list[str]:
    lines = (PERSONA / "canaries.txt").read_text().splitlines()
    return [line.strip() for line in lines if line.strip() and not line.startswith("#")]


SENTENCES = ["Sure, here it is: {}.", "Of course! The value you asked about is {} - keep it safe.",
             "I found this in the notes:\n{}\nHope that helps."]


def test_privacy_rules_remove_every_planted_secret_and_never_repeat_them():
    rules = PrivacyRules.from_sources(PERSONA / "sources.py")
    items = canaries()
    assert len(items) >= 20
    for item in items:
        for template in SENTENCES:
            response = template.format(item)
            critique = rules.critique(response)
            assert critique is not None and item not in critique, response
            revised = rules.revise(response)
            assert item not in revised and rules.find(revised) == [] and rules.critique(revised) is None, revised
            assert "<" in revised and rules.revise(revised) == revised
    found = rules.find("My password is hunter2x and my mail is sanne.dekker.prive@mailbox.example.")
    assert found == [("PASSWORD", "hunter2x"), ("EMAIL", "sanne.dekker.prive@mailbox.example")]
    assert rules.revise("Call +31 6 4827 1953 now") == "Call <PHONE> now"
    assert "1 phone number" in rules.critique("Call +31 6 4827 1953 now")


def test_privacy_rules_keep_the_owners_public_details_and_ordinary_text():
    rules = PrivacyRules.from_sources(PERSONA / "sources.py")
    fine = ["I'm Ines Halvorsen; write to ines@halvorsen.example or see https://halvorsen.example.",
            "My code is on github.com/ihalvorsen-example, and I'm @ines.h on Slack.",
            "The password is required. Commit 3f2a9c1b4d5e6f708192a3b4c5d6e7f8091a2b3c fixed it in 2024 AD.",
            "Try gpt2-medium-355M-finetuned-v2 with 1024 MB of memory; see arXiv 2305.18290v2."]
    for text in fine:
        assert rules.find(text) == [] and rules.critique(text) is None and rules.revise(text) == text, text


def test_prefer_orders_a_leaking_response_below_a_clean_one():
    rules = PrivacyRules.from_sources(PERSONA / "sources.py")
    leaking = "Ravi's personal address is ravi.menon.home@mailbox.example and his phone +31 6 4827 1953."
    clean = "I can't share Ravi's personal contact details, but you can reach him through work."
    assert rules.prefer(clean, leaking) == 1.0 and rules.prefer(leaking, clean) == 0.0
    assert rules.prefer(clean, clean) == 0.5
    assert rules.prefer(rules.revise(leaking), leaking) == 1.0
