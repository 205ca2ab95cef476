"""The ``attn`` command: parses options, calls the library, turns AttncliError into exit codes.

``app`` defines the Typer app and its shared options; ``commands`` and ``model_command`` register
the commands; ``run`` turns options into results; ``output`` writes them.
"""

from attncli.cli import commands, model_command  # noqa: F401 (importing registers the commands)
from attncli.cli.app import app


def main() -> None:
    """Console-script entry point."""
    app(prog_name="attn")


__all__ = ["app", "main"]
