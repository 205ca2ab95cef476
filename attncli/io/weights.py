"""Weight files: named parameter arrays in JSON, NPZ, torch ``.pt``/``.pth``/``.bin``,
``.safetensors``, or a Hugging Face folder (sharded ``model-0000k-of-0000n.safetensors`` with
``model.safetensors.index.json``). The layouts people have are renamed to the book's names
(``W_query.weight`` ...):

- the book's classes: ``W_query``/``W_key``/``W_value`` (bare matrices, d_in × d_out) or their
  ``.weight``/``.bias`` (nn.Linear), and ``out_proj.weight``/``.bias``;
- ``torch.nn.MultiheadAttention``: ``in_proj_weight``/``in_proj_bias`` (Q, K, V stacked) or
  ``q_proj_weight``/``k_proj_weight``/``v_proj_weight``, and ``out_proj.*``;
- fused query/key/value: nanoGPT's ``c_attn`` Linear (3d, d) with ``c_proj``, transformers
  GPT-2's ``c_attn``/``c_proj`` Conv1D (d, 3d), the book's bonus ``qkv``/``proj``;
- Hugging Face ``q_proj``/``k_proj``/``v_proj`` with ``out_proj`` or ``o_proj`` (Llama, Mistral,
  Qwen: fewer key/value heads than query heads show in the shapes);
- BERT's ``self.query``/``self.key``/``self.value`` with ``output.dense``.

A state dict of a bigger model holds one of these under a prefix (``trf_blocks.0.att.``); a single
candidate prefix is used on its own (and said so), several need ``--weights-prefix``. Every tensor
of the file left unused is reported. ``.pt``/``.bin`` files are loaded with
``torch.load(weights_only=True)``, which refuses pickled code; NPZ is read without pickle.
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

WEIGHT_SUFFIXES = (".json", ".npz", ".pt", ".pth", ".bin", ".safetensors")
ROLES = {"query": "q", "key": "k", "value": "v"}
# Keys that end a recognised attention module, used to find the prefix it lives under.
ANCHORS = ("W_query", "W_query.weight", "in_proj_weight", "q_proj_weight", "q_proj.weight",
           "c_attn.weight", "qkv.weight", "self.query.weight")  # fmt: skip
IGNORED = frozenset({"mask", "bias"})  # causal-mask buffers (the book's; GPT-2's is "bias")
# buffers and norms that ride along with an attention module and do not change its numbers
BUFFERS = ("mask", "bias", "masked_bias", "rotary_emb.inv_freq")


@dataclass(frozen=True)
class WeightFile:
    """Arrays under the book's names, plus what the file says about how to use them."""

    named: dict[str, np.ndarray]
    layout: str
    prefix: str = ""
    heads: int | None = None
    metadata: dict[str, str] = field(default_factory=dict)
    prefix_chosen: bool = False  # True when the prefix was picked automatically
    unused: tuple[str, ...] = ()  # tensors of the file the run does not use, by their own names
    hints: dict[str, object] = field(default_factory=dict)  # from config.json / model_args
    notes: tuple[str, ...] = ()  # what was assumed, for "attn: note:" and JSON
    origin: dict[str, str] = field(default_factory=dict)  # book's name -> the file's

    def in_file_names(self, message: str) -> str:
        """``message`` about book-named keys, told in the file's own names."""
        renamed = {book: key for book, key in self.origin.items() if book != key}
        if renamed:  # the bare-matrix alternative is the book's, not the file's
            message = re.sub(r" \(or '(W_\w+|out_proj)'\)", "", message)
        for book, key in sorted(renamed.items(), key=lambda kv: -len(kv[0])):
            message = message.replace(f"'{book}'", f"'{key}'")
        return message

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
    """Read ``path`` (a file or a model folder) and rename its attention parameters to the
    book's names; say which prefix was chosen and which tensors are left unused."""
    if path.is_dir():
        return _load_folder(path, prefix)
    raw, metadata = _read_arrays(path)
    hints = _model_args(metadata.pop("__model_args__", None))
    return _from_raw(raw, metadata, prefix, path, hints)


