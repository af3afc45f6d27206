"""Containers as local subprocesses.

The profile's runtime image is this package, so it runs as this interpreter. Any other image
is a user's: the emulation config names the local command that stands for the image's
ENTRYPOINT (and optionally its WORKDIR). Docker's rules decide the command line: a
container `command` replaces the entrypoint, `args` follow it.

With `Images.warm`, a runtime-image container's `python` (its command, or each one in its
shell line) is a shim (mlcompile.emulate.warm_shell) that has `python -m MODULE` forked from a
server that imported the data stack once (mlcompile.local.workers' fork server): the same
module runs as `__main__` with the same argv, environment, folder and output, in its own
process, without ~2 s of imports per step."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from mlcompile.local.workers import STOP_GRACE_SECONDS, THREAD_VARIABLES

if TYPE_CHECKING:
    from mlcompile.plan.nodes import Plan

PYTHON_NAMES = frozenset({"python", "python3"})
# first on a user image's PYTHONPATH: its sitecustomize keeps this environment's Feast (there for
# mlcompile, not for the image) from loading with MLflow's first request
USER_IMAGE_SITE = str(Path(__file__).with_name("container_site"))
PARALLELISM = 4  # independent tasks at once, as the platform starts them


class UnmappedImage(Exception):
    """A user image the emulation config does not name: nothing local can stand for it."""


@dataclass(frozen=True)
class Images:
    runtime: str
    # user image -> the local command prefix standing for the image's ENTRYPOINT
    commands: Mapping[str, Sequence[str]] = field(default_factory=dict)
    # user image -> the local folder standing for the image's WORKDIR (default: the task's cwd)
    workdirs: Mapping[str, Path] = field(default_factory=dict)
    # runtime image: fork `python -m MODULE` from a fork server that imported these modules
    # (runtime_preload) instead of starting a fresh interpreter; () for a fresh one
    warm: tuple[str, ...] = ()

    def is_runtime(self, image: str) -> bool:
        return image == self.runtime

    def check(self, image: str) -> None:
        if not self.is_runtime(image) and image not in self.commands:
            raise UnmappedImage(
                f"image {image!r} has no local command: name one under `images:` in the emulation config "
                f"(e.g. `{image}: {{command: [python, train.py], workdir: trainer}}`; see docs/emulate.md)"
            )


def runtime_preload(plan: Plan) -> tuple[str, ...]:
    """What the warm fork server imports for a plan's runtime steps: Feast's modules only when
    a step opens a Feast repository (a materialisation)."""
    from mlcompile.runtime import PRELOAD, PRELOAD_WITH_FEAST

    kinds = {step.kind for pipeline in plan.pipelines() for step in pipeline.steps}
    return PRELOAD_WITH_FEAST if "materialize_features" in kinds else PRELOAD


def plan_images(plan: Plan, commands: Mapping[str, Sequence[str]], workdirs: Mapping[str, Path], isolation: str) -> Images:
    """The images of an emulated run; with `isolation="fork"` the fork server starts importing
    the plan's preload now, in the background, overlapping whatever the run does before its
    first step."""
    if isolation != "fork":
        return Images(plan.runtime_image, commands, workdirs)
    import threading

    from mlcompile.emulate.warm_shell import shared_socket
    from mlcompile.local.workers import warm_up

    preload = runtime_preload(plan)
    if not shared_socket():  # a shared warm interpreter is running already
        threading.Thread(target=warm_up, args=(preload,), daemon=True).start()
    return Images(plan.runtime_image, commands, workdirs, warm=preload)


def argv(images: Images, image: str, command: Sequence[str], args: Sequence[str]) -> list[str]:
    """The local command line for a container: bare `python` is this interpreter (the runtime
    image's packages are this environment's)."""
    images.check(image)
    head = list(command) if command else list(images.commands.get(image, ()))
    line = head + list(args)
    if not line:
        raise UnmappedImage(f"image {image!r}: the container names no command and the emulation config gives none")
    if line[0] in PYTHON_NAMES:
        line[0] = sys.executable
    return line


# What a container on the platform never sees of the shell that started the emulation: the
# runtime's own settings and MLflow's (a registry URI, a pinned version, "try unapproved"
# left in a user's shell would change what a step does; on the cluster nothing sets them), and
# azure-ai-ml's cloud choice, which an MLClient of the emulator (deploy, approval) leaves in this
# process naming a cloud only that process registered: a step importing azure.ai.ml with it fails.
_HOST_ONLY_PREFIXES = ("MLCOMPILE_", "MLFLOW_", "AZUREML_CURRENT_CLOUD")


def container_threads() -> dict[str, str]:
    """OpenMP/BLAS threads for a container whose definition (or the user's shell) names none:
    this machine's share for one of the PARALLELISM containers that may run at once. Left to
    their default, several containers' OpenMP threads contend for the same cores and spin
    while they wait (a small scikit-learn fit then takes ~5x its CPU)."""
    threads = str(max(1, (os.cpu_count() or 1) // PARALLELISM))
    return dict.fromkeys(THREAD_VARIABLES, threads)


def host_environment() -> dict[str, str]:
    """This process's environment less what only the host has set for mlcompile or MLflow."""
    return {key: value for key, value in os.environ.items() if not key.startswith(_HOST_ONLY_PREFIXES)}


def run_container(
    images: Images,
    image: str,
    command: Sequence[str],
    args: Sequence[str],
    env: Mapping[str, str],
    cwd: Path,
    log: Path,
    *,
    timeout: float | None = None,
) -> int:
    """Run one container to completion; its stdout and stderr go to `log` (appended). `env` is
    laid over this process's environment (PATH and the interpreter's own settings stay; the
    host's MLCOMPILE_* and MLFLOW_* settings do not). A user image's Python starts with
    USER_IMAGE_SITE first on its PYTHONPATH.
    Returns the exit status (124 on timeout, like coreutils' timeout)."""
    line = argv(images, image, command, args)
    workdir = Path(images.workdirs.get(image, cwd))
    workdir.mkdir(parents=True, exist_ok=True)
    log.parent.mkdir(parents=True, exist_ok=True)
    full_env = {**container_threads(), **host_environment(), **{key: str(value) for key, value in env.items()}}
    if not images.is_runtime(image):
        full_env["PYTHONPATH"] = os.pathsep.join(filter(None, (USER_IMAGE_SITE, full_env.get("PYTHONPATH"))))
    shown = " ".join(line)
    if images.warm and images.is_runtime(image):  # `python -m …`, alone or in a shell line, forks warm through the shim
        from mlcompile.emulate.warm_shell import shim_folder

        folder = shim_folder(images.warm)
        full_env["PATH"] = folder + os.pathsep + full_env.get("PATH", "")
        if line[0] == sys.executable:
            line[0] = os.path.join(folder, "python")
    with open(log, "ab") as sink:
        sink.write(("$ " + shown + "\n").encode())
        sink.flush()
        try:  # its own process group: a stopped container stops all its processes, as on the platform
            process = subprocess.Popen(line, cwd=workdir, env=full_env, stdout=sink, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, process_group=0)
        except OSError as exc:
            sink.write(f"cannot start {line[0]}: {exc}\n".encode())
            return 127
        try:
            return process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            stop(process, group=True)
            sink.write(f"timed out after {timeout:g}s\n".encode())
            return 124
        except BaseException:  # interrupted (Ctrl-C is not sent to the container's own group)
            stop(process, group=True)
            raise


def stop(process: subprocess.Popen[bytes], *, group: bool = False) -> None:
    """SIGTERM, STOP_GRACE_SECONDS to finish (a platform's grace period), then SIGKILL; with `group`,
    to every process of its process group (a shell line's children too)."""
    signal_ = (lambda sig: os.killpg(process.pid, sig)) if group else process.send_signal
    try:
        signal_(signal.SIGTERM)
        try:
            process.wait(timeout=STOP_GRACE_SECONDS)
        except subprocess.TimeoutExpired:
            pass
        signal_(signal.SIGKILL)
    except ProcessLookupError:  # the group is gone already
        pass
    process.wait()


def first_line(process: subprocess.Popen[bytes], timeout: float) -> str:
    """The first line a started server prints on stdout (its port), or "" after `timeout` seconds."""
    import selectors

    assert process.stdout is not None
    with selectors.DefaultSelector() as selector:
        selector.register(process.stdout, selectors.EVENT_READ)
        if not selector.select(timeout):
            return ""
    return process.stdout.readline().decode().strip()
