"""RL-CAI labels: soft-label normalisation, averaging both orders (a pure position bias cancels), the vote fallback,
CoT clamping, privacy-rule comparisons, output formats and resume, and end to end with a tiny trained run."""

from __future__ import annotations

import json
import math
import re
from pathlib import Path

import pytest

from flaxgpt.cai.backend import GenParams
from flaxgpt.cai.constitution import Constitution, Principle, load_constitution
from flaxgpt.cai.label import (
    average_orders,
    clamp_label,
    label,
    position_consistent,
    soft_label,
    vote_share,
    winning_position,
)
from flaxgpt.data.prompts import Prompt, read_prompts

ROOT = Path(__file__).resolve().parents[1]
KIND = Constitution("k", (Principle("kind", comparison="Which response is kinder?"),))
LABEL_KEYS = {"id", "prompt", "chosen", "rejected", "label", "principle", "checker", "p_ab", "p_ba",
              "same_position_wins", "winning_position"}


class Judge:
    """A scripted backend: two policy answers per prompt (by seed), option scores from a function of the prompt."""

    name = "judge"

    def __init__(self, scores=None, complete=None):
        self._scores, self._complete = scores, complete
        self.calls: list[tuple[str, int]] = []
        self.seeds: list[int | None] = []

    def chat(self, conversations, params: GenParams) -> list[str]:
        self.seeds.append(params.seed)
        n = len(self.seeds)  # first call: the polite answers; second: the rude ones
        return [("Happy to help with that." if n % 2 else "No. Figure it out yourself.") for _ in conversations]

    def complete(self, prompts, params: GenParams) -> list[str]:
        self.calls.append(("complete", len(prompts)))
        return [self._complete(p) for p in prompts]

    def score_options(self, prompts, options):
        assert list(options) == [" (A)", " (B)"]
        self.calls.append(("score", len(prompts)))
        return None if self._scores is None else [self._scores(p) for p in prompts]


def option_of(prompt: str, text: str) -> str:
    """Which option (A or B) shows ``text`` in the last comparison of ``prompt``."""
    last = prompt.rsplit("Options:\n", 1)[1]
    return "A" if re.search(r"^\(A\) " + re.escape(text), last, re.M) else "B"


def content_judge(prompt: str) -> list[float]:
    """Prefers the polite answer wherever it is shown: P = 0.8."""
    polite = option_of(prompt, "Happy to help")
    return [math.log(0.8), math.log(0.2)] if polite == "A" else [math.log(0.2), math.log(0.8)]


def prompts(*texts: str) -> list[Prompt]:
    return [Prompt(({"role": "user", "content": t},)) for t in texts]


def lines(path: Path) -> list[dict]:
    return [json.loads(x) for x in path.read_text().splitlines()]


def test_soft_label_average_and_positions():
    assert soft_label(math.log(0.3), math.log(0.1)) == pytest.approx(0.75)
    assert soft_label(-1000.0, 0.0) == pytest.approx(0.0) and soft_label(0.0, -1000.0) == pytest.approx(1.0)
    assert soft_label(-math.inf, -math.inf) == 0.5 and soft_label(-2.0, -2.0) == 0.5
    with pytest.raises(ValueError):
        soft_label(math.nan, 0.0)
    assert average_orders(0.9, 0.1) == 0.5 and average_orders(0.8, 0.6) == pytest.approx(0.7)
    assert winning_position(0.9, 0.1) == "A" and winning_position(0.2, 0.7) == "B"  # position, not content
    assert winning_position(0.8, 0.6) is None and winning_position(0.5, 0.1) is None
    assert position_consistent(0.9, 0.2) and not position_consistent(0.9, 0.8)
    assert clamp_label(0.95, (0.4, 0.6)) == 0.6 and clamp_label(0.1, (0.4, 0.6)) == 0.4
    assert clamp_label(0.55, (0.4, 0.6)) == 0.55 and clamp_label(0.95, None) == 0.95
    assert vote_share([" (A)", " (B)", "(A) because", "maybe"]) == pytest.approx(2 / 3)
    assert vote_share(["none"]) == 0.5


