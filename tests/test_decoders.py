"""attn model on the Llama-style decoders against transformers' eager implementation.

Each test builds a small random model of the family (norm weights and biases perturbed so that
RMSNorm, QK-norm and q/k/v biases all matter), saves it as its users do, with a word-level
tokenizer that adds a BOS token, and compares every hidden state and every head of every layer.
"""

import json

import numpy as np
import pytest

from attncli.core import Parameters, Projection, compute
from attncli.model import load_model

torch = pytest.importorskip("torch", reason="the reference models run in torch")
transformers = pytest.importorskip("transformers", reason="transformers is the reference")
tokenizers = pytest.importorskip("tokenizers", reason="model folders carry a tokenizer.json")

WORDS = ["the", "cat", "sat", "on", "mat", "because", "it", "was", "warm", "money", "bank",
         "grows", "river", "flows"]  # fmt: skip
TEXT = "the cat sat on the mat because it was warm river flows"
TOL = {"atol": 1e-5, "rtol": 1e-4}
SOFTCAP = 1.0  # small enough that capping moves every layer's weights well beyond TOL
LLAMA3 = {
    "rope_type": "llama3", "rope_theta": 500000.0, "factor": 8.0, "low_freq_factor": 1.0,
    "high_freq_factor": 4.0, "original_max_position_embeddings": 8,
}  # fmt: skip
FAMILIES = {
    "llama": ("Llama", {}),
    "llama3": ("Llama", {"rope_parameters": LLAMA3, "attention_bias": True}),
    "mistral": ("Mistral", {"sliding_window": 3}),
    "qwen2": ("Qwen2", {}),
    "qwen2-sliding": (
        "Qwen2",
        {"use_sliding_window": True, "sliding_window": 4, "max_window_layers": 1},
    ),
    "qwen3": ("Qwen3", {"head_dim": 24}),  # heads·head_dim (96) wider than hidden_size (64)
    "gemma3": ("Gemma3Text", {
        "head_dim": 16, "query_pre_attn_scalar": 24, "sliding_window": 3,
        "layer_types": ["sliding_attention", "full_attention"],
        "rope_parameters": {
            "sliding_attention": {"rope_type": "default", "rope_theta": 10000.0},
            "full_attention": {"rope_type": "linear", "factor": 4.0, "rope_theta": 1e6},
        },
    }),
    "gemma2": ("Gemma2", {
        "head_dim": 16, "query_pre_attn_scalar": 24, "sliding_window": 3,
        "attn_logit_softcapping": SOFTCAP, "layer_types": ["sliding_attention", "full_attention"],
        "initializer_range": 0.1,  # scores of order 1, where the cap bites
    }),
    "olmo2": ("Olmo2", {"attention_bias": True}),
}  # fmt: skip


def _tokenizer(folder) -> None:
    from tokenizers import Tokenizer, models, pre_tokenizers, processors

    vocab = {"<unk>": 0, "<s>": 1, **{w: i + 2 for i, w in enumerate(WORDS)}}
    tok = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    tok.post_processor = processors.TemplateProcessing(single="<s> $A", special_tokens=[("<s>", 1)])
    tok.save(str(folder / "tokenizer.json"))


def build(folder, family: str, causal_lm: bool = False, **save):
    """A random 2-layer model of ``family`` (4 query heads, 2 key/value heads) in ``folder``."""
    prefix, options = FAMILIES[family]
    torch.manual_seed(0)
    config = getattr(transformers, f"{prefix}Config")(
        vocab_size=32, hidden_size=64, num_attention_heads=4, num_key_value_heads=2,
        num_hidden_layers=2, intermediate_size=96, max_position_embeddings=64, **options,
    )  # fmt: skip
    cls = f"{prefix}ForCausalLM" if causal_lm else f"{prefix}Model"
    model = getattr(transformers, cls)(config).eval()
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "norm" in name or name.endswith("bias"):
                p.add_(torch.randn_like(p) * 0.3)
    model.save_pretrained(folder, **save)
    _tokenizer(folder)
    return folder


