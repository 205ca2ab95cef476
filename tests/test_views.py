"""Views at the size of a real model: tables that fit the terminal, honest headers, a model's
default view. Each test reads the rendered text."""

import json

import numpy as np
import pytest

from attncli import compute, load_embeddings


def _table_header(out: str, after: str) -> list[str]:
    """The column labels of the first table after the line containing ``after``."""
    lines = out.splitlines()
    start = next(i for i, line in enumerate(lines) if after in line)
    header = next(line for line in lines[start:] if line.startswith("┃"))
    return [cell.strip() for cell in header.strip("┃").split("┃")]


@pytest.mark.parametrize("width", [60, 80, 120, 200])
def test_tables_fit_the_width_and_mark_what_is_hidden(run, width):
    args = ["compute", "sample:cat", "--mode", "multi-head", "--heads", "2", "--show", "weights"]
    out = run(*args, "--query", "it", env={"COLUMNS": str(width)}).stdout
    assert max(len(line) for line in out.splitlines()) <= width
    labels = _table_header(out, "weights · head 0")[1:]
    tokens = list(load_embeddings("sample:cat").tokens)
    if "…" in labels:
        gap = labels.index("…")
        assert (
            labels[:gap] == tokens[:gap]
            and labels[gap + 1 :] == tokens[len(tokens) - (len(labels) - gap - 1) :]
        )
    else:
        assert labels == tokens
    if width >= 120:
        assert labels == tokens  # 10 columns fit: "the" and "mat" are not hidden


def test_full_shows_every_column(run):
    out = run("compute", "sample:cat", "--show", "weights", "--full", env={"COLUMNS": "40"})
    labels = _table_header(out.stdout, "weights")[1:]
    assert labels == list(load_embeddings("sample:cat").tokens)


def test_long_column_labels_are_counted(run, tmp_path):
    path = tmp_path / "long.json"
    tokens = [f"tokenization{i}" for i in range(8)]
    path.write_text(json.dumps({"tokens": tokens, "embeddings": [[i, 1] for i in range(8)]}))
    out = run("compute", path, "--show", "weights", env={"COLUMNS": "80"}).stdout
    assert max(len(line) for line in out.splitlines()) <= 80
    labels = _table_header(out, "weights")[1:]
    assert "…" in labels and all(lab == "…" or lab.startswith("tokenizati") for lab in labels)


def test_headers_say_what_the_step_is(run):
    simple = run("compute", "sample:journey", "--show", "scores").stdout
    assert "X·Xᵀ" in simple and "Q·Kᵀ" not in simple
    dropped = run("compute", "sample:journey", "--dropout", "0.5", "--show", "weights").stdout
    assert "rescaled by 1/(1−p) = 2" in dropped and "softmax of each row" not in dropped
    one = run("compute", "sample:cat", "--mode", "multi-head", "--heads", "1").stdout
    assert "1 head × 8" in one and "1 heads" not in one


def test_summary_breaks_between_phrases(run):
    out = run("compute", "sample:cat", "--mode", "linear", env={"COLUMNS": "60"}).stdout
    head = out.split("\n\n")[0].splitlines()
    assert len(head) > 1 and all(len(line) <= 60 for line in head)
    assert any("engine numpy on cpu" in line for line in head)


def test_multi_head_defaults_work_on_the_flagship_sample(run):
    result = run("compute", "sample:journey", "--mode", "multi-head")
    assert result.exit_code == 0, result.stderr
    assert "1 head × 3" in result.stdout and "attn: note: d_out 3 is odd" in result.stderr
    r = compute(load_embeddings("sample:journey").values, mode="multi-head", d_out=4)
    assert r.config.heads == 2  # where 2 divides d_out, the book's 2 heads


def test_a_models_default_view_is_the_heads_pictures(run):
    pytest.importorskip("tokenizers", reason="attn model needs tokenizers")
    try:
        from attncli.model import default_model_dir

        default_model_dir()
    except Exception as e:
        pytest.skip(f"the packaged all-MiniLM-L6-v2 is not installed ({e})")
    sentence = "The cat sat on the mat because it was warm"
    out = run("model", sentence).stdout
    assert out.count("weights · head") == 12 and "per-query statistics" not in out
    assert "queries (12×384)" not in out and len(out.splitlines()) < 250
    one = run("model", sentence, "--layer", "5", "--head", "11").stdout
    assert "per-query statistics" in one and "weights (12×12)" in one
    matrices = run("model", sentence, "--head", "0", "--show", "queries").stdout
    assert "queries (12×32)" in matrices


