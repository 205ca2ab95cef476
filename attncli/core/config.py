"""The options of one attention computation, and their checks against the input."""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Literal, get_args

from attncli.errors import ConfigError

Mode = Literal["simple", "trainable", "linear", "multi-head"]
DType = Literal["float32", "float64", "float16", "bfloat16"]
MODES: tuple[str, ...] = get_args(Mode)
DTYPES: tuple[str, ...] = get_args(DType)
SEED_MAX = 2**64 - 1


@dataclass(frozen=True)
class AttentionConfig:
    """How to compute attention. ``None`` fields take the mode's default once the input is known.

    - ``d_out``: width of the projections (default ``d_in``); ignored by ``simple``.
    - ``heads``: number of heads, ``multi-head`` only; must divide ``d_out`` (default 2, or 1
      when d_out is odd).
    - ``scale``: divide scores by √d_k (default: on for every mode but ``simple``).
    - ``qkv_bias``: give the query/key/value Linear layers a bias (``linear``, ``multi-head``).
    - ``seed``: the ``torch.manual_seed`` the parameters are drawn after; also seeds dropout.
    - ``dtype``: float16 and bfloat16 need the torch engine.
    """

    mode: Mode = "simple"
    d_out: int | None = None
    heads: int | None = None
    causal: bool = False
    dropout: float = 0.0
    scale: bool | None = None
    qkv_bias: bool = False
    seed: int = 123
    dtype: DType = "float32"

    def resolved(self, d_in: int) -> AttentionConfig:
        """A copy with every default filled in for an input of width ``d_in``, checked."""
        if self.mode not in MODES:
            raise ConfigError(f"unknown mode {self.mode!r}; choose one of {', '.join(MODES)}")
        if self.dtype not in DTYPES:
            raise ConfigError(f"unknown dtype {self.dtype!r}; choose one of {', '.join(DTYPES)}")
        if not (0.0 <= self.dropout <= 1.0) or math.isnan(self.dropout):
            raise ConfigError(f"--dropout must be between 0 and 1, got {self.dropout}")
        if not 0 <= self.seed <= SEED_MAX:
            raise ConfigError(f"--seed must be between 0 and 2**64-1, got {self.seed}")
        simple = self.mode == "simple"
        if simple and self.d_out not in (None, d_in):
            raise ConfigError(
                f"--d-out {self.d_out} needs weights: simple mode has none, "
                f"so d_out = d_in = {d_in}"
            )
        d_out = d_in if simple or self.d_out is None else self.d_out
        if d_out < 1:
            raise ConfigError(f"--d-out must be at least 1, got {d_out}")
        heads = self.heads
        if self.mode == "multi-head":
            if heads is None:  # 2 heads where they divide d_out (the book's example), else 1
                heads = 2 if d_out % 2 == 0 else 1
            if heads < 1:
                raise ConfigError(f"--heads must be at least 1, got {heads}")
            if d_out % heads:
                raise ConfigError(
                    f"--heads {heads} does not divide d_out {d_out}: each head gets d_out/heads "
                    f"columns (try --d-out {heads * math.ceil(d_out / heads)} or --heads 1)"
                )
        elif heads not in (None, 1):
            raise ConfigError(f"--heads {heads} needs --mode multi-head")
        else:
            heads = 1
        if self.qkv_bias and self.mode in ("simple", "trainable"):
            raise ConfigError(f"--qkv-bias needs --mode linear or multi-head, not {self.mode}")
        scale = (not simple) if self.scale is None else self.scale
        return replace(self, d_out=d_out, heads=heads, scale=scale)

    @property
    def head_dim(self) -> int:
        """d_k, the width each head's queries and keys have (needs a resolved config)."""
        assert self.d_out is not None and self.heads is not None, "resolve the config first"
        return self.d_out // self.heads
