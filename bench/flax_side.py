"""flaxgpt side of the training benchmark: the library's own compiled step on random tokens.

    python -m bench.flax_side --preset small|124m [--steps N] [--dtype float32]

Uses exactly what `flaxgpt train` runs (model, optimizer, sharded state, compile_step), minus the
data loader, with dropout 0 and AdamW(lr 3e-4, weight decay 0.1) like the PyTorch peer.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from typing import Any

import jax
import numpy as np

from bench.torch_peer import PRESETS  # one definition of the benchmark shapes
from flaxgpt.config import default_config
from flaxgpt.data.loader import BATCH_KEYS
from flaxgpt.model.gpt import GPT, ModelConfig, count_params
from flaxgpt.train.mfu import flops_per_token_maxtext, flops_per_token_nanogpt
from flaxgpt.train.optim import lr_schedule, make_optimizer
from flaxgpt.train.sharding import batch_sharding, compile_step, logical_rules, make_mesh, put_batch
from flaxgpt.train.state import create_train_state
from flaxgpt.train.steps import make_lm_step


def time_flaxgpt_train(*, n_layer: int, n_head: int, d_model: int, seq_len: int, batch_size: int,
                       vocab_size: int = 50257, steps: int = 10, warmup: int = 2, dtype: str = "float32",
                       remat: str = "none", document_mask: bool = False,
                       scan_unroll: int | None = None) -> dict[str, Any]:
    """Times flaxgpt's train step; returns tokens_per_s, step_time_s (median), first_step_s, compile_s, n_params."""
    c = default_config()
    c.model.update(vocab_size=vocab_size, n_layer=n_layer, n_head=n_head, d_model=d_model, max_len=seq_len,
                   dropout=0.0, dtype=dtype, remat=remat, scan_unroll=scan_unroll or n_layer)
    c.data.seq_len = seq_len
    c.train.update(batch_size=batch_size, lr=3e-4, weight_decay=0.1, warmup_steps=0, steps=1000)
    c.mesh.data = -1
    mesh = make_mesh(c.mesh)
    rules = logical_rules(c.mesh.rules)
    model = GPT(ModelConfig.from_config(c.model))
    tx = make_optimizer(c.train)
    state, shardings = create_train_state(model, tx, 0, mesh, rules, seq_len)
    batch_sh = {k: batch_sharding(mesh, 3, leading=1) for k in BATCH_KEYS}
    step = compile_step(make_lm_step(model, tx, lr_schedule(c.train), document_mask=document_mask),
                        shardings, batch_sh, mesh, rules)
    rng = np.random.default_rng(0)

    def batch():
        toks = rng.integers(0, vocab_size, (1, batch_size, seq_len + 1)).astype(np.int32)
        ones = np.ones((1, batch_size, seq_len), np.int32)
        pos = np.broadcast_to(np.arange(seq_len, dtype=np.int32), ones.shape).copy()
        b = dict(inputs=toks[..., :-1], targets=toks[..., 1:], weights=ones.astype(np.float32),
                 segment_ids=ones, positions=pos)
        return put_batch(b, batch_sh)

    t0 = time.perf_counter()
    compiled = step.lower(state, batch()).compile()
    compile_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    state, m = compiled(state, batch())
    jax.block_until_ready(m)
    first_step_s = compile_s + time.perf_counter() - t0
    for _ in range(warmup):
        state, m = compiled(state, batch())
    jax.block_until_ready(m)
    times = []
    for _ in range(steps):
        b = batch()
        t0 = time.perf_counter()
        state, m = compiled(state, b)
        jax.block_until_ready(m)
        times.append(time.perf_counter() - t0)
    step_time = statistics.median(times)
    mcfg = ModelConfig.from_config(c.model)
    n_params = count_params(state.params) - 2 * (d_model + 1)
    return {
        "tokens_per_s": batch_size * seq_len / step_time,
        "step_time_s": step_time,
        "first_step_s": first_step_s,
        "compile_s": compile_s,
        "n_params": n_params,
        "flops_per_token_nanogpt": flops_per_token_nanogpt(mcfg, seq_len, n_params),
        "flops_per_token_maxtext": flops_per_token_maxtext(mcfg, seq_len),
        "final_loss": float(m["loss"]),
        "jax": jax.__version__,
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--preset", choices=sorted(PRESETS), default="small")
    p.add_argument("--steps", type=int, default=10)
    p.add_argument("--warmup", type=int, default=2)
    p.add_argument("--dtype", default="float32")
    p.add_argument("--remat", default="none")
    args = p.parse_args(argv)
    result = time_flaxgpt_train(**PRESETS[args.preset], steps=args.steps, warmup=args.warmup, dtype=args.dtype,
                                remat=args.remat)
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
