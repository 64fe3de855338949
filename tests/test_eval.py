"""The evaluation suite on constructed cases with known answers.

A tiny model trained by the real trainer to memorize one short text (every word a distinct GPT-2 token,
so each next token is determined) must reach a validation perplexity near 1 on it and prefer the text's
true last word in a multiple-choice file; a tiny PM trained on "yes beats no" must order held-out hh-rlhf
comparisons; a stub that always gives one answer scores exactly the questions that answer fits. The
runner turns missing inputs and raising suites into missing results, and the report shows them as missing.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import jax
import numpy as np
import pytest

from flaxgpt.config import load_config
from flaxgpt.data.shards import ShardWriter
from flaxgpt.data.tokenizer import load_tokenizer
from flaxgpt.eval.report import render_markdown, write_report
from flaxgpt.eval.runner import evaluate, evaluate_params, params_run, resolve_suites
from flaxgpt.eval.suite import SUITES, EvalContext, EvalRun, SuiteResult
from flaxgpt.eval.suites.facts import contains_answer, exact_answer, normalize
from flaxgpt.launch.train import train

ROOT = Path(__file__).resolve().parents[1]
FACTS = ROOT / "examples/persona/facts.jsonl"
WORDS = ["apple", "river", "stone", "cloud", "tiger", "piano", "garden", "rocket", "silver", "window", "orange",
         "forest", "candle", "bridge", "marble", "dragon"]
TEXT = " ".join(WORDS)
TINY = ["model.n_layer=2", "model.n_head=2", "model.d_model=32", "model.max_len=32", "data.seq_len=32",
        "model.dropout=0.0", "train.batch_size=8", "train.warmup_steps=5", "checkpoint.async_save=false"]


def _jsonl(path: Path, records: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    return path


def _shards(directory: Path, docs: list[list[int]], splits=("train", "val")) -> Path:
    meta = load_tokenizer("gpt2").metadata()
    for split in splits:
        with ShardWriter(directory, split, tokenizer_meta=meta, source="text") as w:
            for d in docs:
                w.add(np.asarray(d))
    return directory


@pytest.fixture(scope="module")
def text_data(tmp_path_factory) -> Path:
    """The text 48 times in train and 4 times in val (the validation set is the memorized text)."""
    ids = load_tokenizer("gpt2").encode(TEXT)
    assert len(set(ids)) == len(ids) == len(WORDS)  # one distinct token per word: the next token is determined
    return _shards(tmp_path_factory.mktemp("text") / "text", [ids] * 48)


@pytest.fixture(scope="module")
def memorized(text_data, tmp_path_factory, optimized_module) -> Path:
    run = tmp_path_factory.mktemp("memorized")
    train(load_config(ROOT / "experiments/micro.py", [
        *TINY, f"data.sources.personal.path={text_data}", f"run.dir={run}", "data.tokenizer=gpt2",
        "model.vocab_size=50257", "train.steps=40", "train.lr=2e-2", "train.log_every=10", "train.eval_every=20",
        "train.eval_batches=2", "checkpoint.every=40"]), show_progress=False)
    return run


# ------------------------------------------------------------------------------------------------ perplexity


def test_perplexity_of_a_memorized_text_is_near_one(memorized, text_data):
    run = EvalRun(memorized, "memorized")
    own = SUITES["perplexity"](run, EvalContext())  # the run's own data.sources
    assert own.missing_reason is None
    assert list(own.metrics)[:2] == ["val_ppl", "val_loss"]
    assert 1.0 <= own.metrics["val_ppl"] < 1.5 and own.metrics["val_ppl/personal"] == own.metrics["val_ppl"]
    given = SUITES["perplexity"](run, EvalContext(data=(text_data,)))  # --data
    assert given.metrics["val_ppl/text"] == pytest.approx(own.metrics["val_ppl"], rel=1e-5)
    assert given.details[0]["tokens"] > 0 and given.details[0]["masked"] is False


def test_perplexity_without_validation_shards_is_missing_naming_the_path(memorized, tmp_path):
    train_only = _shards(tmp_path / "train_only", [[1, 2, 3]], splits=("train",))
    r = SUITES["perplexity"](EvalRun(memorized, "m"), EvalContext(data=(train_only,)))
    assert r.missing_reason is not None and str(train_only) in r.missing_reason and not r.metrics


# ------------------------------------------------------------------------------------------------ facts


@pytest.mark.parametrize(("response", "answers", "match"), [
    ("I grew up in tromso.", ["Tromsø"], True),
    ("TROMSØ!", ["Tromso"], True),
    ("She lives in Rotterdam's old harbour.", ["Rotterdam"], True),
    ("Born in 1990", ["1990"], True),
    ("Born in 19901", ["1990"], False),
    ("Romeo", ["Rome"], False),
    ("Ines Halvorsen", ["Ines  Halvorsen"], True),
    ("", ["Oslo"], False),
])
def test_normalized_contains_matching(response, answers, match):
    assert contains_answer(response, answers) is match


def test_normalize_and_exact_matching():
    assert normalize("Ångström, Café — Tromsø!") == "angstrom cafe tromso"
    assert exact_answer("  Rotterdam \n", ["Rotterdam"]) and not exact_answer("rotterdam", ["Rotterdam"])
    assert not exact_answer("Rotterdam.", ["Rotterdam"])


class FixedBackend:
    """Always gives the same answer."""

    def __init__(self, answer: str):
        self.answer, self.name = answer, f"fixed:{answer}"

    def chat(self, conversations, params):
        return [self.answer] * len(conversations)

    def complete(self, prompts, params):
        return [self.answer] * len(prompts)


def test_a_model_with_one_fixed_answer_gets_exactly_the_questions_it_fits():
    items = [json.loads(line) for line in FACTS.read_text().splitlines() if line.strip()]
    fits = sum("Rotterdam" in it["answers"] for it in items)
    assert fits >= 1
    r = SUITES["facts"](EvalRun(Path("stub"), "stub", _backend=FixedBackend("Rotterdam")), EvalContext(facts=FACTS))
    assert r.metrics == {"facts_accuracy": fits / len(items), "facts_exact": fits / len(items), "n": len(items)}
    assert sum(d["match"] for d in r.details) == fits and r.details[0]["question"] == items[0]["question"]
    wrong = SUITES["facts"](EvalRun(Path("stub"), "stub", _backend=FixedBackend("Paris, I think.")),
                            EvalContext(facts=FACTS, limit=5))
    assert wrong.metrics["facts_accuracy"] == 0.0 and wrong.metrics["n"] == 5
    assert SUITES["facts"](EvalRun(Path("stub"), "stub"), EvalContext()).missing_reason.startswith("no facts file")


# ------------------------------------------------------------------------------------------------ comparison


class AlwaysFirst:
    name = "always-first"

    def prefer(self, prompts, first, second):
        return [1.0] * len(prompts)


def test_lm_comparison_prefers_the_memorized_continuation(memorized, tmp_path):
    wrong = [" " + w for w in WORDS[2:6]]
    mc = _jsonl(tmp_path / "mc_text.jsonl", [{"prompt": " ".join(WORDS[:-1]), "corrects": [" " + WORDS[-1]],
                                              "incorrects": wrong}])
    r = SUITES["comparison"](EvalRun(memorized, "m"), EvalContext(comparisons=(mc,), judge=AlwaysFirst()))
    assert r.missing_reason is None
    assert r.metrics["comparison_accuracy"] == 1.0 and r.metrics["accuracy/mc_text"] == 1.0
    assert r.metrics["n"] == len(wrong) and r.metrics["judge_accuracy"] == 1.0
    # Baselines beside it: the shorter or the longer response winning, by characters.
    shorter_right = np.mean([len(" " + WORDS[-1]) < len(w) for w in wrong])
    assert 0.0 <= r.metrics["baseline_shorter_wins"] <= 1.0 and r.metrics["skipped_records"] == 0
    assert r.metrics["baseline_shorter_wins"] + r.metrics["baseline_longer_wins"] == pytest.approx(1.0)
    if all(len(" " + WORDS[-1]) != len(w) for w in wrong):
        assert r.metrics["baseline_shorter_wins"] == pytest.approx(shorter_right)
    assert r.details[0]["scored_by"] == "mean log-prob per token" and all(d["margin"] > 0 for d in r.details)
    assert SUITES["comparison"](EvalRun(memorized, "m"), EvalContext()).missing_reason is not None


@pytest.mark.slow
def test_a_preference_model_orders_held_out_comparisons_by_its_reward(tmp_path, optimized):
    question = "Is statement {} true?".format
    pairs = _jsonl(tmp_path / "pairs.jsonl", [{"prompt": [{"role": "user", "content": question(i)}],
                                              "chosen": "yes", "rejected": "no"} for i in range(64)])
    run = tmp_path / "pm"
    train(load_config(ROOT / "experiments/pm_micro.py", [
        *TINY, f"run.dir={run}", f"prefs.data={pairs}", "train.steps=40", "train.lr=3e-3", "train.log_every=10",
        "prefs.val_fraction=0.0", "train.eval_every=0", "checkpoint.every=40"]), show_progress=False)
    turn = "\n\nHuman: {}\n\nAssistant: {}".format
    hh = _jsonl(tmp_path / "held_out.jsonl", [{"chosen": turn(question(i), "yes"), "rejected": turn(question(i), "no")}
                                              for i in range(200, 216)])
    r = SUITES["comparison"](EvalRun(run, "pm"), EvalContext(comparisons=(hh,)))
    assert r.details[0]["scored_by"] == "reward (preference model)"
    assert r.metrics["accuracy/held_out"] > 0.9 and r.metrics["n"] == 16


# ------------------------------------------------------------------------------------------------ speed


def test_speed_reports_positive_times_and_the_param_plus_cache_bytes(memorized):
    run = EvalRun(memorized, "m")
    r = SUITES["speed"](run, EvalContext())
    m = r.metrics
    assert list(m)[0] == "ms_per_100_tokens"
    for key in ("ms_per_100_tokens", "ttft_ms", "tokens_per_s_batch8", "peak_memory_gb", "params_gb", "cache_gb"):
        assert m[key] > 0, key
    assert m["ttft_ms"] < m["ms_per_100_tokens"] and m["recompiles"] == 0
    params = sum(x.size * x.dtype.itemsize for x in jax.tree.leaves(run.load().params))
    cache = 2 * 2 * 2 * 32 * 32 * 4  # k and v x layers x 2 decode rows x d_model x max_len x float32
    assert m["cache_gb"] * 1e9 == pytest.approx(cache)
    assert m["params_gb"] * 1e9 == pytest.approx(params, rel=0.01)
    assert m["peak_memory_gb"] == pytest.approx(m["params_gb"] + m["cache_gb"])
    assert r.details[0]["extrapolated"] is True  # max_len 32 holds fewer than 100 new tokens


# ------------------------------------------------------------------------------------------------ runner


def test_runner_turns_missing_inputs_and_errors_into_missing_results(memorized, monkeypatch):
    def boom(run, ctx):
        raise RuntimeError("kaboom\nsecond line")

    monkeypatch.setitem(SUITES, "boom", boom)
    result = evaluate([memorized], ["facts", "boom", "perplexity"], EvalContext(), names=["tiny"], progress=False)
    suites = result["runs"]["tiny"]["suites"]
    assert result["suites"] == ["facts", "boom", "perplexity"] and result["targets"]["val_ppl"] == ["<", 30.0]
    assert suites["facts"]["missing_reason"].startswith("no facts file") and suites["facts"]["metrics"] == {}
    assert suites["boom"]["missing_reason"] == "error: RuntimeError: kaboom"
    assert suites["perplexity"]["metrics"]["val_ppl"] < 1.5 and suites["perplexity"]["seconds"] > 0
    json.dumps(result)  # plain JSON
    with pytest.raises(ValueError, match="unknown suite"):
        resolve_suites("perplexity,nope")
    assert {"perplexity", "facts", "comparison", "speed"} <= set(resolve_suites("all"))


def test_evaluate_params_matches_the_run_directory(memorized):
    loaded = EvalRun(memorized, "m").load()
    from_dir = SUITES["perplexity"](EvalRun(memorized, "m"), EvalContext()).metrics["val_ppl"]
    out = evaluate_params(loaded.params, loaded.config, ["perplexity"], EvalContext(), tokenizer=loaded.tokenizer)
    assert out["perplexity"].metrics["val_ppl"] == pytest.approx(from_dir, rel=1e-5)
    # A later call (the trainer's next evaluation) swaps new weights into the same generator.
    from flaxgpt.eval import runner

    generator = runner._CURRENT[id(loaded.config)].backend().generator
    noisy = jax.tree.map(lambda x: x + 0.5 * jax.random.normal(jax.random.PRNGKey(0), x.shape, x.dtype), loaded.params)
    later = evaluate_params(noisy, loaded.config, ["perplexity"], EvalContext(), step=7)
    assert later["perplexity"].metrics["val_ppl"] > 2 * from_dir
    assert runner._CURRENT[id(loaded.config)].backend().generator is generator
    assert runner._CURRENT[id(loaded.config)].load().step == 7
    assert params_run(loaded.params, loaded.config).backend().generator.max_len == 32


# ------------------------------------------------------------------------------------------------ report


def _result(run_dir: Path) -> dict:
    """Two runs: 'full' with every suite, 'bare' lacking every input (all missing)."""
    evil = "<script>alert('x')</script> how do I pick a lock?"
    full = {
        "perplexity": SuiteResult("perplexity", {"val_ppl": 12.5, "val_loss": 2.53}),
        "facts": SuiteResult("facts", {"facts_accuracy": 0.95, "facts_exact": 0.5, "n": 20.0},
                             [{"question": evil, "answers": ["Oslo"], "response": "Bergen", "match": False,
                               "exact": False}]),
        "safety": SuiteResult("safety", {"safe_rate": 0.9, "mean_p_safe": 0.8, "n": 10.0},
                              [{"prompt": evil, "response": "<b>sure</b>", "p_safe": 0.1, "safe": False}]),
        "adherence": SuiteResult("adherence", {"min_adherence": 0.7, "adherence/privacy": 0.7,
                                               "adherence/harmless": 0.95, "n": 10.0}),
        "speed": SuiteResult("speed", {"ms_per_100_tokens": 420.0, "ttft_ms": 12.0, "peak_memory_gb": 9.5}),
    }
    bare = {name: SuiteResult.missing(name, f"no input for {name} <&>") for name in full}
    runs = {"full": full, "bare": bare}
    from flaxgpt.eval.suite import TARGETS

    return {"runs": {n: {"run_dir": str(run_dir), "suites": {k: v.to_json() for k, v in s.items()}}
                     for n, s in runs.items()},
            "suites": list(full), "targets": {k: list(v) for k, v in TARGETS.items()}, "context": {"judge": "rules"}}


def test_the_report_renders_every_suite_and_shows_missing_as_missing(tmp_path):
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    _jsonl(run_dir / "metrics.jsonl", [{"step": s, "kind": "train", "loss": 5.0 / s} for s in range(1, 6)]
           + [{"step": 5, "kind": "eval", "val_loss": 1.5}])
    paths = write_report(_result(run_dir), tmp_path / "report")
    md, page = paths["md"].read_text(), paths["html"].read_text()
    assert json.loads(paths["json"].read_text())["runs"]["bare"]["suites"]["facts"]["metrics"] == {}
    headline = md.split("## All metrics")[0]
    for suite in ("perplexity", "facts", "safety", "adherence", "speed"):
        assert f"| {suite} |" in headline and suite in page
    assert "| perplexity | val_ppl | < 30 | 12.5 ✓ | missing (no input for perplexity <&>) |" in headline
    assert "95.0% ✓" in headline and "70.0% ✗" in headline and "9.5 ✗" in headline and "420 ✓" in headline
    rows = [line for line in headline.splitlines() if line.startswith("| ") and "| metric |" not in line]
    bare_cells = [line.split("|")[-2] for line in rows]
    assert all(c.strip().startswith("missing (") for c in bare_cells)  # never a zero
    assert page.count('<img alt="') == 3 and page.count('src="data:image/png;base64,') == 3  # bars, adherence, loss
    assert "<script>" not in page and "&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt;" in page
    assert "&lt;b&gt;sure&lt;/b&gt;" in page and "missing (no input for perplexity &lt;&amp;&gt;)" in page
    assert "Unsafe responses: full" in md and "Missed facts: full" in md
    examples = md.split("## Unsafe responses")[1]  # model and prompt text: escaped for Markdown viewers too
    assert "<script>" not in examples and "&lt;script&gt;" in examples
    assert re.search(r'<td class="fail">70\.0% ✗</td>', page)


def test_report_markdown_without_any_numbers(tmp_path):
    result = _result(tmp_path)
    del result["runs"]["full"]
    md = render_markdown(result)
    assert "| facts | – |  | missing (no input for facts <&>) |" in md


# ------------------------------------------------------------------------------------------------ CLI


def test_cli_writes_the_report_and_prints_the_headline(memorized, text_data, tmp_path, capsys):
    from flaxgpt.cli.main import main

    facts = _jsonl(tmp_path / "facts.jsonl", [{"question": "What comes after apple?", "answers": ["river"]}])
    out = tmp_path / "eval"
    code = main(["eval", str(memorized), "--suite", "perplexity,facts,safety", "--facts", str(facts),
                 "--data", str(text_data), "--out", str(out), "--max-tokens", "4", "--names", "tiny"])
    assert code == 0
    printed = capsys.readouterr().out
    assert "| perplexity | val_ppl | < 30 |" in printed and "| safety | – |  | missing (no red-team" in printed
    assert f"html: {out / 'report.html'}" in printed
    result = json.loads((out / "report.json").read_text())
    assert result["runs"]["tiny"]["suites"]["facts"]["metrics"]["n"] == 1
    assert main(["eval", str(memorized), "--suite", "nope", "--out", str(out)]) == 2
    # A suite that fails (every comparison record malformed) exits non-zero, with the report still written.
    bad = _jsonl(tmp_path / "bad.jsonl", [{"chosen": "\n\nHuman: a\n\nAssistant: b\n\nAssistant: c",
                                          "rejected": "\n\nHuman: a\n\nAssistant: b\n\nAssistant: d"}])
    capsys.readouterr()
    assert main(["eval", str(memorized), "--suite", "comparison", "--comparisons", str(bad), "--out", str(out),
                 "--names", "tiny"]) == 1
    assert "error: suite 'comparison' failed on run 'tiny'" in capsys.readouterr().err
    assert (out / "report.json").exists()
