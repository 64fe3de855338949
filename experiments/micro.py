"""Micro GPT for a laptop CPU: trains on the bundled example corpus in a few minutes.

    flaxgpt ingest examples/persona/sources.py --out runs/demo/data/persona
    flaxgpt train experiments/micro.py data.sources.personal.path=runs/demo/data/persona

The personal source is a `flaxgpt ingest` output: the loader mixes its sources (CV, blog, mail,
chat, code, ...) by the weights of the ingest config.
"""

from flaxgpt.config import default_config


def get_config():
    c = default_config()
    c.run.name = "micro"
    c.run.hardware = "cpu"  # a laptop CPU (`flaxgpt preflight` checks it fits there)
    c.model.n_layer = 4
    c.model.n_head = 4
    c.model.d_model = 128
    c.model.max_len = 128
    c.data.seq_len = 128
    c.data.sources.personal = {"path": "runs/demo/data/persona", "weight": 1.0}
    c.data.tokenizer = "flaxgpt"  # GPT-2 plus the chat and constitutional tokens later stages use
    c.model.vocab_size = 50265
    c.model.dropout = 0.1  # the example corpus is ~50K tokens: the model sees it many times
    c.model.scan_unroll = 4  # unrolled layer loop: ~20% faster steps on CPU
    c.train.steps = 400
    c.train.batch_size = 16
    c.train.lr = 2e-3
    c.train.warmup_steps = 50
    c.train.eval_every = 50
    c.train.eval_batches = 10
    c.checkpoint.every = 100
    return c
