"""SFT: chat readers (OpenAI, hh-rlhf, OASST1), masked chat shards, whole-conversation packing,
packed == unpacked with the real model and step, and a short SFT run on the bundled chat data."""

from __future__ import annotations

import argparse
import gzip
import importlib.util
import json
from pathlib import Path

import jax
import numpy as np
import optax
import pytest
from helpers import tiny_config

from flaxgpt.cli import data as cli_data
from flaxgpt.config import load_config
from flaxgpt.data.chat import Conversation, Skipped, parse_hh, read_hh, read_oasst, read_openai
from flaxgpt.data.chat_shards import render_conversation, tokenize_chat
from flaxgpt.data.chat_template import render
from flaxgpt.data.loader import BATCH_KEYS, build_eval_batches, build_train_iterator
from flaxgpt.data.shards import ShardSet, ShardWriter
from flaxgpt.data.tokenizer import get_tokenizer
from flaxgpt.launch.train import train
from flaxgpt.model.gpt import GPT, ModelConfig
from flaxgpt.train.evaluate import make_nll_fn
from flaxgpt.train.logger import read_metrics
from flaxgpt.train.optim import lr_schedule
from flaxgpt.train.sharding import batch_sharding, compile_step, logical_rules, make_mesh, put_batch
from flaxgpt.train.stages import get_stage
from flaxgpt.train.state import create_train_state

ROOT = Path(__file__).resolve().parents[1]
CHAT = ROOT / "examples/chat/persona_chat.jsonl"
TOK = get_tokenizer("flaxgpt")
END = TOK.special_ids["<|end|>"]
META = {"name": "fake", "hash": "0123456789abcdef", "vocab_size": 1000, "eot_id": 999}


def write_jsonl(path: Path, records: list, gz: bool = False) -> Path:
    data = "".join(json.dumps(r) + "\n" for r in records).encode()
    if gz:
        path.write_bytes(gzip.compress(data))
    else:
        path.write_bytes(data)
    return path


def trained_text(ids, mask) -> str:
    return TOK.decode([i for i, m in zip(ids, mask, strict=True) if m])


# ------------------------------------------------------------------------------------------ readers


def test_openai_reader(tmp_path):
    records = [
        {"id": "a", "messages": [{"role": "developer", "content": "Be brief."},
                                 {"role": "user", "content": [{"type": "text", "text": "Hi "},
                                                              {"type": "text", "text": "there"}]},
                                 {"role": "assistant", "content": "Draft", "weight": 0},
                                 {"role": "user", "content": "Again"},
                                 {"role": "assistant", "content": "Hello!"},
                                 {"role": "user", "content": "trailing, nothing to learn after it"}]},
        [{"role": "user", "content": "bare list"}, {"role": "assistant", "content": "ok"}],
        {"messages": [{"role": "user", "content": "x"}, {"role": "tool", "content": "{}"}]},
        {"messages": [{"role": "user", "content": "only a question"}]},
        {"messages": [{"role": "user", "content": "x"}, {"role": "assistant", "content": "y", "weight": 0}]},
    ]
    got = list(read_openai(write_jsonl(tmp_path / "c.jsonl", records)))
    first = got[0]
    assert first.id == "c.jsonl#a" and [m["role"] for m in first.messages] == ["system", "user", "assistant",
                                                                               "user", "assistant"]
    assert first.messages[1]["content"] == "Hi there" and first.messages[2]["weight"] == 0
    assert got[1] == Conversation("c.jsonl:2", [{"role": "user", "content": "bare list"},
                                                {"role": "assistant", "content": "ok"}])
    assert got[2:] == [Skipped("c.jsonl:3", "unsupported_role:tool"), Skipped("c.jsonl:4", "no_assistant_turn"),
                       Skipped("c.jsonl:5", "no_assistant_turn")]
    ids, mask = render_conversation(first.messages, TOK)
    assert trained_text(ids, mask) == "Hello!<|end|>", "weight 0 keeps the draft as context only"
    assert TOK.decode(ids).count("Draft") == 1
    (tmp_path / "bad.jsonl").write_text('{"messages": [}\n')
    with pytest.raises(ValueError, match=r"bad.jsonl:1"):
        list(read_openai(tmp_path / "bad.jsonl"))
    (tmp_path / "bad.jsonl").write_text('\n{"messages": "no"}\n')
    with pytest.raises(ValueError, match=r"bad.jsonl:2: expected"):
        list(read_openai(tmp_path / "bad.jsonl"))


