"""attncli: see every intermediate matrix of self-attention, computed from your own embeddings.

>>> import attncli
>>> r = attncli.compute([[0.43, 0.15, 0.89], [0.55, 0.87, 0.66]], mode="trainable", d_out=2)
>>> r.weights.shape
(2, 2)

The names below load on first use (PEP 562), so ``import attncli`` (and the ``attn`` command's
start, which must answer Ctrl-C from its first instant) imports neither numpy nor torch.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

__version__ = "0.1.0"

_EXPORTS = {
    "AttentionConfig": "attncli.core",
    "AttentionResult": "attncli.core",
    "Parameters": "attncli.core",
    "Projection": "attncli.core",
    "compute": "attncli.core",
    "AttncliError": "attncli.errors",
    "ConfigError": "attncli.errors",
    "InputError": "attncli.errors",
    "OutputError": "attncli.errors",
    "Embeddings": "attncli.io.readers",
    "load_embeddings": "attncli.io.readers",
}

__all__ = [*sorted(_EXPORTS), "__version__"]

if TYPE_CHECKING:  # what a type checker sees of the lazy names
    from attncli.core import AttentionConfig as AttentionConfig
    from attncli.core import AttentionResult as AttentionResult
    from attncli.core import Parameters as Parameters
    from attncli.core import Projection as Projection
    from attncli.core import compute as compute
    from attncli.errors import AttncliError as AttncliError
    from attncli.errors import ConfigError as ConfigError
    from attncli.errors import InputError as InputError
    from attncli.errors import OutputError as OutputError
    from attncli.io.readers import Embeddings as Embeddings
    from attncli.io.readers import load_embeddings as load_embeddings


def __getattr__(name: str) -> object:
    if name not in _EXPORTS:
        raise AttributeError(f"module 'attncli' has no attribute {name!r}")
    value = getattr(importlib.import_module(_EXPORTS[name]), name)
    globals()[name] = value
    return value
