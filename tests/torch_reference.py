"""The book's chapter 3 attention classes, written in torch as an independent reference.

Each builds its parameters after ``torch.manual_seed(seed)`` exactly as the book's classes do, and
returns the intermediate steps, so tests can compare attncli against torch step by step.
"""

from __future__ import annotations

import numpy as np
import torch

TOLERANCE = {
    "float32": {"atol": 1e-5, "rtol": 1.3e-6},
    "float64": {"atol": 1e-7, "rtol": 1e-7},
}


def reference(
    x: np.ndarray,
    mode: str,
    d_out: int,
    *,
    heads: int = 1,
    causal: bool = False,
    scale: bool | None = None,
    qkv_bias: bool = False,
    seed: int = 123,
    dtype: str = "float32",
) -> dict[str, np.ndarray]:
    """Steps of the book's SelfAttention_v1 (trainable), SelfAttention_v2 / CausalAttention
    (linear) and MultiHeadAttention (multi-head); ``simple`` is the section 3.3 computation."""
    tdtype = getattr(torch, dtype)
    inputs = torch.tensor(x, dtype=tdtype)
    scale = mode != "simple" if scale is None else scale
    torch.manual_seed(seed)
    params: dict[str, torch.Tensor] = {}
    if mode == "simple":
        queries = keys = values = inputs
    elif mode == "trainable":
        d_in = x.shape[1]
        for name in ("W_query", "W_key", "W_value"):
            params[name] = torch.nn.Parameter(torch.rand(d_in, d_out), requires_grad=False)
        queries, keys, values = (
            inputs @ params[n].to(tdtype) for n in ("W_query", "W_key", "W_value")
        )
    else:
        layers = {
            n: torch.nn.Linear(x.shape[1], d_out, bias=qkv_bias)
            for n in ("W_query", "W_key", "W_value")
        }
        if mode == "multi-head":
            layers["out_proj"] = torch.nn.Linear(d_out, d_out)
        for n, layer in layers.items():
            layer.to(tdtype)
            params.update({f"{n}.{k}": v for k, v in layer.state_dict().items()})
        with torch.no_grad():
            queries, keys, values = (layers[n](inputs) for n in ("W_query", "W_key", "W_value"))
    n = inputs.shape[0]
    head_dim = queries.shape[1] // heads
    split = (
        (lambda t: t.view(n, heads, head_dim).transpose(0, 1))
        if mode == "multi-head"
        else (lambda t: t)
    )
    q, k, v = split(queries), split(keys), split(values)
    scores = q @ k.transpose(-2, -1)
    s = scores / k.shape[-1] ** 0.5 if scale else scores
    if causal:
        mask = torch.triu(torch.ones(n, n), diagonal=1).bool()
        s = s.masked_fill(mask, -torch.inf)
    weights = torch.softmax(s, dim=-1)
    context = weights @ v
    if mode == "multi-head":
        context = context.transpose(0, 1).contiguous().view(n, heads * head_dim)
        with torch.no_grad():
            context = layers["out_proj"](context)
    steps = {
        "queries": queries,
        "keys": keys,
        "values": values,
        "scores": scores,
        "weights": weights,
        "context": context,
    }
    out = {k: t.detach().numpy() for k, t in steps.items()}
    out.update({f"param:{k}": t.detach().float().numpy() for k, t in params.items()})
    return out


class BookMultiHeadAttention(torch.nn.Module):
    """The book's ``MultiHeadAttention`` (chapter 3), as written there, for state-dict tests."""

    def __init__(self, d_in, d_out, context_length, dropout, num_heads, qkv_bias=False):
        super().__init__()
        assert d_out % num_heads == 0
        self.d_out = d_out
        self.num_heads = num_heads
        self.head_dim = d_out // num_heads
        self.W_query = torch.nn.Linear(d_in, d_out, bias=qkv_bias)
        self.W_key = torch.nn.Linear(d_in, d_out, bias=qkv_bias)
        self.W_value = torch.nn.Linear(d_in, d_out, bias=qkv_bias)
        self.out_proj = torch.nn.Linear(d_out, d_out)
        self.dropout = torch.nn.Dropout(dropout)
        self.register_buffer(
            "mask", torch.triu(torch.ones(context_length, context_length), diagonal=1)
        )

    def forward(self, x):
        b, num_tokens, _ = x.shape
        keys = self.W_key(x).view(b, num_tokens, self.num_heads, self.head_dim).transpose(1, 2)
        queries = self.W_query(x).view(b, num_tokens, self.num_heads, self.head_dim).transpose(1, 2)
        values = self.W_value(x).view(b, num_tokens, self.num_heads, self.head_dim).transpose(1, 2)
        attn_scores = queries @ keys.transpose(2, 3)
        mask_bool = self.mask.bool()[:num_tokens, :num_tokens]
        attn_scores.masked_fill_(mask_bool, -torch.inf)
        attn_weights = torch.softmax(attn_scores / keys.shape[-1] ** 0.5, dim=-1)
        attn_weights = self.dropout(attn_weights)
        context_vec = (attn_weights @ values).transpose(1, 2)
        context_vec = context_vec.contiguous().view(b, num_tokens, self.d_out)
        return self.out_proj(context_vec)
