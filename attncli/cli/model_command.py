"""attn model: the attention of a real pretrained transformer on a sentence."""

from __future__ import annotations

import sys
from collections.abc import Iterable
from dataclasses import replace
from pathlib import Path
from typing import Annotated

import numpy as np
import typer

from attncli.cli.app import (
    Cmap,
    Cols,
    Debug,
    Device,
    Dpi,
    Engine,
    EngineOpt,
    Format,
    ModelFormat,
    Output,
    PlotStep,
    PlotTitle,
    Precision,
    StepOpt,
    Values,
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
    check_vmax,
    emit,
    print_or_write,
    split_show,
    write_bytes,
    write_page,
    write_trace,
)
from attncli.cli.run import narrow
from attncli.core.result import AttentionResult
from attncli.errors import ConfigError


@app.command(
    name="model",
    epilog=(
        "[bold]Examples[/bold]\n\n"
        '  attn model "The cat sat on the mat because it was warm" --layer 3 --head 5\n\n'
        '  attn model "The cat sat on the mat because it was warm" --layer 3 --head 5'
        " --query it --explain\n\n"
        '  attn model "Money bank grows" --embeddings --layer 0 --format json > bank.json\n\n'
        '  attn model "The cat sat on the mat" --layer all --head all\n\n'
        '  attn model --model-dir ~/models/my-bert "..."\n\n'
        "  attn model --model-dir ~/models/Qwen3-0.6B --batch sentences.txt --layer 3 --head 5"
        " > weights.jsonl"
    ),
)
def model_command(
    text: Annotated[
        str | None,
        typer.Argument(
            help="The sentence to run through the model ('-': standard input).", show_default=False
        ),
    ] = None,
    batch: Annotated[
        str | None,
        opt(
            "Input",
            "A file of sentences, one per line ('-': standard input): a JSON line per sentence "
            "with the chosen layer/head's weights, or the per-head summary with --layer all "
            "--head all (streaming).",
            "--batch",
            show_default=False,
        ),
    ] = None,
    quiet: Annotated[bool, opt("Output", "No progress bar on stderr.", "--quiet", "-q")] = False,
    model_dir: Annotated[
        Path | None,
        opt(
            "Model",
            "A Hugging Face model folder (config.json, model.safetensors, tokenizer.json) "
            "[default: the packaged all-MiniLM-L6-v2].",
            "--model-dir",
            show_default=False,
        ),
    ] = None,
    layer: Annotated[str, opt("Model", "The layer, from 0, or all.")] = "0",
    head: Annotated[
        str | None,
        opt("Model", "One head, from 0, or all [default: every head].", show_default=False),
    ] = None,
    embeddings: Annotated[
        bool,
        opt(
            "Model", "Output the hidden states entering --layer (for attn compute).", "--embeddings"
        ),
    ] = False,
    merge: Annotated[
        bool,
        opt(
            "Model",
            "Merge sub-word tokens into words: mean over a word's query pieces, sum over its "
            "key pieces (rows still sum to 1).",
            "--merge-words",
        ),
    ] = False,
    explain_: Annotated[
        bool, opt("Output", "Trace --query step by step instead.", "--explain")
    ] = False,
    plot_to: Annotated[
        Path | None,
        opt(
            "Output",
            "Also save the weights as an image (.png/.svg/.pdf).",
            "--plot",
            show_default=False,
        ),
    ] = None,
    query: Annotated[
        str | None, opt("Output", "A token or a 0-based index.", show_default=False)
    ] = None,
    fmt: Annotated[
        ModelFormat,
        opt(
            "Output",
            "table, json, csv, npy, npz, html (a page; with --layer all --head all the "
            "layers × heads grid), or markdown (--explain).",
            "--format",
            "-f",
        ),
    ] = ModelFormat.table,
    show: Annotated[
        str | None,
        opt(
            "Output",
            "Steps or views to show (see attn compute) [default: heatmap, and stats with --head].",
            show_default=False,
        ),
    ] = None,
    precision: Precision = 4,
    full: Annotated[bool, opt("Output", "Show large matrices whole.", "--full")] = False,
    vmax: Annotated[
        float | None,
        opt(
            "Output",
            "Top of the colour scale [default: 1 in the terminal, the largest weight in images].",
            "--vmax",
            show_default=False,
        ),
    ] = None,
    step: StepOpt = PlotStep.weights,
    title: PlotTitle = None,
    cols: Cols = None,
    cmap: Cmap = "viridis",
    values: Values = True,
    dpi: Dpi = 150,
    output: Output = None,
    engine: EngineOpt = Engine.auto,
    device: Device = "auto",
    debug: Debug = False,
    ctx: typer.Context = None,
) -> None:
    """Attention of a real pretrained transformer (BERT, GPT-2, or a Llama, Mistral, Qwen2/3,
    Gemma 2/3 or OLMo 2 decoder) on a sentence, offline."""
    with errors_to_exit(debug):
        from attncli.model import load_model

        if vmax is not None:
            check_vmax(vmax)
        if (text is None) == (batch is None):
            raise ConfigError("give a sentence, or --batch FILE of sentences (one per line)")
        model = load_model(model_dir)
        if batch is not None:
            if explain_ or embeddings or merge or plot_to is not None:
                raise ConfigError("--batch writes weights or the per-head summary, not with "
                                  "--explain, --embeddings, --merge-words or --plot")  # fmt: skip
            _batch(model, batch, layer, head, query, fmt, show, output, quiet, engine, device)
            return
        sources = [model.folder, "-" if text == "-" else None]  # every file the run reads
        check_distinct({"--output": output, "--plot": plot_to})
        for path in (output, plot_to):
            if path is not None:
                check_not_input(path, sources)
        if text == "-":  # the sentence from standard input, for pipelines
            text = sys.stdin.read().strip()
        if merge and (embeddings or explain_ or layer == "all" or head == "all"):
            raise ConfigError(
                "--merge-words shows the weights of one layer (not with --embeddings, "
                "--explain or all)"
            )
        if embeddings and plot_to is not None:
            raise ConfigError("--plot draws attention weights; --embeddings writes hidden "
                              "states, which it cannot draw: use one of them")  # fmt: skip
        enc = model.encode(text)
        run = {"engine": engine.value, "device": device}
        layers = range(model.n_layers) if layer == "all" else [_index(layer, "--layer")]
        stack = model.forward(enc.ids, enc.tokens, max(layers), **run)
        said = say_notes((stack[i][1] for i in layers), set())
        if embeddings:
            _emit_embeddings(enc.tokens, stack[layers[-1]][0], _not_markdown(fmt), output)
            return
        if layer == "all" or head == "all":
            heads = range(model.n_heads) if head in (None, "all") else [_index(head, "--head")]
            if plot_to is not None:
                from attncli.render.plot import grid_figure, save_figure

                maps = [(i, h, stack[i][1].weights[h]) for i in layers for h in heads]
                fig = grid_figure(maps, list(enc.tokens), model.causal, title or f'"{text}"', cmap)
                save_figure(fig, plot_to, dpi)
            _emit_summary(model, stack, layers, heads, enc.tokens, query, fmt, output, show,
                          command_line(ctx))  # fmt: skip
            return
        result = stack[layers[0]][1]
        if head is not None:
            attn_in = result.steps["inputs"]
            result = model.head(attn_in, enc.tokens, layers[0], _index(head, "--head"), **run)
            say_notes([result], said)
        label = f"{_source(model)} layer {layers[0]}"
        label += f" head {head}" if head is not None else ""
        info = model.layer_info(layers[0], len(enc.tokens), None if head is None else int(head))
        result = replace(result, weights_source=label, model_info=info)
        if merge:
            from attncli.model.words import merge_words

            result = merge_words(result, enc.word_of, enc.words)
        if plot_to is not None:
            from attncli.core.result import find_query
            from attncli.render.plot import save_figure, weights_figure

            row = None if query is None else find_query(result.tokens, query)
            style = plot_style(step, cols, cmap, vmax, values, row, title)
            save_figure(weights_figure(result, f'"{text}"', style), plot_to, dpi)
        if explain_:
            from attncli.core.result import find_query
            from attncli.explain import build_trace

            index = 0 if query is None else find_query(result.tokens, query)
            trace = build_trace(result, index, precision)
            if fmt is ModelFormat.html:
                from attncli.render.html import explain_page

                page = explain_page(trace, result, command_line(ctx), precision, layers[0])
                write_page(page, output)
                return
            write_trace(trace, fmt.value, precision, output)
            return
        fmt = _not_markdown(fmt)
        if show is None and fmt is Format.table:
            # what a person came for: the chosen head(s) as pictures; matrices via --show
            show = "heatmap,stats" if head is not None else "heatmap"
        show, views = split_show(show, fmt)
        emit(
            narrow(result, query), fmt, show, precision, full, output, sources, views,
            vmax or 1.0, command_line(ctx), layers[0],
        )  # fmt: skip


