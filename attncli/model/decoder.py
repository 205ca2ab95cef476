"""The Llama-style decoders (Llama 3, Mistral, Qwen2, Qwen3) as configuration of one decoder.

Per layer: ``h += o_proj(attention(RMSNorm(h)))``, then ``h += down(silu(gate(m)) · up(m))`` with
``m = RMSNorm(h)``. The attention is :func:`attncli.compute` in gqa mode with the layer's real
q/k/v/o projections, causal, with RoPE (Llama 3's scaled frequencies where configured), QK-norm
with its learned weights (Qwen3) and the layer's sliding window (Mistral; Qwen's sliding layers).
What differs between the families is a row of :data:`FAMILIES`, never copied code; anything in a
config that this decoder does not compute is refused by name.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np

from attncli.core import AttentionResult, Parameters, Projection, compute
from attncli.errors import ConfigError
from attncli.model.transformer import TransformerModel, _ConfigNumbers, _Tensors

Bias = Literal["always", "never", "config"]  # "config": the config's attention_bias


@dataclass(frozen=True)
class Family:
    """How one model_type configures the decoder."""

    qkv_bias: Bias = "config"
    out_bias: Bias = "config"
    qk_norm: bool = False
    window: Literal["none", "every", "layers"] = "none"  # "layers": Qwen's sliding layers


FAMILIES: dict[str, Family] = {
    "llama": Family(),
    "mistral": Family(qkv_bias="never", out_bias="never", window="every"),
    "qwen2": Family(qkv_bias="always", out_bias="never", window="layers"),
    "qwen3": Family(qk_norm=True, window="layers"),
}
ROPE_TYPES = ("default", "llama3")


class DecoderModel(TransformerModel):
    """A causal decoder of one of :data:`FAMILIES`; same interface as the BERT/GPT-2 model."""

    family = "decoder"
    causal = True

    def __init__(self, folder: Path, config: dict, tensors: Mapping[str, np.ndarray]) -> None:
        self.folder, self.config, self.arch = folder, config, config["model_type"]
        self.kind = FAMILIES[self.arch]
        number = _ConfigNumbers(folder / "config.json", config)
        self.n_layers = number(int, "num_hidden_layers")
        self.n_heads = number(int, "num_attention_heads")
        self.hidden = number(int, "hidden_size")
        self.max_tokens = number(int, "max_position_embeddings")
        self.eps = number(float, "rms_norm_eps", default=1e-6)
        self.kv_heads = (
            number(int, "num_key_value_heads")
            if config.get("num_key_value_heads") is not None
            else self.n_heads
        )
        self.head_dim = (
            number(int, "head_dim") if config.get("head_dim") is not None else 0
        ) or self.hidden // self.n_heads
        if self.n_heads < 1 or self.kv_heads < 1 or self.n_heads % self.kv_heads:
            raise ConfigError(
                f"{folder}: num_key_value_heads {self.kv_heads} does not divide "
                f"num_attention_heads {self.n_heads}"
            )
        self._check_options()
        self.rope_base, self.rope_type, self.rope_freqs = self._rope()
        self.windows = self._windows(number)
        self.t = _Tensors(tensors, "model.", folder)
        self._tokenizer = None

    # ---- configuration -----------------------------------------------------------------------

    def _refuse(self, key: str, value: object, wanted: str) -> None:
        raise ConfigError(
            f"{self.folder}: {key} = {value!r} is not supported for {self.arch} (only {wanted})"
        )

    def _check_options(self) -> None:
        c = self.config
        act = c.get("hidden_act", "silu")
        if act != "silu":
            self._refuse("hidden_act", act, "'silu'")
        if c.get("mlp_bias", False):
            self._refuse("mlp_bias", c["mlp_bias"], "false")
        rotary = c.get("partial_rotary_factor", 1.0)
        if rotary not in (None, 1, 1.0):
            self._refuse("partial_rotary_factor", rotary, "1")
        if self.head_dim % 2:
            self._refuse("head_dim", self.head_dim, "an even number (RoPE rotates pairs)")

    def _rope(self) -> tuple[float, str, tuple[float, ...] | None]:
        """(θ base, rope type, frequencies when the type changes them), from ``rope_parameters``
        (transformers 5) or ``rope_theta`` and ``rope_scaling`` (4.x)."""
        c = self.config
        params = c.get("rope_parameters") or c.get("rope_scaling") or {}
        if not isinstance(params, dict):
            self._refuse("rope_parameters", params, "an object")
        kind = params.get("rope_type", params.get("type", "default"))
        if kind not in ROPE_TYPES:
            self._refuse("rope type", kind, " or ".join(repr(k) for k in ROPE_TYPES))
        if params.get("partial_rotary_factor", 1.0) not in (1, 1.0):
            self._refuse("partial_rotary_factor", params["partial_rotary_factor"], "1")
        base = params.get("rope_theta", c.get("rope_theta", 10000.0))
        if isinstance(base, bool) or not isinstance(base, (int, float)) or not base > 0:
            self._refuse("rope_theta", base, "a positive number")
        if kind == "default":
            return float(base), kind, None
        return float(base), kind, self._llama3_freqs(float(base), params)

    def _llama3_freqs(self, base: float, p: dict) -> tuple[float, ...]:
        """Llama 3.1's frequencies: long wavelengths divided by ``factor``, short ones kept,
        the band between interpolated smoothly (as transformers' ``_compute_llama3_parameters``,
        in float32)."""
        keys = ("factor", "low_freq_factor", "high_freq_factor", "original_max_position_embeddings")
        for key in keys:
            value = p.get(key)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0:
                self._refuse(f"rope llama3 {key}", value, "a positive number")
        factor, low, high, old = (p[k] for k in keys)
        if high == low:
            self._refuse("rope llama3 high_freq_factor", high, "a value unlike low_freq_factor")
        f32 = np.float32
        d = self.head_dim
        inv = f32(1.0) / f32(base) ** (np.arange(0, d, 2, dtype=f32) / f32(d))
        wavelen = f32(2 * math.pi) / inv
        low_wavelen, high_wavelen = old / low, old / high
        scaled = np.where(wavelen > low_wavelen, inv / f32(factor), inv)
        smooth = (f32(old) / wavelen - f32(low)) / f32(high - low)
        smoothed = (1 - smooth) * scaled / f32(factor) + smooth * scaled
        medium = ~(wavelen < high_wavelen) & ~(wavelen > low_wavelen)
        return tuple(float(x) for x in np.where(medium, smoothed, scaled).astype(f32))

    def _windows(self, number: _ConfigNumbers) -> tuple[int | None, ...]:
        """Each layer's sliding window (keys it sees, itself included), None for global."""
        c = self.config
        n = self.n_layers
        window = number(int, "sliding_window") if c.get("sliding_window") is not None else None
        if window is not None and window < 1:
            self._refuse("sliding_window", window, "a positive number or null")
        kind = self.kind.window
        if kind == "none" or window is None:
            if kind == "none" and window is not None:
                self._refuse("sliding_window", window, "null")
            return (None,) * n
        if kind == "every":
            return (window,) * n
        if not c.get("use_sliding_window", False):
            return (None,) * n
        types = c.get("layer_types")
        if types is None:  # transformers 4.x configs: sliding from max_window_layers on
            first = number(int, "max_window_layers", default=0)
            types = ["sliding_attention" if i >= first else "full_attention" for i in range(n)]
        if not isinstance(types, list) or len(types) != n:
            self._refuse("layer_types", types, f"a list of {n} layer types")
        for t in types:
            if t not in ("sliding_attention", "full_attention"):
                self._refuse("layer type", t, "'sliding_attention' or 'full_attention'")
        return tuple(window if t == "sliding_attention" else None for t in types)

    def layer_info(self, layer: int, n_tokens: int, head: int | None = None) -> dict[str, object]:
        info: dict[str, object] = {"family": self.arch, "layer": layer}
        if head is not None:
            info["head"] = head
            info["kv_head"] = head // (self.n_heads // self.kv_heads)
        w = self.windows[layer]
        info["window"] = "global" if w is None else f"sliding {w}"
        scaled = "" if self.rope_type == "default" else f", {self.rope_type} scaling"
        info["positions"] = f"0–{n_tokens - 1} (RoPE θ {self.rope_base:g}{scaled})"
        return info

    # ---- forward pass ------------------------------------------------------------------------

    def attention_parameters(self, layer: int) -> Parameters:
        """The layer's q/k/v/o projections as applied (``x @ W + b``), and QK-norm's weights."""
        self._check_layer(layer)
        t, p = self.t, f"layers.{layer}.self_attn."
        biased = {
            role: mode == "always" or (mode == "config" and bool(self.config.get("attention_bias")))
            for role, mode in (("qkv", self.kind.qkv_bias), ("out", self.kind.out_bias))
        }

        def proj(name: str, bias: bool) -> Projection:
            return Projection(t[f"{p}{name}.weight"].T, t[f"{p}{name}.bias"] if bias else None)

        q, k, v = (proj(n, biased["qkv"]) for n in ("q_proj", "k_proj", "v_proj"))
        out = proj("o_proj", biased["out"])
        if not self.kind.qk_norm:
            return Parameters(q, k, v, out)
        q_norm, k_norm = t[f"{p}q_norm.weight"], t[f"{p}k_norm.weight"]
        return Parameters(q, k, v, out, q_norm=q_norm, k_norm=k_norm)

    def _options(self, layer: int, p: Parameters) -> dict[str, object]:
        """The spec of layer ``layer``'s attention, beyond mode and heads."""
        return dict(
            causal=True, window=self.windows[layer], rope=True, rope_base=self.rope_base,
            rope_freqs=self.rope_freqs, qk_norm=self.kind.qk_norm, rms_eps=self.eps,
            qkv_bias=p.query.bias is not None, parameters=p,
        )  # fmt: skip

    def forward(
        self, ids: np.ndarray, tokens: tuple[str, ...], upto: int | None = None, **run: object
    ) -> list[tuple[np.ndarray, AttentionResult]]:
        """(hidden state entering layer i, layer i's attention) for i = 0 … ``upto``."""
        last = self.n_layers - 1 if upto is None else upto
        self._check_layer(last)
        h = self.t["embed_tokens.weight"][ids]
        layers = []
        for i in range(last + 1):
            attn_in = self._rms(h, f"layers.{i}.input_layernorm")
            result = self.attention(attn_in, tokens, i, **run)
            layers.append((h, result))
            if i < last:
                h = self._block(h, result.context.astype(np.float32), i)
        return layers

    def attention(
        self, x: np.ndarray, tokens: tuple[str, ...], layer: int, **run: object
    ) -> AttentionResult:
        """Layer ``layer``'s grouped-query attention of the RMSNorm'd inputs ``x``."""
        p = self.attention_parameters(layer)
        return compute(
            x, tokens, mode="gqa", heads=self.n_heads, kv_heads=self.kv_heads,
            **self._options(layer, p), **run,
        )  # fmt: skip

    def head(self, attn_in: np.ndarray, tokens: tuple[str, ...], layer: int, head: int,
             **run: object) -> AttentionResult:  # fmt: skip
        """One query head as a single-head computation: its columns of q_proj and its key/value
        head's columns of k_proj and v_proj (head // group), with the layer's RoPE, QK-norm and
        window; explain and all views work on it."""
        if not 0 <= head < self.n_heads:
            raise ConfigError(f"--head {head}: the model has heads 0–{self.n_heads - 1}")
        p = self.attention_parameters(layer)
        d = self.head_dim
        g = head // (self.n_heads // self.kv_heads)

        def cols(r: Projection, i: int) -> Projection:
            part = slice(i * d, (i + 1) * d)
            return Projection(r.weight[:, part], None if r.bias is None else r.bias[part])

        one = Parameters(cols(p.query, head), cols(p.key, g), cols(p.value, g),
                         q_norm=p.q_norm, k_norm=p.k_norm)  # fmt: skip
        return compute(attn_in, tokens, mode="linear", **self._options(layer, one), **run)

    def _block(self, h: np.ndarray, attn: np.ndarray, i: int) -> np.ndarray:
        """The rest of layer ``i`` after attention: residual, RMSNorm, SwiGLU feed-forward."""
        t, p = self.t, f"layers.{i}."
        h = h + attn
        m = self._rms(h, f"{p}post_attention_layernorm")
        gate = m @ t[f"{p}mlp.gate_proj.weight"].T
        silu = gate * (0.5 + 0.5 * np.tanh(0.5 * gate))  # x·sigmoid(x), without overflow
        inner = silu * (m @ t[f"{p}mlp.up_proj.weight"].T)
        return (h + inner @ t[f"{p}mlp.down_proj.weight"].T).astype(np.float32)

    def _rms(self, x: np.ndarray, name: str) -> np.ndarray:
        ms = np.mean(np.square(x), axis=-1, keepdims=True)
        return (x / np.sqrt(ms + np.float32(self.eps)) * self.t[f"{name}.weight"]).astype(
            np.float32
        )