def _from_raw(
    raw: dict[str, np.ndarray], metadata: dict, prefix: str | None, path: Path,
    hints: dict[str, object],
) -> WeightFile:  # fmt: skip
    if any(k.startswith("_orig_mod.") for k in raw):  # torch.compile's wrapper (nanoGPT)
        raw = {k.removeprefix("_orig_mod."): v for k, v in raw.items()}
    chosen = _choose_prefix(raw, prefix, path)
    subset = {k[len(chosen) :]: v for k, v in raw.items() if k.startswith(chosen)}
    named, layout, used, renames = _to_book_names(subset, path)
    origin = {book: chosen + key for key, book in renames.items() if book and "*" not in book}
    heads = metadata.get("heads")
    if heads is not None and not (isinstance(heads, str) and heads.isascii() and heads.isdigit()):
        raise InputError(f"{path}: metadata heads = {heads!r} is not a whole number")
    # with a prefix given, the other modules' tensors are not news: only the chosen one's count
    unused = tuple(
        sorted(
            k for k in raw
            if (prefix is None or k.startswith(chosen))
            and not (k.startswith(chosen) and k[len(chosen) :] in used)
        )
    )  # fmt: skip
    notes = []
    auto = prefix is None and chosen != ""
    if auto:
        notes.append(f"{path}: used the attention module under prefix {chosen!r} (the only one)")
    elif prefix is not None and chosen != prefix:
        notes.append(f"{path}: --weights-prefix {prefix!r} is the attention module {chosen!r}")
    if unused:
        shown = ", ".join(unused[:6]) + (f", … ({len(unused)} in all)" if len(unused) > 6 else "")
        notes.append(f"{path}: tensors not used: {shown}")
    return WeightFile(named, layout, chosen, int(heads) if heads else None, metadata, auto,
                      unused, hints, tuple(notes), origin)  # fmt: skip


def _model_args(args: object) -> dict[str, object]:
    """nanoGPT's checkpoint ``model_args`` as hints (its head count)."""
    if not isinstance(args, dict):
        return {}
    heads = args.get("n_head")
    return {"heads": heads} if isinstance(heads, int) and heads > 0 else {}


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


def _load_folder(folder: Path, prefix: str | None) -> WeightFile:
    """A Hugging Face folder: ``model.safetensors``, or shards with their index, of which only
    the chosen module's tensors are read (:class:`~attncli.io.shards.SafetensorsFolder`);
    ``config.json`` gives hints (heads, key/value heads, RoPE) for the run."""
    from attncli.io.shards import SafetensorsFolder

    tensors = SafetensorsFolder(folder)
    names = dict.fromkeys(tensors)  # the index's names: nothing read yet
    chosen = _choose_prefix(names, prefix, folder)
    raw = {k: tensors[k] if k.startswith(chosen) else None for k in names}
    return _from_raw(raw, {}, prefix, folder, _config_hints(folder))


