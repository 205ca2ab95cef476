"""The book's attention variants after chapter 3, re-created in torch as independent references.

``GroupedQuery`` follows ``GroupedQueryAttention`` (ch04/04_gqa; W_key, W_value, W_query, then
out_proj without bias), ``LatentAttention`` follows ``MultiHeadLatentAttention`` (ch04/05_mla;
W_query, W_DKV, W_UK, W_UV, out_proj) and ``SlidingWindow`` follows ``MultiHeadAttentionWithSWA``
(ch04/06_swa). Options the book spreads over other chapters (RoPE of ch05/07_gpt_to_llama, the
QK-norm of ch05/11_qwen3, a window) are arguments here, so combinations can be checked. Each
module records its intermediate tensors in ``self.steps`` and supports the book's ``use_cache``
(keys and values, or the latent, appended token by token).
"""

from __future__ import annotations

import torch
from torch import nn


def rope_params(head_dim: int, base: float, n: int) -> tuple[torch.Tensor, torch.Tensor]:
    """cos, sin (n, head_dim): angles p·base^(−2i/head_dim), the halves repeated (float32)."""
    inv_freq = 1.0 / (base ** (torch.arange(0, head_dim, 2).float() / head_dim))
    angles = torch.arange(n).float()[:, None] * inv_freq[None, :]
    angles = torch.cat([angles, angles], dim=1)
    return torch.cos(angles), torch.sin(angles)


def rotate(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor, start: int = 0) -> torch.Tensor:
    """Rotate-half RoPE of x (b, heads, T, d) at positions start … start+T−1."""
    t, half = x.shape[-2], x.shape[-1] // 2
    cos, sin = cos[start : start + t], sin[start : start + t]
    return x * cos + torch.cat([-x[..., half:], x[..., :half]], dim=-1) * sin


class _Heads(nn.Module):
    """What the variants share after their projections: QK-norm, RoPE, mask, softmax, merge."""

    def setup(self, d_out, num_heads, causal, window, rope_base, qk_norm, context=64):
        self.d_out, self.num_heads, self.head_dim = d_out, num_heads, d_out // num_heads
        self.causal, self.window = causal, window
        self.q_norm = nn.RMSNorm(self.head_dim, eps=1e-6) if qk_norm else None
        self.k_norm = nn.RMSNorm(self.head_dim, eps=1e-6) if qk_norm else None
        self.rope = None if rope_base is None else rope_params(self.head_dim, rope_base, context)
        self.steps: dict[str, torch.Tensor] = {}
        self.pos = 0

    def attend(self, queries, keys, values, group=1):
        """queries (b, H, T, d); keys/values (b, G, T_k, d) of all positions so far."""
        b, _, t, _ = queries.shape
        if self.q_norm is not None:
            queries, keys = self.q_norm(queries), self.k_norm(keys)
            self.steps.update(queries_norm=queries, keys_norm=keys)
        if self.rope is not None:
            queries = rotate(queries, *self.rope, start=self.pos)
            keys = rotate(keys, *self.rope)
            self.steps.update(queries_rope=queries, keys_rope=keys)
        keys = keys.repeat_interleave(group, dim=1)
        values = values.repeat_interleave(group, dim=1)
        scores = queries @ keys.transpose(2, 3)
        q_pos = torch.arange(self.pos, self.pos + t)[:, None]
        k_pos = torch.arange(keys.shape[-2])[None, :]
        diff = q_pos - k_pos
        hidden = torch.zeros_like(diff, dtype=torch.bool)
        if self.causal:
            hidden = diff < 0
            if self.window is not None:
                hidden = hidden | (diff >= self.window)
        weights = torch.softmax(scores.masked_fill(hidden, -torch.inf) / self.head_dim**0.5, -1)
        self.steps.update(scores=scores, weights=weights)
        context = (weights @ values).transpose(1, 2).contiguous().view(b, t, self.d_out)
        self.steps["head_context"] = context
        return self.out_proj(context)

    def split(self, x, heads):
        b, t, _ = x.shape
        return x.view(b, t, heads, self.head_dim).transpose(1, 2)


