"""~1.0B parameters: 24 layers, 14 heads of 128, d_model 1792, context 2048; FSDP plus tensor parallelism."""

from flaxgpt.config import default_config


def get_config():
    c = default_config()
    c.run.name = "large_1b"
    c.run.hardware = "v5e-8"  # fits v4-8 too
    c.model.n_layer = 24
    c.model.n_head = 14
    c.model.d_model = 1792
    c.model.max_len = 2048
    c.model.dtype = "bfloat16"
    c.model.remat = "full"
    c.data.seq_len = 2048
    c.data.sources.personal = {"path": "data/personal", "weight": 0.7}
    c.data.sources.general = {"path": "data/general", "weight": 0.3}
    c.mesh.data = 1
    c.mesh.fsdp = -1
    c.mesh.tensor = 1  # set to 2-8 on large slices
    c.train.steps = 50000
    c.train.batch_size = 128
    c.train.grad_accum = 4
    c.train.lr = 2e-4
    c.train.warmup_steps = 2000
    c.train.eval_every = 1000
    c.checkpoint.every = 1000
    return c
