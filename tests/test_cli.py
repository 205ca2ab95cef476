"""`attn` end to end through the CLI: formats, options, and one-line errors with exit code 2."""

import io
import json
import subprocess
import sys

import numpy as np
import pytest

from attncli import __version__
from tests.conftest import JOURNEY, SAMPLES

JOURNEY_CSV = SAMPLES / "journey.csv"


def test_version_and_help_have_examples(run):
    assert run("--version").stdout.strip() == f"attncli {__version__}"
    assert "Examples" in run("--help").stdout
    for command in ("compute", "explain", "heatmap", "plot", "model", "samples", "info"):
        result = run(command, "--help")
        assert result.exit_code == 0
        assert "Example" in result.stdout and "attn " in result.stdout


def test_table_output_shows_every_step_with_labels(run):
    result = run("compute", JOURNEY_CSV, "--mode", "trainable", "--d-out", "2")
    assert result.exit_code == 0, result.stderr
    out = result.stdout
    for step in (
        "inputs",
        "queries",
        "keys",
        "values",
        "scores",
        "scaled_scores",
        "weights",
        "context",
    ):
        assert f"\n{step} (" in out
    assert "journey" in out and "0.2264" in out and "seed 123" in out
    assert "\x1b[" not in out  # no ANSI codes when stdout is not a terminal


def test_no_color_means_no_ansi_even_on_a_terminal(run, monkeypatch):
    monkeypatch.setenv("FORCE_COLOR", "1")  # rich then styles as if on a terminal
    monkeypatch.delenv("NO_COLOR", raising=False)
    assert "\x1b[" in run("compute", "sample:journey", "--show", "weights").stdout
    monkeypatch.setenv("NO_COLOR", "1")
    assert "\x1b[" not in run("compute", "sample:journey", "--show", "weights").stdout


def test_query_and_show_narrow_the_table(run):
    result = run("compute", "sample:journey", "--show", "weights", "--query", "journey")
    lines = [line for line in result.stdout.splitlines() if line.startswith("│")]
    assert len(lines) == 1 and "journey" in lines[0]
    assert "0.1385" in lines[0] and "0.2379" in lines[0]
    assert "context" not in result.stdout


def test_large_matrices_are_elided_unless_full(run, tmp_path):
    x = np.random.default_rng(0).normal(size=(30, 20))
    path = tmp_path / "big.npy"
    np.save(path, x)
    short = run("compute", path, "--show", "weights").stdout
    assert "…" in short and "t29" in short and "t15" not in short
    full = run("compute", path, "--show", "weights", "--full").stdout
    assert "…" not in full and "t15" in full


def test_json_contract(run):
    result = run(
        "compute",
        "sample:journey",
        "--mode",
        "multi-head",
        "--heads",
        "2",
        "--d-out",
        "4",
        "--causal",
        "--format",
        "json",
    )
    assert result.exit_code == 0, result.stderr
    doc = json.loads(result.stdout)
    assert doc["mode"] == "multi-head" and doc["tokens"][1] == "journey"
    params = doc["params"]
    for key in ("seed", "d_in", "d_out", "heads", "causal", "scale", "dtype", "engine", "dropout"):
        assert key in params
    assert (params["d_in"], params["d_out"], params["heads"], params["causal"]) == (3, 4, 2, True)
    steps = doc["steps"]
    for key in ("inputs", "queries", "keys", "values", "scores", "weights", "context"):
        assert key in steps
    assert np.array(steps["weights"]).shape == (2, 6, 6)
    assert np.array(steps["context"]).shape == (6, 4)
    assert steps["masked_scores"][0][0][1] is None  # -inf is null: strict JSON
    np.testing.assert_allclose(np.array(steps["weights"]).sum(-1), 1, atol=1e-6)


def test_json_numbers_are_the_computed_float32_values(run):
    from attncli import compute

    doc = json.loads(run("compute", JOURNEY_CSV, "--format", "json").stdout)
    expected = compute(JOURNEY).context
    np.testing.assert_array_equal(np.array(doc["steps"]["context"], dtype=np.float32), expected)


