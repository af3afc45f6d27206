"""The `toy` target: a third-party platform in a dozen lines.

It refuses accelerators (toy machines have none) with a diagnostic located in the spec, and
renders one file, `toy-steps.json`, listing every pipeline's steps in order."""

from __future__ import annotations

from typing import ClassVar

from mlcompile.diagnostics import Diagnostic
from mlcompile.plan.nodes import Plan, Resources
from mlcompile.targets.base import OutputFile, json_bytes, unsupported


class ToyTarget:
    name: ClassVar[str] = "toy"
    extra: ClassVar[str | None] = None
    requires: ClassVar[tuple[str, ...]] = ()

    def check(self, plan: Plan) -> list[Diagnostic]:
        resources: list[Resources] = [step.resources for pipeline in plan.pipelines() for step in pipeline.steps]
        if plan.online is not None:
            resources.append(plan.online.resources)
        problems = []
        for request in resources:
            if request.accelerator is not None:
                problems.append(
                    unsupported(
                        request.origin,
                        self.name,
                        f"accelerator '{request.accelerator}' is not available: toy machines have CPUs only",
                        hint="remove resources.accelerator, or override it with null under overrides.<profile>",
                    )
                )
        return problems

    def render(self, plan: Plan) -> list[OutputFile]:
        data = {
            "system": plan.system,
            "profile": plan.profile,
            "settings": plan.platform_settings,
            "pipelines": [
                {
                    "name": pipeline.name,
                    "steps": [{"name": step.name, "kind": step.kind, "depends_on": list(step.depends_on), "image": step.image} for step in pipeline.steps],
                }
                for pipeline in plan.pipelines()
            ],
        }
        return [OutputFile("toy-steps.json", "toy.steps", json_bytes(data))]
