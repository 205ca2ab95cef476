"""Attention weights as pictures in the terminal: coloured (or shaded) cells, and per-query stats.

With colour, each cell's background follows a viridis-like scale from 0 to the largest weight;
without (pipes, ``NO_COLOR``, ``TERM=dumb``) cells are shading characters, so the picture still
reads. Masked cells show ``×``, not a zero. Large maps keep their first and last rows/columns
around ``…`` to fit the width.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from rich.console import Group
from rich.style import Style
from rich.table import Table
from rich.text import Text

from attncli.core.result import AttentionResult
from attncli.core.stats import row_stats, weight_maps
from attncli.elide import elide
from attncli.render.text import literal

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
    t = value / top if top > 0 else 0.0
    if color:
        return Text(" " * CELL, style=Style(bgcolor=f"rgb{_rgb(t)}"))
    shade = SHADES[min(int(t * (len(SHADES) - 1) + 0.5), len(SHADES) - 1)]
    return Text(shade * (CELL - 1) + " ")


def heatmap(
    result: AttentionResult, width: int = 80, color: bool = True, precision: int = 2
) -> Group:
    """One map per head with token-labelled rows, numbered key columns and a legend."""
    tokens, keys = [literal(t) for t in result.tokens], [literal(t) for t in result.keys_tokens]
    rows_at = [result.query] if result.query is not None else list(range(len(tokens)))
    hidden = result.hidden_keys(rows_at)
    idx_w, tok_w = len(str(len(tokens) - 1)), min(LABEL_MAX, max(len(t) for t in tokens))
    label_w = idx_w + 1 + tok_w
    fit = max(4, (width - label_w - 2) // CELL)
    col_idx = elide(len(keys), fit if len(keys) <= fit else fit - 1)  # … takes a cell
    items: list = []
    for title, w in weight_maps(result):
        top = float(w.max())
        items.append(Text(f"\n{title} ({w.shape[0]}×{w.shape[1]})", style="bold cyan"))
        header = " " * (label_w + 1) + "".join(
            " … " if j is None else f"{j:>{CELL - 1}} " for j in col_idx
        )
        lines = [Text(header, style="dim")]
        for r in elide(len(rows_at), MAX_ROWS):
            if r is None:
                lines.append(Text(" " * label_w + " ⋮"))
                continue
            i = rows_at[r]
            line = Text(f"{i:>{idx_w}} {tokens[i][:LABEL_MAX]:<{tok_w}} ", style="bold")
            for j in col_idx:
                masked = j is not None and bool(hidden[r, j])
                line.append(" … " if j is None else _cell(w[r, j], top, masked, color))
            lines.append(line)
        items += lines
        items.append(_legend(top, color, precision, result.config.causal, result.config.window))
    if len(col_idx) < len(keys):
        items.append(Text(f"columns: key token numbers; {len(keys)} tokens, middle elided"))
    key = ", ".join(f"{j} {keys[j]}" for j in col_idx if j is not None)
    items.append(Text(f"keys: {key}", style="dim"))
    return Group(*items)


def _legend(
    top: float, color: bool, precision: int, causal: bool, window: int | None = None
) -> Text:
    steps = 10 if color else len(SHADES)
    text = Text("0 ")
    for s in range(steps):
        text.append(_cell(top * s / (steps - 1), top, False, color))
    text.append(f" {top:.{precision}f} = largest weight")
    if window is not None:
        text.append(f";  × masked key: future, or {window}+ back (window {window}: the band)")
    elif causal:
        text.append(";  × masked future key")
    return text


def stats_table(result: AttentionResult, k: int = 3, precision: int = 4) -> Group:
    """Per query (and head): the top-k attended tokens, the largest weight and the entropy."""
    tokens, keys = [literal(t) for t in result.tokens], [literal(t) for t in result.keys_tokens]
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
            top = ", ".join(f"{keys[j]} {v:.2f}" for j, v in pairs)
            ratio = st.entropy / st.max_entropy if st.max_entropy > 0 else 0.0
            table.add_row(Text(tokens[i]), Text(top), f"{st.max_weight:.{precision}f}",
                          f"{st.entropy:.{precision}f}", f"{ratio:.2f}")  # fmt: skip
        items.append(table)
    return Group(*items)


def views(result: AttentionResult, names: Sequence[str], width: int, color: bool, precision: int):
    """The renderables for the view names ``heatmap`` and ``stats``, in order."""
    out = []
    for name in names:
        if name == "heatmap":
            out.append(heatmap(result, width, color))
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
        cells = [str(r["layer"]), str(r["head"]), f"{r['mean_entropy']:.3f}", r["most_attended"]]
        if with_query:
            cells += [r["query_top"], f"{r['query_top_weight']:.3f}"]
        table.add_row(*cells)
    make_console(file, width=None if file is None else 120).print(table)
