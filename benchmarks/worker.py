"""One timed case in a fresh process, so that its peak memory is its own.

    python benchmarks/worker.py attncli|torch N D simple|linear 0|1 REPEAT

Prints JSON: the best of REPEAT runs (after a warm-up) in seconds, and this process's peak RSS.
"""

from __future__ import annotations

import json
import sys
import time

import numpy as np


def case(kind: str, n: int, d: int, mode: str, causal: bool):
    """A callable computing the context of random (n, d) float32 embeddings."""
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
