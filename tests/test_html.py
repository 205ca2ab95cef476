"""--format html: one self-contained page per run, checked as data and in a real browser.

The browser tests open the pages in headless Chromium (Debian's ``chromium``, driven by
Playwright through ``executable_path``); without either they skip with the reason. Set
``ATTNCLI_SCREENSHOTS=docs/images`` to write the README's screenshots from these tests.
"""

from __future__ import annotations

import base64
import gzip
import io
import json
import os
import re
import shlex
import shutil
from pathlib import Path

import numpy as np
import pytest

from attncli.explain import build_trace
from tests.test_catalogue import _on_a_terminal

DATA = re.compile(r'<script type="application/json" id="attncli-data">(.*?)</script>', re.S)
EVIL = ("<img src=x onerror=alert(1)>", "</script><script>alert(2)</script>", "<!--", "a&amp;b")


def page_data(text: str) -> dict:
    return json.loads(DATA.search(text).group(1))


def without_html(doc: dict) -> dict:
    return {k: v for k, v in doc.items() if k != "html"}


@pytest.fixture(autouse=True)
def in_tmp(tmp_path, monkeypatch):
    """Pages are written with a relative -o, so the command they show is short."""
    monkeypatch.chdir(tmp_path)


def make_page(run, tmp_path: Path, *args: str, name: str = "page.html") -> Path:
    result = run(*args, "--format", "html", "-o", name)
    assert result.exit_code == 0, result.stderr
    return tmp_path / name


def evil_csv(tmp_path: Path) -> Path:
    rows = [[0.43, 0.15, 0.89], [0.55, 0.87, 0.66], [0.57, 0.85, 0.64], [0.22, 0.58, 0.33]]
    lines = [
        '"' + t.replace('"', '""') + '",' + ",".join(map(str, r))
        for t, r in zip(EVIL, rows, strict=True)
    ]
    path = tmp_path / "evil.csv"
    path.write_text("\n".join(lines) + "\n")
    return path


# ---- the page as data ------------------------------------------------------------------------

MH = ("sample:journey", "--mode", "multi-head", "--heads", "2", "--d-out", "4", "--causal")


def test_data_block_is_the_json_output(run, tmp_path):
    page = make_page(run, tmp_path, "compute", *MH).read_text()
    as_json = json.loads(run("compute", *MH, "--format", "json").stdout)
    doc = page_data(page)
    assert without_html(doc) == as_json
    assert doc["html"]["kind"] == "compute" and doc["html"]["steps"]["weights"]["columns"] == "keys"
    assert "<script src" not in page and "http" not in page.split("attncli-data")[0]


def test_explain_page_holds_the_trace_and_the_run(run, tmp_path):
    args = ("sample:journey", "--mode", "trainable", "--d-out", "2", "--query", "journey")
    doc = page_data(make_page(run, tmp_path, "explain", *args).read_text())
    assert without_html(doc) == json.loads(run("explain", *args, "--format", "json").stdout)
    compute_args = [a for a in args if a not in ("--query", "journey")]
    as_json = run("compute", *compute_args, "--format", "json").stdout
    assert doc["html"]["run"] == json.loads(as_json)


def test_hostile_tokens_cannot_leave_the_data_block(run, tmp_path):
    page = make_page(run, tmp_path, "compute", evil_csv(tmp_path)).read_text()
    assert page.count("</script>") == 2  # the data block and the script, nothing else
    assert "<!--" not in page and "<img" not in page
    assert page_data(page)["tokens"] == list(EVIL)


def test_command_on_the_page_remakes_the_page(run, tmp_path):
    page = make_page(run, tmp_path, "compute", *MH, "--no-scale", "--query", "2")
    command = page_data(page.read_text())["html"]["command"]
    words = shlex.split(command)
    assert words[:2] == ["attn", "compute"] and "--no-scale" in words and "--causal" in words
    again = tmp_path / "again.html"
    words[words.index("--output") + 1] = again.name
    assert run(*words[1:]).exit_code == 0
    remade = page_data(again.read_text())
    assert without_html(remade) == without_html(page_data(page.read_text()))
    assert remade["html"]["command"] == shlex.join(words)


def test_html_goes_to_a_pipe_but_not_to_a_terminal(run):
    piped = run("compute", "sample:journey", "--format", "html")
    assert piped.exit_code == 0 and piped.stdout.startswith("<!DOCTYPE html>")
    rc, err = _on_a_terminal("compute", "sample:journey", "--format", "html", stream="stdout")
    assert rc == 2 and "refusing to print it to a terminal (use -o FILE.html" in err
    assert err.count("\n") == 1


