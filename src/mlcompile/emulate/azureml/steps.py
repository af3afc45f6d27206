"""One command job of an Azure ML pipeline, run as the service runs it: its data inputs
mounted (here: the local folders and files they stand for), its outputs prepared (a
uri_folder output is a folder that exists before the command starts; a uri_file output is
the path of a file its folder holds), the command substituted and run by bash in the
component's image, with the variables Azure ML sets in every job (AZUREML_*, MLflow's run)
and, for `distribution: pytorch`, one process per instance and per process slot with
MASTER_ADDR, MASTER_PORT, WORLD_SIZE, NODE_RANK, RANK and LOCAL_RANK."""

from __future__ import annotations

import functools
import json
import os
import re
import shlex
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from mlcompile.emulate.azureml.bindings import BindingError, literal, substitute
from mlcompile.emulate.containers import PYTHON_NAMES, Images, UnmappedImage, run_container
from mlcompile.emulate.ir import FAILED, SKIPPED, SUCCEEDED, TaskResult
from mlcompile.emulate.services.execution import free_port, run_all
from mlcompile.runtime import emulated_storage as storage

MASTER_ADDR = "127.0.0.1"  # every instance of a distributed job runs on this machine
SHELL_SIGNS = frozenset("$`;&|<>(){}*?~[#\n\\")  # unquoted, bash would do more than run one program


class Workspace(Protocol):
    """What a job needs of its workspace: its datastores, assets and MLflow tracking."""

    def datastore_path(self, *parts: str) -> tuple[str, Path]: ...

    def asset_path(self, reference: str) -> Path: ...

    def start_run(self, experiment: str, name: str, parent: str | None = None, tags: Mapping[str, str] | None = None) -> str: ...

    def end_run(self, run_id: str, succeeded: bool) -> None: ...

    def metric_history(self, run_id: str, key: str) -> list[float]: ...

    def job_env(self, experiment: str, run_id: str) -> dict[str, str]: ...

    def register_data(self, name: str, data: Data) -> str: ...


@dataclass
class JobContext:
    images: Images
    root: Path  # emulation root (abfss/, gcs/, azureml/ datastores)
    work: Path  # logs
    workspace: Workspace
    env: Mapping[str, str] = field(default_factory=dict)


@dataclass
class Data:
    """A resolved input or output: the URI Azure ML records and the local path it mounts."""

    type: str
    uri: str
    path: Path | None = None
    value: Any = None  # a literal input

    def text(self) -> str:
        return literal(self.value) if self.path is None else str(self.path)


def data_input(value: Any, declared_type: str, root: Path, workspace: Workspace) -> Data:
    """A node's literal input: a value, or a `path:` (azureml: asset, cloud URI, local path)."""
    if not isinstance(value, Mapping):
        return Data(declared_type, "", value=value)
    kind = str(value.get("type") or declared_type)
    if "path" not in value:
        return Data(kind, "", value=value.get("value"))
    path = str(value["path"])
    if path.startswith("azureml:"):
        return Data(kind, path, workspace.asset_path(path))
    if storage.is_cloud(path):
        return Data(kind, path, storage.local_path(path, root))
    return Data(kind, path, Path(path))


def prepare_output(name: str, declared: Mapping[str, Any], given: Any, job_folder: tuple[str, Path], root: Path) -> Data:
    """Where an output is written: its own `path:` if it names one, else the job's folder on
    the default datastore. The folder of a uri_folder exists before the command starts; a
    uri_file is a path whose folder exists."""
    kind = str((given or {}).get("type") if isinstance(given, Mapping) and given.get("type") else declared.get("type", "uri_folder"))
    explicit = given.get("path") if isinstance(given, Mapping) else None
    if explicit and storage.is_cloud(str(explicit)):
        uri, path = str(explicit), storage.local_path(str(explicit), root)
    else:
        base_uri, base = job_folder
        uri, path = f"{base_uri}/{name}", base / name
    if kind == "uri_file":
        path.parent.mkdir(parents=True, exist_ok=True)
    else:
        path.mkdir(parents=True, exist_ok=True)
        uri = uri.rstrip("/") + "/"
    return Data(kind, uri, path)


def command_line(component: Mapping[str, Any], inputs: Mapping[str, Data], outputs: Mapping[str, Data]) -> str:
    declared = component.get("inputs") or {}
    for name, spec in declared.items():
        if name not in inputs and not (isinstance(spec, Mapping) and (spec.get("optional") or "default" in spec)):
            raise BindingError(f"input {name!r} is required and not given")
    given = {name: data.text() for name, data in inputs.items() if data.path is not None or data.value is not None}
    for name, spec in declared.items():
        if name not in given and isinstance(spec, Mapping) and "default" in spec:
            given[name] = literal(spec["default"])
    return substitute(str(component.get("command", "")), given, {n: d.text() for n, d in outputs.items()}, component)


def argv_of(line: str) -> list[str]:
    """What runs the command: its own argv when bash would run it as one plain `python …`
    (so a runtime step can be forked warm), else `bash -c LINE` as Azure ML runs it."""
    words = shlex.split(line) if _plain(line) else []
    return words if words and words[0] in PYTHON_NAMES else ["bash", "-c", line]


def _plain(line: str) -> bool:
    """No shell syntax outside single quotes (none at all inside double quotes either)."""
    quote = ""
    for char in line:
        if quote == "'":
            quote = "" if char == "'" else quote
        elif quote == '"':
            if char in "$`\\":
                return False
            quote = "" if char == '"' else quote
        elif char in "'\"":
            quote = char
        elif char in SHELL_SIGNS:
            return False
    return not quote


