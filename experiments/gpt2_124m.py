"""GPT-2 small (124M parameters): 12 layers, 12 heads, d_model 768, context 1024.

Sized for a v5e-4 slice (4 chips of 16 GiB); bf16 compute with f32 parameters. The global batch of 64 x 1024
tokens runs as 4 micro-batches (16 rows each, 4 per chip): in one batch the step's activations need 30 GiB per
chip (`flaxgpt preflight`); in four, 11.4 GiB. On a CPU pass model.dtype=float32.
"""

from flaxgpt.config import default_config


def get_config():
    c = default_config()
    c.run.name = "gpt2_124m"
    c.run.hardware = "v5e-4"
    c.model.n_layer = 12
    c.model.n_head = 12
    c.model.d_model = 768
    c.model.max_len = 1024
    c.model.dtype = "bfloat16"
    c.data.seq_len = 1024
    c.data.sources.personal = {"path": "data/personal", "weight": 0.7}
    c.data.sources.general = {"path": "data/general", "weight": 0.3}
    c.train.steps = 20000
    c.train.batch_size = 64
    c.train.grad_accum = 4  # same global batch in 4 micro-batches: fits a v5e chip without remat
    c.train.lr = 6e-4
    c.train.warmup_steps = 700
    c.train.eval_every = 500
    c.checkpoint.every = 1000
    return c
