"""Request bodies of the AWS APIs a SageMaker build describes, as plain data: each file's
manifest kind is `<service>.<operation>` (botocore names), and its content is that
operation's request — so tests validate it against botocore's service model and `deploy`
sends it as is. Pure: no AWS import."""

from __future__ import annotations

import json
from typing import Any

from mlcompile.plan.nodes import OnlineEndpoint, Plan, Schedule, Trigger
from mlcompile.targets.base import resource_labels
from mlcompile.targets.sagemaker.cron import aws_cron
from mlcompile.targets.sagemaker.layout import BREACH_METRIC, BREACH_STEP, PIPELINE_METRICS_NAMESPACE, Layout, fit

# Filled in at deploy time by the deploy-online step, once a version is approved.
MODEL_PACKAGE_ARN = "${ModelPackageArn}"
MODEL_PACKAGE_VERSION = "${ModelPackageVersion}"
VARIANT = "AllTraffic"
ENDPOINT_METRICS = "/aws/sagemaker/Endpoints"
CANARY_WAIT_SECONDS = 600  # canary fleet serves its share this long before the rest shifts
BLUE_GREEN_TERMINATION_WAIT_SECONDS = 600  # the old fleet stays up this long for rollback
REQUEST_TIMEOUT_ENV = "MLCOMPILE_REQUEST_TIMEOUT_SECONDS"


def tags(plan: Plan, extra: dict[str, str] | None = None) -> list[dict[str, str]]:
    """Lineage (system, spec sha256, git commit) + the spec's labels, as AWS tags."""
    labels = resource_labels(plan)
    labels.update(extra or {})
    return [{"Key": key, "Value": value} for key, value in sorted(labels.items())]


def model_package_group(plan: Plan) -> dict[str, Any]:
    registry = plan.registry
    return {
        "ModelPackageGroupName": registry.model,
        "ModelPackageGroupDescription": f"{registry.model}: versions registered by {plan.training.name} (approval {registry.approval})",
        "Tags": tags(plan, registry.tags),
    }


def create_pipeline(plan: Plan, layout: Layout, name: str, description: str) -> dict[str, Any]:
    """CreatePipeline without PipelineDefinition (its own file) and ClientRequestToken."""
    if plan.owner:
        description = f"{description} (owner: {plan.owner})"
    return {
        "PipelineName": name,
        "PipelineDisplayName": name,
        "PipelineDescription": description[:3072],
        "RoleArn": layout.role_arn,
        "ParallelismConfiguration": {"MaxParallelExecutionSteps": 50},
        "Tags": tags(plan),
    }


# ---------------------------------------------------------------------------- serving


def _names(online: OnlineEndpoint) -> str:
    return f"{online.name}-v{MODEL_PACKAGE_VERSION}"