class GroupedQuery(_Heads):
    """GroupedQueryAttention; with ``num_kv_groups == num_heads`` and ``out_bias`` it is the
    chapter-3 MultiHeadAttention (and with a window, MultiHeadAttentionWithSWA) except for the
    creation order, which ``kv_first`` keeps as the book's GQA class has it."""

    def __init__(
        self, d_in, d_out, num_heads, num_kv_groups, qkv_bias=False, *, causal=True,
        window=None, rope_base=None, qk_norm=False, kv_first=True, out_bias=False, d_kv=None,
    ):  # fmt: skip
        super().__init__()
        self.setup(d_out, num_heads, causal, window, rope_base, qk_norm)
        d_kv = d_in if d_kv is None else d_kv
        kv_width = num_kv_groups * self.head_dim
        if kv_first:
            self.W_key = nn.Linear(d_kv, kv_width, bias=qkv_bias)
            self.W_value = nn.Linear(d_kv, kv_width, bias=qkv_bias)
            self.W_query = nn.Linear(d_in, d_out, bias=qkv_bias)
        else:
            self.W_query = nn.Linear(d_in, d_out, bias=qkv_bias)
            self.W_key = nn.Linear(d_kv, kv_width, bias=qkv_bias)
            self.W_value = nn.Linear(d_kv, kv_width, bias=qkv_bias)
        self.out_proj = nn.Linear(d_out, d_out, bias=out_bias)
        self.num_kv_groups = num_kv_groups
        self.cache_k = self.cache_v = None

    def forward(self, x, use_cache=False, memory=None):
        source = x if memory is None else memory
        q = self.split(self.W_query(x), self.num_heads)
        k = self.split(self.W_key(source), self.num_kv_groups)
        v = self.split(self.W_value(source), self.num_kv_groups)
        self.steps.update(queries=self.W_query(x), keys=self.W_key(source))
        if use_cache:
            if self.cache_k is not None:
                k = torch.cat([self.cache_k, k], dim=2)
                v = torch.cat([self.cache_v, v], dim=2)
            self.cache_k, self.cache_v = k, v
        out = self.attend(q, k, v, self.num_heads // self.num_kv_groups)
        self.pos = self.pos + x.shape[1] if use_cache else 0
        return out


class LatentAttention(_Heads):
    """MultiHeadLatentAttention: keys and values come up from a cached latent C = x·W_DKV."""

    def __init__(
        self, d_in, d_out, num_heads, qkv_bias=False, latent_dim=None, *, causal=True,
        window=None, rope_base=None, qk_norm=False,
    ):  # fmt: skip
        super().__init__()
        self.setup(d_out, num_heads, causal, window, rope_base, qk_norm)
        self.latent_dim = latent_dim if latent_dim is not None else max(16, d_out // 8)
        self.W_query = nn.Linear(d_in, d_out, bias=qkv_bias)
        self.W_DKV = nn.Linear(d_in, self.latent_dim, bias=qkv_bias)
        self.W_UK = nn.Linear(self.latent_dim, d_out, bias=qkv_bias)
        self.W_UV = nn.Linear(self.latent_dim, d_out, bias=qkv_bias)
        self.out_proj = nn.Linear(d_out, d_out)
        self.cache_c_kv = None

    def forward(self, x, use_cache=False):
        latent = self.W_DKV(x)
        if use_cache:
            if self.cache_c_kv is not None:
                latent = torch.cat([self.cache_c_kv, latent], dim=1)
            self.cache_c_kv = latent
        self.steps["latent"] = latent
        q = self.split(self.W_query(x), self.num_heads)
        k = self.split(self.W_UK(latent), self.num_heads)
        v = self.split(self.W_UV(latent), self.num_heads)
        out = self.attend(q, k, v)
        self.pos = self.pos + x.shape[1] if use_cache else 0
        return out
