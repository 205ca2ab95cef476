"""Writers: JSON numbers read back as the very same floats; strict JSON only."""

import json

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import array_shapes, arrays

from attncli.io.writers import json_array


def _strict(text: str):
    def refuse(name):
        raise ValueError(f"non-strict JSON constant {name}")

    return json.loads(text, parse_constant=refuse)


@settings(max_examples=80, deadline=None)
@given(
    a=st.sampled_from([np.float32, np.float64]).flatmap(
        lambda dt: arrays(dt, array_shapes(min_dims=1, max_dims=3, max_side=5),
                          elements=st.floats(allow_nan=False, allow_infinity=False, width=32))
    )
)  # fmt: skip
def test_json_array_round_trips_exactly(a):
    back = np.array(_strict(json_array(a)), dtype=a.dtype)
    np.testing.assert_array_equal(back, a)


def test_masked_entries_are_null_and_values_are_short():
    a = np.array([[0.15, -np.inf], [1e-30, 3e38]], dtype=np.float32)
    text = json_array(a)
    assert text == "[[0.15,null],[1e-30,3e+38]]"
    assert _strict(text) == [[0.15, None], [1e-30, 3e38]]


@pytest.mark.parametrize("fmt", ["json"])
def test_cli_json_is_strict(run, fmt):
    text = run("compute", "sample:cat", "--causal", "--format", fmt).stdout
    doc = _strict(text)
    assert doc["steps"]["masked_scores"][0][1] is None
