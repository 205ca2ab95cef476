"""attn explain: the trace's numbers are attn compute's numbers, and the arithmetic adds up."""

import json
import math

import numpy as np
import pytest

from attncli import compute, load_embeddings
from attncli.explain import build_trace
from tests.conftest import JOURNEY, JOURNEY_TOKENS


def _results(trace):
    """(section key, head) -> {vector name: values} of every section."""
    out = {}
    for s in trace.sections:
        out.setdefault((s.key, s.head), {}).update({v.name: np.array(v.values) for v in s.results})
    return out


def _lines(trace, key):
    return [line for s in trace.sections if s.key == key for line in s.lines]


def test_notebook_numbers_in_the_simple_trace():
    r = compute(JOURNEY, JOURNEY_TOKENS)
    trace = build_trace(r, 1)
    assert "ω(journey, Your) = 0.55×0.43 + 0.87×0.15 + 0.66×0.89 = 0.9544" in _lines(
        trace, "scores"
    )
    z = _results(trace)[("context", None)]["z(journey)"]
    np.testing.assert_allclose(z, [0.4419, 0.6515, 0.5683], atol=5e-5)


def test_notebook_numbers_in_the_trainable_trace():
    r = compute(JOURNEY, JOURNEY_TOKENS, mode="trainable", d_out=2, seed=123)
    res = _results(build_trace(r, 1))
    np.testing.assert_allclose(res[("inputs", None)]["q(journey)"], [0.4306, 1.4551], atol=5e-5)
    np.testing.assert_allclose(
        res[("scores", None)]["ω"], [1.2705, 1.8524, 1.8111, 1.0795, 0.5577, 1.5440], atol=5e-5
    )
    np.testing.assert_allclose(
        res[("weights", None)]["α"], [0.1500, 0.2264, 0.2199, 0.1311, 0.0906, 0.1820], atol=5e-5
    )


CASES = [
    ("simple", {}),
    ("simple", {"scale": True}),
    ("trainable", {"d_out": 2}),
    ("linear", {"d_out": 4, "qkv_bias": True}),
    ("multi-head", {"d_out": 4, "heads": 2}),
    ("multi-head", {"d_out": 6, "heads": 3}),
]


@pytest.mark.parametrize(("mode", "options"), CASES)
@pytest.mark.parametrize("causal", [False, True])
@pytest.mark.parametrize("query", [0, 3, 9])
def test_every_trace_number_is_the_computed_one(mode, options, causal, query):
    emb = load_embeddings("sample:cat")
    r = compute(emb.values, emb.tokens, mode=mode, causal=causal, **options)
    trace = build_trace(r, query)
    res = _results(trace)
    heads = list(range(r.config.heads)) if mode == "multi-head" else [None]
    hd = r.config.head_dim
    for h in heads:

        def row(step, h=h):
            a = r.steps[step]
            return (a if h is None else a[h])[query]

        np.testing.assert_array_equal(res[("scores", h)]["ω"], row("scores"))
        np.testing.assert_array_equal(res[("weights", h)]["α"], row("weights"))
        if r.config.scale:
            np.testing.assert_array_equal(res[("scaled_scores", h)]["ω'"], row("scaled_scores"))
        if causal:
            masked = next(iter(res[("masked_scores", h)].values()))
            np.testing.assert_array_equal(masked, row("masked_scores"))
            assert np.isneginf(masked[query + 1 :]).all()
        z = next(iter(res[("context", h)].values()))
        expected = (
            r.context[query] if h is None else r.steps["head_context"][query, h * hd : (h + 1) * hd]
        )
        np.testing.assert_array_equal(z, expected)
        # the written-out products really sum to the scores
        terms = next(s.terms for s in trace.sections if s.key == "scores" and s.head == h)
        for j, term in enumerate(terms):
            assert math.isclose(
                float(np.dot(term["q"], term["k"])),
                float(row("scores")[j]),
                rel_tol=1e-5,
                abs_tol=1e-6,
            )
    if mode == "multi-head":
        np.testing.assert_array_equal(
            res[("output", None)][f"out({emb.tokens[query]})"], r.context[query]
        )
    weights = r.weights if r.weights.ndim == 3 else r.weights[None]
    for line, w in zip(
        [ln for ln in _lines(trace, "summary") if "entropy" in ln], weights[:, query], strict=True
    ):
        p = w[w > 0]
        shown = float(line.split("entropy H = ")[1].split(" nats")[0])
        assert shown == pytest.approx(-(p * np.log(p)).sum(), abs=5e-5)


