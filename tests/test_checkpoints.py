"""Checkpoint layouts people have, each built by torch or transformers in the test, saved as its
users save it, read by attn compute --weights and compared with the module's own output."""

import json

import numpy as np
import pytest

from tests.test_weight_files import _emb
from tests.test_weight_files import _x as _weights_x
from tests.torch_reference import TOLERANCE

torch = pytest.importorskip("torch", reason="checkpoints are written by torch modules")
F = torch.nn.functional
TOL = TOLERANCE["float32"]


def _x(n=6, d=8, seed=0):
    return _weights_x(n, d, seed)


def _run_json(run, *args):
    result = run("compute", *args, "--format", "json")
    assert result.exit_code == 0, result.stderr
    return json.loads(result.stdout), result.stderr


def _heads_sdpa(q, k, v, heads, causal, kv_heads=None):
    """(n, d) projections split into heads, attention, heads merged: torch's own SDPA."""
    n = q.shape[0]
    kv_heads = kv_heads or heads
    q = q.view(n, heads, -1).transpose(0, 1)[None]
    k = k.view(n, kv_heads, -1).transpose(0, 1)[None]
    v = v.view(n, kv_heads, -1).transpose(0, 1)[None]
    z = F.scaled_dot_product_attention(q, k, v, is_causal=causal, enable_gqa=kv_heads != heads)
    return z[0].transpose(0, 1).reshape(n, -1)


def _gpt2(n_layer, seed):
    """A small random GPT-2 (transformers), eval mode."""
    transformers = pytest.importorskip("transformers", reason="GPT-2 is transformers'")
    torch.manual_seed(seed)
    config = transformers.GPT2Config(vocab_size=16, n_embd=8, n_layer=n_layer, n_head=2,
                                     n_positions=16)  # fmt: skip
    return transformers.GPT2Model(config).eval()


def _gpt2_context(attn, x):
    """GPT-2 attention's own projections (Conv1D) around torch's causal SDPA."""
    with torch.no_grad():
        q, k, v = attn.c_attn(torch.tensor(x)).split(x.shape[1], dim=-1)
        return attn.c_proj(_heads_sdpa(q, k, v, 2, causal=True)).numpy()


class NanoGPTAttention(torch.nn.Module):
    """nanoGPT's CausalSelfAttention, re-created: one fused c_attn Linear, c_proj Linear."""

    def __init__(self, d, heads):
        super().__init__()
        self.c_attn = torch.nn.Linear(d, 3 * d)
        self.c_proj = torch.nn.Linear(d, d)
        self.heads = heads

    def forward(self, x):
        q, k, v = self.c_attn(x).split(x.shape[-1], dim=-1)
        return self.c_proj(_heads_sdpa(q, k, v, self.heads, causal=True))


def test_nanogpt_training_checkpoint(run, tmp_path):
    torch.manual_seed(0)
    block = NanoGPTAttention(8, 2).eval()
    ln = torch.nn.LayerNorm(8)
    sd = {f"_orig_mod.attn.{k}": v for k, v in block.state_dict().items()}
    sd |= {f"_orig_mod.ln_1.{k}": v for k, v in ln.state_dict().items()}
    ckpt = tmp_path / "ckpt.pt"
    torch.save({"model": sd, "model_args": {"n_head": 2, "n_embd": 8}, "iter_num": 5}, ckpt)
    x = _x()
    doc, err = _run_json(run, _emb(tmp_path, x), "--weights", ckpt, "--causal")
    with torch.no_grad():
        expected = block(torch.tensor(x)).numpy()
    np.testing.assert_allclose(np.array(doc["steps"]["context"]), expected, **TOL)
    params = doc["params"]
    assert params["heads"] == 2 and params["weights_prefix"] == "attn."
    assert params["unused_keys"] == ["ln_1.bias", "ln_1.weight"]
    assert params["qkv_bias"] is True and params["seed"] is None
    assert "--heads 2 from the checkpoint" in err and "prefix 'attn.'" in err
    assert "tensors not used: ln_1.bias, ln_1.weight" in err
    _plain, err = _run_json(run, _emb(tmp_path, x), "--weights", ckpt)
    assert "add --causal" in err


