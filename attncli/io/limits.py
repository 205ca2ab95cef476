"""How much input a run reads at most: a documented bound instead of memory running out.

The limit is ``ATTN_MAX_INPUT`` (bytes, or with a K/M/G suffix), set by ``attn --max-input SIZE``,
else :data:`DEFAULT_MAX_INPUT`. It bounds each embeddings file, standard input, one ``--batch``
line and the data a weight file declares (zip entries of .npz/.pt archives).
"""

from __future__ import annotations

import os
import re

from attncli.errors import ConfigError, InputError

DEFAULT_MAX_INPUT = 512 << 20  # bytes: parsing text needs several times this in memory
ENV = "ATTN_MAX_INPUT"
_UNITS = {"": 1, "K": 1 << 10, "M": 1 << 20, "G": 1 << 30, "T": 1 << 40}


def parse_size(text: str) -> int:
    """``"512M"``, ``"2G"``, ``"1000"`` (bytes) as a number of bytes."""
    found = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([KMGT]?)(?:i?B)?\s*", text, re.IGNORECASE)
    if not found:
        raise ConfigError(f"input limit {text!r}: give bytes or a size such as 512M or 4G")
    return int(float(found.group(1)) * _UNITS[found.group(2).upper()])


def max_input_bytes() -> int:
    """The limit in force."""
    text = os.environ.get(ENV)
    return DEFAULT_MAX_INPUT if not text else parse_size(text)


def human(n_bytes: float) -> str:
    """A byte count as people read it: ``512.0 MiB``, ``1,087.8 GiB``."""
    units = (("PiB", 1 << 50), ("TiB", 1 << 40), ("GiB", 1 << 30), ("MiB", 1 << 20),
             ("KiB", 1 << 10))  # fmt: skip
    for unit, scale in units:
        if n_bytes >= scale:
            return f"{n_bytes / scale:,.1f} {unit}"
    return f"{n_bytes:.0f} bytes"


def too_large(name: str, limit: int, size: int | None = None) -> InputError:
    size_is = f"is {human(size)}, " if size is not None else "holds "
    return InputError(
        f"{name}: {size_is}more than the input limit of {human(limit)}; raise it with "
        f"attn --max-input SIZE (or {ENV}=SIZE) if the machine has the memory"
    )
