"""One timed case in a fresh process, so that its peak memory is its own.

    python benchmarks/worker.py attncli|torch N D simple|linear|gqa-H-G|window-W 0|1 REPEAT

gqa-H-G: the attention kernel alone on H query heads sharing G key/value heads of width D
(attncli's blockwise context reading shared heads vs SDPA with ``enable_gqa``); window-W: one
head, causal, sliding window W (attncli's banded blockwise path vs SDPA with the window as a
boolean mask).

Prints JSON: the best of REPEAT runs (after a warm-up) in seconds, and this process's peak RSS.
"""

from __future__ import annotations

import json
import sys
import time

import numpy as np


def case(kind: str, n: int, d: int, mode: str, causal: bool):
    """A callable computing the context of random (n, d) float32 embeddings."""
    if mode.startswith(("gqa-", "window-")):
        return kernel_case(kind, n, d, mode, causal)
    x = np.random.default_rng(0).standard_normal((n, d), dtype=np.float32)
    if kind == "attncli":
        from attncli import compute

        d_out = d if mode != "simple" else None
        return lambda: compute(
            x, mode=mode, d_out=d_out, scale=True, causal=causal, engine="numpy", context_only=True
        )
    import torch

    t = torch.from_numpy(x)
    torch.manual_seed(123)
    layers = [torch.nn.Linear(d, d, bias=False) for _ in range(3)] if mode == "linear" else None

    def run():
        with torch.no_grad():
            q, k, v = (layer(t) for layer in layers) if layers else (t, t, t)
            q, k, v = (a[None, None] for a in (q, k, v))  # 4-D: torch's fused path
            return torch.nn.functional.scaled_dot_product_attention(q, k, v, is_causal=causal)

    return run


def kernel_case(kind: str, n: int, d: int, mode: str, causal: bool):
    """Grouped-query or sliding-window attention on random (heads, n, d) queries, keys, values."""
    rng = np.random.default_rng(0)
    name, *numbers = mode.split("-")
    heads, kv_heads = (int(numbers[0]), int(numbers[1])) if name == "gqa" else (1, 1)
    window = int(numbers[0]) if name == "window" else None
    causal = causal or window is not None
    q = rng.standard_normal((heads, n, d), dtype=np.float32)
    k, v = (rng.standard_normal((kv_heads, n, d), dtype=np.float32) for _ in range(2))
    scale = 1 / np.sqrt(d)
    if kind == "attncli":
        from attncli.engines.numpy_engine import NumpyEngine

        engine = NumpyEngine()

        def run():
            with engine.context_scope():
                return engine.context(q, k, v, scale, causal, window=window)

        return run
    import torch

    tq, tk, tv = (torch.from_numpy(a)[None] for a in (q, k, v))  # 4-D: (1, heads, n, d)
    mask = None
    if window is not None:
        i = torch.arange(n)
        diff = i[:, None] - i[None, :]
        mask = (diff >= 0) & (diff < window)

    def run():
        with torch.no_grad():
            return torch.nn.functional.scaled_dot_product_attention(
                tq, tk, tv, attn_mask=mask, is_causal=causal and mask is None,
                enable_gqa=kv_heads != heads,
            )  # fmt: skip

    return run


def peak_mb() -> float:
    """VmHWM: this process's peak RSS (ru_maxrss would include the parent's, kept across exec)."""
    with open("/proc/self/status") as f:
        kb = next(int(line.split()[1]) for line in f if line.startswith("VmHWM:"))
    return kb / 1024


def main() -> None:
    kind, n, d, mode, causal, repeat = sys.argv[1:7]
    run = case(kind, int(n), int(d), mode, causal == "1")
    run()  # warm-up: threads, allocator, BLAS
    best = float("inf")
    for _ in range(int(repeat)):
        t0 = time.perf_counter()
        run()
        best = min(best, time.perf_counter() - t0)
    print(json.dumps({"seconds": best, "peak_mb": peak_mb()}))


if __name__ == "__main__":
    main()
