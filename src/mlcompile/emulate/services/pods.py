"""A pod's main container, run as the emulator runs containers: its image, command, args,
working directory and environment (a `secretKeyRef` reads the emulation's secret of that name;
other `valueFrom` entries need a cluster's ConfigMaps or fields: the variable is set only when
this process has it), plus what the controller running the pod adds."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from mlcompile.emulate.services.execution import Execution


def container_of(pod: Mapping[str, Any], name: str | None) -> dict[str, Any]:
    containers = list(pod.get("containers") or [])
    if not containers:
        raise ValueError("the pod template has no container")
    return next((c for c in containers if c.get("name") == name), containers[0])


def run_pod(
    execution: Execution, pod: Mapping[str, Any], name: str | None, env: Mapping[str, str], folder: Path, replica: str, timeout: float | None
) -> tuple[int, Path]:
    container = container_of(pod, name)
    environment: dict[str, str] = {}
    for entry in container.get("env") or []:
        secret = ((entry.get("valueFrom") or {}).get("secretKeyRef") or {}).get("name")
        if "value" in entry:
            environment[entry["name"]] = str(entry["value"])
        elif secret is not None and secret in execution.secrets:
            environment[entry["name"]] = execution.secrets[secret]
        elif entry["name"] in os.environ:
            environment[entry["name"]] = os.environ[entry["name"]]
    environment.update(env)
    workdir = folder / replica
    workdir.mkdir(parents=True, exist_ok=True)
    return execution.run(
        container.get("image", ""), list(container.get("command") or []), list(container.get("args") or []), environment, workdir, replica, timeout
    )
