"""int8 weights: per-channel quantization, logits close to float, KV decoding of int8 weights, and the validation
perplexity and memory of a trained micro model."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from flaxgpt.infer.generator import Generator
from flaxgpt.infer.quant import (
    dequantize_params,
    format_report,
    int8_report,
    is_quantized,
    param_bytes,
    quantize,
    quantize_params,
    report_run,
)
from flaxgpt.infer.sampling import SamplingParams
from flaxgpt.model.gpt import GPT, ModelConfig

ROOT = Path(__file__).resolve().parents[1]
CFG = ModelConfig(vocab_size=1000, max_len=64, n_layer=2, n_head=4, d_model=64)


@pytest.fixture(scope="module")
def params():
    return nn.unbox(GPT(CFG).init(jax.random.PRNGKey(0), jnp.zeros((1, 8), jnp.int32))["params"])


def test_quantize_rounds_each_output_channel_to_its_own_scale():
    w = jax.random.normal(jax.random.PRNGKey(1), (3, 16, 2, 4, 8)) * jnp.arange(1, 9)  # channels of unequal size
    q, scale = quantize(w, (1,))
    assert q.dtype == jnp.int8 and scale.shape == (3, 2, 4, 8)
    np.testing.assert_allclose(scale, jnp.max(jnp.abs(w), axis=1) / 127, rtol=1e-6)
    assert int(jnp.max(jnp.abs(q))) == 127  # every channel uses the full range
    err = jnp.abs(q.astype(jnp.float32) * scale[:, None] - w)
    assert bool(jnp.all(err <= scale[:, None] / 2 + 1e-6))
    q0, s0 = quantize(jnp.zeros((4, 3)), (0,))  # an all-zero channel stays zero, scale 1
    assert not np.asarray(q0).any() and np.all(np.asarray(s0) == 1)


def test_quantized_tree_layout_and_memory(params):
    qp = quantize_params(params)
    assert is_quantized(qp) and not is_quantized(params)
    c_proj = qp["blocks"]["c_proj"]
    assert set(c_proj) == {"kernel_q", "kernel_scale", "bias"}
    assert c_proj["kernel_q"].shape == (2, 64, 4, 16) and c_proj["kernel_scale"].shape == (2, 64)  # [L, out, in]
    assert qp["wte"]["embedding"].dtype == jnp.int8 and qp["wte"]["embedding_scale"].shape == (1024,)
    assert qp["wpe"]["embedding"].dtype == jnp.float32  # a lookup table, not a matmul weight
    back = dequantize_params(qp)
    assert jax.tree.structure(back) == jax.tree.structure(params)
    for a, b in zip(jax.tree.leaves(back), jax.tree.leaves(params), strict=True):
        np.testing.assert_allclose(a, b, atol=float(jnp.max(jnp.abs(b))) / 127)
    assert param_bytes(qp) < 0.3 * param_bytes(params)
    with pytest.raises(ValueError, match="already"):
        quantize_params(qp)


@pytest.mark.parametrize("mode", ["dynamic", "dequant"])
def test_int8_logits_are_close_to_float(params, mode):
    cfg = dataclasses.replace(CFG, int8_dot=mode)
    tokens = np.random.default_rng(0).integers(0, 1000, (2, 32))
    ref = GPT(CFG).apply({"params": params}, tokens)
    qp = quantize_params(params)
    got = GPT(cfg).apply({"params": qp}, tokens)
    spread, diff = float(jnp.std(ref)), jnp.abs(got - ref)
    assert float(jnp.mean(diff)) < 0.02 * spread and float(jnp.max(diff)) < 0.1 * spread
    if mode == "dequant":  # exactly the float model with the rounded weights
        np.testing.assert_allclose(got, GPT(CFG).apply({"params": dequantize_params(qp)}, tokens), atol=1e-5)


def test_int8_kv_decoding_equals_int8_full_forward(params):
    sharp = jax.tree.map(lambda x: x * 4, params)  # decisive next-token choices
    gen = Generator(CFG, sharp, None, int8=True)
    assert gen.int8 and gen.params["blocks_0"]["c_fc"]["kernel_q"].dtype == jnp.int8
    qp = quantize_params(sharp)
    model = GPT(CFG)
    forward = jax.jit(lambda p, x: model.apply({"params": p}, x))
    prompt, seq = [3, 1, 4, 1, 5], [3, 1, 4, 1, 5]
    for _ in range(20):
        buf = np.zeros((1, 32), np.int32)  # one shape for every length: causal, padding comes after
        buf[0, : len(seq)] = seq
        seq.append(int(jnp.argmax(forward(qp, buf)[0, len(seq) - 1, : CFG.vocab_size])))
    from flaxgpt.data.tokenizer import get_tokenizer

    gen.tokenizer = get_tokenizer("gpt2")  # only for the end-of-text id; these ids are below it
    out = gen.generate([prompt], SamplingParams(temperature=0.0, ignore_eos=True), max_new_tokens=20)[0]
    assert out.tokens == seq[len(prompt):]


@pytest.fixture(scope="module")
def trained_run(tmp_path_factory, optimized_module) -> Path:
    """A micro model trained briefly on the persona's blog (GPT-2 tokenizer), with its validation shard."""
    from flaxgpt.config import load_config
    from flaxgpt.data.tokenize import tokenize_paths
    from flaxgpt.launch.train import train

    data = tmp_path_factory.mktemp("data") / "blog"
    tokenize_paths([ROOT / "examples/persona/blog"], data, name="blog", tokenizer="gpt2", progress=False)
    run_dir = tmp_path_factory.mktemp("run")
    config = load_config(ROOT / "experiments/micro.py", [
        f"data.sources.personal.path={data}", f"run.dir={run_dir}", "data.tokenizer=gpt2", "model.vocab_size=50257",
        "model.n_layer=2", "model.n_head=2", "model.d_model=64", "model.max_len=64", "data.seq_len=64",
        "model.dropout=0.0", "model.scan_unroll=1", "train.batch_size=8", "train.steps=40", "train.lr=3e-3",
        "train.warmup_steps=5", "train.eval_every=0", "train.log_every=10", "checkpoint.every=40"])
    summary = train(config, show_progress=False)
    assert summary["loss"] < 7.5  # it learned something (ln 50257 = 10.8)
    return run_dir


def test_int8_validation_perplexity_is_within_2_percent_of_float(trained_run):
    report = report_run(trained_run)
    assert report["step"] == 40 and report["tokens"] > 500
    assert report["ppl_float"] < 2000  # a trained model, not a uniform one (vocabulary 50257)
    assert abs(report["ppl_change"]) < 0.02, report
    assert report["bytes_ratio"] < 0.3  # the token table dominates this model, and it is int8 now
    text = format_report(report)
    assert "validation perplexity" in text and "param memory" in text
    exact = report_run(trained_run, int8_dot="dequant")
    assert abs(exact["ppl_change"]) < 0.02 and exact["ppl_float"] == pytest.approx(report["ppl_float"])


def test_int8_report_needs_tokens(params):
    with pytest.raises(ValueError, match="no weighted tokens"):
        int8_report(CFG, params, [{"inputs": np.zeros((1, 8), np.int32), "targets": np.zeros((1, 8), np.int32),
                                   "weights": np.zeros((1, 8), np.float32), "positions": np.zeros((1, 8), np.int32),
                                   "segment_ids": np.zeros((1, 8), np.int32)}])
