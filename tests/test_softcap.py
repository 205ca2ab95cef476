"""Soft-capped scores (Gemma 2) and QK-norm over whole rows (OLMo 2) against torch computing the
same thing here: every step, the blockwise and torch context-only paths, the KV-cache replay, and
the command line (options, errors, JSON params, explain)."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from attncli import compute
from attncli.core import Parameters
from attncli.core.kvcache import cached_run
from attncli.errors import ConfigError
from tests.conftest import JOURNEY

TOL = {"atol": 1e-5, "rtol": 1.3e-6}
CAP = 0.6


def emb(n: int, d: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).normal(size=(n, d)).astype(np.float32)


def reference(x, p: Parameters, heads, kv_heads, cap, window=None, scale=True, row_norm=False):
    """Grouped-query attention in torch from the parameters, written out here: optional whole-row
    RMSNorm of q and k (torch.nn.RMSNorm over heads·d), scores scaled, tanh-capped, masked
    (causal, optional window), softmax, heads' context, out_proj."""
    t = {name: torch.tensor(a) for name, a in (("x", x), ("wq", p.query.weight),
         ("wk", p.key.weight), ("wv", p.value.weight), ("wo", p.out.weight))}  # fmt: skip
    q, k, v = t["x"] @ t["wq"], t["x"] @ t["wk"], t["x"] @ t["wv"]
    n, d = x.shape[0], q.shape[1] // heads
    steps = {}
    if row_norm:
        for name, a, w in (("queries_norm", q, p.q_norm), ("keys_norm", k, p.k_norm)):
            norm = torch.nn.RMSNorm(a.shape[1], eps=1e-6)
            with torch.no_grad():
                if w is not None:
                    norm.weight.copy_(torch.tensor(w))
                steps[name] = norm(a)
        q, k = steps["queries_norm"], steps["keys_norm"]
    qh = q.view(n, heads, d).transpose(0, 1)
    kh, vh = (a.view(n, kv_heads, d).transpose(0, 1).repeat_interleave(heads // kv_heads, 0)
              for a in (k, v))  # fmt: skip
    s = qh @ kh.transpose(1, 2)
    steps["scores"] = s
    if scale:
        s = s / d**0.5
        steps["scaled_scores"] = s
    s = torch.tanh(s / cap) * cap
    steps["capped_scores"] = s
    diff = torch.arange(n)[:, None] - torch.arange(n)[None, :]
    hidden = (diff < 0) | (diff >= window) if window is not None else diff < 0
    s = s.masked_fill(hidden, float("-inf"))
    steps["masked_scores"] = s
    steps["weights"] = torch.softmax(s, -1)
    steps["head_context"] = (steps["weights"] @ vh).transpose(0, 1).reshape(n, heads * d)
    steps["context"] = steps["head_context"] @ t["wo"]
    return {name: a.detach().numpy() for name, a in steps.items()}


@pytest.mark.parametrize("engine", ["numpy", "torch"])
@pytest.mark.parametrize(("window", "scale"), [(None, True), (3, True), (None, False)])
def test_capped_steps_equal_torch(engine, window, scale):
    x = emb(9, 6, 1) * 3  # scores of several units: the cap bites
    r = compute(x, mode="gqa", d_out=8, heads=4, kv_heads=2, causal=True, window=window,
                scale=scale, softcap=CAP, engine=engine)  # fmt: skip
    want = reference(x, r.parameters, 4, 2, CAP, window, scale)
    assert list(r.steps)[list(r.steps).index("scores") :] == list(want)  # the order of the steps
    for name, a in want.items():
        np.testing.assert_allclose(r.steps[name], a, **TOL, err_msg=name)
    before = want["scaled_scores" if scale else "scores"]
    assert np.abs(before).max() > 2 * CAP and np.abs(r.steps["capped_scores"]).max() <= CAP
    plain = compute(x, mode="gqa", d_out=8, heads=4, kv_heads=2, causal=True, window=window,
                    scale=scale, engine=engine)  # fmt: skip
    assert np.abs(plain.weights - r.weights).max() > 0.05  # capping changes the weights


@pytest.mark.parametrize("window", [None, 5])
def test_numpy_blockwise_context_caps_each_tile_before_the_mask(monkeypatch, window):
    """Tiles of a few rows and keys: the keys stream through several tiles per row block, and
    the capped tile then goes through the online softmax."""
    import attncli.engines.blockwise as blockwise

    monkeypatch.setattr(blockwise, "TILE_BYTES", 32 * 4 * 7)  # 32 rows × 7 keys
    monkeypatch.setattr(blockwise, "MAX_ROWS", 32)
    x = emb(70, 6, 2) * 3
    r = compute(x, mode="gqa", d_out=8, heads=4, kv_heads=2, causal=True, window=window,
                softcap=CAP, engine="numpy", context_only=True)  # fmt: skip
    assert "weights" not in r.steps and "capped_scores" not in r.steps
    want = reference(x, r.parameters, 4, 2, CAP, window)
    np.testing.assert_allclose(r.context, want["context"], **TOL)


@pytest.mark.parametrize("window", [None, 4])
def test_torch_context_only_path_caps_in_row_blocks(monkeypatch, window):
    """The fused kernel cannot cap: the torch engine's own path does, a few rows at a time."""
    import attncli.engines.torch_engine as torch_engine

    monkeypatch.setattr(torch_engine, "CAPPED_TILE_BYTES", 4 * 4 * 40 * 5)  # 5 rows of 4 heads
    x = emb(40, 6, 3) * 3
    rows = []
    r = compute(x, mode="gqa", d_out=8, heads=4, kv_heads=2, causal=True, window=window,
                softcap=CAP, engine="torch", context_only=True, progress=rows.append)  # fmt: skip
    assert "weights" not in r.steps and rows == [5 * 4] * 8  # 8 blocks of 5 rows, 4 heads
    want = reference(x, r.parameters, 4, 2, CAP, window)
    np.testing.assert_allclose(r.context, want["context"], **TOL)


def test_kv_cache_replay_caps_too():
    x = emb(8, 6, 4) * 3
    r = compute(x, mode="gqa", d_out=8, heads=4, kv_heads=2, causal=True, softcap=CAP)
    cache = cached_run(r)
    assert cache.equal
    np.testing.assert_allclose(cache.context, r.context, **TOL)


@pytest.mark.parametrize("engine", ["numpy", "torch"])
def test_qk_norm_over_whole_rows_equals_torch_rms_norm(engine):
    x = emb(7, 6, 5)
    rng = np.random.default_rng(1)
    seeded = compute(x, mode="gqa", d_out=8, heads=4, kv_heads=2).parameters
    p = Parameters(seeded.query, seeded.key, seeded.value, seeded.out,
                   q_norm=rng.normal(size=8).astype(np.float32),
                   k_norm=rng.normal(size=4).astype(np.float32))  # fmt: skip
    r = compute(x, mode="gqa", heads=4, kv_heads=2, causal=True, qk_norm=True,
                qk_norm_scope="all", softcap=CAP, parameters=p, engine=engine)  # fmt: skip
    want = reference(x, p, 4, 2, CAP, row_norm=True)
    for name, a in want.items():
        np.testing.assert_allclose(r.steps[name], a, **TOL, err_msg=name)
    per_head = compute(
        x, mode="gqa", heads=4, kv_heads=2, causal=True, qk_norm=True, parameters=seeded
    )  # unit weights, each head's own RMS
    assert np.abs(per_head.steps["queries_norm"] - r.steps["queries_norm"]).max() > 0.1
    blockwise = compute(x, mode="gqa", heads=4, kv_heads=2, causal=True, qk_norm=True,
                        qk_norm_scope="all", softcap=CAP, parameters=p, engine=engine,
                        context_only=True)  # fmt: skip
    np.testing.assert_allclose(blockwise.context, want["context"], **TOL)
    assert cached_run(r).equal


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"qk_norm_scope": "all"}, "--qk-norm-scope all needs --qk-norm"),
        ({"qk_norm": True, "qk_norm_scope": "rows"}, "unknown --qk-norm-scope 'rows'"),
        ({"softcap": 0.0}, "--softcap must be a positive, finite number, got 0.0"),
        ({"softcap": float("nan")}, "--softcap must be a positive, finite number, got nan"),
        (
            {"softcap": 1e39},
            "--softcap 1e[+]39 does not fit float32 .*: it is beyond the largest number",
        ),
        ({"softcap": 1e-46}, "--softcap 1e-46 does not fit float32 .*: it would become 0"),
        ({"softcap": 7e4, "dtype": "float16", "engine": "torch"}, "does not fit float16"),
    ],
)
def test_bad_options_raise(options, message):
    with pytest.raises(ConfigError, match=message):
        compute(emb(4, 4), mode="multi-head", d_out=4, **options)


