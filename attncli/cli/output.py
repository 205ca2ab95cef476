"""Writing results: tables, JSON, CSV, NPY/NPZ, to stdout or atomically to a file."""

from __future__ import annotations

import io
import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import IO, TYPE_CHECKING

from attncli.cli.app import ALL_STEPS, TABLE_STEPS, VIEWS, Format
from attncli.errors import ConfigError, OutputError

if TYPE_CHECKING:
    from attncli.core.kvcache import CacheRun
    from attncli.core.result import AttentionResult


@contextmanager
def text_sink(output: Path | None) -> Iterator[Callable[[str], None]]:
    """``write(text)``: to stdout, flushed line by line, or into ``output`` written atomically."""
    if output is None:

        def to_stdout(text: str) -> None:
            sys.stdout.write(text)
            sys.stdout.flush()

        yield to_stdout
        return
    from attncli.io.atomic import atomic_writer

    with atomic_writer(output) as f:
        yield lambda text: f.write(text.encode())


def table_text(
    result: AttentionResult, show: str | None, views: list[str], precision: int, full: bool,
    title: str,
) -> str:  # fmt: skip
    """One result's tables as text (ANSI only when stdout is a colour terminal)."""
    from attncli.render.tables import print_result

    default = TABLE_STEPS.get(result.config.mode, ALL_STEPS)
    steps = [] if show == "" else result.select_steps(show, default)
    buf = io.StringIO()
    print_result(result, steps, precision, full, buf, views)
    return f"== {title} ==\n{buf.getvalue()}\n"


def write_bytes(data: bytes, output: Path | None, binary: bool) -> None:
    from attncli.io.atomic import write_atomic

    if output is not None:
        write_atomic(output, data)
    elif binary and sys.stdout.isatty():
        raise OutputError("binary output; refusing to print it to a terminal (use -o FILE)")
    else:
        sys.stdout.buffer.write(data)
        sys.stdout.flush()


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


def write_text(text: str, output: Path | None) -> None:
    from attncli.io.atomic import write_atomic

    if output is None:
        sys.stdout.write(text)
        sys.stdout.flush()
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
    output: Path | None, inputs: list, views: Sequence[str] = (), cache: CacheRun | None = None,
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
            print_result(result, steps, precision, full, file, views, cache)

        print_or_write(printer, output)
        return
    steps = result.select_steps(
        show, ("context",) if fmt in (Format.csv, Format.npy) else ALL_STEPS
    )
    if cache is not None and fmt is not Format.json:
        raise ConfigError("--kv-cache shows in --format table or json")
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
    sys.stdout.buffer.write(data)
    sys.stdout.flush()


def check_not_input(path: Path, inputs: list) -> None:
    from attncli.io.atomic import same_file

    for source in inputs:
        if source is not None and str(source) != "-" and same_file(path, Path(str(source))):
            raise OutputError(f"{path}: refusing to overwrite the input file")
