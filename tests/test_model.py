"""attn model against the reference implementation: transformers' BertModel and GPT2Model.

The tests build small random models themselves (save_pretrained, safetensors) with a word-level
tokenizer, plus the packaged all-MiniLM-L6-v2 when it is installed.
"""

import json

import numpy as np
import pytest

from attncli.model import load_model

torch = pytest.importorskip("torch", reason="the reference models run in torch")
transformers = pytest.importorskip("transformers", reason="transformers is the reference")
tokenizers = pytest.importorskip("tokenizers", reason="model folders carry a tokenizer.json")

WORDS = [
    "the",
    "cat",
    "sat",
    "on",
    "mat",
    "because",
    "it",
    "was",
    "warm",
    "money",
    "bank",
    "grows",
    "river",
    "flows",
]
TOL = {"atol": 1e-5, "rtol": 1e-4}


def _tokenizer(folder, specials: bool) -> None:
    from tokenizers import Tokenizer, models, pre_tokenizers, processors

    vocab = {"[UNK]": 0, "[CLS]": 1, "[SEP]": 2, **{w: i + 3 for i, w in enumerate(WORDS)}}
    tok = Tokenizer(models.WordLevel(vocab, unk_token="[UNK]"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    if specials:
        tok.post_processor = processors.TemplateProcessing(
            single="[CLS] $A [SEP]", special_tokens=[("[CLS]", 1), ("[SEP]", 2)]
        )
    tok.save(str(folder / "tokenizer.json"))


def _tiny_bert(folder):
    """A random 3-layer, 4-head BERT saved as its users do, with a word-level tokenizer."""
    torch.manual_seed(0)
    config = transformers.BertConfig(
        vocab_size=32, hidden_size=16, num_hidden_layers=3, num_attention_heads=4,
        intermediate_size=32, max_position_embeddings=40, attn_implementation="eager",
    )  # fmt: skip
    transformers.BertModel(config).eval().save_pretrained(folder, safe_serialization=True)
    _tokenizer(folder, specials=True)
    return folder


@pytest.fixture(scope="module")
def bert_dir(tmp_path_factory):
    return _tiny_bert(tmp_path_factory.mktemp("bert"))


def _tiny_gpt2(folder, layers: int, seed: int):
    """A small random GPT-2 (causal, 4 heads of 4) that transformers, the reference, can run."""
    torch.manual_seed(seed)
    config = transformers.GPT2Config(
        vocab_size=32, n_embd=16, n_layer=layers, n_head=4, n_positions=40,
        attn_implementation="eager",
    )  # fmt: skip
    transformers.GPT2Model(config).eval().save_pretrained(folder, safe_serialization=True)
    _tokenizer(folder, specials=False)
    return folder


@pytest.fixture(scope="module")
def gpt2_dir(tmp_path_factory):
    return _tiny_gpt2(tmp_path_factory.mktemp("gpt2"), layers=3, seed=0)


def _reference(folder, ids, **load):
    model = transformers.AutoModel.from_pretrained(
        folder, attn_implementation="eager", **load
    ).eval()
    with torch.no_grad():
        out = model(torch.tensor(ids)[None], output_attentions=True, output_hidden_states=True)
    return [h[0].numpy() for h in out.hidden_states], [a[0].numpy() for a in out.attentions]


@pytest.mark.parametrize("arch", ["bert", "gpt2"])
def test_hidden_states_and_every_heads_weights_match_transformers(arch, bert_dir, gpt2_dir):
    folder = bert_dir if arch == "bert" else gpt2_dir
    model = load_model(folder)
    enc = model.encode("the cat sat on the mat because it was warm")
    hidden, attentions = _reference(folder, enc.ids)
    stack = model.forward(enc.ids, enc.tokens, engine="numpy")
    assert len(stack) == model.n_layers == 3
    for i, (h, result) in enumerate(stack):
        np.testing.assert_allclose(h, hidden[i], **TOL, err_msg=f"hidden {i}")
        np.testing.assert_allclose(result.weights, attentions[i], **TOL, err_msg=f"attention {i}")
    assert stack[0][1].config.causal is (arch == "gpt2")


def test_one_head_as_a_single_head_result(bert_dir):
    model = load_model(bert_dir)
    enc = model.encode("money bank grows")
    _, attentions = _reference(bert_dir, enc.ids)
    layer_in = model.forward(enc.ids, enc.tokens, upto=2)[2][1].steps["inputs"]
    head = model.head(layer_in, enc.tokens, 2, 3)
    np.testing.assert_allclose(head.weights, attentions[2][3], **TOL)
    assert head.weights.shape == (5, 5) and enc.tokens[0] == "[CLS]"


def test_cli_head_json_explain_and_embeddings(run, bert_dir, tmp_path):
    text = "the cat sat on the mat"
    model = load_model(bert_dir)
    _, attentions = _reference(bert_dir, model.encode(text).ids)
    result = run(
        "model", text, "--model-dir", bert_dir, "--layer", "1", "--head", "2", "--format", "json"
    )
    assert result.exit_code == 0, result.stderr
    doc = json.loads(result.stdout)
    np.testing.assert_allclose(np.array(doc["steps"]["weights"]), attentions[1][2], **TOL)
    assert doc["tokens"][0] == "[CLS]" and "layer 1 head 2" in doc["params"]["weights"]
    trace = run(
        "model",
        text,
        "--model-dir",
        bert_dir,
        "--layer",
        "1",
        "--head",
        "2",
        "--query",
        "cat",
        "--explain",
    )
    assert trace.exit_code == 0 and "query “cat”" in trace.stdout
    emb = tmp_path / "hidden.json"
    assert (
        run(
            "model",
            text,
            "--model-dir",
            bert_dir,
            "--embeddings",
            "--layer",
            "2",
            "--format",
            "json",
            "-o",
            emb,
        ).exit_code
        == 0
    )
    fed = run("compute", emb, "--format", "json", "--show", "inputs")
    hidden, _ = _reference(bert_dir, model.encode(text).ids)
    np.testing.assert_allclose(
        np.array(json.loads(fed.stdout)["steps"]["inputs"]), hidden[2], **TOL
    )


def test_cli_whole_stack_summary(run, gpt2_dir):
    result = run("model", "the cat sat", "--model-dir", gpt2_dir, "--layer", "all", "--head", "all",
                 "--query", "sat", "--format", "json")  # fmt: skip
    assert result.exit_code == 0, result.stderr
    heads = json.loads(result.stdout)["heads"]
    assert len(heads) == 3 * 4 and {"mean_entropy", "most_attended", "query_top"} <= set(heads[0])
    table = run("model", "the cat sat", "--model-dir", gpt2_dir, "--layer", "all", "--head", "all")
    assert "attention per layer and head" in table.stdout


@pytest.mark.parametrize(
    ("config", "message"),
    [({"model_type": "t5", "architectures": ["T5Model"]}, "unsupported architecture 't5'"),
     ({"model_type": "bert", "position_embedding_type": "relative_key"},
      "position_embedding_type = 'relative_key' is not supported"),
     (None, "not a model folder")],
)  # fmt: skip
def test_model_folder_errors(run, tmp_path, config, message):
    if config is not None:
        (tmp_path / "config.json").write_text(json.dumps(config))
    result = run("model", "hello", "--model-dir", tmp_path)
    assert result.exit_code == 2 and message in result.stderr and result.stderr.count("\n") == 1


def test_layer_and_head_out_of_range(run, bert_dir):
    assert "layers 0–2" in run("model", "the cat", "--model-dir", bert_dir, "--layer", "7").stderr
    assert "heads 0–3" in run("model", "the cat", "--model-dir", bert_dir, "--head", "9").stderr


def test_packaged_minilm_matches_transformers():
    try:
        model = load_model()
    except Exception as e:
        pytest.skip(f"the packaged all-MiniLM-L6-v2 is not installed ({e})")
    enc = model.encode("The cat sat on the mat because it was warm")
    assert enc.tokens[:3] == ("[CLS]", "the", "cat") and len(enc.tokens) == 12
    hidden, attentions = _reference(model.folder, enc.ids)
    for i, (h, result) in enumerate(model.forward(enc.ids, enc.tokens, engine="numpy")):
        np.testing.assert_allclose(h, hidden[i], atol=5e-5, rtol=1e-4)
        np.testing.assert_allclose(result.weights, attentions[i], **TOL)


def test_merge_words_means_query_pieces_and_sums_key_pieces():
    from attncli import compute
    from attncli.model.words import merge_words

    x = np.random.default_rng(0).normal(size=(5, 4))
    r = compute(x, ("[CLS]", "un", "##bel", "works", "[SEP]"), mode="multi-head", d_out=4, heads=2)
    merged = merge_words(r, (0, 1, 1, 2, 3), ("[CLS]", "unbel", "works", "[SEP]"))
    w = r.weights
    assert merged.weights.shape == (2, 4, 4) and merged.tokens[1] == "unbel"
    expected = (w[:, 1, 1] + w[:, 1, 2] + w[:, 2, 1] + w[:, 2, 2]) / 2
    np.testing.assert_allclose(merged.weights[:, 1, 1], expected, rtol=1e-6)
    np.testing.assert_allclose(merged.weights[:, 0, 1], w[:, 0, 1] + w[:, 0, 2], rtol=1e-6)
    np.testing.assert_allclose(merged.weights.sum(-1), 1, atol=1e-6)
    np.testing.assert_allclose(merged.steps["inputs"][1], x[1:3].mean(axis=0), rtol=1e-6)


def test_packaged_minilm_merges_sub_words(run):
    try:
        load_model()
    except Exception as e:
        pytest.skip(f"the packaged all-MiniLM-L6-v2 is not installed ({e})")
    result = run("model", "Tokenization works", "--layer", "1", "--merge-words", "--format", "json")
    assert result.exit_code == 0, result.stderr
    doc = json.loads(result.stdout)
    assert doc["tokens"] == ["[CLS]", "Tokenization", "works", "[SEP]"]
    np.testing.assert_allclose(np.array(doc["steps"]["weights"]).sum(-1), 1, atol=1e-5)


def test_model_plot_shows_the_head_weights(run, bert_dir, tmp_path):
    image = tmp_path / "head.png"
    result = run("model", "the cat sat", "--model-dir", bert_dir, "--layer", "0", "--head", "1",
                 "--plot", image, "--show", "weights")  # fmt: skip
    assert result.exit_code == 0, result.stderr
    assert image.read_bytes().startswith(b"\x89PNG")


def test_model_reads_the_sentence_from_stdin(run, bert_dir):
    piped = run("model", "-", "--model-dir", bert_dir, "--format", "json", input="the cat sat\n")
    direct = run("model", "the cat sat", "--model-dir", bert_dir, "--format", "json")
    assert piped.exit_code == 0, piped.stderr
    assert json.loads(piped.stdout)["steps"] == json.loads(direct.stdout)["steps"]


def _gpt2_folder(folder, dtype=None, **options):
    torch.manual_seed(1)
    config = transformers.GPT2Config(
        vocab_size=32, n_embd=16, n_layer=2, n_head=4, n_positions=40,
        attn_implementation="eager", **options,
    )  # fmt: skip
    model = transformers.GPT2Model(config).eval()
    if dtype is not None:
        model = model.to(dtype)
    model.save_pretrained(folder, safe_serialization=True)
    _tokenizer(folder, specials=False)
    return folder


def test_gpt2_without_score_scaling_matches_transformers(tmp_path, run):
    folder = _gpt2_folder(tmp_path / "noscale", scale_attn_weights=False)
    model = load_model(folder)
    enc = model.encode("the cat sat on the mat")
    hidden, attentions = _reference(folder, enc.ids)
    stack = model.forward(enc.ids, enc.tokens)
    for i, (h, result) in enumerate(stack):
        np.testing.assert_allclose(h, hidden[i], **TOL)
        np.testing.assert_allclose(result.weights, attentions[i], **TOL)
    doc = json.loads(run("model", "the cat sat", "--model-dir", folder, "--head", "0",
                         "-f", "json").stdout)  # fmt: skip
    assert doc["params"]["scale"] is False
    assert "no scaling" in run("model", "the cat", "--model-dir", folder, "--head", "0").stdout


def test_float16_folders_compute_in_float32_like_transformers(tmp_path):
    folder = _gpt2_folder(tmp_path / "half", dtype=torch.float16)
    model = load_model(folder)
    enc = model.encode("the cat sat on the mat because it was warm")
    # transformers computing in float32 from the float16 weights
    hidden, attentions = _reference(folder, enc.ids, dtype=torch.float32)
    stack = model.forward(enc.ids, enc.tokens)
    for i, (h, result) in enumerate(stack):
        assert h.dtype == np.float32
        np.testing.assert_allclose(h, hidden[i], atol=1e-6, rtol=1e-5)
        np.testing.assert_allclose(result.weights, attentions[i], atol=1e-6, rtol=1e-5)
