"""Standard output written whole or not at all: a short write (a full disk) is an OSError, which
the CLI reports on one line with exit 1, never a silently truncated output.

CPython's buffered stdout can drop the tail of a large write to a full disk without raising;
:func:`write_stdout` writes with ``os.write`` in a loop instead, after flushing what is buffered.
"""

from __future__ import annotations

import errno
import io
import os
import sys


def write_stdout(data: str | bytes) -> None:
    """All of ``data`` to standard output (text in the stream's encoding, escaping what it
    cannot encode), or an OSError."""
    stream = sys.stdout
    if isinstance(data, str):
        data = data.encode(getattr(stream, "encoding", None) or "utf-8", "backslashreplace")
    stream.flush()
    try:
        fd = stream.fileno()
    except (OSError, ValueError):  # not a real file (a test's capture, a closed stdout)
        target = getattr(stream, "buffer", None)
        target.write(data) if target is not None else stream.write(data.decode())
        stream.flush()
        return
    view = memoryview(data)
    while view:
        written = os.write(fd, view)
        if written <= 0:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        view = view[written:]


class StdoutText(io.TextIOBase):
    """A text stream over :func:`write_stdout` for printers (rich) that take a file; it looks
    like stdout (terminal or not, its encoding) so colour and width detection still work."""

    def write(self, text: str) -> int:
        write_stdout(text)
        return len(text)

    def isatty(self) -> bool:
        return sys.stdout.isatty()

    def fileno(self) -> int:
        return sys.stdout.fileno()

    @property
    def encoding(self) -> str:  # type: ignore[override]
        return getattr(sys.stdout, "encoding", None) or "utf-8"
