"""Results out: strict JSON, CSV of one step, NPY of one step, NPZ of every step."""

from __future__ import annotations

import csv
import io
import json

import numpy as np

from attncli.core.result import AttentionResult
from attncli.errors import ConfigError


def jsonable(a: np.ndarray) -> list:
    """Nested lists of floats; float32 values use their shortest repr, -inf (masked) is null."""
    flat = a.astype(str).ravel() if a.dtype == np.float32 else a.ravel()
    items = np.array([None if np.isneginf(float(v)) else float(v) for v in flat], dtype=object)
    return items.reshape(a.shape).tolist()


def to_json(result: AttentionResult, steps: list[str]) -> str:
    """The JSON contract: ``{"mode", "tokens", "params", "steps": {name: nested lists}}``."""
    doc: dict[str, object] = {
        "mode": result.config.mode,
        "tokens": list(result.tokens),
        "params": result.params(),
    }
    if result.query is not None:
        doc["query"] = {"index": result.query, "token": result.tokens[result.query]}
    doc["steps"] = {name: jsonable(result.steps[name]) for name in steps}
    return json.dumps(doc, allow_nan=False) + "\n"


def to_csv(result: AttentionResult, step: str) -> str:
    """One step as CSV with a header; rows labelled by token (and by head in multi-head)."""
    arr = result.steps[step]
    rows = result.row_tokens(step)
    columns = list(result.column_labels(step))
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    per_head = arr.ndim == 3
    writer.writerow((["head"] if per_head else []) + ["token"] + columns)
    for h, block in enumerate(arr if per_head else [arr]):
        text = block.astype(str)
        for token, values in zip(rows, text, strict=True):
            writer.writerow(([h] if per_head else []) + [token] + list(values))
    return out.getvalue()


def to_npy(result: AttentionResult, step: str) -> bytes:
    buf = io.BytesIO()
    np.save(buf, result.steps[step], allow_pickle=False)
    return buf.getvalue()


def to_npz(result: AttentionResult, steps: list[str]) -> bytes:
    """Every step in ``steps`` plus ``tokens`` (a unicode array, loadable without pickle)."""
    buf = io.BytesIO()
    np.savez(buf, tokens=np.array(result.tokens, dtype=str), **{s: result.steps[s] for s in steps})
    return buf.getvalue()


def one_step(steps: list[str], fmt: str) -> str:
    """The single step a one-matrix format writes (default: context)."""
    if len(steps) != 1:
        raise ConfigError(
            f"--format {fmt} writes one step; pick it with --show (e.g. --show weights)"
        )
    return steps[0]
