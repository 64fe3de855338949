"""The recommended size (~355M parameters): 24 layers, 16 heads, d_model 1024, context 2048.

bf16 compute, f32 parameters, parameters and optimizer state sharded over the devices (FSDP) of a v5e-8 slice.
The weight matmuls' outputs are saved for the backward pass and attention is recomputed (remat 'dots_no_batch':
'dots' also keeps every layer's float32 attention logits, 60 GiB per chip here), and the global batch of 64 runs
as 2 micro-batches: 10.8 GiB per chip (`flaxgpt preflight`).
"""

from flaxgpt.config import default_config


def get_config():
    c = default_config()
    c.run.name = "small_350m"
    c.run.hardware = "v5e-8"
    c.model.n_layer = 24
    c.model.n_head = 16
    c.model.d_model = 1024
    c.model.max_len = 2048
    c.model.dtype = "bfloat16"
    c.model.remat = "dots_no_batch"
    c.data.seq_len = 2048
    c.data.sources.personal = {"path": "data/personal", "weight": 0.7}
    c.data.sources.general = {"path": "data/general", "weight": 0.3}
    c.mesh.data = 1
    c.mesh.fsdp = -1
    c.train.steps = 30000
    c.train.batch_size = 64
    c.train.grad_accum = 2  # same global batch in 2 micro-batches
    c.train.lr = 3e-4
    c.train.warmup_steps = 1000
    c.train.eval_every = 1000
    c.checkpoint.every = 1000
    return c
