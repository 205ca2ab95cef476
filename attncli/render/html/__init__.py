"""Self-contained HTML pages: the run's JSON, the page's script and style inlined, no network.

The data block (``<script type="application/json" id="attncli-data">``) holds the document
``--format json`` writes for the same command, plus an ``html`` key with what only the page needs
(the command line, step titles, axes, and for the model view the packed weights). Every ``<`` in
it is written ``\\u003c``, so no token can end the script element or open a comment.
"""

from __future__ import annotations

import base64
import html
import json
import zlib
from importlib.resources import files

import numpy as np

from attncli.core.result import KEY_COLUMNS, QUERY_ROWS, STEPS, AttentionResult
from attncli.explain import Trace
from attncli.visible import visible

# Model-view weights are stored as integers q = round(w * (2**bits - 1)): 16 bits while the page
# stays small, 8 bits (±0.002) above this many values (a 512-token, 72-head stack is 18.9 M).
SIXTEEN_BIT_VALUES = 4_000_000


def _asset(name: str) -> str:
    return files(__package__).joinpath(name).read_text(encoding="utf-8")


def _script_json(text: str) -> str:
    """JSON text safe inside <script>: '<' only appears inside JSON strings, as \\u003c."""
    return text.replace("<", "\\u003c")


def _with_html(document: str, extra: dict[str, object], raw: dict[str, str] | None = None) -> str:
    """``document`` (one JSON object) with an ``html`` key: ``extra`` plus ``raw`` JSON texts."""
    parts = [json.dumps(extra, allow_nan=False)[:-1]]
    parts += [f", {json.dumps(k)}: {v}" for k, v in (raw or {}).items()]
    return document.rstrip().removesuffix("}") + ', "html": ' + "".join(parts) + "}}"


def page(data: str, title: str, body_extra: str = "") -> str:
    """The whole page: style, the data block, trusted static markup, then the script."""
    return (
        '<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        f"<title>{html.escape(visible(title))}</title>\n<style>\n{_asset('page.css')}</style>\n</head>\n"
        f'<body>\n<div id="app"></div>\n{body_extra}'
        f'<script type="application/json" id="attncli-data">{_script_json(data)}</script>\n'
        f"<script>\n{_asset('page.js')}</script>\n</body>\n</html>\n"
    )


def step_info(result: AttentionResult) -> dict[str, dict[str, str]]:
    """Per step: its description, and whether rows/columns are queries, keys or features."""
    return {
        name: {
            "title": STEPS.get(name, name),
            "rows": "queries" if name in QUERY_ROWS else "keys",
            "columns": "keys" if name in KEY_COLUMNS else "features",
        }
        for name in result.steps
    }


def _common(result: AttentionResult, command: str, precision: int) -> dict[str, object]:
    from attncli.render.tables import summary_line

    return {
        "command": command,
        "precision": precision,
        "summary": summary_line(result).plain,
        "steps": step_info(result),
    }


def compute_page(
    result: AttentionResult, steps: list[str], command: str, precision: int, layer: int = 0
) -> str:
    """The head view and matrix view of one result (``steps`` as --format json would write)."""
    from attncli.io.writers import to_json

    extra = {"kind": "compute", "layer": layer, **_common(result, command, precision)}
    return page(_with_html(to_json(result, steps), extra), "attncli: attention")


def explain_page(
    trace: Trace, result: AttentionResult, command: str, precision: int, layer: int = 0
) -> str:
    """The trace (``attn explain --format json``) with typeset formulas, plus the whole run so
    each section links to the cells it explains."""
    from latex2mathml.converter import convert

    from attncli.io.writers import to_json

    doc = json.dumps(trace.to_dict(), allow_nan=False)
    extra = {"kind": "explain", "layer": layer, **_common(result, command, precision)}
    data = _with_html(doc, extra, {"run": to_json(result, list(result.steps)).strip()})
    # Formulas are the code's own LaTeX (never user text), converted to MathML here.
    math = "".join(
        f'<div data-section="{i}">{convert(s.latex, display="block")}</div>'
        for i, s in enumerate(trace.sections)
    )
    return page(data, "attncli: explain", f'<div id="attncli-math" hidden>{math}</div>\n')


def pack_weights(weights: np.ndarray) -> dict[str, object]:
    """Weights in [0, 1] as gzip'd little-endian integers in base64, at display precision."""
    bits = 16 if weights.size <= SIXTEEN_BIT_VALUES else 8
    top = 2**bits - 1
    q = np.rint(np.clip(weights, 0, 1) * top).astype("<u2" if bits == 16 else "u1")
    packed = base64.b64encode(zlib.compress(q.tobytes(), 6, wbits=31)).decode("ascii")
    return {"bits": bits, "shape": list(weights.shape), "encoding": "gzip+base64", "data": packed}


def model_page(
    summary_json: str, weights: np.ndarray, layers: list[int], heads: list[int],
    causal: bool, header: str, command: str,
) -> str:  # fmt: skip
    """The layers × heads grid: ``summary_json`` is ``attn model --layer all --format json``'s
    document; ``weights`` is (len(layers), len(heads), n, n)."""
    extra = {
        "kind": "model", "command": command, "summary": header, "causal": causal,
        "layers": layers, "heads": heads,
    }  # fmt: skip
    packed = json.dumps(pack_weights(weights))
    return page(_with_html(summary_json, extra, {"weights": packed}), "attncli: model view")
