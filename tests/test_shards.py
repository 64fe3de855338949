"""Token shards: layout, round trip, lazy memmaps, atomic writes, rollover, validation."""

import json
import pickle

import numpy as np
import pytest

from flaxgpt.data.shards import ShardSet, ShardWriter, list_shards, read_sidecar

DOCS = [[1, 2, 3], [4], [5, 6, 7, 8, 9], [998, 0], [10, 11]]


def test_round_trip_and_index(tmp_path, write_shards):
    write_shards(tmp_path, DOCS)
    tokens = np.fromfile(tmp_path / "train-00000.bin", dtype="<u2")
    ends = np.fromfile(tmp_path / "train-00000.idx", dtype="<u8")
    assert tokens.tolist() == [t for doc in DOCS for t in doc]  # no end-of-text stored
    assert ends.tolist() == [3, 4, 9, 11, 13]
    shards = ShardSet(tmp_path, "train")
    assert len(shards) == len(DOCS) and shards.num_tokens == 13
    for i, doc in enumerate(DOCS):
        assert shards[i].dtype == np.int32 and shards[i].tolist() == doc
    assert shards[-1].tolist() == DOCS[-1] and shards[np.int64(2)].tolist() == DOCS[2]
    assert shards.document_lengths().tolist() == [3, 1, 5, 2, 2]
    with pytest.raises(IndexError):
        shards[len(DOCS)]
    assert "documents=5" in repr(shards) and "tokens=13" in repr(shards)


def test_sidecar_fields(tmp_path, write_shards, fake_meta):
    write_shards(tmp_path, DOCS, split="val", source="blog")
    meta = read_sidecar(tmp_path / "val-00000.json")
    assert meta == read_sidecar(tmp_path / "val-00000")
    assert meta["split"] == "val" and meta["source"] == "blog" and meta["shard"] == 0
    assert meta["tokenizer"] == fake_meta and meta["vocab_size"] == 1000
    assert meta["num_documents"] == 5 and meta["num_tokens"] == 13
    assert meta["token_dtype"] == "<u2" and meta["index_dtype"] == "<u8"
    assert ShardSet(tmp_path, "val").meta == [meta]


def test_pickle_is_small_and_reopens(tmp_path, write_shards):
    write_shards(tmp_path, [list(range(500))] * 200)  # 200 KB of tokens that must not be pickled
    shards = ShardSet(tmp_path, "train")
    assert shards[3][:3].tolist() == [0, 1, 2]  # opens the memmaps
    blob = pickle.dumps(shards)
    assert len(blob) < 10_000
    clone = pickle.loads(blob)
    assert len(clone) == 200 and clone[199].tolist() == list(range(500))
    assert len(pickle.dumps(clone)) == len(blob)


def test_failed_write_leaves_no_visible_shard(tmp_path, fake_meta):
    with pytest.raises(RuntimeError, match="killed"):  # noqa: SIM117
        with ShardWriter(tmp_path, "train", tokenizer_meta=fake_meta, source="x", max_tokens_per_shard=4) as w:
            w.add([1, 2, 3])
            w.add([4, 5, 6])  # rolls: shard 00000 is finished
            raise RuntimeError("killed")
    names = sorted(p.name for p in tmp_path.iterdir())
    assert names == ["train-00000.bin", "train-00000.idx", "train-00000.json"]  # no .tmp, no half shard 00001
    assert [ShardSet(tmp_path, "train")[0].tolist()] == [[1, 2, 3]]


def test_unfinished_writer_has_no_bin(tmp_path, fake_meta):
    w = ShardWriter(tmp_path, "train", tokenizer_meta=fake_meta, source="x")
    w.add([1, 2, 3])
    assert not list(tmp_path.glob("*.bin")) and not list(tmp_path.glob("*.json"))
    with pytest.raises(FileNotFoundError, match=str(tmp_path)):
        list_shards(tmp_path, "train")
    assert w.close()[0]["num_tokens"] == 3
    assert list_shards(tmp_path, "train") == [tmp_path / "train-00000"]


