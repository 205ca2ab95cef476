"""attncli: see every intermediate matrix of self-attention, computed from your own embeddings.

>>> import attncli
>>> r = attncli.compute([[0.43, 0.15, 0.89], [0.55, 0.87, 0.66]], mode="trainable", d_out=2)
>>> r.weights.shape
(2, 2)
"""

from attncli.core import AttentionConfig, AttentionResult, Parameters, Projection, compute
from attncli.errors import AttncliError, ConfigError, InputError, OutputError
from attncli.io.readers import Embeddings, load_embeddings

__version__ = "0.1.0"

__all__ = [
    "AttentionConfig",
    "AttentionResult",
    "AttncliError",
    "ConfigError",
    "Embeddings",
    "InputError",
    "OutputError",
    "Parameters",
    "Projection",
    "__version__",
    "compute",
    "load_embeddings",
]
