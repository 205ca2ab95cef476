"""Weight files: named parameter arrays in JSON, NPZ, torch ``.pt``/``.pth`` or ``.safetensors``.

Three layouts are recognised and renamed to the book's names (``W_query.weight`` ...):

- the book's classes: ``W_query``/``W_key``/``W_value`` (bare matrices, d_in × d_out) or their
  ``.weight``/``.bias`` (nn.Linear), and ``out_proj.weight``/``.bias``;
- ``torch.nn.MultiheadAttention``: ``in_proj_weight``/``in_proj_bias`` (Q, K, V stacked) or
  ``q_proj_weight``/``k_proj_weight``/``v_proj_weight``, and ``out_proj.*``;
- Hugging Face style ``q_proj``/``k_proj``/``v_proj`` Linear layers and ``out_proj``.

A state dict of a bigger model holds one of these under a prefix (``trf_blocks.0.att.``); a single
candidate prefix is used on its own, several need ``--weights-prefix``. ``.pt`` files are loaded
with ``torch.load(weights_only=True)``, which refuses pickled code; NPZ is read without pickle.
"""

from __future__ import annotations

import io
import json
import pickle
import re
import struct
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from attncli.errors import ConfigError, InputError, OutputError
from attncli.io.atomic import write_atomic
from attncli.io.limits import human, max_input_bytes
from attncli.io.readers import check_npy_header, read_bytes

WEIGHT_SUFFIXES = (".json", ".npz", ".pt", ".pth", ".safetensors")
ROLES = {"query": "q", "key": "k", "value": "v"}
# Keys that end a recognised attention module, used to find the prefix it lives under.
ANCHORS = ("W_query", "W_query.weight", "in_proj_weight", "q_proj_weight", "q_proj.weight")
IGNORED = frozenset({"mask"})  # the book's causal-mask buffer rides along in its state dicts


@dataclass(frozen=True)
class WeightFile:
    """Arrays under the book's names, plus what the file says about how to use them."""

    named: dict[str, np.ndarray]
    layout: str
    prefix: str = ""
    heads: int | None = None
    metadata: dict[str, str] = field(default_factory=dict)

    @property
    def mode(self) -> str:
        """The mode these parameters imply: the one attncli recorded when it wrote the file;
        mla with a latent down-projection W_DKV; with an output projection gqa when keys are
        narrower than queries, else multi-head; trainable for bare matrices, linear for
        nn.Linear layers."""
        from attncli.core.config import MODES

        if self.metadata.get("mode") in MODES:
            return self.metadata["mode"]
        named = self.named
        if "W_DKV" in named or "W_DKV.weight" in named:
            return "mla"
        if "out_proj.weight" in named:
            q, k = named.get("W_query.weight"), named.get("W_key.weight")
            narrow = q is not None and k is not None and k.shape[0] < q.shape[0]
            return "gqa" if narrow else "multi-head"
        return "trainable" if "W_query" in named else "linear"


def load_weights(path: Path, prefix: str | None = None) -> WeightFile:
    """Read ``path`` and rename its attention parameters to the book's names."""
    raw, metadata = _read_arrays(path)
    chosen = _choose_prefix(raw, prefix, path)
    subset = {k[len(chosen) :]: v for k, v in raw.items() if k.startswith(chosen)}
    named, layout = _to_book_names(subset, path)
    heads = metadata.get("heads")
    if heads is not None and not (isinstance(heads, str) and heads.isascii() and heads.isdigit()):
        raise InputError(f"{path}: metadata heads = {heads!r} is not a whole number")
    return WeightFile(named, layout, chosen, int(heads) if heads else None, metadata)


def save_weights(
    path: Path, named: dict[str, np.ndarray], metadata: dict[str, str] | None = None
) -> None:
    """Write ``named`` so that :func:`load_weights` gives the very same values back.

    JSON stores exact doubles of the float32 values (a float64 replay sees the same numbers);
    safetensors also keeps ``metadata`` (mode, heads).
    """
    suffix = path.suffix.lower()
    arrays = {k: np.ascontiguousarray(v) for k, v in named.items()}
    if suffix == ".npz":
        buf = io.BytesIO()
        np.savez(buf, **arrays)
        data = buf.getvalue()
    elif suffix == ".json":
        doc = {k: np.asarray(v, np.float64).tolist() for k, v in arrays.items()}
        data = (json.dumps(doc, indent=1) + "\n").encode()
    elif suffix == ".safetensors":
        from safetensors.numpy import save

        data = save(arrays, metadata=metadata)
    elif suffix in (".pt", ".pth"):
        torch = _import_torch(path, "writing")
        buf = io.BytesIO()
        torch.save({k: torch.from_numpy(v.copy()) for k, v in arrays.items()}, buf)
        data = buf.getvalue()
    else:
        raise OutputError(f"{path}: weight files must be {', '.join(WEIGHT_SUFFIXES)}")
    write_atomic(path, data)


# ---- reading -----------------------------------------------------------------------------------


def load_weights_file(path: Path) -> dict[str, np.ndarray]:
    """Every floating-point array of a weight file under its own name (no layout renaming)."""
    return _read_arrays(path)[0]


