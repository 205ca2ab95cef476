"""Embeddings readers: CSV dialects, JSON shapes, NPY, stdin sniffing, samples, and bad inputs."""

import io

import numpy as np
import pytest

from attncli import InputError, load_embeddings
from attncli.io.readers import sniff_format
from attncli.io.samples import list_samples
from tests.conftest import JOURNEY, JOURNEY_TOKENS, SAMPLES


def _write(tmp_path, name, content):
    path = tmp_path / name
    path.write_bytes(content if isinstance(content, bytes) else content.encode())
    return path


@pytest.mark.parametrize(
    "text",
    [
        "token,a,b\nx,1,2\ny,3,4\n",
        "token;a;b\r\nx;1;2\r\ny;3;4\r\n",
        "token\ta\tb\nx\t1\t2\ny\t3\t4",
        "\ufefftoken,a,b\nx,1,2\n\ny,3,4\n\n",
        "x,1,2\ny,3,4\n",
        'token,a,b\n"x",1, 2\n"y",3 ,4\n',
    ],
    ids=[
        "comma-header",
        "semicolon-crlf",
        "tab-no-newline",
        "bom-blank-lines",
        "no-header",
        "quoted",
    ],
)
def test_csv_dialects_with_labels(tmp_path, text):
    emb = load_embeddings(_write(tmp_path, "e.csv", text))
    assert emb.tokens == ("x", "y")
    np.testing.assert_array_equal(emb.values, [[1, 2], [3, 4]])


def test_csv_without_labels_names_tokens(tmp_path):
    emb = load_embeddings(_write(tmp_path, "e.csv", "a,b,c\n1,2,3\n4,5,6\n"))
    assert emb.tokens == ("t0", "t1")
    assert emb.values.shape == (2, 3)
    emb = load_embeddings(_write(tmp_path, "f.csv", "0.5\n-1e-3\n"))
    assert emb.tokens == ("t0", "t1") and emb.values[:, 0].tolist() == [0.5, -0.001]


def test_json_forms(tmp_path):
    plain = load_embeddings(_write(tmp_path, "a.json", "[[1, 2.5], [3, 4]]"))
    assert plain.tokens == ("t0", "t1") and plain.values.tolist() == [[1, 2.5], [3, 4]]
    named = load_embeddings(
        _write(tmp_path, "b.json", '{"tokens": ["p", "q"], "embeddings": [[1], [2]]}')
    )
    assert named.tokens == ("p", "q")


def test_npy_and_sniffed_stdin(tmp_path):
    buf = io.BytesIO()
    np.save(buf, JOURNEY.astype(np.float32))
    emb = load_embeddings(_write(tmp_path, "x.npy", buf.getvalue()))
    np.testing.assert_allclose(emb.values, JOURNEY, atol=1e-7)
    for data, fmt, width in (
        (buf.getvalue(), "npy", 3),
        (b" [[1,2]]", "json", 2),
        (b"a,1,2", "csv", 2),
    ):
        assert sniff_format(data) == fmt
        assert load_embeddings("-", stdin=io.BytesIO(data)).values.shape[1] == width
    forced = load_embeddings("-", "csv", stdin=io.BytesIO(b"1,2\n3,4"))
    assert forced.values.shape == (2, 2)


def test_samples_match_the_notebook_and_each_other():
    journey = load_embeddings("sample:journey")
    np.testing.assert_array_equal(journey.values, JOURNEY)
    assert journey.tokens == JOURNEY_TOKENS
    names = {s.name for s in list_samples()}
    assert {"journey", "cat"} <= names
    for sample in list_samples():
        loaded = [load_embeddings(p) for p in sample.files]
        assert len(loaded) >= 2, f"{sample.name} ships as CSV and JSON"
        for other in loaded[1:]:
            assert other.tokens == loaded[0].tokens
            np.testing.assert_array_equal(other.values, loaded[0].values)
    cat = load_embeddings(SAMPLES / "cat.json")
    assert " ".join(cat.tokens) == "The cat sat on the mat because it was warm"
    assert cat.values.shape[1] > 3