def test_transformers_gpt2_conv1d_layout(run, tmp_path):
    model = _gpt2(1, seed=0)
    model.save_pretrained(tmp_path / "gpt2", safe_serialization=True)
    x = _x()
    expected = _gpt2_context(model.h[0].attn, x)
    weights = tmp_path / "gpt2" / "model.safetensors"
    doc, _err = _run_json(run, _emb(tmp_path, x), "--weights", weights, "--heads", "2", "--causal")
    np.testing.assert_allclose(np.array(doc["steps"]["context"]), expected, **TOL)
    assert doc["params"]["weights_prefix"] == "h.0.attn."
    assert "wte.weight" in doc["params"]["unused_keys"]


def test_book_combined_qkv_class(run, tmp_path):
    torch.manual_seed(1)
    qkv, proj = torch.nn.Linear(8, 24, bias=False), torch.nn.Linear(8, 8)
    sd = {"qkv.weight": qkv.weight, "proj.weight": proj.weight, "proj.bias": proj.bias}
    path = tmp_path / "combined.pt"
    torch.save(sd, path)
    x = _x()
    with torch.no_grad():
        q, k, v = qkv(torch.tensor(x)).split(8, dim=-1)
        expected = proj(_heads_sdpa(q, k, v, 4, causal=True)).numpy()
    doc, _ = _run_json(run, _emb(tmp_path, x), "--weights", path, "--heads", "4", "--causal")
    np.testing.assert_allclose(np.array(doc["steps"]["context"]), expected, **TOL)
    assert doc["params"]["qkv_bias"] is False


def test_llama_style_folder_with_gqa_and_rope_from_config(run, tmp_path):
    modeling = pytest.importorskip("transformers.models.llama.modeling_llama")
    from safetensors.torch import save_file

    torch.manual_seed(2)
    d, heads, kv_heads, head_dim = 16, 4, 2, 4
    proj = {
        "q_proj": torch.nn.Linear(d, heads * head_dim, bias=False),
        "k_proj": torch.nn.Linear(d, kv_heads * head_dim, bias=False),
        "v_proj": torch.nn.Linear(d, kv_heads * head_dim, bias=False),
        "o_proj": torch.nn.Linear(heads * head_dim, d, bias=False),
    }
    folder = tmp_path / "llama"
    folder.mkdir()
    sd = {f"model.layers.0.self_attn.{n}.weight": m.weight.detach() for n, m in proj.items()}
    sd["model.layers.0.input_layernorm.weight"] = torch.ones(d)
    save_file(sd, folder / "model.safetensors")
    (folder / "config.json").write_text(json.dumps({
        "model_type": "llama", "num_attention_heads": heads, "num_key_value_heads": kv_heads,
        "rope_theta": 500000.0, "hidden_size": d}))  # fmt: skip
    x = _x(7, d)
    n = len(x)
    with torch.no_grad():
        xt = torch.tensor(x)
        q = proj["q_proj"](xt).view(n, heads, head_dim).transpose(0, 1)[None]
        k = proj["k_proj"](xt).view(n, kv_heads, head_dim).transpose(0, 1)[None]
        v = proj["v_proj"](xt).view(n, kv_heads, head_dim).transpose(0, 1)[None]
        inv = 1.0 / (500000.0 ** (torch.arange(0, head_dim, 2).float() / head_dim))
        freqs = torch.outer(torch.arange(n).float(), inv)
        emb = torch.cat([freqs, freqs], dim=-1)
        q, k = modeling.apply_rotary_pos_emb(q, k, emb.cos()[None], emb.sin()[None])
        z = F.scaled_dot_product_attention(q, k, v, is_causal=True, enable_gqa=True)
        expected = proj["o_proj"](z[0].transpose(0, 1).reshape(n, -1)).numpy()
    doc, err = _run_json(run, _emb(tmp_path, x), "--weights", folder, "--causal")
    np.testing.assert_allclose(np.array(doc["steps"]["context"]), expected, atol=1e-5, rtol=1e-4)
    p = doc["params"]
    assert (p["mode"], p["heads"], p["kv_heads"], p["rope"], p["rope_base"]) == (
        "gqa", 4, 2, True, 500000.0)  # fmt: skip
    assert "RoPE (base 500000) from config.json" in err
    assert p["unused_keys"] == ["model.layers.0.input_layernorm.weight"]