def _config_hints(folder: Path) -> dict[str, object]:
    """What a Llama-style ``config.json`` beside the weights says about the attention."""
    path = folder / "config.json"
    if not path.is_file():
        return {}
    try:
        config = json.loads(path.read_text())
    except (OSError, ValueError, RecursionError):
        raise InputError(f"{path}: not readable JSON") from None
    if not isinstance(config, dict):
        raise InputError(f"{path}: expected a JSON object of settings")
    hints: dict[str, object] = {}
    for key, name in (("num_attention_heads", "heads"), ("num_key_value_heads", "kv_heads")):
        value = config.get(key)
        if value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise InputError(f"{path}: {key} = {value!r} is not a whole number of heads")
        hints[name] = value
    roped = ("llama", "mistral", "qwen2", "qwen3", "gemma2", "olmo2")
    params = config.get("rope_parameters")  # transformers 5: {rope_type, rope_theta, ...}
    if "rope_theta" in config or params is not None or config.get("model_type") in roped:
        scaling = config.get("rope_scaling")
        if isinstance(params, dict) and set(params) & {"full_attention", "sliding_attention"}:
            raise ConfigError(f"{path}: a RoPE per layer type is not applied by --weights; "
                              "attn model reads such folders")  # fmt: skip
        if not isinstance(params, (dict, type(None))) or (
            isinstance(params, dict) and params.get("rope_type", "default") != "default"
        ):
            scaling = params
        if scaling:
            raise ConfigError(f"{path}: rope_scaling {scaling!r} is not applied by --weights; "
                              "attn model reads such folders")  # fmt: skip
        base = (params or {}).get("rope_theta", config.get("rope_theta", 10000.0))
        if isinstance(base, bool) or not isinstance(base, (int, float)) or not base > 0:
            raise InputError(f"{path}: rope_theta = {base!r} is not a positive number")
        hints["rope"] = True
        hints["rope_base"] = float(base)
    # settings not applied, each said unless the option it names (the key) is given
    unapplied: dict[str, str] = {}
    window = config.get("sliding_window")
    kind = str(config.get("model_type", ""))
    if window is not None and not (
        kind.startswith("qwen") and not config.get("use_sliding_window")
    ):
        if isinstance(window, bool) or not isinstance(window, int) or window < 1:
            raise InputError(f"{path}: sliding_window = {window!r} is not a positive whole number")
        which = "every layer" if kind == "mistral" else "a sliding layer"
        unapplied["window"] = (
            f"{path}: sliding_window {window} not applied; --window {window} --causal computes "
            f"{which} (attn model applies each layer's own)"
        )
    gemma = (("attn_logit_softcapping", "softcap"), ("query_pre_attn_scalar", "scale_dim"))
    for key, name in gemma:  # Gemma 2's soft-capped scores, Gemma's own score scale
        value = config.get(key)
        if value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0:
            raise InputError(f"{path}: {key} = {value!r} is not a positive number")
        if name == "softcap" and config.get("model_type") != "gemma2":  # as transformers does
            unapplied["softcap"] = (
                f"{path}: {key} {value:g} not applied: transformers does not cap "
                f"the scores of model_type {config.get('model_type')!r}; --softcap {value:g} "
                "caps them"
            )
            continue
        hints[name] = float(value)
    if unapplied:
        hints["unapplied"] = unapplied
    return hints


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
    return _read_torch(data, path)


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


def _read_torch(data: bytes, path: Path) -> tuple[dict[str, np.ndarray], dict]:
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
    if isinstance(obj.get("model"), dict) and "model_args" in obj:  # nanoGPT's ckpt.pt
        return _flatten(obj["model"], torch, path), {"__model_args__": obj["model_args"]}
    return _flatten(obj, torch, path), {}


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
        if prefix in candidates:
            return prefix
        # a module's name without its final dot, or a parent of one module: the module
        parent = prefix if prefix.endswith(".") or not prefix else prefix + "."
        under = [c for c in candidates if c.startswith(parent)]
        if len(under) == 1:
            return under[0]
        shown = ", ".join(repr(c) for c in (under or candidates)[:10])
        where = f"{len(under)} attention modules under it" if under else "no attention module"
        raise ConfigError(
            f"{path}: --weights-prefix {prefix!r} names {where}; pick one of {shown}"
            + (", …" if len(under or candidates) > 10 else "")
        )
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