def _batch(model, source, layer, head, query, fmt, show, output, quiet, engine, device) -> None:
    """attn model --batch: a JSON line per sentence; exit 2 when a line failed."""
    from attncli.cli.model_batch import run_batch

    if fmt not in (ModelFormat.table, ModelFormat.json, ModelFormat.jsonl):
        raise ConfigError(f"--batch writes JSON Lines, not --format {fmt.value}")
    sources = [model.folder, None if source == "-" else Path(source)]
    if output is not None:
        check_not_input(output, sources)
    layers = list(range(model.n_layers)) if layer == "all" else [_index(layer, "--layer")]
    for i in layers:
        model._check_layer(i)
    summary = layer == "all" or head == "all"
    if query is not None and not summary:
        raise ConfigError("--query with --batch picks each sentence's query in the per-head "
                          "summary: add --layer all --head all")  # fmt: skip
    heads = None
    one = None
    if summary:
        heads = range(model.n_heads) if head in (None, "all") else [_index(head, "--head")]
        heads = list(heads)
    elif head is not None:
        one = _index(head, "--head")
        if not 0 <= one < model.n_heads:
            raise ConfigError(f"--head {one}: the model has heads 0–{model.n_heads - 1}")
    with_weights = show is not None and "weights" in show.split(",")
    run = {"engine": engine.value, "device": device}
    failed = run_batch(model, source, layers, heads, one, query, with_weights, output, quiet, run)
    if failed:
        raise typer.Exit(2)


