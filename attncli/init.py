"""Seeded parameter initialisation that reproduces torch's CPU generator in numpy.

``torch.manual_seed(s)`` seeds a 32-bit Mersenne Twister exactly as numpy's legacy ``MT19937``
seeding does; every float32 element consumes one 32-bit word in row-major order. Keeping this in
numpy lets ``attn compute --seed S`` show the parameters torch would create without torch.
"""

from __future__ import annotations

import math

import numpy as np

_MANTISSA = (1 << 24) - 1
_SCALE = 2.0**-24


class TorchCPUGenerator:
    """The stream behind ``torch.rand`` and ``Tensor.uniform_`` on the CPU after ``manual_seed``."""

    def __init__(self, seed: int) -> None:
        if seed < 0:
            seed &= (1 << 64) - 1  # torch wraps negative seeds the same way
        self._bits = np.random.MT19937(0)
        self._bits._legacy_seeding(seed & 0xFFFFFFFF)  # torch keeps the low 32 bits

    def _unit(self, shape: tuple[int, ...]) -> np.ndarray:
        """24-bit uniform draws in [0, 1) as float64, one 32-bit word per element."""
        words = self._bits.random_raw(math.prod(shape)).astype(np.uint64)
        return ((words & _MANTISSA).astype(np.float64) * _SCALE).reshape(shape)

    def rand(self, *shape: int) -> np.ndarray:
        """``torch.rand(*shape)``: float32 in [0, 1)."""
        return self._unit(shape).astype(np.float32)

    def uniform(self, shape: tuple[int, ...], low: float, high: float) -> np.ndarray:
        """``torch.empty(shape).uniform_(low, high)``: in double, rounded once to float32."""
        lo = float(np.float32(low))
        span = float(np.float32(high) - np.float32(low))
        return (self._unit(shape) * span + lo).astype(np.float32)

    def linear(self, fan_in: int, fan_out: int, bias: bool) -> tuple[np.ndarray, np.ndarray | None]:
        """``nn.Linear(fan_in, fan_out, bias)``: weight (fan_out, fan_in) then bias (fan_out,).

        Both are uniform in ±1/√fan_in; the weight's bound is computed the way torch's
        ``kaiming_uniform_(a=√5)`` computes it, so that it rounds to the same float32.
        """
        gain = math.sqrt(2.0 / (1 + math.sqrt(5) ** 2))
        w_bound = math.sqrt(3.0) * (gain / math.sqrt(fan_in))
        weight = self.uniform((fan_out, fan_in), -w_bound, w_bound)
        if not bias:
            return weight, None
        b_bound = 1 / math.sqrt(fan_in)
        return weight, self.uniform((fan_out,), -b_bound, b_bound)
