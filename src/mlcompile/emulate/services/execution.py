"""How the emulated platform services execute what is submitted to them: each replica, trial
or pod is a container run through the emulator's `run_container` (a local subprocess), with
cloud storage mapped to folders under the emulation root, and each pipeline run goes to the
emulator's pipeline interpreter."""

from __future__ import annotations

import re
import socket
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mlcompile.emulate.containers import Images, UnmappedImage, run_container
from mlcompile.runtime.emulated_storage import EMULATE_ROOT_ENV, GCS_MOUNT, local_path


@dataclass(frozen=True)
class PipelineRun:
    """A pipeline run submitted through a platform API: its IR (and kfp's platform-config
    document), the parameter values it was given, and the platform's name for the run."""

    ir: dict[str, Any]
    parameters: dict[str, Any]
    name: str
    platform: dict[str, Any] = field(default_factory=dict)


# runs a submitted pipeline to its end: None when it succeeded, else what failed
RunPipeline = Callable[[PipelineRun], "str | None"]
# a `/gcs/b/k` path inside an argument or variable (gcsfuse's mount on Vertex and in KFP tasks)
_MOUNTED = re.compile(r"(?<![\w./-])" + re.escape(GCS_MOUNT) + r"[^\s,;'\"=]+")


@dataclass
class Execution:
    images: Images
    root: Path  # the emulation root: buckets, tables and the services' own job folders
    run_pipeline: RunPipeline | None = None
    container_timeout: float | None = None
    env: dict[str, str] = field(default_factory=dict)  # every container gets these (service endpoints, ...)
    secrets: Mapping[str, str] = field(default_factory=dict)  # Kubernetes secret name -> value
    _work: list[threading.Thread] = field(default_factory=list, repr=False)

    def pipeline(self, request: PipelineRun) -> str | None:
        """Run a submitted pipeline to its end: None when it succeeded, else what failed (a
        defect of the interpreter fails the run rather than leaving it running forever)."""
        assert self.run_pipeline is not None
        try:
            return self.run_pipeline(request)
        except Exception as exc:
            return f"the emulator could not run the pipeline: {exc!r}"

    def background(self, work: Callable[[], None]) -> None:
        """Run a job's or run's controller on its own thread (tracked, see `wait`)."""
        thread = threading.Thread(target=work, daemon=True)
        self._work.append(thread)
        thread.start()

    def wait(self, timeout: float | None = None) -> bool:
        """Wait for every job and run started so far (and those they start); False on timeout."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            running = [t for t in self._work if t.is_alive()]
            if not running:
                return True
            remaining = None if deadline is None else deadline - time.monotonic()
            if remaining is not None and remaining <= 0:
                return False
            running[0].join(remaining)

    def folder(self, *parts: str) -> Path:
        """A job's, trial's or replica's own working folder (its logs and scratch files)."""
        path = self.root.joinpath("platform", *parts)
        path.mkdir(parents=True, exist_ok=True)
        return path

    def localize(self, value: str) -> str:
        """Paths under the `/gcs/` mount become the bucket folders they stand for."""
        return _MOUNTED.sub(lambda m: str(local_path(m.group(0), self.root)), value)

    def run(
        self, image: str, command: Sequence[str], args: Sequence[str], env: Mapping[str, str], folder: Path, name: str, timeout: float | None = None
    ) -> tuple[int, Path]:
        """Run one container in `folder`; returns its exit status (127: it could not start) and
        its log (stdout and stderr)."""
        log = folder / f"{name}.log"
        environment = {k: self.localize(str(v)) for k, v in {**self.env, **env}.items()}
        environment[EMULATE_ROOT_ENV] = str(self.root)
        try:
            status = run_container(
                self.images,
                image,
                [self.localize(c) for c in command],
                [self.localize(a) for a in args],
                environment,
                folder,
                log,
                timeout=timeout or self.container_timeout,
            )
        except UnmappedImage as exc:
            with open(log, "a", encoding="utf-8") as sink:
                sink.write(f"{exc}\n")
            return 127, log
        return status, log


def free_port() -> int:
    """A port no one listens on now (for a distributed job's rendezvous on this machine)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def run_all(tasks: Sequence[Callable[[], Any]]) -> list[Any]:
    """Run tasks at the same time (replicas of one distributed job) and wait for all."""
    results: list[Any] = [None] * len(tasks)

    def one(index: int) -> None:
        results[index] = tasks[index]()

    threads = [threading.Thread(target=one, args=(i,), daemon=True) for i in range(len(tasks))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return results
