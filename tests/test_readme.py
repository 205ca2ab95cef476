"""The README's set-up commands are the ones CI runs and the ones that work."""

import re

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
