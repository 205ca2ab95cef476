"""Engines: the only place that knows which array library and device do the arithmetic."""

from __future__ import annotations

from attncli.engines.base import Engine
from attncli.errors import ConfigError

ENGINES = ("numpy",)


def get_engine(name: str = "numpy") -> Engine:
    """The engine called ``name``. Only numpy exists today; torch plugs in here, imported lazily."""
    if name == "numpy":
        from attncli.engines.numpy_engine import NumpyEngine

        return NumpyEngine()
    raise ConfigError(f"unknown engine {name!r}; available: {', '.join(ENGINES)}")


__all__ = ["ENGINES", "Engine", "get_engine"]
