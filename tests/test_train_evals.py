"""Evaluation suites during training: `evals.every` runs `evals.suites` on the current parameters into metrics."""

from __future__ import annotations

import json
from pathlib import Path

from flaxgpt.config import load_config
from flaxgpt.data.tokenize import tokenize_paths
from flaxgpt.launch.train import train
from flaxgpt.train.logger import read_metrics

ROOT = Path(__file__).resolve().parents[1]


def test_trainer_runs_suites_every_n_steps(tmp_path):
    shards = tmp_path / "blog"
    tokenize_paths([ROOT / "examples/persona/blog"], shards, name="blog", progress=False)
    facts = tmp_path / "facts.jsonl"
    facts.write_text("".join(json.dumps({"question": q, "answers": [a]}) + "\n"
                             for q, a in [("Where does Ines live?", "Rotterdam"), ("Her cat?", "Gauss")]))
    run = tmp_path / "run"
    config = load_config(ROOT / "experiments/micro.py", [
        f"data.sources.personal.path={shards}", f"run.dir={run}", "model.n_layer=2", "model.n_head=2",
        "model.d_model=32", "model.max_len=32", "data.seq_len=32", "train.batch_size=8", "train.steps=6",
        "train.warmup_steps=2", "train.eval_every=0", "checkpoint.every=6", "data.tokenizer=gpt2",
        "model.vocab_size=50257", "evals.every=3", "evals.suites=facts,speed", f"evals.facts={facts}",
        "evals.max_tokens=4"])
    train(config, show_progress=False)
    suites = [r for r in read_metrics(run) if r["kind"] == "suite"]
    assert [r["step"] for r in suites] == [3, 6]
    for r in suites:
        assert r["facts/n"] == 2 and 0.0 <= r["facts/facts_accuracy"] <= 1.0
        assert r["speed/ms_per_100_tokens"] > 0 and r["speed/recompiles"] == 0
