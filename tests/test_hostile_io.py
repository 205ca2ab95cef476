"""The bad-input catalogue, continued: outputs that must not replace devices, inputs or each
other; reading that is bounded; weight and model files that are malformed; processes and
streams that end oddly; and reading back what attncli writes. Each case checks the exit code,
the message, stdout and what is on disk afterwards."""

import io
import json
import os
import signal
import stat
import subprocess
import sys
import time
import zipfile

import numpy as np
import pytest

from tests.conftest import SAMPLES
from tests.test_catalogue import _assert_clean_failure

ATTN = [sys.executable, "-m", "attncli"]


def _attn(*args, **kwargs) -> subprocess.CompletedProcess:
    if "stdout" not in kwargs and "stderr" not in kwargs:
        kwargs["capture_output"] = True
    return subprocess.run([*ATTN, *map(str, args)], timeout=120, check=False, **kwargs)


def _one_line(stderr: bytes | str, code_seen: int, code: int, message: str) -> None:
    text = stderr.decode() if isinstance(stderr, bytes) else stderr
    assert code_seen == code, text
    assert text.startswith("attn: error: ") and text.count("\n") == 1, text
    assert message in text and "Traceback" not in text


def _device(tmp_path, name: str, minor: int) -> str:
    """A character device like /dev/null (1, 3) or /dev/full (1, 7), made in a temporary folder."""
    path = tmp_path / name
    try:
        os.mknod(path, stat.S_IFCHR | 0o666, os.makedev(1, minor))
    except PermissionError:
        pytest.skip("mknod needs root (character devices in a temporary folder)")
    return str(path)


# ---- outputs -------------------------------------------------------------------------------


def test_a_character_device_is_written_not_replaced(tmp_path):
    null = _device(tmp_path, "null", 3)
    proc = _attn("compute", "sample:cat", "--format", "json", "-o", null)
    assert proc.returncode == 0, proc.stderr
    assert stat.S_ISCHR(os.stat(null).st_mode)
    assert not list(tmp_path.glob("*.tmp"))


def test_a_full_device_is_one_line_and_exit_1(tmp_path):
    full = _device(tmp_path, "full", 7)
    proc = _attn("compute", "sample:cat", "--format", "json", "-o", full)
    _one_line(proc.stderr, proc.returncode, 1, "No space left on device")
    assert proc.stdout == b"" and stat.S_ISCHR(os.stat(full).st_mode)
    with open(full, "wb") as stdout:  # help to a full stdout: the same one line
        proc = _attn("compute", "--help", stdout=stdout, stderr=subprocess.PIPE)
    _one_line(proc.stderr, proc.returncode, 1, "cannot write to standard output")


def test_a_fifo_is_written_in_place(tmp_path):
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    proc = subprocess.Popen([*ATTN, "compute", "sample:cat", "--format", "json", "-o", fifo],
                            stderr=subprocess.PIPE)  # fmt: skip
    with open(fifo, "rb") as reader:
        doc = json.loads(reader.read())
    assert proc.wait(timeout=120) == 0 and doc["tokens"][0] == "The"
    assert stat.S_ISFIFO(os.stat(fifo).st_mode)


def test_a_symlink_is_followed_and_kept(tmp_path):
    target = tmp_path / "real.json"
    target.write_text("old")
    link = tmp_path / "link.json"
    link.symlink_to(target)
    assert _attn("compute", "sample:cat", "--format", "json", "-o", link).returncode == 0
    assert link.is_symlink() and json.loads(target.read_text())["tokens"][0] == "The"


def test_stdin_redirected_from_the_output_file_is_an_input(tmp_path):
    data = tmp_path / "f.csv"
    data.write_text("a,1,2\nb,3,4\n")
    with open(data, "rb") as stdin:
        proc = _attn("compute", "-", "--format", "csv", "-o", data, stdin=stdin)
    _one_line(proc.stderr, proc.returncode, 2, "refusing to overwrite the input")
    assert data.read_text() == "a,1,2\nb,3,4\n"


def test_two_outputs_naming_one_file_are_refused(run, tmp_path):
    out = tmp_path / "w.npz"
    result = run("compute", "sample:cat", "--mode", "linear", "--save-weights", out, "-o", out)
    _assert_clean_failure(result, "--output and --save-weights name the same file")
    assert not out.exists()


