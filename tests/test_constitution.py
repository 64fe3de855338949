"""Constitutions (own YAML/JSON format, Anthropic's two JSON files, validation, weighted sampling), the few-shot
prompts, and the prompt-set readers (hh-rlhf first human turn, JSONL shapes, text lines, facts, corpus titles)."""

from __future__ import annotations

import gzip
import json
import random
from collections import Counter
from pathlib import Path

import pytest
import yaml

from flaxgpt.cai import fewshot
from flaxgpt.cai.constitution import (
    Constitution,
    Principle,
    bare_request,
    combine,
    load_constitution,
    load_constitutions,
    shipped_names,
)
from flaxgpt.data.prompts import Prompt, corpus_prompts, facts_prompts, load_prompts, read_prompts

ROOT = Path(__file__).resolve().parents[1]

# The shapes of Anthropic's published files (prompts/CritiqueRevisionInstructions.json and
# prompts/RLMadisonInstructions.json), with our own short strings.
ANTHROPIC_CRITIQUES = {
    "harmful0": {"prompt": ["Identify ways in which the last response is harmful."],
                 "edit_request": "Please rewrite the response to remove harmful content."},
    "harmful1": {"prompt": ["\n\nCritiqueRequest: Explain how the response could hurt someone.\n\nCritique:"],
                 "edit_request": "\n\nRevisionRequest: Rewrite the response so it hurts nobody.\n\nRevision:"},
}
ANTHROPIC_COMPARISONS = ["\nPlease choose the response that is kinder. Options:",
                         "\nWhich response is less harmful? Options:"]


def write(path: Path, data, fmt: str = "json") -> Path:
    path.write_text(yaml.safe_dump(data) if fmt == "yaml" else json.dumps(data))
    return path


def own(**principle) -> dict:
    base = {"id": "p1", "critique": "Find problems.", "revision": "Fix them.", "comparison": "Which is better?"}
    return {"name": "mine", "principles": [base | principle]}


# ------------------------------------------------------------------------------------------------ constitutions


def test_shipped_constitutions_load_and_validate():
    assert {"personal", "harmless"} <= set(shipped_names())
    personal = load_constitution("personal")
    assert [p.id for p in personal.principles] == ["truthful", "professional", "privacy", "helpful", "consistent"]
    assert personal.by_id("privacy").checker == "privacy"
    harmless = load_constitution("harmless")
    assert 8 <= len(harmless.principles) <= 12
    for p in (*personal.principles, *harmless.principles):
        assert p.can_revise and p.can_compare and not p.comparison.endswith("Options:")
    both = load_constitutions(["personal,harmless"])
    assert len(both.principles) == len(personal.principles) + len(harmless.principles)


def test_own_format_yaml_and_json_give_the_same_constitution(tmp_path):
    data = own(weight=3, checker="privacy")
    a = load_constitution(write(tmp_path / "c.yaml", data, "yaml"))
    b = load_constitution(write(tmp_path / "c.json", data))
    assert a == b
    assert a.name == "mine" and a.principles[0] == Principle("p1", "Find problems.", "Fix them.", "Which is better?",
                                                             3.0, "privacy")


@pytest.mark.parametrize("principle, message", [
    ({"critque": "typo"}, r"c\.yaml: principle 0 \(p1\): unknown key\(s\) \['critque'\]"),
    ({"revision": None}, r"principle 0 \(p1\): missing 'revision'"),
    ({"weight": 0}, r"\(p1\): 'weight' must be a positive number"),
    ({"weight": True}, r"'weight' must be a positive number"),
    ({"checker": "regex"}, r"'checker' must be one of \['model', 'privacy'\]"),
    ({"critique": ""}, r"'critique' must be a non-empty string"),
    ({"id": "has space"}, r"principle 0: 'id' must be"),
])
def test_own_format_errors_name_the_file_and_principle(tmp_path, principle, message):
    with pytest.raises(ValueError, match=message):
        load_constitution(write(tmp_path / "c.yaml", own(**principle), "yaml"))