def test_csv_npy_npz_outputs(run, tmp_path):
    csv_out = run("compute", JOURNEY_CSV, "--mode", "linear", "--format", "csv").stdout
    lines = csv_out.splitlines()
    assert lines[0] == "token,d0,d1,d2" and lines[2].startswith("journey,")
    weights_csv = run("compute", JOURNEY_CSV, "--format", "csv", "--show", "weights").stdout
    assert weights_csv.splitlines()[0] == "token,Your,journey,starts,with,one,step"
    heads_csv = run(
        "compute",
        JOURNEY_CSV,
        "--mode",
        "multi-head",
        "--d-out",
        "2",
        "--format",
        "csv",
        "--show",
        "weights",
    ).stdout
    assert (
        heads_csv.splitlines()[0].startswith("head,token,Your")
        and len(heads_csv.splitlines()) == 13
    )

    npy = tmp_path / "ctx.npy"
    assert run("compute", JOURNEY_CSV, "--format", "npy", "-o", npy).exit_code == 0
    from attncli import compute

    np.testing.assert_allclose(np.load(npy), compute(JOURNEY).context, atol=1e-5, rtol=1.3e-6)
    npz = tmp_path / "all.npz"
    assert (
        run("compute", JOURNEY_CSV, "--mode", "trainable", "--format", "npz", "-o", npz).exit_code
        == 0
    )
    with np.load(npz, allow_pickle=False) as data:
        assert {"tokens", "inputs", "queries", "weights", "context"} <= set(data.files)
        assert data["tokens"][1] == "journey"


def test_stdin_pipeline_to_csv(run):
    result = run(
        "compute", "-", "--mode", "linear", "--format", "csv", input=JOURNEY_CSV.read_text()
    )
    assert result.exit_code == 0, result.stderr
    assert len(result.stdout.splitlines()) == 7


def test_save_and_replay_weights(run, tmp_path):
    for suffix in (".json", ".npz"):
        for mode in ("trainable", "linear", "multi-head"):
            weights = tmp_path / f"w-{mode}{suffix}"
            args = ["compute", "sample:cat", "--mode", mode, "--d-out", "4", "--format", "json"]
            first = run(*args, "--seed", "7", "--save-weights", weights)
            assert first.exit_code == 0, first.stderr
            heads = ["--heads", "2"] if mode == "multi-head" else []
            replay = run(*args, "--seed", "999", "--weights", weights, *heads)
            assert replay.exit_code == 0, replay.stderr
            assert json.loads(first.stdout)["steps"] == json.loads(replay.stdout)["steps"]
    saved = json.loads((tmp_path / "w-multi-head.json").read_text())
    assert set(saved) == {
        "W_query.weight",
        "W_key.weight",
        "W_value.weight",
        "out_proj.weight",
        "out_proj.bias",
    }
    assert np.array(saved["W_query.weight"]).shape == (4, 8)
    assert set(json.loads((tmp_path / "w-trainable.json").read_text())) == {
        "W_query",
        "W_key",
        "W_value",
    }


def test_output_is_atomic_and_never_overwrites_the_input(run, tmp_path):
    target = tmp_path / "ctx.csv"
    target.write_text("old")
    bad = run("compute", tmp_path / "missing.csv", "--format", "csv", "-o", target)
    assert bad.exit_code == 2 and target.read_text() == "old"
    src = tmp_path / "in.csv"
    src.write_text(JOURNEY_CSV.read_text())
    clash = run("compute", src, "--format", "csv", "-o", src)
    assert clash.exit_code == 2 and "refusing to overwrite the input" in clash.stderr
    assert src.read_text() == JOURNEY_CSV.read_text()
    assert run("compute", src, "-o", target).exit_code == 0
    assert "weights" in target.read_text() and not list(tmp_path.glob(".*tmp"))


def test_samples_command_lists_bundled_samples(run):
    out = run("samples").stdout
    assert "sample:journey" in out and "sample:cat" in out and "6 tokens" in out


ERRORS = [
    (["compute", "missing.csv"], "missing.csv: no such file"),
    (["compute", "sample:journey", "--query", "nobody"], "--query 'nobody': no such token"),
    (["compute", "sample:journey", "--query", "9"], "index out of range"),
    (
        ["compute", "sample:journey", "--mode", "multi-head", "--heads", "2"],
        "--heads 2 does not divide d_out 3",
    ),
    (["compute", "sample:journey", "--dropout", "1.5"], "--dropout must be between 0 and 1"),
    (
        ["compute", "sample:journey", "--mode", "linear", "--d-out", "0"],
        "--d-out must be at least 1",
    ),
    (["compute", "sample:journey", "--show", "masked"], "add --causal"),
    (["compute", "sample:journey", "--show", "bogus"], "unknown step 'bogus'"),
    (["compute", "sample:journey", "--format", "csv", "--show", "all"], "writes one step"),
    (["compute", "sample:journey", "--save-weights", "w.json"], "simple mode has no parameters"),
    (["compute", "-"], "<stdin>: empty input"),
]


@pytest.mark.parametrize(("args", "message"), ERRORS, ids=[" ".join(a[1:]) for a, _ in ERRORS])
def test_errors_are_one_line_exit_2(run, args, message):
    result = run(*args)
    assert result.exit_code == 2
    assert result.stdout == ""
    assert result.stderr.count("\n") == 1 and message in result.stderr
    assert result.stderr.startswith("attn: error: ") and "Traceback" not in result.stderr