def test_gemma2_attention_folder_brings_rope_softcap_and_scale_from_config(run, tmp_path):
    """A transformers 5 Gemma 2 folder: rope_parameters' θ, attn_logit_softcapping and
    query_pre_attn_scalar all come from config.json (each said in a note), and the context is
    Gemma2Attention's own (eager, causal) for its global layer."""
    transformers = pytest.importorskip("transformers", reason="Gemma 2 is transformers'")
    torch.manual_seed(5)
    config = transformers.Gemma2Config(
        vocab_size=16, hidden_size=16, num_hidden_layers=2, num_attention_heads=4,
        num_key_value_heads=2, head_dim=4, intermediate_size=32, query_pre_attn_scalar=12,
        attn_logit_softcapping=0.5, initializer_range=0.3, attn_implementation="eager",
        rope_parameters={"rope_type": "default", "rope_theta": 500.0}, sliding_window=3,
    )  # fmt: skip
    model = transformers.Gemma2Model(config).eval()
    model.save_pretrained(tmp_path / "gemma2")
    saved = json.loads((tmp_path / "gemma2" / "config.json").read_text())
    assert "rope_theta" not in saved and saved["rope_parameters"]["rope_theta"] == 500.0
    x = _x(7, 16)
    with torch.no_grad():
        xt = torch.tensor(x)[None]
        cos, sin = model.rotary_emb(xt, torch.arange(7)[None])
        mask = torch.full((7, 7), float("-inf")).triu(1)[None, None]
        expected, _ = model.layers[1].self_attn(xt, (cos, sin), mask)  # layer 1: global
    doc, err = _run_json(run, _emb(tmp_path, x), "--weights", tmp_path / "gemma2",
                         "--weights-prefix", "layers.1.self_attn.", "--causal")  # fmt: skip
    np.testing.assert_allclose(np.array(doc["steps"]["context"]), expected[0].numpy(), **TOL)
    p = doc["params"]
    assert (p["rope_base"], p["softcap"], p["scale_dim"]) == (500.0, 0.5, 12.0)
    assert "--softcap 0.5 (attn_logit_softcapping) from config.json" in err
    assert "RoPE (base 500) from config.json" in err and "1/√12" in err
    assert (
        "config.json: sliding_window 3 not applied; --window 3 --causal computes a slid" in err
    )  # layer 1 is global: right
    gemma = ("--weights", tmp_path / "gemma2", "--causal")
    unscaled, err = _run_json(run, _emb(tmp_path, x), *gemma, "--weights-prefix",
                              "layers.1.self_attn.", "--no-scale")  # fmt: skip
    assert "query_pre_attn_scalar" not in err and unscaled["params"]["scale"] is False
    # layer 0 is a sliding layer: with the window asked for, its context is transformers' own
    with torch.no_grad():
        i = torch.arange(7)
        band = torch.where((i[:, None] >= i[None]) & (i[:, None] - i[None] < 3), 0.0, -torch.inf)
        expected, _ = model.layers[0].self_attn(xt, (cos, sin), band[None, None])
    slid, err = _run_json(run, _emb(tmp_path, x), *gemma, "--weights-prefix",
                          "layers.0.self_attn.", "--window", "3")  # fmt: skip
    np.testing.assert_allclose(np.array(slid["steps"]["context"]), expected[0].numpy(), **TOL)
    assert "sliding_window" not in err
    capped = np.array(doc["steps"]["capped_scores"], dtype=float)
    assert (
        np.abs(np.array(doc["steps"]["scaled_scores"], dtype=float)).max()
        > 1.0
        > 0.5
        >= (np.abs(capped).max())
    )  # the cap changed the numbers


