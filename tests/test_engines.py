"""The torch engine and devices: parity with numpy, the engine choice, and clear errors."""

import numpy as np
import pytest

import attncli.engines as engines
from attncli import ConfigError, compute
from tests.torch_reference import TOLERANCE

torch = pytest.importorskip("torch", reason="the torch engine needs torch")

HALF_TOLERANCE = {"float16": 1e-2, "bfloat16": 5e-2}  # relative to the largest value
HAS_CUDA = torch.cuda.is_available()
needs_cuda = pytest.mark.skipif(not HAS_CUDA, reason="no CUDA GPU on this machine")

MODES = [("simple", {}), ("trainable", {"d_out": 3}), ("linear", {"d_out": 5, "qkv_bias": True}),
         ("multi-head", {"d_out": 6, "heads": 3})]  # fmt: skip


def _assert_engines_agree(x, mode, options, causal, scale, dtype, device="cpu"):
    ref_dtype = dtype if dtype in ("float32", "float64") else "float32"
    a = compute(
        x, mode=mode, causal=causal, scale=scale, dtype=ref_dtype, engine="numpy", **options
    )
    b = compute(
        x,
        mode=mode,
        causal=causal,
        scale=scale,
        dtype=dtype,
        engine="torch",
        device=device,
        **options,
    )
    assert (b.engine, a.engine) == ("torch", "numpy")
    assert set(a.steps) == set(b.steps)
    for name in a.steps:
        want, got = a.steps[name], b.steps[name]
        assert got.shape == want.shape, name
        if dtype in HALF_TOLERANCE:
            finite = np.isfinite(want)
            assert np.array_equal(finite, np.isfinite(got)), name
            bound = HALF_TOLERANCE[dtype] * max(1.0, float(np.abs(want[finite]).max()))
            np.testing.assert_allclose(
                got[finite], want[finite], atol=bound, rtol=HALF_TOLERANCE[dtype], err_msg=name
            )
        else:
            np.testing.assert_allclose(got, want, **TOLERANCE[dtype], err_msg=name)


@pytest.mark.parametrize(("mode", "options"), MODES)
@pytest.mark.parametrize("causal", [False, True])
@pytest.mark.parametrize("scale", [None, False, True])
@pytest.mark.parametrize("dtype", ["float32", "float64", "float16", "bfloat16"])
@pytest.mark.parametrize("shape", [(1, 4), (6, 3), (17, 8)])
def test_numpy_and_torch_engines_agree(mode, options, causal, scale, dtype, shape):
    x = np.random.default_rng(shape[0]).normal(size=shape)
    _assert_engines_agree(x, mode, options, causal, scale, dtype)


@needs_cuda
@pytest.mark.parametrize(("mode", "options"), MODES)
@pytest.mark.parametrize("dtype", ["float32", "float16", "bfloat16"])
def test_cuda_agrees_with_numpy(mode, options, dtype):
    x = np.random.default_rng(0).normal(size=(33, 8))
    _assert_engines_agree(x, mode, options, True, None, dtype, device="cuda")
    assert compute(x, engine="torch", device="cuda").device.startswith("cuda")


def test_auto_engine_choice(monkeypatch):
    small = np.ones((4, 3))
    assert compute(small).engine == "numpy"
    assert compute(small, dtype="bfloat16").engine == "torch"
    assert compute(small, engine="torch", device="cpu").device == "cpu"
    big = np.ones((5000, 2))
    monkeypatch.setattr(engines, "gpu_present", lambda: False)
    assert compute(big, context_only=True).engine == "numpy"  # the CPU: numpy, whatever the size
    monkeypatch.setattr(engines, "gpu_present", lambda: True)
    monkeypatch.setattr(engines, "GPU_TORCH_TOKENS", 4)
    assert compute(small).engine == "torch"
    assert compute(np.ones((3, 3))).engine == "numpy"
    assert compute(small, device="cpu").engine == "numpy"


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"engine": "numpy", "dtype": "float16"}, "--dtype float16 needs --engine torch"),
        ({"engine": "numpy", "device": "cuda"}, "--device cuda needs --engine torch"),
        ({"engine": "torch", "device": "tpu"}, "not a device"),
        ({"engine": "bogus"}, "unknown engine"),
    ],
)
def test_engine_config_errors(kwargs, message):
    with pytest.raises(ConfigError, match=message):
        compute(np.ones((2, 2)), **kwargs)


@pytest.mark.skipif(HAS_CUDA, reason="this machine has CUDA; the error path needs one without")
def test_cuda_requested_without_gpu_is_a_clear_error(run):
    result = run("compute", "sample:journey", "--device", "cuda")
    assert result.exit_code == 2
    assert "CUDA is not available" in result.stderr and result.stderr.count("\n") == 1


def test_torch_missing_says_how_to_install(monkeypatch):
    monkeypatch.setattr(engines, "torch_installed", lambda: False)
    with pytest.raises(ConfigError, match=r'pip install "attncli\[torch\]"'):
        compute(np.ones((2, 2)), engine="torch")


def test_engine_and_device_are_reported(run):
    import json

    doc = json.loads(
        run("compute", "sample:journey", "--engine", "torch", "--format", "json").stdout
    )
    assert doc["params"]["engine"] == "torch" and doc["params"]["device"] in ("cpu", "cuda", "mps")
    table = run("compute", "sample:journey", "--show", "weights").stdout
    assert "engine numpy on cpu" in " ".join(table.split())


def test_context_equals_sdpa_with_and_without_causal():
    x = np.random.default_rng(1).normal(size=(12, 8)).astype(np.float32)
    t = torch.tensor(x)
    for causal in (False, True):
        sdpa = torch.nn.functional.scaled_dot_product_attention(t, t, t, is_causal=causal).numpy()
        for engine in ("numpy", "torch"):
            r = compute(x, scale=True, causal=causal, engine=engine)
            np.testing.assert_allclose(r.context, sdpa, **TOLERANCE["float32"])


def test_info_lists_versions_and_engines(run):
    out = run("info", "--torch").stdout
    assert "attncli " in out and "numpy " in out and f"torch {torch.__version__}" in out
    assert "engines: numpy on cpu" in out and "torch on cpu" in out


def test_info_lists_optional_pieces_without_importing_torch():
    import subprocess
    import sys

    code = (
        "import sys\n"
        "from attncli.cli import main\n"
        "sys.argv = ['attn', 'info']\n"
        "try:\n    main()\nexcept SystemExit:\n    pass\n"
        "assert 'torch' not in sys.modules, 'attn info imported torch'\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert "optional pieces:" in proc.stdout and "matplotlib" in proc.stdout
    assert "tokenizers" in proc.stdout and "default model all-MiniLM-L6-v2" in proc.stdout
