"""Views at the size of a real model: tables that fit the terminal, honest headers, a model's
default view. Each test reads the rendered text."""

import json

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
