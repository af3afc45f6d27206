"""How one step's process is started.

`fork` (default): a fork server that imported the data stack (pandas, scikit-learn, MLflow…)
once forks a fresh child per step. The child runs the very same entry point as
`python -m mlcompile.runtime` (argv, exit status, logs), in its own process, so a crash or a
leak in one step cannot touch another; it just skips ~2 s of imports per step.
`subprocess`: `python -m mlcompile.runtime …` exactly as a cloud container runs it."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from mlcompile.runtime.contract import RUNTIME_MODULE

_context: Any = None

# what OpenMP and the BLAS libraries read for their thread count
THREAD_VARIABLES = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")
STOP_GRACE_SECONDS = 10  # SIGTERM, then this long to finish before SIGKILL: a platform's grace period for a stopped container


def enter_forked_child(env: dict[str, str], log_path: str, cwd: str) -> None:
    """Make a process forked from the fork server look like a fresh one: its output to
    `log_path`, the caller's environment (not the fork server's from its start), `cwd`."""
    fd = os.open(log_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    sys.stdout.flush()
    sys.stderr.flush()
    os.dup2(fd, 1)
    os.dup2(fd, 2)
    os.close(fd)
    adopt(env, cwd)
    sys.stdout = os.fdopen(1, "w", buffering=1, closefd=False)
    sys.stderr = os.fdopen(2, "w", buffering=1, closefd=False)


def adopt(env: dict[str, str], cwd: str) -> None:
    """Take the caller's environment and folder, as a freshly started process would have them."""
    os.environ.clear()
    os.environ.update(env)
    os.chdir(cwd)
    threads = env.get("OMP_NUM_THREADS", "")
    if threads.isdigit():  # OpenMP/BLAS read their env when the fork server loaded them: set it now
        try:
            from threadpoolctl import threadpool_limits

            threadpool_limits(int(threads))
        except ImportError:
            pass


def _child(argv: list[str], env: dict[str, str], log_path: str, cwd: str) -> None:
    """Entry of a forked step process: logs to `log_path`, exits with the step's status."""
    enter_forked_child(env, log_path, cwd)
    from mlcompile.runtime.__main__ import main

    try:
        code = main(argv)
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else 1
    except BaseException:  # noqa: BLE001 - a bug in a step: the traceback goes to its log
        import traceback

        traceback.print_exc()
        code = 3
    sys.stdout.flush()
    sys.stderr.flush()
    raise SystemExit(code)  # multiprocessing's bootstrap runs its finalizers, then exits with it


def run_module_as_main(module: str, args: list[str]) -> int:
    """Run `module` as `__main__` with `args` (a forked `python -m module args…`); its exit status."""
    import runpy

    sys.argv = [module, *args]
    code: int = 0
    try:
        runpy.run_module(module, run_name="__main__", alter_sys=True)
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    except BaseException:  # noqa: BLE001 - the traceback goes to the container's log, like a crash
        import traceback

        traceback.print_exc()
        code = 1
    sys.stdout.flush()
    sys.stderr.flush()
    return code


def shell_status(exitcode: int | None) -> int:
    """A forked process's exit code as a shell reports it: 128 + N for a death by signal N."""
    return exitcode if exitcode is not None and exitcode >= 0 else 128 - (exitcode or 0)


def fork_context(preload: tuple[str, ...]) -> Any:
    global _context
    if _context is None:
        import multiprocessing

        _context = multiprocessing.get_context("forkserver")
        _context.set_forkserver_preload(list(preload))
    return _context


def warm_up(preload: tuple[str, ...]) -> None:
    """Start the fork server (and its imports) ahead of the first step."""
    context = fork_context(preload)
    process = context.Process(target=_noop)
    process.start()
    process.join()


def _noop() -> None:
    pass


class StepProcess:
    """A running step: poll(), kill(), the exit code."""

    def __init__(self, argv: list[str], env: dict[str, str], log_path: Path, cwd: Path, mode: str, preload: tuple[str, ...]):
        self.started = time.perf_counter()
        self.mode = mode
        log_path.parent.mkdir(parents=True, exist_ok=True)
        if mode == "subprocess":
            self._log = open(log_path, "ab")
            self._proc: Any = subprocess.Popen(
                [sys.executable, "-m", RUNTIME_MODULE, *argv], env={**os.environ, **env}, stdout=self._log, stderr=subprocess.STDOUT, cwd=cwd
            )
        else:
            context = fork_context(preload)
            self._proc = context.Process(target=_child, args=(argv, {**os.environ, **env}, str(log_path), str(cwd)), daemon=False)
            self._proc.start()

    def poll(self) -> int | None:
        if self.mode == "subprocess":
            code = self._proc.poll()
            if code is not None:
                self._log.close()
            return code
        if self._proc.is_alive():
            return None
        self._proc.join()
        return self._proc.exitcode

    def kill(self) -> None:
        if self.mode == "subprocess":
            self._proc.kill()
            self._proc.wait()
            self._log.close()
        else:
            self._proc.kill()
            self._proc.join()