def test_sections_follow_the_options():
    r = compute(
        JOURNEY, JOURNEY_TOKENS, mode="multi-head", d_out=4, heads=2, causal=True, dropout=0.3
    )
    keys = [(s.key, s.head) for s in build_trace(r, 2).sections]
    assert keys[:2] == [("inputs", None), ("heads", None)]
    for h in (0, 1):
        head_keys = [k for k, hh in keys if hh == h]
        assert head_keys == [
            "scores",
            "scaled_scores",
            "masked_scores",
            "weights",
            "dropout",
            "context",
        ]
    assert keys[-3:] == [("head_context", None), ("output", None), ("summary", None)]
    simple = [s.key for s in build_trace(compute(JOURNEY), 0).sections]
    assert simple == ["inputs", "scores", "weights", "context", "summary"]


def test_softmax_section_teaches_naive_and_overflow():
    lines = _lines(build_trace(compute(JOURNEY, JOURNEY_TOKENS), 1), "weights")
    assert any(line.startswith("m = max_j ω_j = 1.495") for line in lines)
    assert any("exp(1.495 − 1.495) = 1" in line for line in lines)
    assert any(line.startswith("naive ω_j / Σ ω = [0.1455, 0.2278") for line in lines)
    assert any("exp(100) = ∞" in line and "NaN" in line for line in lines)
    negative = _lines(
        build_trace(compute(-JOURNEY * [[1], [1], [-1], [1], [1], [1]]), 0), "weights"
    )
    assert any("not a distribution" in line for line in negative)


def test_large_inputs_stay_readable_but_sum_every_term():
    rng = np.random.default_rng(0)
    trace = build_trace(compute(rng.normal(size=(40, 100)), mode="linear", d_out=64), 5)
    bigger = build_trace(compute(rng.normal(size=(400, 300)), mode="linear", d_out=128), 5)
    for s, big in zip(trace.sections, bigger.sections, strict=True):
        assert len(s.lines) == len(big.lines) < 60, s.key  # bounded, whatever n and d
        assert all(len(line) < 260 for line in big.lines), s.key
    scores = next(s for s in trace.sections if s.key == "scores")
    assert any("(64 terms)" in line for line in scores.lines)
    assert any("more keys" in line for line in scores.lines)
    assert len(scores.terms) == 40 and len(scores.terms[0]["q"]) == 64


def test_explain_cli_terminal_markdown_json(run, tmp_path):
    term = run("explain", "sample:journey", "--query", "journey")
    assert term.exit_code == 0, term.stderr
    assert "ω(journey, Your) = 0.55×0.43 + 0.87×0.15 + 0.66×0.89 = 0.9544" in term.stdout
    assert "\x1b[" not in term.stdout
    assert (
        run(
            "explain", "sample:journey", "--mode", "trainable", "--d-out", "2", "--query", "1"
        ).exit_code
        == 0
    )
    md = tmp_path / "trace.md"
    result = run(
        "explain",
        "sample:cat",
        "--mode",
        "multi-head",
        "--heads",
        "2",
        "--causal",
        "--query",
        "it",
        "--format",
        "markdown",
        "-o",
        md,
    )
    assert result.exit_code == 0, result.stderr
    text = md.read_text()
    assert text.startswith("# attn explain: query “it” (token 7)")
    assert "## 3. Head 0: Attention scores" in text and "$$" in text and "| The |" in text
    doc = json.loads(run("explain", "sample:journey", "--causal", "--format", "json").stdout)
    assert doc["query"] == 0 and doc["token"] == "Your"
    masked = next(s for s in doc["sections"] if s["key"] == "masked_scores")
    assert masked["results"][0]["values"][1] is None
    assert {"key", "title", "formula", "why", "lines", "results", "terms"} <= set(
        doc["sections"][1]
    )


def test_explain_errors_are_one_line(run):
    result = run("explain", "sample:journey", "--query", "nobody")
    assert result.exit_code == 2 and "no such token" in result.stderr
    assert result.stderr.count("\n") == 1
