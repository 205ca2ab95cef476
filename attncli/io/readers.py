"""Embeddings from CSV, JSON or NPY files, standard input or a bundled sample.

Every problem is an :class:`InputError` whose message names the source, the row/column or key,
and what is wrong, so the CLI can print it on one line.
"""

from __future__ import annotations

import csv
import io
import json
import math
import os
import re
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Literal

import numpy as np

from attncli.errors import InputError
from attncli.io.limits import max_input_bytes, too_large
from attncli.visible import label, visible

InputFormat = Literal["csv", "json", "npy"]
INPUT_FORMATS: tuple[str, ...] = ("csv", "json", "npy")
_SUFFIXES = {".csv": "csv", ".tsv": "csv", ".txt": "csv", ".json": "json", ".npy": "npy"}
_NPY_MAGIC = b"\x93NUMPY"
SAMPLE_PREFIX = "sample:"
CHUNK = 1 << 20  # bytes read at a time


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
        name = "<stdin>"
        data = read_stream(stdin or sys.stdin.buffer, name)
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
    """The file's bytes, or an InputError saying why they cannot be had. At most
    :func:`~attncli.io.limits.max_input_bytes` are read, in chunks, so that an endless source
    (``/dev/zero``) is refused and Ctrl-C is heard between chunks."""
    with open_binary(path) as stream:
        try:
            size = os.fstat(stream.fileno()).st_size
        except OSError:
            size = 0
        limit = max_input_bytes()
        if size > limit:
            raise too_large(str(path), limit, size)
        try:
            return read_stream(stream, str(path), limit)
        except OSError as e:
            raise _unreadable(path, e) from None


def read_stream(stream: BinaryIO, name: str, limit: int | None = None) -> bytes:
    """Everything ``stream`` holds, read in chunks; more than ``limit`` bytes is an InputError."""
    limit = max_input_bytes() if limit is None else limit
    chunks, total = [], 0
    while chunk := stream.read(CHUNK):
        total += len(chunk)
        if total > limit:
            raise too_large(name, limit)
        chunks.append(chunk)
    return b"".join(chunks)


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
    check_npy_header(data, name)
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


def check_npy_header(data: bytes, name: str, size: int | None = None) -> None:
    """Refuse a .npy whose header declares more data than the file holds, before numpy
    allocates it (a 160-byte file may claim a (10⁶, 10⁶) array). ``data`` may be the file's
    start when ``size`` gives its whole length (an archive member)."""
    from numpy.lib import format as npy_format

    stream = io.BytesIO(data)
    try:
        version = npy_format.read_magic(stream)
        read = npy_format.read_array_header_1_0 if version == (1, 0) else None
        read = read or npy_format.read_array_header_2_0
        shape, _, dtype = read(stream, max_header_size=1 << 16)
    except (ValueError, OSError, SyntaxError) as e:
        raise InputError(f"{name}: not a valid .npy file ({e})") from None
    if dtype.hasobject:
        return  # refused by np.load without pickle, with its own message
    declared = math.prod(shape) * dtype.itemsize
    held = (len(data) if size is None else size) - stream.tell()
    if declared > held:
        raise InputError(
            f"{name}: the .npy header declares shape {tuple(shape)} of {dtype} "
            f"({declared:,} bytes) but the file holds {held:,}"
        )


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
    limit = max_input_bytes()
    for line_no, raw in enumerate(iter(lambda: stream.readline(limit + 1), b""), start=1):
        where = f"{name} line {line_no}"
        record_id = None
        if len(raw) > limit:  # an endless line: nothing after it can be found, so stop here
            yield line_no, None, too_large(where, limit)
            return
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
                    f"{name}: tokens[{i}] '{visible(token)}' holds a lone surrogate, "
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
    """CSV (or TSV, semicolons) with an optional header and an optional label column. Records
    are read as the csv module reads them: a quoted cell keeps its newlines, and only CR/LF end
    a row (a form feed or U+2028 inside a token is part of the token). Tokens are kept exactly,
    spaces included (BPE tokens such as " the" begin with one)."""
    csv.field_size_limit(2**31 - 1)  # a cell as long as the input may be (csv's default: 128 KiB)
    try:
        delimiter = _sniff_delimiter(text)
        reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
        rows = [(reader.line_num, cells) for cells in reader if any(c.strip() for c in cells)]
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
    # a label column: some first cell is not a number ("nan", "NA" and "1_000" are labels)
    labelled = width > 1 and any(_number(cells[0]) is None for _, cells in rows if cells)
    tokens: list[str] = []
    values = np.empty((len(rows), width - labelled), dtype=np.float64)
    for i, (line_no, cells) in enumerate(rows):
        if len(cells) != width:
            raise InputError(
                f"{name}: row {line_no} has {len(cells)} columns, "
                f"expected {width} as in row {rows[0][0]}"
            )
        if labelled:
            tokens.append(cells[0] if cells[0].strip() else f"t{i}")
        for j, cell in enumerate(cells[labelled:]):
            number = _number(cell)
            if number is None or not math.isfinite(number):
                where = f"{name}: row {line_no}, column {j + 1 + labelled}"
                raise InputError(f"{where}: {_not_a_number(cell)}")
            values[i, j] = number
    return _from_array(values, tokens if labelled else None, name)


def _sniff_delimiter(text: str) -> str:
    """Tab, semicolon or comma: the first that splits the opening lines into equal widths > 1."""
    sample = [line for line in text.split("\n", 40)[:40] if line.strip()][:20]
    for delim in ("\t", ";", ","):
        try:
            widths = {len(cells) for cells in csv.reader(sample, delimiter=delim)}
        except csv.Error:
            continue
        if len(widths) == 1 and widths.pop() > 1:
            return delim
    return max(("\t", ";", ","), key=lambda d: sample[0].count(d)) if sample else ","


def _is_header(cells: list[str]) -> bool:
    """A first row is a header when none of its cells is a number."""
    return all(_number(c) is None for c in cells)


# Plain ASCII decimal notation: 1, -0.5, .5, 3., 1e-3. Not "1_000", "１２", "٣", "nan" or "inf",
# which Python's float() would accept.
_DECIMAL = re.compile(r"[ \t]*[+-]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?[ \t]*")


def _number(cell: str) -> float | None:
    return float(cell) if _DECIMAL.fullmatch(cell) else None


def _not_a_number(cell: str) -> str:
    """Why a value cell is refused, naming what it holds."""
    shown = repr(visible(label(cell.strip(), 40))) if cell.strip() else "empty"
    try:
        value = float(cell)
    except ValueError:
        return f"{shown} is not a number"
    if not math.isfinite(value):
        return f"{shown} is not a finite number"
    return f"{shown} is not plain decimal notation (write ASCII digits, e.g. 1000 or 0.5)"


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
