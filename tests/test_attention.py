"""The four modes against the seed notebook's numbers and against torch computing the same thing."""

import numpy as np
import pytest

import attncli
from attncli import AttentionConfig, ConfigError, InputError, Parameters, Projection, compute
from tests.conftest import JOURNEY, JOURNEY_TOKENS

torch = pytest.importorskip("torch", reason="torch is the independent reference")
from tests.torch_reference import TOLERANCE, reference  # noqa: E402


def test_notebook_trainable_journey_numbers():
    """Public check from the seed notebook: journey, trainable, d_out 2, seed 123."""
    r = compute(JOURNEY, JOURNEY_TOKENS, mode="trainable", d_out=2, seed=123)
    np.testing.assert_allclose(r.steps["queries"][1], [0.4306, 1.4551], atol=5e-5)
    np.testing.assert_allclose(r.steps["keys"][1], [0.4433, 1.1419], atol=5e-5)
    np.testing.assert_allclose(
        r.steps["scores"][1], [1.2705, 1.8524, 1.8111, 1.0795, 0.5577, 1.5440], atol=5e-5
    )
    np.testing.assert_allclose(
        r.weights[1], [0.1500, 0.2264, 0.2199, 0.1311, 0.0906, 0.1820], atol=5e-5
    )


def test_simple_mode_book_numbers():
    """Section 3.3 of the book: the context vector of "journey" is [0.4419, 0.6515, 0.5683]."""
    r = compute(JOURNEY, JOURNEY_TOKENS)
    np.testing.assert_allclose(r.context[1], [0.4419, 0.6515, 0.5683], atol=5e-5)
    np.testing.assert_allclose(r.weights[1, :2], [0.1385, 0.2379], atol=5e-5)
    assert r.config.scale is False and "scaled_scores" not in r.steps


SHAPES = [(1, 1), (2, 3), (6, 3), (7, 8), (16, 12)]


def _check_against_torch(x, mode, d_out, dtype, **kw):
    ref = reference(x, mode, d_out, dtype=dtype, **kw)
    r = compute(x, mode=mode, d_out=d_out if mode != "simple" else None, dtype=dtype, **kw)
    tol = TOLERANCE[dtype]
    for step in ("queries", "keys", "values", "scores", "weights", "context"):
        np.testing.assert_allclose(r.steps[step], ref[step], **tol, err_msg=step)
        assert r.steps[step].dtype == np.dtype(dtype)
    if r.parameters is not None:
        named = r.parameters.named(linear=mode != "trainable")
        for key, value in named.items():
            np.testing.assert_array_equal(value, ref[f"param:{key}"], err_msg=key)


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("mode", ["simple", "trainable", "linear"])
@pytest.mark.parametrize("causal", [False, True])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_single_head_modes_match_torch(shape, mode, causal, dtype):
    x = np.random.default_rng(sum(shape)).normal(size=shape)
    d_out = max(1, shape[1] - 1)
    _check_against_torch(x, mode, d_out, dtype, causal=causal)


@pytest.mark.parametrize("mode", ["simple", "trainable", "linear"])
@pytest.mark.parametrize("scale", [False, True])
def test_scale_override_matches_torch(mode, scale):
    x = np.random.default_rng(3).normal(size=(5, 4))
    _check_against_torch(x, mode, 4, "float32", scale=scale, causal=True)


@pytest.mark.parametrize(
    ("n", "d_in", "d_out", "heads"),
    [(6, 3, 2, 2), (10, 8, 4, 2), (7, 8, 12, 3), (5, 4, 4, 1), (9, 16, 16, 4)],
)
@pytest.mark.parametrize("causal", [False, True])
@pytest.mark.parametrize("qkv_bias", [False, True])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_multi_head_matches_torch(n, d_in, d_out, heads, causal, qkv_bias, dtype):
    x = np.random.default_rng(n * d_in).normal(size=(n, d_in))
    _check_against_torch(
        x, "multi-head", d_out, dtype, heads=heads, causal=causal, qkv_bias=qkv_bias
    )
    r = compute(
        x,
        mode="multi-head",
        d_out=d_out,
        heads=heads,
        causal=causal,
        qkv_bias=qkv_bias,
        dtype=dtype,
    )
    assert r.weights.shape == (heads, n, n)
    assert r.steps["head_context"].shape == (n, d_out)


