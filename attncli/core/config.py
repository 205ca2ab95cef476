"""The options of one attention computation, the spec a single pipeline reads, and their checks.

Every mode is a preset of :class:`AttentionSpec`: how queries/keys/values are projected, how many
query and key/value heads there are, position encoding, score mask, QK-norm, score soft-capping
and output projection. Options (``--window``, ``--rope``, ``--qk-norm``, ``--softcap``,
``--kv-heads``) set the remaining fields.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Literal, get_args

from attncli.errors import ConfigError

Mode = Literal["simple", "trainable", "linear", "multi-head", "gqa", "mqa", "mla"]
DType = Literal["float32", "float64", "float16", "bfloat16"]
Projections = Literal["none", "rand", "linear", "latent"]
QkNormScope = Literal["head", "all"]
MODES: tuple[str, ...] = get_args(Mode)
QK_NORM_SCOPES: tuple[str, ...] = get_args(QkNormScope)
DTYPES: tuple[str, ...] = get_args(DType)
SEED_MAX = 2**64 - 1
# The smallest positive (subnormal) and the largest finite number of each dtype
DTYPE_RANGE = {
    "float16": (2.0**-24, 65504.0),
    "bfloat16": (2.0**-133, 3.3895313892515355e38),
    "float32": (2.0**-149, 3.4028234663852886e38),
    "float64": (5e-324, 1.7976931348623157e308),
}
RMS_EPS = 1e-6  # QK-norm's RMSNorm epsilon, as Qwen3 and Gemma 3


@dataclass(frozen=True)
class Preset:
    """What a mode fixes: the projections, the output projection (None, or with/without bias;
    having one means heads are split: the multi-head family), whether key/value heads are an
    option (``grouped``) or fixed (``kv_heads``: multi-query), and whether the seeded key/value
    layers are created before the query's (GroupedQueryAttention's order)."""

    projections: Projections
    out_bias: bool | None = None  # None: no output projection
    kv_heads: int | None = None
    kv_first: bool = False
    grouped: bool = False

    @property
    def split(self) -> bool:
        return self.out_bias is not None


PRESETS: dict[str, Preset] = {
    "simple": Preset("none"),
    "trainable": Preset("rand"),  # the book's SelfAttention_v1: torch.rand matrices
    "linear": Preset("linear"),  # SelfAttention_v2 / CausalAttention: nn.Linear
    "multi-head": Preset("linear", out_bias=True),  # MultiHeadAttention
    "gqa": Preset("linear", out_bias=False, kv_first=True, grouped=True),  # GroupedQueryAttention
    "mqa": Preset("linear", out_bias=False, kv_heads=1, kv_first=True, grouped=True),
    "mla": Preset("latent", out_bias=True),  # MultiHeadLatentAttention
}
SPLIT_MODES = tuple(m for m, p in PRESETS.items() if p.split)


@dataclass(frozen=True)
class AttentionSpec:
    """The one description the pipeline, the engines, explain and the views read.

    Shapes: queries (n, heads·head_dim); keys/values (m, kv_heads·head_dim), m = n unless
    ``cross``; query head h uses key/value head ``h // group`` (consecutive query heads share).
    """

    projections: Projections
    heads: int
    kv_heads: int
    head_dim: int
    latent_dim: int | None
    qk_norm: bool
    qk_norm_scope: QkNormScope  # "head": each head's d numbers; "all": the whole projected row
    rope_base: float | None  # None: no rotary position encoding
    mask: Literal["none", "causal", "window"]
    window: int | None
    scale: float  # the factor the scores are multiplied by (1 when unscaled)
    softcap: float | None  # scores become tanh(s / softcap)·softcap before the mask
    out_bias: bool | None  # None: no output projection
    cross: bool
    kv_first: bool  # seeded creation order: W_key, W_value, then W_query

    @property
    def group(self) -> int:
        """Query heads per key/value head."""
        return self.heads // self.kv_heads

    @property
    def split(self) -> bool:
        """Whether queries are split into heads (the multi-head family), even with one head."""
        return self.out_bias is not None


@dataclass(frozen=True)
class AttentionConfig:
    """How to compute attention. ``None`` fields take the mode's default once the input is known.

    - ``d_out``: width of the query projection (default ``d_in``); ignored by ``simple``.
    - ``heads``: query heads of the multi-head family; must divide ``d_out`` (default 2,
      or 1 when d_out is odd).
    - ``kv_heads``: key/value heads of ``gqa`` (``mqa``: 1); must divide ``heads``.
    - ``latent_dim``: width of ``mla``'s latent C (default ``max(16, d_out // 8)`` as the book).
    - ``window``: causal sliding window W: query i sees keys i-W+1 … i.
    - ``rope`` / ``rope_base``: rotate queries and keys per head by position (Llama's rotate-half).
    - ``rope_freqs``: the head_dim/2 rotation frequencies themselves, when a model's rope scaling
      (Llama 3's) changes them from ``rope_base``'s.
    - ``qk_norm``: RMSNorm of each head's queries and keys before RoPE (eps ``rms_eps``; unit
      weight, or the parameters' ``q_norm``/``k_norm`` weights, of width head_dim).
    - ``qk_norm_scope``: ``"head"`` (Qwen3, Gemma 3: each head's d numbers) or ``"all"`` (OLMo
      2: the whole projected row, all heads' numbers together, before splitting; weights of
      width heads·head_dim for q and kv_heads·head_dim for k).
    - ``scale``: divide scores by √d_k (default: on for every mode but ``simple``); by
      √``scale_dim`` instead when a model says so (Gemma's ``query_pre_attn_scalar``).
    - ``softcap``: soft-cap the (scaled) scores to at most C in size, tanh(s / C)·C, before the mask
      (Gemma 2's ``attn_logit_softcapping``).
    - ``qkv_bias``: give the query/key/value Linear layers a bias.
    - ``cross``: keys and values come from another input (set by :func:`attncli.compute`).
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
    kv_heads: int | None = None
    latent_dim: int | None = None
    window: int | None = None
    rope: bool = False
    rope_base: float = 10000.0
    qk_norm: bool = False
    cross: bool = False
    rope_freqs: tuple[float, ...] | None = None
    rms_eps: float = RMS_EPS
    scale_dim: float | None = None
    softcap: float | None = None
    qk_norm_scope: QkNormScope = "head"

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
        preset = PRESETS[self.mode]
        simple = self.mode == "simple"
        if simple and self.d_out not in (None, d_in):
            raise ConfigError(
                f"--d-out {self.d_out} needs weights: simple mode has none, "
                f"so d_out = d_in = {d_in}"
            )
        d_out = d_in if simple or self.d_out is None else self.d_out
        if d_out < 1:
            raise ConfigError(f"--d-out must be at least 1, got {d_out}")
        heads = self._heads(preset, d_out)
        kv_heads = self._kv_heads(preset, heads)
        latent = self._latent_dim(d_out)
        if self.qkv_bias and self.mode in ("simple", "trainable"):
            raise ConfigError(f"--qkv-bias needs a mode with Linear layers, not {self.mode}")
        self._check_positions(d_out // heads)
        self._check_scores()
        scale = (not simple) if self.scale is None else self.scale
        return replace(
            self, d_out=d_out, heads=heads, kv_heads=kv_heads, latent_dim=latent, scale=scale
        )

    def _heads(self, preset: Preset, d_out: int) -> int:
        heads = self.heads
        if not preset.split:
            if heads not in (None, 1):
                raise ConfigError(f"--heads {heads} needs --mode {', '.join(SPLIT_MODES)}")
            return 1
        if heads is None:  # 2 heads where they divide d_out (the book's example), else 1
            heads = 2 if d_out % 2 == 0 else 1
        if heads < 1:
            raise ConfigError(f"--heads must be at least 1, got {heads}")
        if d_out % heads:
            raise ConfigError(
                f"--heads {heads} does not divide d_out {d_out}: each head gets d_out/heads "
                f"columns (try --d-out {heads * math.ceil(d_out / heads)} or --heads 1)"
            )
        return heads

    def _kv_heads(self, preset: Preset, heads: int) -> int:
        kv = self.kv_heads
        if not preset.grouped:
            if kv is not None:
                raise ConfigError(f"--kv-heads needs --mode gqa (or mqa), not {self.mode}")
            return heads
        if preset.kv_heads is not None:
            if kv not in (None, preset.kv_heads):
                raise ConfigError(f"--mode mqa has one key/value head; got --kv-heads {kv}")
            return preset.kv_heads
        if kv is None:
            raise ConfigError("--mode gqa needs --kv-heads G (G divides --heads; 1 is mqa)")
        if kv < 1 or heads % kv:
            raise ConfigError(
                f"--kv-heads {kv} does not divide --heads {heads}: each key/value head serves "
                "heads/kv-heads query heads"
            )
        return kv

    def _latent_dim(self, d_out: int) -> int | None:
        if self.mode != "mla":
            if self.latent_dim is not None:
                raise ConfigError(f"--latent-dim needs --mode mla, not {self.mode}")
            return None
        latent = max(16, d_out // 8) if self.latent_dim is None else self.latent_dim
        if latent < 1:
            raise ConfigError(f"--latent-dim must be at least 1, got {latent}")
        return latent

    def _check_positions(self, head_dim: int) -> None:
        if self.window is not None:
            if self.window < 1:
                raise ConfigError(f"--window must be at least 1, got {self.window}")
            if not self.causal:
                raise ConfigError("--window needs --causal (a sliding window looks back only)")
        if self.causal and self.cross:
            raise ConfigError("--causal does not apply to cross-attention (--kv): no shared order")
        if self.rope:
            if self.cross:
                raise ConfigError("--rope needs self-attention: --kv memory has no positions")
            if head_dim % 2:
                raise ConfigError(
                    f"--rope rotates pairs of dimensions: head_dim {head_dim} must be even"
                )
            if not (self.rope_base > 0 and math.isfinite(self.rope_base)):
                raise ConfigError(f"--rope-base must be a positive number, got {self.rope_base}")
            if self.rope_freqs is not None and len(self.rope_freqs) != head_dim // 2:
                raise ConfigError(
                    f"{len(self.rope_freqs)} rope frequencies for head_dim {head_dim} "
                    f"(needs {head_dim // 2})"
                )

    def _check_scores(self) -> None:
        cap = self.softcap
        if cap is not None and (isinstance(cap, bool) or not (cap > 0 and math.isfinite(cap))):
            raise ConfigError(f"--softcap must be a positive, finite number, got {cap}")
        if cap is not None:
            low, high = DTYPE_RANGE[self.dtype]
            if not low / 2 < cap <= high:  # rounded to 0, or past the largest: NaN follows
                raise ConfigError(
                    f"--softcap {cap:g} does not fit {self.dtype} (from {low:g} to {high:g}): "
                    + ("it would become 0" if cap <= low / 2 else "it is beyond the largest number")
                )
        if self.qk_norm_scope not in QK_NORM_SCOPES:
            raise ConfigError(
                f"unknown --qk-norm-scope {self.qk_norm_scope!r}; choose one of "
                f"{', '.join(QK_NORM_SCOPES)}"
            )
        if self.qk_norm_scope != "head" and not self.qk_norm:
            raise ConfigError(f"--qk-norm-scope {self.qk_norm_scope} needs --qk-norm")

    @property
    def head_dim(self) -> int:
        """d_k, the width each head's queries and keys have (needs a resolved config)."""
        assert self.d_out is not None and self.heads is not None, "resolve the config first"
        return self.d_out // self.heads

    @property
    def scale_by(self) -> float:
        """The D of the 1/√D the scores are scaled by: ``scale_dim``, else head_dim."""
        return self.head_dim if self.scale_dim is None else self.scale_dim

    def variant_parts(self) -> list[str]:
        """Short words for the options beyond chapter 3 (kv heads, latent, window, RoPE, ...)."""
        parts = []
        if PRESETS[self.mode].grouped:
            parts.append(f"{self.kv_heads} kv head{'s' if self.kv_heads != 1 else ''}")
        if self.latent_dim is not None:
            parts.append(f"latent {self.latent_dim}")
        if self.window is not None:
            parts.append(f"window {self.window}")
        if self.qk_norm:
            parts.append("QK-norm" + (" over all heads" if self.qk_norm_scope == "all" else ""))
        if self.rope:
            scaled = " (scaled frequencies)" if self.rope_freqs is not None else ""
            parts.append(f"RoPE base {self.rope_base:g}{scaled}")
        if self.softcap is not None:
            parts.append(f"soft-cap {self.softcap:g}")
        if self.cross:
            parts.append("cross-attention")
        return parts

    def spec(self) -> AttentionSpec:
        """The spec of a resolved config."""
        assert self.kv_heads is not None and self.scale is not None, "resolve the config first"
        preset = PRESETS[self.mode]
        mask = "window" if self.window is not None else ("causal" if self.causal else "none")
        return AttentionSpec(
            projections=preset.projections,
            heads=self.heads or 1,
            kv_heads=self.kv_heads,
            head_dim=self.head_dim,
            latent_dim=self.latent_dim,
            qk_norm=self.qk_norm,
            qk_norm_scope=self.qk_norm_scope,
            rope_base=self.rope_base if self.rope else None,
            mask=mask,
            window=self.window,
            scale=1.0 / math.sqrt(self.scale_by) if self.scale else 1.0,
            softcap=self.softcap,
            out_bias=preset.out_bias,
            cross=self.cross,
            kv_first=preset.kv_first,
        )
