"""The safetensors file format, read and written with numpy alone (no torch, no safetensors package).

A file is an 8-byte little-endian header length N, N bytes of JSON header, then the raw tensor bytes::

    {"__metadata__": {"format": "pt"},
     "transformer.wte.weight": {"dtype": "F32", "shape": [50257, 768], "data_offsets": [begin, end]}, ...}

Offsets count from the first byte after the header; tensors are little-endian, C order. Reading maps
the file into memory, so a tensor's bytes are only read when it is used.
"""

from __future__ import annotations

import json
import struct
from collections.abc import Mapping
from pathlib import Path

import ml_dtypes
import numpy as np

DTYPES: dict[str, np.dtype] = {
    "F64": np.dtype("<f8"), "F32": np.dtype("<f4"), "F16": np.dtype("<f2"), "BF16": np.dtype(ml_dtypes.bfloat16),
    "I64": np.dtype("<i8"), "I32": np.dtype("<i4"), "I16": np.dtype("<i2"), "I8": np.dtype("i1"),
    "U64": np.dtype("<u8"), "U32": np.dtype("<u4"), "U16": np.dtype("<u2"), "U8": np.dtype("u1"),
    "BOOL": np.dtype("?"),
}
_MAX_HEADER = 100_000_000  # the format's own limit on the JSON header


def read_safetensors(path: str | Path) -> dict[str, np.ndarray]:
    """Tensor name -> read-only numpy array (memory-mapped) for every tensor in a ``.safetensors`` file.

    Raises ValueError naming the file and tensor when the header is malformed or a dtype is unknown.
    """
    path = Path(path)
    size = path.stat().st_size
    with open(path, "rb") as f:
        head = f.read(8)
        if len(head) < 8:
            raise ValueError(f"{path}: not a safetensors file (shorter than its 8-byte header length)")
        n = struct.unpack("<Q", head)[0]
        if n > min(_MAX_HEADER, size - 8):
            raise ValueError(f"{path}: not a safetensors file (header length {n} exceeds the file)")
        try:
            header = json.loads(f.read(n))
        except (json.JSONDecodeError, UnicodeDecodeError) as err:
            raise ValueError(f"{path}: safetensors header is not JSON ({err})") from None
    if not isinstance(header, dict):
        raise ValueError(f"{path}: safetensors header is not a JSON object")
    data = np.memmap(path, dtype=np.uint8, mode="r", offset=8 + n) if size > 8 + n else np.zeros(0, np.uint8)
    out = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        try:
            dtype = DTYPES[info["dtype"]]
            shape = tuple(int(s) for s in info["shape"])
            begin, end = (int(o) for o in info["data_offsets"])
        except (KeyError, TypeError, ValueError) as err:
            raise ValueError(f"{path}: tensor {name!r} has a bad header entry {info!r} ({err!r}); "
                             f"known dtypes: {sorted(DTYPES)}") from None
        expected = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
        if end - begin != expected or begin < 0 or end > data.size:
            raise ValueError(f"{path}: tensor {name!r} ({info['dtype']} {list(shape)}) has data_offsets "
                             f"[{begin}, {end}] that do not fit its shape or the file")
        out[name] = data[begin:end].view(dtype).reshape(shape)
    return out


def write_safetensors(path: str | Path, tensors: Mapping[str, np.ndarray], metadata: Mapping[str, str] | None = None,
                      ) -> Path:
    """Writes ``tensors`` (name -> numpy array) to ``path`` in sorted name order; returns the path.

    ``metadata`` (str -> str) goes to ``__metadata__``; transformers expects ``{"format": "pt"}``.
    """
    path = Path(path)
    header: dict = {"__metadata__": dict(metadata or {})}
    arrays = []
    offset = 0
    for name in sorted(tensors):
        arr = np.asarray(tensors[name], order="C")  # not ascontiguousarray: that makes scalars 1-d
        if arr.dtype.byteorder == ">":
            arr = arr.astype(arr.dtype.newbyteorder("<"))
        dtype_name = next((n for n, dt in DTYPES.items() if arr.dtype == dt), None)
        if dtype_name is None:
            raise ValueError(f"{path}: tensor {name!r} has dtype {arr.dtype}, which safetensors cannot store")
        header[name] = {"dtype": dtype_name, "shape": list(arr.shape), "data_offsets": [offset, offset + arr.nbytes]}
        arrays.append(arr)
        offset += arr.nbytes
    blob = json.dumps(header, separators=(",", ":")).encode()
    blob += b" " * (-len(blob) % 8)  # pad so the tensor data starts 8-byte aligned, as the reference writer does
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "wb") as f:
        f.write(struct.pack("<Q", len(blob)))
        f.write(blob)
        for arr in arrays:
            f.write(arr.reshape(-1).view(np.uint8).data)
    tmp.replace(path)
    return path
