"""The ``attn`` command: parses options, calls the library, turns AttncliError into exit code 2."""

from __future__ import annotations

import enum
import io
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path
from typing import Annotated

import typer

from attncli import __version__
from attncli.core import DTYPES, MODES, STEPS
from attncli.errors import AttncliError, ConfigError, OutputError
from attncli.io.readers import INPUT_FORMATS

app = typer.Typer(
    name="attn",
    help=(
        "See every intermediate matrix of self-attention, computed from your own embeddings.\n\n"
        "[bold]Examples[/bold]\n\n"
        "  attn compute sample:journey\n\n"
        "  attn compute emb.csv --mode trainable --d-out 2 --seed 123\n\n"
        "  attn samples"
    ),
    no_args_is_help=True,
    add_completion=False,
    rich_markup_mode="rich",
    context_settings={"help_option_names": ["-h", "--help"]},
)


def _choices(name: str, values: tuple[str, ...]) -> type[enum.Enum]:
    """A str Enum of ``values`` so Typer shows and checks the choices."""
    return enum.Enum(name, {v.replace("-", "_"): v for v in values}, type=str)


Mode = _choices("Mode", MODES)
DType = _choices("DType", DTYPES)
Format = _choices("Format", ("table", "json", "csv", "npy", "npz"))
InputFormat = _choices("InputFormat", INPUT_FORMATS)

# The steps a table shows by default; simple mode's queries/keys/values are the inputs themselves.
_TABLE_STEPS = {
    "simple": ("inputs", "scores", "scaled_scores", "masked_scores", "weights", "context"),
}
_ALL_STEPS = tuple(STEPS)


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
def _errors(debug: bool) -> Iterator[None]:
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


Debug = Annotated[
    bool, typer.Option("--debug", help="Show the full traceback of unexpected errors.")
]


@app.command(
    epilog=(
        "[bold]Examples[/bold]\n\n"
        "  attn compute sample_inputs/journey.csv\n\n"
        "  attn compute sample:journey --mode trainable --d-out 2 --seed 123 --query journey\n\n"
        "  attn compute data.json --mode multi-head --heads 2 --d-out 4 --causal --format json"
        " | jq .steps.weights\n\n"
        "  cat emb.csv | attn compute - --mode linear --format csv > context.csv\n\n"
        "  attn compute sample:cat --mode linear --save-weights w.npz;"
        " attn compute sample:cat --mode linear --weights w.npz"
    )
)
def compute(
    input: Annotated[
        str,
        typer.Argument(
            help="Embeddings: a .csv/.json/.npy file, '-' for standard input, or sample:NAME.",
            show_default=False,
        ),
    ],
    mode: Annotated[
        Mode,
        typer.Option(rich_help_panel="Attention", help="Attention variant (the book's chapter 3)."),
    ] = Mode.simple,
    d_out: Annotated[
        int | None,
        typer.Option(
            "--d-out",
            rich_help_panel="Attention",
            help="Projection width (default: d_in).",
            show_default=False,
        ),
    ] = None,
    heads: Annotated[
        int | None,
        typer.Option(
            rich_help_panel="Attention",
            help="Heads in multi-head mode; must divide d_out (default: 2).",
            show_default=False,
        ),
    ] = None,
    causal: Annotated[
        bool,
        typer.Option(
            "--causal",
            rich_help_panel="Attention",
            help="Mask future tokens (-inf before softmax).",
        ),
    ] = False,
    dropout: Annotated[
        float,
        typer.Option(
            rich_help_panel="Attention", help="Dropout probability on the attention weights."
        ),
    ] = 0.0,
    scale: Annotated[
        bool | None,
        typer.Option(
            "--scale/--no-scale",
            rich_help_panel="Attention",
            help="Divide scores by √d_k (default: on, off in simple mode).",
            show_default=False,
        ),
    ] = None,
    qkv_bias: Annotated[
        bool,
        typer.Option(
            "--qkv-bias",
            rich_help_panel="Attention",
            help="Bias in the Q/K/V Linear layers (linear, multi-head).",
        ),
    ] = False,
    seed: Annotated[
        int,
        typer.Option(
            rich_help_panel="Weights", help="torch.manual_seed the parameters are drawn after."
        ),
    ] = 123,
    dtype: Annotated[
        DType, typer.Option(rich_help_panel="Attention", help="Precision of the arithmetic.")
    ] = DType.float32,
    weights: Annotated[
        Path | None,
        typer.Option(
            "--weights",
            rich_help_panel="Weights",
            help="Load parameters (.json or .npz) instead of seeding them.",
        ),
    ] = None,
    save_weights: Annotated[
        Path | None,
        typer.Option(
            "--save-weights",
            rich_help_panel="Weights",
            help="Write the parameters used (.json or .npz).",
        ),
    ] = None,
    fmt: Annotated[
        Format,
        typer.Option(
            "--format",
            "-f",
            rich_help_panel="Output",
            help="table: rich tables; json: every step; csv/npy: one step; npz: all.",
        ),
    ] = Format.table,
    show: Annotated[
        str | None,
        typer.Option(
            rich_help_panel="Output",
            help="Steps to output, comma separated (e.g. weights,context), or all.",
            show_default=False,
        ),
    ] = None,
    query: Annotated[
        str | None,
        typer.Option(
            rich_help_panel="Output",
            help="Keep only this query's rows: a token or a 0-based index.",
            show_default=False,
        ),
    ] = None,
    precision: Annotated[
        int, typer.Option(rich_help_panel="Output", help="Decimals shown in tables.")
    ] = 4,
    full: Annotated[
        bool,
        typer.Option(
            "--full",
            rich_help_panel="Output",
            help="Show large matrices whole instead of eliding with …",
        ),
    ] = False,
    output: Annotated[
        Path | None,
        typer.Option(
            "--output",
            "-o",
            rich_help_panel="Output",
            help="Write to this file (atomically) instead of stdout.",
        ),
    ] = None,
    input_format: Annotated[
        InputFormat | None,
        typer.Option(
            rich_help_panel="Input",
            help="Override the input format sniffed from suffix/content.",
            show_default=False,
        ),
    ] = None,
    debug: Debug = False,
) -> None:
    """Compute self-attention on embeddings and show every intermediate matrix."""
    with _errors(debug):
        from attncli.core import AttentionConfig
        from attncli.core import compute as run
        from attncli.core.params import parameters_from_named
        from attncli.core.result import find_query
        from attncli.io.readers import load_embeddings

        if input == "-" and sys.stdin.isatty():
            sys.stderr.write("attn: reading embeddings from standard input (end with Ctrl-D)…\n")
        emb = load_embeddings(input, input_format.value if input_format else None)
        config = AttentionConfig(
            mode=mode.value,
            d_out=d_out,
            heads=heads,
            causal=causal,
            dropout=dropout,
            scale=scale,
            qkv_bias=qkv_bias,
            seed=seed,
            dtype=dtype.value,
        )
        parameters = None
        if weights is not None:
            from attncli.io.weights import load_weights

            parameters = parameters_from_named(
                load_weights(weights), config, emb.values.shape[1], str(weights)
            )
        result = run(emb.values, emb.tokens, config, parameters=parameters)
        if weights is not None:
            result = replace(result, weights_source=str(weights))
        if query is not None:
            result = result.for_query(find_query(result.tokens, query))
        if save_weights is not None:
            _save_weights(result, save_weights, [input, weights])
        _emit(result, fmt, show, precision, full, output, [input, weights])


