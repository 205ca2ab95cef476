"""Engines: the only place that knows which array library and device do the arithmetic.

numpy is the default for small work on the CPU (fast start, no torch import). torch is imported
only when asked for (``--engine torch``, a ``--device`` other than cpu) or when ``auto`` finds the
work large enough for it to win.
"""

from __future__ import annotations

import importlib.util

from attncli.engines.base import Engine
from attncli.errors import ConfigError

ENGINES = ("auto", "numpy", "torch")
NUMPY_DTYPES = ("float32", "float64")
# ``auto`` switches to torch from this many tokens on (measured: see benchmarks/).
AUTO_TORCH_TOKENS = 2048


def torch_installed() -> bool:
    """Whether torch can be imported, found without importing it."""
    return importlib.util.find_spec("torch") is not None


def get_engine(
    name: str = "auto", device: str = "auto", dtype: str = "float32", n_tokens: int = 0
) -> Engine:
    """The engine for ``name`` on ``device``, checked to support ``dtype``.

    ``auto`` is numpy unless torch is needed (a half dtype, a non-CPU ``device``) or installed and
    the input has at least :data:`AUTO_TORCH_TOKENS` tokens.
    """
    if name not in ENGINES:
        raise ConfigError(f"unknown engine {name!r}; choose one of {', '.join(ENGINES)}")
    if name == "auto":
        wants_torch = dtype not in NUMPY_DTYPES or device not in ("auto", "cpu")
        big = n_tokens >= AUTO_TORCH_TOKENS and torch_installed()
        name = "torch" if wants_torch or big else "numpy"
    if name == "numpy":
        if device not in ("auto", "cpu"):
            raise ConfigError(
                f"--device {device} needs --engine torch (numpy runs on the CPU only)"
            )
        if dtype not in NUMPY_DTYPES:
            raise ConfigError(f"--dtype {dtype} needs --engine torch (numpy: float32, float64)")
        from attncli.engines.numpy_engine import NumpyEngine

        return NumpyEngine()
    if not torch_installed():
        raise ConfigError('the torch engine needs torch: pip install "attncli[torch]"')
    from attncli.engines.torch_engine import TorchEngine

    engine = TorchEngine(device)
    engine.check_dtype(dtype)
    return engine


__all__ = ["AUTO_TORCH_TOKENS", "ENGINES", "Engine", "get_engine", "torch_installed"]
