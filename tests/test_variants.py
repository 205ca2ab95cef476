"""GQA/MQA, latent attention, sliding windows, RoPE and QK-norm against torch references."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from attncli import compute
from attncli.errors import ConfigError
from tests.conftest import JOURNEY
from tests.torch_variants import GroupedQuery, LatentAttention, rope_params, rotate

TOL = {"atol": 1e-5, "rtol": 1.3e-6}


def emb(n: int, d: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).normal(size=(n, d)).astype(np.float32)


def run_ref(module: torch.nn.Module, x: np.ndarray) -> tuple[np.ndarray, dict]:
    with torch.no_grad():
        out = module(torch.tensor(x)[None])
    return out[0].numpy(), {k: v[0].numpy() for k, v in module.steps.items()}


def merged(t: np.ndarray) -> np.ndarray:
    """(heads, n, d) -> (n, heads·d)."""
    return t.transpose(1, 0, 2).reshape(t.shape[1], -1)


def state(module: torch.nn.Module) -> dict[str, np.ndarray]:
    return {k: v.detach().numpy() for k, v in module.state_dict().items()}


@pytest.mark.parametrize(
    ("d_in", "d_out", "heads", "kv_heads", "bias", "seed"),
    [(3, 4, 2, 1, False, 123), (5, 8, 4, 2, True, 0), (6, 12, 6, 3, False, 789),
     (8, 16, 4, 4, True, 2**31 + 5), (4, 8, 8, 1, False, 42)],
)  # fmt: skip
def test_gqa_equals_book_grouped_query_attention(d_in, d_out, heads, kv_heads, bias, seed):
    x = emb(7, d_in, seed % 1000)
    torch.manual_seed(seed)
    ref = GroupedQuery(d_in, d_out, heads, kv_heads, qkv_bias=bias)
    context, steps = run_ref(ref, x)
    r = compute(x, mode="gqa", d_out=d_out, heads=heads, kv_heads=kv_heads, causal=True,
                qkv_bias=bias, seed=seed)  # fmt: skip
    named = r.parameters.named(linear=True)
    assert set(named) == set(state(ref))
    for key, value in state(ref).items():
        np.testing.assert_array_equal(named[key], value, err_msg=key)  # seeded bit-exact
    np.testing.assert_allclose(r.steps["queries"], steps["queries"], **TOL)
    np.testing.assert_allclose(r.steps["keys"], steps["keys"], **TOL)
    assert r.steps["keys"].shape == (7, kv_heads * d_out // heads)
    np.testing.assert_allclose(r.steps["scores"], steps["scores"], **TOL)
    np.testing.assert_allclose(r.weights, steps["weights"], **TOL)
    np.testing.assert_allclose(r.context, context, **TOL)


def test_mqa_is_gqa_with_one_kv_head():
    a = compute(JOURNEY, mode="mqa", d_out=4, heads=4, causal=True)
    b = compute(JOURNEY, mode="gqa", d_out=4, heads=4, kv_heads=1, causal=True)
    assert a.config.kv_heads == 1
    np.testing.assert_array_equal(a.context, b.context)
    # every query head reads the same key head: identical keys in each head's scores
    k = a.steps["keys"]
    q = a.steps["queries"].reshape(6, 4, 1).transpose(1, 0, 2)
    np.testing.assert_allclose(a.steps["scores"], q @ k.T[None], **TOL)


def test_gqa_with_all_kv_heads_is_multi_head_with_another_order_and_no_out_bias():
    """With kv_heads = heads GQA computes multi-head attention; only the parameters differ."""
    r = compute(JOURNEY, mode="gqa", d_out=4, heads=2, kv_heads=2)
    m = compute(JOURNEY, mode="multi-head", d_out=4, heads=2, parameters=r.parameters)
    np.testing.assert_allclose(m.context, r.context, **TOL)
    assert r.parameters.out.bias is None


@pytest.mark.parametrize(
    ("d_in", "d_out", "heads", "latent", "bias", "causal"),
    [(3, 4, 2, None, False, True), (6, 8, 4, 3, True, True), (5, 32, 4, None, False, False),
     (4, 12, 3, 5, True, False)],
)  # fmt: skip
def test_mla_equals_book_latent_attention(d_in, d_out, heads, latent, bias, causal):
    x = emb(9, d_in, 3)
    torch.manual_seed(123)
    ref = LatentAttention(d_in, d_out, heads, qkv_bias=bias, latent_dim=latent, causal=causal)
    context, steps = run_ref(ref, x)
    r = compute(x, mode="mla", d_out=d_out, heads=heads, latent_dim=latent, qkv_bias=bias,
                causal=causal)  # fmt: skip
    assert r.config.latent_dim == ref.latent_dim  # the book's default max(16, d_out // 8)
    for key, value in state(ref).items():
        np.testing.assert_array_equal(r.parameters.named(linear=True)[key], value, err_msg=key)
    np.testing.assert_allclose(r.steps["latent"], steps["latent"], **TOL)
    np.testing.assert_allclose(r.weights, steps["weights"], **TOL)
    np.testing.assert_allclose(r.context, context, **TOL)


@pytest.mark.parametrize("window", [1, 2, 3, 5, 9, 50])
def test_window_equals_book_sliding_window_attention(window):
    x = emb(9, 4, 5)
    torch.manual_seed(123)
    ref = GroupedQuery(4, 4, 2, 2, causal=True, window=window, kv_first=False, out_bias=True)
    context, steps = run_ref(ref, x)  # MultiHeadAttentionWithSWA
    r = compute(x, mode="multi-head", d_out=4, heads=2, causal=True, window=window)
    np.testing.assert_allclose(r.weights, steps["weights"], **TOL)
    np.testing.assert_allclose(r.context, context, **TOL)
    i, j = np.indices((9, 9))
    assert np.all(np.isneginf(r.steps["masked_scores"][:, (j > i) | (i - j >= window)]))
    assert np.all(r.weights[:, (i - j >= 0) & (i - j < window)] > 0)


def test_window_covering_everything_is_causal():
    a = compute(JOURNEY, mode="linear", d_out=2, causal=True, window=6)
    b = compute(JOURNEY, mode="linear", d_out=2, causal=True)
    np.testing.assert_array_equal(a.weights, b.weights)


def test_rope_equals_transformers_apply_rotary_pos_emb():
    from transformers import LlamaConfig
    from transformers.models.llama.modeling_llama import LlamaRotaryEmbedding, apply_rotary_pos_emb

    x = emb(11, 5, 8)
    for base in (10000.0, 500.0):
        r = compute(x, mode="multi-head", d_out=12, heads=2, rope=True, rope_base=base)
        config = LlamaConfig(hidden_size=12, num_attention_heads=2, head_dim=6, rope_theta=base)
        pos = torch.arange(11)[None]
        cos, sin = LlamaRotaryEmbedding(config)(torch.zeros(1, 11, 12), pos)
        q = torch.tensor(r.steps["queries"]).view(1, 11, 2, 6).transpose(1, 2)
        k = torch.tensor(r.steps["keys"]).view(1, 11, 2, 6).transpose(1, 2)
        q_rot, k_rot = apply_rotary_pos_emb(q, k, cos, sin)
        np.testing.assert_allclose(r.steps["queries_rope"], merged(q_rot[0].numpy()), **TOL)
        np.testing.assert_allclose(r.steps["keys_rope"], merged(k_rot[0].numpy()), **TOL)
        scores = q_rot[0] @ k_rot[0].transpose(1, 2)
        np.testing.assert_allclose(r.steps["scores"], scores.numpy(), atol=1e-4, rtol=1e-5)
    # position 0 is not rotated; rotation keeps each vector's length
    np.testing.assert_allclose(r.steps["queries_rope"][0], r.steps["queries"][0], **TOL)
    np.testing.assert_allclose(
        np.linalg.norm(r.steps["keys_rope"], axis=1), np.linalg.norm(r.steps["keys"], axis=1),
        rtol=1e-5,
    )  # fmt: skip


def test_rope_scores_depend_on_relative_position_only():
    """q_m·k_n after RoPE is a function of m − n: the same vector at every position gives a
    Toeplitz score matrix."""
    x = np.tile(emb(1, 4, 2), (8, 1))
    r = compute(x, mode="linear", d_out=4, rope=True, scale=False)
    s = r.steps["scores"]
    for offset in range(-7, 8):
        diag = np.diagonal(s, offset)
        np.testing.assert_allclose(diag, diag[0], atol=1e-5)


def test_qk_norm_equals_torch_rms_norm():
    x = emb(6, 5, 4)
    r = compute(x, mode="gqa", d_out=8, heads=4, kv_heads=2, qk_norm=True)
    norm = torch.nn.RMSNorm(2, eps=1e-6)
    with torch.no_grad():
        q = norm(torch.tensor(r.steps["queries"]).view(6, 4, 2)).reshape(6, 8)
        k = norm(torch.tensor(r.steps["keys"]).view(6, 2, 2)).reshape(6, 4)
    np.testing.assert_allclose(r.steps["queries_norm"], q.numpy(), **TOL)
    np.testing.assert_allclose(r.steps["keys_norm"], k.numpy(), **TOL)


@pytest.mark.parametrize(
    ("mode", "options"),
    [
        ("gqa", {"kv_heads": 2, "window": 3, "rope": True}),
        ("gqa", {"kv_heads": 1, "qk_norm": True, "rope": True, "rope_base": 100.0}),
        ("multi-head", {"qk_norm": True, "rope": True, "window": 2}),
        ("mla", {"latent_dim": 6, "rope": True, "qk_norm": True, "window": 4}),
    ],
)
def test_combinations_equal_the_reference(mode, options):
    x = emb(10, 6, 9)
    torch.manual_seed(7)
    ref_options = {
        "window": options.get("window"), "qk_norm": options.get("qk_norm", False),
        "rope_base": options.get("rope_base", 10000.0) if options.get("rope") else None,
    }  # fmt: skip
    if mode == "mla":
        ref = LatentAttention(6, 8, 4, latent_dim=options["latent_dim"], **ref_options)
    elif mode == "gqa":
        ref = GroupedQuery(6, 8, 4, options["kv_heads"], **ref_options)
    else:
        ref = GroupedQuery(6, 8, 4, 4, kv_first=False, out_bias=True, **ref_options)
    context, steps = run_ref(ref, x)
    r = compute(x, mode=mode, d_out=8, heads=4, causal=True, seed=7, **options)
    for name in ("queries_norm", "keys_norm", "queries_rope", "keys_rope"):
        if name in steps:
            np.testing.assert_allclose(r.steps[name], merged(steps[name]), **TOL, err_msg=name)
    np.testing.assert_allclose(r.weights, steps["weights"], **TOL)
    np.testing.assert_allclose(r.context, context, **TOL)


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"mode": "gqa", "heads": 4}, "needs --kv-heads"),
        ({"mode": "gqa", "heads": 4, "kv_heads": 3}, "does not divide --heads 4"),
        ({"mode": "gqa", "heads": 4, "kv_heads": 0}, "does not divide"),
        ({"mode": "mqa", "heads": 2, "kv_heads": 2}, "one key/value head"),
        ({"mode": "multi-head", "kv_heads": 1}, "--kv-heads needs --mode gqa"),
        ({"mode": "linear", "latent_dim": 4}, "--latent-dim needs --mode mla"),
        ({"mode": "linear", "window": 2}, "--window needs --causal"),
        ({"mode": "linear", "causal": True, "window": 0}, "at least 1"),
        ({"mode": "multi-head", "d_out": 6, "heads": 2, "rope": True}, "must be even"),
        ({"mode": "linear", "rope": True, "rope_base": -1.0}, "--rope-base"),
    ],
)
def test_bad_variant_options_raise(options, message):
    with pytest.raises(ConfigError, match=message):
        compute(emb(4, 4), **{"d_out": 4, **options})


def test_rope_params_of_the_reference_match_the_book_formula():
    """The reference's RoPE at position p rotates pair i by p·base^(−2i/d)."""
    cos, sin = rope_params(4, 100.0, 3)
    np.testing.assert_allclose(cos[2].numpy(), np.cos(2 * np.array([1, 0.1, 1, 0.1])), rtol=1e-6)
    x = torch.tensor([[[[1.0, 0.0, 0.0, 0.0]]]])
    np.testing.assert_allclose(rotate(x, cos, sin, 1)[0, 0, 0].numpy(),
                               [np.cos(1), 0, np.sin(1), 0], atol=1e-6)  # fmt: skip


