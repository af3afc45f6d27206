"""Deploy's wall-clock limits share the process's one SIGALRM timer: lifting the last limit
leaves the process's own alarm (its handler and its timer) as it found them, and an alarm of a
limit that came due as it was lifted reaches no one (under the default handler it would end
the process: "Alarm clock")."""

from __future__ import annotations

import signal
import time
from collections.abc import Iterator

import pytest

from mlcompile.runtime.deadline import CallTimedOut, call_limit, deploy_deadline


@pytest.fixture
def own_alarm() -> Iterator[list[float]]:
    """This process's own alarm handler (recording when it runs), restored afterwards with the
    signal mask and whatever timer the test runner had set."""
    calls: list[float] = []
    saved_timer = signal.getitimer(signal.ITIMER_REAL)
    saved_mask = signal.pthread_sigmask(signal.SIG_BLOCK, set())
    previous = signal.signal(signal.SIGALRM, lambda signum, frame: calls.append(time.monotonic()))
    try:
        yield calls
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.pthread_sigmask(signal.SIG_SETMASK, saved_mask)
        signal.signal(signal.SIGALRM, previous)
        signal.setitimer(signal.ITIMER_REAL, *saved_timer)


def test_an_alarm_due_as_the_limit_is_lifted_does_not_reach_the_previous_handler(own_alarm: list[float]) -> None:
    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGALRM})
    with call_limit(0.05):
        time.sleep(0.3)  # the limit's alarm comes due, undeliverable: pending as the limit is lifted
    signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGALRM})
    time.sleep(0.3)
    assert own_alarm == []
    assert signal.getitimer(signal.ITIMER_REAL)[1] == 0.0  # the limits' repeating alarm is gone


def test_the_processs_own_timer_runs_on_after_the_limits_with_its_time_left(own_alarm: list[float]) -> None:
    signal.setitimer(signal.ITIMER_REAL, 0.6)
    armed = time.monotonic()
    with deploy_deadline(30), pytest.raises(CallTimedOut), call_limit(0.1):
        time.sleep(5)  # interrupted by the call limit
    left, _ = signal.getitimer(signal.ITIMER_REAL)
    assert 0 < left <= 0.6 - (time.monotonic() - armed) + 0.01
    waited = time.monotonic()
    while not own_alarm and time.monotonic() - waited < 5:
        time.sleep(0.05)
    assert len(own_alarm) == 1 and own_alarm[0] - armed >= 0.59
