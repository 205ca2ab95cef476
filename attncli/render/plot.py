"""Image files of attention (matplotlib, optional): weight heatmaps and embedding-to-context arrows.

Figures are built with ``matplotlib.figure.Figure`` directly (no pyplot, no display): headless by
construction. Builders return the figure so tests can read the plotted values back from its
artists; :func:`save_figure` writes it atomically in the format the suffix names.
"""

from __future__ import annotations

import io
import math
import textwrap
from pathlib import Path

import numpy as np

from attncli.core.result import AttentionResult
from attncli.core.stats import weight_maps
from attncli.errors import ConfigError, OutputError
from attncli.io.atomic import write_atomic

FORMATS = {".png": "png", ".svg": "svg", ".pdf": "pdf"}
ANNOTATE_MAX = 12  # write the weight inside each cell up to this many tokens
MAX_LABELS = 80  # token labels per axis; longer inputs label every k-th token
MAX_SIDE = 14.0  # inches per panel, whatever the number of tokens


def _matplotlib():
    try:
        from matplotlib import colormaps
        from matplotlib.figure import Figure
        from matplotlib.patches import Rectangle
    except ImportError:
        raise ConfigError('attn plot needs matplotlib: pip install "attncli[plot]"') from None
    return Figure, colormaps, Rectangle


def weights_figure(result: AttentionResult, title: str = ""):
    """One heatmap panel per head: tokens on both axes, a shared colour bar, masked cells
    hatched (not drawn as zero), values written in the cells of small inputs."""
    figure_cls, colormaps, rectangle = _matplotlib()
    maps = weight_maps(result)
    tokens, keys = result.tokens, result.keys_tokens
    n, m = len(tokens), len(keys)  # queries, keys (they differ in cross-attention)
    cell = 0.55 if max(n, m) <= ANNOTATE_MAX else max(0.14, 7.0 / max(n, m))
    side = min(MAX_SIDE, max(3.2, max(n, m) * cell))
    spacing = side * 72 / min(max(n, m), MAX_LABELS)  # points between two labels
    font = min(9.0, max(4.0, 0.6 * spacing))
    width = len(maps) * (side + 1.2) + 1.0
    fig = figure_cls(figsize=(width, side + 1.8), layout="constrained")
    axes = fig.subplots(1, len(maps), squeeze=False)[0]
    # masked cells are transparent: the hatching shows through
    cmap = colormaps["viridis"].with_extremes(bad=(0, 0, 0, 0))
    top = max(float(w.max()) for _, w in maps)
    rows_at = [result.query] if result.query is not None else list(range(n))
    image = None
    for ax, (name, w) in zip(axes, maps, strict=True):
        mask = result.hidden_keys(rows_at)  # future keys, and keys outside a window's band
        ax.add_patch(rectangle((-0.5, -0.5), m, len(rows_at), hatch="///", fill=False,
                               edgecolor="0.75", linewidth=0, zorder=0))  # fmt: skip
        image = ax.imshow(np.ma.masked_array(w, mask), cmap=cmap, vmin=0, vmax=top,
                          interpolation="nearest", zorder=1)  # fmt: skip
        # every token up to MAX_LABELS; beyond, every k-th, so labels never overlap
        k = math.ceil(max(n, m) / MAX_LABELS)
        ax.set_xticks(range(0, m, k), keys[::k], rotation=90, fontsize=font)
        rows = range(0, len(rows_at), k)
        ax.set_yticks(rows, [tokens[rows_at[r]] for r in rows], fontsize=font)
        ax.set_xlabel("key")
        ax.set_ylabel("query")
        ax.set_title(name, fontsize=10)
        if max(n, m) <= ANNOTATE_MAX:
            for (r, j), value in np.ndenumerate(w):
                if not mask[r, j]:
                    shade = "black" if value > 0.6 * top else "white"
                    ax.text(j, r, f"{value:.2f}", ha="center", va="center", color=shade,
                            fontsize=font - 1)  # fmt: skip
    fig.colorbar(image, ax=list(axes), shrink=0.8, label="attention weight")
    if title:  # wrapped to the figure's width (about 11 characters an inch at 10 pt)
        fig.suptitle(textwrap.fill(title, max(30, int(width * 11))), fontsize=10)
    return fig


def vectors_figure(results: list[tuple[str, AttentionResult]], title: str = ""):
    """Input embeddings and their context vectors in one shared 2-D PCA, an arrow from each
    token to its context: static embeddings becoming contextual ones."""
    figure_cls, colormaps, _ = _matplotlib()
    for name, r in results:
        if r.steps["inputs"].shape[1] != r.context.shape[1]:
            raise ConfigError(
                f"{name}: --kind vectors needs d_out = d_in (got {r.context.shape[1]} and "
                f"{r.steps['inputs'].shape[1]}): the context must live in the inputs' space"
            )
    widths = {r.context.shape[1] for _, r in results}
    if len(widths) > 1:
        raise ConfigError(f"--kind vectors: the inputs have different widths {sorted(widths)}")
    stacked = np.concatenate([np.vstack([r.steps["inputs"], r.context]) for _, r in results])
    centred = stacked - stacked.mean(axis=0)
    basis = np.linalg.svd(centred, full_matrices=False)[2][:2]
    if basis.shape[0] < 2:
        basis = np.vstack([basis, np.zeros_like(basis[0])])
    fig = figure_cls(figsize=(7.5, 6.5), layout="constrained")
    ax = fig.subplots()
    colours = colormaps["tab10"]
    mean = stacked.mean(axis=0)
    labels: dict[tuple[float, float], list[tuple[str, object]]] = {}
    for k, (name, r) in enumerate(results):
        x2 = (r.steps["inputs"] - mean) @ basis.T
        z2 = (r.context - mean) @ basis.T
        colour = colours(k % 10)
        ax.scatter(x2[:, 0], x2[:, 1], marker="o", color=colour, alpha=0.45, label=f"{name}: input")
        ax.scatter(z2[:, 0], z2[:, 1], marker="^", color=colour, label=f"{name}: context")
        for (a, b), (c, d), token in zip(x2, z2, r.tokens, strict=True):
            ax.annotate("", xy=(c, d), xytext=(a, b),
                        arrowprops={"arrowstyle": "->", "color": colour, "alpha": 0.6})  # fmt: skip
            labels.setdefault((round(a, 6), round(b, 6)), []).append((token, colour))
    for (a, b), named in labels.items():  # one label per point: "bank / Bank" share a vector
        tokens = list(dict.fromkeys(token for token, _ in named))
        colour = named[0][1] if len({str(c) for _, c in named}) == 1 else "black"
        ax.annotate(" / ".join(tokens), (a, b), fontsize=8, color=colour, xytext=(3, 3),
                    textcoords="offset points")  # fmt: skip
    ax.set_xlabel("principal component 1")
    ax.set_ylabel("principal component 2")
    ax.legend(fontsize=8, loc="best")
    ax.set_title(title or "static embeddings (o) → context vectors (^)", fontsize=10)
    return fig


def save_figure(fig, path: Path) -> None:
    """Write ``fig`` as PNG, SVG or PDF (by suffix), atomically."""
    fmt = FORMATS.get(path.suffix.lower())
    if fmt is None:
        raise OutputError(f"{path}: plots are written as {', '.join(FORMATS)}")
    buf = io.BytesIO()
    fig.savefig(buf, format=fmt, dpi=150)
    write_atomic(path, buf.getvalue())