def _to_book_names(
    subset: dict[str, np.ndarray], path: Path
) -> tuple[dict[str, np.ndarray], str, set[str], dict[str, str]]:
    """Rename one module's keys to ``W_query.weight`` etc. Returns the renamed arrays, the
    layout's name, the module's keys that were used (buffers such as a causal mask count) and
    the renames (the file's key -> the book's)."""
    keys = set(subset)
    if {"bias_k", "bias_v"} & keys:
        raise InputError(
            f"{path}: bias_k/bias_v are MultiheadAttention's add_bias_kv=True (an extra key and "
            "value appended to the sequence), which attncli does not compute"
        )
    if {"bias_q", "bias_k", "bias_v"} & keys or any(k.startswith("bias_") for k in keys):
        found = ", ".join(sorted(k for k in keys if k.startswith("bias_")))
        raise InputError(
            f"{path}: {found} are bare bias vectors (the book's MHAEinsum); save them as "
            "W_query.bias/W_key.bias/W_value.bias with W_query.weight … (nn.Linear's names)"
        )
    named: dict[str, np.ndarray] = {}
    renames: dict[str, str] = {}  # the file's key -> the book's
    if "in_proj_weight" in keys or "q_proj_weight" in keys:
        layout = "torch.nn.MultiheadAttention"
        if "in_proj_weight" in keys:
            packed = _packed(subset["in_proj_weight"], "in_proj_weight", 2, path)
            named.update(zip((f"W_{r}.weight" for r in ROLES), packed, strict=True))
            renames["in_proj_weight"] = "W_*.weight"
        if "in_proj_bias" in keys:
            packed = _packed(subset["in_proj_bias"], "in_proj_bias", 1, path)
            named.update(zip((f"W_{r}.bias" for r in ROLES), packed, strict=True))
            renames["in_proj_bias"] = "W_*.bias"
        for role, letter in ROLES.items():
            renames[f"{letter}_proj_weight"] = f"W_{role}.weight"
        renames.update({"out_proj.weight": "out_proj.weight", "out_proj.bias": "out_proj.bias"})
    elif "c_attn.weight" in keys or "qkv.weight" in keys:
        layout = _fused(subset, path, named, renames)
    elif "q_proj.weight" in keys:
        layout = "q_proj/k_proj/v_proj Linear layers"
        out = "o_proj" if "o_proj.weight" in keys else "out_proj"
        for role, letter in ROLES.items():
            for part in ("weight", "bias"):
                renames[f"{letter}_proj.{part}"] = f"W_{role}.{part}"
        for part in ("weight", "bias"):
            renames[f"{out}.{part}"] = f"out_proj.{part}"
        for norm in ("q_norm.weight", "k_norm.weight"):  # Qwen3's QK-norm scales
            renames[norm] = norm
    elif "self.query.weight" in keys:
        layout = "BERT attention (self.query/key/value, output.dense)"
        for role in ROLES:
            for part in ("weight", "bias"):
                renames[f"self.{role}.{part}"] = f"W_{role}.{part}"
        for part in ("weight", "bias"):
            renames[f"output.dense.{part}"] = f"out_proj.{part}"
    else:
        layout = "book (W_query, W_key, W_value)"
    for key, book in renames.items():
        if key in subset and book and "*" not in book:
            named[book] = subset[key]
    used = {k for k in renames if k in subset} | {k for k in keys if k in BUFFERS}
    if layout.startswith("book"):
        used |= keys
        named.update({k: v for k, v in subset.items() if k not in BUFFERS})
    return named, layout, used, renames


def _fused(
    subset: dict[str, np.ndarray], path: Path, named: dict[str, np.ndarray],
    renames: dict[str, str],
) -> str:  # fmt: skip
    """One fused query/key/value matrix, split in three. nanoGPT's ``c_attn`` and the book's
    ``qkv`` are Linear layers, weight (3d, d); transformers GPT-2's ``c_attn`` is a Conv1D,
    weight (d, 3d) used as x·W, and then its ``c_proj`` is a Conv1D too."""
    fused = "c_attn" if "c_attn.weight" in subset else "qkv"
    out = "c_proj" if fused == "c_attn" else "proj"
    w = subset[f"{fused}.weight"]
    if w.ndim != 2 or (3 * w.shape[1] != w.shape[0] and 3 * w.shape[0] != w.shape[1]):
        raise InputError(
            f"{path}: {fused}.weight has shape {w.shape}; a fused query/key/value matrix is "
            "(3·d, d) (nn.Linear) or (d, 3·d) (GPT-2's Conv1D)"
        )
    conv1d = w.shape[1] == 3 * w.shape[0]
    chunks = np.split(w.T if conv1d else w, 3)  # (d_out, d_in) each, nn.Linear's layout
    named.update(zip((f"W_{r}.weight" for r in ROLES), chunks, strict=True))
    renames[f"{fused}.weight"] = "W_*.weight"
    if f"{fused}.bias" in subset:
        bias = _packed(subset[f"{fused}.bias"], f"{fused}.bias", 1, path)
        named.update(zip((f"W_{r}.bias" for r in ROLES), bias, strict=True))
        renames[f"{fused}.bias"] = "W_*.bias"
    if f"{out}.weight" in subset:
        named["out_proj.weight"] = subset[f"{out}.weight"].T if conv1d else subset[f"{out}.weight"]
        renames[f"{out}.weight"] = "out_proj.weight*"
    if f"{out}.bias" in subset:
        renames[f"{out}.bias"] = "out_proj.bias"
    kind = "transformers GPT-2 Conv1D" if conv1d else "Linear"
    return f"fused {fused} ({kind}) with {out}"