def test_html_output_is_written_atomically_and_never_over_the_input(run, tmp_path):
    result = run("compute", "sample:journey", "-f", "html", "-o", tmp_path / "no" / "x.html")
    assert result.exit_code == 2 and "does not exist" in result.stderr
    source = tmp_path / "emb.csv"
    source.write_text("a,1,2\nb,3,4\n")
    result = run("compute", source, "-f", "html", "-o", source)
    assert result.exit_code == 2 and "refusing to overwrite the input" in result.stderr
    assert source.read_text() == "a,1,2\nb,3,4\n"
    assert list(tmp_path.glob(".*.tmp")) == []


def test_page_assets_are_package_data():
    from importlib.resources import files

    folder = files("attncli.render.html")
    assert "use strict" in folder.joinpath("page.js").read_text()
    assert "font" in folder.joinpath("page.css").read_text()


def unpack(packed: dict) -> np.ndarray:
    raw = gzip.decompress(base64.b64decode(packed["data"]))
    ints = np.frombuffer(raw, dtype="<u2" if packed["bits"] == 16 else "u1")
    return ints.reshape(packed["shape"]) / (2 ** packed["bits"] - 1)


@pytest.fixture(scope="module")
def gpt2_dir(tmp_path_factory):
    """A small random GPT-2 (causal) that transformers, the reference, can run."""
    pytest.importorskip("tokenizers")
    pytest.importorskip("torch")
    pytest.importorskip("transformers")
    from tests.test_model import _tiny_gpt2

    return _tiny_gpt2(tmp_path_factory.mktemp("gpt2"), layers=2, seed=1)


SENTENCE = "the cat sat on the mat because it was warm"


def test_model_page_weights_equal_transformers(run, tmp_path, gpt2_dir):
    from attncli.model import load_model
    from tests.test_model import _reference

    args = ("model", SENTENCE, "--model-dir", gpt2_dir, "--layer", "all", "--head", "all")
    doc = page_data(make_page(run, tmp_path, *args).read_text())
    assert without_html(doc) == json.loads(run(*args, "--format", "json").stdout)
    ids = load_model(gpt2_dir).encode(SENTENCE).ids
    _, attentions = _reference(gpt2_dir, ids)
    weights = unpack(doc["html"]["weights"])
    assert weights.shape == (2, 4, 10, 10) and doc["html"]["causal"] is True
    np.testing.assert_allclose(weights, np.stack(attentions), atol=1 / 65535 + 1e-5)


# ---- in the browser --------------------------------------------------------------------------


def _chromium() -> str | None:
    return os.environ.get("ATTNCLI_CHROMIUM") or shutil.which("chromium")


@pytest.fixture(scope="module")
def browser():
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed")
    exe = _chromium()
    if exe is None:
        pytest.skip("no chromium on this machine (apt-get install chromium)")
    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=exe, args=["--no-sandbox"])
        yield b
        b.close()


class Page:
    """An opened page plus what went wrong in it (console errors, page errors, dialogs)."""

    def __init__(self, browser, path: Path, width: int = 1200) -> None:
        self.problems: list[str] = []
        self.p = browser.new_page(viewport={"width": width, "height": 900})
        self.p.on("console", lambda m: self.problems.append(m.text) if m.type == "error" else 0)
        self.p.on("pageerror", lambda e: self.problems.append(str(e)))
        self.p.on("dialog", lambda d: (self.problems.append("dialog " + d.message), d.dismiss()))
        self.p.goto(path.as_uri())
        self.p.wait_for_selector("body[data-ready='1']", timeout=20000)

    def view(self, name: str) -> None:
        self.p.click(f"nav button[data-view={name}]")

    def count(self, selector: str) -> int:
        return self.p.locator(selector).count()

    def hover_cell(self, panel: str, row: int, col: int, nth: int = 0) -> list[str]:
        """Hover cell (row, col) of the panel's heatmap; the tooltip's lines."""
        canvas = self.p.locator(f"{panel} canvas").nth(nth)
        canvas.scroll_into_view_if_needed()
        box = canvas.bounding_box()
        rows, cols, width, height, border = canvas.evaluate(
            "c => [c.height, c.width, c.clientWidth, c.clientHeight, c.clientLeft]"
        )
        size = width / cols
        assert height / rows == size
        x, y = box["x"] + border + (col + 0.5) * size, box["y"] + border + (row + 0.5) * size
        self.p.mouse.move(x, y)
        return self.p.locator("#tip").text_content().split("\n")

    def line_opacities(self) -> dict[tuple[int, int], float]:
        lines = self.p.locator("#head-svg line").evaluate_all(
            "ls => ls.map(l => [l.dataset.head, l.dataset.key, l.getAttribute('stroke-opacity')])"
        )
        return {(int(h), int(k)): float(o) for h, k, o in lines}

    def close(self) -> None:
        assert self.problems == []
        self.p.close()