def test_samples_and_model_files_are_inputs():
    from attncli.cli.output import check_not_input
    from attncli.errors import OutputError
    from attncli.io.samples import sample_path

    with pytest.raises(OutputError, match="refusing to overwrite the input file"):
        check_not_input(sample_path("journey"), ["sample:journey"])
    with pytest.raises(OutputError, match="refusing to overwrite the input file"):
        check_not_input(SAMPLES / "cat.json", [SAMPLES])  # a folder: each of its files


def test_model_outputs_never_overwrite_the_model_folder(tmp_path):
    pytest.importorskip("tokenizers", reason="model folders carry a tokenizer.json")
    from tests.test_model import _tiny_bert

    folder = _tiny_bert(tmp_path / "m")
    before = {p.name: p.read_bytes() for p in folder.iterdir()}
    for name in ("config.json", "model.safetensors", "tokenizer.json"):
        proc = _attn("model", "the cat", "--model-dir", folder, "-f", "json", "-o", folder / name)
        _one_line(proc.stderr, proc.returncode, 2, "refusing to overwrite the input file")
    assert {p.name: p.read_bytes() for p in folder.iterdir()} == before


def test_sigterm_during_a_batch_leaves_no_temporary_file(tmp_path):
    out = tmp_path / "out.jsonl"
    proc = subprocess.Popen([*ATTN, "compute", "--batch", "-", "-o", out],
                            stdin=subprocess.PIPE, stderr=subprocess.PIPE)  # fmt: skip
    proc.stdin.write(b'{"id": 1, "embeddings": [[1, 2], [3, 4]]}\n')
    proc.stdin.flush()
    deadline = time.monotonic() + 60
    while not list(tmp_path.glob(".out.jsonl.*.tmp")) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert list(tmp_path.glob(".out.jsonl.*.tmp")), "the batch never started writing"
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=60)
    _one_line(err, proc.returncode, 143, "terminated")
    assert list(tmp_path.iterdir()) == []


# ---- bounded reading -----------------------------------------------------------------------


@pytest.mark.parametrize("source", ["/dev/zero", "/dev/urandom", "stdin", "batch"])
def test_endless_inputs_stop_at_the_limit(source):
    args = ["--max-input", "1M", "compute"]
    if source in ("stdin", "batch"):
        extra = ["--batch"] if source == "batch" else []
        with open("/dev/zero", "rb") as zero:
            proc = _attn(*args, "-", *extra, stdin=zero)
        where = "<stdin>"
    else:
        proc = _attn(*args, source)
        where = source
    assert proc.returncode == 2
    assert f"{where}" in proc.stderr.decode() and "more than the input limit of 1.0 MiB" in (
        proc.stderr.decode()
    )
    assert "Traceback" not in proc.stderr.decode()


def test_the_default_limit_is_documented_and_applies():
    from attncli.io.limits import DEFAULT_MAX_INPUT

    proc = _attn("compute", "/dev/zero")
    _one_line(proc.stderr, proc.returncode, 2, f"input limit of {DEFAULT_MAX_INPUT >> 20}.0 MiB")
    readme = (SAMPLES.parent / "README.md").read_text()
    assert "--max-input" in readme and "ATTN_MAX_INPUT" in readme


def _npy_claiming(shape: tuple[int, ...]) -> bytes:
    buf = io.BytesIO()
    np.lib.format.write_array_header_1_0(
        buf, {"descr": "<f8", "fortran_order": False, "shape": shape}
    )
    return buf.getvalue() + b"\0" * 16


def test_npy_header_larger_than_the_file(run, tmp_path):
    path = tmp_path / "claim.npy"
    path.write_bytes(_npy_claiming((10**6, 10**6)))
    _assert_clean_failure(run("compute", path), "declares shape (1000000, 1000000)")
    npz = tmp_path / "w.npz"
    with zipfile.ZipFile(npz, "w") as z:
        z.writestr("W_query.npy", _npy_claiming((10**6, 10**6)))
    result = run("compute", "sample:journey", "--mode", "trainable", "--weights", npz)
    _assert_clean_failure(result, "W_query.npy: the .npy header declares shape")


