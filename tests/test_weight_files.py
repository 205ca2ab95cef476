"""Weight files written by real torch modules: book classes, MultiheadAttention, state dicts."""

import json

import numpy as np
import pytest

from tests.torch_reference import TOLERANCE, BookMultiHeadAttention

torch = pytest.importorskip("torch", reason="weight files are written by torch modules")
from safetensors.torch import save_file  # noqa: E402

TOL = TOLERANCE["float32"]


def _x(n=7, d=8, seed=0):
    return np.random.default_rng(seed).normal(size=(n, d)).astype(np.float32)


def _emb(tmp_path, x):
    path = tmp_path / "x.npy"
    np.save(path, x)
    return path


def _compute_json(run, *args):
    result = run("compute", *args, "--format", "json")
    assert result.exit_code == 0, result.stderr
    return json.loads(result.stdout)


def _mha(embed_dim=8, heads=2, seed=0):
    torch.manual_seed(seed)
    mha = torch.nn.MultiheadAttention(embed_dim, heads, batch_first=True)
    with torch.no_grad():  # torch zero-initialises the biases; make them count
        mha.in_proj_bias.uniform_(-0.5, 0.5)
        mha.out_proj.bias.uniform_(-0.5, 0.5)
    return mha.eval()


@pytest.mark.parametrize("causal", [False, True])
@pytest.mark.parametrize("heads", [1, 2, 4])
def test_multihead_attention_state_dict_matches_torch(run, tmp_path, causal, heads):
    x = _x()
    mha = _mha(heads=heads)
    weights = tmp_path / "mha.pt"
    torch.save(mha.state_dict(), weights)
    t = torch.tensor(x)[None]
    mask = torch.ones(7, 7, dtype=torch.bool).triu(1) if causal else None
    with torch.no_grad():
        out, avg = mha(t, t, t, attn_mask=mask, need_weights=True, average_attn_weights=True)
    args = [_emb(tmp_path, x), "--weights", weights, "--heads", str(heads)]
    doc = _compute_json(run, *args, *(["--causal"] if causal else []))
    assert doc["mode"] == "multi-head" and doc["params"]["d_out"] == 8  # inferred from the weights
    np.testing.assert_allclose(np.array(doc["steps"]["context"]), out[0].numpy(), **TOL)
    weights_avg = np.array(doc["steps"]["weights"]).mean(axis=0)
    np.testing.assert_allclose(weights_avg, avg[0].numpy(), **TOL)


def test_separate_q_k_v_proj_weight_layout(run, tmp_path):
    x = _x()
    mha = _mha()
    sd = mha.state_dict()
    q, k, v = sd.pop("in_proj_weight").chunk(3)
    sd.update(q_proj_weight=q, k_proj_weight=k, v_proj_weight=v)
    packed, split = tmp_path / "packed.safetensors", tmp_path / "split.safetensors"
    save_file(dict(mha.state_dict()), packed)
    save_file({k: t.contiguous() for k, t in sd.items()}, split)
    a = _compute_json(run, _emb(tmp_path, x), "--weights", packed, "--heads", "2")
    b = _compute_json(run, _emb(tmp_path, x), "--weights", split, "--heads", "2")
    assert a["steps"] == b["steps"]


def test_book_multi_head_attention_with_its_mask_buffer(run, tmp_path):
    x = _x(6, 4)
    torch.manual_seed(3)
    book = BookMultiHeadAttention(
        4, 6, context_length=10, dropout=0.0, num_heads=3, qkv_bias=True
    ).eval()
    weights = tmp_path / "book.pth"
    torch.save(book.state_dict(), weights)
    assert "mask" in book.state_dict()
    with torch.no_grad():
        expected = book(torch.tensor(x)[None])[0].numpy()
    doc = _compute_json(run, _emb(tmp_path, x), "--weights", weights, "--heads", "3", "--causal")
    np.testing.assert_allclose(np.array(doc["steps"]["context"]), expected, **TOL)


