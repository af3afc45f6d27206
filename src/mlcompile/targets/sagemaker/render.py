"""A plan → the files of a SageMaker build. Each file's manifest kind names what it is:
`sagemaker.pipeline_definition` (the JSON SageMaker Pipelines runs), `mlcompile.step_config`
(a runtime step's --config, uploaded by deploy), or `<service>.<operation>` for the request
body of that AWS API (validated against botocore's service model by the tests, sent as is by
deploy)."""

from __future__ import annotations

import json
from typing import Any

from mlcompile.errors import SpecError
from mlcompile.plan.extension import PlanExtension, platform_step
from mlcompile.plan.nodes import Plan
from mlcompile.targets.base import OutputFile, json_bytes, unsupported
from mlcompile.targets.kfp_ir import approval_pipelines, new_data_sensors, sensor_name
from mlcompile.targets.sagemaker import bodies, feature_store
from mlcompile.targets.sagemaker.layout import BREACH_STEP, MAX_DEFINITION_CHARS, Layout

PIPELINE_DEFINITION = "sagemaker.pipeline_definition"
STEP_CONFIG = "mlcompile.step_config"


def compact(definition: dict[str, Any]) -> str:
    """The definition as SageMaker receives it (deploy sends this string)."""
    return json.dumps(definition, sort_keys=True, separators=(",", ":"))


def breach_retraining(plan: Plan) -> PlanExtension:
    """A trigger-retraining step on a breach, added to the monitoring pipeline whenever the
    spec retrains on one: `retraining.on_drift` without `monitoring.on_breach: retrain` gives
    the plan none, and on SageMaker that step is what starts training (through the API,
    debounced, skipped while training runs), as it does for `on_breach: retrain`."""
    pipeline = plan.monitoring_pipeline
    trigger = next((t for t in plan.triggers if t.kind == "monitoring_breach"), None)
    if trigger is None or pipeline is None or any(s.kind == "trigger_retraining" for s in pipeline.steps):
        return PlanExtension()
    checks = [s for s in pipeline.steps if s.run_if is None]
    step = platform_step(
        plan, BREACH_STEP, "trigger_retraining", trigger.origin, params={"pipeline": trigger.pipeline},
        depends_on=tuple(s.name for s in checks), run_if="breach", resources=checks[0].resources,
    )  # fmt: skip
    return PlanExtension(steps=((pipeline.name, step),))


def extend_plan(plan: Plan) -> PlanExtension:
    """Retraining on a breach from the monitoring pipeline; the deploy pipeline an approval
    starts (an EventBridge rule); per online view, its materialisation pipeline and schedule;
    per new-data trigger, its sensor pipeline (started by S3 object events: not polled)."""
    return (
        breach_retraining(plan) + approval_pipelines(plan) + feature_store.materialize_pipelines(plan, Layout.of(plan)) + new_data_sensors(plan, polled=False)
    )


def render(plan: Plan) -> list[OutputFile]:
    from mlcompile.targets.sagemaker import sdk

    layout = Layout.of(plan)
    files: list[OutputFile] = []

    def add(path: str, kind: str, body: Any) -> None:
        files.append(OutputFile(path, kind, json_bytes(body)))

    pipelines = list(plan.pipelines())
    extra: dict[tuple[str, str], dict[str, Any]] = {}
    serving: dict[str, tuple[str, dict[str, Any]]] = {}
    if plan.online is not None:
        serving = bodies.serving(plan, layout)
        deploy_config = {"serving": {name: body for name, (_, body) in sorted(serving.items())}, "region": layout.region}
        for pipeline in pipelines:  # training's (approval: auto) or the deploy pipeline's (manual)
            for step in pipeline.steps:
                if step.kind == "deploy_online":
                    extra[(pipeline.name, step.name)] = deploy_config

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

    if plan.schedules:
        add("schedules/group.json", "scheduler.create_schedule_group", bodies.schedule_group(plan, layout))
        for schedule in plan.schedules:
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
        sensor = sensor_name(trigger.name)
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