@pytest.fixture(scope="module", params=list(FAMILIES))
def family_dir(request, tmp_path_factory):
    return request.param, build(tmp_path_factory.mktemp(request.param), request.param)


def _reference(folder, ids):
    model = transformers.AutoModel.from_pretrained(folder, attn_implementation="eager").eval()
    with torch.no_grad():
        out = model(torch.tensor(ids)[None], output_attentions=True, output_hidden_states=True)
    return [h[0].numpy() for h in out.hidden_states], [a[0].numpy() for a in out.attentions]


def _ids(model):
    enc = model.encode(TEXT)
    return enc.ids, enc.tokens


def test_every_head_of_every_layer_matches_transformers_eager(family_dir):
    family, folder = family_dir
    model = load_model(folder)
    enc = model.encode(TEXT)
    assert enc.tokens[:2] == ("<s>", "the") and enc.special[0]  # the BOS is kept
    hidden, attentions = _reference(folder, enc.ids)
    stack = model.forward(enc.ids, enc.tokens, engine="numpy")
    assert len(stack) == 2
    for i, (h, result) in enumerate(stack):
        np.testing.assert_allclose(h, hidden[i], **TOL, err_msg=f"{family} hidden {i}")
        np.testing.assert_allclose(result.weights, attentions[i], **TOL, err_msg=f"{family} {i}")
        assert result.config.causal and result.config.kv_heads == 2 and result.config.rope
        for head in range(4):  # the per-head view: the head's own slice, its kv head's keys
            one = model.head(result.steps["inputs"], enc.tokens, i, head, engine="numpy")
            np.testing.assert_allclose(one.weights, attentions[i][head], **TOL)


def test_the_variants_are_really_exercised(family_dir):
    family, folder = family_dir
    model = load_model(folder)
    if family == "llama3":  # scaled frequencies differ from rope_theta's
        d = model.head_dim
        plain = 1.0 / 500000.0 ** (np.arange(0, d, 2) / d)
        assert not np.allclose(model.ropes[0][2], plain)
    if family == "gemma3":  # local and global layers rotate differently; scores scaled by 1/√24
        assert model.ropes[0][:2] == (1e4, "default") and model.ropes[1][:2] == (1e6, "linear")
        assert model.forward(*_ids(model), upto=0)[0][1].config.spec().scale == pytest.approx(
            24**-0.5
        )
    expected = {"mistral": (3, 3), "qwen2-sliding": (None, 4), "gemma3": (3, None),
                "gemma2": (3, None)}.get(family, (None, None))  # fmt: skip
    assert model.windows == expected
    p = model.attention_parameters(0)
    assert (p.q_norm is not None) == (family in ("qwen3", "gemma3", "olmo2"))
    assert (p.query.bias is not None) == (family in ("qwen2", "qwen2-sliding", "llama3", "olmo2"))
    assert model.softcap == (SOFTCAP if family == "gemma2" else None)
    if family == "olmo2":  # one norm over all 4 query heads' and both key heads' numbers
        assert p.q_norm.shape == (4 * 16,) and p.k_norm.shape == (2 * 16,)
        assert model.forward(*_ids(model), upto=0)[0][1].config.qk_norm_scope == "all"


def test_gemma2_soft_capping_changes_every_layers_weights(tmp_path):
    """Without the cap the weights move far beyond the tolerance the model matches within, so
    the whole-model test would fail if capping were skipped; the capped scores stay in (−C, C)."""
    folder = build(tmp_path / "m", "gemma2")
    model = load_model(folder)
    ids, tokens = _ids(model)
    _, attentions = _reference(folder, ids)
    for i, (_, result) in enumerate(model.forward(ids, tokens, engine="numpy")):
        assert "capped_scores" in result.steps and result.config.softcap == SOFTCAP
        scaled, capped = result.steps["scaled_scores"], result.steps["capped_scores"]
        assert np.abs(scaled).max() > 1.5 * SOFTCAP and np.abs(capped).max() < SOFTCAP
        np.testing.assert_allclose(capped, np.tanh(scaled / SOFTCAP) * SOFTCAP, **TOL)
        p = model.attention_parameters(i)
        options = model._options(i, p) | {"softcap": None}
        uncapped = compute(result.steps["inputs"], tokens, mode="gqa", heads=4, kv_heads=2,
                           **options)  # fmt: skip
        assert np.abs(uncapped.weights - attentions[i]).max() > 100 * TOL["atol"]
        np.testing.assert_allclose(result.weights, attentions[i], **TOL)


