"""Embeddings from CSV, JSON or NPY files, standard input or a bundled sample.

Every problem is an :class:`InputError` whose message names the source, the row/column or key,
and what is wrong, so the CLI can print it on one line.
"""

from __future__ import annotations

import csv
import io
import json
import math
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Literal

import numpy as np

from attncli.errors import InputError
from attncli.visible import visible

InputFormat = Literal["csv", "json", "npy"]
INPUT_FORMATS: tuple[str, ...] = ("csv", "json", "npy")
_SUFFIXES = {".csv": "csv", ".tsv": "csv", ".txt": "csv", ".json": "json", ".npy": "npy"}
_NPY_MAGIC = b"\x93NUMPY"
SAMPLE_PREFIX = "sample:"


@dataclass(frozen=True)
class Embeddings:
    """Token labels and their vectors ``values`` (n_tokens, d_in), float64, all finite."""

    tokens: tuple[str, ...]
    values: np.ndarray
    source: str


def load_embeddings(
    source: str | Path, input_format: str | None = None, stdin: BinaryIO | None = None
) -> Embeddings:
    """Read embeddings from a path, ``-`` (standard input) or ``sample:NAME``.

    The format comes from ``input_format``, else the file suffix, else the content is sniffed
    (NPY magic, a JSON bracket, otherwise CSV).
    """
    if input_format is not None and input_format not in INPUT_FORMATS:
        raise InputError(f"unknown input format {input_format!r}; use {', '.join(INPUT_FORMATS)}")
    text = str(source)
    if text == "-":
        name, data = "<stdin>", (stdin or sys.stdin.buffer).read()
    else:
        if text.startswith(SAMPLE_PREFIX):
            from attncli.io.samples import sample_path

            path = sample_path(text[len(SAMPLE_PREFIX) :])
        else:
            path = Path(text)
        name, data = text, read_bytes(path)
        input_format = input_format or _SUFFIXES.get(path.suffix.lower())
    if not data.strip():
        raise InputError(f"{name}: empty input, expected embeddings (one token per row)")
    fmt = input_format or sniff_format(data)
    if fmt == "npy":
        return _from_array(_parse_npy(data, name), None, name)
    text_data = _decode(data, name)
    if fmt == "json":
        return _parse_json(text_data, name)
    return _parse_csv(text_data, name)


def read_bytes(path: Path) -> bytes:
    """The file's bytes, or an InputError saying why they cannot be had."""
    try:
        return path.read_bytes()
    except OSError as e:
        raise _unreadable(path, e) from None


@contextmanager
def open_binary(path: Path) -> Iterator[BinaryIO]:
    """The file opened for streaming reads, or an InputError saying why it cannot be."""
    try:
        stream = path.open("rb")
    except OSError as e:
        raise _unreadable(path, e) from None
    with stream:
        yield stream


def _unreadable(path: Path, e: OSError) -> InputError:
    if isinstance(e, FileNotFoundError):
        return InputError(f"{path}: no such file")
    if isinstance(e, IsADirectoryError):
        return InputError(f"{path}: is a directory, expected a file")
    if isinstance(e, PermissionError):
        return InputError(f"{path}: permission denied")
    return InputError(f"{path}: cannot read ({e.strerror or e})")


def sniff_format(data: bytes) -> InputFormat:
    """Guess the format of ``data`` from its first bytes."""
    if data.startswith(_NPY_MAGIC):
        return "npy"
    head = data.lstrip(b"\xef\xbb\xbf \t\r\n")[:1]
    return "json" if head in (b"[", b"{") else "csv"


def _decode(data: bytes, name: str) -> str:
    if b"\x00" in data:
        raise InputError(f"{name}: binary data, expected CSV or JSON text (or give a .npy file)")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        raise InputError(
            f"{name}: not UTF-8 text (byte 0x{data[e.start]:02x} at offset {e.start})"
        ) from None


def _parse_npy(data: bytes, name: str) -> np.ndarray:
    if not data.startswith(_NPY_MAGIC):
        raise InputError(f"{name}: not a valid .npy file (no NPY header)")
    try:
        arr = np.load(io.BytesIO(data), allow_pickle=False)
    except ValueError as e:
        if "allow_pickle" in str(e):
            raise InputError(f"{name}: .npy holds Python objects; refusing to unpickle") from None
        raise InputError(f"{name}: not a valid .npy file ({e})") from None
    except (EOFError, OSError) as e:
        raise InputError(f"{name}: not a valid .npy file, truncated? ({e})") from None
    if not isinstance(arr, np.ndarray):
        raise InputError(f"{name}: expected a single .npy array")
    if arr.dtype.kind not in "fiu":
        raise InputError(f"{name}: .npy dtype {arr.dtype} is not numeric")
    return arr