def test_rollover(tmp_path, write_shards):
    docs = [[1] * 4, [2] * 4, [3] * 4, [4] * 25, [5] * 1, [6] * 9]
    write_shards(tmp_path, docs, max_tokens_per_shard=10)
    metas = [read_sidecar(p) for p in list_shards(tmp_path, "train")]
    # [4,4] | [4] | [25] alone (longer than the limit) | [1,9]
    assert [m["num_documents"] for m in metas] == [2, 1, 1, 2]
    assert [m["num_tokens"] for m in metas] == [8, 4, 25, 10]
    shards = ShardSet(tmp_path, "train")
    assert [shards[i].tolist() for i in range(len(shards))] == docs


def test_empty_split_writes_one_empty_shard(tmp_path, write_shards):
    write_shards(tmp_path, [], split="val")
    shards = ShardSet(tmp_path, "val")
    assert len(shards) == 0 and shards.num_tokens == 0 and shards.document_lengths().size == 0


@pytest.mark.parametrize("vocab", [65536, 70000])
def test_vocab_too_large_refused(tmp_path, fake_meta, vocab):
    with pytest.raises(ValueError, match="65536"):
        ShardWriter(tmp_path, "train", tokenizer_meta={**fake_meta, "vocab_size": vocab}, source="x")


def test_bad_documents_refused(tmp_path, fake_meta):
    w = ShardWriter(tmp_path, "train", tokenizer_meta=fake_meta, source="x")
    for bad, match in (([1000], "out of range"), ([-1], "out of range"), ([], "empty"), ([[1, 2]], "1-D"),
                       ([1.5], "integer"), ([1, 1.5], "integer"), ([True, False], "integer"), (["1"], "integer"),
                       ([2**63], "out of range"), ([1, 2**64], "integer")):
        with pytest.raises(ValueError, match=match):
            w.add(bad)
    with pytest.raises(ValueError, match="split"):
        ShardWriter(tmp_path, "test", tokenizer_meta=fake_meta, source="x")


def test_inconsistent_or_corrupt_sets_refused(tmp_path, write_shards, fake_meta):
    write_shards(tmp_path, [[1, 2]] * 3, max_tokens_per_shard=2)
    sidecar = tmp_path / "train-00001.json"
    meta = json.loads(sidecar.read_text())
    sidecar.write_text(json.dumps({**meta, "tokenizer": {**fake_meta, "hash": "other"}}))
    with pytest.raises(ValueError, match="train-00001.json.*tokenizer"):
        ShardSet(tmp_path, "train")
    sidecar.write_text(json.dumps(meta))
    with open(tmp_path / "train-00002.bin", "ab") as f:
        f.write(b"\0\0")
    with pytest.raises(ValueError, match="train-00002.bin"):
        ShardSet(tmp_path, "train")
    (tmp_path / "train-00001.json").unlink()
    with pytest.raises(ValueError, match="incomplete"):
        list_shards(tmp_path, "train")
    with pytest.raises(FileNotFoundError, match="nowhere"):
        ShardSet(tmp_path / "nowhere", "train")


def test_every_form_of_ids_writes_the_same_bytes(tmp_path, fake_meta):
    # A list of ints takes add()'s fast conversion; arrays, tuples and numpy scalars take np.asarray.
    forms = [[5, 999, 0], np.array([5, 999, 0], np.uint32), (5, 999, 0), [np.int64(5), 999, np.int16(0)],
             [5, 999, False], np.array([5, 999, 0], np.int64)[::1]]
    for k, ids in enumerate(forms):
        with ShardWriter(tmp_path / str(k), "train", tokenizer_meta=fake_meta, source="x") as w:
            w.add(ids)
        assert (tmp_path / str(k) / "train-00000.bin").read_bytes() == np.array([5, 999, 0], "<u2").tobytes()
