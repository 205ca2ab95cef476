"""AttentionResult: every intermediate matrix of one computation, under a stable name."""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np

from attncli.core.config import AttentionConfig
from attncli.core.params import Parameters
from attncli.errors import ConfigError

# Step name -> what it is. Order is the order of the computation.
STEPS: dict[str, str] = {
    "inputs": "input embeddings X",
    "kv_inputs": "cross-attention memory M: what keys and values are made from",
    "latent": "latent C = X·W_DKV (mla: what its KV cache stores)",
    "queries": "queries Q = X·W_q",
    "keys": "keys K = X·W_k (mla: C·W_UK)",
    "values": "values V = X·W_v (mla: C·W_UV)",
    "queries_norm": "queries after QK-norm: RMSNorm of each head's q (or of the whole row)",
    "keys_norm": "keys after QK-norm: RMSNorm of each head's k (or of the whole row)",
    "queries_rope": "queries rotated by their position (RoPE)",
    "keys_rope": "keys rotated by their position (RoPE)",
    "scores": "attention scores Q·Kᵀ",
    "scaled_scores": "scaled scores Q·Kᵀ/√d_k",
    "capped_scores": "soft-capped scores tanh(s/C)·C, at most C in size",
    "masked_scores": "masked scores (future keys, and keys outside a window, set to -inf)",
    "weights_before_dropout": "attention weights before dropout",
    "weights": "attention weights: softmax of each row, what multiplies V",
    "head_context": "heads' context vectors, concatenated (before out_proj)",
    "context": "context vectors: weights·V (then out_proj in multi-head)",
}
# Steps whose rows belong to queries (``--query`` keeps one row); the others are indexed by keys.
KEY_ROWS = frozenset({"kv_inputs", "latent", "keys", "values", "keys_norm", "keys_rope"})
QUERY_ROWS = frozenset(STEPS) - KEY_ROWS - {"inputs"}
# Steps whose columns are keys (labelled by token); the others have feature columns d0, d1, ...
KEY_COLUMNS = frozenset(
    {"scores", "scaled_scores", "capped_scores", "masked_scores", "weights_before_dropout",
     "weights"}
)  # fmt: skip


STEP_ALIASES = {"scaled": "scaled_scores", "capped": "capped_scores", "masked": "masked_scores"}
# Steps the blockwise, context-only path produces (no (…, n, n) matrix among them).
CONTEXT_STEPS = frozenset(STEPS) - KEY_COLUMNS


def parse_steps(spec: str | None) -> list[str] | None:
    """Step names from a ``--show`` value; None for no value or "all"."""
    if spec is None or spec.strip() == "all":
        return None
    names = []
    for raw in spec.split(","):
        name = STEP_ALIASES.get(raw.strip(), raw.strip())
        if name not in STEPS:
            known = ", ".join([*STEPS, "all"])
            raise ConfigError(f"--show: unknown step {raw.strip()!r}; choose from {known}")
        names.append(name)
    return names


def find_query(tokens: tuple[str, ...], spec: str) -> int:
    """The row a ``--query`` names: a token label first, else a 0-based (or negative) index."""
    matches = [i for i, t in enumerate(tokens) if t == spec]
    if len(matches) > 1:
        raise ConfigError(
            f"--query {spec!r} matches tokens {', '.join(map(str, matches))}; give an index instead"
        )
    if matches:
        return matches[0]
    try:
        index = int(spec)
    except ValueError:
        raise ConfigError(
            f"--query {spec!r}: no such token (tokens: {', '.join(tokens[:12])}"
            f"{', …' if len(tokens) > 12 else ''}) and not an index"
        ) from None
    if not -len(tokens) <= index < len(tokens):
        raise ConfigError(f"--query {index}: index out of range for {len(tokens)} tokens")
    return index % len(tokens)


