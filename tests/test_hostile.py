"""Text from the data is hostile: tokens, file names and keys are shown as the characters they are
in every view, never read as rich markup, emoji codes, terminal escapes, HTML or math."""

import json
import os
import re
import subprocess
import sys

import numpy as np
import pytest

from attncli import compute
from attncli.visible import label, visible

ESC_TOKEN = "\x1b[2J\x1b]0;pwned\x07x"
HOSTILE = [
    "[/]",
    "[bold red]x[/]",
    ":smile:",
    "[link=https://e.invalid]y[/link]",
    ESC_TOKEN,
    "a\nb",
    "\u202eevil",
    "$x_1$",
    "<b>x</b>",
]


@pytest.fixture
def hostile_file(tmp_path):
    """A JSON input whose tokens are HOSTILE (JSON keeps every character)."""
    path = tmp_path / "hostile.json"
    x = np.random.default_rng(1).normal(size=(len(HOSTILE), 4)).round(3).tolist()
    path.write_text(json.dumps({"tokens": HOSTILE, "embeddings": x}))
    return path


def _assert_literal(out: str) -> None:
    """No control character but newlines reached the output; each token appears as written."""
    assert not any(c in out for c in "\x1b\x07\u202e"), repr(out[:400])
    for text in ("[/]", "[bold red]x[/]", ":smile:", "[link=https://e.invalid]y[/link]"):
        assert text[:8] in out, text  # shown (possibly shortened with …), not interpreted
    assert "😄" not in out
    assert "\\x1b[2J" in out and "\\u202eevil" in out and "a\\nb" in out


def test_visible_escapes_controls_format_characters_and_surrogates():
    assert visible("plain tokén ✓") == "plain tokén ✓"
    assert visible(ESC_TOKEN) == "\\x1b[2J\\x1b]0;pwned\\x07x"
    assert visible("a\nb\tc\r") == "a\\nb\\tc\\r"
    assert visible("\x7f\x85\u2028\u2029\u200f\u2066\ud800") == (
        "\\x7f\\x85\\u2028\\u2029\\u200f\\u2066\\ud800"
    )
    assert label("x" * 1_000_000, 10) == "x" * 9 + "…"
    assert label("\x1b" * 50, 10) == "\\x1b\\x1b\\…"


@pytest.mark.parametrize(
    "args",
    [
        ["compute"],
        ["compute", "--mode", "multi-head", "--heads", "2", "--d-out", "4", "--show", "all"],
        ["explain", "--query", "1"],
        ["heatmap", "--stats"],
        ["compute", "--show", "heatmap,stats", "--causal"],
    ],
)
def test_tokens_are_shown_literally_in_terminal_views(run, hostile_file, args):
    result = run(*args[:1], hostile_file, *args[1:])
    assert result.exit_code == 0, result.stderr
    _assert_literal(result.stdout)


def test_tokens_are_literal_on_a_colour_terminal_too(hostile_file):
    env = {**os.environ, "FORCE_COLOR": "1", "TERM": "xterm-256color", "COLUMNS": "200"}
    env.pop("NO_COLOR", None)
    for args in (["compute"], ["heatmap", "--stats"], ["explain"]):
        proc = subprocess.run(
            [sys.executable, "-m", "attncli", args[0], str(hostile_file), *args[1:]],
            capture_output=True, env=env, timeout=120, check=False,
        )  # fmt: skip
        out = proc.stdout.decode()
        assert proc.returncode == 0 and "\x1b[" in out  # styled...
        assert "\x1b[2J" not in out and "\x1b]" not in out and "\x07" not in out  # ...not driven
        assert "\\x1b[2J" in out


def test_markdown_trace_shows_tokens_literally(run, hostile_file):
    result = run("explain", hostile_file, "--query", "8", "--format", "markdown")
    assert result.exit_code == 0, result.stderr
    md = result.stdout
    prose = re.sub(r"(?ms)^```text$.*?^```$", "", md)  # code blocks show text literally
    assert "<b>" not in prose and "&lt;b&gt;x&lt;/b&gt;" in prose
    assert "\\$x\\_1\\$" in md and "\\[bold red\\]x\\[/\\]" in md
    assert "\x1b" not in md and "\\\\x1b\\[2J" in md


