"""The KV cache: a causal result recomputed token by token, the way generation runs.

Each new token is projected alone; its key and value (mla: its latent c) are appended to the
cache; its query attends to the whole cache (a sliding window keeps only the last W entries, as
the book's SWA cache does); RoPE turns the query by its own position and each key by its own when
it enters the cache. Every row must equal the full computation's context: that is the check.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from attncli.core.attention import projection_arrays, rope_tables
from attncli.core.params import Projection
from attncli.core.result import AttentionResult
from attncli.engines.numpy_engine import NumpyEngine
from attncli.errors import ConfigError

TOLERANCE = {"float32": {"atol": 1e-5, "rtol": 1.3e-6}, "float64": {"atol": 1e-10, "rtol": 1e-10}}


@dataclass(frozen=True)
class CacheStep:
    """After token ``token``: what the cache holds (``entries`` tokens of ``width`` numbers),
    its size in bytes, and how far the cached context row is from the full computation's."""

    token: int
    entries: int
    width: int
    bytes: int
    max_abs_diff: float


@dataclass(frozen=True)
class CacheRun:
    stores: str  # what one cache entry is: "K and V" or "latent c"
    steps: tuple[CacheStep, ...]
    context: np.ndarray  # (n, d_out) computed token by token
    equal: bool  # every row within the dtype's tolerance of the full computation

    def to_dict(self) -> dict[str, object]:
        return {
            "stores": self.stores,
            "equal_to_full": self.equal,
            "steps": [vars(s) for s in self.steps],
        }


def cached_run(result: AttentionResult) -> CacheRun:
    """Recompute ``result`` (causal self-attention, no dropout) with a KV cache, in numpy."""
    c = result.config
    if not c.causal:
        raise ConfigError("--kv-cache needs --causal: generation sees only earlier tokens")
    if c.cross or c.dropout:
        raise ConfigError("--kv-cache replays causal self-attention without dropout")
    spec, p = c.spec(), result.parameters
    dtype = c.dtype if c.dtype in TOLERANCE else "float32"
    x = result.steps["inputs"].astype(dtype)
    n, hd = x.shape[0], spec.head_dim
    heads = spec.heads if spec.split else 1
    kv_heads = spec.kv_heads if spec.split else 1
    tables = (
        None if spec.rope_base is None
        else rope_tables(n, hd, spec.rope_base, dtype, c.rope_freqs)
    )  # fmt: skip
    itemsize = np.dtype(dtype).itemsize
    eng = NumpyEngine()  # the full path's own operations, applied one token at a time

    def affine(a: np.ndarray, proj: Projection | None) -> np.ndarray:
        if proj is None:
            return a
        return eng.affine(a, *projection_arrays(eng, proj, dtype))

    def rms(a: np.ndarray, norm: np.ndarray | None) -> np.ndarray:
        a = eng.rms_norm(a, c.rms_eps)
        return a if norm is None else a * norm.astype(dtype)

    def prepare(
        a: np.ndarray, count: int, positions: np.ndarray, norm: np.ndarray | None
    ) -> np.ndarray:
        """(t, count·hd) -> (count, t, hd), QK-normed (``norm``: its weights) and rotated at
        ``positions``."""
        whole = spec.qk_norm_scope == "all"  # OLMo 2: the whole row, before splitting
        if spec.qk_norm and whole:
            a = rms(a, norm)
        a = eng.split_heads(a, count)
        if spec.qk_norm and not whole:
            a = rms(a, norm)
        if tables is not None:
            a = eng.rope(a, *(t[positions].astype(dtype) for t in tables))
        return a

    keys = values = latent = None
    rows, steps = [], []
    for t in range(n):
        xt = x[t : t + 1]
        q = prepare(affine(xt, p and p.query), heads, np.array([t]), p and p.q_norm)
        if p is not None and p.latent is not None:  # mla caches c; keys and values come up
            ct = affine(xt, p.latent)
            latent = ct if latent is None else np.concatenate([latent, ct])
            if c.window is not None:
                latent = latent[-c.window :]
            first = t + 1 - len(latent)
            k = prepare(affine(latent, p.key), kv_heads, np.arange(first, t + 1), p.k_norm)
            v = eng.split_heads(affine(latent, p.value), kv_heads)
            entries, width = latent.shape
        else:
            kt = prepare(affine(xt, p and p.key), kv_heads, np.array([t]), p and p.k_norm)
            vt = eng.split_heads(affine(xt, p and p.value), kv_heads)
            keys = kt if keys is None else np.concatenate([keys, kt], axis=1)
            values = vt if values is None else np.concatenate([values, vt], axis=1)
            if c.window is not None:
                keys, values = keys[:, -c.window :], values[:, -c.window :]
            k, v = keys, values
            entries, width = keys.shape[1], 2 * kv_heads * keys.shape[2]
        k, v = (eng.repeat_heads(a, heads // kv_heads) for a in (k, v))
        s = eng.scale(eng.scores(q, k), spec.scale)  # (heads, 1, entries)
        if spec.softcap is not None:
            s = eng.softcap(s, spec.softcap)
        z = eng.merge_heads(eng.softmax(s) @ v)  # (heads, 1, hd) -> (1, heads·hd)
        if spec.split:
            z = affine(z, p.out)  # type: ignore[union-attr]
        rows.append(z[0])
        diff = float(np.abs(z[0] - result.context[t]).max())
        steps.append(CacheStep(t, entries, width, entries * width * itemsize, diff))
    context = np.stack(rows)
    tol = TOLERANCE.get(c.dtype, {"atol": 5e-2, "rtol": 5e-2})  # half types: looser
    equal = bool(np.allclose(context, result.context, **tol))
    stores = "latent c" if p is not None and p.latent is not None else "K and V"
    return CacheRun(stores, tuple(steps), context, equal)
