"""The ``attn`` command: parses options, calls the library, turns AttncliError into exit code 2."""

from __future__ import annotations

import enum
import io
import json
import os
import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager, nullcontext
from dataclasses import replace
from pathlib import Path
from typing import IO, TYPE_CHECKING, Annotated

import numpy as np
import typer

from attncli import __version__
from attncli.core import DTYPES, MODES, STEPS
from attncli.engines import ENGINES
from attncli.errors import AttncliError, ConfigError, OutputError
from attncli.io.readers import INPUT_FORMATS

if TYPE_CHECKING:
    from attncli.core.config import AttentionConfig
    from attncli.core.result import AttentionResult
    from attncli.io.readers import Embeddings

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
_TABLE_STEPS = {
    "simple": ("inputs", "scores", "scaled_scores", "masked_scores", "weights", "context"),
}
_ALL_STEPS = tuple(STEPS)
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


def _opt(panel: str | None, help: str, *decls: str, **kw: object) -> object:
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
    _opt(
        "Attention",
        "Attention variant (the book's chapter 3) [default: simple, or what --weights implies].",
        show_default=False,
    ),
]
DOut = Annotated[
    int | None,
    _opt("Attention", "Projection width (default: d_in).", "--d-out", show_default=False),
]
Heads = Annotated[
    int | None,
    _opt(
        "Attention", "Heads in multi-head mode; must divide d_out (default: 2).", show_default=False
    ),
]
Causal = Annotated[bool, _opt("Attention", "Mask future tokens (-inf before softmax).", "--causal")]
Dropout = Annotated[float, _opt("Attention", "Dropout probability on the attention weights.")]
Scale = Annotated[
    bool | None,
    _opt(
        "Attention",
        "Divide scores by √d_k (default: on, off in simple mode).",
        "--scale/--no-scale",
        show_default=False,
    ),
]
QkvBias = Annotated[
    bool, _opt("Attention", "Bias in the Q/K/V Linear layers (linear, multi-head).", "--qkv-bias")
]
DTypeOpt = Annotated[
    DType, _opt("Attention", "Precision of the arithmetic (float16/bfloat16: torch engine).")
]
Seed = Annotated[int, _opt("Weights", "torch.manual_seed the parameters are drawn after.")]
Weights = Annotated[
    Path | None,
    _opt(
        "Weights",
        "Load parameters, not seeded ones: .json, .npz, .pt/.pth (state dict), .safetensors.",
        "--weights",
    ),
]
WeightsPrefix = Annotated[
    str | None,
    _opt(
        "Weights",
        "The attention module to take from a bigger state dict, e.g. trf_blocks.0.att.",
        "--weights-prefix",
        show_default=False,
    ),
]
EngineOpt = Annotated[
    Engine,
    _opt(
        "Engine", "numpy (fast start), torch, or auto: torch for large inputs or non-CPU devices."
    ),
]
Device = Annotated[str, _opt("Engine", "auto, cpu, cuda, cuda:N or mps (torch engine).")]
InputFormatOpt = Annotated[
    InputFormat | None,
    _opt("Input", "Override the input format sniffed from suffix/content.", show_default=False),
]
Precision = Annotated[int, _opt("Output", "Decimals shown.")]
Output = Annotated[
    Path | None,
    _opt("Output", "Write to this file (atomically) instead of stdout.", "--output", "-o"),
]
Debug = Annotated[bool, _opt(None, "Show the full traceback of unexpected errors.", "--debug")]


