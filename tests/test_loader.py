"""grain loader: packing, mixing, determinism, exact resume, host sharding, eval batches."""

import json

import grain
import numpy as np
import orbax.checkpoint as ocp
import pytest

from flaxgpt.data.loader import BATCH_KEYS, build_eval_batches, build_train_iterator
from flaxgpt.data.shards import ShardWriter

EOT = 999
META = {"name": "fake", "hash": "0123456789abcdef", "vocab_size": 1000, "eot_id": EOT}
T, B = 16, 4


def synthetic_docs(first_id: int, n: int, seed: int) -> list[list[int]]:
    """Document i is the token first_id + i repeated 1..40 times, so every token names its document."""
    lengths = np.random.default_rng(seed).integers(1, 41, n)
    return [[first_id + i] * int(length) for i, length in enumerate(lengths)]


def write(directory, split_docs, **kwargs):
    for split, docs in split_docs.items():
        with ShardWriter(directory, split, tokenizer_meta=META, source=directory.name, **kwargs) as w:
            for doc in docs:
                w.add(doc)
    return directory


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    """Source a: ids 0..99 (train) and 200..229 (val); source b: ids 500..579 and 700..719."""
    root = tmp_path_factory.mktemp("corpus")
    docs = {"a": {"train": synthetic_docs(0, 100, 1), "val": synthetic_docs(200, 30, 2)},
            "b": {"train": synthetic_docs(500, 80, 3), "val": synthetic_docs(700, 20, 4)}}
    write(root / "a", docs["a"], max_tokens_per_shard=300)  # several shards per split
    write(root / "b", docs["b"])
    return root, docs


def train_iter(corpus, names=("a",), weights=None, **kwargs):
    root, _ = corpus
    weights = weights or [1.0] * len(names)
    sources = {n: (root / n, w) for n, w in zip(names, weights, strict=True)}
    kwargs = {"seq_len": T, "batch_size": B, "seed": 0, "eot_id": EOT, "shard_index": 0, "shard_count": 1} | kwargs
    return build_train_iterator(sources, **kwargs)


def rows_stream(batches) -> list[int]:
    """The token stream the rows were cut from (padding dropped): row = inputs + last target."""
    out = []
    for b in batches:
        for r in range(len(b["inputs"])):
            row = np.append(b["inputs"][r], b["targets"][r, -1])
            real = np.append(b["segment_ids"][r] != 0, b["weights"][r, -1] > 0)
            out.extend(row[real].tolist())
    return out


def split_docs(stream: list[int]) -> list[list[int]]:
    assert stream[-1] == EOT
    docs, cur = [], []
    for t in stream:
        if t == EOT:
            docs.append(cur)
            cur = []
        else:
            cur.append(t)
    return docs


def check_rows(batch):
    """Segment ids count documents from 1, positions restart per segment, padding only at the end."""
    assert set(batch) == set(BATCH_KEYS)
    assert batch["inputs"].shape[1] == T
    for key in BATCH_KEYS:
        assert batch[key].shape == batch["inputs"].shape
        assert batch[key].dtype == (np.float32 if key == "weights" else np.int32)
    np.testing.assert_array_equal(batch["targets"][:, :-1], batch["inputs"][:, 1:])
    for seg, pos, w, x in zip(batch["segment_ids"], batch["positions"], batch["weights"], batch["inputs"],
                              strict=True):
        n = int((seg != 0).sum())
        assert (seg[n:] == 0).all() and (w[n:] == 0).all()
        if n == 0:
            continue
        assert (w[:n - 1] == 1).all()
        assert seg[0] == 1 and pos[0] == 0
        for i in range(1, n):
            if seg[i] != seg[i - 1]:
                assert seg[i] == seg[i - 1] + 1 and pos[i] == 0 and x[i - 1] == EOT
            else:
                assert pos[i] == pos[i - 1] + 1


def take(it, n):
    return [next(it) for _ in range(n)]


def assert_batches_equal(xs, ys):
    assert len(xs) == len(ys)
    for x, y in zip(xs, ys, strict=True):
        for key in BATCH_KEYS:
            np.testing.assert_array_equal(x[key], y[key])


def test_batches_are_well_formed(corpus):
    for batch in take(train_iter(corpus, ("a", "b")), 30):
        check_rows(batch)
        assert (batch["weights"] == 1).all()  # an endless stream has no padding


