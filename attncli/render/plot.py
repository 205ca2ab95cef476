"""Image files of attention (matplotlib, optional): weight heatmaps and embedding-to-context arrows.

Figures are built with ``matplotlib.figure.Figure`` directly (no pyplot, no display): headless by
construction. Builders return the figure so tests can read the plotted values back from its
artists; :func:`save_figure` writes it atomically in the format the suffix names.
"""

from __future__ import annotations

import io
import math
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from attncli.core.result import AttentionResult
from attncli.core.stats import weight_maps
from attncli.errors import ConfigError, OutputError
from attncli.io.atomic import write_atomic
from attncli.render.tables import pack_phrases, summary_parts
from attncli.visible import label, shorten, visible

FORMATS = {".png": "png", ".svg": "svg", ".pdf": "pdf"}
ANNOTATE_MAX = 12  # write the weight inside each cell up to this many tokens
MAX_LABELS = 80  # token labels per axis; longer inputs label every k-th token
MAX_SIDE = 14.0  # inches per panel, whatever the number of tokens
MAX_WIDTH = 12.0  # inches of panels per row: many heads make more rows, not a long strip
LABEL_MAX = 24  # characters of a token label


# Text from the data is drawn as the characters it is: no TeX, no $math$ (a token "$x_1$" or a
# file name "$\\foo$" stays literal), SVG text kept as text.
RC = {"text.usetex": False, "text.parse_math": False, "svg.fonttype": "none"}


def _matplotlib():
    try:
        import matplotlib
        from matplotlib import colormaps
        from matplotlib.figure import Figure
        from matplotlib.patches import Rectangle
    except ImportError:
        raise ConfigError('attn plot needs matplotlib: pip install "attncli[plot]"') from None
    matplotlib.rcParams.update(RC)
    return Figure, colormaps, Rectangle


def colormap_names() -> list[str]:
    _, colormaps, _ = _matplotlib()
    return list(colormaps)


@dataclass(frozen=True)
class PlotStyle:
    """How a heatmap figure looks: the options for slides and papers."""

    step: str = "weights"  # or scores, scaled_scores, capped_scores, masked_scores
    cols: int | None = None  # panels per row (default: near-square)
    cmap: str = "viridis"
    vmax: float | None = None  # top of the colour scale (default: the largest value)
    values: bool = True  # write the value in each cell of small maps
    query: int | None = None  # a query row to outline
    title: str | None = None  # replaces the default title


def weights_figure(result: AttentionResult, title: str = "", style: PlotStyle | None = None):
    """One heatmap panel per head, laid out as a near-square grid: query tokens down, key tokens
    across (the memory's in cross-attention), labels on the outer panels, one shared colour bar,
    masked cells hatched (not drawn as zero), values written in the cells of small inputs.
    ``title`` (the sentence or the file) is one line, shortened with …; the technical summary
    goes below, smaller."""
    style = style or PlotStyle()
    figure_cls, colormaps, rectangle = _matplotlib()
    result.check_step(style.step, "--step")
    maps = weight_maps(result, style.step)
    tokens = [label(t, LABEL_MAX) for t in result.tokens]
    keys = [label(t, LABEL_MAX) for t in result.keys_tokens]
    n, m = len(tokens), len(keys)  # queries, keys (they differ in cross-attention)
    rows_at = [result.query] if result.query is not None else list(range(n))
    after_mask = style.step not in ("scores", "scaled_scores", "capped_scores")
    hidden = result.hidden_keys(rows_at) if after_mask else np.zeros((len(rows_at), m), bool)
    cols = style.cols or math.ceil(math.sqrt(len(maps)))
    if cols < 1:
        raise ConfigError(f"--cols must be at least 1, got {cols}")
    cols = min(cols, len(maps))
    grid_rows = math.ceil(len(maps) / cols)
    big = max(n, m)
    cell = 0.55 if big <= ANNOTATE_MAX else max(0.14, 7.0 / big)
    side = min(MAX_SIDE, max(2.4, big * cell), MAX_WIDTH / cols)
    height = side * len(rows_at) / big if len(rows_at) < big else side
    spacing = side * 72 / min(big, MAX_LABELS)  # points between two labels
    font = min(9.0, max(4.0, 0.6 * spacing))
    width = cols * (side + 1.0) + 1.6
    fig = figure_cls(figsize=(width, grid_rows * (height + 1.1) + 1.4), layout="constrained")
    axes = fig.subplots(grid_rows, cols, squeeze=False, sharex=True, sharey=True)
    cmap = colormaps[style.cmap].with_extremes(bad=(0, 0, 0, 0))  # hatching shows through
    shown = [np.where(hidden, np.nan, w) for _, w in maps]
    finite = np.concatenate([w[np.isfinite(w)] for w in shown] or [np.zeros(1)])
    finite = finite if finite.size else np.zeros(1)  # every cell hidden: draw an empty scale
    is_weights = style.step in ("weights", "weights_before_dropout")
    # weights on one 0…1 scale (above 1 only after dropout's rescaling); scores on their range
    vmin = 0.0 if is_weights else float(finite.min())
    top = float(finite.max(initial=1.0)) if is_weights else float(finite.max())
    vmax = style.vmax if style.vmax is not None else top
    if vmax <= vmin:
        raise ConfigError(
            f"--vmax {vmax:g} is not above the smallest value of {style.step}, {vmin:.4g}: "
            "nothing would be left to shade"
        )
    k = math.ceil(big / MAX_LABELS)  # label every k-th token beyond MAX_LABELS
    image = None
    for index, ax in enumerate(axes.flat):
        if index >= len(maps):
            ax.set_axis_off()
            continue
        name, w = maps[index]
        bottom = index // cols == grid_rows - 1 or index + cols >= len(maps)
        ax.add_patch(rectangle((-0.5, -0.5), m, len(rows_at), hatch="///", fill=False,
                               edgecolor="0.75", linewidth=0, zorder=0))  # fmt: skip
        image = ax.imshow(np.ma.masked_array(w, hidden | ~np.isfinite(w)), cmap=cmap, vmin=vmin,
                          vmax=vmax, interpolation="nearest", zorder=1, aspect="auto")  # fmt: skip
        ax.set_xticks(range(0, m, k), keys[::k], rotation=90, fontsize=font)
        ax.set_yticks(range(0, len(rows_at), k), [tokens[i] for i in rows_at[::k]],
                      fontsize=font)  # fmt: skip
        ax.tick_params(labelbottom=bottom, labelleft=index % cols == 0)
        if index % cols == 0:
            ax.set_ylabel("query")
        if bottom:
            ax.set_xlabel("key")
        ax.set_title(name, fontsize=10)
        if style.query is not None and style.query in rows_at:
            r = rows_at.index(style.query)
            ax.add_patch(rectangle((-0.5, r - 0.5), m, 1, fill=False, edgecolor="red",
                                   linewidth=1.5, zorder=3))  # fmt: skip
        if style.values and big <= ANNOTATE_MAX and side / big >= 0.3:
            for (r, j), value in np.ndenumerate(w):
                if not hidden[r, j] and np.isfinite(value):
                    bright = (value - vmin) > 0.6 * (vmax - vmin)
                    ax.text(j, r, f"{value:.2f}", ha="center", va="center", fontsize=font - 1,
                            color="black" if bright else "white")  # fmt: skip
    what = "attention weight" if is_weights else style.step.replace("_", " ")
    fig.colorbar(image, ax=axes.ravel().tolist(), shrink=0.8, label=what)
    chars = int(width * 9)  # characters a line holds at 12 pt
    heading = style.title if style.title is not None else title
    if heading:
        fig.suptitle(shorten(visible(heading), chars), fontsize=12)
    subtitle = "\n".join(pack_phrases(summary_phrases(result, style.step), int(width * 13)))
    fig.supxlabel(subtitle, fontsize=8, color="0.3")
    return fig


