"""~774M parameters (GPT-2 large shape): 36 layers, 20 heads, d_model 1280, context 2048; FSDP, full remat."""

from flaxgpt.config import default_config


def get_config():
    c = default_config()
    c.run.name = "medium_750m"
    c.run.hardware = "v5e-8"
    c.model.n_layer = 36
    c.model.n_head = 20
    c.model.d_model = 1280
    c.model.max_len = 2048
    c.model.dtype = "bfloat16"
    c.model.remat = "full"
    c.data.seq_len = 2048
    c.data.sources.personal = {"path": "data/personal", "weight": 0.7}
    c.data.sources.general = {"path": "data/general", "weight": 0.3}
    c.mesh.data = 1
    c.mesh.fsdp = -1
    c.train.steps = 40000
    c.train.batch_size = 64
    c.train.grad_accum = 2
    c.train.lr = 2.5e-4
    c.train.warmup_steps = 1500
    c.train.eval_every = 1000
    c.checkpoint.every = 1000
    return c