class _Runner:
    """Computes attention for embeddings with one set of options and one weight file (loaded
    once), so a batch of sequences shares the very same parameters."""

    def __init__(
        self,
        weights: Path | None,
        weights_prefix: str | None,
        engine: Engine,
        device: str,
        context_only: bool = False,
        quiet: bool = True,
        **options: object,
    ) -> None:
        self.values = {k: getattr(v, "value", v) for k, v in options.items()}
        self.weights, self.engine, self.device = weights, engine.value, device
        self.context_only, self.quiet = context_only, quiet
        self.file = None
        if weights is not None:
            from attncli.io.weights import load_weights

            self.file = load_weights(weights, weights_prefix)

    def run(self, emb: Embeddings) -> AttentionResult:
        """With a weight file, an unset ``mode`` is the one its keys imply and ``heads`` may come
        from its metadata; multi-head weights without a head count are an error, never a guess."""
        from attncli.core import AttentionConfig
        from attncli.core import compute as run
        from attncli.core.params import parameters_from_named

        values = dict(self.values)
        parameters = None
        wf = self.file
        values["mode"] = values["mode"] or (wf.mode if wf is not None else "simple")
        if wf is not None and values["mode"] == "multi-head" and values["heads"] is None:
            if wf.heads is None:
                raise ConfigError(
                    f"{self.weights}: multi-head weights do not record the head count; pass --heads"
                )
            values["heads"] = wf.heads
        config = AttentionConfig(**values)
        if wf is not None:
            d_in = emb.values.shape[1]
            parameters = parameters_from_named(wf.named, config, d_in, str(self.weights))
            config = replace(config, d_out=parameters.query.weight.shape[1])
        wanted = self.context_only and not self.quiet
        with _progress(emb.values.shape, config, wanted) as progress:
            result = run(
                emb.values, emb.tokens, config, parameters=parameters, engine=self.engine,
                device=self.device, context_only=self.context_only, progress=progress,
            )  # fmt: skip
        for note in result.notes:
            sys.stderr.write(f"attn: note: {note}\n")
        return result if wf is None else replace(result, weights_source=str(self.weights))


def _load(input: str, input_format: InputFormat | None) -> Embeddings:
    from attncli.io.readers import load_embeddings

    if input == "-" and sys.stdin.isatty():
        sys.stderr.write("attn: reading embeddings from standard input (end with Ctrl-D)…\n")
    return load_embeddings(input, input_format.value if input_format else None)


# Show a progress bar for work of at least this many multiply-adds (about a second here).
PROGRESS_WORK = 2e10


