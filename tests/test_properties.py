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
