"""The variants through the command line: options, steps, JSON params and one-line errors."""

from __future__ import annotations

import json

import numpy as np
import pytest

from attncli import compute
from tests.conftest import JOURNEY


def test_gqa_json_has_named_steps_and_params(run):
    done = run("compute", "sample:journey", "--mode", "gqa", "--heads", "4", "--kv-heads", "2",
               "--d-out", "8", "--causal", "--window", "3", "--rope", "--qk-norm",
               "--format", "json")  # fmt: skip
    assert done.exit_code == 0, done.stderr
    doc = json.loads(done.stdout)
    p = doc["params"]
    assert (p["heads"], p["kv_heads"], p["window"]) == (4, 2, 3) and p["rope"] and p["qk_norm"]
    assert p["rope_base"] == 10000.0 and p["cross"] is False
    steps = doc["steps"]
    for name in ("queries_norm", "keys_norm", "queries_rope", "keys_rope", "masked_scores"):
        assert name in steps
    assert np.array(steps["keys"]).shape == (6, 4) and np.array(steps["weights"]).shape == (4, 6, 6)
    want = compute(JOURNEY, mode="gqa", heads=4, kv_heads=2, d_out=8, causal=True, window=3,
                   rope=True, qk_norm=True)  # fmt: skip
    np.testing.assert_allclose(np.array(steps["context"]), want.context, rtol=1e-6)
    assert steps["masked_scores"][0][5][1] is None  # token 5 is 4 back: outside window 3


def test_mqa_alias_and_mla_latent_step(run):
    mqa = run("compute", "sample:journey", "--mode", "mqa", "--heads", "2", "--d-out", "4",
              "--format", "json")  # fmt: skip
    assert json.loads(mqa.stdout)["params"]["kv_heads"] == 1
    mla = run("compute", "sample:journey", "--mode", "mla", "--heads", "2", "--d-out", "4",
              "--latent-dim", "2", "--show", "latent", "--format", "csv")  # fmt: skip
    assert mla.exit_code == 0, mla.stderr
    assert mla.stdout.splitlines()[0] == "token,d0,d1" and len(mla.stdout.splitlines()) == 7


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--mode", "gqa", "--heads", "4", "--kv-heads", "3", "--d-out", "8"],
         "--kv-heads 3 does not divide --heads 4"),
        (["--mode", "gqa", "--heads", "4", "--d-out", "8"], "needs --kv-heads"),
        (["--window", "2"], "--window needs --causal"),
        (["--mode", "linear", "--latent-dim", "3"], "--latent-dim needs --mode mla"),
        (["--mode", "multi-head", "--heads", "3", "--d-out", "3", "--rope"], "must be even"),
        (["--mode", "mqa", "--kv-heads", "2", "--d-out", "4"], "one key/value head"),
    ],
)  # fmt: skip
def test_bad_variant_options_are_one_line_exit_2(run, args, message):
    for command in ("compute", "explain"):
        done = run(command, "sample:journey", *args)
        assert done.exit_code == 2
        assert done.stdout == ""
        assert done.stderr.count("\n") == 1 and message in done.stderr


def test_context_only_path_for_variants(run, tmp_path):
    out = tmp_path / "z.npy"
    args = ["--mode", "gqa", "--heads", "4", "--kv-heads", "1", "--d-out", "8", "--rope"]
    args += ["--causal", "--window", "2", "-f", "npy", "-o", out]
    done = run("compute", "sample:journey", *args)
    assert done.exit_code == 0, done.stderr
    want = compute(JOURNEY, mode="gqa", heads=4, kv_heads=1, d_out=8, causal=True, window=2,
                   rope=True)  # fmt: skip
    np.testing.assert_allclose(np.load(out), want.context, atol=1e-6)
