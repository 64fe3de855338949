"""A general corpus from TensorFlow Datasets, to mix with the personal one by weight (the plan's 70/30).

(A general corpus that is a folder of text files is an ingest source of kind ``text``, read by the
same extractors as the personal files.)

``iter_tfds`` yields ``(doc_id, text)`` pairs in a deterministic order from a TensorFlow Datasets
dataset already prepared in the user's TFDS data directory, through ``tfds.data_source``
(random-access ArrayRecord or Parquet files), without importing TensorFlow and without
downloading anything. Building such a dataset without TensorFlow also works:
``builder.download_and_prepare(file_format="array_record")``. ``tensorflow-datasets`` is an
optional dependency (``flaxgpt[tfds]``), imported only here.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

_READ_BATCH = 512  # records fetched per ArrayRecord batch read
_MAX_LISTED = 20  # prepared datasets named in a "not prepared" error
# After a ':' tfds takes a version; anything else makes it a community "namespace:name", fetched over the network.
_VERSION = re.compile(r"\d+\.\d+\.\d+")


def _import_tfds() -> Any:
    try:
        import tensorflow_datasets as tfds  # optional: only tfds sources need it (pip install 'flaxgpt[tfds]')
    except ImportError as err:
        raise ImportError("reading a TFDS dataset needs tensorflow-datasets and array-record (not tensorflow): "
                          "pip install 'flaxgpt[tfds]'") from err
    return tfds


def _prepared_here(where: Path) -> list[str]:
    """The datasets prepared under a TFDS data dir, as ``name[/config]/version``."""
    found = {p.parent.relative_to(where).as_posix()
             for pattern in ("*/*/dataset_info.json", "*/*/*/dataset_info.json") for p in where.glob(pattern)}
    return sorted(found)


def _explain(tfds: Any, name: str, split: str, where: Path, err: Exception) -> Exception:
    """A clear error for a failed ``tfds.data_source``: not prepared, wrong split, or not random-access."""
    try:
        prepared = tfds.builder(name, data_dir=str(where), try_gcs=False).is_prepared()
    except Exception:  # unknown name, bad config or version: all mean "not found here"
        prepared = False
    if not prepared:
        listed = _prepared_here(where) if where.is_dir() else []
        here = (f"prepared there: {', '.join(listed[:_MAX_LISTED])}" + (" ..." if len(listed) > _MAX_LISTED else "")
                if listed else "nothing is prepared there")
        return FileNotFoundError(
            f"TFDS dataset {name!r} is not prepared in the TFDS data dir {where} ({here}). Prepare it there first "
            f"with file_format='array_record' (e.g. `tfds build {name.split(':')[0]} --data_dir {where} "
            "--file_format array_record`), or pass data_dir; nothing is downloaded at training time.")
    if isinstance(err, NotImplementedError):
        return ValueError(f"TFDS dataset {name!r} in {where} is not stored in a random-access format: re-prepare it "
                          f"with file_format='array_record' (or 'parquet'). tfds said: {err}")
    return ValueError(f"TFDS dataset {name!r}, split {split!r} in {where}: {err}")


def _as_text(value: Any, where: str) -> str:
    """A feature value as text: bytes are UTF-8 (bad bytes become U+FFFD rather than losing the record)."""
    if isinstance(value, bytes | np.bytes_):
        value = bytes(value).decode("utf-8", errors="replace")
    elif isinstance(value, np.ndarray) and value.ndim == 0:
        return _as_text(value.item(), where)
    if not isinstance(value, str):
        raise ValueError(f"{where}: expected a text feature, got {type(value).__name__}"
                         + (f" of shape {value.shape}" if isinstance(value, np.ndarray) else ""))
    return value.replace("\r\n", "\n").replace("\r", "\n")


def iter_tfds(name: str, split: str = "train", data_dir: str | None = None,
              text_key: str = "text") -> Iterator[tuple[str, str]]:
    """Yields ``(doc_id, text)`` for every example of a TFDS dataset already prepared in ``data_dir``.

    ``name`` is a TFDS name (``wikipedia/20230601.en``, ``my_corpus:1.0.0``); ``split`` any TFDS
    split spec (``train``, ``train[:10%]``); ``data_dir`` defaults to ``$TFDS_DATA_DIR`` or
    ``~/tensorflow_datasets``. Examples come in the stored (index) order, read in batches
    through ``tfds.data_source`` with ``download=False``: TensorFlow is never imported and nothing
    is fetched. The id is ``name/split#index``; ``text_key``'s value is decoded from UTF-8 and
    examples with blank text are left out.

    Raises FileNotFoundError if the dataset is not prepared there (saying where it looked and
    what is prepared there), ValueError for an unknown split, a non-random-access file format
    (tfrecord), a community ``namespace:`` name, or a ``text_key`` the dataset lacks or that
    is not text, and ImportError if tensorflow-datasets is not installed.
    """
    head, _, tail = name.partition(":")
    if tail and not _VERSION.fullmatch(tail):
        raise ValueError(f"TFDS dataset {name!r}: community datasets ({head}:...) would be fetched over the network; "
                         "prepare the data in your TFDS data dir and give its plain name")
    tfds = _import_tfds()
    # Resolved here rather than left to tfds, whose default froze $TFDS_DATA_DIR when it was imported.
    where = Path(data_dir if data_dir is not None else tfds.core.constants.get_default_data_dir()).expanduser()
    try:
        source = tfds.data_source(name, split=split, data_dir=str(where), download=False, try_gcs=False)
    except Exception as err:  # tfds raises many types; _explain turns each into a clear one
        raise _explain(tfds, name, split, where, err) from err
    features = source.dataset_info.features
    keys = sorted(features.keys()) if features is not None else []
    if text_key not in keys:
        raise ValueError(f"TFDS dataset {name!r}, split {split!r} in {where} has no feature {text_key!r}; "
                         f"its features are {keys}: pass text_key=one of them")
    for start in range(0, len(source), _READ_BATCH):
        indices = list(range(start, min(start + _READ_BATCH, len(source))))
        for i, example in zip(indices, source.__getitems__(indices), strict=True):
            text = _as_text(example[text_key], f"TFDS dataset {name!r}, split {split!r}, example {i}, {text_key!r}")
            if text.strip():
                yield f"{name}/{split}#{i}", text
