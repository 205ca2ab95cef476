"""attn model --batch: one JSON Lines record per sentence, streamed, memory constant.

Each line of the source is one sentence, run one at a time through the model already loaded (the
weights read once); a bad line becomes an error record ``{"line", "error"}`` and a message on
stderr, and the others still run, as ``attn compute --batch`` does.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from contextlib import nullcontext
from pathlib import Path

from attncli.cli.app import say
from attncli.cli.output import text_sink
from attncli.errors import AttncliError, InputError
from attncli.visible import visible


def sentences(source: str) -> Iterator[tuple[int, str | AttncliError]]:
    """(line number from 1, the sentence or why the line cannot be one), read line by line."""

    def lines(stream) -> Iterator[tuple[int, str | AttncliError]]:
        for number, raw in enumerate(stream, start=1):
            try:
                text = raw.decode("utf-8").rstrip("\r\n")
            except UnicodeDecodeError as e:
                yield number, InputError(f"line {number}: not UTF-8 text ({e.reason})")
                continue
            if not text.strip():
                yield number, InputError(f"line {number}: empty (one sentence per line)")
                continue
            yield number, text

    if source == "-":
        yield from lines(sys.stdin.buffer)
        return
    from attncli.io.readers import open_binary

    with open_binary(Path(source)) as stream:
        yield from lines(stream)


def run_batch(
    model, source: str, layers: list[int], heads: list[int] | None, one_head: int | None,
    query: str | None, with_weights: bool, output: Path | None, quiet: bool, run: dict,
) -> int:  # fmt: skip
    """Write a record per sentence; return the number of failed lines.

    One layer and ``one_head``: ``weights`` (n, n) of that head as ``--head`` computes it; one
    layer: ``weights`` (heads, n, n); several layers or heads (``heads`` given): the per-head
    summary of ``--layer all --head all`` under ``heads``.
    """
    from attncli.cli.model_command import summary_rows
    from attncli.core.result import find_query
    from attncli.io.writers import json_array

    failures = 0
    said: set[str] = set()  # notes go to stderr once per run, and into each line they concern
    bar = nullcontext(lambda: None)
    if not quiet and sys.stderr.isatty():
        from attncli.render.progress import counter

        bar = counter("sentences")
    with text_sink(output) as write, bar as tick:
        for line, item in sentences(source):
            try:
                if isinstance(item, AttncliError):
                    raise item
                enc = model.encode(item)
                stack = model.forward(enc.ids, enc.tokens, max(layers), **run)
                record: dict[str, object] = {"line": line, "tokens": list(enc.tokens)}
                results = [stack[i][1] for i in layers]
                if heads is not None:
                    q = None if query is None else find_query(enc.tokens, query)
                    record["heads"] = summary_rows(
                        model, stack, layers, heads, enc.tokens, q, with_weights
                    )
                    _add_notes(record, results, said)
                    write(json.dumps(record, ensure_ascii=False) + "\n")
                else:
                    record["layer"] = layer = layers[0]
                    result = stack[layer][1]
                    if one_head is not None:
                        attn_in = result.steps["inputs"]
                        result = model.head(attn_in, enc.tokens, layer, one_head, **run)
                        record["head"] = one_head
                        results.append(result)
                    _add_notes(record, results, said)
                    # the weights as attn model -f json writes them (float32's shortest digits)
                    start = json.dumps(record, ensure_ascii=False)[:-1]
                    write(f'{start}, "weights": {json_array(result.weights)}}}\n')
            except AttncliError as e:
                failures += 1
                message = str(e) if f"line {line}" in str(e) else f"line {line}: {e}"
                say("error", message)
                write(json.dumps({"line": line, "error": visible(message)}, ensure_ascii=False))
                write("\n")
            tick()
    return failures


def _add_notes(record: dict[str, object], results: list, said: set[str]) -> None:
    """The results' notes into the record (``notes``, when there are some) and, the first time
    each appears in the run, on stderr."""
    from attncli.cli.model_command import say_notes

    notes = list(dict.fromkeys(note for r in results for note in r.notes))
    if notes:
        record["notes"] = [visible(note) for note in notes]
        say_notes(results, said)
