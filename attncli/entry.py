"""The ``attn`` console script: signals and standard streams are set up before any heavy import,
so Ctrl-C or SIGTERM at any instant, a closed or full stdout, or a stream that cannot encode a
character each end in one line, never a traceback."""

from __future__ import annotations

import io
import os
import signal
import sys


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised like Ctrl-C so that every cleanup (temporary files) runs the same way."""


def main() -> None:
    signal.signal(signal.SIGTERM, _terminate)
    try:
        _standard_streams()
        from attncli.cli import main as run
    except KeyboardInterrupt as e:
        stopped(e)
    run()


def stopped(e: KeyboardInterrupt) -> None:
    """End the process for Ctrl-C (exit 130) or SIGTERM (exit 143), with one line."""
    term = isinstance(e, Terminated)
    sys.stderr.write(f"attn: error: {'terminated' if term else 'interrupted'}\n")
    sys.exit(143 if term else 130)


def _terminate(signum: int, frame: object) -> None:
    raise Terminated


class ClosedStream(io.TextIOBase):
    """Standard output that was closed before the start (``attn … >&-``): writing to it is an
    OSError the CLI reports on one line; commands writing with ``-o`` are unaffected."""

    def writable(self) -> bool:
        return True

    def write(self, text: str) -> int:
        raise OSError(9, "standard output is closed")

    def fileno(self) -> int:
        raise OSError(9, "standard output is closed")

    @property
    def buffer(self) -> ClosedStream:
        return self


def _standard_streams() -> None:
    """Reserve closed descriptors 0-2 (else a file opened later would take their place and
    receive the output), and replace what a stream's encoding cannot write (e.g. a non-ASCII
    token under ``PYTHONIOENCODING=ascii``) with a backslash escape instead of failing."""
    for fd in (0, 1, 2):
        try:
            os.fstat(fd)
        except OSError:
            os.open(os.devnull, os.O_RDWR)  # the lowest free descriptor: this one
    if sys.stdin is None:
        sys.stdin = open(os.devnull)  # noqa: SIM115 (for the whole process)
    if sys.stdout is None:
        sys.stdout = ClosedStream()
    if sys.stderr is None:
        sys.stderr = open(os.devnull, "w")  # noqa: SIM115 (for the whole process)
    for stream in (sys.stdout, sys.stderr):
        reconfigure = getattr(stream, "reconfigure", None)
        if reconfigure is not None:
            reconfigure(errors="backslashreplace")