def test_deterministic_by_seed(corpus):
    first = take(train_iter(corpus, ("a", "b"), seed=7), 10)
    assert_batches_equal(first, take(train_iter(corpus, ("a", "b"), seed=7, prefetch=0), 10))
    other = take(train_iter(corpus, ("a", "b"), seed=8), 10)
    assert not all(np.array_equal(x["inputs"], y["inputs"]) for x, y in zip(first, other, strict=True))


def test_one_epoch_reads_every_document_once(corpus):
    # batch_size 1 drops no remainder, so the stream is exactly one pass.
    batches = list(train_iter(corpus, batch_size=1, num_epochs=1))
    for batch in batches:
        check_rows(batch)
    docs = split_docs(rows_stream(batches))
    expected = corpus[1]["a"]["train"]
    assert sorted(d[0] for d in docs) == list(range(len(expected)))  # each document once
    assert all(d == expected[d[0]] for d in docs)  # and whole
    assert sum(int(b["weights"].sum()) for b in batches) == sum(len(d) + 1 for d in expected) - len(batches)


def test_finite_stream_drops_only_the_last_partial_batch(corpus):
    batches = list(train_iter(corpus, num_epochs=1))
    rows = sum(len(d) + 1 for d in corpus[1]["a"]["train"]) / (T + 1)
    assert len(batches) == int(np.ceil(rows)) // B


def test_exact_single_pass_and_new_permutation_each_epoch(corpus):
    # batch_size 1 drops nothing: the stream is exactly two epochs, each a permutation of the documents.
    expected = corpus[1]["a"]["train"]
    batches = list(train_iter(corpus, batch_size=1, num_epochs=2))
    docs = split_docs(rows_stream(batches))
    assert len(docs) == 2 * len(expected)
    epochs = [[d[0] for d in docs[:len(expected)]], [d[0] for d in docs[len(expected):]]]
    for order in epochs:
        assert sorted(order) == list(range(len(expected)))
    assert epochs[0] != epochs[1] and epochs[0] != sorted(epochs[0])
    for d in docs:
        assert d == expected[d[0]]
    assert (batches[-1]["weights"][0, :-1] == (batches[-1]["segment_ids"][0, 1:] != 0)).all()


@pytest.mark.parametrize("weights", [(1.0, 3.0), (0.3, 0.7)])
def test_mixing_proportions_in_tokens(corpus, weights):
    tokens = {"a": 0, "b": 0}
    for batch in take(train_iter(corpus, ("a", "b"), weights=weights, batch_size=8, seq_len=32), 100):
        for row in np.concatenate([batch["inputs"], batch["targets"][:, -1:]], axis=1):
            ids = row[row != EOT]
            source = "a" if ids.max() < 500 else "b"
            assert (ids < 500).all() == (source == "a")  # rows are never mixed across sources
            tokens[source] += len(row)
    share = tokens["b"] / (tokens["a"] + tokens["b"])
    assert abs(share - weights[1] / sum(weights)) < 0.01


@pytest.mark.parametrize("prefetch", [0, 2])
def test_resume_mid_epoch_from_state(corpus, prefetch):
    reference = take(train_iter(corpus, ("a", "b"), weights=(1, 2), prefetch=prefetch), 25)
    for k in (1, 6, 13):
        it = train_iter(corpus, ("a", "b"), weights=(1, 2), prefetch=prefetch)
        take(it, k)
        state = json.loads(json.dumps(it.get_state()))  # as a checkpoint stores it
        take(it, 3)  # the live iterator moves on; the saved state must not
        restored = train_iter(corpus, ("a", "b"), weights=(1, 2), prefetch=prefetch)
        restored.set_state(state)
        assert_batches_equal(take(restored, 8), reference[k:k + 8])


def test_resume_when_rows_end_on_document_boundaries(tmp_path):
    # Every document + eot fills a row exactly, so packing never holds a remainder. grain 0.2.18
    # loses a document restoring such a state after JSON; the loader works around it.
    write(tmp_path / "c", {"train": [[i] * T for i in range(50)]})
    aligned = (tmp_path, None)
    reference = take(train_iter(aligned, ("c",), batch_size=2), 12)
    it = train_iter(aligned, ("c",), batch_size=2)
    take(it, 5)
    restored = train_iter(aligned, ("c",), batch_size=2)
    restored.set_state(json.loads(json.dumps(it.get_state())))
    assert_batches_equal(take(restored, 7), reference[5:])


