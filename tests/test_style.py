"""The code is formatted and linted by ruff with the settings in pyproject.toml, so that a
contributor's editor and CI agree on every file."""

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
RUFF = shutil.which("ruff", path=str(Path(sys.executable).parent)) or "ruff"  # the [dev] extra installs it
CODE = [folder for folder in ("src", "tests", "plugins", "bench") if (REPO / folder).is_dir()]


@pytest.mark.parametrize("command", [["check"], ["format", "--check"]], ids=["lint", "format"])
def test_ruff_finds_nothing_to_change(command: list[str]) -> None:
    found = subprocess.run([RUFF, *command, *CODE], cwd=REPO, capture_output=True, text=True)
    assert found.returncode == 0, found.stdout + found.stderr