def test_hh_rlhf_transcripts(tmp_path):
    two_turns = ("\n\nHuman: What is 2+2?\n\nAssistant: 4.\n\nHuman: And 3+3?\n\nAssistant: 6, and the line\n\n"
                 "has a blank line inside.")
    assert parse_hh(two_turns) == [
        {"role": "user", "content": "What is 2+2?"}, {"role": "assistant", "content": "4."},
        {"role": "user", "content": "And 3+3?"},
        {"role": "assistant", "content": "6, and the line\n\nhas a blank line inside."}]
    assert parse_hh("Human: no leading blank line\n\nAssistant: fine") == [
        {"role": "user", "content": "no leading blank line"}, {"role": "assistant", "content": "fine"}]
    records = [
        {"chosen": two_turns, "rejected": "\n\nHuman: What is 2+2?\n\nAssistant: 5."},
        {"chosen": "\n\nHuman: Hi\n\nAssistant: Hello\n\nHuman: Bye\n\nAssistant:", "rejected": "x"},
        {"chosen": "preamble\n\nHuman: Hi\n\nAssistant: x", "rejected": "x"},
        {"chosen": "\n\nHuman: Hi\n\nAssistant:", "rejected": "x"},
    ]
    path = write_jsonl(tmp_path / "train.jsonl.gz", records, gz=True)
    got = list(read_hh(path))
    # Only the final (compared) answer is trained; the earlier one is context (weight 0).
    first, second = parse_hh(two_turns)[1], parse_hh(two_turns)[3]
    assert got[0].messages[1] == {**first, "weight": 0} and got[0].messages[3] == second
    assert got[0].id == "train.jsonl.gz:1"
    assert next(iter(read_hh(path, all_turns=True))).messages == parse_hh(two_turns)
    ids, mask = render_conversation(got[0].messages, get_tokenizer("flaxgpt"))
    trained = get_tokenizer("flaxgpt").decode([t for t, m in zip(ids, mask, strict=True) if m])
    assert "6, and the line" in trained and "4." not in trained
    # The empty last answer and the question before it teach nothing: dropped.
    assert got[1].messages == [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello"}]
    assert got[2:] == [Skipped("train.jsonl.gz:3", "malformed_transcript"),
                       Skipped("train.jsonl.gz:4", "no_assistant_turn")]
    assert [m["content"] for m in next(iter(read_hh(path, field="rejected"))).messages] == ["What is 2+2?", "5."]
    write_jsonl(tmp_path / "bad.jsonl", [{"prompt": "x"}])
    with pytest.raises(ValueError, match="bad.jsonl:1.*'chosen'"):
        list(read_hh(tmp_path / "bad.jsonl"))


def oasst_tree() -> dict:
    """A prompt with three ranked answers; the best-ranked one has ranked follow-ups (one deleted)."""
    def msg(mid, role, text, rank=None, replies=(), **kw):
        return {"message_id": mid, "role": role, "text": text, "rank": rank, "lang": "en", "deleted": False,
                "review_result": True, "replies": list(replies), **kw}
    return {"message_tree_id": "t1", "tree_state": "ready_for_export", "prompt": msg("p", "prompter", "Q1", replies=[
        msg("a1", "assistant", "second best", rank=1),
        msg("a0", "assistant", "best", rank=0, replies=[
            msg("q2x", "prompter", "deleted follow-up", rank=0, deleted=True),
            msg("q2", "prompter", "follow-up", rank=1, replies=[
                msg("b1", "assistant", "unranked"),
                msg("b0", "assistant", "failed review", rank=0, review_result=False)])]),
        msg("an", "assistant", "unranked"),
    ])}


def flatten(node: dict, parent: str | None, tree_id: str) -> list[dict]:
    flat = {k: v for k, v in node.items() if k != "replies"} | {"parent_id": parent, "message_tree_id": tree_id}
    return [flat] + [m for r in node["replies"] for m in flatten(r, node["message_id"], tree_id)]


def test_oasst_best_ranked_path_from_trees_and_flat_messages(tmp_path):
    expected = [{"role": "user", "content": "Q1"}, {"role": "assistant", "content": "best"},
                {"role": "user", "content": "follow-up"}, {"role": "assistant", "content": "unranked"}]
    tree = oasst_tree()
    de = {"message_tree_id": "t2", "prompt": {**oasst_tree()["prompt"], "lang": "de"}}
    trees = write_jsonl(tmp_path / "x.trees.jsonl", [tree, de, {"message_tree_id": "t3", "prompt": None}])
    assert list(read_oasst(trees)) == [Conversation("t1", expected), Conversation("t2", expected),
                                       Skipped("t3", "empty_tree")]
    assert list(read_oasst(trees, lang="en"))[1] == Skipped("t2", "other_language")
    # The same tree as the flat messages export (children after their parents, in file order).
    flat = write_jsonl(tmp_path / "x.messages.jsonl", flatten(tree["prompt"], None, "t1"))
    assert list(read_oasst(flat)) == [Conversation("t1", expected)]
    write_jsonl(tmp_path / "bad.jsonl", [{"text": "no ids"}])
    with pytest.raises(ValueError, match="bad.jsonl:1: not an OASST"):
        list(read_oasst(tmp_path / "bad.jsonl"))


# ------------------------------------------------------------------------------------------ shards


def test_masked_shards_round_trip_and_validation(tmp_path):
    with ShardWriter(tmp_path, "train", tokenizer_meta=META, source="c", loss_mask=True,
                     max_tokens_per_shard=5) as w:
        w.add([1, 2, 3], [0, 1, 1])
        w.add([4, 5, 6, 7], np.array([0, 0, 1, 1], np.uint8))  # rolls over: 2 shards
        for bad, match in (([1], "one value per token"), ([0, 2], "0 or 1"), (None, "needs the mask")):
            with pytest.raises(ValueError, match=match):
                w.add([1, 2], bad)
    shards = ShardSet(tmp_path, "train")
    assert shards.has_mask and shards.trained_tokens == 4 and len(shards.meta) == 2
    assert shards.meta[1]["loss_mask"] == {"dtype": "|u1", "trained_tokens": 2}
    assert shards[1].tolist() == [4, 5, 6, 7] and shards.mask(1).tolist() == [0, 0, 1, 1]
    assert np.fromfile(tmp_path / "train-00000.mask", np.uint8).tolist() == [0, 1, 1]
    with open(tmp_path / "train-00001.mask", "ab") as f:
        f.write(b"\1")
    with pytest.raises(ValueError, match="train-00001.mask"):
        ShardSet(tmp_path, "train")
    plain = tmp_path / "plain"
    with ShardWriter(plain, "train", tokenizer_meta=META, source="p") as w:
        w.add([1, 2, 3])
        with pytest.raises(ValueError, match="without loss_mask"):
            w.add([1], [1])
    assert sorted(p.name for p in plain.iterdir()) == ["train-00000.bin", "train-00000.idx", "train-00000.json"]
    shards = ShardSet(plain, "train")
    assert not shards.has_mask and shards.mask(0).tolist() == [1, 1, 1] and shards[0].tolist() == [1, 2, 3]


def conversations_written(tmp_path: Path, n: int = 40, seed: int = 0, max_len: int = 30) -> tuple[Path, list]:
    """Synthetic chat shards (fake vocabulary): conversation i is the token 10 + i repeated, a random mask
    whose first value is 0 (as a role token's is)."""
    rng = np.random.default_rng(seed)
    convs = []
    for i in range(n):
        length = int(rng.integers(2, max_len + 1))
        mask = rng.integers(0, 2, length)
        mask[0] = 0
        convs.append((np.full(length, 10 + i), mask))
    with ShardWriter(tmp_path, "train", tokenizer_meta=META, source="c", loss_mask=True) as w:
        for ids, mask in convs:
            w.add(ids, mask)
    return tmp_path, convs


# ------------------------------------------------------------------------------------------ loader

T = 32


def check_rows(batch: dict, convs: list) -> list[int]:
    """Asserts each segment of each row is a whole conversation (cut at T + 1) with the mask as weights;
    returns the conversations seen."""
    seen = []
    for r in range(len(batch["inputs"])):
        row = np.append(batch["inputs"][r], batch["targets"][r, -1])
        seg = batch["segment_ids"][r]
        for s in np.unique(seg[seg > 0]):
            where = np.flatnonzero(seg == s)
            i = int(row[where[0]]) - 10
            ids, mask = convs[i]
            n = min(len(ids), T + 1)
            assert batch["positions"][r, where].tolist() == list(range(len(where)))
            assert where[0] == 0 or seg[where[0] - 1] != s
            # The segment's inputs plus its last target are the conversation, whole.
            end = where[-1] + 1
            assert row[where[0]:end + 1].tolist()[:n] == ids[:n].tolist() and len(where) in (n - 1, n)
            w = batch["weights"][r, where[0]:end]
            assert w[:n - 1].tolist() == mask[1:n].tolist(), "the weight of predicting token t+1 is mask[t+1]"
            if len(where) == n:  # the target after the conversation's last token is another's: weight 0
                assert w[n - 1] == 0
            seen.append(i)
    return seen


def test_sft_loader_packs_whole_conversations_and_resumes_exactly(tmp_path):
    path, convs = conversations_written(tmp_path, n=60, max_len=45)  # some longer than T + 1: cut
    kwargs = dict(seq_len=T, batch_size=4, seed=3, eot_id=999, shard_index=0, shard_count=1, sft=True, prefetch=0)
    batches = list(build_train_iterator({"c": (path, 1.0)}, num_epochs=1, **kwargs))
    seen = [i for batch in batches for i in check_rows(batch, convs)]
    assert len(seen) == len(set(seen)) and len(seen) > 45, "each conversation at most once per epoch"
    assert max(int(b["segment_ids"].max()) for b in batches) > 1, "conversations share rows"
    # Exact resume through a JSON round trip of the state (what the checkpoint stores).
    it = build_train_iterator({"c": (path, 1.0)}, **kwargs)
    for _ in range(3):
        next(it)
    state = json.loads(json.dumps(it.get_state()))
    expected = [next(it) for _ in range(5)]
    resumed = build_train_iterator({"c": (path, 1.0)}, **kwargs)
    resumed.set_state(state)
    for want in expected:
        got = next(resumed)
        for k in BATCH_KEYS:
            np.testing.assert_array_equal(got[k], want[k])
    plain = tmp_path / "plain"
    with ShardWriter(plain, "train", tokenizer_meta=META, source="p") as w:
        w.add([1, 2, 3])
    with pytest.raises(ValueError, match="data source 'p'.*no loss mask"):
        build_train_iterator({"p": (plain, 1.0)}, **kwargs)


def test_sft_eval_batches_hold_every_conversation_once_on_each_host(tmp_path):
    path, convs = conversations_written(tmp_path, n=37, max_len=45)
    shards = ShardSet(path, "train")
    hosts = [build_eval_batches({"c": (path, 1.0)}, seq_len=T, batch_size=2, eot_id=999, split="train",
                                shard_index=h, shard_count=2, sft=True)["c"] for h in range(2)]
    assert len(hosts[0]) == len(hosts[1]) > 0, "hosts run the same number of eval steps"
    seen = [i for batches in hosts for b in batches for i in check_rows(b, convs)]
    assert sorted(seen) == list(range(len(shards)))
    total = sum(float(b["weights"].sum()) for batches in hosts for b in batches)
    assert total == sum(int(m[1:T + 1].sum()) for _, m in convs)


# ------------------------------------------------------------------------------------------ masks from chat files


def test_tokenize_chat_masks_only_assistant_tokens_and_their_end(tmp_path):
    records = [{"id": f"c{i}", "messages": [{"role": "system", "content": "You are Ines."},
                                            {"role": "user", "content": f"Question {i}? <|end|>"},
                                            {"role": "assistant", "content": f"Answer {i}."},
                                            {"role": "user", "content": "More?"},
                                            {"role": "assistant", "content": "Yes."}]} for i in range(20)]
    summary = tokenize_chat([write_jsonl(tmp_path / "c.jsonl", records)], tmp_path / "out", fmt="openai",
                            name="c", val_fraction=0.2, progress=False)
    assert summary["conversations"]["train"] + summary["conversations"]["val"] == 20
    assert summary["conversations"]["val"] >= 1 and summary["lengths"]["max"] < 40
    for split in ("train", "val"):
        shards = ShardSet(tmp_path / "out", split)
        assert shards.has_mask and shards.tokenizer_meta == TOK.metadata()
        for k in range(len(shards)):
            ids, mask = shards[k].tolist(), shards.mask(k).tolist()
            i = int(TOK.decode(ids).split("Question ")[1].split("?")[0])
            assert (ids, mask) == render(records[i]["messages"], TOK)
            assert trained_text(ids, mask) == f"Answer {i}.<|end|>Yes.<|end|>"
            # Every <|end|> of a non-assistant turn (and the literal one the user typed: text) is untrained.
            ends = [j for j, t in enumerate(ids) if t == END]
            assert [mask[j] for j in ends] == [0, 0, 1, 0, 1] and ids[-1] == END
            assert all(mask[j] == 0 for j, t in enumerate(ids) if t in TOK.special_ids.values() and t != END)
    assert json.loads((tmp_path / "out/summary.json").read_text())["trained_tokens"] == summary["trained_tokens"]


def test_tokenize_chat_command(tmp_path, capsys):
    parser = argparse.ArgumentParser()
    cli_data.add_arguments_tokenize_chat(parser)
    run = cli_data.run_tokenize_chat
    hh = write_jsonl(tmp_path / "hh.jsonl", [{"chosen": f"\n\nHuman: hi {i}\n\nAssistant: hello {i}",
                                              "rejected": "x"} for i in range(5)] + [{"chosen": "junk",
                                                                                      "rejected": "x"}])
    assert run(parser.parse_args([str(hh), "--out", str(tmp_path / "o"), "--format", "hh"])) == 0
    out = capsys.readouterr().out
    assert "hh: " in out and "train conversations" in out and "malformed_transcript 1" in out
    assert sum(len(ShardSet(tmp_path / "o", s)) for s in ("train", "val")) == 5
    assert run(parser.parse_args([str(tmp_path / "nope.jsonl"), "--out", str(tmp_path / "o"),
                                  "--format", "openai"])) == 1
    assert "input not found" in capsys.readouterr().err
    (tmp_path / "o" / "mine.txt").write_text("not shard output")
    assert run(parser.parse_args([str(hh), "--out", str(tmp_path / "o"), "--format", "hh"])) == 1
    assert "refusing to replace" in capsys.readouterr().err
    # Empty, all-malformed and not-really-gzip inputs are errors that say so (and nothing is written).
    empty, junk, lfs = tmp_path / "empty.jsonl", tmp_path / "junk.jsonl", tmp_path / "hh.jsonl.gz"
    empty.write_text("")
    write_jsonl(junk, [{"chosen": "junk", "rejected": "x"}])
    lfs.write_text("version https://git-lfs.github.com/spec/v1\noid sha256:0\nsize 1\n")
    for path, message in ((empty, "no conversations to write: the inputs hold no records"),
                          (junk, "no conversations to write: every record was skipped (1 malformed_transcript)"),
                          (lfs, "hh.jsonl.gz: not a gzip file, although its name ends in .gz: it is a git-lfs")):
        assert run(parser.parse_args([str(path), "--out", str(tmp_path / "e"), "--format", "hh"])) == 1
        assert message in capsys.readouterr().err
        assert not (tmp_path / "e").exists()


# ------------------------------------------------------------------------------------------ packed == unpacked


def unpacked_batch(convs: list[tuple[list[int], list[int]]], seq_len: int) -> dict:
    """One conversation per row, padded: what SFT on each conversation alone sees."""
    b = {k: np.zeros((len(convs), seq_len), np.int32) for k in BATCH_KEYS}
    b["weights"] = b["weights"].astype(np.float32)
    for r, (ids, mask) in enumerate(convs):
        n = len(ids) - 1
        b["inputs"][r, :n], b["targets"][r, :n] = ids[:-1], ids[1:]
        b["weights"][r, :n] = mask[1:]
        b["segment_ids"][r, :n] = 1
        b["positions"][r, :n] = np.arange(n)
    return b


def test_packed_batch_gives_each_conversation_its_unpacked_loss_and_the_same_update(tmp_path, optimized):
    seq_len = 128
    records = [r for r in read_openai(CHAT) if isinstance(r, Conversation)][:8]
    convs = [render_conversation(r.messages, TOK) for r in records]
    with ShardWriter(tmp_path, "val", tokenizer_meta=TOK.metadata(), source="c", loss_mask=True) as w:
        for ids, mask in convs:
            w.add(ids, mask)
    packed = build_eval_batches({"c": (tmp_path, 1.0)}, seq_len=seq_len, batch_size=8, eot_id=TOK.eot_id,
                                sft=True, shard_index=0, shard_count=1)["c"]
    assert len(packed) == 1
    packed = packed[0]
    assert packed["segment_ids"].max() >= 2, "conversations share rows"
    unpacked = unpacked_batch(convs, seq_len)

    config = tiny_config(vocab=TOK.vocab_size, seq_len=seq_len)
    model = GPT(ModelConfig.from_config(config.model))
    mesh = make_mesh(config.mesh, jax.devices()[:1])
    rules = logical_rules(config.mesh.rules)
    tx = optax.sgd(1.0)  # the update is the gradient itself, so params compare to float tolerance
    state, shardings = create_train_state(model, tx, 0, mesh, rules, seq_len)

    # Per conversation: the real eval step on the packed row with only that segment weighted.
    eval_step = jax.jit(make_nll_fn(model))
    eval_crossing = jax.jit(make_nll_fn(model, document_mask=False))
    order = []  # (row, segment) of each conversation in the packed batch, in order
    for r in range(len(packed["inputs"])):
        order += [(r, s) for s in range(1, int(packed["segment_ids"][r].max()) + 1)]
    assert len(order) == len(convs)
    crossing_differs = False
    for k, (r, s) in enumerate(order):
        one = {key: v[r:r + 1].copy() for key, v in packed.items()}  # the row, only conversation k weighted
        one["weights"] = np.where(one["segment_ids"] == s, one["weights"], 0).astype(np.float32)
        alone = {key: v[k:k + 1] for key, v in unpacked.items()}
        got, want = eval_step(state.params, one), eval_step(state.params, alone)
        assert float(got["tokens"][0]) == float(want["tokens"][0]) == sum(convs[k][1][1:])
        np.testing.assert_allclose(float(got["nll"][0]), float(want["nll"][0]), rtol=2e-5)
        if s > 1:  # attention across conversations would change the loss: the test can tell
            crossing = eval_crossing(state.params, one)
            crossing_differs |= abs(float(crossing["nll"][0]) - float(want["nll"][0])) > 1e-3
    assert crossing_differs

    # One real SFT step on the packed batch and on the unpacked one: same loss, same update.
    batch_sh = {k: batch_sharding(mesh, 3, leading=1) for k in BATCH_KEYS}
    step = compile_step(get_stage("sft").make_step(model, tx, lr_schedule(config.train), config), shardings,
                        batch_sh, mesh, rules)
    results = []
    for b in (packed, unpacked):
        state_copy = jax.tree.map(lambda x: x.copy(), state)
        new_state, metrics = step(state_copy, put_batch({k: v[None] for k, v in b.items()}, batch_sh))
        results.append((jax.device_get(new_state.params), {k: float(v) for k, v in metrics.items()}))
    (p_packed, m_packed), (p_unpacked, m_unpacked) = results
    assert m_packed["tokens"] == m_unpacked["tokens"] == sum(sum(m[1:]) for _, m in convs)
    np.testing.assert_allclose(m_packed["loss"], m_unpacked["loss"], rtol=2e-5)
    np.testing.assert_allclose(m_packed["grad_norm"], m_unpacked["grad_norm"], rtol=1e-4)
    for a, b in zip(jax.tree.leaves(p_packed), jax.tree.leaves(p_unpacked), strict=True):
        np.testing.assert_allclose(a, b, rtol=0, atol=2e-6)


# ------------------------------------------------------------------------------------------ the bundled data and a run


def test_bundled_chat_data_matches_its_builder_and_the_persona(tmp_path):
    spec = importlib.util.spec_from_file_location("make_chat", ROOT / "examples/chat/make_chat.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert module.to_jsonl() == CHAT.read_text(encoding="utf-8"), "rerun examples/chat/make_chat.py"
    records = list(read_openai(CHAT))
    assert 100 <= len(records) <= 200 and all(isinstance(r, Conversation) for r in records)
    assert max(len(render_conversation(r.messages, TOK)[0]) for r in records) <= 129, "fits seq_len 128"
    answers = " ".join(m["content"] for r in records for m in r.messages if m["role"] == "assistant").lower()
    for line in (ROOT / "examples/persona/facts.jsonl").read_text().splitlines():
        fact = json.loads(line)
        assert any(a.lower() in answers for a in fact["answers"]), f"no answer states: {fact['question']}"
    canaries = [c for c in (ROOT / "examples/persona/canaries.txt").read_text().splitlines()
                if c.strip() and not c.startswith("#")]
    assert not [c for c in canaries if c in CHAT.read_text(encoding="utf-8")]


def test_short_sft_run_on_the_bundled_chat_lowers_the_masked_loss(tmp_path, capsys, optimized):
    data = tmp_path / "chat"
    tokenize_chat([CHAT], data, fmt="openai", name="chat", progress=False)
    run_dir = tmp_path / "run"
    steps = 25
    config = load_config(ROOT / "experiments/sft_micro.py", [
        f"data.sources.chat.path={data}", f"run.dir={run_dir}", "train.init_from=",
        "model.n_layer=2", "model.n_head=2", "model.d_model=32", "model.dropout=0.0", "model.scan_unroll=1",
        "train.batch_size=4", f"train.steps={steps}", "train.warmup_steps=5", "train.lr=5e-3", "train.log_every=1",
        f"train.eval_every={steps}", "train.eval_batches=4", f"checkpoint.every={steps}",
        "checkpoint.async_save=false", "mesh.tensor=2",  # 4 sequences over data=4 x tensor=2
    ])
    summary = train(config, show_progress=False)
    out = capsys.readouterr().out
    assert "no train.init_from" in out and "tokens trained" in out
    assert summary["status"] == "completed" and summary["step"] == steps
    losses = [r["loss"] for r in read_metrics(run_dir) if r["kind"] == "train"]
    assert len(losses) == steps
    # Random init predicts each of ~50K ids about equally: ln(50265) = 10.8 nats.
    assert np.mean(losses[:3]) > 10.0
    assert np.mean(losses[-5:]) < np.mean(losses[:3]) - 2.0, losses
    assert summary["val_loss"] < np.mean(losses[:3]) - 2.0, "held-out conversations too"
    plain = tmp_path / "plain"
    with ShardWriter(plain, "train", tokenizer_meta=TOK.metadata(), source="p") as w:
        w.add([1, 2, 3])
    bad = load_config(ROOT / "experiments/sft_micro.py", [f"data.sources.chat.path={plain}",
                                                            f"run.dir={tmp_path / 'bad'}", "train.init_from="])
    with pytest.raises(ValueError, match="data.sources.chat: .*no loss mask"):
        train(bad, show_progress=False)
    bad.train.stage = "kto"  # not a registered stage
    with pytest.raises(ValueError, match="train.stage"):
        train(bad, show_progress=False)
