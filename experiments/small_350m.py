"""The recommended size (~355M parameters): 24 layers, 16 heads, d_model 1024, context 2048.

bf16 compute, f32 parameters, parameters and optimizer state sharded over the devices (FSDP),
dot products saved for the backward pass (remat 'dots').
"""

from flaxgpt.config import default_config


def get_config():
    c = default_config()
    c.run.name = "small_350m"
    c.model.n_layer = 24
    c.model.n_head = 16
    c.model.d_model = 1024
    c.model.max_len = 2048
    c.model.dtype = "bfloat16"
    c.model.remat = "dots"
    c.data.seq_len = 2048
    c.data.sources.personal = {"path": "data/personal", "weight": 0.7}
    c.data.sources.general = {"path": "data/general", "weight": 0.3}
    c.mesh.data = 1
    c.mesh.fsdp = -1
    c.train.steps = 30000
    c.train.batch_size = 64
    c.train.lr = 3e-4
    c.train.warmup_steps = 1000
    c.train.eval_every = 1000
    c.checkpoint.every = 1000
    return c
