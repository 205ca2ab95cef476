"""The four attention modes of the book's chapter 3, as one pipeline of named steps."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from contextlib import nullcontext
from dataclasses import replace

import numpy as np

from attncli.core.config import PRESETS, AttentionConfig, AttentionSpec
from attncli.core.params import Parameters, Projection, init_parameters
from attncli.core.result import AttentionResult
from attncli.engines import Engine, get_engine
from attncli.engines.memory import ALWAYS_FITS, host_available_bytes
from attncli.errors import ConfigError, InputError
from attncli.io.limits import human


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
    kv: np.ndarray | None = None,
    kv_tokens: Sequence[str] | None = None,
    **options: object,
) -> AttentionResult:
    """Attention over ``embeddings`` (n_tokens, d_in), keeping every intermediate step.

    ``config`` (or keyword ``options`` building one, e.g. ``mode="gqa", heads=4, kv_heads=2``)
    picks the mode, a preset of the spec (see :mod:`attncli.core.config`), and its options.
    Weighted modes use ``parameters`` when given, else the seeded ones torch would create.
    ``engine`` (auto, numpy, torch) and ``device`` (auto, cpu, cuda, cuda:N, mps) pick where the
    arithmetic runs; see :func:`attncli.engines.get_engine`.

    - simple: Q = K = V = X.
    - trainable / linear: Q = X·W_q (+ b_q), likewise K and V.
    - multi-head / gqa / mqa: the same projections split into ``heads`` query heads and
      ``kv_heads`` key/value heads (consecutive query heads share one), heads concatenated,
      then ``out_proj``. mla: keys and values come up from the latent C = X·W_DKV.
    - qk_norm: RMSNorm of each head's q and k (``qk_norm_scope="all"``: of each whole row,
      before splitting); rope: rotate them by position.

    scores = Q·Kᵀ; scaled by 1/√d_k when ``scale``; soft-capped to tanh(s/C)·C when
    ``softcap`` is C; future keys masked when ``causal`` (and
    keys more than ``window``−1 back); weights = softmax (then dropout); context = weights·V.
    ``kv`` (m, d_kv) makes it cross-attention: keys and values from that memory instead.

    ``context_only`` skips the (…, n, m) steps: the engine's blockwise path computes the context
    in bounded memory (not with dropout, which needs the weights). Otherwise the memory the n×m
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
    memory, kv_names = None, None
    if kv is not None:
        memory = _check_embeddings(kv, "--kv memory")
        m = memory.shape[0]
        kv_names = tuple(kv_tokens) if kv_tokens is not None else tuple(f"m{j}" for j in range(m))
        if len(kv_names) != m:
            raise InputError(f"{len(kv_names)} memory tokens given for {m} --kv rows")
        config = replace(config, cross=True)
    d_kv = d_in if memory is None else memory.shape[1]
    if parameters is not None and config.mode != "simple":
        config = from_parameters(config, parameters)
    asked = config
    config = config.resolved(d_in)
    _check_host_memory(config, n, max(d_in, d_kv), seeded=parameters is None)
    if config.mode == "simple" and d_kv != d_in:
        raise InputError(
            f"--kv memory has {d_kv} columns, the queries {d_in}: simple mode compares them "
            "directly; pick a mode with weights"
        )
    if parameters is None:
        parameters = init_parameters(config, d_in, d_kv)
    elif config.mode == "simple":
        raise ConfigError("simple mode takes no parameters")
    else:
        _check_parameters(parameters, config, d_in, d_kv)

    blockwise = context_only and config.dropout == 0
    notes: list[str] = []
    m = n if memory is None else memory.shape[0]
    if config.mode == "multi-head" and asked.heads is None and config.heads == 1:
        notes.append(f"d_out {config.d_out} is odd, so 1 head (not 2); pass --heads or --d-out")
    while True:
        eng = get_engine(engine, device, config.dtype, n)
        if not blockwise:
            _check_memory(eng, config, n, m)
        scope = eng.context_scope() if blockwise else nullcontext()
        with scope, np.errstate(all="ignore"):  # overflow is handled below
            steps = _run(eng, x, config, parameters, blockwise, progress, memory)
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
        names, config, arrays, parameters, eng.name, eng.device, notes=tuple(notes),
        kv_tokens=kv_names,
    )  # fmt: skip


