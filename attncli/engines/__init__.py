"""Engines: the only place that knows which array library and device do the arithmetic.

numpy is the default on the CPU (fast start, no torch import). torch is imported only when asked
for (``--engine torch``, a ``--device`` other than cpu, a half dtype) or when ``auto`` finds a GPU
and work large enough for it. On the CPU ``auto`` always picks numpy: measured end to end
(torch's import included) numpy is the better choice, or within 1.1x of it, from 6 to 65,536
tokens (BENCHMARKS.md).
"""

from __future__ import annotations

import importlib.util
import platform
import sys
from pathlib import Path

from attncli.engines.base import Engine
from attncli.errors import ConfigError

ENGINES = ("auto", "numpy", "torch")
NUMPY_DTYPES = ("float32", "float64")
# With a GPU present, ``auto`` moves to torch from this many tokens on (not yet measured on a GPU).
GPU_TORCH_TOKENS = 4096


def torch_installed() -> bool:
    """Whether torch can be imported, found without importing it."""
    return importlib.util.find_spec("torch") is not None


def gpu_present() -> bool:
    """Whether a CUDA or MPS device is likely there, found without importing torch."""
    nvidia = Path("/proc/driver/nvidia/gpus")
    if nvidia.is_dir() and any(nvidia.iterdir()):
        return True
    return sys.platform == "darwin" and platform.machine() == "arm64"


def get_engine(
    name: str = "auto", device: str = "auto", dtype: str = "float32", n_tokens: int = 0
) -> Engine:
    """The engine for ``name`` on ``device``, checked to support ``dtype``.

    ``auto`` is numpy unless torch is needed (a half dtype, a non-CPU ``device``), or a GPU is
    present, torch installed and the input has at least :data:`GPU_TORCH_TOKENS` tokens.
    """
    if name not in ENGINES:
        raise ConfigError(f"unknown engine {name!r}; choose one of {', '.join(ENGINES)}")
    if name == "auto":
        wants_torch = dtype not in NUMPY_DTYPES or device not in ("auto", "cpu")
        on_gpu = device == "auto" and n_tokens >= GPU_TORCH_TOKENS and gpu_present()
        name = "torch" if wants_torch or (on_gpu and torch_installed()) else "numpy"
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


__all__ = ["ENGINES", "GPU_TORCH_TOKENS", "Engine", "get_engine", "gpu_present", "torch_installed"]
