"""attn model --batch: a JSON line per sentence, equal to separate runs, errors per line."""

import json
import subprocess
import sys

import numpy as np
import pytest

pytest.importorskip("tokenizers", reason="model folders carry a tokenizer.json")
pytest.importorskip("transformers", reason="the tests build their models with transformers")

SENTENCES = ["the cat sat on the mat", "money bank grows", "river flows because it was warm"]


@pytest.fixture(scope="module")
def qwen3_dir(tmp_path_factory):
    from tests.test_decoders import build

    return build(tmp_path_factory.mktemp("qwen3"), "qwen3")


@pytest.fixture(scope="module")
def bert_dir(tmp_path_factory):
    from tests.test_model import _tiny_bert

    return _tiny_bert(tmp_path_factory.mktemp("bert"))


def _records(stdout: str) -> list[dict]:
    return [json.loads(line) for line in stdout.splitlines()]


@pytest.mark.parametrize("which", ["qwen3", "bert"])
@pytest.mark.parametrize("head", [None, "2"])
def test_each_record_equals_a_separate_run(run, tmp_path, qwen3_dir, bert_dir, which, head):
    folder = qwen3_dir if which == "qwen3" else bert_dir
    lines = [SENTENCES[0], "", SENTENCES[1], SENTENCES[2]]
    (tmp_path / "s.txt").write_text("\n".join(lines) + "\n")
    pick = ["--layer", "1"] + ([] if head is None else ["--head", head])
    batch = run("model", "--batch", tmp_path / "s.txt", "--model-dir", folder, *pick)
    assert batch.exit_code == 2  # the empty line failed, the others ran
    assert batch.stderr == "attn: error: line 2: empty (one sentence per line)\n"
    records = _records(batch.stdout)
    assert [r["line"] for r in records] == [1, 2, 3, 4]
    assert records[1] == {"line": 2, "error": "line 2: empty (one sentence per line)"}
    for record, text in zip([records[0], *records[2:]], SENTENCES, strict=True):
        one = run("model", text, "--model-dir", folder, *pick, "-f", "json")
        assert one.exit_code == 0, one.stderr
        doc = json.loads(one.stdout)
        assert record["tokens"] == doc["tokens"] and record["layer"] == 1
        np.testing.assert_array_equal(
            np.array(record["weights"]), np.array(doc["steps"]["weights"])
        )


def test_summary_from_stdin_equals_the_single_run(run, qwen3_dir):
    stdin = "\n".join(SENTENCES) + "\n"
    args = ("--model-dir", qwen3_dir, "--layer", "all", "--head", "all", "--query", "0")
    batch = run("model", "--batch", "-", *args, input=stdin)
    assert batch.exit_code == 0, batch.stderr
    for record, text in zip(_records(batch.stdout), SENTENCES, strict=True):
        one = json.loads(run("model", text, *args, "-f", "json").stdout)
        assert record["heads"] == one["heads"] and record["tokens"] == one["tokens"]


def test_records_stream_before_the_input_ends(qwen3_dir):
    cmd = [sys.executable, "-m", "attncli", "model", "--batch", "-", "--model-dir", str(qwen3_dir)]
    proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        proc.stdin.write(SENTENCES[0] + "\n")
        proc.stdin.flush()
        first = json.loads(proc.stdout.readline())  # written while stdin is still open
        assert first["line"] == 1 and first["tokens"][:2] == ["<s>", "the"]
        proc.stdin.write(SENTENCES[1] + "\n")
        proc.stdin.close()
        assert json.loads(proc.stdout.readline())["line"] == 2
        assert proc.wait(timeout=60) == 0
    finally:
        proc.kill()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--explain"], "--batch writes weights or the per-head summary"),
        (["--query", "cat"], "add --layer all --head all"),
        (["-f", "csv"], "--batch writes JSON Lines, not --format csv"),
        (["--head", "9"], "--head 9: the model has heads 0–3"),
    ],
)
def test_batch_refusals(run, tmp_path, qwen3_dir, args, message):
    (tmp_path / "s.txt").write_text("the cat\n")
    result = run("model", "--batch", tmp_path / "s.txt", "--model-dir", qwen3_dir, *args)
    assert result.exit_code == 2 and message in result.stderr and result.stdout == ""


def test_a_sentence_or_a_batch(run, tmp_path, qwen3_dir):
    neither = run("model", "--model-dir", qwen3_dir)
    assert neither.exit_code == 2 and "give a sentence, or --batch FILE" in neither.stderr