def _progress(shape: tuple[int, int], config: AttentionConfig, wanted: bool):
    """A progress callback for long blockwise work on a terminal, else a context yielding None."""
    if not (wanted and sys.stderr.isatty()):
        return nullcontext(None)
    n, d_in = shape
    resolved = config.resolved(d_in)
    if 2.0 * n * n * resolved.head_dim * resolved.heads < PROGRESS_WORK:
        return nullcontext(None)
    from attncli.render.progress import progress_bar

    return progress_bar(n * resolved.heads, "attention")


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
    inputs: Annotated[
        list[str],
        typer.Argument(
            help="Embeddings: .csv/.json/.npy files, '-' for standard input, or sample:NAME "
            "(several: one result each).",
            show_default=False,
        ),
    ],
    mode: ModeOpt = None,
    d_out: DOut = None,
    heads: Heads = None,
    causal: Causal = False,
    dropout: Dropout = 0.0,
    scale: Scale = None,
    qkv_bias: QkvBias = False,
    dtype: DTypeOpt = DType.float32,
    seed: Seed = 123,
    weights: Weights = None,
    weights_prefix: WeightsPrefix = None,
    engine: EngineOpt = Engine.auto,
    device: Device = "auto",
    save_weights: Annotated[
        Path | None, _opt("Weights", "Write the parameters used (.json or .npz).", "--save-weights")
    ] = None,
    fmt: Annotated[
        Format,
        _opt(
            "Output",
            "table: rich tables; json: every step; jsonl: a JSON line per input; "
            "csv/npy: one step; npz: all.",
            "--format",
            "-f",
        ),
    ] = Format.table,
    show: Annotated[
        str | None,
        _opt(
            "Output",
            "Steps to output, comma separated (e.g. weights,context), or all; "
            "heatmap and stats draw the weights (tables only).",
            show_default=False,
        ),
    ] = None,
    query: Annotated[
        str | None,
        _opt(
            "Output", "Keep only this query's rows: a token or a 0-based index.", show_default=False
        ),
    ] = None,
    precision: Precision = 4,
    full: Annotated[
        bool, _opt("Output", "Show large matrices whole instead of eliding with …", "--full")
    ] = False,
    output: Output = None,
    input_format: InputFormatOpt = None,
    quiet: Annotated[bool, _opt("Output", "No progress bar on stderr.", "--quiet", "-q")] = False,
    batch: Annotated[
        bool,
        _opt(
            "Input",
            'Read JSON Lines records {"id", "tokens", "embeddings"}, one per line, and write a '
            "JSON line per record (streaming).",
            "--batch",
        ),
    ] = False,
    fail_fast: Annotated[
        bool, _opt("Input", "With --batch: stop at the first bad record.", "--fail-fast")
    ] = False,
    debug: Debug = False,
) -> None:
    """Compute self-attention on embeddings and show every intermediate matrix."""
    with _errors(debug):
        from attncli.core.result import CONTEXT_STEPS, parse_steps

        show, views = _split_show(show, fmt)
        wanted = parse_steps(show) if show else ([] if views else None)
        if wanted is None and fmt in (Format.csv, Format.npy):
            wanted = ["context"]
        runner = _Runner(
            weights, weights_prefix, engine, device,
            context_only=bool(wanted) and not views and set(wanted) <= CONTEXT_STEPS,
            quiet=quiet, mode=mode, d_out=d_out, heads=heads, causal=causal, dropout=dropout,
            scale=scale, qkv_bias=qkv_bias, seed=seed, dtype=dtype,
        )  # fmt: skip
        if batch and fmt is Format.table:
            fmt = Format.jsonl  # a batch is a stream of records: JSON Lines
        sources = [*inputs, weights]
        if output is not None:
            _check_not_input(output, sources)
        if batch or len(inputs) > 1 or fmt is Format.jsonl:
            if save_weights is not None:
                raise ConfigError("--save-weights takes a single input (the weights are shared)")
            failed = _run_many(inputs, runner, batch, fail_fast, fmt, show, views, query,
                               precision, full, output, input_format)  # fmt: skip
            if failed:
                raise typer.Exit(2)
            return
        result = _narrow(runner.run(_load(inputs[0], input_format)), query)
        if save_weights is not None:
            _save_weights(result, save_weights, sources)
        _emit(result, fmt, show, precision, full, output, sources, views)


def _narrow(result: AttentionResult, query: str | None) -> AttentionResult:
    """The result kept to one query's rows when ``--query`` names one."""
    if query is None:
        return result
    from attncli.core.result import find_query

    return result.for_query(find_query(result.tokens, query))


def _run_many(
    inputs: list[str], runner: _Runner, batch: bool, fail_fast: bool, fmt: Format,
    show: str | None, views: list[str], query: str | None, precision: int, full: bool,
    output: Path | None, input_format: InputFormat | None,
) -> int:  # fmt: skip
    """Several results in one process: the files given, or the records of a JSON Lines --batch.

    JSON Lines out (a line per input, in order, ``id`` first), or tables one after another. A bad
    record becomes an error record on stdout and a message on stderr; the others still run
    (unless ``fail_fast``). Returns the number of failures.
    """
    import json

    from attncli.io import writers
    from attncli.io.readers import iter_batch

    if fmt not in (Format.jsonl, Format.table):
        wanted = "jsonl" if batch else "jsonl or table"
        raise ConfigError(f"several results need --format {wanted}, not {fmt.value}")
    if batch and len(inputs) != 1:
        raise ConfigError("--batch reads one JSON Lines source ('-' or a file)")
    _check_precision(precision)

    def records():
        if not batch:
            for source in inputs:
                try:
                    yield source, None, _load(source, input_format)
                except AttncliError as e:
                    yield source, None, e
            return
        source = inputs[0]
        if source == "-":
            yield from ((r, n, e) for n, r, e in iter_batch(sys.stdin.buffer, "<stdin>"))
            return
        from attncli.io.readers import read_bytes

        data = io.BytesIO(read_bytes(Path(source)))
        yield from ((r, n, e) for n, r, e in iter_batch(data, source))

    failures = 0
    with _text_sink(output) as write:
        for record_id, line, item in records():
            first = {"id": record_id} if line is None else {"id": record_id, "line": line}
            try:
                if isinstance(item, AttncliError):
                    raise item
                result = _narrow(runner.run(item), query)
                if fmt is Format.jsonl:
                    steps = result.select_steps(show, _ALL_STEPS)
                    write(writers.to_json(result, steps, first))
                else:
                    write(_table_text(result, show, views, precision, full, f"{record_id}"))
            except AttncliError as e:
                failures += 1
                where = f"line {line}" if line is not None else str(record_id)
                message = str(e) if where in str(e) else f"{where}: {e}"
                sys.stderr.write(f"attn: error: {message}\n")
                if fmt is Format.jsonl:
                    write(json.dumps({**first, "error": message}, ensure_ascii=False) + "\n")
                if fail_fast:
                    break
    return failures