# The catalogue of bad inputs: (file name, content, words the one-line message must contain).
BAD_INPUTS = [
    ("empty.csv", "", "empty input"),
    ("blank.csv", "\n \n\n", "empty input"),
    ("header.csv", "token,a,b\n", "only a header"),
    ("ragged.csv", "x,1,2\ny,3\n", "row 2 has 2 columns, expected 3"),
    ("cell.csv", "x,1,2\ny,3,abc\n", "row 2, column 3: 'abc' is not a number"),
    ("emptycell.csv", "1,2\n3,\n", "row 2, column 2: empty is not a number"),
    ("nan.csv", "x,1,nan\n", "row 1, column 3: 'nan' is not a finite number"),
    ("inf.csv", "x,inf,1\n", "not a finite number"),
    ("huge.csv", "x,1e400,1\n", "'1e400' is not a finite number"),
    ("utf.csv", b"x,1,2\n\xff\xfe,3,4\n", "not UTF-8"),
    ("garbage.csv", bytes(range(256)), "binary data"),
    ("number.json", "3.5", "got a JSON number"),
    ("flat.json", "[1, 2, 3]", "top level[0] is a number, expected a list"),
    ("cube.json", "[[[1, 2]], [[3, 4]]]", "top level[0][0] is a array, expected a number"),
    ("empty.json", "[]", "has no rows"),
    ("ragged.json", "[[1, 2], [3]]", "top level[1] has 1 values, expected 2"),
    ("str.json", '[[1, "2"]]', "top level[0][1] is a string"),
    ("bool.json", "[[1, true]]", "top level[0][1] is a boolean"),
    ("nan.json", "[[1, NaN]]", "NaN is not a finite number"),
    ("huge.json", "[[1, 1e400]]", "not a finite number"),
    ("keys.json", '{"embedding": [[1]]}', "unknown key 'embedding'"),
    ("nokey.json", '{"tokens": ["a"]}', "missing key 'embeddings'"),
    (
        "mismatch.json",
        '{"tokens": ["a"], "embeddings": [[1], [2]]}',
        "1 tokens but 2 embedding rows",
    ),
    (
        "tokentype.json",
        '{"tokens": [1, 2], "embeddings": [[1], [2]]}',
        "'tokens' must be a list of strings",
    ),
    ("broken.json", "[[1, 2]", "invalid JSON at line 1"),
    ("garbage.npy", b"hello", "not a valid .npy file (no NPY header)"),
    (
        "truncated.npy",
        b"\x93NUMPY\x01\x00v\x00{'descr': '<f8', 'fortran_order': False, 'shape': (3, 3), }",
        "not a valid .npy",
    ),
]


@pytest.mark.parametrize(("name", "content", "message"), BAD_INPUTS, ids=[b[0] for b in BAD_INPUTS])
def test_bad_inputs_raise_one_line_input_error(tmp_path, name, content, message):
    path = _write(tmp_path, name, content)
    with pytest.raises(InputError) as err:
        load_embeddings(path)
    text = str(err.value)
    assert message in text
    assert text.startswith(str(path)) and "\n" not in text


def test_npy_with_objects_is_never_unpickled(tmp_path):
    path = tmp_path / "obj.npy"
    np.save(path, np.array([{"a": 1}, None], dtype=object), allow_pickle=True)
    with pytest.raises(InputError, match="refusing to unpickle"):
        load_embeddings(path)


@pytest.mark.parametrize(
    ("array", "message"), [(np.zeros(4), "got 1-D"), (np.zeros((2, 2, 2)), "got 3-D")]
)
def test_npy_wrong_rank(tmp_path, array, message):
    path = tmp_path / "a.npy"
    np.save(path, array)
    with pytest.raises(InputError, match=message):
        load_embeddings(path)


def test_missing_file_directory_and_sample(tmp_path):
    with pytest.raises(InputError, match="no such file"):
        load_embeddings(tmp_path / "nope.csv")
    with pytest.raises(InputError, match="is a directory"):
        load_embeddings(tmp_path)
    with pytest.raises(InputError, match=r"no such sample.*journey"):
        load_embeddings("sample:nope")
    with pytest.raises(InputError, match="<stdin>: empty input"):
        load_embeddings("-", stdin=io.BytesIO(b""))
