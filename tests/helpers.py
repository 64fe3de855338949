"""Small builders shared by the model, sharding and trainer tests."""

from __future__ import annotations

import jax
import numpy as np

from flaxgpt.config import default_config
from flaxgpt.data.loader import BATCH_KEYS
from flaxgpt.model.gpt import GPT, ModelConfig
from flaxgpt.train.optim import lr_schedule, make_optimizer
from flaxgpt.train.sharding import batch_sharding, compile_step, logical_rules, make_mesh, put_batch
from flaxgpt.train.state import create_train_state
from flaxgpt.train.steps import make_lm_step


def tiny_config(vocab: int = 256, seq_len: int = 16, **model):
    """A 2-layer, 32-wide config over a small vocabulary."""
    c = default_config()
    c.model.vocab_size = vocab
    c.model.n_layer = 2
    c.model.n_head = 4
    c.model.d_model = 32
    c.model.max_len = seq_len
    c.data.seq_len = seq_len
    c.train.steps = 100
    c.train.warmup_steps = 2
    c.train.lr = 3e-3
    for k, v in model.items():
        c.model[k] = v
    return c


def random_batch(rng: np.random.Generator, batch: int, seq_len: int, vocab: int, accum: int = 1) -> dict:
    """A [accum, batch/accum, T] batch of random tokens forming one document per row."""
    toks = rng.integers(0, vocab, (batch, seq_len + 1)).astype(np.int32)
    b = {
        "inputs": toks[:, :-1],
        "targets": toks[:, 1:],
        "weights": np.ones((batch, seq_len), np.float32),
        "segment_ids": np.ones((batch, seq_len), np.int32),
        "positions": np.broadcast_to(np.arange(seq_len, dtype=np.int32), (batch, seq_len)).copy(),
    }
    return {k: v.reshape(accum, batch // accum, seq_len) for k, v in b.items()}


def build(config, devices=None):
    """(model, mesh, state, shardings, compiled step, batch shardings) for ``config`` on ``devices``."""
    mesh = make_mesh(config.mesh, devices if devices is not None else jax.devices()[:1])
    rules = logical_rules(config.mesh.rules)
    model = GPT(ModelConfig.from_config(config.model))
    tx = make_optimizer(config.train)
    state, shardings = create_train_state(model, tx, config.train.seed, mesh, rules, config.data.seq_len)
    batch_sh = {k: batch_sharding(mesh, 3, leading=1) for k in BATCH_KEYS}
    step = compile_step(make_lm_step(model, tx, lr_schedule(config.train)), shardings, batch_sh, mesh, rules)
    return model, mesh, state, shardings, step, batch_sh


def run_steps(config, batches, devices=None):
    """Runs the compiled step over ``batches``; returns (losses, final state)."""
    _, _, state, _, step, batch_sh = build(config, devices)
    losses = []
    for b in batches:
        state, m = step(state, put_batch(b, batch_sh))
        losses.append(float(m["loss"]))
    return losses, state
