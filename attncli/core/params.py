"""The learnable parameters of the weighted modes, their seeded creation and their file names.

Internally every projection is stored the way it is applied, ``x @ weight + bias`` with ``weight``
of shape ``(d_in, d_out)``. Files use the book's names: ``W_query`` (d_in, d_out) for the
trainable mode's bare matrices, ``W_query.weight`` (d_out, d_in) + ``.bias`` for ``nn.Linear``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from attncli.core.config import PRESETS, AttentionConfig
from attncli.errors import InputError
from attncli.init import TorchCPUGenerator

# The book's name of each projection: MultiHeadLatentAttention renames key/value to their
# up-projections from the latent and adds the down-projection W_DKV.
NAMES = {"query": "W_query", "key": "W_key", "value": "W_value", "out": "out_proj"}
LATENT_NAMES = {**NAMES, "latent": "W_DKV", "key": "W_UK", "value": "W_UV"}


@dataclass(frozen=True)
class Projection:
    """One affine map ``x @ weight + bias``: weight (d_in, d_out), bias (d_out,) or None."""

    weight: np.ndarray
    bias: np.ndarray | None = None


@dataclass(frozen=True)
class Parameters:
    """Query, key and value projections, the output projection of the multi-head family, and
    latent attention's down-projection ``latent`` (then key/value map the latent C up).

    Shapes (as applied): query (d_in, d_out); key/value (d_kv, kv_heads·head_dim), or
    (latent_dim, d_out) with a ``latent`` (d_kv, latent_dim); out (d_out, d_out).
    """

    query: Projection
    key: Projection
    value: Projection
    out: Projection | None = None
    latent: Projection | None = None
    q_norm: np.ndarray | None = None  # QK-norm's learned weights (head_dim,), as Qwen3's
    k_norm: np.ndarray | None = None

    def named(self, linear: bool) -> dict[str, np.ndarray]:
        """The parameters under the book's names (``linear``: nn.Linear orientation)."""
        names = LATENT_NAMES if self.latent is not None else NAMES
        named: dict[str, np.ndarray] = {}
        for role, proj in self._items():
            prefix = names[role]
            if linear or role == "out":
                named[f"{prefix}.weight"] = proj.weight.T.copy()
                if proj.bias is not None:
                    named[f"{prefix}.bias"] = proj.bias
            else:
                named[prefix] = proj.weight
        for name in ("q_norm", "k_norm"):
            if getattr(self, name) is not None:
                named[f"{name}.weight"] = getattr(self, name)
        return named

    def _items(self) -> list[tuple[str, Projection]]:
        items = [(role, getattr(self, role)) for role in ("query", "latent", "key", "value", "out")]
        return [(role, proj) for role, proj in items if proj is not None]


def init_parameters(
    config: AttentionConfig, d_in: int, d_kv: int | None = None
) -> Parameters | None:
    """The parameters torch creates after ``torch.manual_seed(config.seed)``, in the book's order.

    trainable: ``torch.rand(d_in, d_out)`` for query, key, value. linear: three
    ``nn.Linear(d_in, d_out, bias=qkv_bias)``. multi-head: those, then ``out_proj =
    nn.Linear(d_out, d_out)``. gqa/mqa (GroupedQueryAttention): W_key, W_value (to
    kv_heads·head_dim), W_query, then out_proj without bias. mla (MultiHeadLatentAttention):
    W_query, W_DKV (to latent_dim), W_UK, W_UV (from it), out_proj with bias. Keys and values
    read ``d_kv`` columns (cross-attention's memory; default ``d_in``). ``config`` must be resolved.
    """
    spec = config.spec()
    if spec.projections == "none":
        return None
    assert config.d_out is not None
    d_out, d_kv = config.d_out, d_in if d_kv is None else d_kv
    gen = TorchCPUGenerator(config.seed)
    if spec.projections == "rand":
        q, k, v = (Projection(gen.rand(fan_in, d_out)) for fan_in in (d_in, d_kv, d_kv))
        return Parameters(q, k, v)

    def linear(fan_in: int, fan_out: int, bias: bool) -> Projection:
        weight, b = gen.linear(fan_in, fan_out, bias)
        return Projection(weight.T.copy(), b)

    bias = config.qkv_bias
    latent = None
    if spec.projections == "latent":
        assert spec.latent_dim is not None
        q = linear(d_in, d_out, bias)
        latent = linear(d_kv, spec.latent_dim, bias)
        k, v = (linear(spec.latent_dim, d_out, bias) for _ in range(2))
    elif spec.kv_first:
        k, v = (linear(d_kv, spec.kv_heads * spec.head_dim, bias) for _ in range(2))
        q = linear(d_in, d_out, bias)
    else:
        q = linear(d_in, d_out, bias)
        k, v = (linear(d_kv, d_out, bias) for _ in range(2))
    out = None if spec.out_bias is None else linear(d_out, d_out, spec.out_bias)
    return Parameters(q, k, v, out, latent)