def not_blank(png: bytes) -> None:
    from PIL import Image

    img = np.asarray(Image.open(io.BytesIO(png)).convert("RGB")).reshape(-1, 3)
    inked = (img < 235).any(axis=1).mean()
    assert len(np.unique(img, axis=0)) > 40 and inked > 0.02, (inked, len(np.unique(img, axis=0)))


def screenshot(page: Page, name: str, tmp_path: Path) -> None:
    folder = Path(os.environ.get("ATTNCLI_SCREENSHOTS", tmp_path))
    png = page.p.screenshot(path=str(folder / f"html_{name}.png"))
    not_blank(png)


def test_compute_page_panels_labels_and_masks(run, tmp_path, browser):
    path = make_page(run, tmp_path, "compute", *MH)
    data = page_data(path.read_text())
    page = Page(browser, path)
    assert "exact numbers" in page.p.locator("#legend").text_content()
    assert page.p.locator("#command").text_content() == data["html"]["command"]
    page.view("matrix")
    for step in ("scores", "scaled_scores", "masked_scores", "weights"):
        assert page.count(f"#view-matrix .panel[data-step={step}][data-layer='0']") == 2
        for head in (0, 1):
            panel = f"#view-matrix .panel[data-step={step}][data-head='{head}']"
            assert page.count(f"{panel} .row-labels [data-token-index]") == 6
            assert page.count(f"{panel} .col-labels [data-token-index]") == 6
    assert page.count("#view-matrix .panel") == len(data["steps"]) + 4  # 4 steps have 2 heads
    page.view("head")
    assert page.count("#head-svg text[data-token-index]") == 12
    page.p.hover("#head-svg text[data-side=query][data-token-index='3']")
    assert page.count("#head-svg text.key.masked") == 2  # "one" and "step" come after "with"
    page.p.check("#head-picker input[data-head='1']")
    lines = page.line_opacities()
    assert set(lines) == {(h, k) for h in (0, 1) for k in range(4)}
    for (h, k), opacity in lines.items():
        assert opacity == pytest.approx(data["steps"]["weights"][h][3][k], abs=5e-5)
    screenshot(page, "head_view_causal", tmp_path)
    page.close()


def test_selecting_a_token_changes_the_lines(run, tmp_path, browser):
    path = make_page(run, tmp_path, "compute", "sample:cat", "--mode", "linear", "--d-out", "4")
    weights = page_data(path.read_text())["steps"]["weights"]
    page = Page(browser, path)
    before = page.line_opacities()
    page.p.click("#head-svg text[data-side=query][data-token-index='6']")
    after = page.line_opacities()
    assert page.p.locator("#head-svg").get_attribute("data-query") == "6"
    assert before != after and len(after) == 10
    for (_, k), opacity in after.items():
        assert opacity == pytest.approx(weights[6][k], abs=5e-5)
    page.close()


def test_hovering_a_cell_shows_its_value_and_the_arithmetic_explain_prints(run, tmp_path, browser):
    from attncli import compute, load_embeddings

    args = ("sample:journey", "--mode", "trainable", "--d-out", "2", "--causal")
    path = make_page(run, tmp_path, "compute", *args)
    data = page_data(path.read_text())
    emb = load_embeddings("sample:journey")
    result = compute(emb.values, emb.tokens, mode="trainable", d_out=2, causal=True, seed=123)
    page = Page(browser, path)
    page.view("matrix")
    for query in (1, 3):
        trace = build_trace(result, query)
        explained = {s.key: s.lines for s in trace.sections}
        for step in ("scores", "scaled_scores", "weights", "context"):
            columns = 6 if step != "context" else 2
            for col in range(columns):
                tip = page.hover_cell(f".panel[data-step={step}]", query, col)
                value = data["steps"][step][query][col]
                assert tip[1] == f"value: {value}" or float(tip[1].split()[-1]) == value
                arithmetic = tip[2:]
                assert arithmetic, (step, query, col, tip)
                assert set(arithmetic) <= set(explained[step]), (arithmetic, explained[step])
    tip = page.hover_cell(".panel[data-step=masked_scores]", 1, 4)
    assert tip[1] == "value: -∞ (masked)"
    page.hover_cell(".panel[data-step=weights]", 3, 1)
    screenshot(page, "matrix_view", tmp_path)
    page.close()


