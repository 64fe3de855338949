"""SFT of the micro GPT on chat conversations: loss on the assistant's tokens (and its <|end|>) only.

    flaxgpt tokenize-chat examples/chat/persona_chat.jsonl --format openai --out runs/demo/data/chat
    flaxgpt train experiments/sft_micro.py train.init_from=runs/demo/micro

``train.init_from`` starts from the micro pretraining run (`make demo` leaves it in runs/demo/micro):
the same model shapes and the same flaxgpt tokenizer, so its checkpoint loads as is. It is not set
here because a config must validate before that run exists; without it SFT starts from random
weights (it says so). Conversations are packed whole (never split), so data.seq_len should cover
most conversations: `tokenize-chat` prints the length percentiles (the bundled ones are all under
100 tokens).
"""

from flaxgpt.config import default_config


def get_config():
    c = default_config()
    c.run.name = "sft_micro"
    c.run.hardware = "cpu"  # a laptop CPU (`flaxgpt preflight` checks it fits there)
    c.train.stage = "sft"
    # The micro model (experiments/micro.py): the shapes must match the run SFT starts from.
    c.model.n_layer = 4
    c.model.n_head = 4
    c.model.d_model = 128
    c.model.max_len = 128
    c.model.vocab_size = 50265
    c.model.dropout = 0.1  # ~150 conversations: seen many times
    c.model.scan_unroll = 4
    c.data.tokenizer = "flaxgpt"  # the chat template's role and end-of-turn tokens
    c.data.seq_len = 128
    c.data.sources.chat = {"path": "runs/demo/data/chat", "weight": 1.0}
    c.train.steps = 300
    c.train.batch_size = 16
    c.train.lr = 5e-4  # below pretraining's 2e-3: adapt the model, do not retrain it
    c.train.warmup_steps = 20
    c.train.eval_every = 50
    c.train.eval_batches = 10
    c.checkpoint.every = 100
    return c
