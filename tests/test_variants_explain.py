"""attn explain for the variants: every number in a section is the result's, or recomputed here."""

from __future__ import annotations

import json
import math

import numpy as np

from attncli import compute
from attncli.explain import build_trace
from tests.conftest import JOURNEY, JOURNEY_TOKENS

OPTIONS = {"mode": "gqa", "heads": 4, "kv_heads": 2, "d_out": 8, "causal": True, "window": 2,
           "rope": True, "qk_norm": True}  # fmt: skip


def sections(trace):
    return {s.key + ("" if s.head is None else f"/{s.head}"): s for s in trace.sections}


def test_gqa_rope_qk_norm_window_trace_numbers():
    r = compute(JOURNEY, JOURNEY_TOKENS, **OPTIONS)
    i = 4
    by = sections(build_trace(r, i))
    assert "serves query heads 0, 1" in by["heads"].lines[0]
    for h in range(4):  # every head's scores use its shared key head, after norm and rotation
        np.testing.assert_allclose(by[f"scores/{h}"].results[0].values, r.steps["scores"][h, i])
        assert by[f"masked_scores/{h}"].title.endswith("Sliding-window causal mask")
    rope = by["rope"]
    before = {v.name: np.array(v.values) for v in rope.results}
    q, k = r.steps["queries_norm"][i, :2], r.steps["keys_norm"][:, :2]
    np.testing.assert_allclose(before["ω before rotation (head 0)"], k @ q, rtol=1e-5)
    np.testing.assert_allclose(before["ω after rotation (head 0)"], r.steps["scores"][0, i])
    assert f"angle = {i}·θ = {i} rad" in rope.lines[1]  # pair 0 turns by the position itself
    norm_lines = [line for line in by["qk_norm"].lines if line.startswith("head 0: RMS(q")]
    rms = math.sqrt(np.mean(np.square(r.steps["queries"][i, :2], dtype=np.float64)))
    assert norm_lines == [f"head 0: RMS(q(one)) = {round(rms, 4):g} → 1"]
    summary = by["summary"]
    assert f"spread evenly over {min(i + 1, 2)})" in summary.lines[1]  # the window: 2 keys


def test_mla_trace_has_the_latent_and_json_keys():
    r = compute(JOURNEY, JOURNEY_TOKENS, mode="mla", heads=2, d_out=4, latent_dim=3)
    trace = build_trace(r, 1)
    by = sections(trace)
    np.testing.assert_allclose(by["latent"].results[0].values, r.steps["latent"][1])
    assert "3 numbers per token instead of the 8" in by["latent"].lines[1]
    doc = json.loads(json.dumps(trace.to_dict()))
    assert doc["params"]["latent_dim"] == 3
    assert [s["key"] for s in doc["sections"]][:3] == ["inputs", "latent", "heads"]


def test_explain_cli_for_cross_attention(run):
    done = run("explain", "sample:journey", "--kv", "sample:cat", "--mode", "linear", "--d-out",
               "2", "--query", "1", "-f", "json")  # fmt: skip
    assert done.exit_code == 0, done.stderr
    doc = json.loads(done.stdout)
    scores = next(s for s in doc["sections"] if s["key"] == "scores")
    assert scores["results"][0]["labels"][:3] == ["The", "cat", "sat"]  # the memory's tokens
    assert doc["params"]["cross"] is True