def test_compressed_weights_declaring_too_much_are_refused_before_loading(tmp_path):
    npz = tmp_path / "bomb.npz"
    np.savez_compressed(npz, W_query=np.zeros((1024, 1024)))  # 8 MiB in a few KiB
    proc = _attn("--max-input", "1M", "compute", "sample:journey", "--weights", npz)
    _one_line(proc.stderr, proc.returncode, 2, "declare 8.0 MiB of data, more than the input")
    torch = pytest.importorskip("torch", reason=".pt files need torch")
    pt = tmp_path / "big.pt"
    torch.save({"W_query": torch.zeros(1024, 1024)}, pt)
    proc = _attn("--max-input", "1M", "compute", "sample:journey", "--weights", pt)
    _one_line(proc.stderr, proc.returncode, 2, "more than the input limit")


@pytest.mark.parametrize(
    "args",
    [
        ["--mode", "linear", "--d-out", "1000000000"],
        ["--mode", "linear", "--d-out", "50000000"],
        ["--mode", "linear", "--d-out", "99999999999999999999999"],
    ],
)
def test_memory_is_refused_up_front(run, args):
    _assert_clean_failure(run("compute", "sample:cat", *args), "choose a smaller --d-out")


def test_wide_inputs_and_the_address_space_limit(tmp_path):
    wide = tmp_path / "wide.npy"
    np.save(wide, np.ones((3, 100_000), np.float32))
    proc = _attn("compute", wide, "--mode", "linear")
    _one_line(proc.stderr, proc.returncode, 2, "d_in 100000 → d_out 100000")

    def limit():
        import resource

        resource.setrlimit(resource.RLIMIT_AS, (3 << 30, 3 << 30))

    proc = _attn("compute", "sample:cat", "--mode", "linear", "--d-out", "5000000",
                 preexec_fn=limit)  # fmt: skip
    _one_line(proc.stderr, proc.returncode, 2, "GiB available")


# ---- malformed weight and model files --------------------------------------------------------


def _pt(tmp_path, name: str, obj) -> str:
    torch = pytest.importorskip("torch", reason=".pt files need torch")
    path = tmp_path / name
    torch.save(obj(torch) if callable(obj) else obj, path)
    return str(path)


@pytest.mark.parametrize(
    ("obj", "message"),
    [
        (lambda t: {"in_proj_weight": t.ones(4, 3)}, "in_proj_weight has shape (4, 3)"),
        (lambda t: {"in_proj_weight": t.tensor(1.0)}, "in_proj_weight has shape ()"),
        (
            lambda t: {"in_proj_weight": t.ones(6, 3), "in_proj_bias": t.ones(4)},
            "in_proj_bias has shape (4,)",
        ),
        (lambda t: {"W_query": t.eye(3).to_sparse()}, "sparse"),
    ],
    ids=["in-proj-4x3", "in-proj-0d", "in-proj-bias-4", "sparse"],
)
def test_malformed_torch_weights(run, tmp_path, obj, message):
    path = _pt(tmp_path, "w.pt", obj)
    _assert_clean_failure(run("compute", "sample:journey", "--weights", path), message)


def test_deeply_nested_torch_checkpoint(run, tmp_path):
    def nested(torch):
        doc = {"W_query": torch.eye(3)}
        for _ in range(3000):
            doc = {"a": doc}
        return doc

    sys.setrecursionlimit(max(sys.getrecursionlimit(), 20000))
    try:
        path = _pt(tmp_path, "deep.pt", nested)
    except RecursionError:
        pytest.skip("torch.save cannot write a dict nested 3000 deep here")
    _assert_clean_failure(run("compute", "sample:journey", "--weights", path), "nested")


def test_safetensors_heads_metadata_not_a_number(run, tmp_path):
    from safetensors.numpy import save_file

    path = tmp_path / "w.safetensors"
    w = np.ones((3, 3), np.float32)
    save_file({f"W_{r}.weight": w for r in ("query", "key", "value")}
              | {"out_proj.weight": w, "out_proj.bias": np.ones(3, np.float32)},
              path, metadata={"heads": "abc"})  # fmt: skip
    for extra in ([], ["--heads", "1"]):
        result = run("compute", "sample:journey", "--weights", path, *extra)
        _assert_clean_failure(result, "metadata heads = 'abc' is not a whole number")