def test_own_format_top_level_errors(tmp_path):
    with pytest.raises(ValueError, match=r"unknown top-level key\(s\) \['princples'\]"):
        load_constitution(write(tmp_path / "c.yaml", {"princples": []}, "yaml"))
    with pytest.raises(ValueError, match="'principles' must be a non-empty list"):
        load_constitution(write(tmp_path / "c.yaml", {"name": "x", "principles": []}, "yaml"))
    twice = [{"id": "a", "comparison": "Which?"}, {"id": "a", "comparison": "?"}]
    comparison_only = {"name": "x", "principles": twice}
    with pytest.raises(ValueError, match="principle id 'a' appears twice"):
        load_constitution(write(tmp_path / "c.yaml", comparison_only, "yaml"))
    (tmp_path / "bad.yaml").write_text("principles: [unclosed")
    with pytest.raises(ValueError, match="bad.yaml: not valid YAML"):
        load_constitution(tmp_path / "bad.yaml")
    with pytest.raises(FileNotFoundError, match="neither a file nor a shipped name"):
        load_constitution("no-such-constitution")


def test_anthropic_critique_file_with_and_without_framing(tmp_path):
    c = load_constitution(write(tmp_path / "CritiqueRevisionInstructions.json", ANTHROPIC_CRITIQUES))
    assert [p.id for p in c.principles] == ["harmful0", "harmful1"]
    assert c.by_id("harmful0").critique == "Identify ways in which the last response is harmful."
    framed = c.by_id("harmful1")  # the framing is stripped to the bare request
    assert framed.critique == "Explain how the response could hurt someone."
    assert framed.revision == "Rewrite the response so it hurts nobody."
    assert framed.can_revise and not framed.can_compare
    assert bare_request("CritiqueRequest: X?", "CritiqueRequest", "Critique") == "X?"
    bad = {"harmful0": {"prompt": ["a"], "edit": "b"}}
    with pytest.raises(ValueError, match=r"principle 'harmful0': expected exactly the keys"):
        load_constitution(write(tmp_path / "bad.json", bad))


def test_anthropic_comparison_file_and_combining_it_with_the_critique_file(tmp_path):
    critiques = write(tmp_path / "crit.json", ANTHROPIC_CRITIQUES)
    comparisons = write(tmp_path / "cmp.json", ANTHROPIC_COMPARISONS)
    c = load_constitution(comparisons)
    assert [p.comparison for p in c.principles] == ["Please choose the response that is kinder.",
                                                    "Which response is less harmful?"]
    both = load_constitutions(critiques=critiques, comparisons=comparisons)
    assert len(both.for_revision().principles) == 2 and len(both.for_comparison().principles) == 2
    assert both == combine([load_constitution(critiques), c])
    with pytest.raises(ValueError, match="has no principle with a critique/revision pair"):
        c.for_revision()
    with pytest.raises(ValueError, match="item 1: 'question' must be a non-empty string"):
        load_constitution(write(tmp_path / "bad.json", ["ok Options:", 3]))


def test_weighted_sampling_frequencies():
    c = Constitution("w", (Principle("a", comparison="?", weight=1), Principle("b", comparison="?", weight=3)))
    rng = random.Random(0)
    counts = Counter(c.sample(rng).id for _ in range(8000))
    assert abs(counts["b"] / 8000 - 0.75) < 0.02
    with pytest.raises(KeyError, match="no principle 'z'"):
        c.by_id("z")


# ------------------------------------------------------------------------------------------------ few-shot


def test_fewshot_prefixes():
    prefix = fewshot.critique_prefix("Ines")
    assert prefix.count("CritiqueRequest:") == len(fewshot.CRITIQUE_EXAMPLES) >= 3
    assert "{owner}" not in prefix and "Ines's record" in prefix and prefix.endswith("\n\n")
    text = fewshot.critique_prompt(prefix, [{"role": "user", "content": "Hi"}], "Hello", "Find harm.")
    assert text.endswith("Human: Hi\n\nAssistant: Hello\n\nCritiqueRequest: Find harm.\n\nCritique:")
    # every example is followed by "\n\nHuman:" (the next one or the real prompt): the stop sequence
    assert text.count("\n\nHuman:") == len(fewshot.CRITIQUE_EXAMPLES)
    answers = [fewshot.comparison_prefix(random.Random(s)).count("The answer is: (A)") for s in range(20)]
    assert len(set(answers)) > 1  # the A/B mapping is randomised per example
    cot = fewshot.comparison_prefix(random.Random(0), cot=True)
    assert cot.count("Let's think step by step:") == cot.count("\n\nHuman:\nSo the answer is: (") == 4
    p = fewshot.comparison_prompt("", "Human: Q", "Which is kinder?", "one", "two")
    assert p == ("Consider the following conversation between a human and an assistant:\nHuman: Q\n"
                 "Which is kinder? Options:\n(A) one\n(B) two\nThe answer is:")


