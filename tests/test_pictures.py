"""Heatmaps in the terminal and plots as files: what they show is what was computed."""

import json

import numpy as np
import pytest

from attncli import compute, load_embeddings
from attncli.core.stats import row_stats
from attncli.errors import ConfigError

matplotlib = pytest.importorskip("matplotlib", reason="plots need the plot extra")


def test_terminal_heatmap_shades_without_colour_and_marks_masked(run):
    out = run("heatmap", "sample:journey", "--causal").stdout
    assert "\x1b[" not in out
    lines = [line for line in out.splitlines() if line.startswith("0 Your")]
    assert lines and lines[0].split()[2] == "██" and lines[0].count("×") == 5  # masked, not zero
    assert "× masked key" in out and "keys: 0 Your, 1 journey" in out


def test_heatmap_uses_colour_cells_on_a_colour_terminal(run, monkeypatch):
    monkeypatch.setenv("FORCE_COLOR", "1")
    monkeypatch.delenv("NO_COLOR", raising=False)
    monkeypatch.setenv("TERM", "xterm-256color")
    out = run("compute", "sample:journey", "--show", "heatmap").stdout
    assert "\x1b[" in out and "48;" in out  # background colours


def test_one_map_per_head_and_long_inputs_pooled(run, tmp_path):
    heads = run("heatmap", "sample:cat", "--mode", "multi-head", "--heads", "2").stdout
    assert "weights · head 0" in heads and "weights · head 1" in heads
    x = np.random.default_rng(0).normal(size=(200, 4))
    path = tmp_path / "long.npy"
    np.save(path, x)
    for width in (60, 80, 160):
        out = run("heatmap", path, env={"COLUMNS": str(width)}).stdout
        assert "overview of 200×200" in out
        assert max(len(line) for line in out.splitlines()) <= width
        header = next(line for line in out.splitlines() if line.lstrip().startswith("0 "))
        numbers = [int(t) for t in header.split()]
        assert numbers == sorted(numbers) and numbers[-1] < 200  # never wrapped or merged


def test_pooling_sums_keys_and_averages_queries():
    from attncli.render.heatmap import pool

    w = np.random.default_rng(3).random((7, 10))
    pooled = pool(w, 3, 4, "sum")
    assert pooled.shape == (3, 3)
    np.testing.assert_allclose(pooled[0, 0], w[0:3, 0:4].sum() / 3)
    np.testing.assert_allclose(pooled[2, 2], w[6:7, 8:10].sum())
    # a pooled row sums to the mean of its queries' row sums: rows of weights keep summing to 1
    np.testing.assert_allclose(
        pooled.sum(axis=1), [w[0:3].sum() / 3, w[3:6].sum() / 3, w[6:].sum()]
    )


def test_one_scale_for_every_head(run, tmp_path):
    # head 0 attends evenly (largest weight 0.25), head 1 sharply: only head 1 reaches full
    from attncli.render.heatmap import SHADES, heatmap
    from attncli.render.tables import make_console

    x = np.eye(4) * 30
    r = compute(x, [f"t{i}" for i in range(4)], mode="multi-head", heads=2, d_out=2)
    w = np.stack([np.full((4, 4), 0.25), np.eye(4)])
    r = type(r)(r.tokens, r.config, {**r.steps, "weights": w})
    console = make_console(width=80)
    with console.capture() as cap:
        console.print(heatmap(r, 80, color=False))
    text = cap.get()
    first, second = text.split("weights · head 1")
    assert SHADES[-1] * 2 not in first and SHADES[-1] * 2 in second
    assert "1.00: one scale for every head" in text


def test_stats_match_the_weights(run):
    out = run("heatmap", "sample:journey", "--stats").stdout
    r = compute(load_embeddings("sample:journey").values)
    st = row_stats(r.weights[1])
    row = next(line for line in out.splitlines() if line.startswith("│ journey"))
    assert f"{st.entropy:.4f}" in row and f"{st.max_weight:.4f}" in row
    assert row.split("│")[2].split()[0] == "journey"  # the top token


def test_views_need_the_table_format(run):
    result = run("compute", "sample:journey", "--show", "heatmap", "--format", "json")
    assert result.exit_code == 2 and "terminal view" in result.stderr


def test_weights_plot_values_panels_and_hatching():
    from attncli.render.plot import weights_figure

    emb = load_embeddings("sample:cat")
    r = compute(emb.values, emb.tokens, mode="multi-head", heads=2, causal=True)
    fig = weights_figure(r)
    panels = [ax for ax in fig.axes if ax.images and ax.get_xlabel() == "key"]
    assert len(panels) == 2
    for h, ax in enumerate(panels):
        shown = ax.images[0].get_array()
        np.testing.assert_array_equal(shown.data, r.weights[h])
        assert shown.mask[0, 1] and not shown.mask[1, 0]  # masked cells are not drawn as zero
        assert [t.get_text() for t in ax.get_xticklabels()] == list(emb.tokens)
        assert any(p.get_hatch() for p in ax.patches)
        assert len(ax.texts) == 55  # values in the visible cells of a 10-token map
    assert any(ax.get_ylabel() == "attention weight" for ax in fig.axes)  # the colour bar