# ---- JSON --------------------------------------------------------------------------------------


def _reject_constant(value: str) -> float:
    raise InputError(f"JSON constant {value} is not a finite number")


def _parse_json(text: str, name: str) -> Embeddings:
    return _from_json_doc(_json_doc(text, name), name)


def iter_batch(
    stream: BinaryIO, name: str
) -> Iterator[tuple[int, object, Embeddings | InputError]]:
    """Records of a JSON Lines stream, read lazily one line at a time: (line number, the record's
    ``id`` or None, its embeddings or the InputError saying why it is not valid).

    A record is ``{"id": ..., "tokens": [...], "embeddings": [[...], ...]}`` (id, tokens
    optional) or a bare list of rows. Every line gets an answer, blank ones included, so that
    output line k can belong to input line k.
    """
    for line_no, raw in enumerate(stream, start=1):
        where = f"{name} line {line_no}"
        record_id = None
        try:
            text = _decode(raw, where).strip()
            if not text:
                raise InputError(f"{where}: empty line, expected a JSON record")
            doc = _json_doc(text, where)
            if isinstance(doc, dict):
                record_id = doc.get("id")
                if isinstance(record_id, (dict, list)):
                    raise InputError(f"{where}: 'id' must be a string or a number")
            yield line_no, record_id, _from_json_doc(doc, where, extra=("id",))
        except InputError as e:
            yield line_no, record_id, e


def _json_doc(text: str, name: str) -> object:
    try:
        return json.loads(text, parse_constant=_reject_constant)
    except InputError as e:
        raise InputError(f"{name}: {e}") from None
    except json.JSONDecodeError as e:
        raise InputError(
            f"{name}: invalid JSON at line {e.lineno}, column {e.colno}: {e.msg}"
        ) from None
    except RecursionError:
        raise InputError(f"{name}: JSON nested too deeply; expected rows of numbers") from None
    except ValueError as e:  # e.g. an integer literal longer than Python converts
        raise InputError(f"{name}: invalid JSON ({e})") from None


def _from_json_doc(doc: object, name: str, extra: tuple[str, ...] = ()) -> Embeddings:
    tokens = None
    where = "embeddings"
    if isinstance(doc, dict):
        unknown = sorted(set(doc) - {"tokens", "embeddings", *extra})
        if unknown or "embeddings" not in doc:
            what = f"unknown key {unknown[0]!r}" if unknown else "missing key 'embeddings'"
            raise InputError(
                f'{name}: {what}; expected {{"tokens": [...], "embeddings": [[...], ...]}}'
            )
        tokens = doc.get("tokens")
        rows = doc["embeddings"]
    elif isinstance(doc, list):
        rows, where = doc, "top level"
    else:
        raise InputError(
            f"{name}: expected a list of rows of numbers, got a JSON {_json_type(doc)}"
        )
    if not isinstance(rows, list):
        raise InputError(f"{name}: {where} must be a list of rows, got a JSON {_json_type(rows)}")
    if not rows:
        raise InputError(f"{name}: {where} has no rows; need at least one token")
    width = None
    for i, row in enumerate(rows):
        if not isinstance(row, list):
            raise InputError(
                f"{name}: {where}[{i}] is a {_json_type(row)}, expected a list of numbers "
                "(embeddings must be 2-D: one list per token)"
            )
        if width is None:
            width = len(row)
            if not width:
                raise InputError(f"{name}: {where}[0] is empty; need at least one dimension")
        elif len(row) != width:
            raise InputError(
                f"{name}: {where}[{i}] has {len(row)} values, expected {width} as in row 0"
            )
        for j, cell in enumerate(row):
            if isinstance(cell, bool) or not isinstance(cell, (int, float)):
                extra = " (embeddings must be 2-D)" if isinstance(cell, list) else ""
                raise InputError(
                    f"{name}: {where}[{i}][{j}] is a {_json_type(cell)}, expected a number{extra}"
                )
            if not _finite(cell):
                shown = cell if isinstance(cell, float) else "a huge integer"
                raise InputError(f"{name}: {where}[{i}][{j}] is {shown}, not a finite number")
    if tokens is not None:
        if not isinstance(tokens, list) or not all(isinstance(t, str) for t in tokens):
            raise InputError(f"{name}: 'tokens' must be a list of strings")
        for i, token in enumerate(tokens):
            if any("\ud800" <= c <= "\udfff" for c in token):
                raise InputError(
                    f"{name}: tokens[{i}] {visible(token)!r} holds a lone surrogate, "
                    "which is not Unicode text"
                )
        if len(tokens) != len(rows):
            raise InputError(f"{name}: {len(tokens)} tokens but {len(rows)} embedding rows")
    return _from_array(np.array(rows, dtype=np.float64), tokens, name)


