"""What the command's garbage-collector thresholds save: `mlcompile build` of an example for
every profile in targets/, as the console script runs it (mlcompile.entry sets the thresholds)
against the same command line with Python's default thresholds. Whole processes, interleaved,
CPU seconds (user + system) of each, median of N runs (default 5) after one discarded run:

    python bench/build_gc.py [--runs 5] [--example churn]
"""

from __future__ import annotations

import argparse
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_THRESHOLDS = "import sys; sys.argv = ['mlcompile', *sys.argv[1:]]; from mlcompile.cli import main; main()"


def cpu_seconds(command: list[str]) -> float:
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    subprocess.run(command, check=True, cwd=ROOT)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--example", default="churn")
    options = parser.parse_args()
    out = Path(tempfile.mkdtemp(prefix="mlcompile-bench-gc-"))
    build = ["build", str(ROOT / "examples" / options.example / "mlcompile.yaml"), "-t", str(ROOT / "targets"), "-o", str(out), "--git-commit", "none", "-q"]
    commands = {"default thresholds": [sys.executable, "-c", DEFAULT_THRESHOLDS, *build], "the command's": [sys.executable, "-m", "mlcompile", *build]}
    seconds: dict[str, list[float]] = {name: [] for name in commands}
    try:
        for run in range(options.runs + 1):
            for name, command in commands.items():
                shutil.rmtree(out, ignore_errors=True)
                spent = cpu_seconds(command)
                if run:  # the first round fills the file cache
                    seconds[name].append(spent)
    finally:
        shutil.rmtree(out, ignore_errors=True)
    medians = {name: statistics.median(values) for name, values in seconds.items()}
    for name, median in medians.items():
        print(f"mlcompile build {options.example}, every profile, {name}: {median:.2f} s CPU (median of {options.runs})")
    tuned, default = medians["the command's"], medians["default thresholds"]
    print(f"ratio: {tuned / default:.2f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
