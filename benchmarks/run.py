"""attncli vs torch, measured side by side in one run: prints ratios, not absolute claims.

    python benchmarks/run.py            # everything (a few minutes on 2 cores)
    python benchmarks/run.py --quick    # smaller sizes

Each timed case runs in a fresh subprocess so that its peak RSS is its own. Cases:

1. start-up: `attn compute sample_inputs/journey.csv --format json` vs `python -c "import numpy"`,
   and whether torch was imported;
2. kernel: context of N=4096, d=64, float32 on the CPU, numpy engine vs torch's 4-D
   scaled_dot_product_attention (simple and linear modes);
3. scaling and long sequences: N = 256 … 65,536, context only (blockwise path) vs 4-D SDPA,
   time and peak RSS;
4. --engine auto end to end (torch import included) vs numpy and torch, per size;
5. batch (not run by default: ``--batch-rows``);
6. grouped-query attention (8 query heads, 2 key/value heads) and a sliding window (W=512),
   context only at N=4096 and 32,768, d=64, vs SDPA with ``enable_gqa`` / the window as a mask,
   and the window vs full causal attention;
7. the cold command-line kernel: `attn compute` at N=4096 minus N=6 vs torch's SDPA call.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PY = sys.executable


def worker(
    kind: str, n: int, d: int, mode: str = "simple", causal: bool = False, repeat: int = 3
) -> dict:
    """Run one case of benchmarks/worker.py in a fresh process."""
    cmd = [
        PY,
        str(ROOT / "benchmarks" / "worker.py"),
        kind,
        str(n),
        str(d),
        mode,
        "1" if causal else "0",
        str(repeat),
    ]
    out = subprocess.run(cmd, capture_output=True, text=True, check=True, cwd=ROOT)
    return json.loads(out.stdout)


def wall(cmd: list[str], repeat: int = 5, stdin: bytes | None = None) -> float:
    """Best wall time of a whole command (start-up included)."""
    best = float("inf")
    for _ in range(repeat):
        t0 = time.perf_counter()
        subprocess.run(cmd, input=stdin, capture_output=True, check=True, cwd=ROOT)
        best = min(best, time.perf_counter() - t0)
    return best


def row(*cells: object) -> str:
    return "| " + " | ".join(str(c) for c in cells) + " |"


def startup() -> list[str]:
    attn = [PY, "-m", "attncli", "compute", "sample_inputs/journey.csv", "--format", "json"]
    t_attn = wall(attn, 7)
    t_numpy = wall([PY, "-c", "import numpy"], 7)
    imports = subprocess.run(
        [PY, "-X", "importtime", *attn[1:]], capture_output=True, text=True, cwd=ROOT
    ).stderr
    torch_imported = any(line.rstrip().endswith("| torch") for line in imports.splitlines())
    return [
        "### 1. Start-up (target: ≤ 2.5× `python -c 'import numpy'`, no torch import)",
        "",
        row("case", "attncli", "import numpy", "ratio", "torch imported"),
        row("---", "---:", "---:", "---:", "---"),
        row(
            "attn compute journey.csv --format json",
            f"{t_attn * 1000:.0f} ms",
            f"{t_numpy * 1000:.0f} ms",
            f"{t_attn / t_numpy:.2f}×",
            "yes" if torch_imported else "no",
        ),
    ]


def kernel(n: int) -> list[str]:
    lines = [
        f"### 2. Kernel: context, N={n}, d=64, float32, CPU (target: numpy ≤ 1.5× torch 4-D SDPA)",
        "",
        row("mode", "causal", "attncli numpy", "torch SDPA 4-D", "ratio"),
        row("---", "---", "---:", "---:", "---:"),
    ]
    for mode in ("simple", "linear"):
        for causal in (False, True):
            a, t = worker("attncli", n, 64, mode, causal), worker("torch", n, 64, mode, causal)
            lines.append(
                row(
                    mode,
                    causal,
                    f"{a['seconds'] * 1000:.1f} ms",
                    f"{t['seconds'] * 1000:.1f} ms",
                    f"{a['seconds'] / t['seconds']:.2f}×",
                )
            )
    return lines


def scaling(sizes: list[int]) -> list[str]:
    lines = [
        "### 3. Scaling, context only (blockwise numpy vs torch 4-D SDPA), d=64, float32",
        "",
        row("N", "attncli time", "torch time", "ratio", "attncli peak RSS", "torch peak RSS"),
        row("---:", "---:", "---:", "---:", "---:", "---:"),
    ]
    for n in sizes:
        repeat = 1 if n >= 16384 else 3
        a, t = worker("attncli", n, 64, repeat=repeat), worker("torch", n, 64, repeat=repeat)
        lines.append(
            row(
                n,
                f"{a['seconds']:.3f} s",
                f"{t['seconds']:.3f} s",
                f"{a['seconds'] / t['seconds']:.2f}×",
                f"{a['peak_mb']:.0f} MB",
                f"{t['peak_mb']:.0f} MB",
            )
        )
    return lines


def auto(sizes: list[int], tmp: Path) -> list[str]:
    import numpy as np

    lines = [
        "### 4. `--engine auto` end to end, context to .npy "
        "(process start-up and torch import included)",
        "",
        row("N", "numpy", "torch", "auto", "auto / best"),
        row("---:", "---:", "---:", "---:", "---:"),
    ]
    for n in sizes:
        path = tmp / f"x{n}.npy"
        np.save(path, np.random.default_rng(0).standard_normal((n, 64), dtype=np.float32))
        times = {}
        for engine in ("numpy", "torch", "auto"):
            cmd = [
                PY,
                "-m",
                "attncli",
                "compute",
                str(path),
                "--scale",
                "--format",
                "npy",
                "-o",
                str(tmp / "out.npy"),
                "--engine",
                engine,
            ]
            times[engine] = wall(cmd, 1 if n >= 16384 else 3)
        best = min(times["numpy"], times["torch"])
        lines.append(
            row(
                n,
                *(f"{times[e]:.2f} s" for e in ("numpy", "torch", "auto")),
                f"{times['auto'] / best:.2f}×",
            )
        )
    return lines


def batch(count: int, tmp: Path) -> list[str]:
    """``count`` short sequences as one --batch process vs one process per sequence."""
    import numpy as np

    rng = np.random.default_rng(0)
    lines = (
        json.dumps({"id": i, "embeddings": rng.standard_normal((6, 3)).round(4).tolist()})
        for i in range(count)
    )
    path = tmp / "seqs.jsonl"
    path.write_text("\n".join(lines) + "\n")
    cmd = [PY, "-m", "attncli", "compute", str(path), "--batch", "--mode", "linear", "-o",
           str(tmp / "out.jsonl")]  # fmt: skip
    t_batch = wall(cmd, 1)
    one = tmp / "one.json"
    one.write_text(json.dumps({"embeddings": rng.standard_normal((6, 3)).tolist()}))
    single = [PY, "-m", "attncli", "compute", str(one), "--mode", "linear", "--format", "json"]
    t_single = wall(single, 20)
    return [
        f"### 5. Batch: {count:,} sequences of 6 tokens "
        "(target: ≥ 20× faster than one process each)",
        "",
        row("case", "time", "per sequence"),
        row("---", "---:", "---:"),
        row("one `--batch` process", f"{t_batch:.2f} s", f"{t_batch / count * 1000:.2f} ms"),
        row(
            f"{count:,} separate runs (from the best of 20)",
            f"{t_single * count:.0f} s",
            f"{t_single * 1000:.0f} ms",
        ),
        row("ratio", f"{t_single * count / t_batch:.0f}×", ""),
    ]


def variants(sizes: list[int]) -> list[str]:
    lines = [
        "### 6. GQA and sliding window, context only, d=64, float32 "
        "(targets: GQA ≤ 1.3× SDPA; window 512 ≥ 10× faster than full causal at N=32,768)",
        "",
        row("case", "N", "attncli", "torch SDPA 4-D", "ratio", "attncli RSS", "torch RSS"),
        row("---", "---:", "---:", "---:", "---:", "---:", "---:"),
    ]
    full = {}
    for n in sizes:
        repeat = 1 if n >= 16384 else 3
        for label, mode, causal in (
            ("GQA 8 q heads / 2 kv heads", "gqa-8-2", False),
            ("GQA 8 / 2, causal", "gqa-8-2", True),
            ("causal, 1 head (full)", "gqa-1-1", True),
            ("window 512, 1 head", "window-512", True),
        ):
            a = worker("attncli", n, 64, mode, causal, repeat)
            try:
                t = worker("torch", n, 64, mode, causal, repeat)
                t_cells = (f"{t['seconds']:.3f} s", f"{a['seconds'] / t['seconds']:.2f}×",
                           f"{t['peak_mb']:.0f} MB")  # fmt: skip
            except subprocess.CalledProcessError:
                t_cells = ("failed", "", "")
            if mode == "gqa-1-1":
                full[n] = a["seconds"]
            lines.append(row(label, n, f"{a['seconds']:.3f} s", t_cells[0], t_cells[1],
                             f"{a['peak_mb']:.0f} MB", t_cells[2]))  # fmt: skip
            if mode.startswith("window"):
                lines.append(row("↳ window vs full causal (attncli)", n, "", "",
                                 f"{full[n] / a['seconds']:.1f}× faster", "", ""))  # fmt: skip
    return lines


def cold_kernel(tmp: Path, repeat: int = 21) -> list[str]:
    """The command line's kernel cost: `attn compute big.npy` at N=4096 minus the same at N=6
    (start-up cancels), against torch's warm 4-D SDPA call at N=4096."""
    import numpy as np

    cmds = {}
    for n in (6, 4096):
        path = tmp / f"cold{n}.npy"
        np.save(path, np.random.default_rng(0).standard_normal((n, 64), dtype=np.float32))
        cmds[n] = [PY, "-m", "attncli", "compute", str(path), "--scale", "--show", "context",
                   "--format", "npy", "-o", str(tmp / "out.npy")]  # fmt: skip
    # interleaved, so that a change of the machine's load hits both sizes alike
    times = {6: float("inf"), 4096: float("inf")}
    for _ in range(repeat):
        for n, cmd in cmds.items():
            times[n] = min(times[n], wall(cmd, 1))
    sdpa = worker("torch", 4096, 64)["seconds"]
    kernel = times[4096] - times[6]
    return [
        f"### 7. Cold command-line kernel, N=4096, d=64, best of {repeat} interleaved runs "
        "(target: ≤ 1.3× torch's SDPA call)",
        "",
        row("attn at N=4096", "attn at N=6", "difference", "torch SDPA 4-D (warm)", "ratio"),
        row("---:", "---:", "---:", "---:", "---:"),
        row(
            f"{times[4096] * 1000:.0f} ms",
            f"{times[6] * 1000:.0f} ms",
            f"{kernel * 1000:.1f} ms",
            f"{sdpa * 1000:.1f} ms",
            f"{kernel / sdpa:.2f}×",
        ),
    ]