def test_markdown_code_fence_outlasts_backticks_in_tokens(run, tmp_path):
    path = tmp_path / "ticks.json"
    path.write_text(json.dumps({"tokens": ["```", "b"], "embeddings": [[1, 0], [0, 1]]}))
    md = run("explain", path, "--format", "markdown").stdout
    assert "````text" in md and "\n````\n" in md


def test_json_csv_and_npz_keep_the_exact_tokens(run, hostile_file, tmp_path):
    doc = json.loads(run("compute", hostile_file, "--format", "json").stdout)
    assert doc["tokens"] == HOSTILE
    trace = json.loads(run("explain", hostile_file, "--format", "json").stdout)
    assert trace["tokens"] == HOSTILE
    npz = tmp_path / "out.npz"
    assert run("compute", hostile_file, "--format", "npz", "-o", npz).exit_code == 0
    assert np.load(npz)["tokens"].tolist() == HOSTILE


def test_file_names_in_messages_are_visible(run, tmp_path):
    result = run("compute", tmp_path / "\x1b[2Jnope.csv")
    assert result.exit_code == 2
    assert "\x1b" not in result.stderr and "\\x1b[2Jnope.csv: no such file" in result.stderr


def test_a_token_with_a_lone_surrogate_is_refused(run, tmp_path):
    path = tmp_path / "s.json"
    path.write_text('{"tokens": ["ok", "\\ud800"], "embeddings": [[1], [2]]}')
    result = run("compute", path)
    assert result.exit_code == 2 and result.stdout == ""
    assert "tokens[1]" in result.stderr and "\\ud800" in result.stderr


def test_plot_draws_labels_literally_without_warnings(run, hostile_file, tmp_path):
    pytest.importorskip("matplotlib", reason="plots need the plot extra")
    from attncli.render.plot import weights_figure

    tokens = ["$\\foo$", "$x_1$", "猫", ESC_TOKEN]
    x = np.eye(4)
    fig = weights_figure(compute(x, tokens), "$\\foo$ title")
    ax = next(a for a in fig.axes if a.get_xlabel() == "key")
    labels = ax.get_xticklabels()
    assert [t.get_text() for t in labels] == [label(t, 24) for t in tokens]
    assert not any(t.get_parse_math() for t in labels)
    for name in ("w.png", "w.svg"):
        path = tmp_path / name
        data = tmp_path / "t.json"
        data.write_text(json.dumps({"tokens": tokens, "embeddings": x.tolist()}))
        proc = subprocess.run(
            [sys.executable, "-m", "attncli", "plot", str(data), "-o", str(path)],
            capture_output=True, timeout=120, check=False,
        )  # fmt: skip
        assert proc.returncode == 0 and proc.stderr == b"", proc.stderr
    svg = (tmp_path / "w.svg").read_text()
    assert "$x_1$" in svg  # text kept as text (svg.fonttype none), and literally


def test_plot_refuses_nothing_for_a_file_name_that_is_not_utf8(tmp_path):
    pytest.importorskip("matplotlib", reason="plots need the plot extra")
    name = os.fsencode(tmp_path) + b"/bad\xff.csv"
    with open(name, "wb") as f:
        f.write(b"a,1,2\nb,3,4\n")
    proc = subprocess.run(
        [sys.executable, "-m", "attncli", "plot", name, "-o", str(tmp_path / "p.png")],
        capture_output=True, timeout=120, check=False,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    missing = subprocess.run(
        [sys.executable, "-m", "attncli", "plot", name + b"x", "-o", str(tmp_path / "q.png")],
        capture_output=True, timeout=120, check=False,
    )  # fmt: skip
    assert missing.returncode == 2 and b"bad\\udcff.csvx: no such file" in missing.stderr