def _finite(number: float) -> bool:
    try:
        return math.isfinite(number)
    except OverflowError:  # an int beyond float range
        return False


def _json_type(value: object) -> str:
    names = {dict: "object", list: "array", str: "string", bool: "boolean", type(None): "null"}
    return names.get(type(value), "number")


# ---- CSV ---------------------------------------------------------------------------------------


def _parse_csv(text: str, name: str) -> Embeddings:
    lines = text.splitlines()
    try:
        delimiter = _sniff_delimiter(lines)
        rows = [
            (line_no, cells)
            for line_no, cells in enumerate(csv.reader(lines, delimiter=delimiter), start=1)
            if any(c.strip() for c in cells)
        ]
    except csv.Error as e:
        raise InputError(f"{name}: not readable as CSV ({e})") from None
    if not rows:
        raise InputError(f"{name}: no rows, only blank lines")
    header = None
    if _is_header(rows[0][1]):
        header, rows = rows[0], rows[1:]
        if not rows:
            raise InputError(f"{name}: only a header row, no embeddings")
    width = len(rows[0][1])
    if header is not None and len(header[1]) != width:
        raise InputError(
            f"{name}: header (row {header[0]}) has {len(header[1])} columns, "
            f"row {rows[0][0]} has {width}"
        )
    labelled = width > 1 and _number(rows[0][1][0]) is None
    tokens: list[str] = []
    values = np.empty((len(rows), width - labelled), dtype=np.float64)
    for i, (line_no, cells) in enumerate(rows):
        if len(cells) != width:
            raise InputError(
                f"{name}: row {line_no} has {len(cells)} columns, "
                f"expected {width} as in row {rows[0][0]}"
            )
        if labelled:
            tokens.append(cells[0].strip() or f"t{i}")
        for j, cell in enumerate(cells[labelled:]):
            number = _number(cell)
            where = f"{name}: row {line_no}, column {j + 1 + labelled}"
            if number is None:
                shown = repr(cell.strip()) if cell.strip() else "empty"
                raise InputError(f"{where}: {shown} is not a number")
            if not math.isfinite(number):
                raise InputError(f"{where}: {cell.strip()!r} is not a finite number")
            values[i, j] = number
    return _from_array(values, tokens if labelled else None, name)


def _sniff_delimiter(lines: list[str]) -> str:
    """Tab, semicolon or comma: the first that splits the opening lines into equal widths > 1."""
    sample = [line for line in lines if line.strip()][:20]
    for delim in ("\t", ";", ","):
        widths = {len(cells) for cells in csv.reader(sample, delimiter=delim)}
        if len(widths) == 1 and widths.pop() > 1:
            return delim
    return max(("\t", ";", ","), key=lambda d: sample[0].count(d)) if sample else ","


def _is_header(cells: list[str]) -> bool:
    """A first row is a header when none of its cells is a number."""
    return all(_number(c) is None for c in cells)


def _number(cell: str) -> float | None:
    try:
        return float(cell.strip())
    except ValueError:
        return None


def _from_array(arr: np.ndarray, tokens: list[str] | None, name: str) -> Embeddings:
    if arr.ndim != 2:
        hint = " (one row per token)" if arr.ndim < 2 else ""
        raise InputError(f"{name}: embeddings must be 2-D (n_tokens, d_in), got {arr.ndim}-D{hint}")
    if arr.shape[0] < 1 or arr.shape[1] < 1:
        raise InputError(
            f"{name}: need at least one token and one dimension, got shape {arr.shape}"
        )
    values = arr.astype(np.float64)
    bad = np.argwhere(~np.isfinite(values))
    if bad.size:
        row, col = bad[0]
        raise InputError(f"{name}: row {row}, column {col} is {values[row, col]}, not finite")
    labels = tuple(tokens) if tokens is not None else tuple(f"t{i}" for i in range(len(values)))
    return Embeddings(labels, values, name)