def _read_arrays(path: Path) -> tuple[dict[str, np.ndarray], dict[str, str]]:
    suffix = path.suffix.lower()
    if suffix not in WEIGHT_SUFFIXES:
        got = suffix or "no suffix"
        raise InputError(f"{path}: weight files must be {', '.join(WEIGHT_SUFFIXES)}, got {got!r}")
    data = read_bytes(path)
    if suffix == ".npz":
        return _read_npz(data, path), {}
    if suffix == ".json":
        return _read_json(data, path), {}
    if suffix == ".safetensors":
        return _read_safetensors(data, path)
    return _read_torch(data, path), {}


def _check_archive(data: bytes, path: Path, what: str) -> zipfile.ZipFile:
    """The zip archive in ``data``, refused before anything is decompressed when its entries
    declare more data than the input limit (a small file can hold a decompression bomb)."""
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
        entries = archive.infolist()
    except (zipfile.BadZipFile, OSError, ValueError) as e:
        raise InputError(f"{path}: not a valid {what} ({e})") from None
    declared = sum(info.file_size for info in entries)
    limit = max_input_bytes()
    if declared > limit:
        raise InputError(
            f"{path}: its archive entries declare {human(declared)} of data, more than the "
            f"input limit of {human(limit)} (raise it with attn --max-input SIZE)"
        )
    return archive


def _read_npz(data: bytes, path: Path) -> dict[str, np.ndarray]:
    if not data.startswith(b"PK\x03\x04"):
        raise InputError(f"{path}: not a valid .npz file (not a zip archive)")
    archive = _check_archive(data, path, ".npz file")
    for info in archive.infolist():
        try:
            with archive.open(info) as member:
                head = member.read(1 << 16)
        except (zipfile.BadZipFile, OSError, EOFError, RuntimeError) as e:
            raise InputError(f"{path}: not a valid .npz file ({e})") from None
        if head.startswith(b"\x93NUMPY"):
            check_npy_header(head, f"{path}: {info.filename}", info.file_size)
    try:
        with np.load(io.BytesIO(data), allow_pickle=False) as npz:
            return {key: npz[key] for key in npz.files}
    except ValueError as e:
        if "allow_pickle" in str(e):
            raise InputError(f"{path}: holds Python objects; refusing to unpickle") from None
        raise InputError(f"{path}: not a valid .npz file ({e})") from None
    except (zipfile.BadZipFile, EOFError, OSError) as e:
        raise InputError(f"{path}: not a valid .npz file ({e})") from None


def _read_json(data: bytes, path: Path) -> dict[str, np.ndarray]:
    try:
        doc = json.loads(data.decode("utf-8-sig"))
    except RecursionError:
        raise InputError(f"{path}: JSON nested too deeply; expected name -> matrix") from None
    except ValueError as e:  # not UTF-8, not JSON, or an integer too long to convert
        raise InputError(f"{path}: not valid JSON ({e})") from None
    if not isinstance(doc, dict):
        raise InputError(f'{path}: expected a JSON object {{"W_query": [[...]], ...}}')
    named = {}
    for key, value in doc.items():
        try:
            named[key] = np.array(value, dtype=np.float64)
        except (TypeError, ValueError, OverflowError, RecursionError):
            raise InputError(f"{path}: {key!r} is not a rectangular array of numbers") from None
    return named


def _read_safetensors(data: bytes, path: Path) -> tuple[dict[str, np.ndarray], dict[str, str]]:
    try:
        (size,) = struct.unpack("<Q", data[:8])
        header = json.loads(data[8 : 8 + size])
        metadata = header.get("__metadata__") or {}
        if any(v.get("dtype") == "BF16" for k, v in header.items() if k != "__metadata__"):
            _import_torch(path, "reading bfloat16 tensors from")
            from safetensors.torch import load

            return {k: t.float().numpy() for k, t in load(data).items()}, metadata
        from safetensors.numpy import load

        return load(data), metadata
    except InputError:
        raise
    except Exception as e:  # the safetensors parser raises its own error types
        raise InputError(
            f"{path}: not a valid .safetensors file ({type(e).__name__}: {e})"
        ) from None


def _read_torch(data: bytes, path: Path) -> dict[str, np.ndarray]:
    # torch.save writes a zip archive; the legacy format is a bare pickle (protocol byte 0x80).
    if not (data.startswith(b"PK\x03\x04") or data.startswith(b"\x80")):
        raise InputError(f"{path}: not a valid torch file (neither a zip archive nor a pickle)")
    if data.startswith(b"PK\x03\x04"):
        _check_archive(data, path, "torch file")
    torch = _import_torch(path, "reading")
    try:
        obj = torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)
    except RecursionError:
        raise InputError(f"{path}: nested too deeply; save a flat state_dict()") from None
    except pickle.UnpicklingError as e:
        found = re.search(r"Unsupported global: GLOBAL (\S+)", str(e))
        what = f"it pickles {found.group(1)}" if found else "it holds more than tensors"
        raise InputError(
            f"{path}: refused by weights-only loading ({what}); save a state_dict() instead"
        ) from None
    except (RuntimeError, EOFError, zipfile.BadZipFile, OSError) as e:
        raise InputError(f"{path}: not a valid torch file ({type(e).__name__}: {e})") from None
    if not isinstance(obj, dict):
        raise InputError(
            f"{path}: expected a state dict (name -> tensor), got {type(obj).__name__}"
        )
    return _flatten(obj, torch, path)


