"""What a platform adds to the plan: the pipelines, schedules and steps it needs beyond the
spec's (a new-data sensor where the platform cannot start a run on a storage event, feature
materialisation, the deploy pipeline an approval starts). Lowering asks the platform once
(`extend_plan(plan) -> PlanExtension`) and adds the answer, so that every step a build runs
is in the plan: cost, explain, graph and diff see it like any other."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from mlcompile.plan.context import RUNTIME_COMMAND
from mlcompile.plan.nodes import Origin, Pipeline, Plan, Resources, Schedule, Step, StepKind


@dataclass(frozen=True)
class PlanExtension:
    """`pipelines`: added to `Plan.platform_pipelines`; `schedules`: added to
    `Plan.schedules` (each starts a pipeline of the plan); `steps`: (name of a pipeline of
    the plan, a step appended to it)."""

    pipelines: tuple[Pipeline, ...] = ()
    schedules: tuple[Schedule, ...] = ()
    steps: tuple[tuple[str, Step], ...] = ()

    def __add__(self, other: PlanExtension) -> PlanExtension:
        return PlanExtension(self.pipelines + other.pipelines, self.schedules + other.schedules, self.steps + other.steps)


def platform_step(
    plan: Plan,
    name: str,
    kind: StepKind,
    origin: Origin,
    *,
    params: dict[str, Any],
    entry: str | None = None,
    depends_on: tuple[str, ...] = (),
    run_if: str | None = None,
    resources: Resources | None = None,
) -> Step:
    """A step a platform adds, run by mlcompile's runtime (`python -m mlcompile.runtime
    <entry>`, the step's name unless told) on the standard machine unless told."""
    return Step(
        name=name,
        kind=kind,
        image=plan.runtime_image,
        command=(*RUNTIME_COMMAND, entry or name),
        args=(),
        resources=resources or plan.standard_resources,
        depends_on=depends_on,
        inputs=(),
        outputs=(),
        params=params,
        run_if=run_if,
        uses_user_container=False,
        origin=origin,
    )


class ExtensionError(Exception):
    """A platform's extension that does not fit the plan (a programming error of the platform)."""


def extended(plan: Plan, extension: PlanExtension) -> Plan:
    """The plan with the platform's additions, checked: pipeline names stay unique, a step
    joins a pipeline that exists under a name not taken there, a schedule starts a pipeline."""
    spec_pipelines = {p.name: p for p in plan.pipelines()}
    for pipeline_name, step in extension.steps:
        pipeline = spec_pipelines.get(pipeline_name)
        if pipeline is None:
            raise ExtensionError(f"step {step.name} is added to pipeline {pipeline_name}, which the plan does not have")
        if any(s.name == step.name for s in pipeline.steps):
            raise ExtensionError(f"step {step.name} is added to pipeline {pipeline_name}, which has a step of that name")
        spec_pipelines[pipeline_name] = dataclasses.replace(pipeline, steps=(*pipeline.steps, step))
    names = [p.name for p in (*spec_pipelines.values(), *extension.pipelines)]
    if len(set(names)) != len(names):
        raise ExtensionError(f"the platform adds a pipeline whose name is taken: {sorted(n for n in names if names.count(n) > 1)}")
    unknown = [s.name for s in extension.schedules if s.pipeline not in names]
    if unknown:
        raise ExtensionError(f"schedules {unknown} start no pipeline of the plan")
    updated = {
        "training": spec_pipelines[plan.training.name],
        "batch": spec_pipelines[plan.batch.name] if plan.batch is not None else None,
        "monitoring_pipeline": spec_pipelines[plan.monitoring_pipeline.name] if plan.monitoring_pipeline is not None else None,
        "platform_pipelines": tuple(spec_pipelines[p.name] for p in plan.platform_pipelines) + extension.pipelines,
    }
    return dataclasses.replace(plan, schedules=plan.schedules + extension.schedules, **updated)


def extend(plan: Plan, platform: Any | None) -> Plan:
    """The plan with what `platform` adds (`extend_plan`; a platform without it adds nothing)."""
    hook = getattr(platform, "extend_plan", None)
    if hook is None:
        return plan
    return extended(plan, hook(plan))
