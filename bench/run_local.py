"""Benchmark `mlcompile run` on the churn example, and the executor's own overhead per step.

    python bench/run_local.py [--example examples/churn] [--repeat 3] [--json]

1. End to end: `mlcompile run` as a user runs it (a fresh CLI process, fresh workdir):
   training → batch scoring → monitoring → retraining on the breach. Target: < 30 s.
2. Overhead per step: each step's duration under the executor (process start to exit seen,
   logs, result file) minus the same step function called directly, in one warm process, with
   the same config and inputs. Target: < 0.5 s per step. Reported for both isolation modes
   (fork: forked from a warm fork server; subprocess: `python -m mlcompile.runtime`, the
   contract the cloud containers run, which pays the interpreter and imports every step).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def fresh_copy(example: Path, scratch: Path) -> Path:
    """A new folder each time (MLflow caches one database engine per tracking URI)."""
    folder = Path(tempfile.mkdtemp(dir=scratch)) / example.name
    shutil.copytree(example, folder, ignore=shutil.ignore_patterns(".mlcompile", "scores"))
    shutil.copytree(REPO / "targets", folder / "targets", dirs_exist_ok=True)
    return folder


def end_to_end(example: Path, scratch: Path, isolation: str) -> dict:
    folder = fresh_copy(example, scratch)
    started = time.perf_counter()
    done = subprocess.run(
        ["mlcompile", "run", str(folder / "mlcompile.yaml"), "--target", str(folder / "targets" / "local.yaml"), "--format", "json", "--isolation", isolation],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    wall = time.perf_counter() - started
    if done.returncode != 0:
        sys.exit(f"mlcompile run failed ({done.returncode}):\n{done.stderr[-3000:]}")
    summary = json.loads(done.stdout)
    steps = sum(len(p["steps"]) for p in summary["pipelines"])
    return {
        "isolation": isolation,
        "wall_seconds": round(wall, 2),
        "executor_seconds": summary["duration_seconds"],
        "steps": steps,
        "pipelines": [p["label"] for p in summary["pipelines"]],
    }


def overhead(example: Path, scratch: Path, isolation: str) -> dict:
    """Run through the Executor in this process, then call every executed step directly."""
    from mlcompile.local.executor import Executor
    from mlcompile.local.run import prepare
    from mlcompile.runtime import step_function
    from mlcompile.runtime.__main__ import parse

    folder = fresh_copy(example, scratch)
    prepared = prepare(str(folder / "mlcompile.yaml"), str(folder / "targets" / "local.yaml"))
    executor = Executor(prepared.plan, prepared.spec_dir, prepared.workdir, mode=isolation, lineage=prepared.lineage)
    if isolation == "fork":  # start the fork server first: a one-off cost of the run, not of each step
        from mlcompile.local.workers import warm_up
        from mlcompile.runtime import PRELOAD

        warm_up(PRELOAD)
    executor.run()
    executed = [s for p in executor.pipelines for s in p.steps if s.status == "succeeded"]
    # direct calls: the same steps in the same order with the same configs and inputs, in
    # this one warm process, against a fresh registry of their own (so that register really
    # registers and the champion/serving lookups see what the executor's steps saw)
    import mlcompile.runtime.warm  # noqa: F401

    direct_root = Path(tempfile.mkdtemp(dir=scratch))
    direct_env = {
        "MLFLOW_TRACKING_URI": f"sqlite:///{direct_root / 'mlflow.db'}",
        "MLFLOW_REGISTRY_URI": f"sqlite:///{direct_root / 'mlflow.db'}",
        "MLCOMPILE_ARTIFACT_ROOT": str(direct_root / "mlartifacts"),
        "MLCOMPILE_WORKDIR": str(direct_root),
    }
    from threadpoolctl import threadpool_limits

    threadpool_limits(int(executor.threads))  # the same OpenMP/BLAS threads the executor gives each step
    rows = []
    saved, cwd = dict(os.environ), os.getcwd()
    try:
        for step in executed:
            kind, config, inputs, outputs = parse(step.argv or [])
            direct_outputs = {name: str(direct_root / step.pipeline / step.name / Path(uri).name) for name, uri in outputs.items()}
            os.environ.update({k: v for k, v in (step.env or {}).items() if k != "MLCOMPILE_STEP_RESULT"})
            os.environ.update(direct_env)
            os.chdir(prepared.spec_dir)
            with open(os.devnull, "w") as sink, contextlib.redirect_stdout(sink):
                started = time.perf_counter()
                step_function(kind)(config, inputs, direct_outputs)
                direct = time.perf_counter() - started
            rows.append(
                {
                    "pipeline": step.pipeline,
                    "step": step.name,
                    "executor_seconds": round(step.seconds, 3),
                    "direct_seconds": round(direct, 3),
                    "overhead_seconds": round(step.seconds - direct, 3),
                }
            )
    finally:
        os.environ.clear()
        os.environ.update(saved)
        os.chdir(cwd)
    overheads = [r["overhead_seconds"] for r in rows]
    return {
        "isolation": isolation,
        "steps": rows,
        "overhead_mean_seconds": round(statistics.mean(overheads), 3),
        "overhead_median_seconds": round(statistics.median(overheads), 3),
        "overhead_max_seconds": round(max(overheads), 3),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--example", default=str(REPO / "examples" / "churn"))
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--skip-subprocess", action="store_true", help="skip the (slow) subprocess-isolation measurements")
    args = parser.parse_args()
    example = Path(args.example).resolve()
    scratch = Path(tempfile.mkdtemp(prefix="mlcompile-bench-"))
    modes = ["fork"] + ([] if args.skip_subprocess else ["subprocess"])
    report: dict = {
        "example": str(example.relative_to(REPO)) if example.is_relative_to(REPO) else str(example),
        "cpus": os.cpu_count(),
        "load_average": os.getloadavg(),
    }
    try:
        report["end_to_end"] = [end_to_end(example, scratch, mode) for mode in modes for _ in range(args.repeat)]
        report["overhead"] = [overhead(example, scratch, mode) for mode in modes]
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    if args.json:
        print(json.dumps(report, indent=2))
        return
    print(f"example {report['example']} on {report['cpus']} cpus (load average {', '.join(f'{x:.2f}' for x in report['load_average'])})")
    for mode in modes:
        walls = [r["wall_seconds"] for r in report["end_to_end"] if r["isolation"] == mode]
        first = next(r for r in report["end_to_end"] if r["isolation"] == mode)
        print(
            f"mlcompile run ({mode}): {first['steps']} steps in {'/'.join(first['pipelines'])}: wall {min(walls):.1f}s best, {statistics.median(walls):.1f}s median of {len(walls)} (target < 30 s)"
        )
    for entry in report["overhead"]:
        print(
            f"\nexecutor overhead per step ({entry['isolation']}): mean {entry['overhead_mean_seconds']:.3f}s, median {entry['overhead_median_seconds']:.3f}s, max {entry['overhead_max_seconds']:.3f}s (target < 0.5 s)"
        )
        print(f"  {'pipeline':<11} {'step':<20} {'executor':>9} {'direct':>8} {'overhead':>9}")
        for row in entry["steps"]:
            print(f"  {row['pipeline']:<11} {row['step']:<20} {row['executor_seconds']:>8.3f}s {row['direct_seconds']:>7.3f}s {row['overhead_seconds']:>8.3f}s")


if __name__ == "__main__":
    main()
