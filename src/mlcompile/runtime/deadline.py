"""Wall-clock limits on what deploy waits for, whatever a platform client does meanwhile.

A socket read timeout bounds the wait for each *chunk*: an answer trickled one byte a second
never trips it, and an SDK that sleeps for a server's `Retry-After: 100000` never reads at
all. So deploy also sets limits on elapsed time:

* `call_limit(seconds)` — one request (with its answer) must be complete within
  MLCOMPILE_DEPLOY_TIMEOUT; past that, `CallTimedOut` (a TimeoutError: transient, retried) is
  raised inside whatever the client is blocked in;
* `deploy_deadline(seconds)` — the whole deploy (MLCOMPILE_DEPLOY_DEADLINE); past that every
  blocking call is interrupted with `DeadlinePassed` until deploy has unwound, and
  `deadline_passed()` says so to the code that reports the failure.

Both use one SIGALRM interval timer, so they work in the main thread of a process (as the CLI
runs deploy); elsewhere they do nothing and the clients' own timeouts apply."""

from __future__ import annotations

import signal
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

DEADLINE_ENV = "MLCOMPILE_DEPLOY_DEADLINE"
DEFAULT_DEADLINE = 3600.0
# once the deploy deadline has passed, interrupt again this often until deploy returns (an
# SDK may catch one interruption and retry)
REPEAT_SECONDS = 0.2


class CallTimedOut(TimeoutError):
    """One request took longer than its limit: transient, like any timeout."""


class DeadlinePassed(TimeoutError):
    """The whole deploy took longer than MLCOMPILE_DEPLOY_DEADLINE."""


_limits: list[tuple[float, type[TimeoutError], str]] = []  # (monotonic end, what to raise, message)
_expired = False


def _usable() -> bool:
    return threading.current_thread() is threading.main_thread() and hasattr(signal, "setitimer")


def _arm() -> None:
    if not _limits:
        signal.setitimer(signal.ITIMER_REAL, 0)
        return
    left = min(end for end, _, _ in _limits) - time.monotonic()
    signal.setitimer(signal.ITIMER_REAL, max(left, 0.001), REPEAT_SECONDS)


def _on_alarm(signum: int, frame: Any) -> None:
    global _expired
    now = time.monotonic()
    due = [(end, kind, message) for end, kind, message in _limits if end <= now]
    if not due:
        _arm()  # an earlier limit was lifted: wait for the next one
        return
    end, kind, message = min(due, key=lambda item: (item[1] is not DeadlinePassed, item[0]))
    if kind is DeadlinePassed:
        _expired = True
    raise kind(message)


@contextmanager
def _limit(seconds: float, kind: type[TimeoutError], message: str) -> Iterator[None]:
    if not _usable() or seconds <= 0:
        yield
        return
    entry = (time.monotonic() + seconds, kind, message)
    outermost = not _limits
    if outermost:  # the process's own alarm (a test runner's timeout, say) is put back after
        previous = signal.signal(signal.SIGALRM, _on_alarm)
        delay, interval = signal.getitimer(signal.ITIMER_REAL)
        outer_end = time.monotonic() + delay if delay else None
    _limits.append(entry)
    _arm()
    try:
        yield
    finally:
        # no alarm while the limit is lifted: one raised here would leave it armed
        blocked = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGALRM})
        try:
            _limits.remove(entry)
            _arm()
            if outermost:
                # an alarm of ours that came due just now is pending: taken here, it cannot
                # reach the handler put back (the default one ends the process)
                if signal.SIGALRM in signal.sigpending():
                    signal.sigwait({signal.SIGALRM})
                signal.signal(signal.SIGALRM, previous)
                if outer_end is not None:
                    signal.setitimer(signal.ITIMER_REAL, max(outer_end - time.monotonic(), 0.001), interval)
        finally:
            signal.pthread_sigmask(signal.SIG_SETMASK, blocked)


def deadline_seconds() -> float:
    import os

    text = os.environ.get(DEADLINE_ENV)
    try:
        return float(text) if text else DEFAULT_DEADLINE
    except ValueError:
        from mlcompile.runtime.contract import UsageError

        raise UsageError(f"{DEADLINE_ENV}={text!r} is not a number") from None


def call_limit(seconds: float) -> Any:
    return _limit(seconds, CallTimedOut, f"no complete answer within {seconds:g}s")


class Clock:
    """What `deploy_deadline` yields: whether that deploy ran out of time (read it after the
    block, where its failure is reported)."""

    passed = False


@contextmanager
def deploy_deadline(seconds: float) -> Iterator[Clock]:
    global _expired
    _expired, clock = False, Clock()
    try:
        with _limit(seconds, DeadlinePassed, f"the deploy took longer than {seconds:g}s ({DEADLINE_ENV})"):
            yield clock
    finally:
        clock.passed, _expired = _expired, False


def deadline_passed() -> bool:
    """Whether the deploy under way has run out of time (nothing is worth retrying then)."""
    return _expired
