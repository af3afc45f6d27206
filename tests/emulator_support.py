"""The environment the emulation tests start `mlcompile run --emulate` in.

Nothing of this session's MLCOMPILE_/MLFLOW_ settings reaches the run, and every run a test
worker starts shares the worker's warm interpreter (MLCOMPILE_EMULATE_WARM_SOCKET): its steps
fork from one fork server that imported the data stack once, instead of each run starting its
own (~4-10 s of CPU a run)."""

from __future__ import annotations

from pathlib import Path

from mlcompile.emulate.containers import host_environment
from mlcompile.emulate.warm_shell import SHARED_SOCKET_ENV, serve
from mlcompile.runtime import PRELOAD_WITH_FEAST

REPO = Path(__file__).resolve().parents[1]


def emulator_env() -> dict[str, str]:
    return {**host_environment(), "PYTHONPATH": str(REPO / "src"), SHARED_SOCKET_ENV: serve(PRELOAD_WITH_FEAST)}
