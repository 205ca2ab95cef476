"""Per-query diagnostics of attention weights: where the attention went and how spread it is."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from attncli.core.result import AttentionResult


@dataclass(frozen=True)
class RowStats:
    """One query's row of weights: the top-k keys (indices, weights), the largest weight, the
    entropy H = −Σ α ln α in nats, and the entropy of an even spread over the visible keys."""

    top: tuple[int, ...]
    top_weights: tuple[float, ...]
    max_weight: float
    entropy: float
    max_entropy: float


def row_stats(weights: np.ndarray, k: int = 3, visible: int | None = None) -> RowStats:
    """Statistics of one row of attention weights (``visible``: keys the query may see)."""
    w = np.asarray(weights, dtype=np.float64)
    seen = len(w) if visible is None else visible
    top = np.argsort(-w, kind="stable")[: min(k, seen)]
    positive = w[w > 0]
    entropy = float(-(positive * np.log(positive)).sum()) + 0.0  # no -0.0
    return RowStats(
        tuple(int(j) for j in top), tuple(float(w[j]) for j in top), float(w.max()), entropy,
        float(np.log(seen)),
    )  # fmt: skip


def weight_maps(result: AttentionResult, step: str = "weights") -> list[tuple[str, np.ndarray]]:
    """(title, (rows, n) matrix) per head of a step with key columns (the weights by default);
    a single map outside multi-head."""
    w = result.steps[step]
    if w.ndim == 2:
        return [(step, w)]
    return [(f"{step} · head {h}", block) for h, block in enumerate(w)]
