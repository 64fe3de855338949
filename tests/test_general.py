"""General corpora: a folder of text files, and a TFDS dataset prepared locally and read without TensorFlow."""

import subprocess
import sys

import numpy as np
import pytest

from flaxgpt.ingest.general import iter_tfds

TFDS_NAME = "flaxgpt_tiny_text"  # tfds derives it from the builder class name below
# Stored order is tfds's own (shuffled by key hash), so tests compare ids by index and texts as sets.
EXAMPLES = {
    "a": {"text": "Première ligne.\r\nSecond line.", "title": "fr", "n": 0},
    "b": {"text": "plain english text", "title": "en", "n": 1},
    "c": {"text": "   \n", "title": "blank", "n": 2},
    "d": {"text": "def f():\n    return 1\n", "title": "code", "n": 3},
    "e": {"text": b"bad \xff byte", "title": "bytes", "n": 4},
}
EXPECTED_TEXTS = {"Première ligne.\nSecond line.", "plain english text", "def f():\n    return 1\n",
                  "bad \ufffd byte"}


# ---------------------------------------------------------------- TFDS without TensorFlow


@pytest.fixture(scope="module")
def tfds_dir(tmp_path_factory):
    """A TFDS data dir holding TFDS_NAME (train: EXAMPLES, test: 2 examples), prepared as ArrayRecord.

    The builder is not registered with tfds, so reading it back goes through the files alone, as it
    does for a user whose dataset code is not importable at training time.
    """
    import tensorflow_datasets as tfds

    class FlaxgptTinyText(tfds.core.GeneratorBasedBuilder, skip_registration=True):
        VERSION = tfds.core.Version("1.0.0")

        def _info(self):
            features = tfds.features.FeaturesDict(
                {"text": tfds.features.Text(), "title": tfds.features.Text(), "n": tfds.features.Scalar(np.int32)})
            return tfds.core.DatasetInfo(builder=self, features=features)

        def _split_generators(self, dl_manager):
            del dl_manager  # nothing to download: examples are generated in place
            return {"train": self._generate_examples(EXAMPLES),
                    "test": self._generate_examples({"x": {"text": "held out", "title": "t", "n": 9},
                                                     "y": {"text": "also held", "title": "t", "n": 8}})}

        def _generate_examples(self, examples):
            yield from examples.items()

    data_dir = tmp_path_factory.mktemp("tfds")
    builder = FlaxgptTinyText(data_dir=str(data_dir), file_format="array_record")
    assert builder.name == TFDS_NAME
    builder.download_and_prepare()
    assert list((data_dir / TFDS_NAME / "1.0.0").glob("*.array_record-*")), "not prepared as ArrayRecord"
    return data_dir


def test_tfds_reads_prepared_dataset_without_tensorflow(tfds_dir):
    docs = list(iter_tfds(TFDS_NAME, split="train", data_dir=str(tfds_dir)))

    assert {text for _, text in docs} == EXPECTED_TEXTS  # decoded, CRLF normalised, blank left out
    ids = [doc_id for doc_id, _ in docs]
    indices = [int(doc_id.rsplit("#", 1)[1]) for doc_id in ids]
    assert all(doc_id.startswith(f"{TFDS_NAME}/train#") for doc_id in ids)
    assert indices == sorted(indices) and len(set(indices)) == 4 and max(indices) <= 4
    assert list(iter_tfds(TFDS_NAME, data_dir=str(tfds_dir))) == docs  # deterministic; train is the default
    assert "tensorflow" not in sys.modules


def test_tfds_split_slices_version_and_other_keys(tfds_dir):
    assert sorted(t for _, t in iter_tfds(TFDS_NAME, split="test", data_dir=str(tfds_dir))) == ["also held",
                                                                                                 "held out"]
    assert len(list(iter_tfds(f"{TFDS_NAME}:1.0.0", split="train[:2]", data_dir=str(tfds_dir)))) <= 2
    titles = {t for _, t in iter_tfds(TFDS_NAME, data_dir=str(tfds_dir), text_key="title")}
    assert titles == {"fr", "en", "blank", "code", "bytes"}


def test_tfds_in_a_fresh_interpreter_never_imports_tensorflow(tfds_dir):
    # In-process checks can be fooled by what other tests imported; a fresh interpreter cannot.
    code = ("import sys\nfrom flaxgpt.ingest.general import iter_tfds\n"
            "docs = list(iter_tfds(sys.argv[1], data_dir=sys.argv[2]))\n"
            "print(len(docs), 'tensorflow' in sys.modules, 'tensorflow_datasets' in sys.modules)\n")
    out = subprocess.run([sys.executable, "-c", code, TFDS_NAME, str(tfds_dir)], capture_output=True, text=True,
                         timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["4", "False", "True"]


def test_tfds_not_prepared_says_where_it_looked_and_prepares_nothing(tfds_dir, tmp_path):
    import tensorflow_datasets as tfds

    generated = []

    class FlaxgptCouldPrepare(tfds.core.GeneratorBasedBuilder):  # registered: tfds could build it by name
        VERSION = tfds.core.Version("1.0.0")

        def _info(self):
            features = tfds.features.FeaturesDict({"text": tfds.features.Text()})
            return tfds.core.DatasetInfo(builder=self, features=features)

        def _split_generators(self, dl_manager):
            generated.append(True)
            return {"train": self._generate_examples()}

        def _generate_examples(self):
            yield "k", {"text": "would have been downloaded"}

    empty = tmp_path / "empty_tfds"
    empty.mkdir()
    with pytest.raises(FileNotFoundError) as err:
        list(iter_tfds("flaxgpt_could_prepare", data_dir=str(empty)))
    assert str(empty) in str(err.value) and "nothing is prepared there" in str(err.value)
    assert generated == [] and list(empty.rglob("*.array_record*")) == []  # no download, no preparation

    with pytest.raises(FileNotFoundError) as err:
        list(iter_tfds("no_such_corpus", data_dir=str(tfds_dir)))
    assert str(tfds_dir) in str(err.value) and f"{TFDS_NAME}/1.0.0" in str(err.value)

    with pytest.raises(FileNotFoundError, match="not prepared"):
        list(iter_tfds(f"{TFDS_NAME}:2.0.0", data_dir=str(tfds_dir)))


def test_tfds_default_data_dir_comes_from_the_environment(tfds_dir, monkeypatch):
    monkeypatch.setenv("TFDS_DATA_DIR", str(tfds_dir / "elsewhere"))
    with pytest.raises(FileNotFoundError, match="elsewhere"):
        list(iter_tfds(TFDS_NAME))


def test_tfds_bad_split_key_or_namespace_are_clear_errors(tfds_dir):
    with pytest.raises(ValueError, match=rf"{TFDS_NAME}.*'validation'.*train"):
        list(iter_tfds(TFDS_NAME, split="validation", data_dir=str(tfds_dir)))
    with pytest.raises(ValueError, match=r"no feature 'body'.*\['n', 'text', 'title'\]"):
        list(iter_tfds(TFDS_NAME, data_dir=str(tfds_dir), text_key="body"))
    with pytest.raises(ValueError, match="expected a text feature, got int"):
        list(iter_tfds(TFDS_NAME, data_dir=str(tfds_dir), text_key="n"))
    with pytest.raises(ValueError, match="network"):
        list(iter_tfds("huggingface:wikitext", data_dir=str(tfds_dir)))
