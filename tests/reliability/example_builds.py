"""One unguarded `mlcompile build` of every example for every profile in targets/, shared by
the reliability tests that need a complete build (made once per test session, ~15 s)."""

from __future__ import annotations

import atexit
import fcntl
import os
import shutil
import subprocess
import sys
import tempfile
from functools import cache
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ("batch-scoring", "churn", "ranker-gpu")
SHARED_TMP_ENV = "MLCOMPILE_TESTS_SHARED_TMP"  # a folder every worker of one test session shares


def build_command(out: Path) -> list[str]:
    """Build every example for every profile: OUT/<system>/<profile>/ (offline, no lineage commit)."""
    specs = [str(ROOT / "examples" / example / "mlcompile.yaml") for example in EXAMPLES]
    return [sys.executable, "-m", "mlcompile", "build", *specs, "-t", str(ROOT / "targets"), "-o", str(out), "--git-commit", "none", "-q"]


@cache
def reference_build() -> Path:
    """OUT of build_command, made once per test session: the first worker to ask builds it in
    the session's shared temporary folder (SHARED_TMP_ENV, set by tests/conftest.py), under a
    lock the others wait on; outside a session, once per process."""
    shared = os.environ.get(SHARED_TMP_ENV)
    if not shared:
        folder = Path(tempfile.mkdtemp(prefix="mlcompile-reference-build-"))
        atexit.register(shutil.rmtree, folder, ignore_errors=True)
        _build(folder / "out")
        return folder / "out"
    folder = Path(shared) / "reference-build"
    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / "lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # released when the file closes
        if not (folder / "done").exists():
            shutil.rmtree(folder / "out", ignore_errors=True)  # a worker that failed half-way
            _build(folder / "out")
            (folder / "done").touch()
    return folder / "out"


def _build(out: Path) -> None:
    done = subprocess.run(build_command(out), cwd=ROOT, capture_output=True, text=True, timeout=600, env=dict(os.environ))
    if done.returncode != 0:
        raise AssertionError(f"the reference build failed (exit {done.returncode}):\n{done.stderr}")


def tree(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}
