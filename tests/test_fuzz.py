"""Fuzzed inputs load or raise the project's InputError, never another exception."""

import io
import json

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from attncli import InputError, load_embeddings

CSV_CHARS = st.sampled_from(list("0123456789.,;\t -+eEinfa\"'\n\r x,\ufeff\x00é"))
settings_ = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _load(data: bytes, fmt: str | None) -> None:
    try:
        emb = load_embeddings("-", fmt, stdin=io.BytesIO(data))
    except InputError as e:
        assert "\n" not in str(e)
        return
    assert emb.values.ndim == 2 and len(emb.tokens) == emb.values.shape[0] >= 1


@settings_
@given(st.text(CSV_CHARS, max_size=80))
def test_fuzzed_csv_text(text):
    _load(text.encode("utf-8", "surrogatepass"), "csv")


@settings_
@given(st.binary(max_size=64))
def test_fuzzed_bytes_any_format(data):
    for fmt in (None, "csv", "json", "npy"):
        _load(data, fmt)


KEYS = st.sampled_from(["tokens", "embeddings", "x"])
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=3),
    lambda kids: st.lists(kids, max_size=4) | st.dictionaries(KEYS, kids, max_size=3),
    max_leaves=12,
)


@settings_
@given(json_values)
def test_fuzzed_json_documents(doc):
    _load(json.dumps(doc).encode(), "json")


def test_deep_nesting_and_huge_integers():
    _load(b"[" * 5000 + b"]" * 5000, "json")
    _load(b"[[1" + b"0" * 400 + b"]]", "json")
    _load(b'{"tokens": ["a"], "embeddings": [[' + b"9" * 5000 + b"]]}", "json")
    _load(b"a," + b"1" * 200000 + b"\n", "csv")
