"""Cross-attention (--kv): keys and values from another input, against torch."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from attncli import compute
from attncli.errors import ConfigError
from tests.torch_variants import GroupedQuery

TOL = {"atol": 1e-5, "rtol": 1.3e-6}


def write_csv(path, values, prefix):
    rows = [",".join(["token", *(f"d{j}" for j in range(values.shape[1]))])]
    rows += [",".join([f"{prefix}{i}", *map(repr, row.tolist())]) for i, row in enumerate(values)]
    path.write_text("\n".join(rows) + "\n")
    return path


@pytest.fixture
def pair(tmp_path):
    rng = np.random.default_rng(1)
    q = rng.normal(size=(4, 8)).astype(np.float32)
    mem = rng.normal(size=(6, 5)).astype(np.float32)
    return q, mem, write_csv(tmp_path / "q.csv", q, "q"), write_csv(tmp_path / "m.csv", mem, "m")


@pytest.mark.parametrize("heads", [1, 2, 4])
def test_cross_attention_equals_multihead_attention_with_kdim_vdim(run, tmp_path, pair, heads):
    q, mem, q_csv, m_csv = pair
    torch.manual_seed(heads)
    mha = torch.nn.MultiheadAttention(8, heads, kdim=5, vdim=5, batch_first=True)
    assert "q_proj_weight" in mha.state_dict()  # the separate-projection layout
    torch.save(mha.state_dict(), tmp_path / "mha.pt")
    with torch.no_grad():
        out, w = mha(torch.tensor(q)[None], torch.tensor(mem)[None], torch.tensor(mem)[None],
                     average_attn_weights=False)  # fmt: skip
    done = run("compute", q_csv, "--kv", m_csv, "--weights", tmp_path / "mha.pt",
               "--heads", heads, "--format", "json")  # fmt: skip
    assert done.exit_code == 0, done.stderr
    doc = json.loads(done.stdout)
    assert doc["params"]["cross"] is True and doc["params"]["n_kv_tokens"] == 6
    weights = np.array(doc["steps"]["weights"])
    assert weights.shape == (heads, 4, 6)  # rectangular: queries × memory tokens
    np.testing.assert_allclose(weights, w[0].numpy(), **TOL)
    np.testing.assert_allclose(np.array(doc["steps"]["context"]), out[0].numpy(), **TOL)


def test_seeded_cross_multi_head_equals_the_reference(pair):
    q, mem, _, _ = pair
    torch.manual_seed(5)
    ref = GroupedQuery(8, 6, 3, 3, qkv_bias=True, causal=False, kv_first=False, out_bias=True,
                       d_kv=5)  # fmt: skip
    with torch.no_grad():
        want = ref(torch.tensor(q)[None], memory=torch.tensor(mem)[None])[0].numpy()
    r = compute(q, kv=mem, mode="multi-head", d_out=6, heads=3, qkv_bias=True, seed=5)
    np.testing.assert_allclose(r.context, want, **TOL)
    assert r.steps["kv_inputs"].shape == (6, 5) and r.steps["keys"].shape == (6, 6)
    for engine in ("torch",):
        for context_only in (False, True):
            other = compute(q, kv=mem, mode="multi-head", d_out=6, heads=3, qkv_bias=True,
                            seed=5, engine=engine, context_only=context_only)  # fmt: skip
            np.testing.assert_allclose(other.context, want, **TOL)
    fast = compute(q, kv=mem, mode="multi-head", d_out=6, heads=3, qkv_bias=True, seed=5,
                   context_only=True)  # fmt: skip
    np.testing.assert_allclose(fast.context, want, **TOL)


def test_cross_gqa_and_simple(pair):
    q, mem, _, _ = pair
    r = compute(q, kv=mem, mode="gqa", d_out=8, heads=4, kv_heads=2)
    assert r.steps["keys"].shape == (6, 4) and r.weights.shape == (4, 4, 6)
    s = compute(q[:, :5], kv=mem)  # simple: q = x, k = v = memory
    w = np.exp(q[:, :5] @ mem.T)
    np.testing.assert_allclose(s.weights, w / w.sum(1, keepdims=True), rtol=1e-5)
    np.testing.assert_allclose(s.context, s.weights @ mem, rtol=1e-5)


def test_cross_refusals(run, pair):
    q, mem, q_csv, m_csv = pair
    with pytest.raises(ConfigError, match="--causal does not apply to cross-attention"):
        compute(q, kv=mem, mode="linear", causal=True)
    with pytest.raises(ConfigError, match="--rope needs self-attention"):
        compute(q, kv=mem, mode="linear", rope=True)
    for args in (["--causal"], ["--mode", "linear", "--causal", "--window", "2"]):
        done = run("compute", q_csv, "--kv", m_csv, *args)
        assert done.exit_code == 2 and done.stdout == ""
        assert done.stderr.count("\n") == 1 and "cross-attention" in done.stderr
    done = run("compute", q_csv, "--kv", m_csv)  # simple mode: widths must agree
    assert done.exit_code == 2 and "simple mode compares them directly" in done.stderr
    done = run("compute", "-", "--kv", "-", input="")
    assert done.exit_code == 2 and "both read standard input" in done.stderr


def test_cross_tables_and_heatmap_label_keys_with_memory_tokens(run, pair):
    _, _, q_csv, m_csv = pair
    done = run("compute", q_csv, "--kv", m_csv, "--mode", "linear", "--show", "weights,heatmap")
    assert done.exit_code == 0, done.stderr
    assert "m5" in done.stdout and "(4×6)" in done.stdout and "keys: 0 m0" in done.stdout


def test_heatmap_draws_the_sliding_window_band(run):
    done = run("heatmap", "sample:journey", "--causal", "--window", "2")
    assert done.exit_code == 0, done.stderr
    tokens = ("Your", "journey", "starts", "with", "one", "step")
    lines = done.stdout.splitlines()
    rows = [next(x for x in lines if x.split()[:2] == [str(i), t]) for i, t in enumerate(tokens)]
    for i, line in enumerate(rows):  # × for future keys and keys 2+ back
        assert line.count("×") == (5 - i) + max(0, i - 1), line
    assert "window 2" in done.stdout


def test_plots_hatch_the_window_band_and_draw_cross_rectangles(pair):
    pytest.importorskip("matplotlib")
    from attncli.render.plot import weights_figure

    q, mem, _, _ = pair
    r = compute(q, mode="gqa", d_out=8, heads=4, kv_heads=2, causal=True, window=2)
    panels = [ax for ax in weights_figure(r).axes if ax.images and ax.get_title()]  # a grid
    assert len(panels) == 4
    i, j = np.indices((4, 4))
    np.testing.assert_array_equal(panels[0].images[0].get_array().mask, (j > i) | (i - j >= 2))
    cross = compute(q, [f"q{i}" for i in range(4)], kv=mem, kv_tokens=[f"m{j}" for j in range(6)],
                    mode="linear", d_out=4)  # fmt: skip
    ax = next(ax for ax in weights_figure(cross).axes if ax.images)
    assert ax.images[0].get_array().shape == (4, 6)
    assert [t.get_text() for t in ax.get_xticklabels()] == [f"m{j}" for j in range(6)]


def test_tables_dim_the_cells_outside_the_window():
    from rich.table import Table

    from attncli.render.tables import render_result

    r = compute(np.eye(5), mode="linear", d_out=2, causal=True, window=2)
    table = next(t for t in render_result(r, ["weights"]).renderables if isinstance(t, Table))
    for j, column in enumerate(table.columns[1:]):
        dim = [cell.style == "dim" for cell in column._cells]
        assert dim == [j > i or i - j >= 2 for i in range(5)]


def test_hostile_tokens_of_queries_and_memory_are_shown_as_they_are(run, tmp_path):
    hostile = ["[bold red]x[/]", "\x1b[31mred", "<b>h</b>"]
    rows = "\n".join(f'"{t}",{i},1' for i, t in enumerate(hostile))
    q = tmp_path / "q.csv"
    q.write_text("token,a,b\n" + rows + "\n")
    m = tmp_path / "m.csv"
    m.write_text("token,a\n" + "\n".join(f'"{t}",{i}' for i, t in enumerate(hostile)) + "\n")
    for args in (
        ["compute", q, "--kv", m, "--mode", "linear", "--d-out", "2", "--full",
         "--show", "weights,heatmap,stats"],
        ["explain", q, "--query", "1"],
    ):  # fmt: skip
        done = run(*args)
        assert done.exit_code == 0, done.stderr
        assert "\x1b" not in done.stdout  # no escape sequence reaches the terminal
        assert "[bold red]x[/]" in done.stdout and "\\x1b[31mred" in done.stdout
        assert "<b>h</b>" in done.stdout


def test_npz_and_csv_keep_the_memory_tokens(run, tmp_path, pair):
    _, _, q_csv, m_csv = pair
    out = tmp_path / "r.npz"
    done = run("compute", q_csv, "--kv", m_csv, "--mode", "linear", "-f", "npz", "-o", out)
    assert done.exit_code == 0, done.stderr
    with np.load(out) as npz:
        assert list(npz["kv_tokens"]) == [f"m{j}" for j in range(6)]
        assert list(npz["tokens"]) == [f"q{i}" for i in range(4)]
        assert npz["weights"].shape == (4, 6) and npz["kv_inputs"].shape == (6, 5)
    csv = run("compute", q_csv, "--kv", m_csv, "--mode", "linear", "-f", "csv", "--show", "keys")
    labels = [line.split(",")[0] for line in csv.stdout.splitlines()[1:]]
    assert labels == [f"m{j}" for j in range(6)]
