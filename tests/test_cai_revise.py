"""SL-CAI revise: the no-issue and garbage rules, the loop with scripted backends (kept/rejected revisions, early
stops, output formats, resume), and end to end with a tiny trained run (LocalBackend) and the privacy rules."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from flaxgpt.cai.backend import GenParams
from flaxgpt.cai.constitution import Constitution, Principle, load_constitution
from flaxgpt.cai.revise import clean_generation, finds_nothing, read_done, revise, revision_problem
from flaxgpt.data.chat import Conversation, read_openai
from flaxgpt.data.prompts import Prompt, read_prompts

ROOT = Path(__file__).resolve().parents[1]
SOURCES = ROOT / "examples/persona/sources.py"
PII = ("+31 6 4827 1953", "ravi.menon.home@mailbox.example")
LEAK = f"Sure: Ravi's mobile is {PII[0]} and his home mail is {PII[1]}."
HARM = Principle("harm", critique="Find harm.", revision="Remove the harm.", comparison="Which is safer?")


class Scripted:
    """A backend whose answers come from functions of the prompt; records every call."""

    name = "scripted"

    def __init__(self, chat=None, complete=None):
        self._chat, self._complete = chat, complete
        self.calls: list[tuple[str, int]] = []

    def chat(self, conversations, params: GenParams) -> list[str]:
        self.calls.append(("chat", len(conversations)))
        return [self._chat(c) for c in conversations]

    def complete(self, prompts, params: GenParams) -> list[str]:
        self.calls.append(("complete", len(prompts)))
        assert "\n\nHuman:" in params.stop and "\n\nCritiqueRequest:" in params.stop
        return [self._complete(p) for p in prompts]

    def score_options(self, prompts, options):
        return None


def prompts(*texts: str) -> list[Prompt]:
    return [Prompt(({"role": "user", "content": t},)) for t in texts]


def lines(path: Path) -> list[dict]:
    return [json.loads(x) for x in path.read_text().splitlines()]


def test_finds_nothing_and_revision_problems():
    assert finds_nothing("The response is fine: it is accurate and harmless. No changes are needed.")
    assert finds_nothing("No issues.")
    assert finds_nothing("It answers the question well. Nothing to fix.")
    assert not finds_nothing("The response is fine, but it reveals a phone number.")
    assert not finds_nothing("The response shares a private address. There are no other issues.")
    assert not finds_nothing("The response is harmful.")
    assert not finds_nothing("")
    assert clean_generation(" I can't share that.\n\nHuman: next one") == "I can't share that."
    assert clean_generation("Fine.\nRevisionRequest: x") == "Fine."
    assert revision_problem("  ", "old", HARM) == "empty"
    assert revision_problem("Old  text", "old text", HARM) == "unchanged"
    assert revision_problem("Sure. Remove the harm. Okay", "old", HARM) == "echo"
    assert revision_problem(" ".join(["the"] * 20), "old", HARM) == "repetitive"
    assert revision_problem("I won't help with that.", "old", HARM) is None


def test_revise_keeps_revisions_stops_early_and_writes_every_output(tmp_path):
    def complete(p: str) -> str:
        if p.endswith("Critique:"):  # the current response is the text between the last Assistant: and the request
            current = p.rsplit("Assistant: ", 1)[1].split("\n\nCritiqueRequest:")[0]
            return " The response is fine. No changes are needed." if "polite" in current else " It leaks data."
        return " I'm sorry, I can't share that, but I'm happy to pass on a polite message.\n\nHuman: more"

    feedback = Scripted(complete=complete)
    policy = Scripted(chat=lambda c: LEAK if "Ravi" in c[-1]["content"] else "Sure, I'd be polite about it.")
    out = tmp_path / "out"
    report = revise(prompts("Give me Ravi's number.", "Say hi nicely.", "Where does Ravi live?"), policy, feedback,
                    Constitution("h", (HARM,)), rounds=4, out_dir=out, progress=False)
    hist = {h["prompt"][0]["content"]: h for h in lines(out / "history.jsonl")}
    leak = hist["Give me Ravi's number."]
    assert leak["initial"] == LEAK and leak["final"].startswith("I'm sorry") and "Human" not in leak["final"]
    assert [(r["principle"], r["kept"], r["reason"]) for r in leak["rounds"]] == [("harm", True, "revised"),
                                                                                ("harm", False, "no_issue")]
    assert leak["early_stop"] and leak["rounds"][1]["revision"] is None
    nice = hist["Say hi nicely."]
    assert nice["final"] == nice["initial"] and len(nice["rounds"]) == 1 and nice["early_stop"]
    assert policy.calls == [("chat", 3)]  # one batch of initial responses
    # round 0: 3 critiques, 2 revisions (the fine one stops); round 1: 2 critiques, no revision needed
    assert feedback.calls == [("complete", 3), ("complete", 2), ("complete", 2)]

    sft = list(read_openai(out / "sft.jsonl"))
    assert len(sft) == 3 and all(isinstance(c, Conversation) for c in sft)
    assert {c.messages[-1]["content"] for c in sft} >= {leak["final"]}
    pairs = lines(out / "pairs.jsonl")
    assert len(pairs) == 2 and set(pairs[0]) == {"id", "prompt", "chosen", "rejected", "label", "source"}
    assert all(p["rejected"] == LEAK and p["label"] == 1.0 and p["source"] == "revision" for p in pairs)
    assert report == json.loads((out / "report.json").read_text())
    assert (report["prompts"], report["rounds_run"], report["early_stops"], report["revisions_kept"]) == (3, 5, 3, 2)
    assert report["principles"] == {"harm": {"rounds": 5, "kept": 2, "no_issue": 3}}
    assert report["policy"] == report["feedback"] == "scripted" and report["pairs"] == 2


def test_garbage_revisions_never_replace_the_response(tmp_path):
    answers = iter([" It is rude.", "", " It is rude.", " Remove the harm. Remove the harm.", " It is rude.",
                    " Fine, here you go."])
    feedback = Scripted(complete=lambda p: next(answers))
    policy = Scripted(chat=lambda c: "Go away.")
    revise(prompts("Hello?"), policy, feedback, Constitution("h", (HARM,)), rounds=3, out_dir=tmp_path,
           progress=False)
    (h,) = lines(tmp_path / "history.jsonl")
    assert [(r["kept"], r["reason"]) for r in h["rounds"]] == [(False, "empty")]  # empty: keep, stop
    assert h["final"] == "Go away." and h["early_stop"]
    assert not (tmp_path / "pairs.jsonl").read_text()

    revise(prompts("Hi?"), policy, feedback, Constitution("h", (HARM,)), rounds=2, out_dir=tmp_path / "b",
           progress=False)
    (h,) = lines(tmp_path / "b/history.jsonl")
    assert [(r["kept"], r["reason"]) for r in h["rounds"]] == [(False, "echo"), (True, "revised")]
    assert h["final"] == "Fine, here you go." and not h["early_stop"]


def test_privacy_principle_uses_the_rules_and_resume_skips_done_prompts(tmp_path):
    from flaxgpt.cai.rules import PrivacyRules

    feedback = Scripted(complete=lambda p: pytest.fail("the privacy principle must not call the model"))
    policy = Scripted(chat=lambda c: LEAK)
    privacy = Constitution("p", (Principle("privacy", "Find private data.", "Remove it.", checker="privacy"),))
    first = prompts("a?", "b?", "c?")
    revise(first, policy, feedback, privacy, rounds=2, out_dir=tmp_path, privacy_rules=PrivacyRules.from_sources(
        SOURCES), progress=False, batch_size=2)
    hist = lines(tmp_path / "history.jsonl")
    assert len(hist) == 3 and all(not any(s in h["final"] for s in PII) for h in hist)
    assert [r["reason"] for r in hist[0]["rounds"]] == ["revised", "no_issue"]
    assert "phone number" in hist[0]["rounds"][0]["critique"] and PII[0] not in hist[0]["rounds"][0]["critique"]

    with open(tmp_path / "history.jsonl", "a") as f:  # a crash in the middle of a write
        f.write('{"id": "torn')
    policy.calls.clear()
    report = revise([*first, *prompts("d?")], policy, feedback, privacy, rounds=2, out_dir=tmp_path,
                    progress=False)
    assert policy.calls == [("chat", 1)]  # only the new prompt
    assert report["prompts"] == 4 and report["new_prompts"] == 1 and report["resumed_prompts"] == 3
    assert len(read_done(tmp_path / "history.jsonl")) == 4
    assert len(lines(tmp_path / "sft.jsonl")) == 4 and len(lines(tmp_path / "pairs.jsonl")) == 4


def test_final_privacy_pass_catches_data_a_model_revision_brings_back(tmp_path):
    from flaxgpt.cai.rules import PrivacyRules

    feedback = Scripted(complete=lambda p: " Too short." if p.endswith("Critique:") else f" {LEAK} Anything else?")
    policy = Scripted(chat=lambda c: "No.")
    revise(prompts("Ravi?"), policy, feedback, Constitution("h", (HARM,)), rounds=1, out_dir=tmp_path,
           privacy_rules=PrivacyRules(), progress=False)
    (h,) = lines(tmp_path / "history.jsonl")
    assert [r["principle"] for r in h["rounds"]] == ["harm", "privacy:final"]
    assert h["final"].endswith("Anything else?") and not any(s in h["final"] for s in PII)


def test_sft_all_revisions_writes_every_clean_kept_revision(tmp_path):
    from flaxgpt.cai.rules import PrivacyRules

    revisions = iter([f" {LEAK}", " Second try.", " Third try."])
    feedback = Scripted(complete=lambda p: " Bad." if p.endswith("Critique:") else next(revisions))
    policy = Scripted(chat=lambda c: "First.")
    report = revise(prompts("q?"), policy, feedback, Constitution("h", (HARM,)), rounds=3, out_dir=tmp_path,
                    privacy_rules=PrivacyRules(), sft_all_revisions=True, progress=False)
    sft = list(read_openai(tmp_path / "sft.jsonl"))
    # the leaking revision is left out; the final one keeps the prompt's id
    assert [c.messages[-1]["content"] for c in sft] == ["Second try.", "Third try."]
    assert sft[0].id.endswith("#r1") and "#r" not in sft[1].id
    assert report["sft_examples"] == 2 and report["revisions_kept"] == 3


# ------------------------------------------------------------------------------------------------ a real local model


def train_tiny_run(run_dir: Path, data_dir: Path) -> Path:
    """A tiny model trained for a few steps on the persona's blog with the flaxgpt (chat) tokenizer
    (as tests/test_generate.py builds one)."""
    from flaxgpt.config import load_config
    from flaxgpt.data.tokenize import tokenize_paths
    from flaxgpt.launch.train import train

    tokenize_paths([ROOT / "examples/persona/blog"], data_dir, name="blog", tokenizer="flaxgpt", progress=False)
    config = load_config(ROOT / "experiments/micro.py", [
        f"data.sources.personal.path={data_dir}", f"run.dir={run_dir}", "data.tokenizer=flaxgpt",
        "model.vocab_size=50265", "model.n_layer=2", "model.n_head=2", "model.d_model=32", "model.max_len=128",
        "data.seq_len=64", "model.dropout=0.0", "model.scan_unroll=1", "train.batch_size=8", "train.steps=2",
        "train.warmup_steps=1", "train.eval_every=0", "train.log_every=2", "checkpoint.every=2"])
    train(config, show_progress=False)
    return run_dir


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory) -> Path:
    return train_tiny_run(tmp_path_factory.mktemp("cai_run"), tmp_path_factory.mktemp("cai_data") / "blog")


class Planting:
    """Wraps a policy backend and appends planted personal data to every response."""

    def __init__(self, inner):
        self.inner, self.name = inner, f"planted({inner.name})"

    def chat(self, conversations, params):
        return [f"{r} {LEAK}" for r in self.inner.chat(conversations, params)]


def test_revise_end_to_end_with_a_local_run_removes_planted_pii(tiny_run, tmp_path):
    from flaxgpt.cai.backends import LocalBackend
    from flaxgpt.cai.rules import PrivacyRules

    local = LocalBackend(tiny_run)
    red = read_prompts(ROOT / "examples/cai/red_team.jsonl")[:3]
    report = revise(red, Planting(local), local, load_constitution("personal"), rounds=2, out_dir=tmp_path, seed=3,
                    gen=GenParams(max_tokens=8), privacy_rules=PrivacyRules.from_sources(SOURCES), owner="Ines",
                    progress=False)
    hist = lines(tmp_path / "history.jsonl")
    assert len(hist) == 3 and report["prompts"] == 3 and report["feedback"] == local.name
    for h in hist:
        assert all(s in h["initial"] for s in PII)
        assert not any(s in h["final"] for s in PII) and h["final"].strip()
        assert 1 <= len(h["rounds"]) <= 3
    assert len(list(read_openai(tmp_path / "sft.jsonl"))) == 3 and len(lines(tmp_path / "pairs.jsonl")) == 3


def test_cli_revise_smoke(tiny_run, tmp_path, capsys):
    from flaxgpt.cli.main import main

    out = tmp_path / "revise"
    argv = ["cai", "revise", "--policy", str(tiny_run), "--prompts", str(ROOT / "examples/cai/red_team.jsonl"),
            "--limit", "2", "--rounds", "1", "--max-tokens", "6", "--owner-config", str(SOURCES), "--out", str(out),
            "--no-progress", "--fit", "middle"]
    assert main(argv) == 0
    assert "revise: 2 prompts (2 new)" in capsys.readouterr().out
    assert json.loads((out / "report.json").read_text())["prompts"] == 2
    assert main(argv) == 0 and "revise: 2 prompts (0 new)" in capsys.readouterr().out
    assert main(["cai", "revise", "--policy", str(tiny_run), "--out", str(out), "--constitution", "nope"]) == 2
