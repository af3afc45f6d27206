#!/usr/bin/env python3
"""How long `mlcompile validate` takes, start to finish, in a fresh process.

    python bench/validate.py [SPEC ...] [-n 10] [--budget 0.3] [--json bench/results.json]

Each spec (default: every examples/*/mlcompile.yaml, else bench/fixture/mlcompile.yaml) is
validated N times in fresh interpreters, beside two baselines measured in the same run:
`python -c pass` (the interpreter's own start) and `python -c "import yaml, pydantic"` (the
libraries validate cannot avoid). Medians of wall-clock time; ratios are against
`python -c pass`. Exits 1 when a validate median exceeds the budget, 2 when a spec does not
validate. `--importtime` adds the slowest imports of one validate run (python -X importtime).

Standard library only, so it runs wherever mlcompile does."""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BUDGET_S = 0.3
# What an installed package runs with: bytecode cached in __pycache__.  Under
# PYTHONDONTWRITEBYTECODE (set in some CI and container images) nothing is cached and every
# "cold" run would also recompile mlcompile's sources, measuring the compiler rather than
# validate; the untimed warm-up below writes the .pyc files.
ENV = {key: value for key, value in os.environ.items() if key != "PYTHONDONTWRITEBYTECODE"}


def default_specs() -> list[Path]:
    examples = sorted((ROOT / "examples").glob("*/mlcompile.yaml"))
    return examples or [ROOT / "bench" / "fixture" / "mlcompile.yaml"]


def timed(commands: list[list[str]], runs: int, cwd: Path) -> list[dict[str, object]]:
    """Median, min and max wall-clock seconds of `runs` fresh runs of each command, after one
    untimed warm-up each (fills the OS file cache, writes any missing .pyc). Runs are
    interleaved round by round, so that a burst of load on a shared machine hits every
    command alike instead of skewing one of them."""
    warm = [subprocess.run(command, cwd=cwd, capture_output=True, text=True, env=ENV) for command in commands]
    times: list[list[float]] = [[] for _ in commands]
    cpu: list[list[float]] = [[] for _ in commands]
    for _ in range(runs):
        for index, command in enumerate(commands):
            before = resource.getrusage(resource.RUSAGE_CHILDREN)
            started = time.perf_counter()
            proc = subprocess.run(command, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=ENV)
            times[index].append(time.perf_counter() - started)
            after = resource.getrusage(resource.RUSAGE_CHILDREN)
            # CPU seconds of the process: on a loaded machine, waiting for a core inflates the
            # wall clock but not this
            cpu[index].append(after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime)
            if proc.returncode != warm[index].returncode:
                raise SystemExit(f"unstable exit status {proc.returncode} != {warm[index].returncode} for {command}")
    return [
        {
            "median_s": statistics.median(samples),
            "min_s": min(samples),
            "max_s": max(samples),
            "cpu_median_s": statistics.median(cpu_samples),
            "runs": runs,
            "exit_code": first.returncode,
            "stderr": first.stderr[-2000:] if first.returncode else "",
        }
        for samples, cpu_samples, first in zip(times, cpu, warm)
    ]