def test_olmo2_head_view_is_its_slice_of_the_whole_row_norm(tmp_path):
    """QK-norm over all heads: one head's columns alone give other numbers, so the head view is
    the layer's own computation, sliced, and matches transformers' head."""
    folder = build(tmp_path / "m", "olmo2")
    model = load_model(folder)
    ids, tokens = _ids(model)
    _, attentions = _reference(folder, ids)
    layer = model.forward(ids, tokens, upto=1, engine="numpy")[1][1]
    one = model.head(layer.steps["inputs"], tokens, 1, 3, engine="numpy")
    np.testing.assert_allclose(one.weights, attentions[1][3], **TOL)
    np.testing.assert_array_equal(one.steps["queries_norm"], layer.steps["queries_norm"][:, 48:])
    np.testing.assert_array_equal(one.steps["keys_rope"], layer.steps["keys_rope"][:, 16:])
    np.testing.assert_array_equal(one.context, layer.steps["head_context"][:, 48:])
    assert one.config.heads == 1 and one.config.d_out == 16 and "slice" in one.notes[-1]
    # a per-head norm of head 3's own columns is what the slice must not be
    p = model.attention_parameters(1)
    own = compute(layer.steps["inputs"], tokens, mode="linear", causal=True, rope=True,
                  qk_norm=True, parameters=Parameters(
                      *(Projection(r.weight[:, c], r.bias[c]) for r, c in
                        ((p.query, slice(48, 64)), (p.key, slice(16, 32)),
                         (p.value, slice(16, 32)))),
                      q_norm=p.q_norm[48:], k_norm=p.k_norm[16:]))  # fmt: skip
    assert np.abs(own.weights - attentions[1][3]).max() > 100 * TOL["atol"]


def test_cli_names_family_window_positions_and_kv_head(run, tmp_path):
    folder = build(tmp_path / "m", "mistral")
    doc = run("model", TEXT, "--model-dir", folder, "--layer", "1", "--head", "3", "-f", "json")
    assert doc.exit_code == 0, doc.stderr
    info = json.loads(doc.stdout)["params"]["model"]
    assert info == {"family": "mistral", "layer": 1, "head": 3, "kv_head": 1,
                    "window": "sliding 3", "positions": "0–12 (RoPE θ 10000)"}  # fmt: skip
    _, attentions = _reference(folder, load_model(folder).encode(TEXT).ids)
    weights = np.array(json.loads(doc.stdout)["steps"]["weights"], dtype=float)
    np.testing.assert_allclose(weights, attentions[1][3], **TOL)
    table = run("model", TEXT, "--model-dir", folder, "--layer", "0", "--head", "2")
    assert table.exit_code == 0, table.stderr
    for part in ("family mistral", "key/value head 1", "sliding 3 attention", "positions 0–12"):
        assert part in table.stdout
    layer = run("model", TEXT, "--model-dir", folder, "--layer", "0", "-f", "json")
    assert json.loads(layer.stdout)["params"]["model"]["kv_head_of"] == [0, 0, 1, 1]
    heatmaps = run("model", TEXT, "--model-dir", folder, "--layer", "0")
    assert "heads 0–1 read key/value head 0, heads 2–3 read key/value head 1" in heatmaps.stdout
    summary = run("model", "the cat", "--model-dir", folder, "--layer", "all", "--head", "all",
                  "-f", "json")  # fmt: skip
    rows = json.loads(summary.stdout)["heads"]
    assert [r["kv_head"] for r in rows[:4]] == [0, 0, 1, 1] and rows[0]["window"] == "sliding 3"


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"rope_parameters": {"rope_type": "yarn", "rope_theta": 1e4, "factor": 2.0}},
         "rope type = 'yarn' is not supported for llama"),
        ({"hidden_act": "gelu"}, "hidden_act = 'gelu' is not supported for llama"),
        ({"mlp_bias": True}, "mlp_bias = True is not supported"),
        ({"model_type": "gemma3n"}, "unsupported architecture 'gemma3n'"),
        ({"attn_logit_softcapping": 50.0}, "attn_logit_softcapping = 50.0 is not supported"),
        ({"clip_qkv": 8}, "clip_qkv = 8 is not supported for llama"),
        ({"num_key_value_heads": 3}, "num_key_value_heads 3 does not divide"),
        ({"head_dim": 8}, "q_proj has 64 outputs, not 4 heads × head_dim 8"),
        ({"head_dim": 0}, "head_dim = 0 is not supported"),
        ({"rms_norm_eps": -1}, "rms_norm_eps = -1.0 is not supported"),
    ],
)  # fmt: skip
def test_unsupported_options_are_refused_by_name(run, tmp_path, change, message):
    assert_refused(run, build(tmp_path / "m", "llama"), change, message)