def main() -> None:
    import tempfile

    import numpy as np
    import torch

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="sizes up to 8192 only")
    parser.add_argument("--only", choices=["variants", "cold"], help="run one section only")
    args = parser.parse_args()
    top = 8192 if args.quick else 65536
    sizes = [2**k for k in range(8, 17) if 2**k <= top]
    print(f"## attncli benchmarks — {time.strftime('%Y-%m-%d')}")
    print()
    print(
        f"machine: {platform.machine()}, {os.cpu_count()} cores, {platform.system()}; "
        f"python {platform.python_version()}, numpy {np.__version__}, torch {torch.__version__} "
        f"({torch.get_num_threads()} threads); "
        f"OPENBLAS_CORETYPE={os.environ.get('OPENBLAS_CORETYPE', 'unset')}"
    )
    print()
    if args.only == "variants":
        print("\n".join(variants([4096, 8192 if args.quick else 32768])))
        return
    if args.only == "cold":
        with tempfile.TemporaryDirectory() as tmp:
            print("\n".join(cold_kernel(Path(tmp))))
        return
    with tempfile.TemporaryDirectory() as tmp:
        for block in (
            startup(),
            kernel(4096),
            scaling(sizes),
            auto([6, 256, 1024, 4096, 16384, top], Path(tmp)),
            variants([4096, 8192 if args.quick else 32768]),
            cold_kernel(Path(tmp)),
        ):
            print("\n".join(block), flush=True)
            print()


if __name__ == "__main__":
    main()
