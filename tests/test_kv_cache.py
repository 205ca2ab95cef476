"""--kv-cache: token-by-token generation equals the full result and the book's cached classes."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from attncli import compute
from attncli.core.kvcache import cached_run
from tests.torch_variants import GroupedQuery, LatentAttention

TOL = {"atol": 1e-5, "rtol": 1.3e-6}


def generate(module, x: np.ndarray) -> np.ndarray:
    """The book's use_cache=True loop: one token per forward call."""
    with torch.no_grad():
        rows = [
            module(torch.tensor(x[t : t + 1])[None], use_cache=True)[0, 0] for t in range(len(x))
        ]
    return torch.stack(rows).numpy()


@pytest.mark.parametrize(
    "options",
    [{"kv_heads": 2}, {"kv_heads": 1, "rope": True, "qk_norm": True},
     {"kv_heads": 2, "window": 3, "rope": True}],
)  # fmt: skip
def test_cached_gqa_equals_the_books_cached_class(options):
    x = np.random.default_rng(0).normal(size=(9, 6)).astype(np.float32)
    torch.manual_seed(123)
    ref = GroupedQuery(6, 8, 4, options["kv_heads"], window=options.get("window"),
                       rope_base=10000.0 if options.get("rope") else None,
                       qk_norm=options.get("qk_norm", False))  # fmt: skip
    want = generate(ref, x)
    r = compute(x, mode="gqa", heads=4, d_out=8, causal=True, **options)
    run = cached_run(r)
    assert run.equal and run.stores == "K and V"
    np.testing.assert_allclose(run.context, want, **TOL)
    window = options.get("window") or 9
    hd = 2
    for step in run.steps:  # K and V of kv_heads heads, for the tokens still in the window
        assert step.entries == min(step.token + 1, window)
        assert step.bytes == step.entries * 2 * options["kv_heads"] * hd * 4


def test_cached_mla_stores_the_latent_and_equals_the_books_class():
    x = np.random.default_rng(1).normal(size=(7, 5)).astype(np.float32)
    torch.manual_seed(123)
    want = generate(LatentAttention(5, 8, 2, latent_dim=3), x)
    run = cached_run(compute(x, mode="mla", heads=2, d_out=8, latent_dim=3, causal=True))
    assert run.equal and run.stores == "latent c"
    np.testing.assert_allclose(run.context, want, **TOL)
    assert [s.bytes for s in run.steps] == [(t + 1) * 3 * 4 for t in range(7)]


@pytest.mark.parametrize("mode", ["simple", "trainable", "linear", "multi-head"])
def test_cached_chapter_3_modes_equal_the_full_result(mode):
    x = np.random.default_rng(2).normal(size=(8, 4))
    r = compute(x, mode=mode, causal=True, dtype="float64")
    run = cached_run(r)
    assert run.equal
    np.testing.assert_allclose(run.context, r.context, atol=1e-12)


def test_cached_run_keeps_the_configs_norm_epsilon_and_rope_frequencies():
    """A model's RMSNorm ε and scaled rope frequencies (Llama 3) reach the replay too: with the
    defaults instead, the replayed context would differ from the full one."""
    x = np.random.default_rng(3).normal(size=(9, 8)) * 0.01  # tiny rows: ε matters
    freqs = (1.0, 0.02)
    r = compute(x, mode="gqa", heads=2, kv_heads=1, d_out=8, causal=True, rope=True,
                rope_freqs=freqs, qk_norm=True, rms_eps=0.5, dtype="float64")  # fmt: skip
    default = compute(x, mode="gqa", heads=2, kv_heads=1, d_out=8, causal=True, rope=True,
                      qk_norm=True, dtype="float64")  # fmt: skip
    assert np.abs(r.context - default.context).max() > 1e-6  # the settings change the numbers
    run = cached_run(r)
    assert run.equal
    np.testing.assert_allclose(run.context, r.context, atol=1e-12)


def test_kv_cache_cli(run):
    args = ["sample:cat", "--mode", "gqa", "--heads", "4", "--kv-heads", "2", "--d-out", "8"]
    done = run("compute", *args, "--causal", "--kv-cache", "-f", "json")
    assert done.exit_code == 0, done.stderr
    cache = json.loads(done.stdout)["kv_cache"]
    assert cache["equal_to_full"] is True and len(cache["steps"]) == 10
    assert cache["steps"][-1]["bytes"] == 10 * 2 * 2 * 2 * 4
    table = run("compute", *args, "--causal", "--kv-cache", "--show", "context")
    assert "equals the full computation" in table.stdout and "cached tokens" in table.stdout
    explain = run("explain", *args, "--causal", "--kv-cache", "--query", "3", "-f", "json")
    section = next(s for s in json.loads(explain.stdout)["sections"] if s["key"] == "kv_cache")
    assert "attends to the 4 cached token(s)" in section["lines"][0]
    for bad, message in ((["--kv-cache"], "needs --causal"),
                         (["--causal", "--kv-cache", "-f", "csv"], "table or json")):  # fmt: skip
        done = run("compute", *args, *bad)
        assert done.exit_code == 2 and done.stderr.count("\n") == 1 and message in done.stderr