def test_output_projection_back_to_a_model_width_unlike_heads_times_head_dim(run, tmp_path):
    """Qwen3 with head_dim 24: q_proj is 64 → 96 wide, o_proj 96 → 64; the context is the
    layer's own (eager, causal), with config.json's heads, RoPE and QK-norm."""
    transformers = pytest.importorskip("transformers", reason="Qwen3 is transformers'")
    torch.manual_seed(6)
    config = transformers.Qwen3Config(
        vocab_size=16, hidden_size=64, num_hidden_layers=1, num_attention_heads=4,
        num_key_value_heads=2, head_dim=24, intermediate_size=32, attn_implementation="eager",
    )  # fmt: skip
    model = transformers.Qwen3Model(config).eval()
    model.save_pretrained(tmp_path / "qwen3")
    x = _x(6, 64)
    with torch.no_grad():
        xt = torch.tensor(x)[None]
        cos, sin = model.rotary_emb(xt, torch.arange(6)[None])
        mask = torch.full((6, 6), float("-inf")).triu(1)[None, None]
        expected, _ = model.layers[0].self_attn(xt, (cos, sin), mask)
    folder = tmp_path / "qwen3"
    doc, _ = _run_json(run, _emb(tmp_path, x), "--weights", folder, "--causal", "--qk-norm")
    context = np.array(doc["steps"]["context"])
    assert context.shape == (6, 64) and np.array(doc["steps"]["queries"]).shape == (6, 96)
    assert (doc["params"]["d_out"], doc["params"]["d_model"]) == (96, 64)
    np.testing.assert_allclose(context, expected[0].numpy(), **TOL)
    # a soft-cap in the config of a family transformers does not cap: said, not applied
    saved = json.loads((folder / "config.json").read_text())
    (folder / "config.json").write_text(json.dumps({**saved, "attn_logit_softcapping": 0.5}))
    same, err = _run_json(run, _emb(tmp_path, x), "--weights", folder, "--causal", "--qk-norm")
    assert same["params"]["softcap"] is None and same["steps"]["context"] == doc["steps"]["context"]
    assert "config.json: attn_logit_softcapping 0.5 not applied" in err
    assert "--softcap 0.5 caps them" in err
    capped, err = _run_json(run, _emb(tmp_path, x), "--weights", folder, "--causal", "--qk-norm",
                            "--softcap", "0.5")  # fmt: skip
    assert capped["params"]["softcap"] == 0.5 and "not applied" not in err
    for bad in (-3, True, 2.5, "4096"):
        settings = {**saved, "use_sliding_window": True, "sliding_window": bad}
        (folder / "config.json").write_text(json.dumps(settings))
        refused = run("compute", _emb(tmp_path, x), "--weights", folder, "--qk-norm")
        assert refused.exit_code == 2 and refused.stderr.count("\n") == 1
        assert f"sliding_window = {bad!r} is not a positive whole number" in refused.stderr
    assert np.abs(np.array(capped["steps"]["capped_scores"])).max() <= 0.5


def test_bert_attention_by_prefix(run, tmp_path):
    transformers = pytest.importorskip("transformers", reason="BERT is transformers'")
    torch.manual_seed(3)
    config = transformers.BertConfig(vocab_size=16, hidden_size=8, num_hidden_layers=2,
                                     num_attention_heads=2, intermediate_size=16)  # fmt: skip
    model = transformers.BertModel(config).eval()
    model.save_pretrained(tmp_path / "bert", safe_serialization=True)
    attention = model.encoder.layer[1].attention
    x = _x()
    with torch.no_grad():
        xt = torch.tensor(x)
        s = attention.self
        z = _heads_sdpa(s.query(xt), s.key(xt), s.value(xt), 2, causal=False)
        expected = attention.output.dense(z).numpy()
    weights = tmp_path / "bert" / "model.safetensors"
    doc, _ = _run_json(run, _emb(tmp_path, x), "--weights", weights, "--heads", "2",
                       "--weights-prefix", "encoder.layer.1.attention.")  # fmt: skip
    np.testing.assert_allclose(np.array(doc["steps"]["context"]), expected, **TOL)
    assert "encoder.layer.1.attention.output.LayerNorm.weight" in doc["params"]["unused_keys"]


def test_outer_projection_around_an_attention_module_is_reported(run, tmp_path):
    torch.manual_seed(4)
    mha = torch.nn.MultiheadAttention(8, 2, batch_first=True)
    proj = torch.nn.Linear(8, 8)
    sd = {f"multihead_attn.{k}": v for k, v in mha.state_dict().items()}
    sd |= {f"proj.{k}": v for k, v in proj.state_dict().items()}
    path = tmp_path / "pytorch_model.bin"  # .bin: torch's zip format
    torch.save(sd, path)
    x = _x()
    doc, err = _run_json(run, _emb(tmp_path, x), "--weights", path, "--heads", "2")
    with torch.no_grad():
        expected = mha(*(torch.tensor(x)[None],) * 3)[0][0].numpy()
    np.testing.assert_allclose(np.array(doc["steps"]["context"]), expected, **TOL)
    assert doc["params"]["unused_keys"] == ["proj.bias", "proj.weight"]
    assert doc["params"]["weights_prefix"] == "multihead_attn."
    assert "tensors not used: proj.bias, proj.weight" in err


