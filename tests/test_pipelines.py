"""attncli in real shell pipelines (bash -c): streams in, streams out, batches, closed pipes."""

import json
import shutil
import subprocess
import sys

import numpy as np
import pytest

from tests.conftest import ROOT

ATTN = f"{sys.executable} -m attncli"
HAS_JQ = shutil.which("jq") is not None


def sh(
    script: str, stdin: bytes | None = None, env: dict | None = None
) -> subprocess.CompletedProcess:
    """Run ``script`` in bash with pipefail from the repository root."""
    return subprocess.run(
        ["bash", "-c", f"set -o pipefail; {script}"], input=stdin, capture_output=True,
        cwd=ROOT, timeout=120, env=env,
    )  # fmt: skip


def test_stdin_to_jsonl_to_a_consumer():
    python = "import json,sys; print(json.dumps(json.load(sys.stdin)['steps']['context']))"
    consumer = "jq -c .steps.context" if HAS_JQ else f'{sys.executable} -c "{python}"'
    attn = f"{ATTN} compute - --format jsonl --show context"
    done = sh(f"cat sample_inputs/journey.csv | {attn} | {consumer}")
    assert done.returncode == 0, done.stderr
    context = np.array(json.loads(done.stdout))
    np.testing.assert_allclose(context[1], [0.4419, 0.6515, 0.5683], atol=5e-5)
    assert done.stderr == b""


def test_only_data_on_stdout_and_messages_on_stderr(tmp_path):
    path = tmp_path / "big.npy"
    np.save(path, np.full((2, 2), 1e25))
    done = sh(
        f"{ATTN} compute {path} --format json | "
        f"{sys.executable} -c 'import json,sys; json.load(sys.stdin)'"
    )
    assert done.returncode == 0 and b"attn: note: float32 overflowed" in done.stderr


def test_closed_pipe_ends_quietly(tmp_path):
    path = tmp_path / "big.npy"
    np.save(path, np.random.default_rng(0).normal(size=(4000, 16)))
    done = sh(
        f'{ATTN} compute {path} --format csv --show weights | head -1; echo "rc=${{PIPESTATUS[0]}}"'
    )
    lines = done.stdout.decode().splitlines()
    assert lines[0].startswith("token,t0,t1") and lines[-1] == "rc=0"
    assert done.stderr == b""


@pytest.mark.parametrize(
    ("env", "ansi"),
    [({"NO_COLOR": "1"}, False), ({"FORCE_COLOR": "1"}, True),
     ({"FORCE_COLOR": "1", "TERM": "dumb"}, False), ({}, False)],
)  # fmt: skip
def test_colour_obeys_the_environment(env, ansi):
    import os

    base = {k: v for k, v in os.environ.items() if k not in ("NO_COLOR", "FORCE_COLOR", "TERM")}
    done = sh(f"{ATTN} compute sample:journey --show weights | cat", env={**base, **env})
    assert done.returncode == 0
    assert (b"\x1b[" in done.stdout) is ansi


def test_terminal_width_shapes_tables():
    import os

    env = {**os.environ, "COLUMNS": "50"}
    done = sh(f"{ATTN} compute sample:cat --show weights | cat", env=env)
    assert max(len(line) for line in done.stdout.decode().splitlines()) <= 50


RECORDS = [
    {"id": "ok-1", "tokens": ["a", "b"], "embeddings": [[1.0, 0.0], [0.0, 1.0]]},
    {"id": "bad", "embeddings": [[1.0, 2.0], [3.0]]},
    {"id": "ok-2", "embeddings": [[0.5, 0.5], [0.1, 0.9], [0.3, 0.3]]},
]


def test_batch_with_a_bad_line_in_the_middle():
    stdin = "".join(json.dumps(r) + "\n" for r in RECORDS).encode()
    done = sh(f"{ATTN} compute - --batch --mode linear --d-out 2", stdin=stdin)
    assert done.returncode == 2
    out = [json.loads(line) for line in done.stdout.decode().splitlines()]
    assert [r["id"] for r in out] == ["ok-1", "bad", "ok-2"] and [r["line"] for r in out] == [
        1,
        2,
        3,
    ]
    assert "error" in out[1] and "line 2" in out[1]["error"]
    assert out[0]["params"]["seed"] == out[2]["params"]["seed"] == 123
    assert done.stderr.decode().count("\n") == 1 and "line 2" in done.stderr.decode()
    # the same weights for every record: line 3 alone gives the same numbers
    alone = sh(f"{ATTN} compute - --batch --mode linear --d-out 2",
               stdin=(json.dumps(RECORDS[2]) + "\n").encode())  # fmt: skip
    assert json.loads(alone.stdout)["steps"] == out[2]["steps"]
    fast = sh(f"{ATTN} compute - --batch --fail-fast", stdin=stdin)
    assert fast.returncode == 2 and len(fast.stdout.splitlines()) == 2


def test_batch_streams_one_line_per_record():
    proc = subprocess.Popen(
        [sys.executable, "-m", "attncli", "compute", "-", "--batch", "--show", "context"],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=ROOT,
    )  # fmt: skip
    proc.stdin.write((json.dumps(RECORDS[0]) + "\n").encode())
    proc.stdin.flush()
    first = json.loads(proc.stdout.readline())  # answered before the input is complete
    assert first["id"] == "ok-1"
    proc.stdin.write((json.dumps(RECORDS[2]) + "\n").encode())
    proc.stdin.close()
    assert json.loads(proc.stdout.readline())["id"] == "ok-2"
    assert proc.wait(timeout=60) == 0


def test_many_files_in_one_process_and_xargs():
    done = sh(
        f"{ATTN} compute sample_inputs/journey.csv sample_inputs/cat.json "
        "--format jsonl --show context"
    )
    ids = [json.loads(line)["id"] for line in done.stdout.decode().splitlines()]
    assert ids == ["sample_inputs/journey.csv", "sample_inputs/cat.json"]
    xargs = sh(
        f"ls sample_inputs/*.csv | xargs {ATTN} compute --format jsonl --show context | wc -l"
    )
    assert xargs.returncode == 0 and int(xargs.stdout) == len(
        list((ROOT / "sample_inputs").glob("*.csv"))
    )


def test_exit_codes_are_the_same_across_commands():
    for command in ("compute", "explain", "heatmap"):
        assert sh(f"{ATTN} {command} sample:journey >/dev/null").returncode == 0
        assert sh(f"{ATTN} {command} missing.csv").returncode == 2
        usage = sh(f"{ATTN} {command} sample:journey --bogus-option")
        assert usage.returncode == 2 and usage.stdout == b""
        assert usage.stderr.decode() == (
            f"attn: error: No such option: --bogus-option (see 'attn {command} --help')\n"
        )
