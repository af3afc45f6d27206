"""One unguarded `mlcompile build` of every example for every profile in targets/, shared by
the reliability tests that need a complete build (made once per test process, ~15 s)."""

from __future__ import annotations

import atexit
import os
import shutil
import subprocess
import sys
import tempfile
from functools import cache
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ("batch-scoring", "churn", "ranker-gpu")


def build_command(out: Path) -> list[str]:
    """Build every example for every profile: OUT/<system>/<profile>/ (offline, no lineage commit)."""
    specs = [str(ROOT / "examples" / example / "mlcompile.yaml") for example in EXAMPLES]
    return [sys.executable, "-m", "mlcompile", "build", *specs, "-t", str(ROOT / "targets"), "-o", str(out), "--git-commit", "none", "-q"]


@cache
def reference_build() -> Path:
    folder = Path(tempfile.mkdtemp(prefix="mlcompile-reference-build-"))
    atexit.register(shutil.rmtree, folder, ignore_errors=True)
    done = subprocess.run(build_command(folder / "out"), cwd=ROOT, capture_output=True, text=True, timeout=600, env=dict(os.environ))
    if done.returncode != 0:
        raise AssertionError(f"the reference build failed (exit {done.returncode}):\n{done.stderr}")
    return folder / "out"


def tree(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}
