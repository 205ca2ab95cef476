"""The catalogue of bad inputs, through the CLI: exit 2, one informative line, nothing on stdout.

Each entry of tests/test_readers.py's BAD_INPUTS is run as ``attn compute FILE``; the entries
below add the cases that need options, processes or the file system.
"""

import io
import os
import pty
import subprocess
import sys
import time

import pytest

import attncli.io.atomic as atomic
from tests.conftest import SAMPLES
from tests.test_readers import BAD_INPUTS


def _assert_clean_failure(result, message: str, code: int = 2) -> None:
    assert result.exit_code == code, (result.exit_code, result.stderr)
    assert result.stdout == ""
    assert result.stderr.startswith("attn: error: ") and result.stderr.count("\n") == 1
    assert message in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize("command", ["compute", "explain"])
@pytest.mark.parametrize(("name", "content", "message"), BAD_INPUTS, ids=[b[0] for b in BAD_INPUTS])
def test_bad_files_through_the_cli(run, tmp_path, command, name, content, message):
    path = tmp_path / name
    path.write_bytes(content if isinstance(content, bytes) else content.encode())
    _assert_clean_failure(run(command, path), message)


def test_missing_path_directory_and_unreadable_file(run, tmp_path, monkeypatch):
    _assert_clean_failure(run("compute", tmp_path / "nope.csv"), "no such file")
    _assert_clean_failure(run("compute", tmp_path), "is a directory")
    locked = tmp_path / "locked.csv"
    locked.write_text("a,1\n")

    def deny(self, *args, **kwargs):
        raise PermissionError(13, "Permission denied", str(self))

    monkeypatch.setattr(type(locked), "open", deny)
    _assert_clean_failure(run("compute", locked), "permission denied")


def _on_a_terminal(*args: str, stream: str) -> tuple[int, str]:
    """Run ``python -m attncli ARGS`` with stdin or stdout on a pseudo-terminal; (rc, stderr)."""
    main, child = pty.openpty()
    tty = {stream: child}
    proc = subprocess.Popen(
        [sys.executable, "-m", "attncli", *args],
        stdin=tty.get("stdin", subprocess.DEVNULL),
        stdout=tty.get("stdout", subprocess.DEVNULL),
        stderr=subprocess.PIPE,
    )
    os.close(child)
    if stream == "stdin":
        time.sleep(0.5)
        os.write(main, b"\x04")  # Ctrl-D: end of input
    try:
        _, err = proc.communicate(timeout=60)
    finally:
        os.close(main)
    return proc.returncode, err.decode()


def test_stdin_on_a_terminal_gets_a_hint():
    rc, err = _on_a_terminal("compute", "-", stream="stdin")
    assert "reading embeddings from standard input (end with Ctrl-D)" in err
    assert rc == 2 and "<stdin>: empty input" in err


def test_binary_output_refused_on_a_terminal():
    rc, err = _on_a_terminal("compute", "sample:journey", "--format", "npy", stream="stdout")
    assert rc == 2 and "refusing to print it to a terminal" in err


def test_ctrl_c_exits_130_with_one_line(run, monkeypatch):
    import attncli.io.readers as readers

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(readers, "load_embeddings", interrupted)
    _assert_clean_failure(run("compute", "sample:journey"), "interrupted", code=130)


def test_interrupted_write_leaves_the_old_file_and_no_temporary(run, tmp_path, monkeypatch):
    target = tmp_path / "out.json"
    target.write_text("old")

    def interrupted_replace(src, dst):
        raise KeyboardInterrupt

    monkeypatch.setattr(atomic.os, "replace", interrupted_replace)
    result = run("compute", "sample:journey", "--format", "json", "-o", target)
    assert result.exit_code == 130
    assert target.read_text() == "old"
    assert sorted(os.listdir(tmp_path)) == ["out.json"]


def test_write_into_a_missing_folder(run, tmp_path):
    _assert_clean_failure(
        run("compute", "sample:journey", "-o", tmp_path / "no" / "such" / "out.txt"),
        "does not exist",
    )


def test_samples_are_never_overwritten(run):
    journey = SAMPLES / "journey.csv"
    before = journey.read_bytes()
    result = run("compute", journey, "--format", "csv", "-o", journey)
    _assert_clean_failure(result, "refusing to overwrite the input")
    assert journey.read_bytes() == before
    assert io.BytesIO(before).read(5) == b"token"


def test_outputs_get_ordinary_permissions(run, tmp_path):
    fresh = tmp_path / "fresh.csv"
    assert run("compute", "sample:journey", "--format", "csv", "-o", fresh).exit_code == 0
    umask = os.umask(0)
    os.umask(umask)
    assert fresh.stat().st_mode & 0o777 == 0o666 & ~umask
    kept = tmp_path / "kept.csv"
    kept.write_text("old")
    kept.chmod(0o640)
    assert run("compute", "sample:journey", "--format", "csv", "-o", kept).exit_code == 0
    assert kept.stat().st_mode & 0o777 == 0o640 and kept.read_text().startswith("token")


def test_batch_files_are_read_or_refused_in_one_line(run, tmp_path):
    records = tmp_path / "seqs.jsonl"
    records.write_text('{"id": "a", "embeddings": [[1, 2]]}\n{"id": "b", "embeddings": [[3, 4]]}\n')
    result = run("compute", records, "--batch", "--show", "context")
    assert result.exit_code == 0 and [line[:10] for line in result.stdout.splitlines()] == [
        '{"id": "a"', '{"id": "b"'
    ]  # fmt: skip
    _assert_clean_failure(run("compute", tmp_path / "none.jsonl", "--batch"), "no such file")
