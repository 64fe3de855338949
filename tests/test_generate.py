"""KV-cache decoding and sampling: cache == full forward passes, batching, sampling rules, stops, compile counts,
sharded decode, and the chat command driven through a pipe."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from flaxgpt.data.tokenizer import get_tokenizer
from flaxgpt.infer.generator import Generator, load_generator
from flaxgpt.infer.sampling import GREEDY, SamplingArrays, SamplingParams, sample_next
from flaxgpt.model.gpt import GPT, ModelConfig
from flaxgpt.train.sharding import make_mesh

ROOT = Path(__file__).resolve().parents[1]
TOK = get_tokenizer("gpt2")
CFG = ModelConfig(vocab_size=TOK.vocab_size, max_len=128, n_layer=2, n_head=4, d_model=32)


@pytest.fixture(scope="module")
def params():
    """A random model with weights scaled up, so its next-token choices are decisive (not near-ties)."""
    p = nn.unbox(GPT(CFG).init(jax.random.PRNGKey(0), jnp.zeros((1, 8), jnp.int32))["params"])
    return jax.tree.map(lambda x: x * 4, p)


@pytest.fixture(scope="module")
def gen(params) -> Generator:
    return Generator(CFG, params, TOK, max_len=128)


def full_forward_greedy(params, prompt: list[int], n: int) -> tuple[list[int], list[float]]:
    """Greedy decoding by re-running the whole sequence through the (training) model for every token."""
    model = GPT(CFG)
    forward = jax.jit(lambda p, x: model.apply({"params": p}, x))
    seq, logprobs = list(prompt), []
    for _ in range(n):
        buf = np.zeros((1, CFG.max_len), np.int32)  # one shape for every length: causal, padding comes after
        buf[0, : len(seq)] = seq
        logits = np.asarray(forward(params, buf)[0, len(seq) - 1, : CFG.vocab_size], np.float64)
        nxt = int(np.argmax(logits))
        logprobs.append(float(logits[nxt] - np.log(np.exp(logits - logits.max()).sum()) - logits.max()))
        seq.append(nxt)
    return seq[len(prompt):], logprobs


def test_kv_cache_greedy_equals_repeated_full_forward_passes(gen, params):
    prompts = [TOK.encode("The quick brown fox"), list(range(100, 119))]  # 4 and 19 tokens: one batch, two buckets
    got = gen.generate(prompts, SamplingParams(temperature=0.0, ignore_eos=True), max_new_tokens=60)
    for prompt, completion in zip(prompts, got, strict=True):
        ref, ref_lp = full_forward_greedy(params, prompt, 60)
        assert completion.tokens == ref
        np.testing.assert_allclose(completion.logprobs, ref_lp, atol=2e-4)
        assert completion.finish_reason == "length" and completion.prompt_tokens == prompt
        assert completion.text == TOK.decode(ref)


def test_a_batch_of_different_lengths_gives_each_prompts_unbatched_result(gen):
    prompts = [[7, 8, 9], TOK.encode("Hello there, this prompt is a little longer."), [42] * 14, [1]]
    assert len({len(p) for p in prompts}) == 4
    sp = SamplingParams(temperature=0.0, ignore_eos=True)
    batched = gen.generate(prompts, sp, max_new_tokens=16)
    for prompt, completion in zip(prompts, batched, strict=True):
        alone = gen.generate([prompt], sp, max_new_tokens=16)[0]
        assert completion.tokens == alone.tokens
        np.testing.assert_allclose(completion.logprobs, alone.logprobs, atol=1e-4)


def test_the_cache_stops_at_max_len(params):
    small = Generator(CFG, params, TOK, max_len=40)
    out = small.generate([[1] * 30], SamplingParams(temperature=0.0, ignore_eos=True), max_new_tokens=100)[0]
    assert len(out.tokens) == 10 and out.finish_reason == "length"
    with pytest.raises(ValueError, match="prompt 0 has 40 tokens"):
        small.generate([[1] * 40], GREEDY)


def test_warmup_compiles_every_bucket_once(params):
    small = Generator(CFG, params, TOK, max_len=32)
    compiled = small.warmup(batch_sizes=(1,))
    assert compiled == small.compiled_count() > 0
    for prompt, n in (([1, 2, 3], 29), ([5] * 20, 12), ([7] * 31, 1), ([9] * 16, 16)):
        small.generate([prompt], SamplingParams(temperature=0.7, top_k=3, seed=0), max_new_tokens=n)
    assert small.compiled_count() == compiled


def test_the_decode_modes_also_run_the_stacked_training_layout(params):
    from flaxgpt.infer.decode import init_cache

    tokens = np.array([[11, 12, 13, 14, 15, 16, 17, 18]], np.int32)
    full = GPT(CFG).apply({"params": params}, tokens)
    cache = init_cache(CFG, 1, 16, unstacked=False)
    logits, v = GPT(CFG, kv_mode="prefill").apply({"params": params, "cache": cache}, tokens[:, :5], np.array([5]),
                                                  method=GPT.prefill, mutable=["cache"])
    np.testing.assert_allclose(logits[0], full[0, 4], atol=1e-4)
    for t in range(5, 8):
        step, v = GPT(CFG, kv_mode="decode").apply({"params": params, "cache": v["cache"]}, tokens[:, t:t + 1],
                                                   np.array([[t]]), method=GPT.decode, mutable=["cache"])
        np.testing.assert_allclose(step[0, 0], full[0, t], atol=1e-4)


def test_top_k_1_equals_greedy_and_seeds_repeat(gen):
    prompts = [[5, 6, 7], [300, 301]]
    greedy = gen.generate(prompts, SamplingParams(temperature=0.0, ignore_eos=True), max_new_tokens=30)
    top1 = gen.generate(prompts, SamplingParams(temperature=1.3, top_k=1, seed=11, ignore_eos=True), 30)
    assert [c.tokens for c in top1] == [c.tokens for c in greedy]
    hot = SamplingParams(temperature=1.0, seed=7, ignore_eos=True)
    a, b = gen.generate(prompts, hot, 30), gen.generate(prompts, hot, 30)
    assert [c.tokens for c in a] == [c.tokens for c in b]
    assert a[0].tokens != greedy[0].tokens  # it really sampled
    other = gen.generate(prompts, SamplingParams(temperature=1.0, seed=8, ignore_eos=True), 30)
    assert [c.tokens for c in other] != [c.tokens for c in a]
    twice = gen.generate([prompts[0], prompts[0]], hot, 30)  # rows of one request get their own randomness
    assert twice[0].tokens != twice[1].tokens


def test_stop_strings_and_stop_tokens_end_the_text_and_stream_the_same_text(gen):
    sp = SamplingParams(temperature=0.0, ignore_eos=True)
    full = gen.generate(["Once upon a time"], sp, max_new_tokens=40)[0]
    stop = full.text[12:15]
    cut = full.text.find(stop)
    assert cut > 0
    streamed = []
    got = gen.generate(["Once upon a time"], SamplingParams(temperature=0.0, ignore_eos=True, stop=(stop, "\x00zz")),
                       max_new_tokens=40, callback=streamed.append)[0]
    assert got.text == full.text[:cut] and got.finish_reason == "stop" and got.stop_reason == stop
    assert "".join(d.text for d in streamed) == got.text
    assert streamed[-1].finish_reason == "stop" and all(d.finish_reason is None for d in streamed[:-1])
    assert got.tokens == full.tokens[: len(got.tokens)] and len(got.tokens) < len(full.tokens)

    stop_tok = full.tokens[6]
    by_token = gen.generate(["Once upon a time"], SamplingParams(temperature=0.0, stop_token_ids=(stop_tok,)), 40)[0]
    assert by_token.tokens == full.tokens[: full.tokens.index(stop_tok)]
    assert by_token.finish_reason == "stop" and by_token.stop_reason == stop_tok


def test_no_recompilation_across_requests_in_the_same_buckets(gen):
    compiles = []

    def listen(event, duration, **kwargs):
        if event == "/jax/core/compile/backend_compile_duration":
            compiles.append(duration)

    gen.generate([[1, 2, 3, 4, 5]], SamplingParams(seed=0), max_new_tokens=20)  # warm-up: buckets 16 and 32
    before = gen.compiled_count()
    jax.monitoring.register_event_duration_secs_listener(listen)
    try:
        gen.generate([list(range(9))], SamplingParams(temperature=0.5, top_p=0.9, seed=1), max_new_tokens=20)
        gen.generate([list(range(50, 64))], SamplingParams(temperature=0.0, repetition_penalty=1.3), 18)
        gen.generate(["A text prompt"], SamplingParams(top_k=5, min_p=0.1, frequency_penalty=0.5, seed=2), 20)
    finally:
        jax.monitoring.unregister_event_duration_listener(listen)
    assert compiles == [] and gen.compiled_count() == before
    gen.generate([list(range(40))], GREEDY, max_new_tokens=2)  # a new prompt bucket does compile
    assert gen.compiled_count() > before


def test_sampling_rules_on_crafted_logits():
    n = 256  # rows: independent draws in one call
    probs = np.array([0.5, 0.3, 0.15, 0.05, 0.0, 0.0], np.float32)
    logits = jnp.log(jnp.tile(jnp.asarray(probs) + 1e-12, (n, 1)))
    keys = jax.vmap(jax.random.PRNGKey)(jnp.arange(n))
    counts = jnp.zeros((n, 6), jnp.int32)
    seen = jnp.zeros((n, 6), bool)
    sample = jax.jit(sample_next, static_argnums=6)

    def draws(counts=counts, seen=seen, **kw):
        tokens, logprobs = sample(logits, counts, seen, SamplingArrays.build([SamplingParams(**kw)] * n), keys,
                                  jnp.int32(3), 4)
        return set(np.asarray(tokens).tolist()), np.asarray(logprobs)

    tokens, logprobs = draws()
    assert tokens == {0, 1, 2, 3}  # ids >= vocab_size (padding) never come out
    np.testing.assert_allclose(logprobs, np.log(probs[list(np.asarray(sample(
        logits, counts, seen, SamplingArrays.build([SamplingParams()] * n), keys, jnp.int32(3), 4)[0]))]), rtol=1e-5)
    assert draws(top_k=2)[0] == {0, 1}
    assert draws(top_p=0.7)[0] == {0, 1}  # 0.5 < 0.7 needs the second token; 0.8 >= 0.7 stops there
    assert draws(top_p=0.83)[0] == {0, 1, 2}  # 0.8 < 0.83
    assert draws(top_k=3, top_p=0.83)[0] == {0, 1}  # top-p on the top 3, renormalised: (0.5 + 0.3) / 0.95 >= 0.83
    assert draws(min_p=0.35)[0] == {0, 1}  # 0.15 < 0.35 * 0.5
    assert draws(temperature=0.0)[0] == {0}
    # Penalties: token 0 is in the prompt, token 1 was generated twice.
    assert draws(temperature=0.0, repetition_penalty=100.0, seen=seen.at[:, 0].set(True))[0] == {1}
    assert draws(temperature=0.0, frequency_penalty=0.4, counts=counts.at[:, 0].set(2))[0] == {1}
    assert draws(temperature=0.0, presence_penalty=5.0, counts=counts.at[:, 0].set(1))[0] == {1}
    assert draws(temperature=0.0, presence_penalty=5.0)[0] == {0}  # nothing generated yet: no effect


def reference_truncate(logits: np.ndarray, top_k: int, top_p: float) -> np.ndarray:
    """top-k then top-p by a full sort, in float64: which tokens stay."""
    order = np.argsort(-logits, kind="stable")
    k = top_k or len(logits)
    kept = order[:k]
    p = np.exp(logits[kept] - logits[kept].max())
    p /= p.sum()
    before = np.cumsum(p) - p
    return np.sort(kept[before < top_p])


def test_truncation_beyond_the_top_candidates_matches_a_full_sort():
    from flaxgpt.infer.sampling import TOP_CANDIDATES, _truncate

    V = 3 * TOP_CANDIDATES
    rng = np.random.default_rng(0)
    peaked = rng.normal(size=V) * 4
    flat = rng.normal(size=V) * 0.1
    cases = [(peaked, 5, 1.0), (peaked, 0, 0.5), (peaked, 0, 1.0), (flat, 0, 0.9), (flat, 2000, 1.0),
             (flat, 1500, 0.8), (peaked, 40, 0.3)]  # rows 3-5 need more than TOP_CANDIDATES tokens
    logits = jnp.asarray(np.stack([c[0] for c in cases]), jnp.float32)
    s = SamplingArrays.build([SamplingParams(top_k=k, top_p=p) for _, k, p in cases])
    out = np.asarray(jax.jit(_truncate)(logits, s))
    for row, (x, k, p) in enumerate(cases):
        kept = np.flatnonzero(out[row] > -np.inf)
        want = np.arange(V) if (k, p) == (0, 1.0) else reference_truncate(x.astype(np.float32), k, p)
        assert kept.tolist() == want.tolist(), (row, len(kept), len(want))
    assert len(np.flatnonzero(out[3] > -np.inf)) > TOP_CANDIDATES  # the full-sort path really ran


def test_bad_sampling_params_name_the_field():
    with pytest.raises(ValueError, match="top_p"):
        SamplingParams(top_p=0.0)
    with pytest.raises(ValueError, match="temperature"):
        SamplingParams(temperature=-1)


def test_sharded_params_on_8_devices_give_the_same_tokens(gen, params):
    from flaxgpt.config import default_config

    mcfg = default_config().mesh
    mcfg.data, mcfg.fsdp, mcfg.tensor = 2, 1, 4
    mesh = make_mesh(mcfg, jax.devices()[:8])
    sharded = Generator(CFG, params, TOK, max_len=128, mesh=mesh)
    spec = sharded.params["blocks_0"]["c_fc"]["kernel"].sharding.spec
    assert "tensor" in tuple(spec)  # tensor-parallel: the MLP is split over 4 devices
    assert sharded.batch_bucket(1) == 2  # the batch axis spans the 2 data-parallel devices
    prompts = [[5, 6, 7], TOK.encode("Sharded decoding")]
    sp = SamplingParams(temperature=0.0, ignore_eos=True)
    want = gen.generate(prompts, sp, max_new_tokens=20)
    got = sharded.generate(prompts, sp, max_new_tokens=20)
    assert [c.tokens for c in got] == [c.tokens for c in want]
    np.testing.assert_allclose([c.logprobs for c in got], [c.logprobs for c in want], atol=1e-4)


# ------------------------------------------------------------------------------------------------ a trained run


@pytest.fixture(scope="module")
def chat_run(tmp_path_factory) -> Path:
    """A tiny model trained for a few steps on the persona's blog with the flaxgpt (chat) tokenizer."""
    from flaxgpt.config import load_config
    from flaxgpt.data.tokenize import tokenize_paths
    from flaxgpt.launch.train import train

    data = tmp_path_factory.mktemp("data") / "blog"
    tokenize_paths([ROOT / "examples/persona/blog"], data, name="blog", tokenizer="flaxgpt", progress=False)
    run_dir = tmp_path_factory.mktemp("chat_run")
    config = load_config(ROOT / "experiments/micro.py", [
        f"data.sources.personal.path={data}", f"run.dir={run_dir}", "data.tokenizer=flaxgpt",
        "model.vocab_size=50265", "model.n_layer=2", "model.n_head=2", "model.d_model=32", "model.max_len=64",
        "data.seq_len=64", "model.dropout=0.0", "model.scan_unroll=1", "train.batch_size=8", "train.steps=4",
        "train.warmup_steps=2", "train.eval_every=0", "train.log_every=2", "checkpoint.every=4"])
    train(config, show_progress=False)
    return run_dir