VARIANTS = [
    ("gqa", {"d_out": 8, "heads": 4, "kv_heads": 2}, True),
    ("mqa", {"d_out": 6, "heads": 3}, False),
    ("mla", {"d_out": 8, "heads": 2, "latent_dim": 3, "qkv_bias": True}, True),
    ("gqa", {"d_out": 8, "heads": 4, "kv_heads": 2, "window": 3, "rope": True}, True),
    ("multi-head", {"d_out": 8, "heads": 2, "qk_norm": True, "rope": True}, False),
    ("linear", {"d_out": 4, "window": 2, "rope": True, "qk_norm": True}, True),
    ("trainable", {"d_out": 2, "window": 1}, True),
    ("simple", {"window": 4, "qk_norm": True}, True),
]


@pytest.mark.parametrize(("mode", "options", "causal"), VARIANTS)
@pytest.mark.parametrize("dtype", ["float32", "float64", "bfloat16"])
def test_variants_numpy_and_torch_engines_agree(mode, options, causal, dtype):
    x = emb(13, 6, 1)
    a = compute(x, mode=mode, causal=causal, engine="numpy", dtype="float64" if dtype ==
                "float64" else "float32", **options)  # fmt: skip
    b = compute(x, mode=mode, causal=causal, engine="torch", dtype=dtype, **options)
    assert set(a.steps) == set(b.steps)
    for name in a.steps:
        if dtype == "bfloat16":  # 8 bits of mantissa: compare against the largest value
            finite = np.isfinite(a.steps[name])
            bound = 5e-2 * max(1.0, float(np.abs(a.steps[name][finite]).max()))
            np.testing.assert_allclose(b.steps[name][finite], a.steps[name][finite], atol=bound,
                                       rtol=5e-2, err_msg=name)  # fmt: skip
        else:
            tol = TOL if dtype == "float32" else {"atol": 1e-7, "rtol": 1e-7}
            np.testing.assert_allclose(b.steps[name], a.steps[name], **tol, err_msg=name)