def parameters_from_named(
    named: dict[str, np.ndarray],
    config: AttentionConfig,
    d_in: int,
    source: str,
    d_kv: int | None = None,
) -> Parameters:
    """Build parameters from book-named arrays, checking keys and shapes against the input.

    Either orientation is accepted (``W_query`` or ``W_query.weight``); the output projection
    belongs to the multi-head family, ``W_DKV``/``W_UK``/``W_UV`` to mla. ``d_out`` comes from
    the arrays when the config leaves it open; key/value widths (gqa) and the latent width are
    read from the arrays and checked against the resolved config by :func:`attncli.compute`.
    Raises InputError naming ``source`` and the key on any mismatch.
    """
    if config.mode == "simple":
        raise InputError(f"{source}: simple mode has no weights; pick --mode trainable, linear ...")
    d_kv = d_in if d_kv is None else d_kv
    preset = PRESETS[config.mode]
    names = LATENT_NAMES if preset.projections == "latent" else NAMES
    prefixes = [names[r] for r in ("query", "latent", "key", "value") if r in names]
    expected = set(prefixes) | {f"{p}.{part}" for p in prefixes for part in ("weight", "bias")}
    if preset.out_bias is not None:
        expected |= {"out_proj.weight", "out_proj.bias"}
    if config.qk_norm:  # torch.nn.RMSNorm / Hugging Face name it weight, the book's Qwen3 scale
        expected |= {f"{n}.{p}" for n in ("q_norm", "k_norm") for p in ("weight", "scale")}
    unknown = sorted(set(named) - expected)
    norms = [key for key in unknown if key.split(".")[0] in ("q_norm", "k_norm")]
    if norms and not config.qk_norm:
        raise InputError(f"{source}: holds QK-norm weights ({norms[0]!r}); add --qk-norm")
    if unknown:
        raise InputError(
            f"{source}: unknown key {unknown[0]!r} for mode {config.mode}; "
            f"expected {', '.join(sorted(expected))}"
        )
    arrays = {key: _float_array(value, source, key) for key, value in named.items()}

    def matrix(prefix: str, fan_in: int, d_out: int | None) -> np.ndarray:
        bare, linear = prefix in arrays, f"{prefix}.weight" in arrays
        if bare and linear:
            raise InputError(f"{source}: both {prefix!r} and '{prefix}.weight' given; keep one")
        if not (bare or linear):
            raise InputError(f"{source}: missing key '{prefix}.weight' (or {prefix!r})")
        key = prefix if bare else f"{prefix}.weight"
        mat = arrays[key] if bare else arrays[key].T
        want = (fan_in, d_out if d_out is not None else mat.shape[-1])
        if mat.shape != want:
            shown = want if bare else want[::-1]
            layout = "(d_in, d_out)" if bare else "(d_out, d_in)"
            raise InputError(
                f"{source}: {key!r} has shape {_shape(arrays[key])}, "
                f"expected {_shape(shown)} {layout}"
            )
        return mat

    def bias(prefix: str, d_out: int) -> np.ndarray | None:
        b = arrays.get(f"{prefix}.bias")
        if b is not None and b.shape != (d_out,):
            raise InputError(
                f"{source}: '{prefix}.bias' has shape {_shape(b)}, expected ({d_out},) (d_out,)"
            )
        return b

    def projection(prefix: str, fan_in: int, d_out: int | None) -> Projection:
        mat = matrix(prefix, fan_in, d_out)
        return Projection(mat, bias(prefix, mat.shape[1]))

    query = projection("W_query", d_in, config.d_out)
    d_out = query.weight.shape[1]
    latent = None
    if preset.projections == "latent":
        latent = projection("W_DKV", d_kv, config.latent_dim)
        key, value = (projection(p, latent.weight.shape[1], d_out) for p in ("W_UK", "W_UV"))
    elif preset.grouped:
        key = projection("W_key", d_kv, None)
        value = projection("W_value", d_kv, key.weight.shape[1])
    else:
        key, value = (projection(p, d_kv, d_out) for p in ("W_key", "W_value"))
    out = None
    if preset.out_bias is not None:
        # back to d_out (the book's classes) or to the model's width (heads·head_dim may differ)
        out = projection("out_proj", d_out, None)
    norms = [_norm_weight(arrays, name, source) for name in ("q_norm", "k_norm")]
    return Parameters(query, key, value, out, latent, *norms)


def _norm_weight(arrays: dict[str, np.ndarray], name: str, source: str) -> np.ndarray | None:
    """``name.weight`` or ``name.scale`` (one, 1-D), or None; its length is checked later."""
    found = [key for key in (f"{name}.weight", f"{name}.scale") if key in arrays]
    if len(found) > 1:
        raise InputError(f"{source}: both {found[0]!r} and {found[1]!r} given; keep one")
    if not found:
        return None
    w = arrays[found[0]]
    if w.ndim != 1:
        raise InputError(f"{source}: {found[0]!r} must be 1-D (head_dim,), got {_shape(w)}")
    return w


def _float_array(value: np.ndarray, source: str, key: str) -> np.ndarray:
    arr = np.asarray(value)
    if arr.dtype.kind not in "fiu" or arr.ndim not in (1, 2):
        raise InputError(
            f"{source}: {key!r} must be a 1-D or 2-D array of numbers, got {arr.dtype} {arr.ndim}-D"
        )
    if not np.isfinite(arr).all():
        raise InputError(f"{source}: {key!r} contains NaN or infinity")
    return arr


def _shape(shape: tuple[int, ...] | np.ndarray) -> str:
    dims = shape.shape if isinstance(shape, np.ndarray) else shape
    return "(" + ", ".join(map(str, dims)) + ("," if len(dims) == 1 else "") + ")"