@contextmanager
def _text_sink(output: Path | None) -> Iterator[Callable[[str], None]]:
    """``write(text)``: to stdout, flushed line by line, or into ``output`` written atomically."""
    if output is None:

        def to_stdout(text: str) -> None:
            sys.stdout.write(text)
            sys.stdout.flush()

        yield to_stdout
        return
    from attncli.io.atomic import atomic_writer

    with atomic_writer(output) as f:
        yield lambda text: f.write(text.encode())


def _table_text(
    result: AttentionResult, show: str | None, views: list[str], precision: int, full: bool,
    title: str,
) -> str:  # fmt: skip
    """One result's tables as text (ANSI only when stdout is a colour terminal)."""
    from attncli.render.tables import print_result

    default = _TABLE_STEPS.get(result.config.mode, _ALL_STEPS)
    steps = [] if show == "" else result.select_steps(show, default)
    buf = io.StringIO()
    print_result(result, steps, precision, full, buf, views)
    return f"== {title} ==\n{buf.getvalue()}\n"


@app.command(
    epilog=(
        "[bold]Examples[/bold]\n\n"
        "  attn explain sample_inputs/journey.csv --query journey\n\n"
        "  attn explain sample:journey --mode trainable --d-out 2 --seed 123 --query 1\n\n"
        "  attn explain sample:cat --mode multi-head --heads 2 --causal --query it"
        " --format markdown -o trace.md"
    )
)
def explain(
    input: Input,
    query: Annotated[
        str | None,
        _opt(
            "Output",
            "The token to follow: a token or a 0-based index (default: the first).",
            show_default=False,
        ),
    ] = None,
    mode: ModeOpt = None,
    d_out: DOut = None,
    heads: Heads = None,
    causal: Causal = False,
    dropout: Dropout = 0.0,
    scale: Scale = None,
    qkv_bias: QkvBias = False,
    dtype: DTypeOpt = DType.float32,
    seed: Seed = 123,
    weights: Weights = None,
    weights_prefix: WeightsPrefix = None,
    engine: EngineOpt = Engine.auto,
    device: Device = "auto",
    fmt: Annotated[
        ExplainFormat,
        _opt(
            "Output",
            "terminal: panels; markdown: a document; json: the trace as data.",
            "--format",
            "-f",
        ),
    ] = ExplainFormat.terminal,
    precision: Precision = 4,
    output: Output = None,
    input_format: InputFormatOpt = None,
    debug: Debug = False,
) -> None:
    """Trace one query step by step: each formula, why it exists, the arithmetic on your numbers."""
    with _errors(debug):
        from attncli.core.result import find_query
        from attncli.explain import build_trace

        _check_precision(precision)
        runner = _Runner(
            weights, weights_prefix, engine, device, mode=mode, d_out=d_out, heads=heads,
            causal=causal, dropout=dropout, scale=scale, qkv_bias=qkv_bias, seed=seed, dtype=dtype,
        )  # fmt: skip
        result = runner.run(_load(input, input_format))
        index = 0 if query is None else find_query(result.tokens, query)
        trace = build_trace(result, index, precision)
        if output is not None:
            _check_not_input(output, [input, weights])
        if fmt is ExplainFormat.terminal:
            from attncli.render.explain import print_trace

            _print_or_write(lambda file: print_trace(trace, precision, file), output)
            return
        if fmt is ExplainFormat.markdown:
            from attncli.render.explain import trace_markdown

            text = trace_markdown(trace, precision)
        else:
            text = json.dumps(trace.to_dict(), allow_nan=False, ensure_ascii=False)
        _write_text(text + "\n", output)


