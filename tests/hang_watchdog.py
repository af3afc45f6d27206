"""A last resort for a test that hangs where pytest-timeout cannot reach it.

pytest-timeout interrupts a test with SIGALRM, which a test (or the code under test) can block,
or take from the main thread: a hang there once held a CI run until its 90-minute limit with
no word of where. The watchdog is a thread, which no signal mask stops: past
MLCOMPILE_TEST_WATCHDOG seconds (default 420; 0 turns it off), or half as long again as a
longer limit that pytest-timeout gives the test, it prints every thread's stack to standard error and ends
the process. Under xdist that is one crashed worker, reported with the test's name, and a run
that finishes red instead of one that never ends (processes the test had started are left to
the machine). Not armed under --pdb or --trace, where a person is at the prompt.

A Python thread rather than `faulthandler.dump_traceback_later`, whose C thread a child made
with os.fork does not inherit, and such a child then waits for it at exit forever. The price:
a hang in C code that holds the GIL stops the watchdog too."""

from __future__ import annotations

import faulthandler
import os
import threading
import time
from collections.abc import Iterator
from typing import IO

import pytest

WATCHDOG_ENV = "MLCOMPILE_TEST_WATCHDOG"
WATCHDOG_SECONDS = 420.0  # pytest-timeout's is 300 (pyproject.toml)
TIMEOUT_FACTOR = 1.5  # past what pytest-timeout allows a test: it acts first when it can


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
_seconds = WATCHDOG_SECONDS


def pytest_configure(config: pytest.Config) -> None:
    global _watchdog, _seconds
    setting = os.environ.get(WATCHDOG_ENV) or str(WATCHDOG_SECONDS)
    try:
        _seconds = float(setting)
    except ValueError:
        raise pytest.UsageError(f"{WATCHDOG_ENV}={setting!r}: expected seconds (0 turns the watchdog off)") from None
    if config.getoption("usepdb", False) or config.getoption("trace", False):
        _seconds = 0.0
    # the process's own standard error, kept now: while a test runs, pytest's capture has
    # swapped file descriptor 2 for a file that nobody reads once the process is ended
    _watchdog = _Watchdog(os.fdopen(os.dup(2), "w"))


def watchdog_seconds(item: pytest.Item) -> float:
    """The watchdog's limit for this test (0: none): never less than what pytest-timeout allows
    it (its marker, --timeout, PYTEST_TIMEOUT or the ini setting), times TIMEOUT_FACTOR."""
    if _seconds <= 0:
        return 0.0
    marker = item.get_closest_marker("timeout")
    allowed = [marker.args[0] if marker.args else marker.kwargs.get("timeout")] if marker is not None else []
    allowed += [item.config.getoption("timeout", None), os.environ.get("PYTEST_TIMEOUT")]
    try:
        allowed.append(item.config.getini("timeout"))
    except ValueError:  # pytest-timeout is not installed
        pass
    return max([_seconds] + [seconds * TIMEOUT_FACTOR for seconds in map(_seconds_in, allowed) if seconds > 0])


def _seconds_in(value: object) -> float:
    try:
        return float(str(value))
    except ValueError:
        return 0.0


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_protocol(item: pytest.Item, nextitem: pytest.Item | None) -> Iterator[None]:
    seconds = watchdog_seconds(item)
    if not seconds:
        yield
        return
    assert _watchdog is not None  # made by pytest_configure, which pytest calls on late plugins too
    _watchdog.arm(seconds, item.nodeid)
    try:
        yield
    finally:
        _watchdog.disarm()
