"""Rich tables of every step of an AttentionResult, token labels on rows and columns."""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import IO

import numpy as np
from rich.console import Console, Group
from rich.table import Table
from rich.text import Text

from attncli.core.config import AttentionConfig
from attncli.core.kvcache import CacheRun
from attncli.core.result import KEY_COLUMNS, STEPS, AttentionResult
from attncli.elide import elide
from attncli.visible import label, visible

MAX_ROWS = 12  # rows shown before the middle is elided (unless full)
LABEL_MAX = 12  # row labels longer than this are cut with …
FULL_LABEL_MAX = 1000  # with --full (a megabyte token is still cut)
MIN_WIDTH = 40  # a narrower (or zero) COLUMNS is taken as this


class _Console(Console):
    def on_broken_pipe(self) -> None:
        """rich exits 1 when the reader leaves (``| head``); the CLI ends quietly with 0."""
        self.quiet = True
        raise BrokenPipeError


def make_console(file: IO[str] | None = None, width: int | None = None) -> Console:
    """A console that writes no ANSI codes to pipes and files (rich's own detection) nor, when
    ``NO_COLOR`` is set, to a terminal: no colour and no bold/dim either. Strings are never read
    as markup or emoji codes: text from the data reaches it as :class:`Text` made
    :func:`~attncli.visible.visible`."""
    plain = bool(os.environ.get("NO_COLOR"))
    if file is None:  # stdout, written whole or an error (a full disk truncates nothing)
        from attncli.io.stdout import StdoutText

        file = StdoutText()
    console = _Console(
        file=file,
        highlight=False,
        markup=False,
        emoji=False,
        width=width,
        soft_wrap=False,
        color_system=None if plain else "auto",
    )
    console.width = max(console.width, MIN_WIDTH)
    return console


def print_result(
    result: AttentionResult,
    steps: Sequence[str],
    precision: int = 4,
    full: bool = False,
    file: IO[str] | None = None,
    views: Sequence[str] = (),
    vmax: float = 1.0,
    cache: CacheRun | None = None,
) -> None:
    """Print :func:`render_result` to ``file`` (default stdout; 120 columns for a non-tty file),
    then the ``views`` ("heatmap", "stats"), coloured only where the console has colour.

    With ``full`` the console widens to the widest table, so lines run on rather than numbers
    being cut.
    """
    from attncli.render.heatmap import views as render_views

    console = make_console(file, width=None if file is None else 120)
    group = render_result(result, steps, precision, full, console.width)
    if full:
        wide = console.options.update_width(1 << 20)
        console.width = max(console.width, console.measure(group, options=wide).maximum)
    console.print(group)
    color = console.color_system is not None
    for view in render_views(result, views, console.width, color, precision, vmax):
        console.print(view)
    if cache is not None:
        console.print(cache_table(result, cache))


def cache_table(result: AttentionResult, cache: CacheRun) -> Table:
    """Per generated token: what the KV cache holds, its bytes, and the check against the full
    computation."""
    verdict = "equals" if cache.equal else "DIFFERS FROM"
    table = Table(
        title=f"kv cache: token by token, the result {verdict} the full computation "
        f"(cache stores {cache.stores})",
        title_justify="left", title_style="bold cyan", header_style="bold",
    )  # fmt: skip
    for name in ("token", "cached tokens", "numbers each", "bytes", "max |Δ| vs full"):
        table.add_column(name, justify="left" if name == "token" else "right")
    for step in cache.steps:
        table.add_row(
            Text(label(result.tokens[step.token], LABEL_MAX)), str(step.entries), str(step.width),
            f"{step.bytes:,}",
            f"{step.max_abs_diff:.2e}",
        )  # fmt: skip
    return table


def summary_line(result: AttentionResult, width: int | None = None) -> Text:
    """``attncli · mode … · engine numpy on cpu``; with a ``width``, broken into lines between
    its parts (never inside one, so "engine numpy on cpu" stays whole)."""
    lines = pack_phrases(["attncli", *summary_parts(result)], width, indent="  ")
    return Text("\n".join(lines), style="bold")


def pack_phrases(parts: Sequence[str], width: int | None, indent: str = "") -> list[str]:
    """``parts`` joined by " · " into lines of at most ``width`` characters (no limit: one
    line), breaking only between parts; continuation lines start with ``indent``."""
    lines = [parts[0]]
    for part in parts[1:]:
        if width is not None and len(lines[-1]) + 3 + len(part) > width:
            lines.append(indent + part)
        else:
            lines[-1] += " · " + part
    return lines


def model_parts(info: dict[str, object]) -> list[str]:
    """attn model's layer (its layer and head are in the weights' source): family, the key/value
    head a grouped-query head reads, window, positions."""
    parts = [f"family {visible(str(info['family']))}"]
    if "kv_head" in info:
        parts.append(f"key/value head {info['kv_head']}")
    if "kv_head_of" in info:  # query heads h0–h1 read key/value head g, ...
        of = list(info["kv_head_of"])
        spans = [(of.index(g), len(of) - 1 - of[::-1].index(g), g) for g in sorted(set(of))]
        parts.append(", ".join(f"heads {a}–{b} read key/value head {g}" for a, b, g in spans))
    return [*parts, f"{info['window']} attention", f"positions {info['positions']}"]


