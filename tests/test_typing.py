"""mypy, configured in pyproject.toml ([tool.mypy]), finds no error in src/mlcompile."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).parent.parent


@pytest.mark.slow
@pytest.mark.timeout(900)  # ~30 s from cold on a quiet machine, minutes on a loaded one
def test_mypy_finds_no_error(request: pytest.FixtureRequest) -> None:
    # pytest's cache folder keeps mypy's between runs: a rerun checks only what changed
    pytest_cache = getattr(request.config, "cache", None)  # None under -p no:cacheprovider
    cache = pytest_cache.mkdir("mypy") if pytest_cache is not None else ROOT / ".mypy_cache"
    proc = subprocess.run([sys.executable, "-m", "mypy", "--cache-dir", str(cache)], cwd=ROOT, capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "Success: no issues found" in proc.stdout
