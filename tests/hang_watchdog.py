"""A last resort for a test that hangs where pytest-timeout cannot reach it.

pytest-timeout interrupts a test with SIGALRM, which a test (or the code under test) can block,
or take from the main thread: a hang there once held a CI run until its 90-minute limit with
no word of where. The watchdog is a thread, which no signal mask stops: past
MLCOMPILE_TEST_WATCHDOG seconds (well beyond pytest-timeout's limit) it prints every thread's
stack to standard error and ends the process. Under xdist that is one crashed worker, reported
with the test's name, and a run that finishes red instead of one that never ends.

A Python thread rather than `faulthandler.dump_traceback_later`: that one's C thread does not
survive a fork, and a forked child that then exits normally waits for it forever — the suite
forks steps from its workers' interpreters."""

from __future__ import annotations

import faulthandler
import os
import sys
import threading
import time
from collections.abc import Iterator
from typing import IO

import pytest

WATCHDOG_ENV = "MLCOMPILE_TEST_WATCHDOG"
WATCHDOG_SECONDS = 420.0  # pytest-timeout's is 300 (pyproject.toml)
TIMEOUT_MARGIN = 120.0  # past a test's own timeout marker, for pytest-timeout to act first


class _Watchdog:
    def __init__(self, stderr: IO[str]) -> None:
        self.stderr = stderr
        self.changed = threading.Condition()
        self.due: float | None = None
        self.what = ""
        self.thread: threading.Thread | None = None

    def arm(self, seconds: float, what: str) -> None:
        with self.changed:
            self.due, self.what = time.monotonic() + seconds, f"{what}: still running after {seconds:g}s ({WATCHDOG_ENV})"
            self.changed.notify()
        if self.thread is None or not self.thread.is_alive():
            self.thread = threading.Thread(target=self._watch, name="hang-watchdog", daemon=True)
            self.thread.start()

    def disarm(self) -> None:
        with self.changed:
            self.due = None
            self.changed.notify()

    def _watch(self) -> None:
        with self.changed:
            while self.due is None or self.due > time.monotonic():
                self.changed.wait(None if self.due is None else self.due - time.monotonic())
            self.stderr.write(f"\n{self.what}; the stack of every thread:\n")
            self.stderr.flush()
            faulthandler.dump_traceback(file=self.stderr, all_threads=True)
            os._exit(1)


_watchdog: _Watchdog | None = None


def pytest_configure(config: pytest.Config) -> None:
    # the process's own standard error, kept now: while a test runs, pytest's capture has
    # swapped file descriptor 2 for a file that nobody reads once the process is ended
    global _watchdog
    _watchdog = _Watchdog(os.fdopen(os.dup(2), "w"))


def watchdog_seconds(item: pytest.Item) -> float:
    """MLCOMPILE_TEST_WATCHDOG (default WATCHDOG_SECONDS), or more for a test whose own
    pytest-timeout marker allows it longer: the watchdog never ends what that limit allows."""
    seconds = float(os.environ.get(WATCHDOG_ENV) or WATCHDOG_SECONDS)
    marker = item.get_closest_marker("timeout")
    allowed = None
    if marker is not None:
        allowed = marker.args[0] if marker.args else marker.kwargs.get("timeout")
    if isinstance(allowed, (int, float)) and allowed > 0:
        return max(seconds, allowed + TIMEOUT_MARGIN)
    return seconds


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_protocol(item: pytest.Item, nextitem: pytest.Item | None) -> Iterator[None]:
    watchdog = _watchdog or _Watchdog(sys.__stderr__ or sys.stderr)
    watchdog.arm(watchdog_seconds(item), item.nodeid)
    try:
        yield
    finally:
        watchdog.disarm()