@pytest.mark.parametrize("seed", [0, 7, 2**40 + 3])
def test_linear_with_bias_and_other_seeds_matches_torch(seed):
    x = np.random.default_rng(1).normal(size=(6, 5))
    _check_against_torch(x, "linear", 3, "float32", qkv_bias=True, seed=seed)


def test_context_equals_torch_sdpa():
    x = np.random.default_rng(0).normal(size=(9, 6)).astype(np.float32)
    for causal in (False, True):
        r = compute(x, mode="simple", scale=True, causal=causal)
        t = torch.tensor(x)
        sdpa = torch.nn.functional.scaled_dot_product_attention(t, t, t, is_causal=causal)
        np.testing.assert_allclose(r.context, sdpa.numpy(), **TOLERANCE["float32"])


def test_causal_masks_future_and_first_token_sees_itself():
    r = compute(JOURNEY, mode="linear", causal=True)
    upper = np.triu(np.ones((6, 6), bool), 1)
    assert np.all(r.weights[upper] == 0)
    assert np.all(np.isneginf(r.steps["masked_scores"][upper]))
    assert r.weights[0, 0] == 1
    np.testing.assert_allclose(r.weights.sum(axis=-1), 1, atol=1e-6)


def test_dropout_zeroes_and_rescales_but_is_reproducible():
    x = np.random.default_rng(0).normal(size=(12, 4))
    a = compute(x, mode="trainable", dropout=0.5, seed=9)
    b = compute(x, mode="trainable", dropout=0.5, seed=9)
    np.testing.assert_array_equal(a.weights, b.weights)
    before = a.steps["weights_before_dropout"]
    kept = a.weights != 0
    assert 0 < kept.mean() < 1
    np.testing.assert_allclose(a.weights[kept], before[kept] * 2, rtol=1e-6)
    np.testing.assert_allclose(a.context, a.weights @ a.steps["values"], rtol=1e-5, atol=1e-6)
    assert np.all(compute(x, mode="trainable", dropout=1.0).weights == 0)


def test_given_parameters_are_used():
    w = np.eye(3, dtype=np.float32)
    params = Parameters(Projection(w), Projection(w), Projection(2 * w))
    r = compute(JOURNEY, mode="trainable", parameters=params)
    plain = compute(JOURNEY, mode="simple", scale=True)
    np.testing.assert_allclose(r.context, 2 * plain.context, rtol=1e-6)
    assert r.config.d_out == 3


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"mode": "multi-head", "d_out": 3, "heads": 2}, "does not divide"),
        ({"mode": "linear", "d_out": 0}, "--d-out must be at least 1"),
        ({"dropout": 1.5}, "--dropout must be between 0 and 1"),
        ({"dropout": -0.1}, "--dropout must be between 0 and 1"),
        ({"mode": "simple", "d_out": 2}, "simple mode has none"),
        ({"mode": "linear", "heads": 2}, "needs --mode multi-head"),
        ({"mode": "trainable", "qkv_bias": True}, "--qkv-bias needs"),
        ({"mode": "bogus"}, "unknown mode"),
    ],
)
def test_bad_configs_raise_config_error(options, message):
    with pytest.raises(ConfigError, match=message):
        compute(JOURNEY, **options)


@pytest.mark.parametrize(
    ("x", "message"),
    [
        (np.zeros(3), "2-D"),
        (np.zeros((2, 2, 2)), "2-D"),
        (np.zeros((0, 3)), "at least one token"),
        (np.array([[1.0, np.nan]]), "must be finite"),
        (np.full((2, 2), 1e200), "overflow float64"),
    ],
)
def test_bad_embeddings_raise_input_error(x, message):
    with pytest.raises(InputError, match=message):
        compute(x)


def test_config_object_and_result_params():
    r = attncli.compute(
        JOURNEY, config=AttentionConfig(mode="multi-head", d_out=4, heads=2, causal=True)
    )
    p = r.params()
    assert p["mode"] == "multi-head" and p["d_out"] == 4 and p["heads"] == 2 and p["head_dim"] == 2
    assert (
        p["causal"] is True and p["scale"] is True and p["seed"] == 123 and p["engine"] == "numpy"
    )