def from_parameters(config: AttentionConfig, p: Parameters) -> AttentionConfig:
    """Widths the config leaves open, read from given parameters: d_out from W_query, the latent
    width from W_DKV, and gqa's key/value heads from W_key's width over head_dim."""
    d_out = config.d_out if config.d_out is not None else p.query.weight.shape[1]
    config = replace(config, d_out=d_out)
    if p.latent is not None and config.latent_dim is None:
        config = replace(config, latent_dim=p.latent.weight.shape[1])
    preset = PRESETS.get(config.mode)
    open_kv = preset is not None and preset.grouped and preset.kv_heads is None
    if open_kv and config.kv_heads is None:
        heads = config.heads if config.heads is not None else 2
        head_dim = max(1, d_out // heads)
        config = replace(config, kv_heads=max(1, p.key.weight.shape[1] // head_dim))
    return config


# The next wider dtype a computation moves to when its numbers overflow.
WIDER = {"float16": "float32", "bfloat16": "float32", "float32": "float64"}


def _overflowed(arrays: dict[str, np.ndarray]) -> str | None:
    """The first step holding NaN or ±inf (masked scores may hold -inf), else None."""
    for name, a in arrays.items():
        if a.size == 0:
            continue
        top = a.max()  # NaN when any entry is NaN; one pass each, no temporary array
        if name == "masked_scores" and not top < np.inf:
            return name
        if name != "masked_scores" and not (np.isfinite(top) and np.isfinite(a.min())):
            return name
    return None


def _run(
    eng: Engine,
    x: np.ndarray,
    config: AttentionConfig,
    parameters: Parameters | None,
    blockwise: bool = False,
    progress: Callable[[int], None] | None = None,
    memory: np.ndarray | None = None,
) -> dict[str, object]:
    """The one pipeline of named steps, read from the config's spec, in the engine's arrays.

    ``memory`` (cross-attention) is what keys and values are made from; ``blockwise`` skips the
    (…, n, m) steps and lets the engine compute the context directly.
    """
    spec, dtype = config.spec(), config.dtype
    xs = eng.asarray(x, dtype)
    steps: dict[str, object] = {"inputs": xs}
    ms = xs
    if memory is not None:
        ms = steps["kv_inputs"] = eng.asarray(memory, dtype)
    if parameters is None:
        q, k, v = xs, ms, ms
    else:
        q = eng.affine(xs, *projection_arrays(eng, parameters.query, dtype))
        source = ms
        if parameters.latent is not None:  # mla: keys and values come up from the latent C
            source = steps["latent"] = eng.affine(
                ms, *projection_arrays(eng, parameters.latent, dtype)
            )
        k, v = (
            eng.affine(source, *projection_arrays(eng, p, dtype))
            for p in (parameters.key, parameters.value)
        )
    steps.update(queries=q, keys=k, values=v)

    whole = spec.qk_norm and spec.qk_norm_scope == "all"
    if whole:  # OLMo 2: each whole projected row, all heads together, before splitting
        q, k = _qk_norm(eng, q, k, config, parameters)
        steps.update(queries_norm=q, keys_norm=k)
    if spec.split:  # (n, heads·d) -> (heads, n, d); keys/values have kv_heads
        q, k, v = (
            eng.split_heads(q, spec.heads),
            *(eng.split_heads(a, spec.kv_heads) for a in (k, v)),
        )
    merge = eng.merge_heads if spec.split else (lambda a: a)
    if spec.qk_norm and not whole:  # each head's d numbers
        q, k = _qk_norm(eng, q, k, config, parameters)
        steps.update(queries_norm=merge(q), keys_norm=merge(k))
    if spec.rope_base is not None:
        cos, sin = (
            eng.asarray(t, dtype)
            for t in rope_tables(
                x.shape[0], spec.head_dim, spec.rope_base, dtype, config.rope_freqs
            )
        )
        q, k = eng.rope(q, cos, sin), eng.rope(k, cos, sin)
        steps.update(queries_rope=merge(q), keys_rope=merge(k))
    if blockwise:
        z = eng.context(
            q, k, v, spec.scale, spec.mask != "none", progress, spec.window, spec.softcap
        )
        return _finish(eng, steps, z, spec, parameters, dtype)
    if spec.group > 1:  # the full path shows (heads, n, m) matrices: each head its own keys
        k, v = (eng.repeat_heads(a, spec.group) for a in (k, v))
    s = eng.scores(q, k)
    steps["scores"] = s
    if config.scale:
        s = eng.scale(s, spec.scale)
        steps["scaled_scores"] = s
    if spec.softcap is not None:  # Gemma 2: at most C in size, before the mask
        s = eng.softcap(s, spec.softcap)
        steps["capped_scores"] = s
    if spec.mask != "none":
        s = eng.causal_mask(s, spec.window)
        steps["masked_scores"] = s
    w = eng.softmax(s)
    if config.dropout > 0:
        steps["weights_before_dropout"] = w
        w = eng.dropout(w, config.dropout, config.seed)
    steps["weights"] = w
    return _finish(eng, steps, eng.matmul(w, v), spec, parameters, dtype)


def _qk_norm(
    eng: Engine, q: object, k: object, config: AttentionConfig, parameters: Parameters | None
) -> tuple[object, object]:
    """RMSNorm of q and k over their last axis, times the learned weights when there are some."""
    q, k = eng.rms_norm(q, config.rms_eps), eng.rms_norm(k, config.rms_eps)
    if parameters is not None and parameters.q_norm is not None:
        q = q * eng.asarray(parameters.q_norm, config.dtype)
    if parameters is not None and parameters.k_norm is not None:
        k = k * eng.asarray(parameters.k_norm, config.dtype)
    return q, k


def rope_tables(
    n: int, head_dim: int, base: float, dtype: str, freqs: tuple[float, ...] | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """cos and sin (n, head_dim) of the angles p·θ_i, θ_i = base^(−2i/head_dim) (or the given
    ``freqs``), each repeated for both halves (rotate-half). Computed in float32 as torch, Llama
    and the book do (float64 for a float64 run)."""
    ftype = np.float64 if dtype == "float64" else np.float32
    inv_freq = (
        ftype(1.0) / ftype(base) ** (np.arange(0, head_dim, 2, dtype=ftype) / ftype(head_dim))
        if freqs is None
        else np.asarray(freqs, dtype=ftype)
    )
    angles = np.arange(n, dtype=ftype)[:, None] * inv_freq[None, :]
    angles = np.concatenate([angles, angles], axis=1)
    return np.cos(angles), np.sin(angles)


def _finish(
    eng: Engine, steps: dict[str, object], z: object, spec: AttentionSpec,
    parameters: Parameters | None, dtype: str,
) -> dict[str, object]:  # fmt: skip
    """The context step: per-head outputs concatenated and projected in the multi-head family."""
    if spec.split:
        z = eng.merge_heads(z)
        steps["head_context"] = z
        assert parameters is not None and parameters.out is not None
        z = eng.affine(z, *projection_arrays(eng, parameters.out, dtype))
    steps["context"] = z
    return steps


def _check_memory(eng: Engine, config: AttentionConfig, n: int, m: int) -> None:
    """Refuse, before allocating, full-path (…, n, m) steps that cannot fit the device."""
    itemsize = 2 if config.dtype in ("float16", "bfloat16") else np.dtype(config.dtype).itemsize
    # kept: scores, weights (+ scaled, masked, pre-dropout) and one working copy
    copies = 3 + bool(config.scale) + (config.softcap is not None) + bool(config.causal)
    copies += bool(config.dropout)
    need = copies * config.heads * n * m * itemsize
    if need <= ALWAYS_FITS:
        return
    available = eng.available_bytes()
    if need > available:
        raise ConfigError(
            f"{n} tokens need about {human(need)} for the {n}×{m} matrices"
            f"{f' of {config.heads} heads' if config.heads > 1 else ''}, more than the "
            f"{human(available)} available on {eng.device}; ask for the context alone "
            "(--show context, or --format npy/csv) to use the bounded-memory blockwise path"
        )


def _check_host_memory(config: AttentionConfig, n: int, d_in: int, seeded: bool) -> None:
    """Refuse, before allocating, parameters and (n, d) steps that cannot fit in memory:
    ``--d-out 1000000000`` or a 100,000-wide input must not run until the machine swaps."""
    d_out = config.d_out
    weights = 0 if config.mode == "simple" else 3 * d_in * d_out
    if config.mode not in ("simple", "trainable", "linear"):  # an output projection (at most)
        weights += d_out * d_out + d_out
    # seeded init holds a few float64 copies of each draw; steps: inputs, Q, K, V, context...
    need = weights * (32 if seeded else 8) + n * (d_in + 5 * d_out) * 8
    if need <= ALWAYS_FITS:
        return
    available = host_available_bytes()
    if need > available:
        shape = f"d_in {d_in} → d_out {d_out}" if config.mode != "simple" else f"d_in {d_in}"
        raise ConfigError(
            f"{shape} for {n} tokens needs about {human(need)} of memory "
            f"({weights:,} parameters), more than the {human(available)} available; "
            "choose a smaller --d-out (or fewer input columns)"
        )


def projection_arrays(eng: Engine, proj: Projection, dtype: str) -> tuple[object, object | None]:
    """A projection's weight and bias (or None) as the engine's arrays of ``dtype``."""
    bias = None if proj.bias is None else eng.asarray(proj.bias, dtype)
    return eng.asarray(proj.weight, dtype), bias


def _check_embeddings(embeddings: np.ndarray, what: str = "embeddings") -> np.ndarray:
    x = np.asarray(embeddings)
    if x.ndim != 2:
        raise InputError(f"{what} must be 2-D (n_tokens, d_in), got {x.ndim}-D shape {x.shape}")
    if x.shape[0] < 1 or x.shape[1] < 1:
        raise InputError(f"{what} need at least one token and one dimension, got {x.shape}")
    if x.dtype.kind not in "fiu":
        raise InputError(f"{what} must be numbers, got dtype {x.dtype}")
    if not np.isfinite(x).all():
        row, col = np.argwhere(~np.isfinite(x))[0]
        name = "embedding" if what == "embeddings" else what
        raise InputError(f"{name} row {row}, column {col} is {x[row, col]} (must be finite)")
    return x


def _check_parameters(p: Parameters, config: AttentionConfig, d_in: int, d_kv: int) -> None:
    """Shapes of given parameters against the resolved spec (files were checked on reading)."""
    spec = config.spec()
    kv_width = spec.kv_heads * spec.head_dim
    source = d_kv
    if spec.projections == "latent":
        if p.latent is None:
            raise ConfigError("mla needs its down-projection W_DKV")
        _expect("W_DKV", p.latent, (d_kv, spec.latent_dim))
        source, kv_width = spec.latent_dim, config.d_out
    elif p.latent is not None:
        raise ConfigError(f"W_DKV belongs to mla, not {config.mode}")
    _expect("W_query", p.query, (d_in, config.d_out))
    _expect("W_key", p.key, (source, kv_width))
    _expect("W_value", p.value, (source, kv_width))
    whole = spec.qk_norm_scope == "all"
    for name, heads in (("q_norm", spec.heads), ("k_norm", spec.kv_heads)):
        w = getattr(p, name)
        width = heads * spec.head_dim if whole else spec.head_dim
        if w is None or (spec.qk_norm and w.shape == (width,)):
            continue
        row_wide = heads > 1 and w.shape == (heads * spec.head_dim,)  # all heads together
        if not spec.qk_norm:
            scope = " --qk-norm-scope all" if row_wide else ""
            raise ConfigError(f"{name} weights given: add --qk-norm{scope}")
        if not whole and row_wide:
            raise ConfigError(
                f"{name} weights of shape {w.shape} normalise all {heads} heads together: "
                "add --qk-norm-scope all"
            )
        scope = f"{heads} heads × head_dim {spec.head_dim}" if whole else "head_dim"
        raise ConfigError(f"{name} weights of shape {w.shape} need {scope} = {width} numbers")
    if (p.out is not None) != spec.split:
        raise ConfigError("an output projection is needed in the multi-head family and only there")
    if p.out is not None:  # heads·head_dim back to the model's width (d_out unless a model says)
        _expect("out_proj", p.out, (config.d_out, p.out.weight.shape[1]))


def _expect(name: str, proj: Projection, shape: tuple) -> None:
    if proj.weight.shape != shape:
        raise ConfigError(
            f"{name} has shape {proj.weight.shape}, expected {shape} (as applied: fan-in first)"
        )
