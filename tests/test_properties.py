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
