"""The README's ``$ attn …`` transcripts, run as a reader would: COLUMNS=100, NO_COLOR, in a
fresh folder where the README's Python examples have run first (they make files such as
``mha.pt`` that transcripts use). tests/test_readme.py compares; ``python -m tests.transcripts``
rewrites the README with what the program prints now."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
# a ```text block whose first line is a command: the command, then what it printed
BLOCK = re.compile(r"```text\n\$ (attn [^\n]*)\n(.*?)```", re.DOTALL)
PYTHON = re.compile(r"```python\n(.*?)```", re.DOTALL)
ENV = {"COLUMNS": "100", "NO_COLOR": "1", "TERM": "dumb", "PYTHONIOENCODING": "utf-8"}


def transcripts(text: str) -> list[tuple[str, str]]:
    """(command, printed output) for each transcript of ``text``."""
    return BLOCK.findall(text)


def run_all(text: str) -> dict[str, str]:
    """What each transcript's command prints now, by command."""
    env = {**os.environ, **ENV}
    env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")])
    env.pop("FORCE_COLOR", None)
    with tempfile.TemporaryDirectory() as folder:
        for code in PYTHON.findall(text):
            subprocess.run([sys.executable, "-c", code], cwd=folder, env=env, check=True,
                           capture_output=True, timeout=300)  # fmt: skip
        return {
            command: subprocess.run(["bash", "-c", command + " 2>&1"], cwd=folder, env=env,
                                    capture_output=True, text=True, timeout=300).stdout
            for command, _ in transcripts(text)
        }  # fmt: skip


def updated(text: str) -> str:
    """``text`` with every transcript's output replaced by what it prints now."""
    outputs = run_all(text)
    return BLOCK.sub(lambda m: f"```text\n$ {m.group(1)}\n{outputs[m.group(1)]}```", text)


if __name__ == "__main__":
    README.write_text(updated(README.read_text()))
    print(f"{len(transcripts(README.read_text()))} transcripts updated in {README}")
