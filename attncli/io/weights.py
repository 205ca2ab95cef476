"""Weight files: named parameter matrices in JSON (``{name: nested lists}``) or NPZ."""

from __future__ import annotations

import io
import json
import zipfile
from pathlib import Path

import numpy as np

from attncli.errors import InputError, OutputError
from attncli.io.atomic import write_atomic
from attncli.io.readers import read_bytes

WEIGHT_SUFFIXES = (".json", ".npz")


def load_weights(path: Path) -> dict[str, np.ndarray]:
    """The named arrays in a ``.json`` or ``.npz`` weight file (NPZ is read without pickle)."""
    suffix = path.suffix.lower()
    if suffix not in WEIGHT_SUFFIXES:
        raise InputError(
            f"{path}: weight files must be .json or .npz, got {suffix or 'no suffix'!r}"
        )
    data = read_bytes(path)
    if suffix == ".npz":
        try:
            with np.load(io.BytesIO(data), allow_pickle=False) as npz:
                return {key: npz[key] for key in npz.files}
        except ValueError as e:
            if "allow_pickle" in str(e):
                raise InputError(f"{path}: holds Python objects; refusing to unpickle") from None
            raise InputError(f"{path}: not a valid .npz file ({e})") from None
        except (zipfile.BadZipFile, EOFError, OSError) as e:
            raise InputError(f"{path}: not a valid .npz file ({e})") from None
    try:
        doc = json.loads(data.decode("utf-8-sig"))
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise InputError(f"{path}: not valid JSON ({e})") from None
    if not isinstance(doc, dict):
        raise InputError(f'{path}: expected a JSON object {{"W_query": [[...]], ...}}')
    named = {}
    for key, value in doc.items():
        try:
            named[key] = np.array(value, dtype=np.float64)
        except (TypeError, ValueError):
            raise InputError(f"{path}: {key!r} is not a rectangular array of numbers") from None
    return named


def save_weights(path: Path, named: dict[str, np.ndarray]) -> None:
    """Write ``named`` so that ``load_weights`` gives the same float32 values back."""
    suffix = path.suffix.lower()
    if suffix == ".npz":
        buf = io.BytesIO()
        np.savez(buf, **named)
        write_atomic(path, buf.getvalue())
    elif suffix == ".json":
        # Exact doubles of the float32 values: a float64 replay then sees the very same numbers.
        text = json.dumps(
            {k: np.asarray(v, np.float64).tolist() for k, v in named.items()}, indent=1
        )
        write_atomic(path, (text + "\n").encode())
    else:
        raise OutputError(
            f"{path}: weight files must be .json or .npz, got {suffix or 'no suffix'!r}"
        )
