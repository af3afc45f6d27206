"""The README's two set-up commands are what CI runs, word for word."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def readme_setup_commands() -> list[str]:
    text = (ROOT / "README.md").read_text()
    section = text.split("## Set up", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"```bash\n(.+?)\n```", section)


def test_readme_opens_with_two_setup_commands_install_and_test() -> None:
    commands = readme_setup_commands()
    assert len(commands) == 2
    install, test = commands
    assert "python3 -m venv" in install and "uv pip install --compile-bytecode -e '.[all,dev]'" in install and "mlcompile build examples/" in install
    assert test.endswith("pytest")


def test_ci_runs_exactly_the_readme_commands() -> None:
    ci_lines = (ROOT / ".ci" / "run").read_text().splitlines()
    for command in readme_setup_commands():
        assert command in ci_lines, f"README command not in .ci/run: {command}"


def test_readme_example_paths_exist() -> None:
    install = readme_setup_commands()[0]
    for path in re.findall(r"(?:examples|targets)/[\w./-]*", install):
        assert (ROOT / path).exists(), path
