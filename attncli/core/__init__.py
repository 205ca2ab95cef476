"""The math: engine-agnostic attention modes returning named intermediate steps."""

from attncli.core.attention import compute
from attncli.core.config import DTYPES, MODES, AttentionConfig
from attncli.core.params import Parameters, Projection, init_parameters
from attncli.core.result import STEPS, AttentionResult

__all__ = [
    "DTYPES",
    "MODES",
    "STEPS",
    "AttentionConfig",
    "AttentionResult",
    "Parameters",
    "Projection",
    "compute",
    "init_parameters",
]
