"""Writing results: tables, JSON, CSV, NPY/NPZ, to stdout or atomically to a file."""

from __future__ import annotations

import io
import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import IO, TYPE_CHECKING

from attncli.cli.app import ALL_STEPS, TABLE_STEPS, VIEWS, Format
from attncli.errors import AttncliError, ConfigError, OutputError
from attncli.io.stdout import write_stdout

if TYPE_CHECKING:
    from attncli.core.kvcache import CacheRun
    from attncli.core.result import AttentionResult


@contextmanager
def text_sink(output: Path | None) -> Iterator[Callable[[str], None]]:
    """``write(text)``: to stdout, flushed line by line, or into ``output`` written atomically."""
    if output is None:

        def to_stdout(text: str) -> None:
            write_stdout(text)

        yield to_stdout
        return
    from attncli.io.atomic import atomic_writer

    with atomic_writer(output) as f:
        yield lambda text: f.write(text.encode())


def table_text(
    result: AttentionResult, show: str | None, views: list[str], precision: int, full: bool,
    title: str, vmax: float = 1.0,
) -> str:  # fmt: skip
    """One result's tables as text (ANSI only when stdout is a colour terminal)."""
    from attncli.render.tables import print_result

    default = TABLE_STEPS.get(result.config.mode, ALL_STEPS)
    steps = [] if show == "" else result.select_steps(show, default)
    buf = io.StringIO()
    print_result(result, steps, precision, full, buf, views, vmax)
    return f"== {title} ==\n{buf.getvalue()}\n"


def write_bytes(data: bytes, output: Path | None, binary: bool) -> None:
    from attncli.io.atomic import write_atomic

    if output is not None:
        write_atomic(output, data)
    elif binary and sys.stdout.isatty():
        raise OutputError("binary output; refusing to print it to a terminal (use -o FILE)")
    else:
        write_stdout(data)


# A page larger than this gets a note: browsers slow down, and --show can keep fewer steps.
BIG_PAGE = 20_000_000


def write_page(page: str, output: Path | None) -> None:
    """An HTML page into ``output`` (atomically), or to stdout when that is not a terminal."""
    if output is None and sys.stdout.isatty():
        raise OutputError(
            "--format html writes a whole page; refusing to print it to a terminal "
            "(use -o FILE.html, or redirect: > page.html)"
        )
    if len(page) > BIG_PAGE:
        sys.stderr.write(
            f"attn: note: the page is {len(page) / 1e6:.0f} MB and may open slowly; "
            "--show weights (or fewer steps) keeps it smaller\n"
        )
    write_text(page, output)


def check_precision(precision: int) -> None:
    if not 0 <= precision <= 16:
        raise ConfigError(f"--precision must be between 0 and 16, got {precision}")


def print_or_write(printer: Callable[[IO[str] | None], None], output: Path | None) -> None:
    """Run a rich printer on stdout, or into a file written atomically."""
    if output is None:
        printer(None)
        return
    buf = io.StringIO()
    printer(buf)
    write_text(buf.getvalue(), output)


def write_trace(trace, fmt: str, precision: int, output: Path | None) -> None:
    """An explain trace as terminal panels ("terminal", "table"), Markdown or JSON."""
    import json

    if fmt in ("terminal", "table"):
        from attncli.render.explain import print_trace

        print_or_write(lambda file: print_trace(trace, precision, file), output)
        return
    if fmt == "markdown":
        from attncli.render.explain import trace_markdown

        text = trace_markdown(trace, precision)
    elif fmt == "json":
        # ASCII, like compute's JSON: no control or bidi character reaches a terminal raw
        text = json.dumps(trace.to_dict(), allow_nan=False)
    else:
        raise ConfigError(f"--explain writes terminal panels, markdown or json, not {fmt}")
    write_text(text + "\n", output)


def write_text(text: str, output: Path | None) -> None:
    from attncli.io.atomic import write_atomic

    if output is None:
        write_stdout(text)
    else:
        write_atomic(output, text.encode())


def save_weights_of(result: AttentionResult, path: Path, inputs: list) -> None:
    from attncli.io.weights import save_weights

    if result.parameters is None:
        raise OutputError("--save-weights: simple mode has no parameters to save")
    check_not_input(path, inputs)
    c = result.config
    named = result.parameters.named(linear=c.mode != "trainable")
    metadata = {"mode": c.mode, "heads": str(c.heads), "kv_heads": str(c.kv_heads)}
    save_weights(path, named, metadata)


