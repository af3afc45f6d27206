#!/usr/bin/env python3
"""How fast, and in how much memory, mlcompile refuses hostile YAML.

    python bench/hostile.py [-n 3] [--case NAME ...] [--budget-s 2] [--budget-mib 200] [--json FILE]

Every case of tests/reliability/hostile_cases.py (alias bombs, 10,000 levels of nesting, a
50 MiB file, millions of tiny values, binary, other encodings, duplicate keys, code-running
tags, merge-key abuse, huge scalars and numbers) is written as the system spec and as a
target profile, and run through `mlcompile validate` and `mlcompile build`, each N times in
a fresh process. The table gives, per case: the size of the file, the exit status, median
and worst wall time over all its runs, and the worst peak RSS (ru_maxrss of the child
alone, from wait4); beside them, in the same run, `mlcompile validate` of the valid toy spec.

Exit 1 when any run is over a budget, does not exit 2 with a located error at the hostile
file, or ran a tag (MARKER exists). Standard library + mlcompile; everything is written in
a temporary folder (and --json, if given)."""

from __future__ import annotations

import argparse
import json
import platform
import shutil
import statistics
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests" / "reliability"))

from hostile_cases import CASES, LOCATED, MARKER, VALID_SPEC, prepare, run_measured  # noqa: E402

COMBOS = (("spec", "validate"), ("spec", "build"), ("profile", "validate"), ("profile", "build"))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("-n", "--runs", type=int, default=3, help="runs of each case × command × role (default 3)")
    parser.add_argument("--case", action="append", help="only these cases (repeatable)")
    parser.add_argument("--budget-s", type=float, default=2.0)
    parser.add_argument("--budget-mib", type=float, default=200.0)
    parser.add_argument("--json", type=Path, help="write the figures here as JSON")
    args = parser.parse_args(argv)
    cases = [c for c in CASES if not args.case or c.name in args.case]
    rows = []
    failures: list[str] = []
    with tempfile.TemporaryDirectory(prefix="mlcompile-hostile-") as scratch:
        root = Path(scratch)
        # the reference: the valid toy spec, validated in the same kind of process
        ref = root / "reference"
        ref.mkdir()
        shutil.copy(VALID_SPEC, ref / "mlcompile.yaml")
        reference = [run_measured([sys.executable, "-m", "mlcompile", "validate", "mlcompile.yaml"], ref) for _ in range(args.runs)]
        rows.append({"case": "(valid toy spec: validate)", "bytes": VALID_SPEC.stat().st_size, "exit": sorted({r.exit_code for r in reference}),
                     "median_s": statistics.median(r.seconds for r in reference), "worst_s": max(r.seconds for r in reference),
                     "peak_mib": max(r.peak_rss_mib for r in reference), "runs": len(reference)})  # fmt: skip
        for case in cases:
            runs = []
            size = 0
            for role, command in COMBOS:
                for attempt in range(args.runs):
                    folder = root / f"{case.name}-{role}-{command}-{attempt}"
                    command_line, hostile = prepare(case, role, command, folder)
                    size = (folder / hostile).stat().st_size
                    run = run_measured(command_line, folder, timeout=60)
                    runs.append(run)
                    where = f"{case.name} ({role}, {command})"
                    located = any(m.group("file") == hostile for m in LOCATED.finditer(run.stderr))
                    if run.exit_code != 2 or not located or "Traceback" in run.stderr or "internal error" in run.stderr:
                        failures.append(f"{where}: exit {run.exit_code}, located at the file: {located}\n{run.stderr[-1500:]}")
                    if (folder / MARKER).exists():
                        failures.append(f"{where}: the payload ran")
                    if run.seconds > args.budget_s or run.peak_rss_mib > args.budget_mib:
                        failures.append(f"{where}: {run.seconds:.2f} s, {run.peak_rss_mib:.0f} MiB")
                    shutil.rmtree(folder)  # the largest cases are 5 MiB a run
            rows.append({"case": case.name, "bytes": size, "exit": sorted({r.exit_code for r in runs}),
                         "median_s": statistics.median(r.seconds for r in runs), "worst_s": max(r.seconds for r in runs),
                         "peak_mib": max(r.peak_rss_mib for r in runs), "runs": len(runs)})  # fmt: skip
            row = rows[-1]
            print(f"{row['case']:<22} {row['bytes']:>11,} B  exit {','.join(map(str, row['exit'])):<3} "
                  f"median {row['median_s']:.2f} s  worst {row['worst_s']:.2f} s  peak {row['peak_mib']:.0f} MiB", flush=True)  # fmt: skip

    print()
    print(
        f"| case | input size | exit | median s | worst s | peak RSS MiB |  ({args.runs} runs × 4: spec/profile × validate/build; Python {platform.python_version()})"
    )
    print("|---|---:|---:|---:|---:|---:|")
    for row in rows:
        print(
            f"| {row['case']} | {_size(row['bytes'])} | {','.join(map(str, row['exit']))} | {row['median_s']:.2f} | {row['worst_s']:.2f} | {row['peak_mib']:.0f} |"
        )
    hostile = rows[1:]
    total = sum(r["runs"] for r in hostile)
    worst = max(hostile, key=lambda r: r["worst_s"], default=None)
    biggest = max(hostile, key=lambda r: r["peak_mib"], default=None)
    if worst and biggest:
        print(f"\n{len(hostile)} cases, {total} runs, {len(failures)} failures; worst time {worst['worst_s']:.2f} s ({worst['case']}), "
              f"peak RSS {biggest['peak_mib']:.0f} MiB ({biggest['case']}); valid spec: {rows[0]['median_s']:.2f} s, {rows[0]['peak_mib']:.0f} MiB")  # fmt: skip
    for failure in failures:
        print("FAILED:", failure)
    if args.json:
        args.json.write_text(json.dumps({"rows": rows, "failures": failures}, indent=2, sort_keys=True) + "\n")
    return 1 if failures else 0


def _size(count: int) -> str:
    for unit, factor in (("MiB", 1024**2), ("KiB", 1024)):
        if count >= factor:
            return f"{count / factor:.1f} {unit}"
    return f"{count} B"


if __name__ == "__main__":
    sys.exit(main())
