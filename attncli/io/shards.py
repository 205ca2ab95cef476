"""The tensors of a Hugging Face folder, read lazily: ``model.safetensors``, or its shards
``model-0000k-of-0000n.safetensors`` listed in ``model.safetensors.index.json``.

:class:`SafetensorsFolder` is a mapping name -> float32 (or integer) array that reads a shard's
header when a tensor of it is first asked for and then only that tensor's bytes, so a run over
the first layers of a large model never reads the rest. The format is read directly (8-byte
header length, JSON header of dtype/shape/offsets, raw little-endian data): safetensors' numpy
loader cannot give bfloat16, and torch must not be imported for it.
"""

from __future__ import annotations

import json
import math
import struct
from collections.abc import Iterator, Mapping
from pathlib import Path

import numpy as np

from attncli.errors import InputError

INDEX = "model.safetensors.index.json"
SINGLE = "model.safetensors"
MAX_HEADER = 100 * 2**20  # safetensors' own limit on the JSON header
DTYPES = {
    "F64": "<f8", "F32": "<f4", "F16": "<f2", "BF16": "<u2",
    "I64": "<i8", "I32": "<i4", "I16": "<i2", "I8": "i1", "U8": "u1", "BOOL": "?",
}  # fmt: skip


def has_weights(folder: Path) -> bool:
    return (folder / INDEX).is_file() or (folder / SINGLE).is_file()


class SafetensorsFolder(Mapping[str, np.ndarray]):
    """name -> array over a folder's safetensors file(s), each tensor read when first asked for.

    ``files_read`` names the files whose headers (and some tensors) were read so far.
    """

    def __init__(self, folder: Path) -> None:
        self.folder = Path(folder)
        self._headers: dict[str, tuple[int, dict]] = {}
        self.files_read: set[str] = set()
        index = self.folder / INDEX
        if index.is_file():
            self._where = _weight_map(index)
        elif (self.folder / SINGLE).is_file():
            self._where = {name: SINGLE for name in self._header(SINGLE)[1]}
        else:
            raise InputError(f"{self.folder}: no {SINGLE} (nor {INDEX} with its shards)")

    def __getitem__(self, name: str) -> np.ndarray:
        file = self._where[name]  # KeyError: not in this model
        start, entries = self._header(file)
        path = self.folder / file
        entry = entries.get(name)
        if entry is None:
            raise InputError(f"{path}: no tensor {name!r}, though {INDEX} lists it there")
        dtype, shape, (begin, end) = _entry(entry, name, path)
        count = math.prod(shape)
        if end - begin != count * np.dtype(DTYPES[dtype]).itemsize:
            raise InputError(f"{path}: tensor {name!r}: its offsets do not fit its shape {shape}")
        with path.open("rb") as f:
            f.seek(start + begin)
            raw = np.fromfile(f, dtype=DTYPES[dtype], count=count)
        if raw.size != count:
            raise InputError(f"{path}: tensor {name!r} is cut short (the file ends early)")
        if dtype == "BF16":  # the top half of a float32
            raw = (raw.astype(np.uint32) << 16).view(np.float32)
        elif dtype == "F16":
            raw = raw.astype(np.float32)
        return raw.reshape(shape)

    def __contains__(self, name: object) -> bool:  # Mapping's default would read the tensor
        return name in self._where

    def __iter__(self) -> Iterator[str]:
        return iter(self._where)

    def __len__(self) -> int:
        return len(self._where)

    def _header(self, file: str) -> tuple[int, dict]:
        """(where the data starts, the header's tensor entries) of one file, read once."""
        if file not in self._headers:
            path = self.folder / file
            try:
                with path.open("rb") as f:
                    (size,) = struct.unpack("<Q", f.read(8))
                    if size > MAX_HEADER:
                        raise InputError(f"{path}: header of {size} bytes is not plausible")
                    header = json.loads(f.read(size))
            except (OSError, struct.error, ValueError, RecursionError) as e:
                raise InputError(f"{path}: not a valid .safetensors file ({e})") from None
            if not isinstance(header, dict):
                raise InputError(f"{path}: not a valid .safetensors file (header not an object)")
            header.pop("__metadata__", None)
            self._headers[file] = (8 + size, header)
            self.files_read.add(file)
        return self._headers[file]


def _weight_map(index: Path) -> dict[str, str]:
    try:
        doc = json.loads(index.read_text())
    except (OSError, ValueError, RecursionError) as e:
        raise InputError(f"{index}: not readable JSON ({e})") from None
    weight_map = doc.get("weight_map") if isinstance(doc, dict) else None
    if not isinstance(weight_map, dict):
        raise InputError(f"{index}: no weight_map object (tensor name -> shard file)")
    for name, file in weight_map.items():
        # a shard is a file beside the index, never a path elsewhere
        plain = isinstance(file, str) and Path(file).name == file
        if not plain or not file.endswith(".safetensors"):
            raise InputError(f"{index}: tensor {name!r} names {file!r}, not a shard file beside it")
        if not (index.parent / file).is_file():
            raise InputError(f"{index}: shard {file!r} (of tensor {name!r}) is missing")
    return weight_map


def _entry(entry: object, name: str, path: Path) -> tuple[str, tuple[int, ...], tuple[int, int]]:
    ok = isinstance(entry, dict)
    dtype = entry.get("dtype") if ok else None
    shape = entry.get("shape") if ok else None
    offsets = entry.get("data_offsets") if ok else None
    if (
        dtype not in DTYPES
        or not isinstance(shape, list)
        or not all(isinstance(s, int) and s >= 0 for s in shape)
        or not isinstance(offsets, list)
        or len(offsets) != 2
        or not all(isinstance(o, int) and o >= 0 for o in offsets)
        or offsets[1] < offsets[0]
    ):
        raise InputError(f"{path}: tensor {name!r} has an unreadable entry (dtype {dtype!r})")
    return dtype, tuple(shape), (offsets[0], offsets[1])