@pytest.mark.parametrize(
    ("text", "message"),
    [("[" * 100_000 + "]" * 100_000, "nested too deeply"), ('{"W_query": ' + "9" * 5000 + "}",
     "not valid JSON")],
    ids=["deep", "huge-int"],
)  # fmt: skip
def test_malformed_json_weights(run, tmp_path, text, message):
    path = tmp_path / "w.json"
    path.write_text(text)
    _assert_clean_failure(run("compute", "sample:journey", "--weights", path), message)


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        ("config-list", "expected a JSON object"),
        ("hidden-abc", "hidden_size = 'abc' is not an integer"),
        ("tokenizer", "not a valid tokenizer file"),
        ("tensor", "no tensor"),
    ],
)
def test_malformed_model_folders(run, tmp_path, damage, message):
    pytest.importorskip("tokenizers", reason="model folders carry a tokenizer.json")
    from tests.test_model import _tiny_bert

    folder = _tiny_bert(tmp_path / "m")
    config = json.loads((folder / "config.json").read_text())
    if damage == "config-list":
        (folder / "config.json").write_text("[1, 2]")
    elif damage == "hidden-abc":
        (folder / "config.json").write_text(json.dumps({**config, "hidden_size": "abc"}))
    elif damage == "tokenizer":
        (folder / "tokenizer.json").write_text('{"version": "1.0", "model": 3')
    else:
        from safetensors.numpy import load_file, save_file

        tensors = load_file(folder / "model.safetensors")
        tensors.pop(next(k for k in tensors if "attention.self.query.weight" in k))
        save_file(tensors, folder / "model.safetensors")
    _assert_clean_failure(run("model", "the cat", "--model-dir", folder), message)


# ---- processes and streams -------------------------------------------------------------------


def test_ctrl_c_during_the_imports_is_one_line():
    if not os.path.exists("/proc/self/maps"):
        pytest.skip("needs /proc to see the imports under way")
    proc = subprocess.Popen([*ATTN, "compute", "sample:cat"], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)  # fmt: skip
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:  # until numpy's extension is being loaded
        try:
            with open(f"/proc/{proc.pid}/maps") as maps:
                if "_multiarray_umath" in maps.read():
                    break
        except OSError:
            pass
        time.sleep(0.002)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    if proc.returncode == 0:
        pytest.skip("the run finished before the signal arrived")
    _one_line(err, proc.returncode, 130, "interrupted")


