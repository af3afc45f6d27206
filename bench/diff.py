"""`mlcompile diff` of an unchanged spec across every profile, against one `mlcompile build`
of the same (issue target: diff < 2x build; both build the spec in one process with one SDK
import each — diff builds it twice, at the base and in the working tree).

    python bench/diff.py [--runs 3] [--spec examples/churn/mlcompile.yaml]

Whole processes, interleaved, median of N runs, one discarded warm-up of each."""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def timed(command: list[str]) -> float:
    start = time.perf_counter()
    subprocess.run(command, cwd=ROOT, check=True, capture_output=True)
    return time.perf_counter() - start


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--spec", default="examples/churn/mlcompile.yaml")
    options = parser.parse_args()
    cli = [sys.executable, "-m", "mlcompile"]
    with tempfile.TemporaryDirectory() as out:
        build = [*cli, "build", options.spec, "--target", "targets/", "--out", out, "--git-commit", "none", "-q"]
        diff = [*cli, "diff", options.spec, "--target", "targets/", "--base", "HEAD", "-q"]
        timed(build), timed(diff)
        builds, diffs = [], []
        for _ in range(options.runs):
            builds.append(timed(build))
            diffs.append(timed(diff))
    b, d = statistics.median(builds), statistics.median(diffs)
    print(f"build (all profiles)  {b:6.2f} s")
    print(f"diff  (unchanged)     {d:6.2f} s   {d / b:.2f}x build   (target < 2x)")
    return 0 if d / b < 2 else 1


if __name__ == "__main__":
    sys.exit(main())
