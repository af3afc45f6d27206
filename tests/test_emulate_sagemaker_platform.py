"""What the SageMaker emulator does between API calls, against moto on 127.0.0.1: a step's end
is a CloudWatch metric, an alarm on it changes state and EventBridge starts the rule's pipeline;
an execution a step starts through StartPipelineExecution (retraining on a breach) is Executing
until the emulator has run it; approving a model package (UpdateModelPackage) starts the
deploy-on-approval rule's pipeline; and the moto answers the emulator corrects (TestEventPattern,
UpdateEndpoint). Pipelines here are one Condition step, so nothing runs a container."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from requires import require

from mlcompile.emulate.containers import Images
from mlcompile.emulate.ir import PipelineResult
from mlcompile.emulate.sagemaker.account import client, moto_account
from mlcompile.emulate.sagemaker.jobs import JobContext
from mlcompile.emulate.sagemaker.platform import Platform

require("moto")

REGION = "eu-west-1"
ROLE = "arn:aws:iam::123456789012:role/SageMakerPipelinesExecution"
ONE_STEP = {
    "Version": "2020-12-01",
    "Steps": [
        {
            "Name": "trigger-retraining",
            "Type": "Condition",
            "Arguments": {"Conditions": [{"Type": "Equals", "LeftValue": 1, "RightValue": 1}], "IfSteps": [], "ElseSteps": []},
        }
    ],
}

FAILING = {"Version": "2020-12-01", "Steps": [{"Name": "gate-failed", "Type": "Fail", "Arguments": {"ErrorMessage": "the gate refused the model"}}]}


@pytest.fixture(scope="module")
def url() -> Iterator[str]:
    with moto_account() as found:
        yield found


@pytest.fixture
def platform(url: str, tmp_path: Path) -> Platform:
    import urllib.request

    urllib.request.urlopen(urllib.request.Request(f"{url}/moto-api/reset", method="POST")).read()
    context = JobContext(Images("runtime:1"), tmp_path / "storage", tmp_path / "work", region=REGION)
    results: list[PipelineResult] = []
    found = Platform(url, REGION, "123456789012", context, log=lambda message: None, on_result=lambda result, cause: results.append(result))
    found.results = results  # type: ignore[attr-defined]
    sagemaker = found.client("sagemaker")
    for name in ("monitoring", "training", "deploy"):
        sagemaker.create_pipeline(PipelineName=name, PipelineDefinition=json.dumps(ONE_STEP), RoleArn=ROLE)
    sagemaker.create_pipeline(PipelineName="refused", PipelineDefinition=json.dumps(FAILING), RoleArn=ROLE)
    return found


def rule(platform: Platform, name: str, pattern: dict[str, Any], pipeline: str) -> None:
    events = platform.client("events")
    events.put_rule(Name=name, EventPattern=json.dumps(pattern), State="ENABLED")
    events.put_targets(
        Rule=name,
        Targets=[
            {
                "Id": pipeline,
                "Arn": f"arn:aws:sagemaker:{REGION}:123456789012:pipeline/{pipeline}",
                "RoleArn": ROLE,
                "SageMakerPipelineParameters": {"PipelineParameterList": []},
            }
        ],
    )


def test_a_step_metric_breaching_an_alarm_starts_the_rules_pipeline(platform: Platform) -> None:
    platform.client("cloudwatch").put_metric_alarm(
        AlarmName="breach", Namespace="AWS/Sagemaker/ModelBuildingPipeline", MetricName="StepSucceeded", Statistic="Sum", Period=300, EvaluationPeriods=1,
        Threshold=1.0, ComparisonOperator="GreaterThanOrEqualToThreshold", TreatMissingData="notBreaching",
        Dimensions=[{"Name": "PipelineName", "Value": "monitoring"}, {"Name": "StepName", "Value": "trigger-retraining"}],
    )  # fmt: skip
    rule(
        platform,
        "retrain-on-breach",
        {"source": ["aws.cloudwatch"], "detail-type": ["CloudWatch Alarm State Change"], "detail": {"alarmName": ["breach"], "state": {"value": ["ALARM"]}}},
        "training",
    )
    platform.start("monitoring")
    started = [d for d in platform.delivered if d["pipeline"]]
    assert [(d["rule"], d["pipeline"], d["status"]) for d in started] == [("retrain-on-breach", "training", "SUCCEEDED")]
    assert [r.name for r in platform.results] == ["monitoring", "training"]  # type: ignore[attr-defined]
    executions = platform.client("sagemaker").list_pipeline_executions(PipelineName="training")["PipelineExecutionSummaries"]
    assert [e["PipelineExecutionArn"] for e in executions] == [started[0]["execution"]]
    assert platform.client("cloudwatch").describe_alarms(AlarmNames=["breach"])["MetricAlarms"][0]["StateValue"] == "ALARM"


@pytest.mark.parametrize(
    ("pipeline", "status", "reason"), [("training", "Succeeded", None), ("refused", "Failed", "step gate-failed failed: the gate refused the model")]
)
def test_an_execution_a_step_starts_through_the_api_runs_after_it_and_is_executing_until_it_ends(
    platform: Platform, url: str, pipeline: str, status: str, reason: str | None
) -> None:
    step_client = client("sagemaker", url, REGION)  # the trigger-retraining step's own boto3 client
    seen: dict[str, Any] = {}

    def step_ends(owner: str, step: str, step_status: str) -> None:
        if owner == "monitoring":
            seen["arn"] = step_client.start_pipeline_execution(PipelineName=pipeline, PipelineExecutionDescription="started by a step")["PipelineExecutionArn"]
            seen["while"] = [e["PipelineExecutionStatus"] for e in step_client.list_pipeline_executions(PipelineName=pipeline)["PipelineExecutionSummaries"]]

    platform._step_metric = step_ends  # type: ignore[method-assign]
    platform.start("monitoring")
    assert seen["while"] == ["Executing"]  # what the step's debounce sees: a run still active
    assert [(r.name, r.run_id) for r in platform.results] == [("monitoring", platform.results[0].run_id), (pipeline, seen["arn"])]  # type: ignore[attr-defined]
    assert platform.submitted == [seen["arn"]]
    described = step_client.describe_pipeline_execution(PipelineExecutionArn=seen["arn"])
    assert described["PipelineExecutionStatus"] == status and described.get("FailureReason") == reason


def test_an_alarm_going_off_publishes_to_the_sns_topics_of_its_actions(platform: Platform) -> None:
    sns, sqs = platform.client("sns"), platform.client("sqs")
    topic = sns.create_topic(Name="alerts")["TopicArn"]
    queue = sqs.create_queue(QueueName="inbox")["QueueUrl"]  # stands for the email subscription: it keeps what SNS delivered
    sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"])
    platform.client("cloudwatch").put_metric_alarm(
        AlarmName="alert", Namespace="AWS/Sagemaker/ModelBuildingPipeline", MetricName="StepSucceeded", Statistic="Sum", Period=300, EvaluationPeriods=1,
        Threshold=1.0, ComparisonOperator="GreaterThanOrEqualToThreshold", TreatMissingData="notBreaching", ActionsEnabled=True, AlarmActions=[topic],
        Dimensions=[{"Name": "PipelineName", "Value": "monitoring"}, {"Name": "StepName", "Value": "trigger-retraining"}],
    )  # fmt: skip
    platform.start("monitoring")
    (delivered,) = sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=10)["Messages"]
    alarm = json.loads(json.loads(delivered["Body"])["Message"])
    assert (alarm["AlarmName"], alarm["NewStateValue"]) == ("alert", "ALARM")


def test_no_metric_is_no_breach_when_missing_data_is_not_breaching(platform: Platform) -> None:
    platform.client("cloudwatch").put_metric_alarm(
        AlarmName="quiet", Namespace="AWS/Sagemaker/ModelBuildingPipeline", MetricName="StepSucceeded", Statistic="Sum", Period=300, EvaluationPeriods=1,
        Threshold=1.0, ComparisonOperator="GreaterThanOrEqualToThreshold", TreatMissingData="notBreaching", Dimensions=[{"Name": "PipelineName", "Value": "elsewhere"}],
    )  # fmt: skip
    rule(platform, "retrain-on-breach", {"source": ["aws.cloudwatch"], "detail": {"state": {"value": ["ALARM"]}}}, "training")
    platform.start("monitoring")
    assert [r.name for r in platform.results] == ["monitoring"]  # type: ignore[attr-defined]


def test_approving_a_package_starts_the_deploy_on_approval_rules_pipeline(platform: Platform) -> None:
    sagemaker = platform.client("sagemaker")
    sagemaker.create_model_package_group(ModelPackageGroupName="churn")
    rule(
        platform,
        "deploy-on-approval",
        {
            "source": ["aws.sagemaker"],
            "detail-type": ["SageMaker Model Package State Change"],
            "detail": {"ModelPackageGroupName": ["churn"], "ModelApprovalStatus": ["Approved"]},
        },
        "deploy",
    )
    arn = platform.register(
        {
            "ModelPackageGroupName": "churn",
            "ModelApprovalStatus": "PendingManualApproval",
            "InferenceSpecification": {
                "Containers": [{"Image": "runtime:1"}],
                "SupportedContentTypes": ["application/json"],
                "SupportedResponseMIMETypes": ["application/json"],
            },
        }
    )["ModelPackageArn"]
    platform.settle()
    assert platform.results == []  # type: ignore[attr-defined]  # pending: the rule does not match
    platform.approve(arn)
    assert [r.name for r in platform.results] == ["deploy"]  # type: ignore[attr-defined]
    assert [d["event"] for d in platform.delivered] == ["SageMaker Model Package State Change"] * 2


def test_test_event_pattern_answers_with_moto_matcher(url: str) -> None:
    events = client("events", url, REGION)
    pattern = json.dumps({"detail": {"state": {"value": ["ALARM"]}}})
    event = {
        "id": "1",
        "source": "aws.cloudwatch",
        "detail-type": "x",
        "account": "123456789012",
        "time": "2026-01-01T00:00:00Z",
        "region": REGION,
        "resources": [],
        "detail": {"state": {"value": "ALARM"}},
    }
    assert events.test_event_pattern(EventPattern=pattern, Event=json.dumps(event))["Result"] is True
    event["detail"] = {"state": {"value": "OK"}}
    assert events.test_event_pattern(EventPattern=pattern, Event=json.dumps(event))["Result"] is False


def test_update_endpoint_moves_the_endpoint_to_the_new_config(url: str) -> None:
    sagemaker = client("sagemaker", url, REGION)
    for version in ("1", "2"):
        sagemaker.create_model(ModelName=f"m-v{version}", ExecutionRoleArn=ROLE, PrimaryContainer={"Image": "runtime:1"})
        sagemaker.create_endpoint_config(
            EndpointConfigName=f"c-v{version}",
            ProductionVariants=[{"VariantName": "AllTraffic", "ModelName": f"m-v{version}", "InitialInstanceCount": 1, "InstanceType": "ml.m5.large"}],
        )
    sagemaker.create_endpoint(EndpointName="e", EndpointConfigName="c-v1")
    sagemaker.update_endpoint(EndpointName="e", EndpointConfigName="c-v2")
    described = sagemaker.describe_endpoint(EndpointName="e")
    assert described["EndpointConfigName"] == "c-v2"
    assert [v["VariantName"] for v in described["ProductionVariants"]] == ["AllTraffic"]


@pytest.mark.parametrize(
    ("size", "instances", "share"),
    [({"Type": "CAPACITY_PERCENT", "Value": 10}, 2, 50), ({"Type": "CAPACITY_PERCENT", "Value": 10}, 20, 10), ({"Type": "INSTANCE_COUNT", "Value": 1}, 4, 25)],
)
def test_a_canary_takes_the_share_of_its_whole_instances(size: dict[str, Any], instances: int, share: int) -> None:
    from mlcompile.emulate.sagemaker.system import canary_share

    deployment = {"BlueGreenUpdatePolicy": {"TrafficRoutingConfiguration": {"Type": "CANARY", "CanarySize": size}}}
    assert canary_share(deployment, instances) == share
    assert canary_share({"BlueGreenUpdatePolicy": {"TrafficRoutingConfiguration": {"Type": "ALL_AT_ONCE"}}}, instances) == 100


def test_an_endpoint_in_its_canary_phase_splits_traffic_between_the_package_versions(platform: Platform) -> None:
    from mlcompile.emulate.sagemaker.system import endpoint_versions

    sagemaker = platform.client("sagemaker")
    for version in ("1", "2"):
        package = f"arn:aws:sagemaker:{REGION}:123456789012:model-package/churn/{version}"
        sagemaker.create_model(ModelName=f"m-v{version}", ExecutionRoleArn=ROLE, PrimaryContainer={"ModelPackageName": package})
        sagemaker.create_endpoint_config(
            EndpointConfigName=f"c-v{version}",
            ProductionVariants=[{"VariantName": "AllTraffic", "ModelName": f"m-v{version}", "InitialInstanceCount": 2, "InstanceType": "ml.m5.large"}],
        )
    sagemaker.create_endpoint(EndpointName="scorer", EndpointConfigName="c-v1")
    assert endpoint_versions(platform, "scorer") == {"endpoint": "scorer", "version": "1", "traffic": {"1": 100}}
    canary = {
        "BlueGreenUpdatePolicy": {
            "TrafficRoutingConfiguration": {"Type": "CANARY", "CanarySize": {"Type": "CAPACITY_PERCENT", "Value": 10}, "WaitIntervalInSeconds": 600}
        }
    }
    sagemaker.update_endpoint(EndpointName="scorer", EndpointConfigName="c-v2", DeploymentConfig=canary)
    assert endpoint_versions(platform, "scorer") == {"endpoint": "scorer", "version": "2", "traffic": {"2": 50, "1": 50}}
    assert endpoint_versions(platform, "missing") is None
