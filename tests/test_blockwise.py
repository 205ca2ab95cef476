"""The bounded-memory, context-only path equals the full path and torch's attention."""

import numpy as np
import pytest

import attncli.engines.blockwise as blockwise
from attncli import ConfigError, compute
from tests.torch_reference import TOLERANCE

MODES = [("simple", {}), ("simple", {"scale": True}), ("linear", {"d_out": 6, "qkv_bias": True}),
         ("trainable", {"d_out": 4}), ("multi-head", {"d_out": 8, "heads": 4})]  # fmt: skip


@pytest.fixture(params=["one key block", "many key blocks"])
def tiles(request, monkeypatch):
    """Small tiles force the online softmax to stream keys in several blocks, rows in several."""
    if request.param == "many key blocks":
        monkeypatch.setattr(blockwise, "TILE_BYTES", 32 * 4 * 7)  # 32 rows × 7 keys of float32
    return request.param


@pytest.mark.parametrize(("mode", "options"), MODES)
@pytest.mark.parametrize("causal", [False, True])
@pytest.mark.parametrize("n", [1, 5, 33, 130])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_blockwise_equals_full_path(tiles, mode, options, causal, n, dtype):
    x = np.random.default_rng(n).normal(size=(n, 8)) * 3
    full = compute(x, mode=mode, causal=causal, dtype=dtype, engine="numpy", **options)
    fast = compute(
        x, mode=mode, causal=causal, dtype=dtype, engine="numpy", context_only=True, **options
    )
    assert "weights" not in fast.steps and "scores" not in fast.steps
    np.testing.assert_allclose(fast.context, full.context, **TOLERANCE[dtype])
    if mode == "multi-head":
        np.testing.assert_allclose(
            fast.steps["head_context"], full.steps["head_context"], **TOLERANCE[dtype]
        )


@pytest.mark.parametrize("causal", [False, True])
def test_blockwise_matches_torch_sdpa(tiles, causal):
    torch = pytest.importorskip("torch", reason="torch is the reference")
    x = np.random.default_rng(0).normal(size=(300, 16)).astype(np.float32)
    t = torch.tensor(x)[None, None]
    sdpa = torch.nn.functional.scaled_dot_product_attention(t, t, t, is_causal=causal)[0, 0].numpy()
    for engine in ("numpy", "torch"):
        fast = compute(x, scale=True, causal=causal, engine=engine, context_only=True)
        np.testing.assert_allclose(fast.context, sdpa, **TOLERANCE["float32"])


@pytest.mark.parametrize("engine", ["numpy", "torch"])
def test_progress_counts_every_query_row_of_every_head(engine):
    if engine == "torch":
        pytest.importorskip("torch", reason="the torch engine needs torch")
    done = []
    compute(np.ones((70, 4)), mode="multi-head", d_out=4, heads=2, context_only=True,
            progress=done.append, engine=engine)  # fmt: skip
    assert sum(done) == 2 * 70  # the bar's total: rows × heads


def test_dropout_takes_the_full_path():
    r = compute(np.ones((6, 4)), mode="trainable", dropout=0.5, context_only=True)
    assert "weights" in r.steps


def test_full_matrices_beyond_memory_are_refused_before_allocating(monkeypatch):
    from attncli.engines.numpy_engine import NumpyEngine

    monkeypatch.setattr(NumpyEngine, "available_bytes", lambda self: 10_000)
    monkeypatch.setattr("attncli.core.attention.ALWAYS_FITS", 0)  # small needs are not checked
    message = r"need about 117\.2 KiB for the 100×100 matrices.*9\.8 KiB available.*--show context"
    with pytest.raises(ConfigError, match=message):
        compute(np.ones((100, 4)), engine="numpy")
    assert compute(np.ones((100, 4)), engine="numpy", context_only=True).context.shape == (100, 4)


def test_cli_context_outputs_use_the_blockwise_path(run, tmp_path):
    import json

    x = np.random.default_rng(0).normal(size=(50, 6))
    path = tmp_path / "x.npy"
    np.save(path, x)
    doc = json.loads(run("compute", path, "--show", "context", "--format", "json").stdout)
    assert set(doc["steps"]) == {"context"}
    full = compute(x).context
    np.testing.assert_allclose(np.array(doc["steps"]["context"]), full, **TOLERANCE["float32"])
    csv = run("compute", path, "--format", "csv", "--causal")
    assert csv.exit_code == 0 and csv.stderr == ""  # no progress bar on pipes
    assert len(csv.stdout.splitlines()) == 51