def summary_parts(result: AttentionResult) -> list[str]:
    """The options that shaped ``result``, one short phrase each."""
    c = result.config
    parts = [] if result.model_info is None else model_parts(result.model_info)
    parts += [
        f"mode {c.mode}",
        f"{len(result.tokens)} tokens",
        f"d_in {result.d_in}" + (f" → d_out {c.d_out}" if c.mode != "simple" else ""),
    ]
    if c.spec().split:
        parts.append(f"{c.heads} head{'s' if c.heads != 1 else ''} × {c.head_dim}")
    parts += [
        f"cross-attention to {len(result.keys_tokens)} memory tokens"
        if part == "cross-attention"
        else part
        for part in c.variant_parts()
    ]
    parts.append(f"scale 1/√{c.scale_by:g}" if c.scale else "no scaling")
    if c.causal:
        parts.append("causal")
    if c.dropout:
        parts.append(f"dropout {c.dropout}")
    if result.weights_source is not None:
        parts.append(f"weights from {visible(result.weights_source)}")
    elif c.mode != "simple":
        parts.append(f"seed {c.seed}")
    parts += [c.dtype, f"engine {result.engine} on {result.device}"]
    return parts


def render_result(
    result: AttentionResult,
    steps: Sequence[str],
    precision: int = 4,
    full: bool = False,
    width: int = 80,
) -> Group:
    """The summary line, then a heading and a table per step (per head for (H, n, n) steps).

    Unless ``full``, large matrices keep their first and last rows/columns around ``…`` so that
    each table fits ``width`` columns; numbers are never cut.
    """
    items: list[Text | Table] = [summary_line(result, width)]
    rows_at = [result.query] if result.query is not None else list(range(len(result.tokens)))
    hidden = result.hidden_keys(rows_at)  # future keys, and keys outside a window
    for step in steps:
        arr = result.steps[step]
        masked = hidden if step in KEY_COLUMNS and hidden.any() else None
        for h, block in enumerate(arr if arr.ndim == 3 else [arr]):
            head = f" · head {h}" if arr.ndim == 3 else ""
            items.append(
                Text.assemble(
                    (f"\n{step}{head}", "bold cyan"),
                    f" {_shape(block.shape)}  ",
                    (describe(step, result.config), "dim"),
                )
            )
            items.append(
                matrix_table(
                    block,
                    result.row_tokens(step),
                    result.column_labels(step),
                    precision,
                    None if full else width,
                    highlight_max=step == "weights",
                    masked=masked,
                )
            )
    return Group(*items)


def matrix_table(
    matrix: np.ndarray,
    rows: Sequence[str],
    columns: Sequence[str],
    precision: int = 4,
    width: int | None = 80,
    highlight_max: bool = False,
    masked: np.ndarray | None = None,
) -> Table:
    """One labelled matrix. With a ``width``, the middle rows/columns are elided to fit it.

    ``masked`` (same shape, bool) dims cells a causal or window mask hid; ``highlight_max``
    bolds each row's largest value.
    """
    cells = [[_format(v, precision) for v in row] for row in matrix]
    cell_w = max(len(c) for row in cells for c in row)
    limit = LABEL_MAX if width is not None else FULL_LABEL_MAX  # --full: labels whole too
    headers = [label(c, limit) for c in columns]
    if width is None:
        row_idx, col_idx = elide(len(rows), None), elide(len(columns), None)
    else:
        label_w = max(len(label(r, limit)) for r in rows)
        room = width - 1 - (label_w + 3)  # a table: 1 border + (width + 3) per column
        row_idx = elide(len(rows), MAX_ROWS)
        col_idx = fit_columns([max(cell_w, len(h)) + 3 for h in headers], room)
    table = Table(header_style="bold")
    table.add_column("", style="bold", no_wrap=True)
    for j in col_idx:
        header = Text("…" if j is None else headers[j])
        width_j = 1 if j is None else cell_w
        table.add_column(header, justify="right", min_width=width_j, no_wrap=True)
    for i in row_idx:
        if i is None:
            table.add_row("⋮", *("⋮" for _ in col_idx))
            continue
        best = int(np.argmax(matrix[i])) if highlight_max else -1
        styled = []
        for j in col_idx:
            if j is None:
                styled.append(Text("…"))
                continue
            style = (
                "dim"
                if masked is not None and masked[i, j]
                else ("bold green" if j == best else "")
            )
            styled.append(Text(cells[i][j], style=style))
        table.add_row(Text(label(rows[i], limit)), *styled)
    return table


def fit_columns(widths: Sequence[int], room: int) -> list[int | None]:
    """The columns (by index, ``None`` for one ``…`` column of width 4) that fit ``room``
    characters: all of them when they fit, else as many of the first and last as fit."""
    if sum(widths) <= room:
        return list(range(len(widths)))
    n, best = len(widths), 1
    for k in range(1, n):
        head, tail = (k + 1) // 2, k // 2
        if sum(widths[:head]) + sum(widths[n - tail :]) + 4 > room:
            break
        best = k
    return elide(n, best)


def describe(step: str, config: AttentionConfig) -> str:
    """What ``step`` holds in this run (simple mode has no Q, K; dropout rescales weights)."""
    if config.mode == "simple" and step in ("scores", "scaled_scores"):
        return STEPS[step].replace("Q·Kᵀ", "X·Xᵀ")
    if step == "weights" and config.dropout:
        factor = 1 / (1 - config.dropout) if config.dropout < 1 else float("inf")
        return f"weights after dropout: the kept ones rescaled by 1/(1−p) = {factor:g}"
    return STEPS[step]


def _format(value: float, precision: int) -> str:
    return "-inf" if value == -np.inf else f"{value:.{precision}f}"


def _shape(shape: tuple[int, ...]) -> str:
    return "(" + "×".join(map(str, shape)) + ")"
