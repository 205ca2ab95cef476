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


ROUND_TRIPS = [
    ["--mode", "gqa", "--heads", "4", "--kv-heads", "2", "--d-out", "8", "--qkv-bias"],
    ["--mode", "mqa", "--heads", "2", "--d-out", "4"],
    ["--mode", "mla", "--heads", "2", "--d-out", "4", "--latent-dim", "3", "--qkv-bias"],
    ["--mode", "multi-head", "--heads", "2", "--d-out", "4", "--causal", "--window", "2",
     "--rope", "--qk-norm"],
]  # fmt: skip


@pytest.mark.parametrize("args", ROUND_TRIPS)
@pytest.mark.parametrize("suffix", [".safetensors", ".npz", ".json", ".pt"])
def test_weights_round_trip_every_variant(run, tmp_path, args, suffix):
    path = tmp_path / f"w{suffix}"
    first = run("compute", "sample:cat", *args, "--save-weights", path, "-f", "json")
    assert first.exit_code == 0, first.stderr
    # safetensors records mode and heads; other formats need them again (never guessed)
    again = args[:2] if suffix == ".safetensors" else args[:4]
    again += [a for a in ("--causal", "--rope", "--qk-norm") if a in args]
    again += ["--window", "2"] if "--window" in args else []
    second = run("compute", "sample:cat", *again, "--weights", path, "-f", "json")
    assert second.exit_code == 0, second.stderr
    a, b = json.loads(first.stdout), json.loads(second.stdout)
    assert b["mode"] == a["mode"] and b["params"]["kv_heads"] == a["params"]["kv_heads"]
    assert b["params"]["latent_dim"] == a["params"]["latent_dim"]
    np.testing.assert_array_equal(np.array(b["steps"]["context"]), np.array(a["steps"]["context"]))


def test_weight_names_are_the_books(tmp_path, run):
    import safetensors.numpy

    names = {
        "gqa": {"W_query.weight", "W_key.weight", "W_value.weight", "out_proj.weight"},
        "mla": {"W_query.weight", "W_DKV.weight", "W_UK.weight", "W_UV.weight",
                "out_proj.weight", "out_proj.bias"},
    }  # fmt: skip
    for mode, want in names.items():
        path = tmp_path / f"{mode}.safetensors"
        extra = ["--kv-heads", "1"] if mode == "gqa" else []
        done = run("compute", "sample:cat", "--mode", mode, *extra, "--save-weights", path)
        assert done.exit_code == 0, done.stderr
        assert set(safetensors.numpy.load_file(path)) == want


def test_gqa_npz_without_mode_is_recognised_from_its_shapes(run, tmp_path):
    path = tmp_path / "w.npz"
    run("compute", "sample:cat", "--mode", "gqa", "--heads", "4", "--kv-heads", "2",
        "--save-weights", path)  # fmt: skip
    done = run("compute", "sample:cat", "--weights", path, "--heads", "4", "-f", "json")
    assert done.exit_code == 0, done.stderr
    doc = json.loads(done.stdout)
    assert doc["mode"] == "gqa" and doc["params"]["kv_heads"] == 2
    bad = run("compute", "sample:cat", "--weights", path, "--heads", "4", "--kv-heads", "4")
    assert bad.exit_code == 2 and bad.stderr.count("\n") == 1 and "W_key" in bad.stderr


def test_help_lists_the_variant_options_and_the_mode_default():
    from typer.testing import CliRunner

    from attncli.cli import app

    done = CliRunner().invoke(app, ["compute", "--help"], env={"COLUMNS": "300"})
    for option in ("--kv-heads", "--latent-dim", "--window", "--rope", "--qk-norm", "--kv",
                   "--kv-cache", "gqa", "mla"):  # fmt: skip
        assert option in done.stdout
    assert "[default: simple, or what --weights implies]" in done.stdout  # not eaten as markup


def test_learned_qk_norm_weights_load_as_qwen3_state_dicts(run, tmp_path):
    import torch

    from tests.torch_variants import GroupedQuery

    x = JOURNEY.astype(np.float32)
    torch.manual_seed(3)
    ref = GroupedQuery(3, 8, 4, 2, qk_norm=True, rope_base=10000.0)
    with torch.no_grad():
        ref.q_norm.weight.uniform_(0.5, 2.0)
        ref.k_norm.weight.uniform_(0.5, 2.0)
        want = ref(torch.tensor(x)[None])[0].numpy()
    state = {k: v.detach().numpy() for k, v in ref.state_dict().items()}
    assert {"q_norm.weight", "k_norm.weight"} <= set(state)
    torch.save(ref.state_dict(), tmp_path / "qwen.pt")
    args = ["--weights", tmp_path / "qwen.pt", "--heads", "4", "--causal", "--rope", "-f", "json"]
    done = run("compute", "sample:journey", "--mode", "gqa", "--qk-norm", *args)
    assert done.exit_code == 0, done.stderr
    np.testing.assert_allclose(np.array(json.loads(done.stdout)["steps"]["context"]), want,
                               atol=1e-5, rtol=1e-5)  # fmt: skip
    # the book's Qwen3 RMSNorm calls the weight "scale"; attncli writes "weight" back
    book = {k.replace("_norm.weight", "_norm.scale"): v for k, v in state.items()}
    np.savez(tmp_path / "book.npz", **book)
    again = run("compute", "sample:journey", "--mode", "gqa", "--qk-norm", "--weights",
                tmp_path / "book.npz", "--heads", "4", "--causal", "--rope", "-f", "json",
                "--save-weights", tmp_path / "back.npz", "--kv-cache")  # fmt: skip
    assert again.exit_code == 0, again.stderr
    doc = json.loads(again.stdout)
    np.testing.assert_allclose(np.array(doc["steps"]["context"]), want, atol=1e-5, rtol=1e-5)
    assert doc["kv_cache"]["equal_to_full"] is True
    with np.load(tmp_path / "back.npz") as back:
        np.testing.assert_array_equal(back["q_norm.weight"], state["q_norm.weight"])
    refused = run("compute", "sample:journey", "--mode", "gqa", *args)  # no --qk-norm
    assert refused.exit_code == 2 and refused.stderr.count("\n") == 1
    assert "holds QK-norm weights" in refused.stderr and "add --qk-norm" in refused.stderr
