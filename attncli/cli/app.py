"""The Typer app, its option types and shared options, and the error-to-exit-code mapping."""

from __future__ import annotations

import enum
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from attncli import __version__
from attncli.core import DTYPES, MODES, STEPS
from attncli.engines import ENGINES
from attncli.errors import AttncliError
from attncli.io.readers import INPUT_FORMATS

if TYPE_CHECKING:
    pass


app = typer.Typer(
    name="attn",
    help=(
        "See every intermediate matrix of self-attention, computed from your own embeddings.\n\n"
        "[bold]Examples[/bold]\n\n"
        "  attn compute sample:journey\n\n"
        "  attn compute emb.csv --mode trainable --d-out 2 --seed 123\n\n"
        "  attn explain sample:journey --query journey\n\n"
        "  attn samples"
    ),
    no_args_is_help=True,
    add_completion=True,
    rich_markup_mode="rich",
    context_settings={"help_option_names": ["-h", "--help"]},
)


def _choices(name: str, values: tuple[str, ...]) -> type[enum.Enum]:
    """A str Enum of ``values`` so Typer shows and checks the choices."""
    return enum.Enum(name, {v.replace("-", "_"): v for v in values}, type=str)


Mode = _choices("Mode", MODES)


DType = _choices("DType", DTYPES)


Engine = _choices("Engine", ENGINES)


Format = _choices("Format", ("table", "json", "jsonl", "csv", "npy", "npz"))


ExplainFormat = _choices("ExplainFormat", ("terminal", "markdown", "json"))


PlotKind = _choices("PlotKind", ("weights", "vectors"))


InputFormat = _choices("InputFormat", INPUT_FORMATS)


# The steps a table shows by default; simple mode's queries/keys/values are the inputs themselves.
TABLE_STEPS = {
    "simple": ("inputs", "scores", "scaled_scores", "masked_scores", "weights", "context"),
}


ALL_STEPS = tuple(STEPS)


VIEWS = ("heatmap", "stats")  # terminal pictures of the weights, for --show


def _version(value: bool) -> None:
    if value:
        typer.echo(f"attncli {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[
        bool,
        typer.Option(
            "--version", "-V", callback=_version, is_eager=True, help="Print the version."
        ),
    ] = False,
) -> None:
    """See every intermediate matrix of self-attention, computed from your own embeddings."""


@contextmanager
def errors_to_exit(debug: bool) -> Iterator[None]:
    """Project errors: one line, exit 2. Anything else: one line, exit 1 (traceback: --debug)."""
    try:
        yield
    except AttncliError as e:
        _fail(str(e), e.exit_code)
    except KeyboardInterrupt:
        _fail("interrupted", 130)
    except BrokenPipeError:
        # The reader left (attn ... | head): send stdout to devnull so the last flush is quiet.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        raise typer.Exit(0) from None
    except typer.Exit:
        raise
    except Exception as e:
        if debug:
            raise
        _fail(f"unexpected error: {type(e).__name__}: {e} (rerun with --debug for details)", 1)


def _fail(message: str, code: int) -> None:
    sys.stderr.write(f"attn: error: {message}\n")
    raise typer.Exit(code)


def opt(panel: str | None, help: str, *decls: str, **kw: object) -> object:
    """A Typer option in a help panel; options without a useful default hide it."""
    return typer.Option(*decls, rich_help_panel=panel, help=help, **kw)


# Options shared by the commands that compute attention (compute, explain).
Input = Annotated[
    str,
    typer.Argument(
        help="Embeddings: a .csv/.json/.npy file, '-' for standard input, or sample:NAME.",
        show_default=False,
    ),
]


ModeOpt = Annotated[
    Mode | None,
    opt(
        "Attention",
        "Attention variant: the book's chapter 3 modes, gqa/mqa (grouped-query), mla (latent) "
        "\\[default: simple, or what --weights implies].",
        show_default=False,
    ),
]


DOut = Annotated[
    int | None,
    opt("Attention", "Projection width (default: d_in).", "--d-out", show_default=False),
]


Heads = Annotated[
    int | None,
    opt(
        "Attention",
        "Query heads (multi-head, gqa, mqa, mla); must divide d_out (default: 2).",
        show_default=False,
    ),
]


KvHeads = Annotated[
    int | None,
    opt(
        "Attention",
        "gqa: key/value heads, shared by consecutive query heads; must divide --heads "
        "(1 is multi-query attention).",
        "--kv-heads",
        show_default=False,
    ),
]


LatentDim = Annotated[
    int | None,
    opt(
        "Attention",
        "mla: width of the latent C = X·W_DKV (default: max(16, d_out // 8)).",
        "--latent-dim",
        show_default=False,
    ),
]


Window = Annotated[
    int | None,
    opt(
        "Attention",
        "Sliding window (with --causal): each query sees itself and the W−1 keys before it.",
        "--window",
        show_default=False,
    ),
]


Rope = Annotated[
    bool, opt("Attention", "Rotate each head's queries and keys by position (RoPE).", "--rope")
]


RopeBase = Annotated[float, opt("Attention", "RoPE's base θ.", "--rope-base")]


QkNorm = Annotated[
    bool,
    opt("Attention", "RMSNorm each head's queries and keys before RoPE (Qwen3).", "--qk-norm"),
]


KvCache = Annotated[
    bool,
    opt(
        "Output",
        "Recompute token by token with a KV cache, as generation does (causal): check it equals "
        "the full result, show the cache's length and bytes per token.",
        "--kv-cache",
    ),
]


Kv = Annotated[
    str | None,
    opt(
        "Input",
        "Cross-attention: keys and values from this memory (a file, '-', sample:NAME).",
        "--kv",
        show_default=False,
    ),
]


Causal = Annotated[bool, opt("Attention", "Mask future tokens (-inf before softmax).", "--causal")]


Dropout = Annotated[float, opt("Attention", "Dropout probability on the attention weights.")]


Scale = Annotated[
    bool | None,
    opt(
        "Attention",
        "Divide scores by √d_k (default: on, off in simple mode).",
        "--scale/--no-scale",
        show_default=False,
    ),
]


QkvBias = Annotated[
    bool,
    opt("Attention", "Bias in the Q/K/V Linear layers (modes with Linear layers).", "--qkv-bias"),
]


DTypeOpt = Annotated[
    DType, opt("Attention", "Precision of the arithmetic (float16/bfloat16: torch engine).")
]


Seed = Annotated[int, opt("Weights", "torch.manual_seed the parameters are drawn after.")]


Weights = Annotated[
    Path | None,
    opt(
        "Weights",
        "Load parameters, not seeded ones: .json, .npz, .pt/.pth (state dict), .safetensors.",
        "--weights",
    ),
]


WeightsPrefix = Annotated[
    str | None,
    opt(
        "Weights",
        "The attention module to take from a bigger state dict, e.g. trf_blocks.0.att.",
        "--weights-prefix",
        show_default=False,
    ),
]


EngineOpt = Annotated[
    Engine,
    opt("Engine", "numpy (fast start), torch, or auto: torch for large inputs or non-CPU devices."),
]


Device = Annotated[str, opt("Engine", "auto, cpu, cuda, cuda:N or mps (torch engine).")]


InputFormatOpt = Annotated[
    InputFormat | None,
    opt("Input", "Override the input format sniffed from suffix/content.", show_default=False),
]


Precision = Annotated[int, opt("Output", "Decimals shown.")]


Output = Annotated[
    Path | None,
    opt("Output", "Write to this file (atomically) instead of stdout.", "--output", "-o"),
]


Debug = Annotated[bool, opt(None, "Show the full traceback of unexpected errors.", "--debug")]