def test_softmax_hover_names_the_runs_score_whichever_steps_are_shown(run, tmp_path, browser):
    """Scaled and soft-capped, the softmax reads ω'' as explain says, even on a page that
    shows only the capped scores and the weights."""
    from attncli import compute, load_embeddings

    args = ("sample:journey", "--mode", "trainable", "--d-out", "2", "--causal", "--softcap", "1")
    path = make_page(run, tmp_path, "compute", *args, "--show", "capped,weights")
    emb = load_embeddings("sample:journey")
    result = compute(emb.values, emb.tokens, mode="trainable", d_out=2, causal=True, softcap=1.0)
    explained = {s.key: s.lines for s in build_trace(result, 3).sections}
    page = Page(browser, path)
    page.view("matrix")
    for col in range(4):
        arithmetic = page.hover_cell(".panel[data-step=weights]", 3, col)[2:]
        assert arithmetic and set(arithmetic) <= set(explained["weights"]), arithmetic
    assert any("ω''" in line for line in arithmetic)
    page.close()


def test_hostile_tokens_are_shown_as_text_and_run_nothing(run, tmp_path, browser):
    path = make_page(run, tmp_path, "compute", evil_csv(tmp_path), "--mode", "linear")
    page = Page(browser, path)
    labels = page.p.locator("#head-svg text[data-side=key]").all_text_contents()
    assert labels == list(EVIL)
    page.view("matrix")
    rows = page.p.locator(".panel[data-step=weights] .row-labels .lbl").all_text_contents()
    assert rows == list(EVIL)
    assert page.count("img") == 0 and page.p.evaluate("document.scripts.length") == 2
    page.close()  # asserts no dialog opened and no error
    path = make_page(run, tmp_path, "explain", evil_csv(tmp_path), "--query", "0", name="e.html")
    page = Page(browser, path)
    assert page.p.locator("#view-explain h2").text_content() == f"Query “{EVIL[0]}” (token 0)"
    arithmetic = page.p.locator("#view-explain pre").all_text_contents()
    assert any(f"ω({EVIL[0]}, {EVIL[1]}) = " in text for text in arithmetic)
    assert page.count("img") == 0 and page.p.evaluate("document.scripts.length") == 2
    page.close()


def test_control_and_bidi_characters_are_shown_as_escapes(run, tmp_path, browser):
    tokens = ["\x1b[2Jx", "\u202eevil", "a\nb", "plain"]
    source = tmp_path / "controls.json"
    source.write_text(
        json.dumps({"tokens": tokens, "embeddings": [[1, 0], [0, 1], [1, 1], [2, 1]]})
    )
    path = make_page(run, tmp_path, "compute", source, name="c.html")
    assert page_data(path.read_text())["tokens"] == tokens  # the data keeps them exactly
    page = Page(browser, path)
    labels = page.p.locator("#head-svg text[data-side=key]").all_text_contents()
    assert labels == ["\\x1b[2Jx", "\\u202eevil", "a\\nb", "plain"]
    page.close()


def test_explain_page_tables_show_escapes(run, tmp_path, browser):
    source = tmp_path / "controls.json"
    source.write_text(json.dumps({"tokens": ["\u202eevil", "ok"], "embeddings": [[1, 0], [0, 1]]}))
    path = make_page(run, tmp_path, "explain", source, name="e.html")
    page = Page(browser, path)
    headers = page.p.locator("#view-explain th").all_text_contents()
    assert "\\u202eevil" in headers and "\u202eevil" not in headers
    page.close()