@pytest.fixture(params=["one key block", "many key blocks"])
def tiles(request, monkeypatch):
    """Small tiles stream keys (and rows) in several blocks, across the window's edges."""
    import attncli.engines.blockwise as blockwise

    if request.param == "many key blocks":
        monkeypatch.setattr(blockwise, "TILE_BYTES", 32 * 4 * 7)
        monkeypatch.setattr(blockwise, "MAX_ROWS", 32)
    return request.param


@pytest.mark.parametrize(("mode", "options", "causal"), VARIANTS)
@pytest.mark.parametrize("n", [1, 40, 97])
@pytest.mark.parametrize("engine", ["numpy", "torch"])
def test_variants_blockwise_equals_full_path(tiles, mode, options, causal, n, engine):
    x = emb(n, 6, n)
    full = compute(x, mode=mode, causal=causal, engine="numpy", **options)
    fast = compute(x, mode=mode, causal=causal, engine=engine, context_only=True, **options)
    assert "weights" not in fast.steps
    np.testing.assert_allclose(fast.context, full.context, **TOL)


@pytest.mark.parametrize("window", [1, 5, 31, 32, 33, 64, 200])
def test_blockwise_window_over_many_blocks_matches_sdpa_with_a_mask(monkeypatch, window):
    import attncli.engines.blockwise as blockwise

    monkeypatch.setattr(blockwise, "TILE_BYTES", 32 * 4 * 40)  # 32 rows × 40 keys
    monkeypatch.setattr(blockwise, "MAX_ROWS", 32)
    q, k, v = (emb(150, 8, s) for s in (1, 2, 3))
    i, j = np.indices((150, 150))
    mask = torch.tensor((j <= i) & (i - j < window))
    sdpa = torch.nn.functional.scaled_dot_product_attention(
        *(torch.tensor(a) for a in (q, k, v)), attn_mask=mask, scale=0.5
    )
    got = blockwise.attention_context(q, k, v, 0.5, True, window=window)
    np.testing.assert_allclose(got, sdpa.numpy(), **TOL)