def _save_weights(result, path: Path, inputs: list) -> None:
    from attncli.io.weights import save_weights

    if result.parameters is None:
        raise OutputError("--save-weights: simple mode has no parameters to save")
    _check_not_input(path, inputs)
    save_weights(path, result.parameters.named(linear=result.config.mode != "trainable"))


def _emit(
    result, fmt: Format, show, precision: int, full: bool, output: Path | None, inputs: list
) -> None:
    from attncli.io import writers
    from attncli.io.atomic import write_atomic

    if output is not None:
        _check_not_input(output, inputs)
    if not 0 <= precision <= 16:
        raise ConfigError(f"--precision must be between 0 and 16, got {precision}")
    if fmt is Format.table:
        default = _TABLE_STEPS.get(result.config.mode, _ALL_STEPS)
        steps = result.select_steps(show, default)
        _emit_table(result, steps, precision, full, output)
        return
    steps = result.select_steps(
        show, ("context",) if fmt in (Format.csv, Format.npy) else _ALL_STEPS
    )
    if fmt is Format.json:
        data = writers.to_json(result, steps).encode()
    elif fmt is Format.csv:
        data = writers.to_csv(result, writers.one_step(steps, "csv")).encode()
    elif fmt is Format.npy:
        data = writers.to_npy(result, writers.one_step(steps, "npy"))
    else:
        data = writers.to_npz(result, steps)
    if output is not None:
        write_atomic(output, data)
        return
    if fmt in (Format.npy, Format.npz) and sys.stdout.isatty():
        raise OutputError(
            f"--format {fmt.value} is binary; refusing to print it to a terminal (use -o FILE)"
        )
    sys.stdout.buffer.write(data)
    sys.stdout.flush()


def _emit_table(result, steps: list[str], precision: int, full: bool, output: Path | None) -> None:
    from attncli.io.atomic import write_atomic
    from attncli.render.tables import print_result

    if output is None:
        print_result(result, steps, precision, full)
        return
    buf = io.StringIO()
    print_result(result, steps, precision, full, file=buf)
    write_atomic(output, buf.getvalue().encode())


def _check_not_input(path: Path, inputs: list) -> None:
    from attncli.io.atomic import same_file

    for source in inputs:
        if source is not None and str(source) != "-" and same_file(path, Path(str(source))):
            raise OutputError(f"{path}: refusing to overwrite the input file")


@app.command(
    epilog=(
        "[bold]Examples[/bold]\n\n  attn samples\n\n"
        "  attn compute sample:cat --mode multi-head --heads 2"
    )
)
def samples(debug: Debug = False) -> None:
    """List the bundled sample inputs (use them as sample:NAME)."""
    with _errors(debug):
        from attncli.io.readers import load_embeddings
        from attncli.io.samples import list_samples

        for sample in list_samples():
            emb = load_embeddings(sample.files[0])
            files = ", ".join(p.name for p in sample.files)
            preview = " ".join(emb.tokens)
            preview = preview if len(preview) <= 48 else preview[:47] + "…"
            typer.echo(
                f"sample:{sample.name:<10} {len(emb.tokens):>3} tokens × {emb.values.shape[1]:<3} "
                f"{preview}  [{files}]"
            )


def main() -> None:
    """Console-script entry point."""
    app(prog_name="attn")