def test_norm_weights_of_the_wrong_scope_are_refused_with_the_fix():
    x = emb(5, 6)
    seeded = compute(x, mode="gqa", d_out=8, heads=4, kv_heads=2).parameters
    whole = Parameters(seeded.query, seeded.key, seeded.value, seeded.out,
                       q_norm=np.ones(8, np.float32), k_norm=np.ones(4, np.float32))  # fmt: skip
    with pytest.raises(ConfigError, match="normalise all 4 heads together: add --qk-norm-scope"):
        compute(x, mode="gqa", heads=4, kv_heads=2, qk_norm=True, parameters=whole)
    with pytest.raises(ConfigError, match=r"given: add --qk-norm --qk-norm-scope all$"):
        compute(x, mode="gqa", heads=4, kv_heads=2, parameters=whole)
    own = Parameters(seeded.query, seeded.key, seeded.value, seeded.out,
                     q_norm=np.ones(2, np.float32), k_norm=np.ones(2, np.float32))  # fmt: skip
    with pytest.raises(ConfigError, match=r"q_norm weights of shape \(2,\) need 4 heads"):
        compute(x, mode="gqa", heads=4, kv_heads=2, qk_norm=True, qk_norm_scope="all",
                parameters=own)  # fmt: skip


# ---- the command line ---------------------------------------------------------------------------


