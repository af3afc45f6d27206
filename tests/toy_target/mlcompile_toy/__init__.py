"""The `toy` target: a third-party platform in a few dozen lines.

Its profile's `settings:` are checked by its own settings model (`ToySettings`). It refuses
accelerators (toy machines have none) with a diagnostic located in the spec, and renders one
file, `toy-steps.json`, listing every pipeline's steps in order. Everything else (no price
list, no catalogued machines, no grid search over a float range) is `PlatformBase`'s default."""

from __future__ import annotations

from typing import Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field

from mlcompile.diagnostics import Diagnostic
from mlcompile.plan.nodes import Plan, Resources
from mlcompile.targets.base import OutputFile, PlatformBase, json_bytes, unsupported


class ToySettings(BaseModel):
    """The profile's `settings:` block."""

    model_config = ConfigDict(extra="forbid")

    color: Literal["red", "green", "blue"] = Field(description="the colour of the toy machines")
    workers: int = Field(default=1, ge=1, le=16, description="toy machines per step")


class ToyTarget(PlatformBase):
    name: ClassVar[str] = "toy"
    title: ClassVar[str] = "Toy"
    settings_model: ClassVar[type[Any] | None] = ToySettings
    settings_required: ClassVar[bool] = True

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
                        f"accelerator '{request.accelerator.type}' is not available: toy machines have CPUs only",
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