def serving(plan: Plan, layout: Layout) -> dict[str, tuple[str, dict[str, Any]]]:
    """name → (kind, body) of the online endpoint: model, endpoint config, endpoint (with its
    rollout), autoscaling and the alarm that rolls a bad deployment back."""
    online = plan.online
    assert online is not None and online.resources.machine is not None
    machine = online.resources.machine
    versioned = _names(online)
    bodies: dict[str, tuple[str, dict[str, Any]]] = {}
    bodies["model"] = (
        "sagemaker.create_model",
        {
            "ModelName": versioned,
            "PrimaryContainer": {"ModelPackageName": MODEL_PACKAGE_ARN},
            "ExecutionRoleArn": layout.serving_role,
            "Tags": tags(plan),
        },
    )
    variant: dict[str, Any] = {
        "VariantName": VARIANT,
        "ModelName": versioned,
        "InstanceType": machine.name,
        "InitialInstanceCount": online.min_replicas,
        "InitialVariantWeight": 1.0,
    }
    config: dict[str, Any] = {"EndpointConfigName": versioned, "ProductionVariants": [variant], "Tags": tags(plan)}
    # No DataCaptureConfig: monitoring reads the feature sources (requests carry entity keys,
    # not the features), so captured traffic would be storage nothing reads; the spec has no
    # field asking for it.
    bodies["endpoint-config"] = ("sagemaker.create_endpoint_config", config)
    rollback_alarm = f"{online.name}-rollback"
    bodies["endpoint"] = (
        "sagemaker.create_endpoint",
        {
            "EndpointName": online.name,
            "EndpointConfigName": versioned,
            "DeploymentConfig": {**_rollout(online), "AutoRollbackConfiguration": {"Alarms": [{"AlarmName": rollback_alarm}]}},
            "Tags": tags(plan),
        },
    )
    bodies["rollback-alarm"] = (
        "cloudwatch.put_metric_alarm",
        {
            "AlarmName": rollback_alarm,
            "AlarmDescription": f"5xx errors of {online.name} during a deployment: SageMaker rolls the new version back",
            "Namespace": "AWS/SageMaker",
            "MetricName": "Invocation5XXErrors",
            "Dimensions": [{"Name": "EndpointName", "Value": online.name}, {"Name": "VariantName", "Value": VARIANT}],
            "Statistic": "Sum",
            "Period": 60,
            "EvaluationPeriods": 2,
            "Threshold": 1.0,
            "ComparisonOperator": "GreaterThanOrEqualToThreshold",
            "TreatMissingData": "notBreaching",
            "Tags": tags(plan),
        },
    )
    resource_id = f"endpoint/{online.name}/variant/{VARIANT}"
    if online.max_replicas > online.min_replicas or online.autoscaling_metric is not None:
        bodies["scalable-target"] = (
            "application-autoscaling.register_scalable_target",
            {
                "ServiceNamespace": "sagemaker",
                "ResourceId": resource_id,
                "ScalableDimension": "sagemaker:variant:DesiredInstanceCount",
                "MinCapacity": online.min_replicas,
                "MaxCapacity": online.max_replicas,
                "Tags": {t["Key"]: t["Value"] for t in tags(plan)},
            },
        )
    if online.autoscaling_metric is not None and online.autoscaling_target is not None:
        bodies["scaling-policy"] = (
            "application-autoscaling.put_scaling_policy",
            {
                "PolicyName": f"{online.name}-{online.autoscaling_metric.replace('_', '-')}",
                "ServiceNamespace": "sagemaker",
                "ResourceId": resource_id,
                "ScalableDimension": "sagemaker:variant:DesiredInstanceCount",
                "PolicyType": "TargetTrackingScaling",
                "TargetTrackingScalingPolicyConfiguration": _target_tracking(online),
            },
        )
    return bodies


def canary_instances(online: OnlineEndpoint) -> int:
    """How many of the fleet's `replicas.min` instances the canary gets: SageMaker shifts whole
    instances (at least one), so the spec's percent is rounded to instances — 10 % of 2
    instances is 1 instance, half the traffic (checks.py warns when that is far from the spec)."""
    return max(1, min(online.min_replicas, round(online.min_replicas * (online.canary_percent or 0) / 100)))


def canary_traffic_percent(online: OnlineEndpoint) -> float:
    return 100 * canary_instances(online) / max(online.min_replicas, 1)


def _rollout(online: OnlineEndpoint) -> dict[str, Any]:
    """canary: some instances first (`canary_instances`), then the rest; blue_green: all at
    once, the old fleet kept for rollback; replace: all at once, the old fleet terminated at once."""
    if online.strategy == "canary":
        routing = {
            "Type": "CANARY",
            "CanarySize": {"Type": "INSTANCE_COUNT", "Value": canary_instances(online)},
            "WaitIntervalInSeconds": CANARY_WAIT_SECONDS,
        }
        wait = BLUE_GREEN_TERMINATION_WAIT_SECONDS
    else:
        routing = {"Type": "ALL_AT_ONCE", "WaitIntervalInSeconds": 0}
        wait = BLUE_GREEN_TERMINATION_WAIT_SECONDS if online.strategy == "blue_green" else 0
    return {"BlueGreenUpdatePolicy": {"TrafficRoutingConfiguration": routing, "TerminationWaitInSeconds": wait}}


