"""``PerplexityScorer``: the perplexity of texts under a trained flaxgpt run, one document per row.

It is what scores documents for ingest's perplexity quality filter (``flaxgpt.ingest.quality.perplexity``): the
``flaxgpt ingest`` command hands this class to the filter, which builds it from ``quality.perplexity_run`` in
each worker process. A text is scored by its mean next-token NLL (``flaxgpt.train.evaluate``) over its first
``max_len`` tokens plus the end-of-text token (as the model was trained), in compiled batches whose row count and
length are rounded up to powers of two (few shapes to compile, little padding).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from flaxgpt.infer.inputs import length_bucket, pow2
from flaxgpt.model.gpt import GPT
from flaxgpt.runs.rundir import load_run
from flaxgpt.train.evaluate import make_nll_fn, perplexity
from flaxgpt.train.sharding import compile_fn

_CHARS_PER_TOKEN = 32  # a prefix of this many characters per token is enough to find a text's first max_len tokens


class PerplexityScorer:
    """Loads a run's config.json and the parameters of its latest checkpoint (not the optimizer state).

    ``perplexities(texts)`` scores up to ``batch_size`` texts per compiled call; ``max_len`` (default: the
    model's context) caps the tokens scored per text.
    """

    def __init__(self, run_dir: str | Path, *, batch_size: int = 8, max_len: int | None = None):
        self.run_dir = Path(run_dir)
        if not (self.run_dir / "config.json").exists():
            raise FileNotFoundError(f"perplexity filter: {self.run_dir} is not a run directory (no config.json)")
        run = load_run(self.run_dir)
        self.mcfg, self.tokenizer, self.step, self.params = run.model_cfg, run.tokenizer, run.step, run.params
        self.max_len = min(max_len or self.mcfg.max_len, self.mcfg.max_len)
        self.batch_size = batch_size
        # One document per row, padded at its end: causal attention needs no document mask.
        self._nll = compile_fn(make_nll_fn(GPT(self.mcfg), document_mask=False))

    def perplexities(self, texts: Sequence[str]) -> np.ndarray:
        """Takes texts; returns their perplexities (nan for a text with no tokens)."""
        eot = self.tokenizer.eot_id
        out = np.full(len(texts), np.nan)
        for lo in range(0, len(texts), self.batch_size):
            docs = [self.tokenizer.encode(text[: _CHARS_PER_TOKEN * self.max_len])[: self.max_len] + [eot]
                    for text in texts[lo:lo + self.batch_size]]
            rows = min(pow2(len(docs)), self.batch_size)
            t = length_bucket(max(len(d) - 1 for d in docs), self.max_len)
            batch = {k: np.zeros((rows, t), np.int32) for k in ("inputs", "targets")}
            batch["weights"] = np.zeros((rows, t), np.float32)
            for i, ids in enumerate(docs):
                n = len(ids) - 1
                batch["inputs"][i, :n], batch["targets"][i, :n], batch["weights"][i, :n] = ids[:-1], ids[1:], 1.0
            r = self._nll(self.params, batch)
            nll, tokens = np.asarray(r["nll"], np.float64), np.asarray(r["tokens"], np.float64)
            for i, ids in enumerate(docs):
                if len(ids) > 1:
                    out[lo + i] = perplexity(float(nll[i] / tokens[i]))
        return out
