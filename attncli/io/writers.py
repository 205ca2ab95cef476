"""Results out: strict JSON, CSV of one step, NPY of one step, NPZ of every step."""

from __future__ import annotations

import csv
import io
import json

import numpy as np

from attncli.core.result import AttentionResult
from attncli.errors import ConfigError


def json_array(a: np.ndarray) -> str:
    """``a`` as a JSON array text. Each value is numpy's shortest repr that reads back as the same
    float (float32 stays 0.15, not 0.15000000596...); -inf (masked) becomes null. Built with
    vectorised string conversion: about 5x faster than nested lists through ``json``."""
    if a.ndim == 0:
        return "null" if np.isneginf(a) else str(a)
    text = a.astype(str)
    if np.isneginf(a).any():
        text[np.isneginf(a)] = "null"
    return _nest(text)


def _nest(text: np.ndarray) -> str:
    if text.ndim == 1:
        return "[" + ",".join(text.tolist()) + "]"
    return "[" + ",".join(_nest(sub) for sub in text) + "]"


def to_json(
    result: AttentionResult,
    steps: list[str],
    first: dict[str, object] | None = None,
    extra: dict[str, object] | None = None,
) -> str:
    """The JSON contract on one line: ``{"mode", "tokens", "params", "notes", "steps"}``, after
    the ``first`` keys (a JSON Lines record's ``id`` and ``line``); ``extra`` keys (``kv_cache``)
    come before ``steps``."""
    doc: dict[str, object] = {
        **(first or {}),
        "mode": result.config.mode,
        "tokens": list(result.tokens),
        "params": result.params(),
    }
    if result.kv_tokens is not None:  # cross-attention: the memory's tokens label the keys
        doc["kv_tokens"] = list(result.kv_tokens)
    if result.query is not None:
        doc["query"] = {"index": result.query, "token": result.tokens[result.query]}
    doc["notes"] = list(result.notes)
    doc.update(extra or {})
    head = json.dumps(doc, allow_nan=False)[:-1]  # without the closing brace
    body = ", ".join(f"{json.dumps(name)}: {json_array(result.steps[name])}" for name in steps)
    return f'{head}, "steps": {{{body}}}}}\n'


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
    """Every step in ``steps`` plus ``tokens`` (a unicode array, loadable without pickle), and
    the memory's ``kv_tokens`` in cross-attention."""
    labels = {"tokens": np.array(result.tokens, dtype=str)}
    if result.kv_tokens is not None:
        labels["kv_tokens"] = np.array(result.kv_tokens, dtype=str)
    buf = io.BytesIO()
    np.savez(buf, **labels, **{s: result.steps[s] for s in steps})
    return buf.getvalue()


def one_step(steps: list[str], fmt: str) -> str:
    """The single step a one-matrix format writes (default: context)."""
    if len(steps) != 1:
        raise ConfigError(
            f"--format {fmt} writes one step; pick it with --show (e.g. --show weights)"
        )
    return steps[0]


def embeddings_csv(tokens: tuple[str, ...], values: np.ndarray) -> str:
    """Embeddings as attn compute reads them: a header, then ``token,d0,d1,...`` per row."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["token", *(f"d{j}" for j in range(values.shape[1]))])
    for token, row in zip(tokens, values.astype(str), strict=True):
        writer.writerow([token, *row])
    return out.getvalue()


def embeddings_json(tokens: tuple[str, ...], values: np.ndarray) -> str:
    """``{"tokens": [...], "embeddings": [[...], ...]}``: attn compute's JSON input format."""
    return f'{{"tokens": {json.dumps(list(tokens))}, "embeddings": {json_array(values)}}}\n'