@app.command(
    epilog=(
        "[bold]Examples[/bold]\n\n"
        "  attn heatmap sample:cat --causal\n\n"
        "  attn heatmap sample:cat --mode multi-head --heads 2 --stats"
    )
)
def heatmap(
    input: Input,
    stats: Annotated[
        bool, _opt("Output", "Add per-query statistics (top-3, entropy).", "--stats")
    ] = False,
    query: Annotated[
        str | None,
        _opt("Output", "Only this query's row: a token or an index.", show_default=False),
    ] = None,
    mode: ModeOpt = None,
    d_out: DOut = None,
    heads: Heads = None,
    causal: Causal = False,
    dropout: Dropout = 0.0,
    scale: Scale = None,
    qkv_bias: QkvBias = False,
    dtype: DTypeOpt = DType.float32,
    seed: Seed = 123,
    weights: Weights = None,
    weights_prefix: WeightsPrefix = None,
    engine: EngineOpt = Engine.auto,
    device: Device = "auto",
    output: Output = None,
    input_format: InputFormatOpt = None,
    debug: Debug = False,
) -> None:
    """Draw the attention weights in the terminal: coloured cells (shading without colour)."""
    show = "heatmap,stats" if stats else "heatmap"
    compute(
        [input], mode=mode, d_out=d_out, heads=heads, causal=causal, dropout=dropout, scale=scale,
        qkv_bias=qkv_bias, dtype=dtype, seed=seed, weights=weights, weights_prefix=weights_prefix,
        engine=engine, device=device, fmt=Format.table, show=show, query=query, output=output,
        input_format=input_format, debug=debug,
    )  # fmt: skip


@app.command(
    epilog=(
        "[bold]Examples[/bold]\n\n"
        "  attn plot sample:cat --mode multi-head --heads 2 --causal -o weights.png\n\n"
        "  attn plot sample:bank_money sample:bank_river --kind vectors -o bank.svg"
    )
)
def plot(
    inputs: Annotated[
        list[str],
        typer.Argument(
            help="One or more embeddings sources (files, '-', sample:NAME).", show_default=False
        ),
    ],
    output: Annotated[Path, _opt("Output", "The image: .png, .svg or .pdf.", "--output", "-o")],
    kind: Annotated[
        PlotKind,
        _opt("Output", "weights: heatmaps per head; vectors: inputs → contexts in 2-D (PCA)."),
    ] = PlotKind.weights,
    mode: ModeOpt = None,
    d_out: DOut = None,
    heads: Heads = None,
    causal: Causal = False,
    dropout: Dropout = 0.0,
    scale: Scale = None,
    qkv_bias: QkvBias = False,
    dtype: DTypeOpt = DType.float32,
    seed: Seed = 123,
    weights: Weights = None,
    weights_prefix: WeightsPrefix = None,
    engine: EngineOpt = Engine.auto,
    device: Device = "auto",
    input_format: InputFormatOpt = None,
    debug: Debug = False,
) -> None:
    """Save attention as an image (needs matplotlib: pip install "attncli[plot]")."""
    with _errors(debug):
        from attncli.render.plot import save_figure, vectors_figure, weights_figure
        from attncli.render.tables import summary_line

        _check_not_input(output, [*inputs, weights])
        runner = _Runner(
            weights, weights_prefix, engine, device, mode=mode, d_out=d_out, heads=heads,
            causal=causal, dropout=dropout, scale=scale, qkv_bias=qkv_bias, seed=seed, dtype=dtype,
        )  # fmt: skip
        results = [(source, runner.run(_load(source, input_format))) for source in inputs]
        if kind is PlotKind.vectors:
            fig = vectors_figure(results)
        elif len(results) > 1:
            raise ConfigError("--kind weights draws one input; give one, or use --kind vectors")
        else:
            source, result = results[0]
            summary = summary_line(result).plain.removeprefix("attncli · ")
            fig = weights_figure(result, f"{source} · {summary}")
        save_figure(fig, output)


