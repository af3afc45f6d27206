"""What lowering keeps while it builds a plan: the spec and profile, where each element came
from, the diagnostics so far, and how a resource request becomes a machine of the platform."""

from __future__ import annotations

from typing import Any

from mlcompile import __version__
from mlcompile.diagnostics import Diagnostic, JsonPath, format_json_path
from mlcompile.plan import nodes
from mlcompile.spec import models
from mlcompile.spec.resolve import Profile, ResolvedSystem
from mlcompile.spec.types import duration_seconds, memory_bytes, memory_gib

DEFAULT_RUNTIME_IMAGE = f"ghcr.io/mlcompile/mlcompile-runtime:{__version__}"
RUNTIME_COMMAND = ("python", "-m", "mlcompile.runtime")
# mlcompile's own steps (feature extraction, validation, evaluation, …) are light: one
# modest machine each, whatever the trainer asks for.
STANDARD_STEP_CPU = 2.0
STANDARD_STEP_MEMORY = "8Gi"
STANDARD_STEP_TIMEOUT = 3600


class LoweringContext:
    def __init__(self, resolved: ResolvedSystem, profile: Profile, git_commit: str | None):
        self.git_commit = git_commit
        self.system = resolved.system
        self.source_map = resolved.document.source_map
        self.profile = profile
        self.target = profile.target
        self.platform = self.target.platform
        # what lowering asks of the platform: the catalog section its machines come from, and
        # whether it runs on this machine (None: a platform that is not installed)
        from mlcompile.targets.registry import platform_named

        self.platform_class = platform_named(self.platform)
        self.settings = self.target.platform_settings()
        self.runtime_image = self.target.images.runtime if self.target.images else DEFAULT_RUNTIME_IMAGE
        self.spec_sha256 = resolved.document.sha256
        self.diagnostics: list[Diagnostic] = []
        self._machines: dict[tuple[Any, ...], nodes.Machine | None] = {}
        self.standard = self.resources(None, ())

    # ------------------------------------------------------------------ helpers
    def origin(self, path: JsonPath) -> nodes.Origin:
        line, col = self.source_map.locate(path)
        return nodes.Origin(self.source_map.file, line, col, format_json_path(path))

    def diagnostic(self, path: JsonPath, message: str, hint: str | None = None, severity: str = "error") -> None:
        self.diagnostics.append(self.source_map.diagnostic(path, message, hint=hint, severity=severity))

    def resources(self, spec: models.ServingResources | None, path: JsonPath, *, replicas: int = 1) -> nodes.Resources:
        if spec is None:
            cpu, memory, accelerator, count, spot, timeout = STANDARD_STEP_CPU, STANDARD_STEP_MEMORY, None, 0, False, STANDARD_STEP_TIMEOUT
        else:
            cpu, memory, spot = spec.cpu, spec.memory, spec.spot
            accelerator = spec.accelerator.type if spec.accelerator else None
            count = spec.accelerator.count if spec.accelerator else 0
            timeout = duration_seconds(spec.timeout) if spec.timeout else None
        machine = self.machine(accelerator, count, cpu, memory, path)
        resolved = None
        if accelerator and machine is not None:
            # one count from here on: what the catalog resolved (a TPU slice's chips, the
            # machine's GPUs), which the lowering warned about when it differs from the ask
            resolved = nodes.Accelerator(machine.accelerator or accelerator, machine.accelerator_count, machine.accelerator_platform_name, machine.name)
        elif accelerator:  # no catalogue (local, third-party platforms): the ask
            resolved = nodes.Accelerator(accelerator, count, None, None)
        if self.platform_class is not None and self.platform_class.runs_on_this_machine and spec is not None:
            self._local_warnings(path, accelerator, replicas, spot)
        return nodes.Resources(
            cpu=float(cpu),
            memory=memory,
            memory_bytes=memory_bytes(memory),
            accelerator=resolved,
            replicas=replicas,
            spot=spot,
            timeout_seconds=timeout,
            machine=machine,
            origin=self.origin(path),
        )

    def _local_warnings(self, path: JsonPath, accelerator: str | None, replicas: int, spot: bool) -> None:
        where = f"profile '{self.profile.name}' runs on this machine"
        if accelerator:
            self.diagnostic((*path, "accelerator"), f"accelerator {accelerator} is not applied: {where}", severity="warning")
        if replicas > 1:
            self.diagnostic((*path, "replicas"), f"{replicas} replicas are not applied: {where}, as one process", severity="warning")
        if spot:
            self.diagnostic((*path, "spot"), f"spot capacity is not applied: {where}", severity="warning")

    def machine(self, accelerator: str | None, count: int, cpu: float, memory: str, path: JsonPath) -> nodes.Machine | None:
        from mlcompile.catalog import CatalogError

        if self.platform_class is None:
            return None  # a platform that is not installed: its machines are unknown
        key = (accelerator, count, cpu, memory)
        if key in self._machines:
            return self._machines[key]
        try:
            resolution = self.platform_class.resolve_machine(
                self.settings, accelerator=accelerator, count=max(count, 1), cpu=cpu, memory_gib=memory_gib(memory)
            )
        except CatalogError as exc:
            at = (*path, "accelerator", "type") if accelerator else path
            self.diagnostic(at, f"{exc.message} (profile '{self.profile.name}')", exc.hint)
            self._machines[key] = None
            return None
        if resolution is None:
            return None  # a platform without catalogued machines (local, most third-party ones)
        for warning in resolution.warnings:
            self.diagnostic((*path, "accelerator") if accelerator else path, warning, severity="warning")
        found = resolution.machine
        machine = nodes.Machine(
            name=found.name,
            accelerator=found.accelerator,
            accelerator_platform_name=found.accelerator_platform_name,
            accelerator_count=found.accelerator_count,
            vcpus=found.vcpus,
            memory_gib=found.memory_gib,
            node_selector=dict(found.node_selector),
            tolerations=[dict(t) for t in found.tolerations],
        )
        self._machines[key] = machine
        return machine

    def step(
        self,
        name: str,
        kind: nodes.StepKind,
        path: JsonPath,
        *,
        depends_on: tuple[str, ...] = (),
        inputs: tuple[nodes.ArtifactRef, ...] = (),
        outputs: tuple[nodes.Artifact, ...] = (),
        params: dict[str, Any] | None = None,
        resources: nodes.Resources | None = None,
        run_if: str | None = None,
    ) -> nodes.Step:
        return nodes.Step(
            name=name,
            kind=kind,
            image=self.runtime_image,
            command=(*RUNTIME_COMMAND, name),
            args=(),
            resources=resources or self.standard,
            depends_on=depends_on,
            inputs=inputs,
            outputs=outputs,
            params=params or {},
            run_if=run_if,
            uses_user_container=False,
            origin=self.origin(path),
        )
