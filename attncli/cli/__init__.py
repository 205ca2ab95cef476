"""The ``attn`` command: parses options, calls the library, turns AttncliError into exit codes.

``app`` defines the Typer app and its shared options; ``commands`` and ``model_command`` register
the commands; ``run`` turns options into results; ``output`` writes them. The console script
enters through :mod:`attncli.entry`, which sets up signals and streams first.
"""

import sys

from attncli.cli import commands, model_command  # noqa: F401 (importing registers the commands)
from attncli.cli.app import app, fail, quiet_stdout
from attncli.entry import stopped


def main() -> None:
    """Run the app. Usage errors (an unknown option, a value of the wrong type) are reported on
    one line like every other error, exit code 2; so is a failure to write the help."""
    try:
        code = app(prog_name="attn", standalone_mode=False)
        sys.stdout.flush()
    except KeyboardInterrupt as e:
        stopped(e)
    except BrokenPipeError:  # attn … | head: the reader left, which is no error
        quiet_stdout()
        sys.exit(0)
    except OSError as e:  # e.g. attn --help > /dev/full
        quiet_stdout()
        fail(f"cannot write to standard output ({e.strerror or e})", 1)
    except Exception as e:
        message = getattr(e, "format_message", None)
        if message is None:  # not a usage error of the command line parser
            raise
        code = getattr(e, "exit_code", 2)
        if message().strip():  # empty: e.g. no arguments at all, the help was printed instead
            command = getattr(getattr(e, "ctx", None), "command_path", "attn")
            fail(f"{message()} (see '{command} --help')", code)
        sys.exit(code)
    sys.exit(code if isinstance(code, int) else 0)


__all__ = ["app", "main"]