@app.command(
    name="model",
    epilog=(
        "[bold]Examples[/bold]\n\n"
        '  attn model "The cat sat on the mat because it was warm" --layer 3 --head 5\n\n'
        '  attn model "The cat sat on the mat because it was warm" --layer 3 --head 5'
        " --query it --explain\n\n"
        '  attn model "Money bank grows" --embeddings --layer 0 --format json > bank.json\n\n'
        '  attn model "The cat sat on the mat" --layer all --head all\n\n'
        '  attn model --model-dir ~/models/my-bert "..."'
    ),
)
def model_command(
    text: Annotated[
        str, typer.Argument(help="The sentence to run through the model.", show_default=False)
    ],
    model_dir: Annotated[
        Path | None,
        _opt(
            "Model",
            "A Hugging Face model folder (config.json, model.safetensors, tokenizer.json) "
            "[default: the packaged all-MiniLM-L6-v2].",
            "--model-dir",
            show_default=False,
        ),
    ] = None,
    layer: Annotated[str, _opt("Model", "The layer, from 0, or all.")] = "0",
    head: Annotated[
        str | None,
        _opt("Model", "One head, from 0, or all [default: every head].", show_default=False),
    ] = None,
    embeddings: Annotated[
        bool,
        _opt(
            "Model", "Output the hidden states entering --layer (for attn compute).", "--embeddings"
        ),
    ] = False,
    merge: Annotated[
        bool,
        _opt(
            "Model",
            "Merge sub-word tokens into words: mean over a word's query pieces, sum over its "
            "key pieces (rows still sum to 1).",
            "--merge-words",
        ),
    ] = False,
    explain_: Annotated[
        bool, _opt("Output", "Trace --query step by step instead.", "--explain")
    ] = False,
    plot_to: Annotated[
        Path | None,
        _opt(
            "Output",
            "Also save the weights as an image (.png/.svg/.pdf).",
            "--plot",
            show_default=False,
        ),
    ] = None,
    query: Annotated[
        str | None, _opt("Output", "A token or a 0-based index.", show_default=False)
    ] = None,
    fmt: Annotated[
        Format, _opt("Output", "table, json, csv, npy or npz.", "--format", "-f")
    ] = Format.table,
    show: Annotated[
        str | None, _opt("Output", "Steps or views to show (see attn compute).", show_default=False)
    ] = None,
    precision: Precision = 4,
    full: Annotated[bool, _opt("Output", "Show large matrices whole.", "--full")] = False,
    output: Output = None,
    engine: EngineOpt = Engine.auto,
    device: Device = "auto",
    debug: Debug = False,
) -> None:
    """Attention of a real pretrained transformer (BERT or GPT-2 family) on a sentence, offline."""
    with _errors(debug):
        from attncli.model import load_model

        model = load_model(model_dir)
        enc = model.encode(text)
        run = {"engine": engine.value, "device": device}
        layers = range(model.n_layers) if layer == "all" else [_index(layer, "--layer")]
        stack = model.forward(enc.ids, enc.tokens, max(layers), **run)
        if output is not None:
            _check_not_input(output, [model_dir])
        if merge and (embeddings or explain_ or layer == "all" or head == "all"):
            raise ConfigError(
                "--merge-words shows the weights of one layer (not with --embeddings, "
                "--explain or all)"
            )
        if embeddings:
            _emit_embeddings(enc.tokens, stack[layers[-1]][0], fmt, precision, output)
            return
        if layer == "all" or head == "all":
            _emit_summary(model, stack, layers, enc.tokens, query, fmt, output)
            return
        result = stack[layers[0]][1]
        if head is not None:
            attn_in = result.steps["inputs"]
            result = model.head(attn_in, enc.tokens, layers[0], _index(head, "--head"), **run)
        folder = model.folder
        source = folder.parent.name if folder.name == "model" else folder.name
        label = f"{source} layer {layers[0]}" + (f" head {head}" if head is not None else "")
        result = replace(result, weights_source=label)
        if merge:
            from attncli.model.words import merge_words

            result = merge_words(result, enc.word_of, enc.words)
        if plot_to is not None:
            from attncli.render.plot import save_figure, weights_figure

            save_figure(weights_figure(_narrow(result, query), f'"{text}" · {label}'), plot_to)
        if explain_:
            from attncli.core.result import find_query
            from attncli.explain import build_trace
            from attncli.render.explain import print_trace

            index = 0 if query is None else find_query(result.tokens, query)
            trace = build_trace(result, index, precision)
            _print_or_write(lambda file: print_trace(trace, precision, file), output)
            return
        show, views = _split_show(show, fmt)
        _emit(_narrow(result, query), fmt, show, precision, full, output, [model_dir], views)


