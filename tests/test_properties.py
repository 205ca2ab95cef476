"""Invariants of attention over random shapes, modes and values (hypothesis)."""

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from attncli import compute

MODES = st.sampled_from(["simple", "trainable", "linear", "multi-head"])


@st.composite
def inputs(draw):
    n = draw(st.integers(1, 9))
    d = draw(st.integers(1, 6))
    values = st.floats(-10, 10, allow_nan=False, width=32)
    return draw(arrays(np.float64, (n, d), elements=values))


@settings(max_examples=60, deadline=None)
@given(x=inputs(), mode=MODES, causal=st.booleans(), dtype=st.sampled_from(["float32", "float64"]))
def test_weights_are_distributions_and_causal_upper_triangle_is_zero(x, mode, causal, dtype):
    heads = 2 if mode == "multi-head" else None
    d_out = 2 * x.shape[1] if mode == "multi-head" else None
    r = compute(x, mode=mode, causal=causal, dtype=dtype, heads=heads, d_out=d_out)
    w = r.weights
    assert np.all(np.isfinite(w)) and np.all(np.isfinite(r.context))
    assert np.all((w >= 0) & (w <= 1))
    np.testing.assert_allclose(w.sum(-1), 1, atol=1e-5)
    if causal:
        n = x.shape[0]
        assert np.all(w[..., np.triu(np.ones((n, n), bool), 1)] == 0)
        assert np.all(w[..., 0, 0] == 1)


@settings(max_examples=40, deadline=None)
@given(x=inputs(), mode=MODES, data=st.data())
def test_permuting_tokens_permutes_every_step(x, mode, data):
    perm = np.array(data.draw(st.permutations(range(x.shape[0]))))
    heads = 2 if mode == "multi-head" else None
    d_out = 2 * x.shape[1] if mode == "multi-head" else None
    a = compute(x, mode=mode, heads=heads, d_out=d_out, dtype="float64")
    b = compute(x[perm], mode=mode, heads=heads, d_out=d_out, dtype="float64")
    np.testing.assert_allclose(b.context, a.context[perm], atol=1e-9)
    np.testing.assert_allclose(b.weights, a.weights[..., perm, :][..., perm], atol=1e-9)


EXTREMES = st.sampled_from([1e30, -1e30, 1e-30, -1e-30, 0.0, 1.0, -2.5])


@st.composite
def extreme_inputs(draw):
    n = draw(st.integers(1, 6))
    d = draw(st.integers(1, 4))
    return draw(arrays(np.float64, (n, d), elements=EXTREMES))


def _finite_steps(result):
    for name, a in result.steps.items():
        if name == "masked_scores":
            assert not np.isnan(a).any() and not (a == np.inf).any(), name
        else:
            assert np.isfinite(a).all(), name


@settings(max_examples=80, deadline=None)
@given(x=extreme_inputs(), mode=MODES, causal=st.booleans())
def test_extreme_magnitudes_give_finite_results_that_agree_across_dtypes(x, mode, causal):
    heads = 2 if mode == "multi-head" else None
    d_out = 2 * x.shape[1] if mode == "multi-head" else None
    r32 = compute(x, mode=mode, causal=causal, heads=heads, d_out=d_out, dtype="float32")
    r64 = compute(x, mode=mode, causal=causal, heads=heads, d_out=d_out, dtype="float64")
    _finite_steps(r32)
    _finite_steps(r64)
    np.testing.assert_allclose(r32.weights, r64.weights, atol=1e-5, rtol=1.3e-6)
    scale = max(1.0, float(np.abs(r64.context).max()))
    np.testing.assert_allclose(r32.context, r64.context, atol=1e-5 * scale, rtol=1e-5)
    if r32.config.dtype == "float64":  # widened on overflow, and it says so
        assert r32.notes and "float32 overflowed" in r32.notes[0]


@settings(max_examples=60, deadline=None)
@given(x=inputs(), mode=MODES, causal=st.booleans())
def test_blockwise_path_equals_full_path(x, mode, causal):
    heads = 2 if mode == "multi-head" else None
    d_out = 2 * x.shape[1] if mode == "multi-head" else None
    kw = {"mode": mode, "causal": causal, "heads": heads, "d_out": d_out, "engine": "numpy"}
    full = compute(x, **kw)
    fast = compute(x, context_only=True, **kw)
    scale = max(1.0, float(np.abs(full.context).max()))
    np.testing.assert_allclose(fast.context, full.context, atol=1e-5 * scale, rtol=1e-5)


@st.composite
def variant(draw):
    """A random point of the attention spec: mode, heads/kv heads, window, RoPE, QK-norm."""
    mode = draw(st.sampled_from(["multi-head", "gqa", "mqa", "mla", "linear", "simple"]))
    heads = draw(st.sampled_from([1, 2, 4])) if mode not in ("linear", "simple") else None
    options = {"mode": mode, "causal": draw(st.booleans())}
    if mode != "simple":
        options["d_out"] = 2 * (heads or 1) * draw(st.integers(1, 3))
    if heads is not None:
        options["heads"] = heads
    if mode == "gqa":
        options["kv_heads"] = draw(st.sampled_from([g for g in (1, 2, 4) if heads % g == 0]))
    if options["causal"] and draw(st.booleans()):
        options["window"] = draw(st.integers(1, 10))
    options["qk_norm"] = draw(st.booleans())
    options["rope"] = mode != "simple" and draw(st.booleans())
    return options


@settings(max_examples=60, deadline=None)
@given(x=inputs(), options=variant())
def test_variants_blockwise_equals_full_and_masks_hold(x, options):
    full = compute(x, **options)
    fast = compute(x, context_only=True, **options)
    np.testing.assert_allclose(fast.context, full.context, rtol=1e-4, atol=1e-4)
    w = full.weights
    np.testing.assert_allclose(w.sum(-1), 1, atol=1e-5)
    n = x.shape[0]
    hidden = full.hidden_keys(list(range(n)))
    assert np.all(w[..., hidden] == 0)  # future keys and keys outside the window
