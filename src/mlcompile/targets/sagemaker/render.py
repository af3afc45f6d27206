"""A plan → the files of a SageMaker build. Each file's manifest kind names what it is:
`sagemaker.pipeline_definition` (the JSON SageMaker Pipelines runs), `mlcompile.step_config`
(a runtime step's --config, uploaded by deploy), or `<service>.<operation>` for the request
body of that AWS API (validated against botocore's service model by the tests, sent as is by
deploy)."""

from __future__ import annotations

import dataclasses
import json
from typing import Any

from mlcompile.errors import SpecError
from mlcompile.plan.nodes import Pipeline, Plan, Step
from mlcompile.runtime.contract import runtime_command
from mlcompile.targets.base import OutputFile, deploy_pipeline, json_bytes, unsupported
from mlcompile.targets.kfp_ir import new_data_sensors
from mlcompile.targets.sagemaker import bodies, feature_store
from mlcompile.targets.sagemaker.layout import BREACH_STEP, MAX_DEFINITION_CHARS, Layout

PIPELINE_DEFINITION = "sagemaker.pipeline_definition"
STEP_CONFIG = "mlcompile.step_config"


def compact(definition: dict[str, Any]) -> str:
    """The definition as SageMaker receives it (deploy sends this string)."""
    return json.dumps(definition, sort_keys=True, separators=(",", ":"))


def with_breach_retraining(plan: Plan, pipeline: Pipeline) -> Pipeline:
    """The monitoring pipeline with a trigger-retraining step on a breach whenever the spec
    retrains on one: `retraining.on_drift` without `monitoring.on_breach: retrain` gives the
    plan none, and on SageMaker that step is what starts training (through the API, debounced,
    skipped while training runs), as it does for `on_breach: retrain`."""
    retrains = any(t.kind == "monitoring_breach" for t in plan.triggers)
    if not retrains or pipeline is not plan.monitoring_pipeline or any(s.kind == "trigger_retraining" for s in pipeline.steps):
        return pipeline
    checks = [s for s in pipeline.steps if s.run_if is None]
    trigger = next(t for t in plan.triggers if t.kind == "monitoring_breach")
    step = Step(
        name=BREACH_STEP, kind="trigger_retraining", image=plan.runtime_image, command=runtime_command(BREACH_STEP), args=(),
        resources=checks[0].resources, depends_on=tuple(s.name for s in checks), inputs=(), outputs=(), params={"pipeline": trigger.pipeline},
        run_if="breach", uses_user_container=False, origin=trigger.origin,
    )  # fmt: skip
    return dataclasses.replace(pipeline, steps=(*pipeline.steps, step))


