"""The project's exceptions: the library raises them, the CLI turns them into exit codes."""

from __future__ import annotations


class AttncliError(Exception):
    """Base of every error that is the user's to fix; the CLI prints it on one line and exits 2."""

    exit_code = 2


class InputError(AttncliError):
    """An embeddings, weights or sample source that cannot be read or is not valid."""


class ConfigError(AttncliError):
    """Options that contradict each other or the input (heads vs d_out, an unknown query, ...)."""


class OutputError(AttncliError):
    """An output that cannot be written where or how it was asked for."""


class WriteError(OutputError):
    """An output that failed while being written (a full disk or device): exit 1, as for any
    failure of the machine rather than of the request."""

    exit_code = 1