def summary_phrases(result: AttentionResult, step: str) -> list[str]:
    return [step, *summary_parts(result)]


def grid_figure(
    maps: list[tuple[int, int, np.ndarray]], tokens: list[str], causal: bool, title: str = "",
    cmap: str = "viridis",
):  # fmt: skip
    """The layers × heads grid of a model (bertviz's model view): one small panel per
    (layer, head), labelled; one shared colour bar from 0 to 1; masked cells left blank."""
    figure_cls, colormaps, _ = _matplotlib()
    layers = sorted({layer for layer, _, _ in maps})
    heads = sorted({head for _, head, _ in maps})
    side = max(0.9, min(2.2, MAX_WIDTH / len(heads)))
    fig = figure_cls(figsize=(len(heads) * side + 1.6, len(layers) * side + 1.2),
                     layout="constrained")  # fmt: skip
    axes = fig.subplots(len(layers), len(heads), squeeze=False)
    cmap = colormaps[cmap].with_extremes(bad=(0, 0, 0, 0))
    n = len(tokens)
    mask = np.triu(np.ones((n, n), bool), 1) if causal else np.zeros((n, n), bool)
    image = None
    for layer, head, w in maps:
        ax = axes[layers.index(layer), heads.index(head)]
        image = ax.imshow(np.ma.masked_array(w, mask), cmap=cmap, vmin=0, vmax=1,
                          interpolation="nearest")  # fmt: skip
        ax.set_xticks([])
        ax.set_yticks([])
        ax.set_title(f"L{layer} H{head}", fontsize=7, pad=2)
    for r, layer in enumerate(layers):
        axes[r, 0].set_ylabel(f"layer {layer}", fontsize=8)
    fig.colorbar(image, ax=axes.ravel().tolist(), shrink=0.6, label="attention weight")
    if title:
        fig.suptitle(shorten(visible(title), int(axes.shape[1] * side * 9)), fontsize=11)
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
        name = label(name, LABEL_MAX)
        ax.scatter(x2[:, 0], x2[:, 1], marker="o", color=colour, alpha=0.45, label=f"{name}: input")
        ax.scatter(z2[:, 0], z2[:, 1], marker="^", color=colour, label=f"{name}: context")
        shown = [label(t, LABEL_MAX) for t in r.tokens]
        for (a, b), (c, d), token in zip(x2, z2, shown, strict=True):
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
    ax.set_title(visible(title) or "static embeddings (o) → context vectors (^)", fontsize=10)
    return fig


def save_figure(fig, path: Path, dpi: int = 150) -> None:
    """Write ``fig`` as PNG, SVG or PDF (by suffix), atomically; SVG keeps text as text."""
    fmt = FORMATS.get(path.suffix.lower())
    if fmt is None:
        raise OutputError(f"{path}: plots are written as {', '.join(FORMATS)}")
    if not 10 <= dpi <= 1200:
        raise ConfigError(f"--dpi must be between 10 and 1200, got {dpi}")
    buf = io.BytesIO()
    with warnings.catch_warnings():  # e.g. "Glyph … missing from font": the label still draws
        warnings.simplefilter("ignore")
        fig.savefig(buf, format=fmt, dpi=dpi)
    write_atomic(path, buf.getvalue())