def test_blockwise_gqa_reads_shared_kv_heads_and_visits_window_keys_only(monkeypatch):
    """The grouped kernel gets (kv_heads, n, d) keys, never one copy per query head, and with a
    window it multiplies only (rows × keys-in-reach) tiles."""
    import attncli.engines.blockwise as blockwise

    q = emb(8 * 256, 4, 1).reshape(8, 256, 4)
    k, v = (emb(2 * 256, 4, s).reshape(2, 256, 4) for s in (2, 3))
    sdpa = torch.nn.functional.scaled_dot_product_attention(
        *(torch.tensor(a)[None] for a in (q, k, v)), is_causal=True, enable_gqa=True
    )[0]
    seen = []
    real = blockwise._rows

    def spy(qb, keys, *args, **kwargs):
        seen.append(keys.base if keys.base is not None else keys)
        return real(qb, keys, *args, **kwargs)

    monkeypatch.setattr(blockwise, "_rows", spy)
    got = blockwise.attention_context(q, k, v, 0.5, True)
    np.testing.assert_allclose(got, sdpa.numpy(), **TOL)
    assert all(np.shares_memory(s, k) for s in seen)  # views of the two key heads, no copies

    # work of a window: count the key columns multiplied per query row
    widths = []
    monkeypatch.setattr(blockwise, "MAX_ROWS", 32)

    def count(qb, keys, v1, r0, causal, key_block, out, window=None, softcap=None):
        widths.append((r0 + qb.shape[0]) - (0 if window is None else max(0, r0 - window + 1)))
        return real(qb, keys, v1, r0, causal, key_block, out, window, softcap)

    monkeypatch.setattr(blockwise, "_rows", count)
    blockwise.attention_context(q[0], k[0], v[0], 0.5, True, window=16)
    assert max(widths) <= 32 + 16 - 1  # rows of a block plus the window: n·W work, not n²
