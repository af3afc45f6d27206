"""`mlcompile ARGS` run inside the test process, answered like `subprocess.run` (no tests here).

For tests about what a command does to a platform stand-in (a deploy against moto, the Vertex
AI or Azure ML stand-in), not about the process: a fresh interpreter per command spent ~3 s of
CPU importing the platform SDK the test process has imported already. The command line, its
options, its exit status and its two streams are the console script's; the command's
environment is exactly `env` and its working folder `cwd`, both put back afterwards. Tests of
the process itself (start-up, signals, isolation, sockets) keep starting one."""

from __future__ import annotations

import contextlib
import os
import subprocess
from collections.abc import Mapping, Sequence
from pathlib import Path

from click.testing import CliRunner

from mlcompile.cli import main

ROOT = Path(__file__).resolve().parents[1]


def mlcompile(args: Sequence[str], *, cwd: Path = ROOT, env: Mapping[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """`mlcompile ARGS` in `cwd` with environment `env` (default: this process's)."""
    overlay: dict[str, str | None] = {}
    if env is not None:
        overlay = {key: None for key in os.environ if key not in env}
        overlay.update(env)
    with contextlib.chdir(cwd):
        result = CliRunner().invoke(main, list(args), env=overlay, prog_name="mlcompile")
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception  # a bug, not an answer: the traceback belongs in the test's report
    return subprocess.CompletedProcess(["mlcompile", *args], result.exit_code, result.stdout, result.stderr)