# ---- images ----------------------------------------------------------------------------------


def _panels(fig):
    return [ax for ax in fig.axes if ax.images and ax.get_title()]


def test_many_heads_make_a_grid_with_one_colour_bar():
    pytest.importorskip("matplotlib", reason="plots need the plot extra")
    from attncli.render.plot import PlotStyle, weights_figure

    emb = load_embeddings("sample:cat")
    r = compute(emb.values, emb.tokens, mode="multi-head", heads=8, d_out=16, causal=True)
    fig = weights_figure(r, "sample:cat")
    panels = _panels(fig)
    assert len(panels) == 8
    assert len({round(ax.get_position().x0, 3) for ax in panels}) == 3  # ⌈√8⌉ columns
    width, height = fig.get_size_inches()
    assert width < 2.5 * height  # a grid, not a strip
    assert sum(ax.get_ylabel() == "attention weight" for ax in fig.axes) == 1
    assert sum(ax.get_ylabel() == "query" for ax in panels) == 3  # one per row
    wide = weights_figure(r, "", PlotStyle(cols=4))
    assert len({round(ax.get_position().x0, 3) for ax in _panels(wide)}) == 4


def test_plot_style_options_change_what_is_drawn():
    pytest.importorskip("matplotlib", reason="plots need the plot extra")
    from attncli.render.plot import PlotStyle, weights_figure

    emb = load_embeddings("sample:journey")
    r = compute(emb.values, emb.tokens, mode="trainable", d_out=2, causal=True)
    scores = weights_figure(r, "", PlotStyle(step="scores", values=False, query=1, vmax=2.0))
    ax = _panels(scores)[0]
    np.testing.assert_array_equal(ax.images[0].get_array().data, r.steps["scores"])
    assert ax.images[0].get_clim()[1] == 2.0 and not ax.texts
    outlined = [p for p in ax.patches if p.get_edgecolor()[:3] == (1.0, 0.0, 0.0)]
    assert len(outlined) == 1 and outlined[0].get_y() == 0.5  # row 1, from y = 0.5
    weights = _panels(weights_figure(r, ""))[0]
    assert weights.texts and weights.images[0].get_array().mask[0, 1]  # values; mask hatched


def test_titles_are_one_line_and_settings_go_below():
    pytest.importorskip("matplotlib", reason="plots need the plot extra")
    from attncli.render.plot import weights_figure

    emb = load_embeddings("sample:journey")
    sentence = " ".join(["a long sentence"] * 40)
    fig = weights_figure(compute(emb.values, emb.tokens), sentence)
    title = fig._suptitle.get_text()
    assert "\n" not in title and title.endswith("…") and len(title) < len(sentence)
    below = fig._supxlabel.get_text()
    assert "mode simple" in below and all("engine numpy on" in line or " · " in line
                                          for line in below.splitlines())  # fmt: skip


def test_plot_command_options_and_svg_text(run, tmp_path):
    pytest.importorskip("matplotlib", reason="plots need the plot extra")
    import matplotlib.image

    small, big = tmp_path / "a.png", tmp_path / "b.png"
    assert run("plot", "sample:journey", "-o", small, "--dpi", "50").exit_code == 0
    assert run("plot", "sample:journey", "-o", big, "--dpi", "100").exit_code == 0
    w_small = matplotlib.image.imread(small).shape[1]
    assert abs(matplotlib.image.imread(big).shape[1] - 2 * w_small) <= 2
    svg = tmp_path / "s.svg"
    args = ["--title", "My slide", "--cmap", "magma", "--step", "scores", "--query", "journey"]
    result = run("plot", "sample:journey", "-o", svg, *args)
    assert result.exit_code == 0, result.stderr
    import xml.etree.ElementTree as ET

    texts = ["".join(t.itertext()) for t in ET.parse(svg).iter("{http://www.w3.org/2000/svg}text")]
    assert "My slide" in texts and "journey" in texts  # text kept as text, for editing
    bad = run("plot", "sample:journey", "-o", svg, "--cmap", "nope")
    assert bad.exit_code == 2 and "--cmap 'nope'" in bad.stderr


