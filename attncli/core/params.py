"""The learnable parameters of the weighted modes, their seeded creation and their file names.

Internally every projection is stored the way it is applied, ``x @ weight + bias`` with ``weight``
of shape ``(d_in, d_out)``. Files use the book's names: ``W_query`` (d_in, d_out) for the
trainable mode's bare matrices, ``W_query.weight`` (d_out, d_in) + ``.bias`` for ``nn.Linear``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from attncli.core.config import AttentionConfig
from attncli.errors import InputError
from attncli.init import TorchCPUGenerator

ROLES = ("query", "key", "value")


@dataclass(frozen=True)
class Projection:
    """One affine map ``x @ weight + bias``: weight (d_in, d_out), bias (d_out,) or None."""

    weight: np.ndarray
    bias: np.ndarray | None = None


@dataclass(frozen=True)
class Parameters:
    """Query, key and value projections, plus the output projection of multi-head attention."""

    query: Projection
    key: Projection
    value: Projection
    out: Projection | None = None

    def named(self, linear: bool) -> dict[str, np.ndarray]:
        """The parameters under the book's names (``linear``: nn.Linear orientation)."""
        named: dict[str, np.ndarray] = {}
        for role, proj in self._items():
            prefix = "out_proj" if role == "out" else f"W_{role}"
            if linear or role == "out":
                named[f"{prefix}.weight"] = proj.weight.T.copy()
                if proj.bias is not None:
                    named[f"{prefix}.bias"] = proj.bias
            else:
                named[prefix] = proj.weight
        return named

    def _items(self) -> list[tuple[str, Projection]]:
        items = [(role, getattr(self, role)) for role in ROLES]
        return items + ([("out", self.out)] if self.out is not None else [])


def init_parameters(config: AttentionConfig, d_in: int) -> Parameters | None:
    """The parameters torch creates after ``torch.manual_seed(config.seed)``, in the book's order.

    trainable: ``torch.rand(d_in, d_out)`` for query, key, value. linear: three
    ``nn.Linear(d_in, d_out, bias=qkv_bias)``. multi-head: those, then ``out_proj =
    nn.Linear(d_out, d_out)``. ``config`` must be resolved.
    """
    if config.mode == "simple":
        return None
    assert config.d_out is not None
    gen = TorchCPUGenerator(config.seed)
    if config.mode == "trainable":
        q, k, v = (Projection(gen.rand(d_in, config.d_out)) for _ in ROLES)
        return Parameters(q, k, v)

    def linear(fan_in: int, fan_out: int, bias: bool) -> Projection:
        weight, b = gen.linear(fan_in, fan_out, bias)
        return Projection(weight.T.copy(), b)

    q, k, v = (linear(d_in, config.d_out, config.qkv_bias) for _ in ROLES)
    out = linear(config.d_out, config.d_out, True) if config.mode == "multi-head" else None
    return Parameters(q, k, v, out)


def parameters_from_named(
    named: dict[str, np.ndarray], config: AttentionConfig, d_in: int, source: str
) -> Parameters:
    """Build parameters from book-named arrays, checking keys and shapes against the input.

    Either orientation is accepted for query/key/value (``W_query`` or ``W_query.weight``); the
    output projection exists exactly in multi-head mode. ``d_out`` comes from the arrays when the
    config leaves it open. Raises InputError naming ``source`` and the key on any mismatch.
    """
    if config.mode == "simple":
        raise InputError(f"{source}: simple mode has no weights; pick --mode trainable, linear ...")
    expected = {f"W_{r}" for r in ROLES} | {f"W_{r}.{p}" for r in ROLES for p in ("weight", "bias")}
    if config.mode == "multi-head":
        expected |= {"out_proj.weight", "out_proj.bias"}
    unknown = sorted(set(named) - expected)
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

    query_w = matrix("W_query", d_in, config.d_out)
    d_out = query_w.shape[1]
    projections = [Projection(query_w, bias("W_query", d_out))]
    projections += [
        Projection(matrix(f"W_{r}", d_in, d_out), bias(f"W_{r}", d_out)) for r in ROLES[1:]
    ]
    out = None
    if config.mode == "multi-head":
        out = Projection(matrix("out_proj", d_out, d_out), bias("out_proj", d_out))
    return Parameters(*projections, out=out)


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