def test_resume_through_orbax_checkpoint_manager(corpus, tmp_path):
    reference = take(train_iter(corpus, ("a", "b")), 12)
    it = train_iter(corpus, ("a", "b"))
    take(it, 5)
    options = ocp.CheckpointManagerOptions(enable_async_checkpointing=True)
    with ocp.CheckpointManager(tmp_path / "ckpt", options=options) as manager:
        manager.save(5, args=ocp.args.Composite(data=grain.checkpoint.CheckpointSave(it)))
        take(it, 2)  # training goes on while an async save finishes: the saved position must not move
        manager.wait_until_finished()
    restored = train_iter(corpus, ("a", "b"))
    with ocp.CheckpointManager(tmp_path / "ckpt") as manager:
        assert manager.latest_step() == 5
        manager.restore(5, args=ocp.args.Composite(data=grain.checkpoint.CheckpointRestore(restored)))
    assert_batches_equal(take(restored, 7), reference[5:])


def test_hosts_read_disjoint_documents_covering_all(corpus):
    seen = []
    for index in (0, 1):
        batches = list(train_iter(corpus, batch_size=1, num_epochs=1, shard_index=index, shard_count=2))
        seen.append({d[0] for d in split_docs(rows_stream(batches))})
    assert not seen[0] & seen[1]
    assert seen[0] | seen[1] == set(range(len(corpus[1]["a"]["train"])))


def test_eval_batches_cover_every_token_once(corpus):
    root, docs = corpus
    evals = build_eval_batches({"a": (root / "a", 1), "b": (root / "b", 1)}, seq_len=T, batch_size=B,
                               eot_id=EOT, shard_index=0, shard_count=1)
    for name in ("a", "b"):
        batches = evals[name]
        for batch in batches:
            check_rows(batch)
        expected = [t for d in docs[name]["val"] for t in [*d, EOT]]  # in order, no shuffle
        assert rows_stream(batches) == expected
        assert len(batches) == -(-len(expected) // (B * (T + 1)))
        last = batches[-1]
        assert (last["weights"][last["segment_ids"] == 0] == 0).all() and (last["segment_ids"] == 0).any()
        assert len(expected) == sum(int((b["segment_ids"] != 0).sum()) for b in batches) + \
            sum(int(b["weights"][r, -1]) for b in batches for r in range(B))
    capped = build_eval_batches({"a": (root / "a", 1)}, seq_len=T, batch_size=B, eot_id=EOT, max_batches=2,
                                shard_index=0, shard_count=1)
    assert_batches_equal(capped["a"], evals["a"][:2])


def test_eval_batches_host_sharded(corpus):
    root, docs = corpus
    per_host = [build_eval_batches({"b": (root / "b", 1)}, seq_len=T, batch_size=B, eot_id=EOT, shard_index=i,
                                   shard_count=3)["b"] for i in range(3)]
    assert len({len(batches) for batches in per_host}) == 1  # hosts stay in lockstep
    ids = [{d[0] for d in split_docs(rows_stream(batches))} for batches in per_host]
    assert not (ids[0] & ids[1] or ids[0] & ids[2] or ids[1] & ids[2])
    assert set().union(*ids) == {d[0] for d in docs["b"]["val"]}


def test_bad_sources_name_the_source(corpus, tmp_path):
    root, _ = corpus
    with pytest.raises(FileNotFoundError, match=r"'web'.*missing_dir"):
        build_train_iterator({"a": (root / "a", 1), "web": (tmp_path / "missing_dir", 1)}, seq_len=T, batch_size=B,
                             seed=0, eot_id=EOT, shard_index=0, shard_count=1)
    for weight in (0, -1, float("nan")):
        with pytest.raises(ValueError, match="'a'.*weight"):
            build_train_iterator({"a": (root / "a", weight)}, seq_len=T, batch_size=B, seed=0, eot_id=EOT,
                                 shard_index=0, shard_count=1)
    with pytest.raises(ValueError, match="eot_id"):
        train_iter(corpus, eot_id=5)
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match="'e'.*no 'train' shards"):
        build_eval_batches({"e": (tmp_path / "empty", 1)}, seq_len=T, batch_size=B, eot_id=EOT, split="train",
                           shard_index=0, shard_count=1)
    with pytest.raises(ValueError, match="host 150 of 200"):
        train_iter(corpus, shard_index=150, shard_count=200)