@pytest.mark.parametrize("memory_first", [False, True])
def test_cross_attention_pages_draw_queries_and_memory(run, tmp_path, browser, memory_first):
    rng = np.random.default_rng(0)
    files = {}
    for name, n in (("q", 4), ("m", 7)):
        tokens = [f"{name}{i}" for i in range(n)]
        files[name] = tmp_path / f"{name}.json"
        files[name].write_text(
            json.dumps({"tokens": tokens, "embeddings": rng.normal(size=(n, 3)).tolist()})
        )
    queries, memory = (files["m"], files["q"]) if memory_first else (files["q"], files["m"])
    path = make_page(run, tmp_path, "compute", queries, "--kv", memory, "--mode", "multi-head",
                     "--heads", "1", "--d-out", "4", name="x.html")  # fmt: skip
    data = page_data(path.read_text())
    n, m = len(data["tokens"]), len(data["kv_tokens"])
    page = Page(browser, path)
    keys = page.p.locator("#head-svg text[data-side=key]").all_text_contents()
    assert keys == data["kv_tokens"] and page.count("#head-svg text[data-side=query]") == n
    opacities = [float(o) for o in page.p.locator("#head-svg line").evaluate_all(
        "ls => ls.map(l => l.getAttribute('stroke-opacity'))")]  # fmt: skip
    assert len(opacities) == m
    first_row = np.array(data["steps"]["weights"]).reshape(-1, n, m)[0, 0]  # head 0, query 0
    np.testing.assert_allclose(opacities, first_row, atol=1e-4)
    page.view("matrix")
    columns = page.p.locator(".panel[data-step=weights] .col-labels .lbl").all_text_contents()
    assert columns == data["kv_tokens"]
    page.close()  # no page error


def test_explain_page_typesets_each_formula_and_links_to_its_cells(run, tmp_path, browser):
    args = ("sample:journey", "--mode", "multi-head", "--heads", "2", "--d-out", "4", "--causal")
    path = make_page(run, tmp_path, "explain", *args, "--query", "starts")
    trace = page_data(path.read_text())
    page = Page(browser, path)
    sections = trace["sections"]
    assert page.count("#view-explain section.trace") == len(sections)
    assert page.count("#view-explain section.trace math") == len(sections)
    heads = page.p.locator("#view-explain section.trace[data-key=weights]")
    assert heads.count() == 2
    heads.nth(0).evaluate("section => section.scrollIntoView()")
    screenshot(page, "explain", tmp_path)
    heads.nth(1).locator("button.cells").click()
    assert page.p.locator("#view-matrix").is_visible()
    mark = page.p.locator(".panel[data-step=weights][data-head='1'] .row-mark")
    assert mark.is_visible()
    canvas = page.p.locator(".panel[data-step=weights][data-head='1'] canvas")
    size = canvas.bounding_box()["height"] / 6
    assert mark.bounding_box()["y"] - canvas.bounding_box()["y"] == pytest.approx(2 * size, abs=2)
    page.close()


def test_model_view_grid_opens_a_head(run, tmp_path, browser, gpt2_dir):
    args = ("model", SENTENCE, "--model-dir", gpt2_dir, "--layer", "all", "--head", "all")
    path = make_page(run, tmp_path, *args)
    weights = unpack(page_data(path.read_text())["html"]["weights"])
    page = Page(browser, path)
    assert page.count("#view-model .panel[data-layer][data-head]") == 8
    assert "16-bit precision" in page.p.locator("#legend").text_content()
    tip = page.hover_cell("#view-model .panel[data-layer='0'][data-head='3']", 6, 2)
    words, value = SENTENCE.split(), f"{weights[0, 3, 6, 2]:.4f}".rstrip("0").rstrip(".")
    assert tip == [f"layer 0, head 3  [{words[6]}, {words[2]}]", f"weight: {value}"]
    page.p.click("#view-model .panel[data-layer='1'][data-head='2']")
    assert page.p.locator("#view-head").is_visible()
    svg = page.p.locator("#head-svg")
    assert (svg.get_attribute("data-layer"), svg.get_attribute("data-head")) == ("1", "2")
    assert page.p.locator("#head-caption").text_content() == "layer 1, head 2"
    page.p.hover("#head-svg text[data-side=query][data-token-index='4']")
    lines = page.line_opacities()
    assert set(lines) == {(2, k) for k in range(5)}  # causal: keys 0-4 only
    assert page.count("#head-svg text.key.masked") == 5
    for (_, k), opacity in lines.items():
        assert opacity == pytest.approx(weights[1, 2, 4, k], abs=5e-5)
    page.view("matrix")
    assert page.count("#view-matrix .panel[data-layer='1'][data-head='2']") == 1
    page.close()