def import_profile(command: list[str], cwd: Path, top: int) -> list[tuple[str, int, int]]:
    """(module, self µs, cumulative µs) of the slowest top-level and self-time imports."""
    proc = subprocess.run([command[0], "-X", "importtime", *command[1:]], cwd=cwd, capture_output=True, text=True, env=ENV)
    rows = []
    for line in proc.stderr.splitlines():
        match = re.match(r"import time:\s+(\d+) \|\s+(\d+) \|( *)(\S+)", line)
        if match:
            rows.append((match.group(4), int(match.group(1)), int(match.group(2)), len(match.group(3))))
    top_level = sorted((r for r in rows if r[3] <= 1), key=lambda r: -r[2])[:top]
    by_self = sorted(rows, key=lambda r: -r[1])[:top]
    return [(name, own, cumulative) for name, own, cumulative, _ in top_level], [(name, own, cumulative) for name, own, cumulative, _ in by_self]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("specs", nargs="*", type=Path, help="specs to validate (default: examples/*/mlcompile.yaml, else the bench fixture)")
    parser.add_argument("-n", "--runs", type=int, default=10, help="timed runs per command (default 10)")
    parser.add_argument("--budget", type=float, default=BUDGET_S, help=f"seconds a validate median may take (default {BUDGET_S})")
    parser.add_argument("--json", type=Path, default=ROOT / "bench" / "results.json", help="where to write the results")
    parser.add_argument("--cli", default=None, help="command that runs mlcompile (default: this python -m mlcompile)")
    parser.add_argument("--importtime", action="store_true", help="also show the slowest imports of validating the first spec")
    args = parser.parse_args(argv)

    python = sys.executable
    cli = args.cli.split() if args.cli else [python, "-m", "mlcompile"]
    specs = [s.resolve() for s in (args.specs or default_specs())]
    cwd = ROOT

    labelled = [
        ("baseline", "python -c pass", [python, "-c", "pass"]),
        ("baseline", "python -c 'import yaml, pydantic'", [python, "-c", "import yaml, pydantic"]),
        *(("validate", f"mlcompile validate {os.path.relpath(spec, cwd)}", [*cli, "validate", str(spec)]) for spec in specs),
    ]
    measured = timed([command for _, _, command in labelled], args.runs, cwd)
    rows = [(kind, name, result) for (kind, name, _), result in zip(labelled, measured)]
    baseline = rows[0][2]

    base = float(baseline["median_s"])  # type: ignore[arg-type]
    print(f"{'command':<70} {'median':>8} {'min':>8} {'cpu':>8} {'x pass':>7}")
    for kind, name, result in rows:
        median = float(result["median_s"])  # type: ignore[arg-type]
        flag = ""
        if kind == "validate" and result["exit_code"] != 0:
            flag = f"  exit {result['exit_code']}"
        elif kind == "validate" and median > args.budget:
            flag = f"  OVER BUDGET ({args.budget:.2f}s)"
        print(f"{name:<70} {median:>7.3f}s {float(result['min_s']):>7.3f}s {float(result['cpu_median_s']):>7.3f}s {median / base:>6.1f}x{flag}")  # type: ignore[arg-type]

    profile = None
    if args.importtime and specs:
        top_level, by_self = import_profile([*cli, "validate", str(specs[0])], cwd, 15)
        profile = {"top_level_cumulative_us": top_level, "self_us": by_self}
        print(f"\nslowest imports of validating {os.path.relpath(specs[0], cwd)} (µs, one run)")
        print(f"  {'top-level module':<40} {'cumulative':>10}      {'module':<40} {'self':>8}")
        for (name_a, _, cumulative), (name_b, own, _) in zip(top_level, by_self):
            print(f"  {name_a:<40} {cumulative:>10}      {name_b:<40} {own:>8}")

    results = {
        "budget_s": args.budget,
        "runs": args.runs,
        "python": platform.python_version(),
        "machine": f"{platform.system()} {platform.machine()}, {os.cpu_count()} cpu",
        "results": [
            {"kind": kind, "command": name, **{k: v for k, v in result.items() if k != "stderr" or v},
             "ratio_vs_python_pass": float(result["median_s"]) / base}  # type: ignore[arg-type]
            for kind, name, result in rows
        ],
    }  # fmt: skip
    if profile:
        results["import_profile"] = profile
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(results, indent=2) + "\n")
    print(f"\nwrote {os.path.relpath(args.json, cwd)}")

    failed = [(name, r) for kind, name, r in rows if kind == "validate" and r["exit_code"] != 0]
    if failed:
        for name, result in failed:
            print(f"\n{name} exited {result['exit_code']}:\n{result['stderr']}", file=sys.stderr)
        return 2
    over = [name for kind, name, r in rows if kind == "validate" and float(r["median_s"]) > args.budget]  # type: ignore[arg-type]
    if over:
        print(f"over the {args.budget:.2f}s budget: {', '.join(over)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except BrokenPipeError:  # `| head`
        sys.exit(1)
