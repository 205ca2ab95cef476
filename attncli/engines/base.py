"""The operations the core needs from an array backend; engines implement them."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import Any, Protocol

import numpy as np

Array = Any  # the engine's own array type (numpy.ndarray, torch.Tensor, ...)


class Engine(Protocol):
    """An array backend on a device. All arrays in and out of these methods are the engine's own,
    except :meth:`asarray` (numpy in) and :meth:`to_numpy` (numpy out)."""

    name: str
    device: str

    def available_bytes(self) -> int:
        """Memory the device can still give, to refuse work that cannot fit before allocating."""
        ...

    def asarray(self, a: np.ndarray, dtype: str) -> Array: ...

    def to_numpy(self, a: Array) -> np.ndarray: ...

    def affine(self, x: Array, weight: Array, bias: Array | None) -> Array:
        """``x @ weight + bias``: (n, d_in) @ (d_in, d_out) -> (n, d_out)."""
        ...

    def split_heads(self, x: Array, heads: int) -> Array:
        """(n, heads·d) -> (heads, n, d)."""
        ...

    def merge_heads(self, x: Array) -> Array:
        """(heads, n, d) -> (n, heads·d)."""
        ...

    def scores(self, q: Array, k: Array) -> Array:
        """``q @ kᵀ`` over the last two axes: (..., n, d) x (..., n, d) -> (..., n, n)."""
        ...

    def scale(self, s: Array, factor: float) -> Array: ...

    def softcap(self, s: Array, cap: float) -> Array:
        """tanh(s / cap)·cap: every score squashed to at most cap in size, small ones kept."""
        ...

    def repeat_heads(self, x: Array, group: int) -> Array:
        """(kv_heads, m, d) -> (kv_heads·group, m, d): each key/value head for ``group``
        consecutive query heads (``repeat_interleave``)."""
        ...

    def rms_norm(self, x: Array, eps: float) -> Array:
        """x / √(mean(x²) + eps) over the last axis (RMSNorm with unit weight)."""
        ...

    def rope(self, x: Array, cos: Array, sin: Array) -> Array:
        """x·cos + rotate_half(x)·sin, rotate_half(x) = [−x₂, x₁]: (…, n, d) with (n, d) tables."""
        ...

    def causal_mask(self, s: Array, window: int | None = None) -> Array:
        """A copy of ``s`` with every entry above the diagonal set to -inf, and with a
        ``window`` also those ``window`` or more below it."""
        ...

    def softmax(self, s: Array) -> Array:
        """Row-wise softmax over the last axis, stable for large scores."""
        ...

    def dropout(self, w: Array, p: float, seed: int) -> Array:
        """Zero each entry with probability ``p`` and scale the rest by 1/(1-p), as torch does."""
        ...

    def matmul(self, a: Array, b: Array) -> Array: ...

    def context_scope(self) -> AbstractContextManager[None]:
        """The scope the whole context-only computation runs in (projections included)."""
        ...

    def context(
        self, q: Array, k: Array, v: Array, scale: float, causal: bool,
        progress: Callable[[int], None] | None = None, window: int | None = None,
        softcap: float | None = None,
    ) -> Array:  # fmt: skip
        """softmax(scale·q·kᵀ, causal[, window]) · v without keeping the (…, n, m) matrices;
        with ``softcap`` C the scaled scores are tanh(s/C)·C before the mask.
        q (heads, n, d) may have more heads than k, v (kv_heads, m, d): query head h uses key
        head h // (heads / kv_heads), never copied. ``progress``: query rows done."""
        ...