def test_packaged_model_view_screenshot(run, tmp_path, browser):
    from attncli.model import load_model

    try:
        load_model()
    except Exception as e:
        pytest.skip(f"the packaged all-MiniLM-L6-v2 is not installed ({e})")
    args = ("model", SENTENCE.capitalize(), "--layer", "all", "--head", "all")
    path = make_page(run, tmp_path, *args)
    page = Page(browser, path, width=1400)
    assert page.count("#view-model .panel[data-layer][data-head]") == 72
    screenshot(page, "model_view", tmp_path)
    page.p.click("#view-model .panel[data-layer='5'][data-head='11']")
    page.p.hover("#head-svg text[data-side=query][data-token-index='8']")  # "it"
    lines = page.line_opacities()
    assert max(lines, key=lines.get) == (11, 2)  # "cat", as the README says
    screenshot(page, "head_view", tmp_path)
    page.close()


VARIANTS = [
    ("compute", "sample:journey"),
    ("compute", "sample:journey", "--mode", "trainable", "--d-out", "2", "--query", "2"),
    ("compute", "sample:cat", "--mode", "linear", "--causal", "--dropout", "0.5", "--qkv-bias"),
    ("compute", "sample:cat", "--mode", "multi-head", "--heads", "4", "--no-scale",
     "--show", "weights,context"),
    ("compute", "sample:cat", "--show", "context"),
    ("compute", "sample:cat", "--mode", "multi-head", "--softcap", "1", "--causal"),
    ("compute", "sample:cat", "--mode", "multi-head", "--softcap", "0.5", "--show", "capped"),
    ("explain", "sample:cat", "--mode", "multi-head", "--heads", "2", "--dropout", "0.3",
     "--query", "it"),
    ("explain", "sample:journey", "--causal"),
    ("model", SENTENCE, "--layer", "1", "--head", "2"),
    ("model", SENTENCE, "--layer", "1", "--query", "it"),
    ("model", SENTENCE, "--layer", "0", "--head", "1", "--explain", "--query", "it"),
]  # fmt: skip


@pytest.mark.parametrize("args", VARIANTS, ids=lambda a: " ".join(a[:4]))
def test_every_variant_draws_and_hovers_without_errors(run, tmp_path, browser, gpt2_dir, args):
    if args[0] == "model":
        args = (*args, "--model-dir", gpt2_dir)
    path = make_page(run, tmp_path, *args)
    doc = page_data(path.read_text())
    run_doc = doc["html"].get("run", doc)
    page = Page(browser, path)
    page.view("matrix")
    panels = page.p.locator("#view-matrix .panel")
    expected = sum(len(a) if isinstance(a[0][0], list) else 1 for a in run_doc["steps"].values())
    assert panels.count() == expected
    for i in range(panels.count()):
        step = panels.nth(i).get_attribute("data-step")
        rows, cols = panels.nth(i).locator("canvas").evaluate("c => [c.height, c.width]")
        tip = page.hover_cell("#view-matrix .panel", rows - 1, cols - 1, nth=i)
        assert tip[0].startswith(step) and tip[1].startswith("value: ")
    page.view("head")
    lines = page.count("#head-svg line")
    assert lines > 0 if "weights" in run_doc["steps"] else page.count("#head-svg") == 0
    page.close()


def test_long_inputs_label_every_kth_token(run, tmp_path, browser):
    rng = np.random.default_rng(0)
    emb = {"tokens": [f"w{i}" for i in range(300)], "embeddings": rng.random((300, 4)).tolist()}
    (tmp_path / "long.json").write_text(json.dumps(emb))
    page = Page(browser, make_page(run, tmp_path, "compute", "long.json", "--causal"))
    page.view("matrix")
    panel = page.p.locator(".panel[data-step=weights]")
    size = panel.locator("canvas").evaluate("c => c.clientWidth / c.width")
    for axis in ("row", "col"):
        labels = panel.locator(f".{axis}-labels [data-token-index]")
        index = [int(i) for i in labels.evaluate_all("ls => ls.map(l => l.dataset.tokenIndex)")]
        every = index[1]
        assert every >= 2 and every * size >= 11 and (every - 1) * size < 11
        assert index == list(range(0, 300, every))
        assert labels.all_text_contents() == [f"w{i}" for i in index]
    page.close()