def _source(model) -> str:
    """The model's name: its folder's (or, for a packaged model/ folder, its package's)."""
    folder = model.folder
    return folder.parent.name if folder.name == "model" else folder.name


def _not_markdown(fmt: ModelFormat) -> Format:
    if fmt is ModelFormat.markdown:
        raise ConfigError("--format markdown writes the --explain trace; add --explain")
    return Format(fmt.value)


def _index(value: str, option: str) -> int:
    try:
        return int(value)
    except ValueError:
        raise ConfigError(f"{option} {value!r}: give a number from 0, or all") from None


def _emit_embeddings(tokens, hidden, fmt: Format, output: Path | None) -> None:
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
    write_bytes(data, output, binary=fmt is Format.npy)


def _emit_summary(
    model,
    stack,
    layers,
    heads,
    tokens,
    query,
    fmt,
    output: Path | None,
    show: str | None,
    command: str,
) -> None:
    """Per layer and head: mean entropy over queries, the most attended token, and the query's
    favourite when --query is given. ``--format npz`` writes the weights themselves as one
    (layers, heads, n, n) array; JSON adds them with ``--show weights``; html draws the
    layers × heads grid."""
    from attncli.core.result import find_query

    q = None if query is None else find_query(tokens, query)
    if fmt is ModelFormat.npz:
        import io

        weights = np.stack([stack[i][1].weights[list(heads)] for i in layers])
        buf = io.BytesIO()
        np.savez(buf, weights=weights, tokens=np.array(tokens, dtype=str),
                 layers=np.array(list(layers)), heads=np.array(list(heads)))  # fmt: skip
        write_bytes(buf.getvalue(), output, binary=True)
        return
    with_weights = show is not None and "weights" in show.split(",")
    rows = summary_rows(model, stack, layers, heads, tokens, q, with_weights)
    import json

    text = json.dumps({"tokens": list(tokens), "heads": rows}) + "\n"
    if fmt in (ModelFormat.json, ModelFormat.jsonl):
        write_bytes(text.encode(), output, binary=False)
        return
    if fmt is ModelFormat.html:
        from attncli.render.html import model_page

        weights = np.stack([stack[i][1].weights[list(heads)] for i in layers])
        header = (
            f"attncli · model {_source(model)} ({model.arch}) · {len(tokens)} tokens · "
            f"{len(layers)} layers × {len(heads)} heads" + (" · causal" if model.causal else "")
        )
        page = model_page(text, weights, list(layers), list(heads), model.causal, header, command)
        write_page(page, output)
        return
    if fmt is not ModelFormat.table:
        raise ConfigError("--layer all / --head all write a table, json, npz or html")
    from attncli.render.heatmap import summary_table

    print_or_write(lambda file: summary_table(rows, query is not None, file), output)


def summary_rows(model, stack, layers, heads, tokens, q: int | None, with_weights: bool) -> list:
    """Per layer and head: mean entropy over queries, the most attended token, the key/value head
    and window (decoders), query ``q``'s favourite, and the weights when asked for."""
    from attncli.core.stats import row_stats

    rows = []
    for i in layers:
        for h in heads:
            w = stack[i][1].weights[h]
            hidden = stack[i][1].hidden_keys(list(range(len(tokens))))
            visible = (~hidden).sum(axis=1)
            stats = [row_stats(w[r], 1, int(visible[r])) for r in range(len(tokens))]
            row = {
                "layer": i, "head": h,
                "mean_entropy": float(np.mean([s.entropy for s in stats])),
                "most_attended": tokens[int(np.argmax(w.sum(axis=0)))],
            }  # fmt: skip
            info = model.layer_info(i, len(tokens), h)
            row.update({k: info[k] for k in ("kv_head", "window") if k in info})
            if q is not None:
                row["query_top"] = tokens[stats[q].top[0]]
                row["query_top_weight"] = stats[q].top_weights[0]
            if with_weights:
                row["weights"] = w.tolist()
            rows.append(row)
    return rows


def say_notes(results: Iterable[AttentionResult], said: set[str]) -> set[str]:
    """Say each result's notes (a widened dtype, how a head was computed) once; return all said."""
    for result in results:
        for note in result.notes:
            if note not in said:
                said.add(note)
                say("note", note)
    return said