MAX_NESTING = 32  # dicts within dicts in a checkpoint (real ones nest 2 or 3 deep)


def _flatten(
    obj: dict, torch, path: Path, prefix: str = "", depth: int = 0
) -> dict[str, np.ndarray]:
    """Tensors of a (possibly nested) checkpoint dict under dotted names; other values dropped."""
    if depth > MAX_NESTING:
        raise InputError(f"{path}: dicts nested more than {MAX_NESTING} deep; save a state_dict()")
    out: dict[str, np.ndarray] = {}
    for key, value in obj.items():
        if isinstance(value, dict):
            out.update(_flatten(value, torch, path, f"{prefix}{key}.", depth + 1))
        elif isinstance(value, torch.Tensor) and value.is_floating_point():
            if value.layout != torch.strided:
                raise InputError(
                    f"{path}: {prefix}{key} is a {value.layout} tensor; save dense tensors "
                    "(tensor.to_dense())"
                )
            out[f"{prefix}{key}"] = value.detach().float().numpy()
    return out


def _import_torch(path: Path, doing: str):
    try:
        import torch
    except ImportError:
        raise InputError(
            f'{path}: {doing} this file needs torch: pip install "attncli[torch]"'
        ) from None
    return torch


# ---- layouts -----------------------------------------------------------------------------------


def _choose_prefix(raw: dict[str, np.ndarray], prefix: str | None, path: Path) -> str:
    candidates = sorted(
        {
            key[: -len(a)]
            for key in raw
            for a in ANCHORS
            if key.endswith(a) and (key == a or key[: -len(a)].endswith("."))
        }
    )
    if prefix is not None:
        if not any(key.startswith(prefix) for key in raw):
            found = ", ".join(repr(c) for c in candidates) or "none"
            raise InputError(
                f"{path}: no keys start with --weights-prefix {prefix!r} (candidates: {found})"
            )
        return prefix
    if len(candidates) == 1:
        return candidates[0]
    if not candidates:
        keys = ", ".join(sorted(raw)[:8]) + (", …" if len(raw) > 8 else "")
        raise InputError(f"{path}: no attention weights found (keys: {keys or 'none'})")
    shown = ", ".join(repr(c) for c in candidates[:10]) + (", …" if len(candidates) > 10 else "")
    raise ConfigError(
        f"{path}: several attention modules; pick one with --weights-prefix ({shown})"
    )


def _packed(array: np.ndarray, key: str, ndim: int, path: Path) -> list[np.ndarray]:
    """Query, key and value stacked along the first axis, split in three (checked first)."""
    if array.ndim != ndim or array.shape[0] % 3:
        what = "(3·d_out, d_in)" if ndim == 2 else "(3·d_out,)"
        raise InputError(
            f"{path}: {key} has shape {array.shape}; MultiheadAttention stacks query, key and "
            f"value as {what}"
        )
    return np.split(array, 3)


def _to_book_names(subset: dict[str, np.ndarray], path: Path) -> tuple[dict[str, np.ndarray], str]:
    """Rename one module's keys to ``W_query.weight`` etc.; the layout's name comes with them."""
    keys = set(subset) - IGNORED
    if {"bias_k", "bias_v"} & keys:
        raise InputError(f"{path}: MultiheadAttention with add_bias_kv=True is not supported")
    named: dict[str, np.ndarray] = {}
    if "in_proj_weight" in keys or "q_proj_weight" in keys:
        layout = "torch.nn.MultiheadAttention"
        if "in_proj_weight" in keys:
            packed = _packed(subset.pop("in_proj_weight"), "in_proj_weight", 2, path)
            for role, chunk in zip(ROLES, packed, strict=True):
                named[f"W_{role}.weight"] = chunk
        for role, letter in ROLES.items():
            if f"{letter}_proj_weight" in subset:
                named[f"W_{role}.weight"] = subset.pop(f"{letter}_proj_weight")
        if "in_proj_bias" in subset:
            packed = _packed(subset.pop("in_proj_bias"), "in_proj_bias", 1, path)
            for role, chunk in zip(ROLES, packed, strict=True):
                named[f"W_{role}.bias"] = chunk
    elif "q_proj.weight" in keys:
        layout = "q_proj/k_proj/v_proj Linear layers"
        for role, letter in ROLES.items():
            for part in ("weight", "bias"):
                if f"{letter}_proj.{part}" in subset:
                    named[f"W_{role}.{part}"] = subset.pop(f"{letter}_proj.{part}")
    else:
        layout = "book (W_query, W_key, W_value)"
    for key in set(subset) - IGNORED:
        named.setdefault(key, subset[key])
    return named, layout
