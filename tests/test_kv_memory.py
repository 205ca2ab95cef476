"""attn kv-memory against the numbers the book's memory_estimator scripts print in its READMEs."""

from __future__ import annotations

import json

import pytest

from attncli.core.kvmemory import estimate, split_layers


def gb(rows):
    return {r.name: round(r.bytes / 1e9, 2) for r in rows}


def test_gqa_and_swa_examples_of_the_book():
    # ch04/04_gqa and ch04/06_swa READMEs: emb 4096, 32 heads, 32 layers, 32768 tokens, bf16,
    # n_kv_groups 4 (8 kv heads), window 1024 at ratio 5:1
    hd, rows = estimate(layers=32, heads=32, emb_dim=4096, kv_heads=8, window=1024,
                        swa_ratio="5:1", context=32768, dtype="bf16")  # fmt: skip
    assert hd == 128
    assert gb(rows) == {"MHA": 17.18, "GQA": 4.29, "MHA + SWA": 3.14, "GQA + SWA": 0.78}


def test_mla_example_of_the_book():
    # ch04/05_mla README: emb 2048, 24 heads (head_dim 86), 48 layers, 8192 tokens, latent 1024
    hd, rows = estimate(layers=48, heads=24, emb_dim=2048, kv_heads=6, latent_dim=1024,
                        context=8192, dtype="bf16")  # fmt: skip
    assert hd == 86 and gb(rows) == {"MHA": 3.25, "GQA": 0.81, "MLA": 0.81}
    assert round(rows[0].bytes / rows[2].bytes, 2) == 4.03  # "Ratio (MHA / MLA): 4.03x"


def test_exact_bytes_and_layer_split():
    _, rows = estimate(layers=2, heads=4, head_dim=8, kv_heads=1, latent_dim=6, window=3,
                       context=10, batch=2, dtype="fp32")  # fmt: skip
    sizes = {r.name: r.bytes for r in rows}
    assert sizes["MHA"] == 2 * 10 * 8 * 4 * 2 * 4 * 2
    assert sizes["GQA"] == sizes["MHA"] // 4
    assert sizes["MLA"] == 2 * 10 * 6 * 4 * 2
    assert sizes["MHA + SWA"] == sizes["MHA"] * 3 // 10  # every layer keeps 3 of 10 tokens
    assert split_layers(32, "5:1") == (27, 5) and split_layers(7, "0:1") == (0, 7)


def test_cli_json_and_errors(run):
    done = run("kv-memory", "--layers", "32", "--heads", "32", "--emb-dim", "4096",
               "--kv-heads", "8", "--context", "32768", "-f", "json")  # fmt: skip
    assert done.exit_code == 0, done.stderr
    doc = json.loads(done.stdout)
    assert doc["config"]["head_dim"] == 128 and doc["config"]["bytes_per_element"] == 2
    assert [e["name"] for e in doc["estimates"]] == ["MHA", "GQA"]
    assert doc["estimates"][1]["ratio_to_mha"] == 4.0
    table = run("kv-memory", "--layers", "32", "--heads", "32", "--head-dim", "128",
                "--context", "32768")  # fmt: skip
    assert "17.18 GB" in table.stdout
    for args, message in (
        (["--kv-heads", "5"], "does not divide"),
        ([], "give --head-dim or --emb-dim"),
        (["--window", "8", "--swa-ratio", "x"], "--swa-ratio"),
        (["--dtype", "fp64"], "--dtype"),
    ):
        dims = [] if message.startswith("give") else ["--head-dim", "8"]
        bad = run("kv-memory", "--layers", "2", "--heads", "4", *dims, *args)
        assert bad.exit_code == 2 and bad.stderr.count("\n") == 1 and message in bad.stderr


@pytest.mark.parametrize("ratio", ["1:0", "2:1", "0:1", "3:5"])
def test_split_layers_counts_every_layer(ratio):
    swa, full = split_layers(13, ratio)
    assert swa + full == 13


def test_help_has_examples(run):
    done = run("kv-memory", "--help")
    assert done.exit_code == 0 and "Example" in done.stdout and "attn kv-memory" in done.stdout


def test_dtype_names_of_attn_compute_are_accepted():
    _, a = estimate(layers=1, heads=2, head_dim=4, dtype="bfloat16")
    _, b = estimate(layers=1, heads=2, head_dim=4, dtype="bf16")
    _, c = estimate(layers=1, heads=2, head_dim=4, dtype="float32")
    assert a == b and c[0].bytes == 2 * a[0].bytes