def _target_tracking(online: OnlineEndpoint) -> dict[str, Any]:
    """cpu/gpu: percent of one core/GPU in the spec; SageMaker reports utilisation summed over
    the instance's cores/GPUs (a 4-vCPU instance runs 0-400%), so the target is scaled.
    requests_per_replica: per second in the spec; SageMaker counts invocations per minute."""
    machine = online.resources.machine
    assert machine is not None and online.autoscaling_target is not None
    if online.autoscaling_metric == "requests_per_replica":
        return {
            "TargetValue": float(online.autoscaling_target) * 60,
            "PredefinedMetricSpecification": {"PredefinedMetricType": "SageMakerVariantInvocationsPerInstance"},
            "ScaleInCooldown": 300,
            "ScaleOutCooldown": 60,
        }
    if online.autoscaling_metric == "gpu":
        metric, units = "GPUUtilization", max(machine.accelerator_count, 1)
    else:
        metric, units = "CPUUtilization", int(machine.vcpus or 1)
    return {
        "TargetValue": float(online.autoscaling_target) * units,
        "CustomizedMetricSpecification": {
            "MetricName": metric,
            "Namespace": ENDPOINT_METRICS,
            "Dimensions": [{"Name": "EndpointName", "Value": online.name}, {"Name": "VariantName", "Value": VARIANT}],
            "Statistic": "Average",
        },
        "ScaleInCooldown": 300,
        "ScaleOutCooldown": 60,
    }


# ---------------------------------------------------------------------------- schedules, triggers


def _pipeline_target(layout: Layout, pipeline: str) -> dict[str, Any]:
    return {"Arn": layout.pipeline_arn(pipeline), "RoleArn": layout.scheduler_role, "SageMakerPipelineParameters": {"PipelineParameterList": []}}


def schedule_group(plan: Plan, layout: Layout) -> dict[str, Any]:
    """Schedules cannot be tagged; their group carries the lineage tags."""
    return {"Name": layout.schedule_group, "Tags": tags(plan)}


def schedule(layout: Layout, item: Schedule) -> dict[str, Any]:
    return {
        "Name": fit(item.name, 64),
        "GroupName": layout.schedule_group,
        "Description": f"starts SageMaker pipeline {item.pipeline} ({item.cron}, {item.timezone}; from {item.origin.path})",
        "ScheduleExpression": aws_cron(item.cron),
        "ScheduleExpressionTimezone": item.timezone,
        "FlexibleTimeWindow": {"Mode": "OFF"},
        "State": "ENABLED",
        "Target": {**_pipeline_target(layout, item.pipeline), "RetryPolicy": {"MaximumRetryAttempts": 3, "MaximumEventAgeInSeconds": 3600}},
    }


def _step_succeeded_alarm(plan: Plan, name: str, step: str, description: str) -> dict[str, Any]:
    """In ALARM when the monitoring pipeline's `step` succeeded: it runs only when a check
    found a breach (SageMaker Pipelines' own step metric)."""
    assert plan.monitoring_pipeline is not None
    return {
        "AlarmName": name,
        "AlarmDescription": description,
        "Namespace": PIPELINE_METRICS_NAMESPACE,
        "MetricName": BREACH_METRIC,
        "Dimensions": [{"Name": "PipelineName", "Value": plan.monitoring_pipeline.name}, {"Name": "StepName", "Value": step}],
        "Statistic": "Sum",
        "Period": 300,
        "EvaluationPeriods": 1,
        "Threshold": 1.0,
        "ComparisonOperator": "GreaterThanOrEqualToThreshold",
        "TreatMissingData": "notBreaching",
        "Tags": tags(plan),
    }


