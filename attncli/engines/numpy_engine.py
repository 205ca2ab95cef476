"""The default engine: plain numpy on the CPU (starts fast, no torch import)."""

from __future__ import annotations

from contextlib import AbstractContextManager

import numpy as np

from attncli.engines.blockwise import Progress, attention_context, single_blas_thread
from attncli.engines.memory import host_available_bytes


class NumpyEngine:
    name = "numpy"
    device = "cpu"

    def available_bytes(self) -> int:
        return host_available_bytes()

    def asarray(self, a: np.ndarray, dtype: str) -> np.ndarray:
        return np.asarray(a, dtype=dtype)

    def to_numpy(self, a: np.ndarray) -> np.ndarray:
        return a

    def affine(self, x: np.ndarray, weight: np.ndarray, bias: np.ndarray | None) -> np.ndarray:
        y = x @ weight
        return y if bias is None else y + bias

    def split_heads(self, x: np.ndarray, heads: int) -> np.ndarray:
        n, d = x.shape
        return x.reshape(n, heads, d // heads).transpose(1, 0, 2)

    def merge_heads(self, x: np.ndarray) -> np.ndarray:
        heads, n, d = x.shape
        return x.transpose(1, 0, 2).reshape(n, heads * d)

    def scores(self, q: np.ndarray, k: np.ndarray) -> np.ndarray:
        return q @ np.swapaxes(k, -1, -2)

    def scale(self, s: np.ndarray, factor: float) -> np.ndarray:
        return s * s.dtype.type(factor)

    def softcap(self, s: np.ndarray, cap: float) -> np.ndarray:
        c = s.dtype.type(cap)
        return np.tanh(s / c) * c

    def repeat_heads(self, x: np.ndarray, group: int) -> np.ndarray:
        return np.repeat(x, group, axis=0)

    def rms_norm(self, x: np.ndarray, eps: float) -> np.ndarray:
        ms = np.mean(np.square(x), axis=-1, keepdims=True)
        return x / np.sqrt(ms + x.dtype.type(eps))

    def rope(self, x: np.ndarray, cos: np.ndarray, sin: np.ndarray) -> np.ndarray:
        half = x.shape[-1] // 2
        rotated = np.concatenate([-x[..., half:], x[..., :half]], axis=-1)
        return x * cos + rotated * sin

    def causal_mask(self, s: np.ndarray, window: int | None = None) -> np.ndarray:
        n = s.shape[-1]
        diff = np.arange(n)[:, None] - np.arange(n)[None, :]
        hidden = (diff < 0) | (diff >= window) if window is not None else diff < 0
        return np.where(hidden, s.dtype.type(-np.inf), s)

    def softmax(self, s: np.ndarray) -> np.ndarray:
        e = s - s.max(axis=-1, keepdims=True)  # the same operations, in one buffer
        np.exp(e, out=e)
        e /= e.sum(axis=-1, keepdims=True)
        return e

    def dropout(self, w: np.ndarray, p: float, seed: int) -> np.ndarray:
        if p >= 1.0:
            return np.zeros_like(w)
        keep = np.random.default_rng(seed).random(w.shape) >= p
        return np.where(keep, w / w.dtype.type(1.0 - p), w.dtype.type(0))

    def matmul(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        return a @ b

    def context_scope(self) -> AbstractContextManager[None]:
        return single_blas_thread()

    def context(
        self, q: np.ndarray, k: np.ndarray, v: np.ndarray, scale: float, causal: bool,
        progress: Progress | None = None, window: int | None = None,
        softcap: float | None = None,
    ) -> np.ndarray:  # fmt: skip
        return attention_context(q, k, v, scale, causal, progress, window, softcap)