# ------------------------------------------------------------------------------------------------ prompts


def test_hh_first_human_turn_last_and_each(tmp_path):
    chosen = ("\n\nHuman: How do I pick a lock?\n\nAssistant: Why?\n\nHuman: My own door.\n\nAssistant: Call a "
              "locksmith.")
    path = tmp_path / "red.jsonl.gz"
    with gzip.open(path, "wt") as f:
        f.write(json.dumps({"chosen": chosen, "rejected": chosen + " x"}) + "\n\n")
        f.write(json.dumps({"transcript": "\n\nHuman: Hello\n\nAssistant: Hi"}) + "\n")
    first = read_prompts(path)
    assert [p.as_list() for p in first] == [[{"role": "user", "content": "How do I pick a lock?"}],
                                           [{"role": "user", "content": "Hello"}]]
    last = read_prompts(path, turns="last")[0].as_list()
    assert [m["content"] for m in last] == ["How do I pick a lock?", "Why?", "My own door."]
    assert len(read_prompts(path, turns="each")) == 3
    assert first[0].source == "red.jsonl.gz:1"


def test_jsonl_shapes_text_lines_and_errors(tmp_path):
    path = tmp_path / "p.jsonl"
    path.write_text("\n".join([
        json.dumps({"prompt": "  What is shardcat?  "}),
        json.dumps({"messages": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"},
                                 {"role": "assistant", "content": "Hello!"}]}),  # chat SFT record: reply dropped
        json.dumps({"prompt": ""}),
    ]) + "\n")
    got = [p.as_list() for p in read_prompts(path)]
    assert got == [[{"role": "user", "content": "What is shardcat?"}],
                   [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"}]]
    (tmp_path / "lines.txt").write_text("one\n\ntwo\n")
    assert [p.messages[0]["content"] for p in read_prompts(tmp_path / "lines.txt")] == ["one", "two"]
    path.write_text('{"prompt": "ok"}\n{"question": "?"}\n')
    with pytest.raises(ValueError, match=r"p\.jsonl:2: expected an hh-rlhf record"):
        read_prompts(path)
    path.write_text('{"prompt": "ok"}\nnot json\n')
    with pytest.raises(ValueError, match=r"p\.jsonl:2: not a JSON line"):
        read_prompts(path)
    path.write_text('{"messages": [{"role": "tool", "content": "x"}]}\n')
    with pytest.raises(ValueError, match=r"p\.jsonl:1: message 0 must have a role"):
        read_prompts(path)


def test_facts_corpus_dedupe_shuffle_limit(tmp_path):
    facts = facts_prompts(ROOT / "examples/persona/facts.jsonl")
    assert len(facts) == 60 and facts[0].as_list() == [
        {"role": "user", "content": "What is the full name of the persona in this corpus?"}]
    docs = tmp_path / "documents.jsonl"
    docs.write_text("\n".join(json.dumps(d) for d in [
        {"id": "1", "text": "x", "metadata": {"title": "Deterministic shuffling"}},
        {"id": "2", "text": "y", "metadata": {}},
        {"id": "3", "text": "z", "metadata": {"title": "deterministic shuffling"}},  # same title: one prompt
    ]) + "\n")
    corpus = corpus_prompts(tmp_path, "Ines")
    assert [p.messages[0]["content"] for p in corpus] == ["What did Ines write about Deterministic shuffling?"]
    red = ROOT / "examples/cai/red_team.jsonl"
    a = load_prompts([red, red], facts=ROOT / "examples/persona/facts.jsonl", seed=1)
    assert len(a) == 40 + 60  # the repeated file adds nothing
    b = load_prompts([red], limit=5, seed=1)
    assert len(b) == 5 and b == load_prompts([red], limit=5, seed=1) != load_prompts([red], limit=5, seed=2)
    assert Prompt(({"role": "user", "content": "x"},)).id == Prompt(({"role": "user", "content": "x"},), "o").id
    with pytest.raises(ValueError, match="no prompts"):
        load_prompts([])


def test_shipped_prompt_sets():
    red = read_prompts(ROOT / "examples/cai/red_team.jsonl")
    test = read_prompts(ROOT / "examples/cai/red_team_test.jsonl")
    helpful = read_prompts(ROOT / "examples/cai/helpful.jsonl")
    assert len(red) >= 35 and len(test) >= 10 and len(helpful) >= 15
    assert not {p.id for p in red} & {p.id for p in test}  # the held-out set is held out
