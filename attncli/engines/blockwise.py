"""Context-only attention in numpy without the n×n matrix: blockwise online softmax.

Query rows are processed in blocks on a thread pool (numpy's BLAS calls and ufuncs release the
GIL); within a block, keys stream in blocks while a running max ``m`` and an accumulator ``acc``
(weighted values and, in its last column, the softmax denominator) are rescaled as in flash
attention. The working set per thread is one
``rows × key_block`` score tile, so memory stays bounded whatever the number of tokens; when all
keys fit the tile budget the loop runs once and this is a plain row-block softmax.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager

import numpy as np

TILE_BYTES = 16 << 20  # score tile per thread: 16 MiB
MAX_ROWS = 512  # query rows per block (fewer when the tile budget asks)
MIN_ROWS = 32
KEYS_PER_TILE = 8192  # more keys than this stream through several tiles per row block
# Row blocks of a sliding window: W/2 rows, within these bounds. Measured at N=32,768 (one head,
# float32) against 64–512 rows: best or within 10% of best for W = 16, 128, 512, 2048.
WINDOW_ROWS = (128, 256)

Progress = Callable[[int], None]  # called with the number of query rows just finished


@contextmanager
def single_blas_thread() -> Iterator[None]:
    """One BLAS thread while the workers run: they already fill the cores, and BLAS threads
    (nested, or left spinning after a parallel product just before) compete with them: measured
    1.4x slower at N=4096 on 2 cores. Projections made in this scope are small enough not to mind.
    """
    from threadpoolctl import threadpool_limits

    with threadpool_limits(1, user_api="blas"):
        yield


def _plan(n_keys: int, itemsize: int) -> tuple[int, int]:
    """Rows per query block and keys per key block for a tile of at most TILE_BYTES.

    Up to KEYS_PER_TILE keys, a block's keys fit one tile; beyond, the rows stay as many as for
    KEYS_PER_TILE keys and the keys stream in tiles: fewer, taller blocks read K and V fewer times
    (measured in CPU time, one head, float32: equal at N=16,384, 14% less at 32,768, 20% less at
    65,536 than shrinking the rows to keep every key in one tile).
    """
    rows = TILE_BYTES // (itemsize * max(min(n_keys, KEYS_PER_TILE), 1))
    rows = int(np.clip(rows, MIN_ROWS, MAX_ROWS))
    key_block = max(1, TILE_BYTES // (itemsize * rows))
    return rows, key_block


def attention_context(
    q: np.ndarray,
    k: np.ndarray,
    v: np.ndarray,
    scale: float,
    causal: bool,
    progress: Progress | None = None,
    window: int | None = None,
    softcap: float | None = None,
) -> np.ndarray:
    """softmax(scale · q·kᵀ [soft-capped, + causal mask, window]) · v for (n, d) or (heads, n, d)
    arrays; ``softcap`` C turns each scaled score s of a tile into tanh(s/C)·C before masking.

    With fewer key/value heads than query heads (grouped-query attention), query head h reads
    key/value head h // group in place: no copy per query head. With a ``window`` each query
    block visits only the keys its rows can see, so the time grows as n·window, not n².
    """
    q3, k3, v3 = (a if q.ndim == 3 else a[None] for a in (q, k, v))
    heads, n = q3.shape[:2]
    group = heads // k3.shape[0]
    out = np.empty((heads, n, v3.shape[-1]), dtype=np.result_type(q3, v3))
    v1s = [_with_ones(vg) for vg in v3]  # one per key/value head, shared by its query heads
    seen = k3.shape[1] if window is None else min(k3.shape[1], window + MAX_ROWS)
    rows, key_block = _plan(seen, q3.dtype.itemsize)
    if window is not None:  # a block reads rows + window − 1 keys: shorter blocks waste fewer
        rows = min(rows, int(np.clip(window // 2, *WINDOW_ROWS)))
    qs = q3 * q3.dtype.type(scale)  # scaling q once is cheaper than scaling every score

    def block(task: tuple[int, int]) -> None:
        h, r0 = task
        r1 = min(n, r0 + rows)
        g = h // group
        with np.errstate(all="ignore"):  # per thread; overflow is detected on the result
            _rows(qs[h, r0:r1], k3[g], v1s[g], r0, causal, key_block, out[h, r0:r1], window,
                  softcap)  # fmt: skip
        if progress is not None:
            progress(r1 - r0)

    # one pool over every (head, row block): heads keep the cores busy even for short inputs
    tasks = [(h, r0) for h in range(heads) for r0 in range(0, n, rows)]
    workers = min(os.cpu_count() or 1, max(1, heads * n // rows))
    if workers == 1:
        for task in tasks:
            block(task)
    else:
        with ThreadPoolExecutor(workers) as pool:
            list(pool.map(block, tasks))
    return out if q.ndim == 3 else out[0]


def _with_ones(v: np.ndarray) -> np.ndarray:
    """V with a column of ones: one product gives Σ_j p_j·v_j and the denominator Σ_j p_j."""
    return np.concatenate([v, np.ones((v.shape[0], 1), dtype=v.dtype)], axis=1)


def _rows(
    qb: np.ndarray, k: np.ndarray, v1: np.ndarray, r0: int, causal: bool, key_block: int,
    out: np.ndarray, window: int | None = None, softcap: float | None = None,
) -> None:  # fmt: skip
    """Rows r0 … r0+len(qb) of the context, keys streamed in blocks of ``key_block``.

    ``v1`` is V with a column of ones appended, so one product gives both Σ_j p_j·v_j and the
    softmax denominator Σ_j p_j, saving a pass over the score tile. A window (causal) starts
    the keys at the first one the block's first row sees: row i sees keys i−window+1 … i.
    """
    b = qb.shape[0]
    end = r0 + b if causal else k.shape[0]  # causal rows never look past their own position
    start = 0 if window is None else max(0, r0 - window + 1)
    m = np.full(b, -np.inf, dtype=qb.dtype)
    acc = None
    for c0 in range(start, end, key_block):
        c1 = min(end, c0 + key_block)
        s = qb @ k[c0:c1].T
        if softcap is not None:  # before the masks: tanh(-inf) would be a score of -C
            cap = s.dtype.type(softcap)
            np.divide(s, cap, out=s)
            np.tanh(s, out=s)
            np.multiply(s, cap, out=s)
        if causal and c1 - 1 > r0:  # the tile crosses the diagonal: hide keys after each row
            first = max(c0, r0)
            later = np.arange(first, c1)[None, :] > np.arange(r0, r0 + b)[:, None]
            np.copyto(s[:, first - c0 :], -np.inf, where=later)
        if window is not None and c0 <= r0 + b - 1 - window:  # keys a row is too far from
            last = min(c1, r0 + b - window)  # keys < last can be out of some row's window
            gone = np.arange(c0, last)[None, :] <= np.arange(r0, r0 + b)[:, None] - window
            np.copyto(s[:, : last - c0], -np.inf, where=gone)
        new_m = np.maximum(m, s.max(axis=1))
        shift = new_m
        if window is not None:  # a row may see no key of this tile yet: subtract 0, not -inf
            shift = np.where(np.isneginf(new_m), 0, new_m).astype(m.dtype)
        np.subtract(s, shift[:, None], out=s)
        np.exp(s, out=s)
        if acc is None:
            acc = s @ v1[c0:c1]
        else:
            acc *= np.exp(m - shift)[:, None]
            acc += s @ v1[c0:c1]
        m = new_m
    np.divide(acc[:, :-1], acc[:, -1:], out=out)
