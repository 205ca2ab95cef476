"""The four attention modes of the book's chapter 3, as one pipeline of named steps."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from contextlib import nullcontext
from dataclasses import replace

import numpy as np

from attncli.core.config import AttentionConfig
from attncli.core.params import Parameters, Projection, init_parameters
from attncli.core.result import AttentionResult
from attncli.engines import Engine, get_engine
from attncli.errors import ConfigError, InputError


def compute(
    embeddings: np.ndarray,
    tokens: Sequence[str] | None = None,
    config: AttentionConfig | None = None,
    *,
    parameters: Parameters | None = None,
    engine: str = "auto",
    device: str = "auto",
    context_only: bool = False,
    progress: Callable[[int], None] | None = None,
    **options: object,
) -> AttentionResult:
    """Self-attention over ``embeddings`` (n_tokens, d_in), keeping every intermediate step.

    ``config`` (or keyword ``options`` building one, e.g. ``mode="trainable", d_out=2``) picks the
    mode. Weighted modes use ``parameters`` when given, else the seeded ones torch would create.
    ``engine`` (auto, numpy, torch) and ``device`` (auto, cpu, cuda, cuda:N, mps) pick where the
    arithmetic runs; see :func:`attncli.engines.get_engine`.

    - simple: Q = K = V = X.
    - trainable / linear: Q = X·W_q (+ b_q), likewise K and V.
    - multi-head: the same projections split into ``heads`` column blocks, attention per head,
      heads concatenated, then ``out_proj``.

    scores = Q·Kᵀ; scaled by 1/√d_k when ``scale``; future keys masked when ``causal``;
    weights = softmax (then dropout); context = weights·V.

    ``context_only`` skips the (…, n, n) steps: the engine's blockwise path computes the context
    in bounded memory (not with dropout, which needs the weights). Otherwise the memory the n×n
    steps need is checked first, and a ConfigError suggests the context-only path when it is
    more than the device has. ``progress`` is called with query rows done (blockwise path).
    """
    if config is None:
        config = AttentionConfig(**options)  # type: ignore[arg-type]
    elif options:
        config = replace(config, **options)  # type: ignore[arg-type]
    x = _check_embeddings(embeddings)
    n, d_in = x.shape
    names = tuple(tokens) if tokens is not None else tuple(f"t{i}" for i in range(n))
    if len(names) != n:
        raise InputError(f"{len(names)} tokens given for {n} embedding rows")
    if parameters is not None and config.mode != "simple" and config.d_out is None:
        config = replace(config, d_out=parameters.query.weight.shape[1])
    asked = config
    config = config.resolved(d_in)
    _check_host_memory(config, n, d_in, seeded=parameters is None)
    if parameters is None:
        parameters = init_parameters(config, d_in)
    elif config.mode == "simple":
        raise ConfigError("simple mode takes no parameters")
    else:
        _check_parameters(parameters, config, d_in)

    blockwise = context_only and config.dropout == 0
    notes: list[str] = []
    if config.mode == "multi-head" and asked.heads is None and config.heads == 1:
        notes.append(f"d_out {config.d_out} is odd, so 1 head (not 2); pass --heads or --d-out")
    while True:
        eng = get_engine(engine, device, config.dtype, n)
        if not blockwise:
            _check_memory(eng, config, n)
        scope = eng.context_scope() if blockwise else nullcontext()
        with scope, np.errstate(all="ignore"):  # overflow is handled below
            steps = _run(eng, x, config, parameters, blockwise, progress)
        arrays = {name: eng.to_numpy(a) for name, a in steps.items()}
        overflow = _overflowed(arrays)
        if overflow is None:
            break
        wider = WIDER.get(config.dtype)
        if wider is None:
            raise InputError(
                f"the {overflow} overflow {config.dtype}: the embeddings are too large in "
                "magnitude; rescale them"
            )
        notes.append(f"{config.dtype} overflowed in the {overflow}; computed in {wider} instead")
        config = replace(config, dtype=wider)
    return AttentionResult(
        names, config, arrays, parameters, eng.name, eng.device, notes=tuple(notes)
    )


# The next wider dtype a computation moves to when its numbers overflow.
WIDER = {"float16": "float32", "bfloat16": "float32", "float32": "float64"}


def _overflowed(arrays: dict[str, np.ndarray]) -> str | None:
    """The first step holding NaN or ±inf (masked scores may hold -inf), else None."""
    for name, a in arrays.items():
        ok = ~np.isnan(a) & (a != np.inf) if name == "masked_scores" else np.isfinite(a)
        if not ok.all():
            return name
    return None


def _run(
    eng: Engine,
    x: np.ndarray,
    config: AttentionConfig,
    parameters: Parameters | None,
    blockwise: bool = False,
    progress: Callable[[int], None] | None = None,
) -> dict[str, object]:
    """The pipeline of named steps, in the engine's arrays; ``blockwise`` skips the (…, n, n)
    steps and lets the engine compute the context directly."""
    dtype = config.dtype
    xs = eng.asarray(x, dtype)
    steps: dict[str, object] = {"inputs": xs}
    if parameters is None:
        q = k = v = xs
    else:
        q, k, v = (
            eng.affine(xs, *_arrays(eng, getattr(parameters, role), dtype))
            for role in ("query", "key", "value")
        )
    steps.update(queries=q, keys=k, values=v)

    multi = config.mode == "multi-head"
    if multi:
        q, k, v = (eng.split_heads(a, config.heads) for a in (q, k, v))
    if blockwise:
        factor = 1.0 / math.sqrt(config.head_dim) if config.scale else 1.0
        z = eng.context(q, k, v, factor, config.causal, progress)
        return _finish(eng, steps, z, config, parameters)
    s = eng.scores(q, k)
    steps["scores"] = s
    if config.scale:
        s = eng.scale(s, 1.0 / math.sqrt(config.head_dim))
        steps["scaled_scores"] = s
    if config.causal:
        s = eng.causal_mask(s)
        steps["masked_scores"] = s
    w = eng.softmax(s)
    if config.dropout > 0:
        steps["weights_before_dropout"] = w
        w = eng.dropout(w, config.dropout, config.seed)
    steps["weights"] = w
    return _finish(eng, steps, eng.matmul(w, v), config, parameters)


def _finish(
    eng: Engine, steps: dict[str, object], z: object, config: AttentionConfig,
    parameters: Parameters | None,
) -> dict[str, object]:  # fmt: skip
    """The context step: per-head outputs concatenated and projected in multi-head mode."""
    if config.mode == "multi-head":
        z = eng.merge_heads(z)
        steps["head_context"] = z
        assert parameters is not None and parameters.out is not None
        z = eng.affine(z, *_arrays(eng, parameters.out, config.dtype))
    steps["context"] = z
    return steps


def _check_memory(eng: Engine, config: AttentionConfig, n: int) -> None:
    """Refuse, before allocating, full-path (…, n, n) steps that cannot fit the device."""
    itemsize = 2 if config.dtype in ("float16", "bfloat16") else np.dtype(config.dtype).itemsize
    # kept: scores, weights (+ scaled, masked, pre-dropout) and one working copy
    copies = 3 + bool(config.scale) + bool(config.causal) + bool(config.dropout)
    need = copies * config.heads * n * n * itemsize
    available = eng.available_bytes()
    if need > available:
        raise ConfigError(
            f"{n} tokens need about {_size(need)} for the {n}×{n} matrices"
            f"{f' of {config.heads} heads' if config.heads > 1 else ''}, more than the "
            f"{_size(available)} available on {eng.device}; ask for the context alone "
            "(--show context, or --format npy/csv) to use the bounded-memory blockwise path"
        )


def _check_host_memory(config: AttentionConfig, n: int, d_in: int, seeded: bool) -> None:
    """Refuse, before allocating, parameters and (n, d) steps that cannot fit in memory:
    ``--d-out 1000000000`` or a 100,000-wide input must not run until the machine swaps."""
    from attncli.engines.memory import host_available_bytes

    d_out = config.d_out
    weights = 0 if config.mode == "simple" else 3 * d_in * d_out
    if config.mode == "multi-head":
        weights += d_out * d_out + d_out
    # seeded init holds a few float64 copies of each draw; steps: inputs, Q, K, V, context...
    need = weights * (32 if seeded else 8) + n * (d_in + 5 * d_out) * 8
    available = host_available_bytes()
    if need > available:
        shape = f"d_in {d_in} → d_out {d_out}" if config.mode != "simple" else f"d_in {d_in}"
        raise ConfigError(
            f"{shape} for {n} tokens needs about {_size(need)} of memory "
            f"({weights:,} parameters), more than the {_size(available)} available; "
            "choose a smaller --d-out (or fewer input columns)"
        )


def _size(n_bytes: float) -> str:
    for unit, scale in (
        ("PiB", 2**50),
        ("TiB", 2**40),
        ("GiB", 2**30),
        ("MiB", 2**20),
        ("KiB", 2**10),
    ):
        if n_bytes >= scale:
            return f"{n_bytes / scale:,.1f} {unit}"
    return f"{n_bytes:.0f} bytes"


def _arrays(eng: Engine, proj: Projection, dtype: str) -> tuple[object, object | None]:
    bias = None if proj.bias is None else eng.asarray(proj.bias, dtype)
    return eng.asarray(proj.weight, dtype), bias


def _check_embeddings(embeddings: np.ndarray) -> np.ndarray:
    x = np.asarray(embeddings)
    if x.ndim != 2:
        raise InputError(f"embeddings must be 2-D (n_tokens, d_in), got {x.ndim}-D shape {x.shape}")
    if x.shape[0] < 1 or x.shape[1] < 1:
        raise InputError(f"embeddings need at least one token and one dimension, got {x.shape}")
    if x.dtype.kind not in "fiu":
        raise InputError(f"embeddings must be numbers, got dtype {x.dtype}")
    if not np.isfinite(x).all():
        row, col = np.argwhere(~np.isfinite(x))[0]
        raise InputError(f"embedding row {row}, column {col} is {x[row, col]} (must be finite)")
    return x


def _check_parameters(p: Parameters, config: AttentionConfig, d_in: int) -> None:
    for role in ("query", "key", "value"):
        shape = getattr(p, role).weight.shape
        if shape != (d_in, config.d_out):
            raise ConfigError(
                f"W_{role} has shape {shape}, expected ({d_in}, {config.d_out}) (d_in, d_out)"
            )
    if (p.out is not None) != (config.mode == "multi-head"):
        raise ConfigError("an output projection is needed in multi-head mode and only there")
