"""`mlcompile diff` of a monorepo pull request against one `mlcompile build` (target: < 2x).

    python bench/diff.py [--systems 100] [--runs 3]

A scratch git repository holds the repository's targets/ and N generated systems
(bench/generate.py: systems/sys-NNN/mlcompile.yaml, every profile); one commit, then one
system's serving replicas change. Timed, as whole processes, interleaved, median of N runs
after one discarded warm-up of each:

* build: `mlcompile build` of that one system for every profile (the unit of work);
* diff:  `mlcompile diff 'systems/*/mlcompile.yaml' --base HEAD --format markdown` — all N
  systems; the N-1 unchanged ones are not built (their spec and profiles are the same at HEAD);
* diff, nothing changed: the same with the change undone (N systems, no build at all);
* build with --cache-dir of all N systems, the cache filled by an earlier build at HEAD.

Every command runs with --warn-only: the generated specs carry none of the labels the shipped
profiles' policies require. Exit status 1 when the diff takes 2x the one-system build or more."""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))

from generate import write_monorepo  # noqa: E402

CHANGED = "systems/sys-042/mlcompile.yaml"


def timed(command: list[str], cwd: Path) -> float:
    start = time.perf_counter()
    subprocess.run(command, cwd=cwd, check=False, capture_output=True)
    return time.perf_counter() - start


def git(repo: Path, *args: str) -> None:
    subprocess.run(["git", "-c", "user.email=bench@example.com", "-c", "user.name=bench", *args], cwd=repo, check=True, capture_output=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--systems", type=int, default=100)
    parser.add_argument("--runs", type=int, default=3)
    options = parser.parse_args()
    cli = [sys.executable, "-m", "mlcompile"]
    with tempfile.TemporaryDirectory(prefix="mlcompile-bench-diff-") as scratch:
        repo = Path(scratch) / "repo"
        shutil.copytree(ROOT / "targets", repo / "targets")
        write_monorepo(repo, options.systems)
        git(repo, "init", "-q")
        git(repo, "add", "-A")
        git(repo, "commit", "-qm", "base")
        cache = Path(scratch) / "cache"
        all_specs = "systems/*/mlcompile.yaml"
        fill = [
            *cli,
            "build",
            all_specs,
            "--target",
            "targets/",
            "--out",
            str(Path(scratch) / "fill"),
            "--git-commit",
            "none",
            "-q",
            "--warn-only",
            "--cache-dir",
            str(cache),
        ]
        started = time.perf_counter()
        subprocess.run(fill, cwd=repo, check=True, capture_output=True)
        cold = time.perf_counter() - started
        spec = repo / CHANGED
        spec.write_text(spec.read_text().replace("replicas: {min: 1, max: 3}", "replicas: {min: 2, max: 3}"))
        build = [*cli, "build", CHANGED, "--target", "targets/", "--out", str(Path(scratch) / "one"), "--git-commit", "none", "-q", "--warn-only"]
        diff = [*cli, "diff", all_specs, "--target", "targets/", "--base", "HEAD", "--format", "markdown", "-q", "--warn-only"]
        cached = [
            *cli,
            "build",
            all_specs,
            "--target",
            "targets/",
            "--out",
            str(Path(scratch) / "all"),
            "--git-commit",
            "none",
            "-q",
            "--warn-only",
            "--cache-dir",
            str(cache),
        ]
        result = subprocess.run(diff, cwd=repo, capture_output=True, text=True, check=False)
        if "replicas 1..3 → 2..3" not in result.stdout:
            print(result.stdout[-2000:], result.stderr[-2000:], file=sys.stderr)
            return 2
        comment = len(result.stdout)
        timed(build, repo), timed(diff, repo)
        builds, diffs, cached_builds, unchanged = [], [], [], []
        for _ in range(options.runs):
            builds.append(timed(build, repo))
            diffs.append(timed(diff, repo))
            cached_builds.append(timed(cached, repo))
            spec.write_text(spec.read_text().replace("replicas: {min: 2, max: 3}", "replicas: {min: 1, max: 3}"))
            unchanged.append(timed(diff, repo))
            spec.write_text(spec.read_text().replace("replicas: {min: 1, max: 3}", "replicas: {min: 2, max: 3}"))
    b, d = statistics.median(builds), statistics.median(diffs)
    n = options.systems
    print(f"build, 1 system, every profile          {b:6.2f} s")
    print(f"diff, {n} systems, 1 changed             {d:6.2f} s   {d / b:.2f}x build   (target < 2x; comment {comment:,} characters)")
    print(f"diff, {n} systems, none changed          {statistics.median(unchanged):6.2f} s")
    print(f"build, {n} systems, no cache (once)       {cold:6.2f} s")
    print(f"build, {n} systems, --cache-dir, 1 changed {statistics.median(cached_builds):6.2f} s")
    return 0 if d / b < 2 else 1


if __name__ == "__main__":
    sys.exit(main())