def assert_refused(run, folder, change: dict, message: str) -> None:
    """attn model on ``folder`` with ``change`` made to its config.json: one line, exit 2."""
    config = json.loads((folder / "config.json").read_text())
    (folder / "config.json").write_text(json.dumps({**config, **change}))
    result = run("model", "the cat", "--model-dir", folder)
    assert result.exit_code == 2 and message in result.stderr, result.stderr
    assert result.stderr.count("\n") == 1


def test_sharded_folder_reads_only_the_shards_the_layers_need(tmp_path):
    folder = build(tmp_path / "m", "llama", causal_lm=True, max_shard_size="40KB")
    index = json.loads((folder / "model.safetensors.index.json").read_text())["weight_map"]
    shards = sorted(set(index.values()))
    assert len(shards) > 3 and not (folder / "model.safetensors").exists()
    model = load_model(folder)
    enc = model.encode(TEXT)
    _, attentions = _reference(folder, enc.ids)
    result = model.forward(enc.ids, enc.tokens, upto=0, engine="numpy")[0][1]
    np.testing.assert_allclose(result.weights, attentions[0], **TOL)
    # layer 0's attention needs the embeddings, its input norm and its projections, not its MLP
    used = ("model.embed", "model.layers.0.input_layernorm", "model.layers.0.self_attn")
    needed = {index[k] for k in index if k.startswith(used)}
    assert model.t._tensors.files_read == needed and needed != set(shards)
    stack = model.forward(enc.ids, enc.tokens, engine="numpy")
    np.testing.assert_allclose(stack[1][1].weights, attentions[1], **TOL)


def test_bfloat16_shards_read_as_float32(tmp_path):
    from attncli.io.shards import SafetensorsFolder

    folder = build(tmp_path / "m", "qwen3", max_shard_size="40KB")
    reference = transformers.AutoModel.from_pretrained(folder).state_dict()
    model = transformers.AutoModel.from_pretrained(folder).to(torch.bfloat16)
    model.save_pretrained(tmp_path / "bf16", max_shard_size="20KB")
    tensors = SafetensorsFolder(tmp_path / "bf16")
    name = "layers.1.self_attn.q_proj.weight"
    got = tensors[name]
    assert got.dtype == np.float32 and tensors.files_read != set()
    np.testing.assert_array_equal(got, reference[name].to(torch.bfloat16).float().numpy())


@pytest.mark.parametrize(("family", "says"), [("qwen3", "learned norm weights"),
                                              ("llama3", "scaled, ="),
                                              ("gemma3", "the model scales by 1/√24"),
                                              ("gemma2", f"C = {SOFTCAP:g}: tanh(x/C)·C"),
                                              ("olmo2", "of its whole row")])  # fmt: skip