def test_score_plots_scale_to_their_own_range_weights_to_one():
    from attncli.render.plot import PlotStyle, weights_figure

    emb = load_embeddings("sample:cat")
    r = compute(emb.values, emb.tokens, mode="multi-head", heads=2, causal=True, softcap=0.05)
    capped = r.steps["capped_scores"]
    image = weights_figure(r, style=PlotStyle(step="capped_scores")).axes[0].images[0]
    assert image.get_clim() == (capped.min(), capped.max())  # not stretched to 1
    assert abs(capped).max() <= 0.05
    weights = weights_figure(r).axes[0].images[0]
    assert weights.get_clim() == (0.0, 1.0)
    journey = load_embeddings("sample:journey")  # its scores X·Xᵀ are all above 0.29
    simple = compute(journey.values, journey.tokens)
    with pytest.raises(ConfigError, match=r"--vmax 0.1 is not above the smallest value of scor"):
        weights_figure(simple, style=PlotStyle(step="scores", vmax=0.1))
    plain = compute(emb.values, emb.tokens, mode="multi-head", heads=2)
    with pytest.raises(ConfigError, match=r"--step: step 'capped_scores' .*add --softcap C"):
        weights_figure(plain, style=PlotStyle(step="capped_scores"))


def test_plot_files_are_valid_images(run, tmp_path):
    png = tmp_path / "w.png"
    result = run("plot", "sample:journey", "--causal", "-o", png)
    assert result.exit_code == 0, result.stderr
    image = matplotlib.image.imread(png)
    assert image.shape[0] > 300 and image.shape[1] > 300
    for suffix, magic in ((".svg", b"<?xml"), (".pdf", b"%PDF")):
        path = tmp_path / f"w{suffix}"
        assert run("plot", "sample:journey", "-o", path).exit_code == 0
        assert path.read_bytes().startswith(magic)
    bad = run("plot", "sample:journey", "-o", tmp_path / "w.gif")
    assert bad.exit_code == 2 and ".png" in bad.stderr


def test_vectors_plot_shares_one_projection():
    from attncli.render.plot import vectors_figure

    embs = [(s, load_embeddings(f"sample:{s}")) for s in ("bank_money", "bank_river")]
    results = [(s, compute(e.values, e.tokens)) for s, e in embs]
    fig = vectors_figure(results)
    ax = fig.axes[0]
    labels = [t.get_text() for t in ax.texts]
    assert "bank / Bank" in labels  # one static vector, two sentences
    contexts = [c.get_offsets() for c in ax.collections[1::2]]
    bank_money, bank_river = contexts[0][1], contexts[1][0]
    assert np.linalg.norm(bank_money - bank_river) > 0.1  # two different contextual "bank"s


def test_vectors_plot_needs_matching_widths(run, tmp_path):
    result = run("plot", "sample:journey", "--mode", "linear", "--d-out", "2", "--kind", "vectors",
                 "-o", tmp_path / "v.png")  # fmt: skip
    assert result.exit_code == 2 and "needs d_out = d_in" in result.stderr


def test_missing_matplotlib_says_how_to_install(run, tmp_path, monkeypatch):
    import builtins

    real_import = builtins.__import__

    def no_matplotlib(name, *args, **kwargs):
        if name.startswith("matplotlib"):
            raise ImportError(name)
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_matplotlib)
    result = run("plot", "sample:journey", "-o", tmp_path / "w.png")
    assert result.exit_code == 2 and 'pip install "attncli[plot]"' in result.stderr


def test_long_inputs_label_every_kth_token():
    from attncli.render.plot import MAX_LABELS, weights_figure

    n = 3 * MAX_LABELS
    r = compute(np.random.default_rng(0).normal(size=(n, 4)))
    ax = weights_figure(r).axes[0]
    labels = [t.get_text() for t in ax.get_xticklabels()]
    assert len(labels) == MAX_LABELS and labels[:2] == ["t0", "t3"]
    assert ax.images[0].get_array().shape == (n, n)  # every cell is still drawn


def test_heatmap_rows_line_up_with_wide_characters(run, tmp_path):
    from rich.cells import cell_len

    path = tmp_path / "wide.json"
    tokens = ["猫猫猫", "a", "ｆｕｌｌ", "e\u0301"]
    path.write_text(json.dumps({"tokens": tokens, "embeddings": np.eye(4).tolist()}))
    out = run("heatmap", path).stdout
    rows = [line for line in out.splitlines() if line[:2] in ("0 ", "1 ", "2 ", "3 ")][:4]
    assert len(rows) == 4
    assert len({cell_len(line) for line in rows}) == 1  # every row ends in one column
