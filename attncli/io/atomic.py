"""Atomic file writes: a temporary file in the target's folder, then a rename over the target.

Only regular files are replaced that way. A symbolic link is followed (its target is replaced,
the link stays); a character device, FIFO or socket (``-o /dev/null``, a named pipe) is opened
and written directly, never replaced by a regular file.
"""

from __future__ import annotations

import os
import stat
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO

from attncli.errors import OutputError, WriteError


def write_atomic(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` so that readers see the old file or the complete new one."""
    with atomic_writer(path) as f:
        f.write(data)


@contextmanager
def atomic_writer(path: Path) -> Iterator[BinaryIO]:
    """A binary file that becomes ``path`` only when the block completes: written to a temporary
    file in the same folder, flushed to disk, then renamed over ``path``. On any error or Ctrl-C
    the temporary is removed and ``path`` is untouched. Streams of any length fit."""
    try:
        mode = os.stat(path).st_mode  # through symbolic links
    except FileNotFoundError:
        mode = None
    except OSError as e:
        raise OutputError(f"{path}: cannot write ({e.strerror or e})") from None
    if mode is not None and stat.S_ISDIR(mode):
        raise OutputError(f"{path}: is a directory")
    if mode is not None and not stat.S_ISREG(mode):
        with _direct_writer(path) as f:
            yield f
        return
    path = Path(os.path.realpath(path))
    folder = path.parent
    try:
        fd, tmp = tempfile.mkstemp(dir=folder, prefix=f".{path.name}.", suffix=".tmp")
    except FileNotFoundError:
        raise OutputError(f"{path}: folder {folder} does not exist") from None
    except OSError as e:
        raise OutputError(f"{path}: cannot write ({e.strerror or e})") from None
    try:
        os.fchmod(fd, _mode_for(path))  # mkstemp's 0600 would hide the output from others
        with os.fdopen(fd, "wb") as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException as e:
        Path(tmp).unlink(missing_ok=True)
        if isinstance(e, OSError) and not isinstance(e, BrokenPipeError):
            # the file could be made but not written (a full disk, a file size limit): exit 1
            raise WriteError(f"{path}: cannot write ({e.strerror or e})") from None
        raise


@contextmanager
def _direct_writer(path: Path) -> Iterator[BinaryIO]:
    """A device, FIFO or socket written in place; a failed write (``/dev/full``) is a WriteError."""
    try:
        f = open(path, "wb")  # noqa: SIM115 (closed below, errors mapped)
    except OSError as e:
        raise OutputError(f"{path}: cannot write ({e.strerror or e})") from None
    try:
        with f:
            yield f
    except OSError as e:
        if isinstance(e, BrokenPipeError):
            raise
        raise WriteError(f"{path}: cannot write ({e.strerror or e})") from None


def _mode_for(path: Path) -> int:
    """The replaced file's permissions, or what a plain open() would give a new file."""
    try:
        return path.stat().st_mode & 0o7777
    except OSError:
        umask = os.umask(0)
        os.umask(umask)
        return 0o666 & ~umask


def same_file(a: Path, b: Path) -> bool:
    """Whether ``a`` and ``b`` name one existing file."""
    try:
        return os.path.samefile(a, b)
    except OSError:
        return False