def test_sharded_folder_reads_only_the_shards_it_needs(run, tmp_path):
    model = _gpt2(3, seed=5)
    folder = tmp_path / "sharded"
    model.save_pretrained(folder, safe_serialization=True, max_shard_size="2KB")
    index = json.loads((folder / "model.safetensors.index.json").read_text())["weight_map"]
    needed = {f for k, f in index.items() if k.startswith("h.2.attn.")}
    others = set(index.values()) - needed
    assert others, "the test needs shards without layer 2's attention"
    for shard in others:
        (folder / shard).write_bytes(b"not a safetensors file")  # never read
    x = _x()
    expected = _gpt2_context(model.h[2].attn, x)
    doc, _ = _run_json(run, _emb(tmp_path, x), "--weights", folder, "--heads", "2", "--causal",
                       "--weights-prefix", "h.2.attn.")  # fmt: skip
    np.testing.assert_allclose(np.array(doc["steps"]["context"]), expected, **TOL)


@pytest.mark.parametrize(
    ("sd", "message"),
    [
        ({"W_query.weight": torch.ones(3, 3), "bias_q": torch.ones(3)}, "bias_q are bare bias"),
        ({"c_attn.weight": torch.ones(5, 3)}, "c_attn.weight has shape (5, 3); a fused"),
    ],
)
def test_refusals_use_the_files_own_names(run, tmp_path, sd, message):
    path = tmp_path / "w.pt"
    torch.save(sd, path)
    result = run("compute", "sample:journey", "--weights", path, "--heads", "1")
    assert result.exit_code == 2 and message in result.stderr, result.stderr
    assert "add_bias_kv" not in result.stderr


def test_missing_tensors_are_named_as_the_file_names_them(run, tmp_path):
    sd = {"model.layers.0.self_attn.q_proj.weight": torch.ones(4, 3),
          "model.layers.0.self_attn.v_proj.weight": torch.ones(4, 3)}  # fmt: skip
    path = tmp_path / "w.pt"
    torch.save(sd, path)
    result = run("compute", "sample:journey", "--weights", path, "--mode", "linear")
    assert result.exit_code == 2
    assert "'model.layers.0.self_attn.k_proj.weight'" in result.stderr
    assert "W_key" not in result.stderr


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        ("shard-path", "not a shard file beside it"),
        ("shard-type", "not a shard file beside it"),
        ("deep", "not readable JSON"),
        ("heads-zero", "num_attention_heads = 0 is not a whole number"),
        ("heads-bool", "num_attention_heads = True is not a whole number"),
    ],
)
def test_malformed_folders_are_one_line_exit_2(run, tmp_path, damage, message):
    from safetensors.torch import save_file

    folder = tmp_path / "m"
    folder.mkdir()
    sd = {f"a.{r}_proj.weight": torch.ones(4, 4) for r in "qkv"} | {
        "a.o_proj.weight": torch.ones(4, 4)
    }
    save_file(sd, folder / "model-1.safetensors")
    weight_map = dict.fromkeys(sd, "model-1.safetensors")
    if damage == "shard-path":
        weight_map["a.q_proj.weight"] = "../model-1.safetensors"
    if damage == "shard-type":
        weight_map["a.q_proj.weight"] = 3
    index = json.dumps({"weight_map": weight_map})
    if damage == "deep":
        index = "[" * 100_000 + "]" * 100_000
    (folder / "model.safetensors.index.json").write_text(index)
    if damage.startswith("heads"):
        heads = 0 if damage == "heads-zero" else True
        (folder / "config.json").write_text(json.dumps({"num_attention_heads": heads}))
    x = tmp_path / "x.npy"
    np.save(x, _x(3, 4))
    result = run("compute", x, "--weights", folder, "--heads", "1")
    assert result.exit_code == 2 and message in result.stderr, result.stderr
    assert result.stderr.count("\n") == 1


@pytest.mark.parametrize("shape", [(7, 2), (10, 3)])
def test_fused_matrices_that_do_not_split_in_three(run, tmp_path, shape):
    path = tmp_path / "w.pt"
    torch.save({"c_attn.weight": torch.ones(*shape)}, path)
    result = run("compute", "sample:journey", "--weights", path, "--heads", "1")
    assert result.exit_code == 2 and "a fused query/key/value matrix" in result.stderr