def breach_alarm(plan: Plan, trigger: Trigger) -> dict[str, Any]:
    """Watches the trigger-retraining step, which runs only on a breach: a notification, with no
    action and no rule on it (the step itself starts training, or says why it did not)."""
    description = (
        f"monitoring of {plan.system} found drift or a performance drop: its {BREACH_STEP} step starts {trigger.pipeline} unless an execution of it is running"
    )
    return _step_succeeded_alarm(plan, f"{plan.system}-monitoring-breach", BREACH_STEP, description)


def email_recipients(plan: Plan) -> list[str]:
    """Every address of the monitoring's email alerts, in the spec's order, once."""
    if plan.monitoring is None:
        return []
    addresses = [str(a) for alert in plan.monitoring.alerts if alert.get("channel") == "email" for a in alert.get("to") or []]
    return list(dict.fromkeys(addresses))


def alert_topic_name(plan: Plan) -> str:
    """`<system>-alerts`, under 35 characters: in its ARN `<12-digit account>:<name>`, 35
    name characters would read as a Telegram bot token to the build's secret scanner."""
    return fit(f"{plan.system}-alerts", 34)


def alert_topic(plan: Plan) -> dict[str, Any]:
    """The SNS topic email alerts go through (its email subscriptions: `alert_subscriptions`)."""
    return {"Name": alert_topic_name(plan), "Attributes": {"DisplayName": f"mlcompile {plan.system}"[:100]}, "Tags": tags(plan)}


def alert_subscriptions(plan: Plan, layout: Layout) -> list[dict[str, Any]]:
    topic = layout.arn("sns", alert_topic_name(plan))
    return [{"TopicArn": topic, "Protocol": "email", "Endpoint": address, "ReturnSubscriptionArn": True} for address in email_recipients(plan)]


def alert_alarm(plan: Plan, layout: Layout) -> dict[str, Any]:
    """Watches the alert step; its action publishes to the alert topic, which mails the spec's recipients."""
    description = f"monitoring of {plan.system} found drift or a performance drop: mails {', '.join(email_recipients(plan))}"
    alarm = _step_succeeded_alarm(plan, f"{plan.system}-monitoring-alert", "alert", description)
    return {**alarm, "ActionsEnabled": True, "AlarmActions": [layout.arn("sns", alert_topic_name(plan))]}


def rule(plan: Plan, name: str, description: str, pattern: dict[str, Any]) -> dict[str, Any]:
    return {
        "Name": fit(name, 64),
        "Description": description[:512],
        "EventPattern": json.dumps(pattern, sort_keys=True, separators=(",", ":")),
        "State": "ENABLED",
        "Tags": tags(plan),
    }


def rule_targets(layout: Layout, rule_name: str, pipeline: str) -> dict[str, Any]:
    return {"Rule": fit(rule_name, 64), "Targets": [{"Id": fit(pipeline, 64), **_pipeline_target(layout, pipeline)}]}


def trigger_pattern(plan: Plan, trigger: Trigger) -> dict[str, Any]:
    """A new-data trigger's S3 events (a breach starts training from the monitoring pipeline)."""
    source = next(s for s in plan.features.sources if s.name == trigger.source)
    bucket, _, key = source.uri.removeprefix("s3://").partition("/")
    return {
        "source": ["aws.s3"],
        "detail-type": ["Object Created"],
        "detail": {"bucket": {"name": [bucket]}, "object": {"key": [{"prefix": key}]}},
    }


def approval_pattern(plan: Plan) -> dict[str, Any]:
    return {
        "source": ["aws.sagemaker"],
        "detail-type": ["SageMaker Model Package State Change"],
        "detail": {"ModelPackageGroupName": [plan.registry.model], "ModelApprovalStatus": ["Approved"]},
    }
