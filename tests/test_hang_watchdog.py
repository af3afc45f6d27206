"""A test that hangs with SIGALRM blocked — out of pytest-timeout's reach — still ends: the
watchdog prints where every thread was and ends that pytest process."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

HANGS = """
import signal, time

def test_that_hangs_with_the_alarm_blocked():
    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGALRM})
    time.sleep(120)
"""


def test_a_hang_that_blocks_sigalrm_is_ended_with_its_stack(tmp_path: Path) -> None:
    (tmp_path / "test_hangs.py").write_text(HANGS)
    (tmp_path / "pytest.ini").write_text("[pytest]\ntimeout = 1\n")  # pytest-timeout's SIGALRM: blocked
    env = {**os.environ, "MLCOMPILE_TEST_WATCHDOG": "3", "PYTHONPATH": str(Path(__file__).parent)}
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "hang_watchdog", "-p", "no:cacheprovider", "-c", str(tmp_path / "pytest.ini"), str(tmp_path)],
        capture_output=True, text=True, timeout=60, cwd=tmp_path, env=env,
    )  # fmt: skip
    assert done.returncode != 0
    assert "test_hangs.py::test_that_hangs_with_the_alarm_blocked: still running after 3s" in done.stderr
    assert "in test_that_hangs_with_the_alarm_blocked" in done.stderr  # where it hung


LONG_BUT_ALLOWED = """
import time
import pytest

@pytest.mark.timeout(30)
def test_that_its_own_timeout_allows_to_run_long():
    time.sleep(4)
"""


def test_a_test_whose_timeout_marker_allows_longer_is_not_ended(tmp_path: Path) -> None:
    (tmp_path / "test_long.py").write_text(LONG_BUT_ALLOWED)
    (tmp_path / "pytest.ini").write_text("[pytest]\n")
    env = {**os.environ, "MLCOMPILE_TEST_WATCHDOG": "2", "PYTHONPATH": str(Path(__file__).parent)}
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "hang_watchdog", "-p", "no:cacheprovider", "-c", str(tmp_path / "pytest.ini"), str(tmp_path)],
        capture_output=True, text=True, timeout=60, cwd=tmp_path, env=env,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    assert "still running" not in done.stderr


def test_a_watchdog_of_0_is_off_and_one_that_is_not_a_number_is_a_usage_error(tmp_path: Path) -> None:
    (tmp_path / "test_long.py").write_text("import time\n\ndef test_runs_a_while():\n    time.sleep(2)\n")
    (tmp_path / "pytest.ini").write_text("[pytest]\n")

    def pytest_with(watchdog: str) -> subprocess.CompletedProcess[str]:
        env = {**os.environ, "MLCOMPILE_TEST_WATCHDOG": watchdog, "PYTHONPATH": str(Path(__file__).parent)}
        command = [sys.executable, "-m", "pytest", "-p", "hang_watchdog", "-p", "no:cacheprovider", "-c", str(tmp_path / "pytest.ini"), str(tmp_path)]
        return subprocess.run(command, capture_output=True, text=True, timeout=60, cwd=tmp_path, env=env)

    off = pytest_with("0")
    assert off.returncode == 0 and "still running" not in off.stderr, off.stdout + off.stderr
    wrong = pytest_with("soon")
    assert wrong.returncode == 4 and "MLCOMPILE_TEST_WATCHDOG='soon': expected seconds" in wrong.stderr