def test_prefix_selects_one_module_of_a_bigger_state_dict(run, tmp_path):
    x = _x(5, 4)
    torch.manual_seed(0)
    blocks = [BookMultiHeadAttention(4, 4, 8, 0.0, 2).eval() for _ in range(2)]
    sd = {"tok_emb.weight": torch.zeros(10, 4)}
    for i, block in enumerate(blocks):
        sd.update({f"trf_blocks.{i}.att.{k}": v for k, v in block.state_dict().items()})
        sd[f"trf_blocks.{i}.ff.layers.0.weight"] = torch.zeros(16, 4)
    weights = tmp_path / "model.pt"
    torch.save({"model_state_dict": sd, "epoch": 3}, weights)
    ambiguous = run("compute", _emb(tmp_path, x), "--weights", weights, "--heads", "2")
    assert ambiguous.exit_code == 2 and ambiguous.stderr.count("\n") == 1
    assert "'model_state_dict.trf_blocks.0.att.'" in ambiguous.stderr
    assert "'model_state_dict.trf_blocks.1.att.'" in ambiguous.stderr
    prefix = "model_state_dict.trf_blocks.1.att."
    doc = _compute_json(
        run,
        _emb(tmp_path, x),
        "--weights",
        weights,
        "--weights-prefix",
        prefix,
        "--heads",
        "2",
        "--causal",
    )
    with torch.no_grad():
        expected = blocks[1](torch.tensor(x)[None])[0].numpy()
    np.testing.assert_allclose(np.array(doc["steps"]["context"]), expected, **TOL)
    args = ("--weights", weights, "--heads", "2", "--causal")
    for named in (prefix[:-1], "model_state_dict.trf_blocks.1"):  # without the dot; a parent
        same = run("compute", _emb(tmp_path, x), *args, "--weights-prefix", named, "-f", "json")
        assert same.exit_code == 0, same.stderr
        assert json.loads(same.stdout)["params"]["weights_prefix"] == prefix
        assert json.loads(same.stdout)["steps"]["context"] == doc["steps"]["context"]
        assert f"--weights-prefix {named!r} is the attention module {prefix!r}" in same.stderr
    assert not any("trf_blocks.0" in k for k in doc["params"]["unused_keys"])  # not news
    for named, says in (
        ("model_state_dict.trf_blocks", "names 2 attention modules under it"),
        ("model_state_dict.trf_blocks.1.at", "names no attention module"),
    ):
        refused = run("compute", _emb(tmp_path, x), *args, "--weights-prefix", named)
        assert refused.exit_code == 2 and says in refused.stderr, refused.stderr
        assert "pick one of 'model_state_dict.trf_blocks." in refused.stderr
        assert refused.stderr.count("\n") == 1
    missing = run(
        "compute",
        _emb(tmp_path, x),
        "--weights",
        weights,
        "--weights-prefix",
        "nope.",
        "--heads",
        "2",
    )
    assert (
        missing.exit_code == 2 and "no keys start with --weights-prefix 'nope.'" in missing.stderr
    )


def test_linear_module_state_dicts_infer_the_mode(run, tmp_path):
    x = _x(5, 3)
    torch.manual_seed(0)
    layers = {n: torch.nn.Linear(3, 2, bias=True) for n in ("q_proj", "k_proj", "v_proj")}
    sd = {f"{n}.{k}": v for n, layer in layers.items() for k, v in layer.state_dict().items()}
    weights = tmp_path / "hf.safetensors"
    save_file(sd, weights)
    doc = _compute_json(run, _emb(tmp_path, x), "--weights", weights)
    assert doc["mode"] == "linear" and doc["params"]["d_out"] == 2
    t = torch.tensor(x)
    with torch.no_grad():
        q, k, v = (layers[n](t) for n in ("q_proj", "k_proj", "v_proj"))
        expected = torch.softmax(q @ k.T / 2**0.5, -1) @ v
    np.testing.assert_allclose(np.array(doc["steps"]["context"]), expected.numpy(), **TOL)