def test_load_generator_restores_the_latest_checkpoint(chat_run):
    gen = load_generator(chat_run)
    assert gen.run.step == 4 and gen.tokenizer.name == "flaxgpt" and gen.max_len == 64
    out = gen.generate(["Hello"], SamplingParams(temperature=0.0), max_new_tokens=5)[0]
    assert len(out.tokens) <= 5 and out.finish_reason in ("stop", "length")


def test_chat_command_through_a_pipe(chat_run):
    script = "\n".join([
        "Hello, who are you?",
        "/set temperature 0",
        "/set top_p 2",
        "/system You are terse.",
        "What do you do?",
        "/show",
        "/reset",
        "/nonsense",
        "One more question",
        "/quit",
        "this line is never read",
    ]) + "\n"
    env = dict(os.environ, JAX_DISABLE_MOST_OPTIMIZATIONS="true", JAX_PLATFORMS="cpu")
    cmd = [sys.executable, "-m", "flaxgpt.cli.sample", "chat", str(chat_run), "--max-new-tokens", "6", "--seed", "0"]
    proc = subprocess.run(cmd, input=script, capture_output=True, text=True, cwd=ROOT, env=env, timeout=300)
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    assert out.count("assistant> ") == 3  # three user messages, three streamed replies
    assert "(temperature = 0.0)" in out
    assert "error: SamplingParams.top_p=2.0" in out  # a bad value is refused, the chat goes on
    assert "(system prompt set; conversation reset)" in out and "(conversation reset)" in out
    assert "  temperature = 0.0" in out and "  max_new_tokens = 6" in out
    assert "unknown command /nonsense" in out
    assert "never read" not in out


def test_sample_command_prints_n_samples(chat_run, capsys):
    import argparse

    from flaxgpt.cli.sample import add_arguments_sample, run_sample

    parser = argparse.ArgumentParser()
    add_arguments_sample(parser)
    args = parser.parse_args([str(chat_run), "--prompt", "My name is", "--n", "3", "--max-new-tokens", "5",
                              "--seed", "1", "--int8"])
    assert run_sample(args) == 0
    out = capsys.readouterr().out
    assert all(f"--- sample {i} (" in out for i in (1, 2, 3)) and out.count("My name is") == 3