def _weights_file(tmp_path, named):
    path = tmp_path / "w.json"
    path.write_text(json.dumps({k: np.asarray(v).tolist() for k, v in named.items()}))
    return path


@pytest.mark.parametrize(
    ("mode", "named", "message"),
    [
        (
            "trainable",
            {"W_query": np.ones((3, 2)), "W_key": np.ones((3, 2))},
            "missing key 'W_value.weight'",
        ),
        (
            "trainable",
            {"W_query": np.ones((3, 2)), "W_key": np.ones((3, 2)), "W_value": np.ones((2, 2))},
            "'W_value' has shape (2, 2), expected (3, 2)",
        ),
        (
            "linear",
            {
                "W_query.weight": np.ones((2, 3)),
                "W_key.weight": np.ones((2, 3)),
                "W_value.weight": np.ones((2, 4)),
            },
            "expected (2, 3) (d_out, d_in)",
        ),
        (
            "linear",
            {
                "W_query": np.ones((3, 2)),
                "W_key": np.ones((3, 2)),
                "W_value": np.ones((3, 2)),
                "extra": np.ones(1),
            },
            "unknown key 'extra'",
        ),
        (
            "multi-head",
            {"W_query": np.ones((3, 2)), "W_key": np.ones((3, 2)), "W_value": np.ones((3, 2))},
            "missing key 'out_proj.weight'",
        ),
        (
            "linear",
            {
                "W_query.weight": np.ones((2, 3)),
                "W_query.bias": np.ones(3),
                "W_key": np.ones((3, 2)),
                "W_value": np.ones((3, 2)),
            },
            "'W_query.bias' has shape (3,), expected (2,)",
        ),
    ],
)
def test_weight_file_errors(run, tmp_path, mode, named, message):
    heads = ["--heads", "2"] if mode == "multi-head" else []
    path = _weights_file(tmp_path, named)
    result = run("compute", "sample:journey", "--mode", mode, "--weights", path, *heads)
    assert result.exit_code == 2, result.stdout
    assert message in result.stderr and result.stderr.count("\n") == 1


def test_weight_file_sets_d_out_and_bias_is_honoured(run, tmp_path):
    eye = np.eye(3)[:, :2]
    named = {"W_query": eye, "W_key": eye, "W_value": eye, "W_value.bias": [1.0, 2.0]}
    result = run(
        "compute",
        "sample:journey",
        "--mode",
        "trainable",
        "--weights",
        _weights_file(tmp_path, named),
        "--format",
        "json",
    )
    doc = json.loads(result.stdout)
    assert doc["params"]["d_out"] == 2 and doc["params"]["weights"].endswith("w.json")
    np.testing.assert_allclose(np.array(doc["steps"]["values"]), JOURNEY[:, :2] + [1, 2], rtol=1e-6)


def _run_module(*args, stdin=b""):
    return subprocess.run(
        [sys.executable, "-m", "attncli", *args], input=stdin, capture_output=True, timeout=120
    )


def test_python_m_attncli_and_no_torch_import():
    probe = (
        "import sys, runpy\n"
        "sys.argv = ['attn', 'compute', 'sample:journey', '--mode', 'multi-head', "
        "'--d-out', '4', '--format', 'json']\n"
        "import attncli; assert 'torch' not in sys.modules, 'import attncli pulled torch'\n"
        "try:\n    runpy.run_module('attncli', run_name='__main__')\n"
        "except SystemExit as e:\n    assert not e.code, e.code\n"
        "assert 'torch' not in sys.modules, 'attn compute pulled torch'\n"
    )
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, timeout=120)
    assert done.returncode == 0, done.stderr.decode()
    assert json.loads(done.stdout)["params"]["engine"] == "numpy"


def test_unexpected_errors_exit_1_with_one_line():
    done = subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys; from attncli import cli\n"
            "import attncli.io.readers as r\n"
            "def boom(*a, **k): raise RuntimeError('kaboom')\n"
            "r.load_embeddings = boom\n"
            "sys.argv = ['attn', 'compute', 'x.csv']\ncli.main()",
        ],
        capture_output=True,
        timeout=120,
        text=True,
    )
    assert done.returncode == 1
    assert (
        done.stderr.strip()
        == "attn: error: unexpected error: RuntimeError: kaboom (rerun with --debug for details)"
    )


def test_binary_format_and_usage_error_exit_codes():
    done = _run_module("compute", "sample:journey", "--format", "npy")
    assert done.returncode == 0 and np.load(io.BytesIO(done.stdout)).shape == (6, 3)
    bad = _run_module("compute", "sample:journey", "--heads", "abc")
    assert bad.returncode == 2 and b"Traceback" not in bad.stderr
