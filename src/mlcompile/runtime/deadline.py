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
runs deploy); elsewhere they do nothing and the clients' own timeouts apply. The process may
have other threads (a test runner's, an SDK's): the kernel hands the alarm to any of them, and
Python runs the handler in the main thread at its next instruction, wherever that is."""

from __future__ import annotations

import logging
import signal
import threading
import time
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
    if _in_bookkeeping(frame) or _in_lock_bookkeeping(frame):
        # raised here, it would leave a limit half set or half lifted, or a lock of logging's
        # or threading's held: try again in a moment, by when the main thread is back in the
        # block's own code (raise there) or has lifted the limit (nothing due)
        signal.setitimer(signal.ITIMER_REAL, 0.001, REPEAT_SECONDS)
        return
    end, kind, message = min(due, key=lambda item: (item[1] is not DeadlinePassed, item[0]))
    if kind is DeadlinePassed:
        _expired = True
    raise kind(message)


def _in_bookkeeping(frame: Any) -> bool:
    """Whether the main thread is setting or lifting a limit — or in anything those call (a
    comprehension, `threading`, Lib/signal.py's wrappers): no block's body runs beneath them."""
    while frame is not None:
        if frame.f_code in _BOOKKEEPING:
            return True
        frame = frame.f_back
    return False


# Where the standard library takes and gives back a lock in Python code of its own, so that an
# exception raised there leaves it held (logging's `_releaseLock`, Condition's `__exit__`):
# all of logging, which blocks on nothing else, and threading but for the functions that wait,
# which a limit must interrupt.
_LOCKING_FILES = (logging.__file__, threading.__file__)
_WAITING = frozenset({"wait", "wait_for", "join", "_wait_for_tstate_lock", "acquire", "start"})


def _in_lock_bookkeeping(frame: Any) -> bool:
    if frame is None or frame.f_code.co_filename not in _LOCKING_FILES:
        return False
    return frame.f_code.co_filename == logging.__file__ or frame.f_code.co_name not in _WAITING


class _Limit:
    """One limit's `with` block. A class rather than a generator: the handler recognises its
    methods' code, and an exception raised between a generator's body and its `finally`
    (contextlib's __exit__ is Python code) would leave the limit set until garbage collection."""

    def __init__(self, seconds: float, kind: type[TimeoutError], message: str) -> None:
        self.seconds, self.kind, self.message = seconds, kind, message
        self.entry: tuple[float, type[TimeoutError], str] | None = None
        # with the first limit: the process's own alarm (a test runner's timeout, say), to put back
        self.outer: tuple[Any, float | None, float] | None = None

    def __enter__(self) -> Any:
        self.entry, self.outer = None, None
        if not _usable() or self.seconds <= 0:
            return self
        if not _limits:
            # the timer first: should it go off before our handler is in, its handler gets it
            delay, interval = signal.getitimer(signal.ITIMER_REAL)
            outer_end = time.monotonic() + delay if delay else None
            self.outer = (signal.signal(signal.SIGALRM, _on_alarm), outer_end, interval)
        self.entry = (time.monotonic() + self.seconds, self.kind, self.message)
        _limits.append(self.entry)
        _arm()
        return self

    def __exit__(self, *exc_info: object) -> None:
        if self.entry is None:
            return
        if self.outer is None:
            _limits.remove(self.entry)
            _arm()  # an outer limit that is due raises in its own block, after this one
            return
        _limits.clear()
        _arm()  # no alarm of ours is generated after this
        previous, outer_end, interval = self.outer
        # one generated just before is pending for the process or for a main thread that
        # blocks SIGALRM: take it, or the handler put back gets it (the default one ends the
        # process). One another thread took has tripped our handler, which signal() runs
        # first — unless that thread is still between the kernel and Python's C handler: a
        # window of microseconds that no handler swap can close.
        signal.sigtimedwait({signal.SIGALRM}, 0)
        if previous is not None:  # None: installed from C, which Python cannot put back
            signal.signal(signal.SIGALRM, previous)
        if outer_end is not None:
            signal.setitimer(signal.ITIMER_REAL, max(outer_end - time.monotonic(), 0.001), interval)


def deadline_seconds() -> float:
    import os

    text = os.environ.get(DEADLINE_ENV)
    try:
        return float(text) if text else DEFAULT_DEADLINE
    except ValueError:
        from mlcompile.runtime.contract import UsageError

        raise UsageError(f"{DEADLINE_ENV}={text!r} is not a number") from None


def call_limit(seconds: float) -> Any:
    return _Limit(seconds, CallTimedOut, f"no complete answer within {seconds:g}s")


class Clock(_Limit):
    """The whole deploy's limit; `passed` says whether that deploy ran out of time (read it
    after the block, where its failure is reported)."""

    passed = False

    def __init__(self, seconds: float = 0) -> None:
        super().__init__(seconds, DeadlinePassed, f"the deploy took longer than {seconds:g}s ({DEADLINE_ENV})")

    def __enter__(self) -> Clock:
        global _expired
        _expired = False
        super().__enter__()
        return self

    def __exit__(self, *exc_info: object) -> None:
        global _expired
        super().__exit__(*exc_info)
        self.passed, _expired = _expired, False


def deploy_deadline(seconds: float) -> Clock:
    return Clock(seconds)


def deadline_passed() -> bool:
    """Whether the deploy under way has run out of time (nothing is worth retrying then)."""
    return _expired


# the code of the limits' own bookkeeping, where the handler must not raise
_BOOKKEEPING = frozenset(function.__code__ for function in (_usable, _arm, _on_alarm, _Limit.__enter__, _Limit.__exit__, Clock.__enter__, Clock.__exit__))