def render(plan: Plan) -> list[OutputFile]:
    from mlcompile.targets.sagemaker import sdk

    layout = Layout.of(plan)
    files: list[OutputFile] = []

    def add(path: str, kind: str, body: Any) -> None:
        files.append(OutputFile(path, kind, json_bytes(body)))

    pipelines = [with_breach_retraining(plan, pipeline) for pipeline in plan.pipelines()]
    extra: dict[tuple[str, str], dict[str, Any]] = {}
    serving: dict[str, tuple[str, dict[str, Any]]] = {}
    if plan.online is not None:
        serving = bodies.serving(plan, layout)
        deploy_config = {"serving": {name: body for name, (_, body) in sorted(serving.items())}, "region": layout.region}
        for step in plan.training.steps:
            if step.kind == "deploy_online":
                extra[(plan.training.name, step.name)] = deploy_config
        if plan.online.requires_approval:
            deployer = deploy_pipeline(plan, plan.online)
            pipelines.append(deployer)
            extra[(deployer.name, "deploy-online")] = deploy_config

    materialize = feature_store.materialize_pipelines(plan, layout)
    pipelines += [pipeline for pipeline, _ in materialize]
    # new data: each S3 object event starts a sensor pipeline, which starts training only once
    # a burst is over its watermark (debounced: runtime/pipelines_sagemaker.py)
    sensors = {trigger.name: pipeline for trigger, (pipeline, _) in zip((t for t in plan.triggers if t.kind == "new_data"), new_data_sensors(plan))}
    pipelines += list(sensors.values())

    built = sdk.build(plan, layout, pipelines, extra)
    for pipeline in pipelines:
        definition = built.definitions[pipeline.name]
        size = len(compact(definition))
        if size > MAX_DEFINITION_CHARS:
            origin = pipeline.steps[0].origin
            raise SpecError(
                [
                    unsupported(
                        origin,
                        "sagemaker",
                        f"pipeline {pipeline.name} has a {size:,}-character definition: SageMaker accepts at most {MAX_DEFINITION_CHARS:,}",
                        "split the system or shorten step parameters",
                    )
                ]
            )
        add(f"pipelines/{pipeline.name}.definition.json", PIPELINE_DEFINITION, definition)
        add(f"pipelines/{pipeline.name}.json", "sagemaker.create_pipeline", bodies.create_pipeline(plan, layout, pipeline.name, pipeline.description))
    for key, config in sorted(built.configs.items()):
        add(f"configs/{key}.json", STEP_CONFIG, config)

    add(f"registry/{plan.registry.model}.json", "sagemaker.create_model_package_group", bodies.model_package_group(plan))
    for name, (kind, body) in sorted(serving.items()):
        add(f"serving/{name}.json", kind, body)

    schedules = [*plan.schedules, *(schedule for _, schedule in materialize)]
    if schedules:
        add("schedules/group.json", "scheduler.create_schedule_group", bodies.schedule_group(plan, layout))
        for schedule in schedules:
            add(f"schedules/{schedule.name}.json", "scheduler.create_schedule", bodies.schedule(layout, schedule))
    for view in feature_store.online_views(plan):
        add(f"feature-store/{view.name}.json", "sagemaker.create_feature_group", feature_store.create_feature_group(plan, layout, view))
    if bodies.email_recipients(plan):  # email alerts: an alarm on the alert step notifies an SNS topic
        add("alerts/topic.json", "sns.create_topic", bodies.alert_topic(plan))
        for index, subscription in enumerate(bodies.alert_subscriptions(plan, layout), 1):
            add(f"alerts/subscription-{index}.json", "sns.subscribe", subscription)
        alarm = bodies.alert_alarm(plan, layout)
        add(f"alarms/{alarm['AlarmName']}.json", "cloudwatch.put_metric_alarm", alarm)
    for trigger in plan.triggers:
        if trigger.kind == "monitoring_breach":  # the monitoring pipeline's step starts training; the alarm only tells
            alarm = bodies.breach_alarm(plan, trigger)
            add(f"alarms/{alarm['AlarmName']}.json", "cloudwatch.put_metric_alarm", alarm)
            continue
        sensor = sensors[trigger.name].name
        description = (
            f"new objects in source {trigger.source} → {sensor} starts {trigger.pipeline} once they are past its watermark (from {trigger.origin.path})"
        )
        add(f"rules/{trigger.name}.json", "events.put_rule", bodies.rule(plan, trigger.name, description, bodies.trigger_pattern(plan, trigger)))
        add(f"rules/{trigger.name}.targets.json", "events.put_targets", bodies.rule_targets(layout, trigger.name, sensor))
    if plan.online is not None and plan.online.requires_approval:
        name = f"{plan.system}-deploy-on-approval"
        description = f"a version of {plan.registry.model} is approved → starts {plan.system}-deploy"
        add(f"rules/{name}.json", "events.put_rule", bodies.rule(plan, name, description, bodies.approval_pattern(plan)))
        add(f"rules/{name}.targets.json", "events.put_targets", bodies.rule_targets(layout, name, f"{plan.system}-deploy"))
    return files