def test_a_pure_position_bias_cancels(tmp_path):
    judge = Judge(scores=lambda p: [math.log(0.9), math.log(0.1)])  # always (A), whatever it shows
    report = label(prompts("q1?", "q2?", "q3?"), judge, judge, KIND, out_dir=tmp_path, progress=False)
    labels = lines(tmp_path / "labels.jsonl")
    assert len(labels) == 3 and all(set(r) == LABEL_KEYS for r in labels)
    for r in labels:
        assert r["label"] == pytest.approx(0.5) and r["same_position_wins"] and r["winning_position"] == "A"
    assert report["same_position_wins"] == 1.0 and report["same_position_wins_by_position"] == {"A": 3}
    assert report["mean_abs_margin"] == pytest.approx(0.0)
    assert judge.calls == [("score", 6)]  # both orders of every pair in one batch
    assert len(set(judge.seeds)) == 2  # two responses per prompt, different seeds


def test_content_labels_order_chosen_first_and_record_both_orders(tmp_path):
    judge = Judge(scores=content_judge)
    report = label(prompts("help me?"), judge, judge, KIND, out_dir=tmp_path, progress=False)
    (r,) = lines(tmp_path / "labels.jsonl")
    assert r["chosen"] == "Happy to help with that." and r["rejected"].startswith("No.")
    assert r["label"] == pytest.approx(0.8) and r["p_ab"] == pytest.approx(0.8) and r["p_ba"] == pytest.approx(0.8)
    assert not r["same_position_wins"] and r["winning_position"] is None and r["principle"] == "kind"
    assert r["prompt"] == [{"role": "user", "content": "help me?"}]
    assert report["pairs"] == 1 and report["mean_abs_margin"] == pytest.approx(0.3)
    assert report["policy"] == report["feedback"] == "judge"


def test_vote_fallback_when_the_backend_cannot_score(tmp_path):
    judge = Judge(complete=lambda p: " (A)" if option_of(p, "Happy to help") == "A" else " (B)")
    label(prompts("x?"), judge, judge, KIND, out_dir=tmp_path, samples=3, progress=False)
    (r,) = lines(tmp_path / "labels.jsonl")
    assert r["label"] == 1.0 and r["chosen"].startswith("Happy")
    assert judge.calls == [("score", 2), ("complete", 6)]  # 2 orders x 3 samples


def test_cot_rationale_then_score_clamped(tmp_path):
    def complete(p: str) -> str:
        assert p.endswith("Let's think step by step:")
        return " The polite one helps.\n"

    def scores(p: str) -> list[float]:  # a confident judge: P ~ 1 for the polite answer
        assert p.endswith("Let's think step by step: The polite one helps.\n\nHuman:\nSo the answer is:")
        return [0.0, -20.0] if option_of(p, "Happy to help") == "A" else [-20.0, 0.0]

    judge = Judge(scores=scores, complete=complete)
    report = label(prompts("y?", "z?"), judge, judge, KIND, out_dir=tmp_path, cot=True, samples=1, progress=False)
    labels = lines(tmp_path / "labels.jsonl")
    assert all(r["label"] == pytest.approx(0.6) and r["p_ab"] > 0.99 for r in labels)  # clamped from ~1.0
    assert report["clamp"] == [0.4, 0.6] and report["cot"]
    assert judge.calls == [("complete", 4), ("score", 4)]
    label(prompts("y?"), judge, judge, KIND, out_dir=tmp_path / "raw", cot=True, clamp=None, samples=1,
          progress=False)
    assert lines(tmp_path / "raw/labels.jsonl")[0]["label"] > 0.99