def test_bfloat16_safetensors_are_widened(run, tmp_path):
    mha = _mha()
    weights = tmp_path / "bf16.safetensors"
    save_file({k: v.to(torch.bfloat16) for k, v in mha.state_dict().items()}, weights)
    doc = _compute_json(run, _emb(tmp_path, _x()), "--weights", weights, "--heads", "2")
    assert np.isfinite(np.array(doc["steps"]["context"])).all()


@pytest.mark.parametrize("suffix", [".pt", ".safetensors", ".npz", ".json"])
def test_save_weights_round_trips_every_format(run, tmp_path, suffix):
    weights = tmp_path / f"w{suffix}"
    args = ["sample:cat", "--mode", "multi-head", "--heads", "2", "--d-out", "4"]
    first = _compute_json(run, *args, "--seed", "5", "--save-weights", weights)
    again = _compute_json(run, *args, "--seed", "6", "--weights", weights)
    assert first["steps"] == again["steps"]
    if suffix == ".safetensors":  # it records mode and heads: nothing else needs repeating
        assert _compute_json(run, "sample:cat", "--weights", weights)["steps"] == first["steps"]
    if suffix == ".pt":
        sd = torch.load(weights, weights_only=True)
        assert sd["W_query.weight"].shape == (4, 8) and "out_proj.bias" in sd


def test_pt_file_with_code_is_refused(run, tmp_path):
    weights = tmp_path / "module.pt"
    torch.save(torch.nn.Linear(3, 2), weights)  # a whole pickled module, not a state dict
    result = run("compute", "sample:journey", "--mode", "linear", "--weights", weights)
    assert result.exit_code == 2 and result.stderr.count("\n") == 1
    assert "refused by weights-only loading" in result.stderr and "state_dict()" in result.stderr


@pytest.mark.parametrize(
    ("sd", "message"),
    [
        ({"W_query.weight": torch.ones(2, 3)}, "missing key 'W_key.weight'"),
        ({"encoder.weight": torch.ones(2, 3)}, "no attention weights found (keys: encoder.weight)"),
        (
            {
                "in_proj_weight": torch.ones(9, 3),
                "out_proj.weight": torch.ones(3, 3),
                "bias_k": torch.ones(1, 1, 3),
            },
            "add_bias_kv",
        ),
        (
            {
                "in_proj_weight": torch.ones(9, 3),
                "out_proj.weight": torch.ones(3, 3),
                "out_proj.bias": torch.ones(4),
            },
            "'out_proj.bias' has shape (4,), expected (3,)",
        ),
    ],
)
def test_bad_state_dicts(run, tmp_path, sd, message):
    weights = tmp_path / "bad.pt"
    torch.save(sd, weights)
    result = run("compute", "sample:journey", "--weights", weights, "--heads", "1")
    assert result.exit_code == 2 and message in result.stderr, result.stderr
    assert result.stderr.count("\n") == 1


def test_multi_head_weights_without_a_head_count_are_an_error(run, tmp_path):
    weights = tmp_path / "mha.pt"
    torch.save(_mha(embed_dim=3, heads=1).state_dict(), weights)
    result = run("compute", "sample:journey", "--weights", weights)
    assert result.exit_code == 2 and "pass --heads" in result.stderr


def test_truncated_and_garbage_weight_files(run, tmp_path):
    for name, data in (
        ("bad.pt", b"not a zip"),
        ("bad.safetensors", b"\x05\x00"),
        ("bad.npz", b"PK\x03"),
    ):
        path = tmp_path / name
        path.write_bytes(data)
        result = run("compute", "sample:journey", "--mode", "linear", "--weights", path)
        assert result.exit_code == 2 and "not a valid" in result.stderr, (name, result.stderr)