def _index(value: str, option: str) -> int:
    try:
        return int(value)
    except ValueError:
        raise ConfigError(f"{option} {value!r}: give a number from 0, or all") from None


def _emit_embeddings(tokens, hidden, fmt: Format, precision: int, output: Path | None) -> None:
    """Hidden states as embeddings attn compute reads back: JSON {tokens, embeddings}, CSV, NPY."""
    from attncli.io import writers

    hidden = np.asarray(hidden, dtype=np.float32)
    if fmt is Format.npy:
        import io as _io

        buf = _io.BytesIO()
        np.save(buf, hidden)
        data = buf.getvalue()
    elif fmt is Format.csv:
        data = writers.embeddings_csv(tokens, hidden).encode()
    elif fmt in (Format.json, Format.jsonl):
        data = writers.embeddings_json(tokens, hidden).encode()
    else:
        raise ConfigError("--embeddings writes json, csv or npy (to feed attn compute)")
    _write_bytes(data, output, binary=fmt is Format.npy)


def _emit_summary(model, stack, layers, tokens, query, fmt: Format, output: Path | None) -> None:
    """Per layer and head: mean entropy over queries, the most attended token, and the query's
    favourite when --query is given."""
    from attncli.core.result import find_query
    from attncli.core.stats import row_stats

    q = None if query is None else find_query(tokens, query)
    rows = []
    for i in layers:
        weights = stack[i][1].weights
        for h, w in enumerate(weights):
            visible = [j + 1 if model.causal else len(tokens) for j in range(len(tokens))]
            stats = [row_stats(w[r], 1, visible[r]) for r in range(len(tokens))]
            row = {
                "layer": i, "head": h,
                "mean_entropy": float(np.mean([s.entropy for s in stats])),
                "most_attended": tokens[int(np.argmax(w.sum(axis=0)))],
            }  # fmt: skip
            if q is not None:
                row["query_top"] = tokens[stats[q].top[0]]
                row["query_top_weight"] = stats[q].top_weights[0]
            rows.append(row)
    if fmt in (Format.json, Format.jsonl):
        import json

        text = json.dumps({"tokens": list(tokens), "heads": rows}) + "\n"
        _write_bytes(text.encode(), output, binary=False)
        return
    if fmt is not Format.table:
        raise ConfigError("--layer all / --head all write a table or json")
    from attncli.render.heatmap import summary_table

    _print_or_write(lambda file: summary_table(rows, query is not None, file), output)


def _write_bytes(data: bytes, output: Path | None, binary: bool) -> None:
    from attncli.io.atomic import write_atomic

    if output is not None:
        write_atomic(output, data)
    elif binary and sys.stdout.isatty():
        raise OutputError("binary output; refusing to print it to a terminal (use -o FILE)")
    else:
        sys.stdout.buffer.write(data)
        sys.stdout.flush()