def distributed_env(distribution: Mapping[str, Any] | None, instance_count: int) -> list[dict[str, str]]:
    """One environment per process: Azure ML's PyTorch distribution runs
    `process_count_per_instance` processes on each of `instance_count` nodes."""
    if not distribution:
        return [{}] if instance_count <= 1 else [{"AZUREML_NODE_RANK": str(node)} for node in range(instance_count)]
    kind = str(distribution.get("type", "")).lower()
    if kind != "pytorch":
        raise BindingError(f"distribution type {kind!r} is not emulated (pytorch is)")
    per_node = int(distribution.get("process_count_per_instance") or 1)
    world = per_node * instance_count
    port = str(free_port())
    return [
        {
            "MASTER_ADDR": MASTER_ADDR, "MASTER_PORT": port, "WORLD_SIZE": str(world), "NODE_RANK": str(node),
            "RANK": str(node * per_node + local), "LOCAL_RANK": str(local), "LOCAL_WORLD_SIZE": str(per_node),
            "AZUREML_NODE_RANK": str(node),
        }
        for node in range(instance_count)
        for local in range(per_node)
    ]  # fmt: skip


def run_command(
    context: JobContext, name: str, run_id: str, experiment: str, node: Mapping[str, Any], component: Mapping[str, Any], inputs: Mapping[str, Data], outputs: Mapping[str, Data],
    *, extra_env: Mapping[str, str] | None = None, parent_run: str | None = None,
) -> TaskResult:  # fmt: skip
    """Run one command job (all its processes) to its end."""
    folder = context.work / run_id / name
    log = folder / "log.txt"
    try:
        line = command_line(component, inputs, outputs)
        processes = distributed_env(node.get("distribution") or component.get("distribution"), int((node.get("resources") or {}).get("instance_count") or 1))
    except BindingError as exc:
        return TaskResult(name, FAILED, reason=f"job validation: {exc}")
    environment = component.get("environment") or {}
    image = environment.get("image", "") if isinstance(environment, Mapping) else ""
    if not image:
        return TaskResult(name, FAILED, reason=f"environment {environment!r}: only an inline environment with an image is emulated")
    mlflow_run = context.workspace.start_run(experiment, name, parent=parent_run, tags={"mlflow.runName": name})
    env = {
        storage.EMULATE_ROOT_ENV: str(context.root), **context.env, **context.workspace.job_env(experiment, mlflow_run),
        "PATH": os.path.dirname(sys.executable) + os.pathsep + os.environ.get("PATH", ""),  # bash's `python` is the runtime image's
        **{k: str(v) for k, v in (node.get("environment_variables") or component.get("environment_variables") or {}).items()},
        **(extra_env or {}),
    }  # fmt: skip
    limits = node.get("limits") or {}
    timeout = float(limits["timeout"]) if limits.get("timeout") else None
    words = argv_of(line)
    started = time.monotonic()

    def process(index: int) -> int:
        own = {**env, **processes[index]}
        own_log = log if len(processes) == 1 else folder / f"log-rank{index}.txt"
        return run_container(context.images, image, words, [], own, folder, own_log, timeout=timeout)

    try:
        codes = run_all([functools.partial(process, index) for index in range(len(processes))])
    except UnmappedImage as exc:
        context.workspace.end_run(mlflow_run, False)
        return TaskResult(name, FAILED, reason=str(exc))
    code = next((c for c in codes if c), 0)
    result = TaskResult(name, SUCCEEDED if code == 0 else FAILED, code, log if log.exists() else folder, seconds=time.monotonic() - started)
    result.parameters["mlflow_run_id"] = mlflow_run
    context.workspace.end_run(mlflow_run, code == 0)
    if code:
        result.reason = (
            "timed out (limits.timeout)" if code == 124 and timeout else f"exit status {code}" + (f" (process {codes.index(code)})" if len(codes) > 1 else "")
        )
        return result
    guard = _guard_skipped(name, result.log)
    if guard:
        result.status, result.reason = SKIPPED, guard
        return result
    for key, data in outputs.items():
        if data.type == "uri_file" and not data.path.is_file():  # type: ignore[union-attr]
            result.status, result.reason = FAILED, f"output {key} (uri_file) was not written: {data.path}"
            return result
        result.artifacts[key] = {"uri": data.uri, "path": str(data.path), "type": data.type}
        decision = _decision(data)
        if decision is not None:
            result.parameters[key] = decision
    return result


def _guard_skipped(name: str, log: Path | None) -> str:
    """A step whose `run_if` guard (a shell `case` in its command: Azure ML has no public
    condition node) chose not to run it: the job completes, and its last line says so. The
    summary counts it skipped, as KFP's condition would be."""
    if log is None or not log.is_file():
        return ""
    lines = [line for line in log.read_text(errors="replace").splitlines() if line.strip()]
    match = re.fullmatch(rf"{re.escape(name)}: skipped, (run_if .+ is false)", lines[-1].strip()) if lines else None
    return f"{match.group(1)} (its command's guard)" if match else ""


def _decision(data: Data) -> bool | None:
    """A gate's or check's decision file (`{"decision": true, …}`), as the studio shows it."""
    if data.type != "uri_file" or data.path is None or data.path.stat().st_size > 1_000_000:
        return None
    try:
        found = json.loads(data.path.read_text())
    except (ValueError, UnicodeDecodeError):
        return None
    value = found.get("decision") if isinstance(found, dict) else None
    return value if isinstance(value, bool) else None


def declared_type(component: Mapping[str, Any], side: str, name: str) -> str:
    spec = (component.get(side) or {}).get(name) or {}
    return str(spec.get("type", "uri_folder" if side == "outputs" else "string")) if isinstance(spec, Mapping) else "string"
