"""The explain trace for people: rich panels for the terminal, and Markdown for documents."""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import IO

import numpy as np
from rich.console import Group
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from attncli.elide import elide
from attncli.explain import Section, Trace, Vector
from attncli.render.tables import make_console, matrix_table
from attncli.visible import label, visible

MARKDOWN_COLS = 16  # result vectors wider than this keep their ends around …


def print_trace(trace: Trace, precision: int = 4, file: IO[str] | None = None) -> None:
    """Print the trace as one panel per section (fits 80 columns; wraps long arithmetic)."""
    console = make_console(file, width=None if file is None else 100)
    p = trace.params
    heading = (
        f"attn explain · query “{label(trace.token)}” (token {trace.query}) · mode {p['mode']} · "
        f"{p['n_tokens']} tokens · d_in {p['d_in']}"
    )
    items: list = [Text(heading, style="bold")]
    for number, section in enumerate(trace.sections, start=1):
        items.append(_panel(number, section, precision, console.width - 4))
    console.print(Group(*items))


def _panel(number: int, section: Section, precision: int, width: int) -> Panel:
    body: list = [Text(section.formula, style="bold"), Text(section.why, style="italic")]
    if section.lines:
        body.append(Text("\n".join(visible(line) for line in section.lines)))
    body += [_vector_table(group, precision, width) for group in _same_labels(section.results)]
    spaced = [item for part in body for item in (Text(), part)][1:]  # a blank line between parts
    return Panel(
        Group(*spaced),
        title=Text(f"{number}. {section.title}"),
        title_align="left",
        expand=False,
    )


def _same_labels(vectors: Sequence[Vector]) -> list[list[Vector]]:
    """Consecutive vectors with the same labels, grouped to share one table."""
    groups: list[list[Vector]] = []
    for vec in vectors:
        if groups and groups[-1][0].labels == vec.labels:
            groups[-1].append(vec)
        else:
            groups.append([vec])
    return groups


def _vector_table(vectors: list[Vector], precision: int, width: int) -> Table:
    """Labelled vectors as the rows of one table, elided to fit ``width`` like compute's tables."""
    matrix = np.array([vec.values for vec in vectors])
    return matrix_table(matrix, [v.name for v in vectors], vectors[0].labels, precision, width)


def _num(value: float, precision: int) -> str:
    return "-∞" if value == float("-inf") else f"{value:.{precision}f}"


def trace_markdown(trace: Trace, precision: int = 4) -> str:
    """The trace as a GitHub-flavoured Markdown document (LaTeX formulas, tables, code blocks)."""
    p = trace.params
    out = [
        f"# attn explain: query “{_md(label(trace.token))}” (token {trace.query})",
        "",
        f"Mode **{p['mode']}**, {p['n_tokens']} tokens, d_in {p['d_in']}, d_out {p['d_out']}"
        + (f", {p['heads']} heads" if p["heads"] > 1 or p["mode"] == "multi-head" else "")
        + (f", {p['kv_heads']} key/value heads" if p["kv_heads"] != p["heads"] else "")
        + (f", latent {p['latent_dim']}" if p["latent_dim"] else "")
        + (", causal" if p["causal"] else "")
        + (f", window {p['window']}" if p["window"] else "")
        + (", QK-norm" if p["qk_norm"] else "")
        + (" over all heads" if p.get("qk_norm_scope") == "all" else "")
        + (f", RoPE base {p['rope_base']:g}" if p["rope"] else "")
        + (", cross-attention" if p["cross"] else "")
        + (
            f", scaled by 1/√{p.get('scale_dim') or p['head_dim']:g}"
            if p["scale"]
            else ", no scaling"
        )
        + (f", soft-cap {p['softcap']:g}" if p.get("softcap") is not None else "")
        + (f", seed {p['seed']}" if p["mode"] != "simple" else "")
        + f", {p['dtype']}.",
        "",
    ]
    for number, s in enumerate(trace.sections, start=1):
        out += [f"## {number}. {s.title}", "", f"$${s.latex}$$", "", s.why, ""]
        if s.lines:
            fence = _fence(s.lines)
            out += [fence + "text", *s.lines, fence, ""]
        for vec in s.results:
            idx = elide(len(vec.labels), MARKDOWN_COLS, MARKDOWN_COLS - 3, 2)
            out.append(f"**{_md(vec.name)}**")
            out.append("")
            cells = ("…" if j is None else _md(label(vec.labels[j])) for j in idx)
            out.append("| " + " | ".join(cells) + " |")
            out.append("|" + "---:|" * len(idx))
            out.append(
                "| "
                + " | ".join("…" if j is None else _num(vec.values[j], precision) for j in idx)
                + " |"
            )
            out.append("")
    return "\n".join(out)


def _fence(lines: Sequence[str]) -> str:
    """A code fence longer than any run of backticks in ``lines`` (a token may hold some)."""
    longest = max((len(run) for line in lines for run in re.findall("`+", line)), default=0)
    return "`" * max(3, longest + 1)


def _md(text: str) -> str:
    """Text from the data as Markdown shows it literally: visible escapes for controls, HTML
    entities for what could open a tag, backslashes before what could turn into a table cell
    border, emphasis, a link, code or math."""
    text = visible(text).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    for ch in ("\\", "|", "*", "_", "`", "[", "]", "$", "#", "~"):
        text = text.replace(ch, "\\" + ch)
    return text