def check_vmax(vmax: float) -> None:
    if not vmax > 0 or vmax == float("inf"):
        raise ConfigError(f"--vmax must be a positive number, got {vmax}")


def split_show(show: str | None, fmt: Format) -> tuple[str | None, list[str]]:
    """``--show`` as (the steps part, the terminal views heatmap/stats); "" means no steps."""
    if show is None:
        return None, []
    parts = [p.strip() for p in show.split(",")]
    views = [p for p in parts if p in VIEWS]
    if views and fmt is not Format.table:
        raise ConfigError(f"--show {views[0]} is a terminal view; use --format table (the default)")
    return ",".join(p for p in parts if p not in VIEWS), views


def emit(
    result: AttentionResult, fmt: Format, show: str | None, precision: int, full: bool,
    output: Path | None, inputs: list, views: Sequence[str] = (), vmax: float = 1.0,
    command: str = "", layer: int = 0, cache: CacheRun | None = None,
) -> None:  # fmt: skip
    from attncli.io import writers
    from attncli.io.atomic import write_atomic

    if output is not None:
        check_not_input(output, inputs)
    check_precision(precision)
    if fmt is Format.table:
        from attncli.render.tables import print_result

        default = TABLE_STEPS.get(result.config.mode, ALL_STEPS)
        steps = [] if show == "" else result.select_steps(show, default)

        def printer(file: IO[str] | None) -> None:
            print_result(result, steps, precision, full, file, views, vmax, cache)

        print_or_write(printer, output)
        return
    steps = result.select_steps(
        show, ("context",) if fmt in (Format.csv, Format.npy) else ALL_STEPS
    )
    if cache is not None and fmt is not Format.json:
        raise ConfigError("--kv-cache shows in --format table or json")
    if fmt is Format.html:
        from attncli.render.html import compute_page

        write_page(compute_page(result, steps, command, precision, layer), output)
        return
    if fmt is Format.json:
        extra = None if cache is None else {"kv_cache": cache.to_dict()}
        data = writers.to_json(result, steps, extra=extra).encode()
    elif fmt is Format.csv:
        data = writers.to_csv(result, writers.one_step(steps, "csv")).encode()
    elif fmt is Format.npy:
        data = writers.to_npy(result, writers.one_step(steps, "npy"))
    else:
        data = writers.to_npz(result, steps)
    if output is not None:
        write_atomic(output, data)
        return
    if fmt in (Format.npy, Format.npz) and sys.stdout.isatty():
        raise OutputError(
            f"--format {fmt.value} is binary; refusing to print it to a terminal (use -o FILE)"
        )
    write_stdout(data)


def check_not_input(path: Path, inputs: list) -> None:
    """Refuse to write ``path`` over a file the run reads: a path given, a sample, a model
    folder's files, or the file standard input is redirected from (``- < f.csv -o f.csv``)."""
    from attncli.io.atomic import same_file

    for source in inputs:
        if source is None:
            continue
        if str(source) == "-":
            if _is_stdin(path):
                raise OutputError(f"{path}: refusing to overwrite the input (standard input)")
            continue
        for file in _files_of(source):
            if same_file(path, file):
                raise OutputError(f"{path}: refusing to overwrite the input file {file}")


def check_distinct(outputs: dict[str, Path | None]) -> None:
    """Refuse two outputs of one run that are one file (one would silently replace the other)."""
    from attncli.io.atomic import same_file

    named = [(option, path) for option, path in outputs.items() if path is not None]
    for k, (a, pa) in enumerate(named):
        for b, pb in named[k + 1 :]:
            if pa == pb or same_file(pa, pb):
                raise ConfigError(f"{a} and {b} name the same file {pa}; give each its own")


def _is_stdin(path: Path) -> bool:
    import os
    import stat

    try:
        mine, theirs = os.fstat(0), os.stat(path)
    except (OSError, ValueError):
        return False
    same = (mine.st_dev, mine.st_ino) == (theirs.st_dev, theirs.st_ino)
    return same and stat.S_ISREG(theirs.st_mode)


def _files_of(source: object) -> list[Path]:
    """The files behind an input: the file itself, a sample's file, every file of a folder."""
    from attncli.io.readers import SAMPLE_PREFIX

    text = str(source)
    if text.startswith(SAMPLE_PREFIX):
        from attncli.io.samples import sample_path

        try:
            return [sample_path(text[len(SAMPLE_PREFIX) :])]
        except AttncliError:
            return []
    path = Path(text)
    if path.is_dir():
        return [p for p in path.iterdir() if p.is_file()]
    return [path]
