"""KV-cache sizes of MHA, GQA, MLA and sliding-window attention: the book's estimator formulas.

From rasbt/LLMs-from-scratch ch04 ``memory_estimator_{gqa,mla,swa}.py``: per layer the cache holds
``batch × tokens × head_dim × kv_heads × 2 (K and V) × bytes`` (MHA: kv_heads = heads); MLA holds
``batch × tokens × latent_dim × bytes``; SWA layers hold ``min(context, window)`` tokens, full
layers ``context``, distributed as the ``a:b`` ratio (a SWA layers for every b full ones).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from attncli.errors import ConfigError

DTYPE_BYTES = {"fp32": 4, "bf16": 2, "fp16": 2, "fp8": 1, "int8": 1}
ALIASES = {"float32": "fp32", "bfloat16": "bf16", "float16": "fp16"}  # attn compute's names


@dataclass(frozen=True)
class Estimate:
    """One variant's cache: its name, the formula in words, and its size in bytes."""

    name: str
    formula: str
    bytes: int


def split_layers(layers: int, ratio: str) -> tuple[int, int]:
    """(SWA layers, full layers) for ``ratio`` "a:b", distributed as the book's script does."""
    try:
        a, b = (int(part) for part in ratio.split(":"))
    except ValueError:
        raise ConfigError(f"--swa-ratio must be a:b with whole numbers, got {ratio!r}") from None
    if a < 0 or b < 0 or a + b == 0:
        raise ConfigError(f"--swa-ratio {ratio}: a and b must be ≥ 0 and not both 0")
    blocks, rest = divmod(layers, a + b)
    return blocks * a + min(a, rest), blocks * b + max(0, rest - a)


def estimate(
    *, layers: int, heads: int, head_dim: int | None = None, emb_dim: int | None = None,
    kv_heads: int | None = None, latent_dim: int | None = None, window: int | None = None,
    swa_ratio: str = "1:0", context: int = 1024, batch: int = 1, dtype: str = "bf16",
) -> tuple[int, list[Estimate]]:  # fmt: skip
    """(head_dim, the estimates): MHA always; GQA with ``kv_heads``; MLA with ``latent_dim``;
    MHA + SWA (and GQA + SWA) with ``window``. ``head_dim`` or ``emb_dim`` (then head_dim =
    ⌈emb_dim / heads⌉ as the book) is required."""
    for name, value in (("layers", layers), ("heads", heads), ("context", context),
                        ("batch", batch)):  # fmt: skip
        if value < 1:
            raise ConfigError(f"--{name} must be at least 1, got {value}")
    dtype = ALIASES.get(dtype, dtype)
    if dtype not in DTYPE_BYTES:
        raise ConfigError(f"--dtype {dtype!r}: choose one of {', '.join(DTYPE_BYTES)}")
    if (head_dim is None) == (emb_dim is None):
        raise ConfigError("give --head-dim or --emb-dim (head_dim = ⌈emb_dim / heads⌉), not both")
    hd = head_dim if head_dim is not None else math.ceil(emb_dim / heads)  # type: ignore[operator]
    if hd < 1:
        raise ConfigError(f"head_dim must be at least 1, got {hd}")
    if kv_heads is not None and (kv_heads < 1 or heads % kv_heads):
        raise ConfigError(f"--kv-heads {kv_heads} does not divide --heads {heads}")
    for name, value in (("latent-dim", latent_dim), ("window", window)):
        if value is not None and value < 1:
            raise ConfigError(f"--{name} must be at least 1, got {value}")
    size = DTYPE_BYTES[dtype]

    def per_layer(tokens: int, kv: int) -> int:
        return batch * tokens * hd * kv * 2 * size

    kv_words = "batch × context × head_dim × {} × 2 × bytes × layers"
    rows = [Estimate("MHA", kv_words.format("heads"), per_layer(context, heads) * layers)]
    if kv_heads is not None:
        rows.append(
            Estimate("GQA", kv_words.format("kv_heads"), per_layer(context, kv_heads) * layers)
        )
    if latent_dim is not None:
        rows.append(Estimate("MLA", "batch × context × latent_dim × bytes × layers",
                             batch * context * latent_dim * size * layers))  # fmt: skip
    if window is not None:
        swa, full = split_layers(layers, swa_ratio)
        w = min(context, window)
        words = (f"{swa} SWA layers × min(context, W) + {full} full layers × context, "
                 "each × batch × head_dim × {} × 2 × bytes")  # fmt: skip
        for name, kv, which in (("MHA + SWA", heads, "heads"), ("GQA + SWA", kv_heads, "kv_heads")):
            if kv is not None:
                total = swa * per_layer(w, kv) + full * per_layer(context, kv)
                rows.append(Estimate(name, words.format(which), total))
    return hd, rows
