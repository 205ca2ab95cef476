"""The ``attn`` command: parses options, calls the library, turns AttncliError into exit codes.

``app`` defines the Typer app and its shared options; ``commands`` and ``model_command`` register
the commands; ``run`` turns options into results; ``output`` writes them.
"""

import sys

from attncli.cli import commands, model_command  # noqa: F401 (importing registers the commands)
from attncli.cli.app import app


def main() -> None:
    """Console-script entry point. Usage errors (an unknown option, a value of the wrong type)
    are reported on one line like every other error, exit code 2."""
    try:
        code = app(prog_name="attn", standalone_mode=False)
    except Exception as e:
        message = getattr(e, "format_message", None)
        if message is None:  # not a usage error of the command line parser
            raise
        if not message().strip():  # e.g. no arguments at all: the help was printed instead
            sys.exit(getattr(e, "exit_code", 2))
        command = getattr(getattr(e, "ctx", None), "command_path", "attn")
        sys.stderr.write(f"attn: error: {message()} (see '{command} --help')\n")
        sys.exit(getattr(e, "exit_code", 2))
    sys.exit(code if isinstance(code, int) else 0)


__all__ = ["app", "main"]
