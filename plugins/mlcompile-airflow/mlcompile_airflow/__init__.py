"""The `airflow` target: one Airflow DAG file per pipeline of the plan, each step a
KubernetesPodOperator running mlcompile's runtime image, scheduled by the spec's cron and time zone; a monitoring breach triggers the training DAG.

Written only against mlcompile's plugin API (`PlatformBase` and the helpers of
mlcompile.targets.base, the plan, the runtime contract); registered under the
`mlcompile.targets` entry-point group by its pyproject.toml. Importing it imports no Airflow:
the DAG files are text, and Airflow imports them."""

from __future__ import annotations

from typing import Any, ClassVar

from mlcompile.diagnostics import Diagnostic
from mlcompile.plan.nodes import Plan, Resources
from mlcompile.targets.base import GRID_OVER_FLOAT_RANGE, OutputFile, PlatformBase, Pricing, unsupported
from mlcompile_airflow.dag import dag_file
from mlcompile_airflow.settings import AirflowSettings

NAME = "airflow"


class AirflowTarget(PlatformBase):
    name: ClassVar[str] = NAME
    title: ClassVar[str] = "Airflow"
    settings_model: ClassVar[type[Any] | None] = AirflowSettings  # the profile's `settings:`
    settings_required: ClassVar[bool] = True  # artifact_root has no default
    # the pods run the runtime's own tuner (Optuna), whose grid takes 5 points of a float range
    capabilities: ClassVar[frozenset[str]] = frozenset({GRID_OVER_FLOAT_RANGE})
    # Kubernetes clusters: accelerators resolve to the node selectors, tolerations and
    # resource names of the profile's `cluster` flavour (a cluster without them is refused)
    machine_catalog: ClassVar[str | None] = "kubeflow"
    pricing: ClassVar[Pricing] = Pricing("self_managed", note="Pods on your own cluster: resources are listed, not priced.")

    def check(self, plan: Plan) -> list[Diagnostic]:
        settings = AirflowSettings.model_validate(plan.platform_settings)
        problems = [
            *self._check_resources(plan),
            *self._check_triggers(plan),
        ]
        if plan.online is not None:
            problems.append(
                unsupported(
                    plan.online.origin,
                    NAME,
                    f"Airflow runs pipelines and serves no model: endpoint '{plan.online.name}' would never be deployed",
                    "serve it from another profile, or set `deployment: {online: null}` under overrides.<this profile>",
                )
            )
        for view in plan.features.views:
            if view.online and view.refresh_cron:  # no DAG refreshes an online store, and none serves from it
                problems.append(
                    unsupported(
                        view.origin.below("online"),
                        NAME,
                        f"nothing on Airflow materialises online view '{view.name}' (its refresh '{view.refresh_cron}' would never run)",
                        f"set `online: false` on view '{view.name}' under overrides.<this profile> (features.views merge by name)",
                    )
                )
        registers = any(step.kind == "register" for step in plan.training.steps)
        if registers and settings.registry is None:
            problems.append(
                unsupported(
                    plan.registry.origin,
                    NAME,
                    f"the profile '{plan.profile}' names no model registry, so model '{plan.registry.model}' cannot be registered",
                    "add `registry: {kind: mlflow, uri: http://…}` to the profile's settings",
                )
            )
        scheduled: set[str] = set()
        for schedule in plan.schedules:
            if schedule.pipeline in scheduled:
                problems.append(
                    unsupported(
                        schedule.origin,
                        NAME,
                        f"an Airflow DAG has one schedule, and pipeline {schedule.pipeline} already has one",
                        "keep one schedule per pipeline for this profile",
                    )
                )
            scheduled.add(schedule.pipeline)
        return problems

    def _check_resources(self, plan: Plan) -> list[Diagnostic]:
        seen: set[tuple[str, str]] = set()
        problems = []

        def refuse(request: Resources, field: str, message: str, hint: str) -> None:
            if (request.origin.path, field) not in seen:
                seen.add((request.origin.path, field))
                problems.append(unsupported(request.origin.below(field), NAME, message, hint))

        for pipeline in plan.pipelines():
            for step in pipeline.steps:
                request = step.resources
                if request.replicas > 1:
                    refuse(request, "replicas", f"a pod runs one replica; step {step.name} asks for {request.replicas}", "set replicas: 1 for this profile")
                if request.spot:
                    refuse(request, "spot", "Kubernetes has no standard spot node label", "remove `spot: true` for this profile (overrides)")
        for step in plan.training.steps:
            # KFP hands a container trainer local copies of its artifacts and uploads what it
            # wrote; a pod of KubernetesPodOperator has no such staging around the user's image
            # (the runtime's launcher only starts Vertex AI and Kubeflow jobs), so the
            # MLCOMPILE_* variables could only hold object-store URIs the contract does not promise
            if step.uses_user_container:
                problems.append(
                    unsupported(
                        step.origin,
                        NAME,
                        f"an Airflow pod does not stage artifacts to local paths for container trainer '{step.image}' "
                        "(the contract's MLCOMPILE_* variables would hold object-store URIs)",
                        "train with `trainer: {sklearn: …}` for this profile (overrides), or build for kubeflow or vertex",
                    )
                )
        return problems

    def _check_triggers(self, plan: Plan) -> list[Diagnostic]:
        return [
            unsupported(
                trigger.origin,
                NAME,
                f"Airflow starts no run when source '{trigger.source}' gets new rows (nothing emits an event for it)",
                "drop `retraining.on_new_data` for this profile (overrides) and rely on the retraining schedule, or emit an Airflow asset event yourself",
            )
            for trigger in plan.triggers
            if trigger.kind == "new_data"
        ]

    def render(self, plan: Plan) -> list[OutputFile]:
        settings = AirflowSettings.model_validate(plan.platform_settings)
        schedules = {schedule.pipeline: schedule for schedule in plan.schedules}
        return [
            OutputFile(f"dags/{pipeline.name}.py", "airflow.dag", dag_file(plan, pipeline, settings, schedules.get(pipeline.name)).encode())
            for pipeline in plan.pipelines()
        ]
