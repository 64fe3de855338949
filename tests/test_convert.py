"""HuggingFace GPT-2 import/export and train.init_from, against transformers' own GPT2LMHeadModel.

Every HF checkpoint here is made locally by transformers with random weights (nothing is downloaded).
Biases and LayerNorm parameters are randomised too, so a wrong mapping of any tensor changes the logits.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import jax
import jax.numpy as jnp
import ml_dtypes
import numpy as np
import pytest

from flaxgpt.cli import convert as convert_cli
from flaxgpt.cli.main import main as flaxgpt_main
from flaxgpt.config import ConfigError, load_config
from flaxgpt.data.tokenize import tokenize_paths
from flaxgpt.data.tokenizer import get_tokenizer
from flaxgpt.model.gpt import GPT, ModelConfig, gpt2_param_count
from flaxgpt.runs.hf.gpt2 import model_fields_from_hf
from flaxgpt.runs.hf.hf_files import read_torch_bin
from flaxgpt.runs.hf.hf_import import read_hf_model
from flaxgpt.runs.hf.safetensors_io import read_safetensors, write_safetensors
from flaxgpt.runs.info import describe_run
from flaxgpt.runs.init_from import adapt_params, read_source
from flaxgpt.runs.rundir import read_run_params

torch = pytest.importorskip("torch", reason="tests/requirements.txt (torch, transformers) is not installed")
transformers = pytest.importorskip("transformers", reason="tests/requirements.txt is not installed")

ROOT = Path(__file__).resolve().parents[1]
GPT2_VOCAB = 50257
TOL = 1e-4  # f32 logits, flaxgpt vs transformers


def make_hf(directory: Path, seed: int = 0, **config) -> Path:
    """Saves a GPT2LMHeadModel with random weights (biases and LayerNorms included) to ``directory``."""
    torch.manual_seed(seed)
    model = transformers.GPT2LMHeadModel(transformers.GPT2Config(**config))
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "ln" in name and name.endswith("weight"):
                p.normal_(1.0, 0.1)
            else:
                p.normal_(0.0, 0.05 if name.endswith("bias") else 0.02)
    model.save_pretrained(directory)
    return directory


def hf_logits(directory: Path, tokens: np.ndarray) -> np.ndarray:
    model = transformers.GPT2LMHeadModel.from_pretrained(directory).eval()
    with torch.no_grad():
        return model(torch.tensor(tokens)).logits.numpy()


def our_logits(params, mcfg: ModelConfig, tokens: np.ndarray) -> np.ndarray:
    return np.asarray(GPT(mcfg).apply({"params": params}, jnp.asarray(tokens)))


def tokens(n: int, t: int, vocab: int = GPT2_VOCAB, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, vocab, (n, t)).astype(np.int64)


def convert(*argv: str) -> int:
    parser = __import__("argparse").ArgumentParser()
    convert_cli.add_arguments(parser)
    return convert_cli.run(parser.parse_args(list(argv)))


def assert_same_tree(a, b, skip=()):
    flat_b = {jax.tree_util.keystr(p): x for p, x in jax.tree_util.tree_flatten_with_path(b)[0]}
    for path, x in jax.tree_util.tree_flatten_with_path(a)[0]:
        key = jax.tree_util.keystr(path)
        if not any(s in key for s in skip):
            np.testing.assert_array_equal(np.asarray(x), np.asarray(flat_b[key]), err_msg=key)


@pytest.fixture(scope="module")
def tiny_hf(tmp_path_factory) -> Path:
    return make_hf(tmp_path_factory.mktemp("hf") / "tiny", n_layer=2, n_head=4, n_embd=32, n_positions=64)


@pytest.fixture(scope="module")
def imported(tiny_hf, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("runs") / "imported"
    assert convert("import", str(tiny_hf), "--out", str(out)) == 0
    return out


@pytest.fixture(scope="module")
def shards(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("data") / "blog"
    tokenize_paths([ROOT / "examples/persona/blog"], out, name="blog", tokenizer="gpt2", progress=False)
    return out


# -- the file format ----------------------------------------------------------------------------------------------

def test_safetensors_agrees_with_the_reference_library(tmp_path):
    st_numpy = pytest.importorskip("safetensors.numpy")
    rng = np.random.default_rng(0)
    tensors = {"a.f32": rng.normal(size=(3, 5)).astype(np.float32), "b.f16": rng.normal(size=(7,)).astype(np.float16),
               "c.i64": rng.integers(-9, 9, (2, 2, 2)), "d.bool": rng.random(5) > 0.5,
               "e.empty": np.zeros((0, 4), np.float32), "f.scalar": np.array(3.5, np.float32)}
    write_safetensors(tmp_path / "ours.safetensors", tensors, metadata={"format": "pt"})
    theirs = st_numpy.load_file(tmp_path / "ours.safetensors")
    st_numpy.save_file(tensors, tmp_path / "theirs.safetensors")
    back = read_safetensors(tmp_path / "theirs.safetensors")
    for name, x in tensors.items():
        for got in (theirs[name], back[name]):
            assert got.dtype == x.dtype and got.shape == x.shape
            np.testing.assert_array_equal(got, x)
    bf16 = {"w": rng.normal(size=(4, 3)).astype(ml_dtypes.bfloat16)}  # not a numpy dtype: our own round trip
    write_safetensors(tmp_path / "bf16.safetensors", bf16)
    back = read_safetensors(tmp_path / "bf16.safetensors")["w"]
    assert back.dtype == ml_dtypes.bfloat16 and back.tobytes() == bf16["w"].tobytes()

    (tmp_path / "bad.safetensors").write_bytes((10**9).to_bytes(8, "little") + b"{}")
    with pytest.raises(ValueError, match="bad.safetensors"):
        read_safetensors(tmp_path / "bad.safetensors")


# -- import --------------------------------------------------------------------------------------------------------

def test_tiny_import_gives_transformers_logits(tiny_hf):
    params, mcfg, tok = read_hf_model(tiny_hf)
    assert (mcfg.n_layer, mcfg.n_head, mcfg.d_model, mcfg.max_len, mcfg.vocab_size) == (2, 4, 32, 64, GPT2_VOCAB)
    assert tok.name == "gpt2"
    assert not params["wte"]["embedding"][GPT2_VOCAB:].any()  # padding rows to 50304 are zero
    toks = tokens(2, 40)
    ref, ours = hf_logits(tiny_hf, toks), our_logits(params, mcfg, toks)
    assert ours.shape == (2, 40, mcfg.vocab_padded)
    np.testing.assert_allclose(ours[..., :GPT2_VOCAB], ref, rtol=0, atol=TOL)


def test_124m_shapes_import_gives_transformers_logits(tmp_path):
    hf_dir = make_hf(tmp_path / "gpt2_124m", seed=1)  # GPT2Config's defaults are GPT-2 small
    params, mcfg, _ = read_hf_model(hf_dir)
    assert (mcfg.n_layer, mcfg.d_model, mcfg.n_head, mcfg.ffn, mcfg.max_len) == (12, 768, 12, 3072, 1024)
    assert gpt2_param_count(mcfg) == 124_439_808
    toks = tokens(2, 32, seed=1)
    np.testing.assert_allclose(our_logits(params, mcfg, toks)[..., :GPT2_VOCAB], hf_logits(hf_dir, toks),
                               rtol=0, atol=TOL)


def test_pytorch_bin_and_sharded_checkpoints(tiny_hf, tmp_path, monkeypatch):
    # The original hub files: no 'transformer.' prefix, causal-mask buffers, no safetensors.
    hf_dir = tmp_path / "bin"
    hf_dir.mkdir()
    (hf_dir / "config.json").write_text((tiny_hf / "config.json").read_text())
    state = {k.removeprefix("transformer."): torch.from_numpy(np.array(v)) for k, v in
             read_safetensors(tiny_hf / "model.safetensors").items()}
    state["h.0.attn.bias"] = torch.tril(torch.ones(1, 1, 64, 64))
    torch.save(state, hf_dir / "pytorch_model.bin")
    from_bin, _, _ = read_hf_model(hf_dir)
    from_safetensors, _, _ = read_hf_model(tiny_hf)
    assert_same_tree(from_bin, from_safetensors)

    sharded = tmp_path / "sharded"  # a sharded safetensors checkpoint with its index
    transformers.GPT2LMHeadModel.from_pretrained(tiny_hf).save_pretrained(sharded, max_shard_size="1MB")
    assert (sharded / "model.safetensors.index.json").is_file()
    assert_same_tree(read_hf_model(sharded)[0], from_safetensors)

    monkeypatch.setitem(sys.modules, "torch", None)  # as if torch were not installed
    with pytest.raises(ImportError, match="needs torch"):
        read_torch_bin(hf_dir / "pytorch_model.bin")


@pytest.mark.parametrize("field, value, message", [
    ("model_type", "llama", "model_type"),
    ("activation_function", "gelu", "activation_function"),
    ("scale_attn_by_inverse_layer_idx", True, "scale_attn_by_inverse_layer_idx"),
    ("n_head", 5, "n_embd"),
])
def test_configs_flaxgpt_cannot_reproduce_are_refused(field, value, message):
    hf = {"model_type": "gpt2", "n_embd": 32, "n_head": 4, field: value}
    with pytest.raises(ValueError, match=message):
        model_fields_from_hf(hf)


def test_checkpoint_not_matching_its_config_names_the_tensor(tiny_hf, tmp_path):
    bad = tmp_path / "bad"
    bad.mkdir()
    config = json.loads((tiny_hf / "config.json").read_text())
    (bad / "config.json").write_text(json.dumps({**config, "n_layer": 3}))
    (bad / "model.safetensors").symlink_to(tiny_hf / "model.safetensors")
    with pytest.raises(ValueError, match=r"tensor .transformer\.h\.2\.[a-z_.0-9]+. is missing"):
        read_hf_model(bad)
    (bad / "config.json").write_text(json.dumps({**config, "vocab_size": 1000}))
    with pytest.raises(ValueError, match="vocab_size 1000"):
        read_hf_model(bad)


def test_imported_run_is_a_normal_run(imported, tiny_hf):
    text = describe_run(imported)
    assert "checkpoints: [0]" in text and "2 layers" in text
    config, step, params, tok_meta = read_run_params(imported)
    assert step == 0 and config.data.tokenizer == "gpt2" and tok_meta["vocab_size"] == GPT2_VOCAB
    assert not any(np.asarray(x).any() for x in jax.tree.leaves([params["value_head"], params["reward_head"]]))
    assert_same_tree(params, read_hf_model(tiny_hf)[0])
    assert convert("import", str(tiny_hf), "--out", str(imported)) == 2  # never overwrites silently


# -- export --------------------------------------------------------------------------------------------------------

def test_export_of_an_import_is_the_original_checkpoint(imported, tiny_hf, tmp_path):
    out = tmp_path / "hf"
    assert convert("export", str(imported), "--out", str(out)) == 0
    assert convert("export", str(imported), "--out", str(out)) == 0  # an earlier export is replaced
    (out / "notes.txt").write_text("mine")
    assert convert("export", str(imported), "--out", str(out)) == 2  # other files are not
    (out / "notes.txt").unlink()
    original, exported = read_safetensors(tiny_hf / "model.safetensors"), read_safetensors(out / "model.safetensors")
    assert sorted(original) == sorted(exported)
    for name in original:
        assert exported[name].dtype == original[name].dtype and np.array_equal(exported[name], original[name]), name
    config = json.loads((out / "config.json").read_text())
    assert config["vocab_size"] == GPT2_VOCAB and config["n_positions"] == 64


def test_finetune_from_import_then_export_round_trips(imported, shards, tmp_path):
    run = tmp_path / "ft"
    status = flaxgpt_main([
        "train", str(ROOT / "experiments/micro.py"), f"run.dir={run}", f"train.init_from={imported}",
        f"data.sources.personal.path={shards}", "data.tokenizer=gpt2", f"model.vocab_size={GPT2_VOCAB}",
        "model.n_layer=2", "model.n_head=4", "model.d_model=32", "model.max_len=32", "data.seq_len=32",
        "model.scan_unroll=1", "train.batch_size=8", "train.steps=2", "train.warmup_steps=1", "train.lr=1e-3",
        "train.eval_every=0", "train.log_every=1", "checkpoint.every=2", "checkpoint.async_save=false"])
    assert status == 0
    _, step, tuned, _ = read_run_params(run)
    _, _, start, _ = read_run_params(imported)
    assert step == 2
    # Started from the import (context cut to 32 positions): moved by one Adam step of lr 1e-3 (the first has lr 0).
    start = {**start, "wpe": {"embedding": start["wpe"]["embedding"][:32]}}
    moved = jax.tree.map(lambda a, b: float(np.abs(np.asarray(a) - np.asarray(b)).max()), tuned, start)
    assert 0 < max(jax.tree.leaves(moved)) < 5e-3

    out = tmp_path / "hf"
    assert convert("export", str(run), "--out", str(out)) == 0
    toks = tokens(2, 32, seed=2)
    mcfg = ModelConfig(vocab_size=GPT2_VOCAB, max_len=32, n_layer=2, n_head=4, d_model=32)
    np.testing.assert_allclose(our_logits(tuned, mcfg, toks)[..., :GPT2_VOCAB], hf_logits(out, toks),
                               rtol=0, atol=TOL)
    hf_tok, sample = transformers.AutoTokenizer.from_pretrained(out), "GPT-2's tokenizer, offline: Ünïcödé\n\n  f(x=1)"
    assert hf_tok(sample)["input_ids"] == get_tokenizer("gpt2").encode(sample)
    assert hf_tok("a<|endoftext|>")["input_ids"] == [64, 50256]  # special-token text: HF's usual reading
    back = tmp_path / "back"
    assert convert("import", str(out), "--out", str(back)) == 0
    _, _, again, _ = read_run_params(back)
    assert_same_tree(again, tuned, skip=("wte", "value_head", "reward_head"))  # heads: not in GPT-2
    np.testing.assert_array_equal(again["wte"]["embedding"][:GPT2_VOCAB], tuned["wte"]["embedding"][:GPT2_VOCAB])


def test_flaxgpt_tokenizer_import_and_export(tiny_hf, tmp_path):
    run, out = tmp_path / "chat", tmp_path / "hf"
    assert convert("import", str(tiny_hf), "--out", str(run), "--tokenizer", "flaxgpt") == 0
    _, _, params, tok_meta = read_run_params(run)
    tok = get_tokenizer("flaxgpt")
    assert tok_meta["vocab_size"] == tok.vocab_size == 50265
    emb, hf_emb = params["wte"]["embedding"], read_hf_model(tiny_hf)[0]["wte"]["embedding"]
    np.testing.assert_array_equal(emb[:GPT2_VOCAB], hf_emb[:GPT2_VOCAB])
    np.testing.assert_allclose(emb[GPT2_VOCAB:tok.vocab_size], np.broadcast_to(hf_emb[:GPT2_VOCAB].mean(0), (8, 32)),
                               atol=1e-6)  # new special tokens start at the mean embedding

    assert convert("export", str(run), "--out", str(out)) == 0
    assert json.loads((out / "config.json").read_text())["vocab_size"] == 50265
    generation = json.loads((out / "generation_config.json").read_text())
    assert generation["eos_token_id"] == [50256, tok.special_ids["<|end|>"]]
    assert generation["pad_token_id"] == tok.pad_id
    hf_tok = transformers.AutoTokenizer.from_pretrained(out)
    text = (ROOT / "examples/persona/blog").glob("*")
    sample = "".join(p.read_text(errors="replace") for p in sorted(text) if p.is_file())[:20000]
    assert hf_tok.encode(sample) == tok.encode(sample) and hf_tok.decode(tok.encode(sample)) == sample
    from flaxgpt.data.chat_template import render
    chat = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi!"},
            {"role": "assistant", "content": "Hello, how can I help?"}]
    ids = hf_tok.apply_chat_template(chat, add_generation_prompt=True, tokenize=True)
    ids = ids["input_ids"] if hasattr(ids, "keys") else ids
    assert list(ids) == render(chat, tok, add_generation_prompt=True)[0]
    mcfg = ModelConfig(vocab_size=tok.vocab_size, max_len=64, n_layer=2, n_head=4, d_model=32)
    toks = tokens(1, 16, vocab=tok.vocab_size, seed=3)
    np.testing.assert_allclose(our_logits(params, mcfg, toks)[..., :tok.vocab_size], hf_logits(out, toks),
                               rtol=0, atol=TOL)

    again = tmp_path / "again"  # the export's flaxgpt_tokenizer.json says which ids these are
    assert convert("import", str(out), "--out", str(again)) == 0
    config, _, params_again, _ = read_run_params(again)
    assert config.data.tokenizer == "flaxgpt"
    np.testing.assert_array_equal(params_again["wte"]["embedding"][:50265], emb[:50265])


# -- init_from -----------------------------------------------------------------------------------------------------

def test_init_from_checks_architecture_and_context(tiny_hf, imported):
    src = read_source(tiny_hf)  # a HF directory directly
    assert src.tokenizer.name == "gpt2" and src.model.max_len == 64
    gpt2 = get_tokenizer("gpt2")
    with pytest.raises(ValueError, match=r"model\.d_model is 64 in this run but 32"):
        adapt_params(src, ModelConfig(vocab_size=GPT2_VOCAB, n_layer=2, n_head=4, d_model=64, max_len=64), gpt2)
    with pytest.raises(ValueError, match="max_len=128 exceeds the 64 positions"):
        adapt_params(src, ModelConfig(vocab_size=GPT2_VOCAB, n_layer=2, n_head=4, d_model=32, max_len=128), gpt2)
    from_step = read_source(imported / "checkpoints" / "0")  # a checkpoint step
    assert_same_tree(from_step.params, src.params)
    with pytest.raises(ConfigError, match="train.init_from"):
        load_config(ROOT / "experiments/micro.py", ["train.init_from=/no/such/run"])


def test_personal_vocabulary_travels_through_an_export(tiny_hf, tmp_path):
    from flaxgpt.data.tokenizer import save_spec
    from flaxgpt.data.vocab import personal_tokenizer

    tok = personal_tokenizer(get_tokenizer("flaxgpt"), [" Halvorsen", "data_loader"])
    spec = save_spec(tmp_path / "tok", tok)
    run, out, back = tmp_path / "run", tmp_path / "hf", tmp_path / "back"
    assert convert("import", str(tiny_hf), "--out", str(run), "--tokenizer", str(spec)) == 0
    config, _, params, meta = read_run_params(run)
    assert meta == tok.metadata() and Path(config.data.tokenizer) == (run / "tokenizer.json").absolute()
    assert convert("export", str(run), "--out", str(out)) == 0
    assert not (out / "tokenizer.json").exists()  # HF's BPE cannot express personal terms; the spec can
    assert convert("import", str(out), "--out", str(back)) == 0
    _, _, again, meta_again = read_run_params(back)
    assert meta_again == tok.metadata()
    np.testing.assert_array_equal(again["wte"]["embedding"], params["wte"]["embedding"])