@pytest.mark.parametrize("value", ["0", "-1", "nan", "inf", "-inf"])
def test_bad_softcap_is_one_line_exit_2(run, value):
    done = run("compute", "sample:journey", "--mode", "linear", f"--softcap={value}")
    assert done.exit_code == 2 and done.stdout == ""
    assert done.stderr.count("\n") == 1 and "--softcap" in done.stderr, done.stderr


def test_qk_norm_scope_without_qk_norm_is_one_line_exit_2(run):
    done = run("explain", "sample:journey", "--mode", "linear", "--qk-norm-scope", "all")
    assert (
        done.exit_code == 2 and done.stderr == "attn: error: --qk-norm-scope all needs --qk-norm\n"
    )


def test_json_names_the_cap_and_the_scope_and_holds_the_capped_step(run):
    args = ["compute", "sample:journey", "--mode", "gqa", "--heads", "2", "--kv-heads", "1",
            "--d-out", "4", "--causal", "--qk-norm", "--qk-norm-scope", "all"]  # fmt: skip
    done = run(*args, "--softcap", "0.25", "-f", "json")
    assert done.exit_code == 0, done.stderr
    doc = json.loads(done.stdout)
    assert doc["params"]["softcap"] == 0.25 and doc["params"]["qk_norm_scope"] == "all"
    capped = np.array(doc["steps"]["capped_scores"], dtype=float)
    scaled = np.array(doc["steps"]["scaled_scores"], dtype=float)
    np.testing.assert_allclose(capped, np.tanh(scaled / 0.25) * 0.25, atol=1e-6)
    plain = json.loads(run(*args, "-f", "json").stdout)
    assert plain["params"]["softcap"] is None and "capped_scores" not in plain["steps"]
    table = run(*args, "--softcap", "0.25", "--show", "capped")
    assert "soft-cap 0.25" in table.stdout and "QK-norm over all heads" in table.stdout
    assert "capped_scores · head 1" in table.stdout


def test_explain_shows_the_soft_capping_with_its_numbers(run):
    r = compute(JOURNEY, mode="linear", d_out=2, causal=True, softcap=0.05)
    done = run("explain", "sample:journey", "--mode", "linear", "--d-out", "2", "--causal",
               "--softcap", "0.05", "--query", "3", "--precision", "4")  # fmt: skip
    assert done.exit_code == 0, done.stderr
    out = done.stdout
    assert "Soft-capping" in out and "ω''(q, k_j) = tanh(ω'(q, k_j) / C) · C,  C = 0.05" in out
    before, after = np.abs(r.steps["scaled_scores"][3]).max(), np.abs(r.steps["capped_scores"][3])
    assert f"largest |ω'| of this row: {before:.4f}; largest |ω''|: {after.max():.4f}" in out
    assert out.index("Soft-capping") < out.index("Causal mask") < out.index("Softmax")
    doc = json.loads(run("explain", "sample:journey", "--mode", "linear", "--causal",
                         "--softcap", "0.05", "-f", "json").stdout)  # fmt: skip
    keys = [s["key"] for s in doc["sections"]]
    assert (
        keys.index("scaled_scores") + 1 == keys.index("capped_scores")
        and doc["params"]["softcap"] == 0.05
    )


@pytest.mark.parametrize(
    ("scale", "before", "after"),
    [("--scale", "\\omega'", "\\omega''"), ("--no-scale", "\\omega", "\\omega'")],
)
def test_explain_formulas_name_the_score_each_step_reads(run, scale, before, after):
    done = run("explain", "sample:journey", "--mode", "linear", "--causal", "--softcap", "1",
               scale, "--query", "2", "-f", "markdown")  # fmt: skip
    assert done.exit_code == 0, done.stderr
    assert f"$${after}_{{ij}} = C \\tanh({before}_{{ij}} / C)$$" in done.stdout
    assert f"$${after}_{{ij}} = -\\infty" in done.stdout  # the mask reads the capped scores
    assert f"\\exp({after}_{{ij}} - m)" in done.stdout  # and so does softmax


def test_explain_formula_of_a_models_own_scale():
    from attncli.explain import build_trace

    r = compute(emb(4, 6), mode="trainable", d_out=4, scale_dim=256, causal=True, softcap=2.0)
    scaling = next(s for s in build_trace(r, 1).sections if s.key == "scaled_scores")
    assert scaling.latex == r"\omega'_{ij} = \omega_{ij} / \sqrt{256}"
    assert scaling.formula == "ω'(q, k_j) = ω(q, k_j) / √256"