# ---- attn model: grids, data, explain ---------------------------------------------------------


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory):
    pytest.importorskip("tokenizers", reason="model folders carry a tokenizer.json")
    pytest.importorskip("transformers", reason="builds the test model")
    from tests.test_model import _tiny_bert

    return _tiny_bert(tmp_path_factory.mktemp("tiny"))


def test_model_plot_of_every_layer_and_head_is_a_grid(run, tiny_model, tmp_path):
    pytest.importorskip("matplotlib", reason="plots need the plot extra")
    from attncli.model import load_model
    from attncli.render.plot import grid_figure

    model = load_model(tiny_model)
    enc = model.encode("the cat sat")
    stack = model.forward(enc.ids, enc.tokens, model.n_layers - 1)
    maps = [(i, h, stack[i][1].weights[h]) for i in range(3) for h in range(4)]
    fig = grid_figure(maps, list(enc.tokens), causal=False)
    panels = _panels(fig)
    assert len(panels) == 12 and {ax.get_title() for ax in panels} >= {"L0 H0", "L2 H3"}
    np.testing.assert_array_equal(panels[5].images[0].get_array().data, stack[1][1].weights[1])
    out = tmp_path / "grid.png"
    for extra in (["--layer", "all", "--head", "all"], ["--layer", "all"], ["--head", "all"]):
        out.unlink(missing_ok=True)
        result = run("model", "the cat sat", "--model-dir", tiny_model, *extra, "--plot", out)
        assert result.exit_code == 0 and out.stat().st_size > 0, result.stderr
    refused = run("model", "the cat", "--model-dir", tiny_model, "--embeddings", "--plot", out)
    assert refused.exit_code == 2 and "--plot" in refused.stderr


def test_model_weights_of_every_layer_as_npz_and_json(run, tiny_model, tmp_path):
    from attncli.model import load_model

    model = load_model(tiny_model)
    enc = model.encode("the cat sat on the mat")
    stack = model.forward(enc.ids, enc.tokens, model.n_layers - 1)
    npz = tmp_path / "all.npz"
    args = ["model", "the cat sat on the mat", "--model-dir", tiny_model, "--layer", "all"]
    assert run(*args, "-f", "npz", "-o", npz).exit_code == 0
    data = np.load(npz)
    assert data["weights"].shape == (3, 4, len(enc.tokens), len(enc.tokens))
    for i in range(3):
        np.testing.assert_array_equal(data["weights"][i], stack[i][1].weights)
    assert data["tokens"].tolist() == list(enc.tokens)
    doc = json.loads(run(*args, "--head", "all", "-f", "json", "--show", "weights").stdout)
    head = next(h for h in doc["heads"] if h["layer"] == 2 and h["head"] == 3)
    np.testing.assert_allclose(head["weights"], stack[2][1].weights[3])
    plain = json.loads(run(*args, "--head", "all", "-f", "json").stdout)
    assert "weights" not in plain["heads"][0]


def test_model_explain_as_json_and_markdown(run, tiny_model):
    args = ["model", "the cat sat", "--model-dir", tiny_model, "--head", "1", "--explain",
            "--query", "cat"]  # fmt: skip
    doc = json.loads(run(*args, "-f", "json").stdout)
    assert doc["token"] == "cat" and doc["sections"]
    md = run(*args, "-f", "markdown").stdout
    assert md.startswith("# attn explain: query “cat”") and "$$" in md
    refused = run("model", "the cat", "--model-dir", tiny_model, "-f", "markdown")
    assert refused.exit_code == 2 and "--explain" in refused.stderr


def test_cross_attention_header_counts_the_memory(run):
    out = run("compute", "sample:journey", "--kv", "sample:cat", "--mode", "linear").stdout
    assert "cross-attention to 10 memory tokens" in out  # cat has 10 tokens, journey 6
    assert "6 tokens" in out