@dataclass(frozen=True)
class AttentionResult:
    """The outcome of :func:`attncli.compute`.

    ``steps`` maps names from :data:`STEPS` to arrays, in computation order. Shapes:
    inputs (n, d_in); queries/keys/values/head_context (n, d_out); context (n, d_out);
    scores/.../weights (n, n), or (heads, n, n) in multi-head mode. Masked entries are -inf.
    """

    tokens: tuple[str, ...]
    config: AttentionConfig
    steps: dict[str, np.ndarray]
    parameters: Parameters | None = None
    engine: str = "numpy"
    device: str = "cpu"
    query: int | None = field(default=None)
    weights_source: str | None = None  # the weight file the parameters came from, if any
    notes: tuple[str, ...] = ()  # what the user should know, e.g. a dtype widened on overflow
    kv_tokens: tuple[str, ...] | None = None  # cross-attention: the memory's tokens (the keys)
    weights_prefix: str | None = None  # the module taken from a bigger state dict
    unused_keys: tuple[str, ...] = ()  # tensors of the weight file the run did not use
    # attn model: the family, layer, head (and its key/value head), window and positions
    model_info: dict[str, object] | None = None

    @property
    def d_in(self) -> int:
        return int(self.steps["inputs"].shape[1])

    @property
    def weights(self) -> np.ndarray:
        return self.steps["weights"]

    @property
    def context(self) -> np.ndarray:
        return self.steps["context"]

    @property
    def qkv_bias(self) -> bool:
        """Whether the query/key/value projections added a bias (seeded or loaded)."""
        p = self.parameters
        if p is None:
            return False
        return any(getattr(p, r).bias is not None for r in ("query", "key", "value"))

    def params(self) -> dict[str, object]:
        """Every option that shaped this result, as plain JSON-able values."""
        c = self.config
        p = self.parameters
        out = None if p is None or p.out is None else p.out.weight.shape[1]
        return (
            {
                "mode": c.mode,
                "n_tokens": len(self.tokens),
                "d_in": self.d_in,
                "d_out": c.d_out,
                "heads": c.heads,
                "kv_heads": c.kv_heads,
                "head_dim": c.head_dim,
                "latent_dim": c.latent_dim,
                "causal": c.causal,
                "window": c.window,
                "rope": c.rope,
                "rope_base": c.rope_base if c.rope else None,
                "qk_norm": c.qk_norm,
                "qk_norm_scope": c.qk_norm_scope if c.qk_norm else None,
                "cross": c.cross,
                "n_kv_tokens": len(self.keys_tokens),
                "scale": c.scale,
                "softcap": c.softcap,
                "dropout": c.dropout,
                "qkv_bias": self.qkv_bias,
                "seed": None if self.weights_source is not None else c.seed,  # none was drawn
                "weights": self.weights_source,
                "weights_prefix": self.weights_prefix,
                "unused_keys": list(self.unused_keys),
                "dtype": c.dtype,
                "engine": self.engine,
                "device": self.device,
            }
            | ({} if c.scale_dim is None else {"scale_dim": c.scale_dim})
            | ({} if self.model_info is None else {"model": self.model_info})
            | ({} if out in (None, c.d_out) else {"d_model": out})  # o_proj to a model's width
        )

    def for_query(self, index: int) -> AttentionResult:
        """The same result keeping only row ``index`` of every query-indexed step."""
        steps = {
            name: (arr[..., index : index + 1, :] if name in QUERY_ROWS else arr)
            for name, arr in self.steps.items()
        }
        return replace(self, steps=steps, query=index)

    def select_steps(self, spec: str | None, default: tuple[str, ...]) -> list[str]:
        """The steps named in ``spec`` ("weights,context", "all", aliases allowed), checked."""
        names = parse_steps(spec)
        if names is None:
            wanted = default if spec is None else tuple(STEPS)
            return [s for s in self.steps if s in wanted]
        for name in names:
            self.check_step(name, "--show")
        return names

    def check_step(self, name: str, option: str) -> None:
        """ConfigError naming ``option`` and what would make step ``name`` exist, if it does not."""
        if name not in self.steps:
            raise ConfigError(f"{option}: step {name!r} does not exist in this run ({_why(name)})")

    @property
    def keys_tokens(self) -> tuple[str, ...]:
        """The tokens of keys and values: the memory's (cross-attention), else the input's."""
        return self.tokens if self.kv_tokens is None else self.kv_tokens

    def hidden_keys(self, rows: list[int]) -> np.ndarray:
        """(len(rows), m) True where query ``rows[r]`` may not see key j: later keys when
        causal, and keys ``window`` or more positions back (the sliding window's band)."""
        i = np.asarray(rows)[:, None]
        j = np.arange(len(self.keys_tokens))[None, :]
        hidden = np.zeros((len(rows), j.shape[1]), dtype=bool)
        if self.config.causal:
            hidden = hidden | (j > i)
        if self.config.window is not None:
            hidden = hidden | (i - j >= self.config.window)
        return hidden

    def column_labels(self, step: str) -> tuple[str, ...]:
        """Labels of the columns of ``step``: key tokens, or feature names d0, d1, ..."""
        if step in KEY_COLUMNS:
            return self.keys_tokens
        return tuple(f"d{j}" for j in range(self.steps[step].shape[-1]))

    def row_tokens(self, step: str) -> tuple[str, ...]:
        """Labels of the rows of ``step`` (one token when narrowed to a query)."""
        if self.query is not None and step in QUERY_ROWS:
            return (self.tokens[self.query],)
        return self.keys_tokens if step in KEY_ROWS else self.tokens


def _why(step: str) -> str:
    return {
        "scaled_scores": "scaling is off; add --scale",
        "capped_scores": "no soft-capping; add --softcap C",
        "masked_scores": "no mask; add --causal",
        "weights_before_dropout": "no dropout; add --dropout P",
        "head_context": "only the multi-head family (multi-head, gqa, mqa, mla) has it",
        "kv_inputs": "no --kv memory",
        "latent": "only mla has it",
        "queries_norm": "no --qk-norm",
        "keys_norm": "no --qk-norm",
        "queries_rope": "no --rope",
        "keys_rope": "no --rope",
    }.get(step, "not computed")
