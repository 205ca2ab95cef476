"""The Typer app, its option types and shared options, and the error-to-exit-code mapping."""

from __future__ import annotations

import enum
import os
import sys
import warnings
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from attncli import __version__
from attncli.core import DTYPES, MODES, STEPS
from attncli.core.config import QK_NORM_SCOPES
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


Format = _choices("Format", ("table", "json", "jsonl", "csv", "npy", "npz", "html"))


ModelFormat = _choices("ModelFormat", (*(f.value for f in Format), "markdown"))


ExplainFormat = _choices("ExplainFormat", ("terminal", "markdown", "json", "html"))


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
    max_input: Annotated[
        str | None,
        typer.Option(
            "--max-input",
            help="Read at most this much of each input, e.g. 2G [default: 512M, or "
            "ATTN_MAX_INPUT].",
            show_default=False,
        ),
    ] = None,
) -> None:
    """See every intermediate matrix of self-attention, computed from your own embeddings."""
    if max_input is not None:
        from attncli.io.limits import ENV, parse_size

        with errors_to_exit(False):
            os.environ[ENV] = str(parse_size(max_input))


@contextmanager
def errors_to_exit(debug: bool) -> Iterator[None]:
    """Project errors: one line, exit 2. Ctrl-C: exit 130, SIGTERM: 143. A write to standard
    output that fails (a full device, a closed stream): one line, exit 1; a reader that left
    (``| head``): quietly 0. Anything else: one line, exit 1 (traceback: --debug)."""
    try:
        with warnings.catch_warnings():
            # numpy's RuntimeWarnings on extreme values, a library's deprecations: what the user
            # needs to know reaches them as an error or an "attn: note:" line
            warnings.simplefilter("ignore")
            yield
    except AttncliError as e:
        _fail(str(e), e.exit_code)
    except KeyboardInterrupt as e:
        from attncli.entry import Terminated

        term = isinstance(e, Terminated)
        _fail("terminated" if term else "interrupted", 143 if term else 130)
    except BrokenPipeError:
        quiet_stdout()
        raise typer.Exit(0) from None
    except typer.Exit:
        raise
    except OSError as e:  # readers and file writers raise project errors: this is stdout
        if debug:
            raise
        quiet_stdout()
        _fail(f"cannot write to standard output ({e.strerror or e})", 1)
    except Exception as e:
        if debug:
            raise
        _fail(f"unexpected error: {type(e).__name__}: {e} (rerun with --debug for details)", 1)


def quiet_stdout() -> None:
    """Point descriptor 1 at /dev/null so that the interpreter's last flush of what is still
    buffered for a gone or broken stdout is silent."""
    with suppress(OSError):
        os.dup2(os.open(os.devnull, os.O_WRONLY), 1)


def say(kind: str, message: str) -> None:
    """``attn: KIND: MESSAGE`` on stderr, one line, text from the data made visible."""
    from attncli.visible import visible

    sys.stderr.write(f"attn: {kind}: {visible(message)}\n")
    sys.stderr.flush()


def fail(message: str, code: int) -> None:
    """Say the error and exit with ``code``."""
    say("error", message)
    sys.exit(code)


def command_line(ctx: typer.Context | None) -> str:
    """The command being run, rebuilt from the options given on the command line (for pages that
    say what made them): ``attn compute sample:cat --causal --format html -o cat.html``."""
    import shlex

    if ctx is None:
        return ""
    words = ["attn", *ctx.command_path.split()[1:]]
    for param in ctx.command.params:
        source = ctx.get_parameter_source(param.name)
        if source is None or source.name != "COMMANDLINE":
            continue
        value = ctx.params[param.name]
        values = value if isinstance(value, (list, tuple)) else [value]
        values = [getattr(v, "value", v) for v in values]
        if param.param_type_name == "argument":
            words += [str(v) for v in values]
        elif getattr(param, "is_flag", False):
            off = not values[0] and param.secondary_opts
            words.append(param.secondary_opts[0] if off else param.opts[0])
        else:
            words += [w for v in values for w in (param.opts[0], str(v))]
    return shlex.join(words)


def _fail(message: str, code: int) -> None:
    say("error", message)
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
        "Query heads (multi-head, gqa, mqa, mla); must divide d_out (default: 2, or 1 for an odd "
        "d_out). State dicts do not store it, nor nn.MultiheadAttention's add_zero_attn (not "
        "computed: a module saved with it gives other numbers).",
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


QkNormScope = _choices("QkNormScope", QK_NORM_SCOPES)


QkNormScopeOpt = Annotated[
    QkNormScope,
    opt(
        "Attention",
        "With --qk-norm: head normalises each head's queries and keys (Qwen3, Gemma 3); all "
        "normalises each token's whole projected q and k, every head together, before splitting "
        "(OLMo 2).",
        "--qk-norm-scope",
    ),
]


Softcap = Annotated[
    float | None,
    opt(
        "Attention",
        "Soft-cap the scaled scores to at most C in size, tanh(score/C)·C, before the mask "
        "(Gemma 2's attn_logit_softcapping); C > 0.",
        "--softcap",
        metavar="C",
        show_default=False,
    ),
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


VMax = Annotated[
    float,
    opt(
        "Output", "Weight drawn darkest/brightest in heatmaps: one scale for every head.", "--vmax"
    ),
]


PlotStep = _choices("PlotStep", ("weights", "scores", "scaled", "capped", "masked"))


PlotTitle = Annotated[
    str | None,
    opt("Image", "Title [default: the sentence or the file; settings below it].", "--title",
        show_default=False),
]  # fmt: skip


Dpi = Annotated[int, opt("Image", "Resolution of PNG images.", "--dpi")]


Cmap = Annotated[str, opt("Image", "A matplotlib colour map (viridis, magma, Blues, …).")]


StepOpt = Annotated[PlotStep, opt("Image", "The matrix to draw.", "--step")]


Cols = Annotated[
    int | None,
    opt("Image", "Panels per row [default: a near-square grid].", "--cols", show_default=False),
]


Values = Annotated[
    bool, opt("Image", "Write each weight in its cell (small inputs).", "--values/--no-values")
]


def plot_style(step: enum.Enum, cols: int | None, cmap: str, vmax: float | None, values: bool,
               query: int | None, title: str | None):  # fmt: skip
    """The PlotStyle the image options ask for, checked."""
    from attncli.core.result import STEP_ALIASES
    from attncli.errors import ConfigError
    from attncli.render.plot import PlotStyle, colormap_names

    if cmap not in colormap_names():
        raise ConfigError(f"--cmap {cmap!r}: not a matplotlib colour map (e.g. viridis, magma)")
    if vmax is not None:
        from attncli.cli.output import check_vmax

        check_vmax(vmax)
    name = STEP_ALIASES.get(step.value, step.value)
    return PlotStyle(name, cols, cmap, vmax, values, query, title)