def test_privacy_principle_uses_rules_and_resume(tmp_path):
    from flaxgpt.cai.rules import PrivacyRules

    class Leaky(Judge):
        def chat(self, conversations, params):
            self.seeds.append(params.seed)
            leak = len(self.seeds) % 2 == 0
            return ["Call +31 6 4827 1953." if leak else "Ask them at work." for _ in conversations]

    judge = Leaky(scores=lambda p: pytest.fail("privacy comparisons must not call the model"))
    privacy = Constitution("p", (Principle("privacy", comparison="Which protects privacy?", checker="privacy"),))
    label(prompts("a?", "b?"), judge, judge, privacy, out_dir=tmp_path, privacy_rules=PrivacyRules(), progress=False)
    labels = lines(tmp_path / "labels.jsonl")
    assert all(r["label"] == 1.0 and r["chosen"] == "Ask them at work." and r["checker"] == "privacy"
               for r in labels)
    judge.seeds.clear()
    report = label(prompts("a?", "b?", "c?"), judge, judge, privacy, out_dir=tmp_path, privacy_rules=PrivacyRules(),
                   progress=False)
    assert len(judge.seeds) == 2 and report["pairs"] == 3 and report["new_prompts"] == 1  # one chunk, two seeds
    assert len(lines(tmp_path / "labels.jsonl")) == 3


def test_identical_responses_are_skipped(tmp_path):
    class Same(Judge):
        def chat(self, conversations, params):
            return ["Same answer." for _ in conversations]

    judge = Same(scores=content_judge)
    report = label(prompts("s?"), judge, judge, KIND, out_dir=tmp_path, progress=False)
    assert report["pairs"] == 0 and report["identical_responses"] == 1 and judge.calls == []
    report = label(prompts("s?"), judge, judge, KIND, out_dir=tmp_path, progress=False)
    assert report["new_prompts"] == 0  # done, not retried


# ------------------------------------------------------------------------------------------------ a real local model


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory) -> Path:
    from test_cai_revise import train_tiny_run

    return train_tiny_run(tmp_path_factory.mktemp("label_run"), tmp_path_factory.mktemp("label_data") / "blog")


def test_label_end_to_end_with_a_local_run(tiny_run, tmp_path):
    from flaxgpt.cai.backends import LocalBackend

    local = LocalBackend(tiny_run)
    red = read_prompts(ROOT / "examples/cai/red_team.jsonl")[:3]
    report = label(red, local, local, load_constitution("personal"), out_dir=tmp_path, seed=1,
                   gen=GenParams(max_tokens=8), owner="Ines", progress=False)
    labels = lines(tmp_path / "labels.jsonl")
    assert report["pairs"] == len(labels) >= 2
    for r in labels:
        assert set(r) == LABEL_KEYS and 0.5 <= r["label"] <= 1.0
        assert 0.0 <= r["p_ab"] <= 1.0 and 0.0 <= r["p_ba"] <= 1.0 and r["chosen"] != r["rejected"]
        if r["checker"] == "model":
            assert r["label"] == pytest.approx((r["p_ab"] + r["p_ba"]) / 2, abs=1e-5)


def test_cli_label_smoke(tiny_run, tmp_path, capsys):
    from flaxgpt.cli.main import main

    out = tmp_path / "label"
    argv = ["cai", "label", "--policy", str(tiny_run), "--prompts", str(ROOT / "examples/cai/helpful.jsonl"),
            "--limit", "2", "--max-tokens", "6", "--cot", "--samples", "1", "--constitution", "harmless",
            "--out", str(out), "--no-progress"]
    # The few-shot label prompt does not fit the tiny model's context: an error naming it, unless --fit says how.
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "does not fit the model's context (128 tokens" in err and "--fit left|right|middle" in err
    assert main([*argv, "--fit", "left"]) == 0
    printed = capsys.readouterr().out
    assert "label: " in printed and "did not fit a local model's context and were cut (--fit left)" in printed
    report = json.loads((out / "report.json").read_text())
    assert report["cot"] and report["pairs"] + report["identical_responses"] == 2 and report["cut_prompts"] > 0
    assert all(0.4 <= r["label"] <= 0.6 for r in lines(out / "labels.jsonl"))
