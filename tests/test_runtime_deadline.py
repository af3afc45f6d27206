"""Deploy's wall-clock limits share the process's one SIGALRM timer: lifting the last limit
leaves the process's own alarm (its handler and its timer) as it found them, and an alarm of a
limit that came due as it was lifted reaches no one (under the default handler it would end
the process: "Alarm clock").

Each case runs in a fresh interpreter with one thread, as the CLI runs deploy: blocking a
signal blocks it for one thread only, and a test worker has several."""

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