@pytest.mark.parametrize(
    "args",
    [["heatmap", "sample:cat"], ["compute", "sample:cat", "--show", "heatmap"],
     ["compute", "sample:cat", "--show", "stats"], ["explain", "sample:cat"]],
)  # fmt: skip
def test_a_closed_pipe_ends_quietly(args):
    proc = subprocess.Popen([*ATTN, *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    proc.stdout.read(10)
    proc.stdout.close()
    err = proc.stderr.read()
    assert proc.wait(timeout=120) == 0 and err == b""


def test_closed_stdout_is_one_line():
    proc = _attn("compute", "sample:cat", "--format", "json", preexec_fn=lambda: os.close(1))
    _one_line(proc.stderr, proc.returncode, 1, "standard output is closed")


def test_columns_zero_still_prints(run, monkeypatch):
    monkeypatch.setenv("COLUMNS", "0")
    proc = _attn("compute", "sample:cat", env={**os.environ, "COLUMNS": "0"})
    assert proc.returncode == 0 and "weights" in proc.stdout.decode()


def test_an_ascii_stream_gets_escapes_not_an_error(tmp_path):
    data = tmp_path / "t.json"
    data.write_text(json.dumps({"tokens": ["café", "猫"], "embeddings": [[1, 0], [0, 1]]}))
    proc = _attn("compute", data, env={**os.environ, "PYTHONIOENCODING": "ascii"})
    assert proc.returncode == 0, proc.stderr
    assert "caf\\xe9" in proc.stdout.decode("ascii")


def test_no_warning_text_on_extreme_inputs(tmp_path):
    x = np.random.default_rng(0).uniform(-3e38, 3e38, size=(600, 8)).astype(np.float32)
    path = tmp_path / "x.npy"
    np.save(path, x)
    proc = _attn("compute", path, "--show", "context", "--format", "npy", "-o", tmp_path / "o.npy")
    assert proc.returncode == 0
    lines = proc.stderr.decode().splitlines()
    assert lines and all(line.startswith("attn: note: ") for line in lines), lines


# ---- reading what it writes ------------------------------------------------------------------

TRICKY = [" the", "a,b", 'say "hi"', "two\nlines", "tail ", "nan", "inf", "NA", "x\u2028y",
          "f\x0cg", "n\x85l"]  # fmt: skip


def test_own_csv_reads_back_intact(run, tmp_path):
    source = tmp_path / "t.json"
    x = np.random.default_rng(2).normal(size=(len(TRICKY), 3))
    source.write_text(json.dumps({"tokens": TRICKY, "embeddings": x.tolist()}))
    csv_out = tmp_path / "inputs.csv"
    result = run("compute", source, "--show", "inputs", "--format", "csv", "-o", csv_out)
    assert result.exit_code == 0, result.stderr
    back = json.loads(run("compute", csv_out, "--format", "json").stdout)
    assert back["tokens"] == TRICKY
    inputs = np.array(back["steps"]["inputs"], dtype=np.float32)
    np.testing.assert_array_equal(inputs, x.astype(np.float32))


def test_long_csv_lines_and_label_tokens(run, tmp_path):
    path = tmp_path / "long.csv"
    path.write_text("x" * 200_000 + ",1,2\nnan,3,4\ninf,5,6\nNA,7,8\n")
    doc = json.loads(run("compute", path, "--format", "json").stdout)
    assert doc["tokens"][1:] == ["nan", "inf", "NA"] and len(doc["tokens"][0]) == 200_000


@pytest.mark.parametrize("cell", ["1_000", "１２", "٣"])
def test_only_ascii_decimal_numbers(run, tmp_path, cell):
    path = tmp_path / "n.csv"
    path.write_text(f"a,1,2\nb,{cell},3\n")
    _assert_clean_failure(run("compute", path), f"row 2, column 2: '{cell}' is not")


def test_explain_of_a_huge_token_is_bounded(run, tmp_path):
    path = tmp_path / "t.json"
    path.write_text(json.dumps({"tokens": ["y" * 1_000_000, "b"], "embeddings": [[1], [2]]}))
    result = run("explain", path)
    assert result.exit_code == 0 and len(result.stdout) < 20_000
    assert "y" * 39 + "…" in result.stdout


def test_explain_states_float32_overflow_correctly(run, tmp_path):
    path = tmp_path / "big.json"
    path.write_text(json.dumps([[1e150, 0], [0, 1e150], [1e150, 1e150]]))
    out = run("explain", path).stdout.replace("\n", " ")
    assert "exp(100) = ∞" in out and "∞/∞ = NaN" in out


def test_a_full_disk_never_truncates_stdout_silently(tmp_path):
    mnt = tmp_path / "mnt"
    mnt.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=12k", "tmpfs", str(mnt)],
                             capture_output=True, check=False)  # fmt: skip
    if mounted.returncode != 0:
        pytest.skip("mounting a small tmpfs needs root")
    try:
        (mnt / "fill").write_bytes(b"\0" * 8192)
        for args in (["compute", "sample:cat", "--format", "json"], ["explain", "sample:cat"],
                     ["compute", "sample:cat", "--format", "npz"]):  # fmt: skip
            with open(mnt / "out", "wb") as stdout:
                proc = _attn(*args, stdout=stdout, stderr=subprocess.PIPE)
            _one_line(proc.stderr, proc.returncode, 1, "No space left on device")
            (mnt / "out").unlink()
        proc = _attn("compute", "sample:cat", "--format", "json", "-o", mnt / "o.json")
        _one_line(proc.stderr, proc.returncode, 1, "No space left on device")
        assert not (mnt / "o.json").exists() and not list(mnt.glob("*.tmp"))
    finally:
        subprocess.run(["umount", str(mnt)], check=False)
