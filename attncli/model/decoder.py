"""The Llama-style decoders (Llama 3, Mistral, Qwen2, Qwen3, Gemma 2, Gemma 3, OLMo 2) as
configuration of one decoder.

Per layer: ``h += o_proj(attention(RMSNorm(h)))``, then ``h += down(act(gate(m)) · up(m))`` with
``m = RMSNorm(h)``. Gemma 2 and 3 also normalise each block's output (sandwich norms), their
RMSNorm weights are 1 + w and their embeddings are scaled by √hidden_size. OLMo 2 normalises only
the outputs: ``h += RMSNorm(o_proj(attention(h)))``, ``h += RMSNorm(down(act(gate(h)) · up(h)))``.
The attention is :func:`attncli.compute` in gqa mode with the layer's real q/k/v/o projections,
causal, with RoPE (Llama 3's scaled frequencies, Gemma 3's per-layer-type bases), QK-norm with
its learned weights (Qwen3, Gemma 3: per head; OLMo 2: over each whole projected row, all heads
together, before splitting), the layer's sliding window (Mistral; Qwen's and Gemma's sliding
layers), Gemma's own score scale and its soft-capping of the scores (``attn_logit_softcapping``,
Gemma 2). ``final_logit_softcapping`` caps only the LM head's logits, which attn model never
computes, so it changes no number shown and is accepted.
What differs between the families is a row of :data:`FAMILIES`, never copied code; anything in a
config that this decoder does not compute is refused by name.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Literal

import numpy as np

from attncli.core import AttentionResult, Parameters, Projection, compute
from attncli.core.config import QkNormScope
from attncli.core.result import KEY_COLUMNS, KEY_ROWS
from attncli.errors import ConfigError, InputError
from attncli.model.activations import gelu_tanh
from attncli.model.transformer import TransformerModel, _ConfigNumbers, _Tensors

Bias = Literal["always", "never", "config"]  # "config": the config's attention_bias


@dataclass(frozen=True)
class Family:
    """How one model_type configures the decoder."""

    qkv_bias: Bias = "config"
    out_bias: Bias = "config"
    qk_norm: QkNormScope | None = None  # "head": each head's q, k; "all": the whole rows
    # "layers": Qwen's sliding layers (with use_sliding_window); "types": layer_types alone
    window: Literal["none", "every", "layers", "types"] = "none"
    # layer types of configs without layer_types: every pattern-th layer global (None: the
    # config's sliding_window_pattern, default 6, as Gemma 3)
    pattern: int | None = None
    act: str = "silu"  # the feed-forward's gate activation, as config.json names it
    # "pre": RMSNorm before attention and feed-forward; "sandwich": before and after both
    # (Gemma); "post": after both only, attention reads the hidden state itself (OLMo 2)
    norms: Literal["pre", "sandwich", "post"] = "pre"
    gemma: bool = False  # (1 + w) norms, scaled embeddings, own score scale
    # attn_logit_softcapping computed (Gemma 2; transformers' Gemma 3 keeps it but never applies
    # it, so there it is refused like anywhere else)
    softcap: bool = False
    rope_by_type: bool = False  # a RoPE per layer type (Gemma 3), else one for every layer


GEMMA = {"window": "types", "act": "gelu_pytorch_tanh", "norms": "sandwich", "gemma": True}
FAMILIES: dict[str, Family] = {
    "llama": Family(),
    "mistral": Family(qkv_bias="never", out_bias="never", window="every"),
    "qwen2": Family(qkv_bias="always", out_bias="never", window="layers"),
    "qwen3": Family(qk_norm="head", window="layers"),
    "gemma2": Family(pattern=2, softcap=True, **GEMMA),
    "gemma3_text": Family(qk_norm="head", rope_by_type=True, **GEMMA),
    "olmo2": Family(qk_norm="all", norms="post"),
}
ROPE_TYPES = ("default", "linear", "llama3")
LAYER_TYPES = ("full_attention", "sliding_attention")


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
        if self.n_heads < 1 or self.kv_heads < 1 or self.n_heads % self.kv_heads:
            raise ConfigError(
                f"{folder}: num_key_value_heads {self.kv_heads} does not divide "
                f"num_attention_heads {self.n_heads}"
            )
        given = config.get("head_dim") is not None
        self.head_dim = number(int, "head_dim") if given else self.hidden // self.n_heads
        if self.head_dim < 1:
            self._refuse("head_dim", self.head_dim, "a positive number")
        if self.eps < 0:
            self._refuse("rms_norm_eps", self.eps, "a number ≥ 0")
        self._check_options()
        self.windows, types = self._windows(number)
        self.ropes = self._ropes(types)
        self.scale_dim = number(float, "query_pre_attn_scalar") if self.kind.gemma else None
        if self.scale_dim is not None and self.scale_dim <= 0:
            self._refuse("query_pre_attn_scalar", self.scale_dim, "a positive number")
        self.softcap = None  # Gemma 2's attn_logit_softcapping (final_logit_softcapping concerns
        # only the LM head's logits, which attn model never computes)
        if self.kind.softcap and config.get("attn_logit_softcapping") is not None:
            self.softcap = number(float, "attn_logit_softcapping")
            if not (self.softcap > 0 and math.isfinite(self.softcap)):
                self._refuse("attn_logit_softcapping", self.softcap, "a positive number or null")
        self.t = _Tensors(tensors, "model.", folder)
        self._tokenizer = None

    # ---- configuration -----------------------------------------------------------------------

    def _refuse(self, key: str, value: object, wanted: str) -> None:
        raise ConfigError(
            f"{self.folder}: {key} = {value!r} is not supported for {self.arch} (only {wanted})"
        )

    def _check_options(self) -> None:
        c = self.config
        key = "hidden_activation" if self.kind.gemma else "hidden_act"
        act = c.get(key, self.kind.act)
        if act != self.kind.act:
            self._refuse(key, act, repr(self.kind.act))
        refused = ("use_bidirectional_attention", "clip_qkv")  # clip_qkv: OLMo 1's clamp
        if not self.kind.softcap:
            refused += ("attn_logit_softcapping",)
        for key in refused:
            if c.get(key):
                self._refuse(key, c[key], "null or false")
        if c.get("mlp_bias", False):
            self._refuse("mlp_bias", c["mlp_bias"], "false")
        rotary = c.get("partial_rotary_factor", 1.0)
        if rotary not in (None, 1, 1.0):
            self._refuse("partial_rotary_factor", rotary, "1")
        if self.head_dim % 2:
            self._refuse("head_dim", self.head_dim, "an even number (RoPE rotates pairs)")

    def _ropes(self, types: tuple[str, ...]) -> tuple[tuple[float, str, tuple | None], ...]:
        """Each layer's RoPE, from ``rope_parameters`` (transformers 5; Gemma 3: one per layer
        type) or ``rope_theta``/``rope_scaling`` (4.x; Gemma 3: ``rope_local_base_freq``)."""
        c = self.config
        params = c.get("rope_parameters")
        if not self.kind.rope_by_type:
            one = self._rope(params or {**(c.get("rope_scaling") or {})}, c.get("rope_theta"))
            return (one,) * self.n_layers
        if not (isinstance(params, dict) and set(params) == set(LAYER_TYPES)):
            params = {
                "full_attention": c.get("rope_scaling") or {},
                "sliding_attention": {"rope_theta": c.get("rope_local_base_freq", 10000.0)},
            }
        by_type = {t: self._rope(params[t], c.get("rope_theta", 1e6)) for t in LAYER_TYPES}
        return tuple(by_type[t] for t in types)

    def _rope(self, params: object, theta: object) -> tuple[float, str, tuple[float, ...] | None]:
        """(θ base, rope type, frequencies when the type changes them) of one rope setting."""
        if not isinstance(params, dict):
            self._refuse("rope_parameters", params, "an object")
        kind = params.get("rope_type", params.get("type", "default"))
        if kind not in ROPE_TYPES:
            self._refuse("rope type", kind, " or ".join(repr(k) for k in ROPE_TYPES))
        if params.get("partial_rotary_factor", 1.0) not in (1, 1.0):
            self._refuse("partial_rotary_factor", params["partial_rotary_factor"], "1")
        base = params.get("rope_theta", 10000.0 if theta is None else theta)
        if isinstance(base, bool) or not isinstance(base, (int, float)) or not base > 0:
            self._refuse("rope_theta", base, "a positive number")
        if kind == "default":
            return float(base), kind, None
        if kind == "linear":  # positions divided by factor: frequencies divided by it
            factor = params.get("factor")
            if isinstance(factor, bool) or not isinstance(factor, (int, float)) or not factor > 0:
                self._refuse("rope linear factor", factor, "a positive number")
            d, f32 = self.head_dim, np.float32
            inv = f32(1.0) / f32(base) ** (np.arange(0, d, 2, dtype=f32) / f32(d))
            return float(base), kind, tuple(float(x) for x in (inv / f32(factor)).astype(f32))
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

    def _windows(self, number: _ConfigNumbers) -> tuple[tuple[int | None, ...], tuple[str, ...]]:
        """Each layer's sliding window (keys it sees, itself included; None: global) and type."""
        c = self.config
        n = self.n_layers
        window = number(int, "sliding_window") if c.get("sliding_window") is not None else None
        if window is not None and window < 1:
            self._refuse("sliding_window", window, "a positive number or null")
        kind = self.kind.window
        full = ("full_attention",) * n
        if kind == "none" or (kind == "layers" and not c.get("use_sliding_window", False)):
            if kind == "none" and window is not None:
                self._refuse("sliding_window", window, "null")
            return (None,) * n, full
        if kind == "every":
            return (window,) * n, full if window is None else ("sliding_attention",) * n
        types = c.get("layer_types")
        if types is None and kind == "layers":  # 4.x configs: sliding from max_window_layers on
            first = number(int, "max_window_layers", default=0)
            types = ["sliding_attention" if i >= first else "full_attention" for i in range(n)]
        elif types is None:  # Gemma 4.x configs: every pattern-th layer global (Gemma 2: every
            # other one; Gemma 3: every sliding_window_pattern-th)
            pattern = self.kind.pattern or number(int, "sliding_window_pattern", default=6)
            types = [LAYER_TYPES[bool((i + 1) % pattern)] for i in range(n)]
        if not isinstance(types, list) or len(types) != n:
            self._refuse("layer_types", types, f"a list of {n} layer types")
        for t in types:
            if t not in LAYER_TYPES:
                self._refuse("layer type", t, " or ".join(repr(t) for t in LAYER_TYPES))
        windows = tuple(window if t == "sliding_attention" else None for t in types)
        return windows, tuple(types)

    def layer_info(self, layer: int, n_tokens: int, head: int | None = None) -> dict[str, object]:
        info: dict[str, object] = {"family": self.arch, "layer": layer}
        group = self.n_heads // self.kv_heads
        if head is not None:
            info["head"] = head
            info["kv_head"] = head // group
        elif group > 1:  # the whole layer: which key/value head each query head reads
            info["kv_head_of"] = [h // group for h in range(self.n_heads)]
        w = self.windows[layer]
        info["window"] = "global" if w is None else f"sliding {w}"
        base, kind, _ = self.ropes[layer]
        scaled = "" if kind == "default" else f", {kind} scaling"
        info["positions"] = f"0–{n_tokens - 1} (RoPE θ {base:g}{scaled})"
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
            return Projection(
                t.applied(f"{p}{name}.weight"), t[f"{p}{name}.bias"] if bias else None
            )

        q, k, v = (proj(n, biased["qkv"]) for n in ("q_proj", "k_proj", "v_proj"))
        for name, r, heads in (("q_proj", q, self.n_heads), ("k_proj", k, self.kv_heads),
                               ("v_proj", v, self.kv_heads)):  # fmt: skip
            if r.weight.shape[1] != heads * self.head_dim:
                raise InputError(
                    f"{self.folder}: {p}{name} has {r.weight.shape[1]} outputs, not "
                    f"{heads} heads × head_dim {self.head_dim} as config.json says"
                )
        out = proj("o_proj", biased["out"])
        if self.kind.qk_norm is None:
            return Parameters(q, k, v, out)
        return Parameters(q, k, v, out, q_norm=self._norm_weight(f"{p}q_norm"),
                          k_norm=self._norm_weight(f"{p}k_norm"))  # fmt: skip

    def _options(self, layer: int, p: Parameters) -> dict[str, object]:
        """The spec of layer ``layer``'s attention, beyond mode and heads."""
        base, _, freqs = self.ropes[layer]
        return dict(
            causal=True, window=self.windows[layer], rope=True, rope_base=base, rope_freqs=freqs,
            qk_norm=self.kind.qk_norm is not None, qk_norm_scope=self.kind.qk_norm or "head",
            rms_eps=self.eps, scale_dim=self.scale_dim, softcap=self.softcap,
            qkv_bias=p.query.bias is not None, parameters=p,
        )  # fmt: skip

    def _embed(self, ids: np.ndarray) -> np.ndarray:
        h = self.t["embed_tokens.weight"][ids]
        if self.kind.gemma:  # scaled by √hidden_size, rounded to the weights' float32
            h = h * np.float32(self.hidden**0.5)
        return h

    def _attention_input(self, h: np.ndarray, i: int) -> np.ndarray:
        """RMSNorm of h (OLMo 2, whose norms come after each block: h itself)."""
        return h if self.kind.norms == "post" else self._rms(h, f"layers.{i}.input_layernorm")

    def attention(
        self, x: np.ndarray, tokens: tuple[str, ...], layer: int, **run: object
    ) -> AttentionResult:
        """Layer ``layer``'s grouped-query attention of its inputs ``x`` (RMSNorm'd h, or h)."""
        p = self.attention_parameters(layer)
        return compute(
            x, tokens, mode="gqa", heads=self.n_heads, kv_heads=self.kv_heads,
            **self._options(layer, p), **run,
        )  # fmt: skip

    def head(self, attn_in: np.ndarray, tokens: tuple[str, ...], layer: int, head: int,
             **run: object) -> AttentionResult:  # fmt: skip
        """One query head as a single-head computation: its columns of q_proj and its key/value
        head's columns of k_proj and v_proj (head // group), with the layer's RoPE, QK-norm and
        window; explain and all views work on it.

        With QK-norm over whole rows (OLMo 2) a head's normalised q and k depend on every
        head's numbers, which its columns alone cannot give: the head is then its slice of the
        whole layer's computation (:meth:`_slice`), every number as the layer computed it."""
        if not 0 <= head < self.n_heads:
            raise ConfigError(f"--head {head}: the model has heads 0–{self.n_heads - 1}")
        p = self.attention_parameters(layer)
        g = head // (self.n_heads // self.kv_heads)
        q_cols, kv_cols = self._cols(head), self._cols(g)

        def cols(r: Projection, part: slice) -> Projection:
            return Projection(r.weight[:, part], None if r.bias is None else r.bias[part])

        whole = self.kind.qk_norm == "all"
        one = Parameters(
            cols(p.query, q_cols), cols(p.key, kv_cols), cols(p.value, kv_cols),
            q_norm=p.q_norm[q_cols] if whole else p.q_norm,
            k_norm=p.k_norm[kv_cols] if whole else p.k_norm,
        )  # fmt: skip
        if not whole:
            return compute(attn_in, tokens, mode="linear", **self._options(layer, one), **run)
        return self._slice(self.attention(attn_in, tokens, layer, **run), head, g, one)

    def _cols(self, head: int) -> slice:
        return slice(head * self.head_dim, (head + 1) * self.head_dim)

    def _slice(self, full: AttentionResult, head: int, g: int, one: Parameters) -> AttentionResult:
        """Query head ``head`` of a layer's result as a single-head result: its columns of the
        query steps, key/value head ``g``'s of the key and value steps, its (n, n) matrices, and
        its part of the heads' context (before o_proj) as the context."""
        q_cols, kv_cols = self._cols(head), self._cols(g)
        steps = {}
        for name, a in full.steps.items():
            if name in KEY_ROWS:
                steps[name] = a[:, kv_cols]
            elif name in KEY_COLUMNS:
                steps[name] = a[head]
            elif name == "head_context":
                steps["context"] = a[:, q_cols]
            elif name != "context":
                steps[name] = a if name == "inputs" else a[:, q_cols]
        config = replace(full.config, mode="linear", heads=1, kv_heads=1, d_out=self.head_dim)
        note = (f"{self.arch} normalises q and k over all heads together: head {head} is its "
                "slice of the whole layer's computation")  # fmt: skip
        return replace(full, config=config, steps=steps, parameters=one,
                       notes=(*full.notes, note))  # fmt: skip

    def _block(self, h: np.ndarray, attn: np.ndarray, i: int) -> np.ndarray:
        """The rest of layer ``i`` after attention: residual, RMSNorm, gated feed-forward
        (Gemma: the attention's and the feed-forward's outputs normalised too; OLMo 2: only
        those, the feed-forward reads h itself)."""
        t, p = self.t, f"layers.{i}."
        norms = self.kind.norms
        if norms != "pre":
            attn = self._rms(attn, f"{p}post_attention_layernorm")
        h = h + attn
        if norms == "post":
            m = h
        else:
            m = self._rms(h, f"{p}pre_feedforward_layernorm" if norms == "sandwich"
                          else f"{p}post_attention_layernorm")  # fmt: skip
        gate = m @ t.applied(f"{p}mlp.gate_proj.weight")
        if self.kind.act == "silu":
            gate = gate * (0.5 + 0.5 * np.tanh(0.5 * gate))  # x·sigmoid(x), without overflow
        else:
            gate = gelu_tanh(gate)
        up = m @ t.applied(f"{p}mlp.up_proj.weight")
        out = (gate * up) @ t.applied(f"{p}mlp.down_proj.weight")
        if norms != "pre":
            out = self._rms(out, f"{p}post_feedforward_layernorm")
        return (h + out).astype(np.float32)

    def _norm_weight(self, name: str) -> np.ndarray:
        """An RMSNorm's weight as it multiplies: Gemma stores w and multiplies by 1 + w."""
        w = self.t[f"{name}.weight"]
        return w + np.float32(1.0) if self.kind.gemma else w

    def _rms(self, x: np.ndarray, name: str) -> np.ndarray:
        ms = np.mean(np.square(x), axis=-1, keepdims=True)
        return (x / np.sqrt(ms + np.float32(self.eps)) * self._norm_weight(name)).astype(np.float32)
