"""Deploy's wall-clock limits share the process's one SIGALRM timer: lifting the last limit
leaves the process's own alarm (its handler and its timer) as it found them, and an alarm of a
limit that came due as it was lifted reaches no one (under the default handler it would end
the process: "Alarm clock").

Each case runs in a fresh interpreter, as the CLI runs deploy: blocking a signal blocks it for
one thread only, and a test worker has several threads of its own."""

from __future__ import annotations

import json
import subprocess
import sys

PROLOGUE = """
import json, signal, time
from mlcompile.runtime.deadline import CallTimedOut, call_limit, deploy_deadline
calls = []
signal.signal(signal.SIGALRM, lambda signum, frame: calls.append(time.monotonic()))
"""


def _run(program: str) -> dict:
    done = subprocess.run([sys.executable, "-c", PROLOGUE + program], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.splitlines()[-1])


def test_an_alarm_due_as_the_limit_is_lifted_does_not_reach_the_previous_handler() -> None:
    seen = _run("""
signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGALRM})
with call_limit(0.05):
    time.sleep(0.3)  # the limit's alarm comes due, undeliverable: pending as the limit is lifted
signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGALRM})
time.sleep(0.3)
print(json.dumps({"calls": len(calls), "timer": signal.getitimer(signal.ITIMER_REAL)}))
""")
    assert seen == {"calls": 0, "timer": [0.0, 0.0]}


def test_the_processs_own_timer_runs_on_after_the_limits_with_its_time_left() -> None:
    seen = _run("""
signal.setitimer(signal.ITIMER_REAL, 0.6)
armed = time.monotonic()
try:
    with deploy_deadline(30), call_limit(0.1):
        time.sleep(5)
except CallTimedOut:
    pass
left = signal.getitimer(signal.ITIMER_REAL)[0]
lifted = time.monotonic() - armed
while not calls and time.monotonic() - armed < 5:
    time.sleep(0.05)
print(json.dumps({"left": left, "lifted": lifted, "calls": [t - armed for t in calls]}))
""")
    assert 0 < seen["left"] <= 0.6 - seen["lifted"] + 0.01  # the time it had left when the limits were lifted
    assert len(seen["calls"]) == 1 and seen["calls"][0] >= 0.59


def test_limits_set_and_lifted_thousands_of_times_among_busy_threads_leave_nothing_behind() -> None:
    # Python runs the handler in the main thread at its next check point, wherever that is —
    # inside a limit being set or lifted too — and a thread other than main may take the alarm.
    # Limits of 2 ms around work of about as long, with threads contending for the interpreter,
    # make both happen often within seconds.
    seen = _run("""
import threading, traceback
from mlcompile.runtime import deadline
from mlcompile.runtime.deadline import DeadlinePassed

def nap():
    while True:
        time.sleep(0.0002)

for _ in range(4):
    threading.Thread(target=nap, daemon=True).start()

interrupted, timeouts = [], 0
BOOKKEEPING = {deadline.__file__, signal.__file__, threading.__file__}

def raised(exc):  # where the alarm interrupted the program: a block's body, never the limits' bookkeeping
    where = traceback.extract_tb(exc.__traceback__)[-2]
    if where.filename in BOOKKEEPING and where.name not in ("__init__", "call_limit", "deploy_deadline"):
        interrupted.append(where.name)

def work(i):
    global timeouts
    try:
        with call_limit(0.002):
            until = time.monotonic() + 0.0018 + (i % 5) * 0.0001
            while time.monotonic() < until:
                pass
    except CallTimedOut as exc:
        timeouts += 1
        raised(exc)

rounds, passed, leftovers = 0, 0, 0
until = time.monotonic() + 2
while time.monotonic() < until:
    rounds += 1
    work(rounds)
    leftovers += len(deadline._limits)
    try:
        with deploy_deadline(0.01 + (rounds % 7) * 0.001) as clock:
            for i in range(10):
                work(i)
                leftovers += len(deadline._limits) - 1  # the deadline's own
    except DeadlinePassed as exc:
        raised(exc)
    passed += clock.passed
time.sleep(0.3)  # a stray alarm would reach the handler put back by now
print(json.dumps({
    "leftovers": leftovers, "timer": signal.getitimer(signal.ITIMER_REAL),
    "handler put back": signal.getsignal(signal.SIGALRM) is not deadline._on_alarm, "calls": len(calls),
    "interrupted bookkeeping": interrupted, "some timed out": timeouts > 0, "some deadlines passed": passed > 0,
}))
""")
    assert seen == {
        "leftovers": 0, "timer": [0.0, 0.0], "handler put back": True, "calls": 0,
        "interrupted bookkeeping": [],
        "some timed out": True, "some deadlines passed": True,
    }  # fmt: skip


def test_a_limit_that_runs_out_inside_logging_leaves_loggings_lock_free() -> None:
    """An SDK logs all through a deploy. Raised inside logging's own lock bookkeeping (at the
    start of its Python `_releaseLock`, say), a limit's exception would leave the module's lock
    held: the next thread to log (a test client's event loop, much later) would wait forever."""
    seen = _run("""
import logging, threading
logger = logging.getLogger("sdk")
interrupted = 0
for _ in range(1000):
    try:
        with call_limit(0.0005):
            while True:
                logger.setLevel(logging.DEBUG)  # each clears the loggers' caches under the module's lock
                logger.isEnabledFor(logging.INFO)
                logger.setLevel(logging.INFO)
                sum(range(200))  # and some work of the caller's own
    except CallTimedOut:
        interrupted += 1
got = []

def take_and_give_back():
    got.append(logging._lock.acquire(timeout=2))
    if got[-1]:
        logging._lock.release()

other = threading.Thread(target=take_and_give_back)
other.start()
other.join()
print(json.dumps({"interrupted": interrupted, "lock_free": got == [True]}))
""")
    assert seen == {"interrupted": 1000, "lock_free": True}
