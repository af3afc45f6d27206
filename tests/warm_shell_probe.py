"""Run as `python -m warm_shell_probe OUT [STATUS] [SLEEP] [threads|term]` by tests/test_emulate_warm_shell.py:
writes what the process saw (argv, folder, PATH, stdin, whether the fork server's imports were
already loaded and how many objects the fork server froze, its pid and parent's; with `threads`, its OpenMP pools; with `term`, a SIGTERM handler that writes OUT.term) to OUT, prints a line on stdout and one on stderr, then exits STATUS."""

import gc
import json
import os
import sys
import time

out, status, pause = sys.argv[1], int(sys.argv[2]) if len(sys.argv) > 2 else 0, float(sys.argv[3]) if len(sys.argv) > 3 else 0
seen = {
    "argv": sys.argv[1:], "cwd": os.getcwd(), "path": os.environ.get("PATH", ""), "stdin": sys.stdin.read(), "pid": os.getpid(), "ppid": os.getppid(),
    "warm": "mlcompile.runtime.warm" in sys.modules, "frozen": gc.get_freeze_count(), "marker": os.environ.get("PROBE_MARKER"),
    "omp": os.environ.get("OMP_NUM_THREADS"),
}  # fmt: skip
if "term" in sys.argv[4:]:  # a launcher's SIGTERM handler: it cleans up, then exits
    import signal

    def _terminated(signum: int, frame: object) -> None:
        with open(out + ".term", "w") as handle:
            handle.write("terminated")
        os._exit(143)

    signal.signal(signal.SIGTERM, _terminated)
if "threads" in sys.argv[4:]:  # the OpenMP pools this process would use, once scikit-learn has loaded them
    import sklearn.ensemble  # noqa: F401
    from threadpoolctl import threadpool_info

    seen["openmp"] = sorted({pool["num_threads"] for pool in threadpool_info() if pool["user_api"] == "openmp"})
with open(out, "w") as handle:
    json.dump(seen, handle)
print("to stdout")
print("to stderr", file=sys.stderr)
time.sleep(pause)
sys.exit(status)
