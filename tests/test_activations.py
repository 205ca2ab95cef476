"""The model families' activations against the standard library and torch."""

import math

import numpy as np
import pytest

from attncli.model.activations import erf, gelu, gelu_tanh


def test_erf_matches_math_erf_on_a_dense_grid():
    x = np.linspace(-12, 12, 480_001)
    reference = np.fromiter((math.erf(v) for v in x), float, len(x))
    assert np.abs(erf(x) - reference).max() < 1e-14
    assert erf(np.array([np.inf, -np.inf, 6.0, -7.5])).tolist() == [1.0, -1.0, 1.0, -1.0]
    assert np.isnan(erf(np.array([np.nan]))).all()


def test_erf_in_float32_is_accurate_to_1e7():
    x = np.linspace(-12, 12, 480_001).astype(np.float32)
    reference = np.fromiter((math.erf(float(v)) for v in x), float, len(x))
    got = erf(x)
    assert got.dtype == np.float32 and np.abs(got - reference).max() < 1e-7


def test_erf_keeps_shape_and_order_of_strided_input():
    x = np.linspace(-3, 3, 3 * 70_001).reshape(3, 70_001).T  # not contiguous, several chunks
    reference = np.vectorize(math.erf)(x)
    got = erf(x)
    assert got.shape == x.shape and np.abs(got - reference).max() < 1e-14


def test_gelu_variants_match_torch():
    torch = pytest.importorskip("torch", reason="torch is the reference")
    x = np.random.default_rng(0).normal(scale=3, size=(64, 97)).astype(np.float32)
    t = torch.from_numpy(x)
    exact = torch.nn.functional.gelu(t.double()).float().numpy()
    tanh = torch.nn.functional.gelu(t, approximate="tanh").numpy()
    np.testing.assert_allclose(gelu(x), exact, atol=1e-6, rtol=1.3e-6)
    np.testing.assert_allclose(gelu_tanh(x), tanh, atol=1e-5, rtol=1.3e-6)
