"""A test that hangs with SIGALRM blocked — out of pytest-timeout's reach — still ends: the
watchdog prints where every thread was and ends that pytest process."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path


def _pytest(tmp_path: Path, tests: str, *, watchdog: str, ini: str = "[pytest]\n") -> subprocess.CompletedProcess[str]:
    """pytest with the watchdog plugin on `tests` (a module's source) in `tmp_path`."""
    (tmp_path / "test_module.py").write_text(tests)
    (tmp_path / "pytest.ini").write_text(ini)
    env = {**os.environ, "MLCOMPILE_TEST_WATCHDOG": watchdog, "PYTHONPATH": str(Path(__file__).parent)}
    command = [sys.executable, "-m", "pytest", "-p", "hang_watchdog", "-p", "no:cacheprovider", "-c", str(tmp_path / "pytest.ini"), str(tmp_path)]
    return subprocess.run(command, capture_output=True, text=True, timeout=60, cwd=tmp_path, env=env)


HANGS = """
import signal, time

def test_that_hangs_with_the_alarm_blocked():
    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGALRM})
    time.sleep(120)
"""


def test_a_hang_that_blocks_sigalrm_is_ended_with_its_stack(tmp_path: Path) -> None:
    done = _pytest(tmp_path, HANGS, watchdog="3", ini="[pytest]\ntimeout = 1\n")  # pytest-timeout's SIGALRM: blocked
    assert done.returncode != 0
    assert "test_module.py::test_that_hangs_with_the_alarm_blocked: still running after 3s" in done.stderr
    assert "in test_that_hangs_with_the_alarm_blocked" in done.stderr  # where it hung


LONG_BUT_ALLOWED = """
import time
import pytest

@pytest.mark.timeout(30)
def test_that_its_own_timeout_allows_to_run_long():
    time.sleep(4)
"""


def test_a_test_whose_timeout_marker_allows_longer_is_not_ended(tmp_path: Path) -> None:
    done = _pytest(tmp_path, LONG_BUT_ALLOWED, watchdog="2")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "still running" not in done.stderr


def test_a_watchdog_of_0_is_off_and_one_that_is_not_a_number_is_a_usage_error(tmp_path: Path) -> None:
    runs_a_while = "import time\n\ndef test_runs_a_while():\n    time.sleep(2)\n"
    off = _pytest(tmp_path, runs_a_while, watchdog="0")
    assert off.returncode == 0 and "still running" not in off.stderr, off.stdout + off.stderr
    wrong = _pytest(tmp_path, runs_a_while, watchdog="soon")
    assert wrong.returncode == 4 and "MLCOMPILE_TEST_WATCHDOG='soon': expected seconds" in wrong.stderr