def _check_precision(precision: int) -> None:
    if not 0 <= precision <= 16:
        raise ConfigError(f"--precision must be between 0 and 16, got {precision}")


def _print_or_write(printer: Callable[[IO[str] | None], None], output: Path | None) -> None:
    """Run a rich printer on stdout, or into a file written atomically."""
    if output is None:
        printer(None)
        return
    buf = io.StringIO()
    printer(buf)
    _write_text(buf.getvalue(), output)


def _write_text(text: str, output: Path | None) -> None:
    from attncli.io.atomic import write_atomic

    if output is None:
        sys.stdout.write(text)
        sys.stdout.flush()
    else:
        write_atomic(output, text.encode())


def _save_weights(result: AttentionResult, path: Path, inputs: list) -> None:
    from attncli.io.weights import save_weights

    if result.parameters is None:
        raise OutputError("--save-weights: simple mode has no parameters to save")
    _check_not_input(path, inputs)
    c = result.config
    named = result.parameters.named(linear=c.mode != "trainable")
    save_weights(path, named, {"mode": c.mode, "heads": str(c.heads)})


def _split_show(show: str | None, fmt: Format) -> tuple[str | None, list[str]]:
    """``--show`` as (the steps part, the terminal views heatmap/stats); "" means no steps."""
    if show is None:
        return None, []
    parts = [p.strip() for p in show.split(",")]
    views = [p for p in parts if p in VIEWS]
    if views and fmt is not Format.table:
        raise ConfigError(f"--show {views[0]} is a terminal view; use --format table (the default)")
    return ",".join(p for p in parts if p not in VIEWS), views


def _emit(
    result: AttentionResult, fmt: Format, show: str | None, precision: int, full: bool,
    output: Path | None, inputs: list, views: Sequence[str] = (),
) -> None:  # fmt: skip
    from attncli.io import writers
    from attncli.io.atomic import write_atomic

    if output is not None:
        _check_not_input(output, inputs)
    _check_precision(precision)
    if fmt is Format.table:
        from attncli.render.tables import print_result

        default = _TABLE_STEPS.get(result.config.mode, _ALL_STEPS)
        steps = [] if show == "" else result.select_steps(show, default)

        def printer(file: IO[str] | None) -> None:
            print_result(result, steps, precision, full, file, views)

        _print_or_write(printer, output)
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


@app.command(epilog="[bold]Example[/bold]\n\n  attn info")
def info(debug: Debug = False) -> None:
    """Versions, and the engines and devices this machine offers (imports torch if installed)."""
    with _errors(debug):
        import platform
        from importlib.metadata import PackageNotFoundError, version

        from attncli.engines import GPU_TORCH_TOKENS, torch_installed

        def ver(name: str) -> str:
            try:
                return version(name)
            except PackageNotFoundError:
                return "not installed"

        lines = [f"attncli {__version__}", f"python {platform.python_version()}"]
        lines += [f"{name} {ver(name)}" for name in ("numpy", "typer", "rich", "safetensors")]
        engines = ["numpy on cpu (float32, float64)"]
        if torch_installed():
            import torch

            cuda = torch.version.cuda or "none"
            lines.append(f"torch {torch.__version__} (CUDA build: {cuda})")
            devices = ["cpu"]
            for i in range(torch.cuda.device_count() if torch.cuda.is_available() else 0):
                devices.append(f"cuda:{i} {torch.cuda.get_device_name(i)}")
            mps = getattr(torch.backends, "mps", None)
            if mps is not None and mps.is_available():
                devices.append("mps")
            engines.append(f"torch on {', '.join(devices)} (float32, float64, float16, bfloat16)")
            auto = f"numpy on the CPU; torch on a GPU from {GPU_TORCH_TOKENS} tokens"
        else:
            lines.append('torch not installed (pip install "attncli[torch]")')
            auto = "numpy (torch is not installed)"
        lines += [f"engines: {'; '.join(engines)}", f"--engine auto: {auto}"]
        typer.echo("\n".join(lines))


def main() -> None:
    """Console-script entry point."""
    app(prog_name="attn")
