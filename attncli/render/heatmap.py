"""Attention weights as pictures in the terminal: coloured (or shaded) cells, and per-query stats.

With colour, each cell's background follows a viridis-like scale from 0 to ``vmax`` (1 by default),
one scale for every head, so a head whose largest weight is 0.4 looks paler than one at 1.0;
without colour (pipes, ``NO_COLOR``, ``TERM=dumb``) cells are shading characters, so the picture
still reads. Masked cells show ``×``, not a zero. A map larger than the width (or than
:data:`MAX_ROWS` rows) becomes an overview: each cell pools a block of keys (their sum, so a row
still sums to 1) and of queries (their mean), as the legend says.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
from rich.cells import cell_len
from rich.console import Group
from rich.style import Style
from rich.table import Table
from rich.text import Text

from attncli.core.result import AttentionResult
from attncli.core.stats import row_stats, weight_maps
from attncli.visible import label

VIRIDIS = np.array([(68, 1, 84), (59, 82, 139), (33, 145, 140), (94, 201, 98), (253, 231, 37)])
SHADES = " ·░▒▓█"
CELL = 3  # characters per cell
MAX_ROWS = 40
LABEL_MAX = 12


def _rgb(t: float) -> tuple[int, int, int]:
    """Viridis-like colour of ``t`` in [0, 1]."""
    x = min(max(t, 0.0), 1.0) * (len(VIRIDIS) - 1)
    i = min(int(x), len(VIRIDIS) - 2)
    c = VIRIDIS[i] + (VIRIDIS[i + 1] - VIRIDIS[i]) * (x - i)
    return int(c[0]), int(c[1]), int(c[2])


def _cell(value: float, top: float, masked: bool, color: bool) -> Text:
    if masked:
        return Text(" × ", style="dim")
    t = min(value / top, 1.0) if top > 0 else 0.0
    if color:
        return Text(" " * CELL, style=Style(bgcolor=f"rgb{_rgb(t)}"))
    shade = SHADES[min(int(t * (len(SHADES) - 1) + 0.5), len(SHADES) - 1)]
    return Text(shade * (CELL - 1) + " ")


def masks(result: AttentionResult) -> list[np.ndarray]:
    """Per map of :func:`weight_maps`, which cells a mask hid (causal, sliding window)."""
    rows_at = [result.query] if result.query is not None else list(range(len(result.tokens)))
    hidden = result.hidden_keys(rows_at)
    return [hidden] * len(weight_maps(result))


def pool(a: np.ndarray, rows: int, cols: int, how: str) -> np.ndarray:
    """``a`` in blocks of ``rows`` × ``cols`` cells: the blocks' means over rows, then sums
    ("sum") or all() ("all", for masks) over columns. Ragged last blocks count what they hold."""
    n_r, n_c = a.shape
    r_starts, c_starts = range(0, n_r, rows), range(0, n_c, cols)
    if how == "all":
        blocks = np.logical_and.reduceat(np.logical_and.reduceat(a, r_starts, 0), c_starts, 1)
        return blocks
    sums = np.add.reduceat(np.add.reduceat(a, r_starts, 0), c_starts, 1)
    counts = np.diff([*r_starts, n_r])
    return sums / counts[:, None]


def heatmap(
    result: AttentionResult,
    width: int = 80,
    color: bool = True,
    precision: int = 2,
    vmax: float = 1.0,
) -> Group:
    """One map per head with token-labelled rows, numbered key columns and a legend (keys are
    the memory's tokens in cross-attention: the map is then n × m)."""
    shown = [label(t, LABEL_MAX) for t in result.tokens]
    keys = [label(t, LABEL_MAX) for t in result.keys_tokens]
    n, m = len(shown), len(keys)
    rows_at = [result.query] if result.query is not None else list(range(n))
    idx_w, tok_w = len(str(n - 1)), max(cell_len(t) for t in shown)  # screen columns
    label_w = idx_w + 1 + tok_w
    fit = max(4, (width - label_w - 2) // CELL)
    per_col = math.ceil(m / fit)
    per_row = math.ceil(len(rows_at) / MAX_ROWS)
    cols = range(0, m, per_col)
    rows = [rows_at[r] for r in range(0, len(rows_at), per_row)]
    # a column number every few cells, so that numbers of any width never collide
    every = math.ceil((len(str(m - 1)) + 1) / CELL)
    header = "".join(f"{j:<{CELL * every}}" if c % every == 0 else "" for c, j in enumerate(cols))
    items: list = []
    hidden_maps = masks(result)
    for (title, w), hidden in zip(weight_maps(result), hidden_maps, strict=True):
        items.append(Text(f"\n{title} ({w.shape[0]}×{w.shape[1]})", style="bold cyan"))
        values, off = pool(w, per_row, per_col, "sum"), pool(hidden, per_row, per_col, "all")
        lines = [Text(" " * (label_w + 1) + header, style="dim")]
        for r, i in enumerate(rows):
            pad = " " * (tok_w - cell_len(shown[i]))  # wide (CJK) characters take two
            line = Text(f"{i:>{idx_w}} {shown[i]}{pad} ", style="bold")
            for c in range(len(cols)):
                line.append(_cell(values[r, c], vmax, bool(off[r, c]), color))
            lines.append(line)
        items += lines
    masked = any(h.any() for h in hidden_maps)
    items.append(_legend(vmax, color, precision, masked, result.config.window))
    if per_col > 1 or per_row > 1:
        items.append(
            Text(
                f"overview of {len(rows_at)}×{m}: each cell is the sum over {per_col} keys"
                f" and the mean over {per_row} quer{'y' if per_row == 1 else 'ies'}; rows and "
                "columns are numbered by their first token (--query TOKEN for one row)"
            )
        )
    else:
        key = ", ".join(f"{j} {keys[j]}" for j in cols)
        items.append(Text(f"keys: {key}", style="dim"))
    return Group(*items)


def _legend(top: float, color: bool, precision: int, masked: bool, window: int | None) -> Text:
    steps = 10 if color else len(SHADES)
    text = Text("0 ")
    for s in range(steps):
        text.append(_cell(top * s / (steps - 1), top, False, color))
    text.append(f" {top:.{precision}f}: one scale for every head (--vmax)")
    if window is not None:
        text.append(f";  × masked key: future, or {window}+ back (window {window}: the band)")
    elif masked:
        text.append(";  × masked key")
    return text


def stats_table(result: AttentionResult, k: int = 3, precision: int = 4) -> Group:
    """Per query (and head): the top-k attended tokens, the largest weight and the entropy."""
    tokens, keys = result.tokens, result.keys_tokens
    rows_at = [result.query] if result.query is not None else list(range(len(tokens)))
    visible = (~result.hidden_keys(rows_at)).sum(axis=1)
    items: list = []
    for title, w in weight_maps(result):
        table = Table(title=f"{title}: per-query statistics", title_justify="left",
                      title_style="bold cyan", header_style="bold")  # fmt: skip
        for name, justify in (("query", "left"), (f"top {k}", "left"), ("max", "right"),
                              ("entropy", "right"), ("H / H_max", "right")):  # fmt: skip
            table.add_column(name, justify=justify)
        for r, i in enumerate(rows_at):
            st = row_stats(w[r], k, int(visible[r]))
            pairs = zip(st.top, st.top_weights, strict=True)
            top = ", ".join(f"{label(keys[j], LABEL_MAX)} {v:.2f}" for j, v in pairs)
            ratio = st.entropy / st.max_entropy if st.max_entropy > 0 else 0.0
            table.add_row(Text(label(tokens[i], LABEL_MAX)), Text(top),
                          f"{st.max_weight:.{precision}f}", f"{st.entropy:.{precision}f}",
                          f"{ratio:.2f}")  # fmt: skip
        items.append(table)
    return Group(*items)


def views(
    result: AttentionResult, names: Sequence[str], width: int, color: bool, precision: int,
    vmax: float = 1.0,
):  # fmt: skip
    """The renderables for the view names ``heatmap`` and ``stats``, in order."""
    out = []
    for name in names:
        if name == "heatmap":
            out.append(heatmap(result, width, color, vmax=vmax))
        else:
            out.append(stats_table(result, precision=precision))
    return out


def summary_table(rows: list[dict], with_query: bool, file=None) -> None:
    """Print the per-layer, per-head summary of a model's attention."""
    from attncli.render.tables import make_console

    table = Table(title="attention per layer and head", title_justify="left",
                  title_style="bold cyan", header_style="bold")  # fmt: skip
    columns = ["layer", "head", "mean entropy", "most attended"]
    columns += ["query's top token", "its weight"] if with_query else []
    for name in columns:
        table.add_column(name, justify="right" if name in ("layer", "head") else "left")
    for r in rows:
        cells = [str(r["layer"]), str(r["head"]), f"{r['mean_entropy']:.3f}",
                 Text(label(r["most_attended"], LABEL_MAX))]  # fmt: skip
        if with_query:
            cells += [Text(label(r["query_top"], LABEL_MAX)), f"{r['query_top_weight']:.3f}"]
        table.add_row(*cells)
    make_console(file, width=None if file is None else 120).print(table)