def test_explain_shows_the_models_qk_norm_and_rope(run, tmp_path, family, says):
    folder = build(tmp_path / "m", family)
    trace = run("model", TEXT, "--model-dir", folder, "--layer", "1", "--head", "2", "--query",
                "mat", "--explain")  # fmt: skip
    assert trace.exit_code == 0, trace.stderr
    assert "Rotary position embedding" in trace.stdout and says in trace.stdout
    assert ("QK-norm" in trace.stdout) is (family in ("qwen3", "gemma3", "olmo2"))
    if "QK-norm" in trace.stdout:  # the model's own head numbers, not the one-head view's 0
        assert "head 2: RMS(q(mat))" in trace.stdout and "key/value head 1: RMS(k(mat))" in (
            trace.stdout
        )
    assert ("Soft-capping" in trace.stdout) is (family == "gemma2")
    says_slice = "attn: note: olmo2 normalises q and k over all heads together"
    assert trace.stderr.count(says_slice) == (family == "olmo2")  # how the head was computed


def test_batch_lines_carry_their_notes_and_stderr_says_each_once(run, tmp_path):
    folder = build(tmp_path / "m", "olmo2")
    source = tmp_path / "sentences.txt"
    source.write_text("the cat sat\nriver flows\nthe mat\n")
    done = run("model", "--batch", source, "--model-dir", folder, "--layer", "1", "--head", "2")
    assert done.exit_code == 0, done.stderr
    records = [json.loads(line) for line in done.stdout.splitlines()]
    assert len(records) == 3
    note = "olmo2 normalises q and k over all heads together: head 2 is its slice of the whole "
    assert all(r["notes"] == [note + "layer's computation"] for r in records)
    assert done.stderr.count("attn: note: olmo2 normalises") == 1
    plain = run("model", "--batch", source, "--model-dir", build(tmp_path / "q", "qwen3"),
                "--layer", "1", "--head", "2")  # fmt: skip
    assert all("notes" not in json.loads(line) for line in plain.stdout.splitlines())


@pytest.mark.parametrize(
    ("family", "change", "message"),
    [
        ("gemma2", {"attn_logit_softcapping": -1}, "attn_logit_softcapping = -1.0 is not"),
        # transformers' Gemma 3 keeps the setting but never applies it: refused, not guessed
        ("gemma3", {"attn_logit_softcapping": 50.0}, "attn_logit_softcapping = 50.0 is not "
         "supported for gemma3_text"),
        ("gemma2", {"use_bidirectional_attention": True}, "use_bidirectional_attention = True"),
        ("olmo2", {"sliding_window": 4}, "sliding_window = 4 is not supported for olmo2"),
        ("olmo2", {"clip_qkv": 8.0}, "clip_qkv = 8.0 is not supported for olmo2"),
        ("olmo2", {"rope_parameters": {"rope_type": "dynamic", "rope_theta": 1e4, "factor": 2}},
         "rope type = 'dynamic' is not supported for olmo2"),
    ],
)  # fmt: skip
def test_gemma_and_olmo2_options_not_computed_are_refused(run, tmp_path, family, change, message):
    assert_refused(run, build(tmp_path / "m", family), change, message)


def test_final_logit_softcapping_is_accepted_it_only_caps_lm_head_logits(tmp_path):
    """final_logit_softcapping touches the LM head's logits, which attn model never computes:
    the hidden states and attentions are transformers' own with it set."""
    folder = build(tmp_path / "m", "gemma2")
    config = json.loads((folder / "config.json").read_text())
    assert config["final_logit_softcapping"] == 30.0  # Gemma2Config's default, saved as is
    model = load_model(folder)
    ids, tokens = _ids(model)
    hidden, attentions = _reference(folder, ids)
    stack = model.forward(ids, tokens, engine="numpy")
    np.testing.assert_allclose(stack[1][0], hidden[1], **TOL)
    np.testing.assert_allclose(stack[1][1].weights, attentions[1], **TOL)


def test_asking_whether_a_tensor_exists_reads_nothing(tmp_path):
    from attncli.io.shards import SafetensorsFolder

    folder = build(tmp_path / "m", "llama", max_shard_size="40KB")
    tensors = SafetensorsFolder(folder)
    assert "layers.1.mlp.up_proj.weight" in tensors and "nothing" not in tensors
    assert tensors.files_read == set() and len(tensors) == len(list(tensors))
