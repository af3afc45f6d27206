"""What AWS does between the API calls of an emulated SageMaker system:

- SageMaker Pipelines: an execution StartPipelineExecution started (moto records it; account.py
  keeps it `Executing`) runs the definition `mlcompile deploy` put into the account
  (pipeline.py), then ends `Succeeded` or `Failed`; one a step started (the monitoring
  pipeline's trigger-retraining) runs after the execution that started it; each step's end
  is published to CloudWatch as SageMaker does (namespace AWS/Sagemaker/ModelBuildingPipeline, StepSucceeded / StepFailed by
  PipelineName and StepName);
- CloudWatch: after each execution every alarm is evaluated on its metric (statistic over
  Period × EvaluationPeriods, the comparison with the threshold, TreatMissingData); a state
  change is sent to EventBridge ("CloudWatch Alarm State Change") and published to the SNS
  topics among the alarm's actions for that state;
- the Model Registry: a new model package, or a changed ModelApprovalStatus, is sent to
  EventBridge ("SageMaker Model Package State Change");
- EventBridge: an event starts the SageMaker pipeline targets of every enabled rule whose
  pattern matches it (TestEventPattern decides the match).

Events are delivered in order after each action, so a run started by an event (deploy on
approval, retraining a step started on a breach) ends before the emulator goes on."""

from __future__ import annotations

import json
import uuid
from collections import deque
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from mlcompile.emulate.ir import FAILED, SUCCEEDED, PipelineError, PipelineResult
from mlcompile.emulate.sagemaker import account
from mlcompile.emulate.sagemaker.account import client
from mlcompile.emulate.sagemaker.jobs import JobContext, JobFailed
from mlcompile.emulate.sagemaker.pipeline import Execution

PIPELINE_METRICS = "AWS/Sagemaker/ModelBuildingPipeline"
_OPERATORS: dict[str, Callable[[float, float], bool]] = {
    "GreaterThanOrEqualToThreshold": lambda value, threshold: value >= threshold,
    "GreaterThanThreshold": lambda value, threshold: value > threshold,
    "LessThanThreshold": lambda value, threshold: value < threshold,
    "LessThanOrEqualToThreshold": lambda value, threshold: value <= threshold,
}


class Platform:
    def __init__(
        self,
        url: str,
        region: str,
        account: str,
        context: JobContext,
        *,
        log: Callable[[str], None],
        on_result: Callable[[PipelineResult, str], None],
        parallelism: int = 4,
    ) -> None:
        self.url, self.region, self.account, self.context = url, region, account, context
        self.log, self.on_result, self.parallelism = log, on_result, parallelism
        self.clients: dict[str, Any] = {}
        self.events: deque[dict[str, Any]] = deque()
        self.packages: dict[str, str] = {}  # model package ARN -> the approval status last seen
        self.delivered: list[dict[str, Any]] = []  # every event, and the executions it started
        self.submitted: list[str] = []  # the execution ARNs steps started through StartPipelineExecution

    def client(self, service: str) -> Any:
        if service not in self.clients:
            self.clients[service] = client(service, self.url, self.region)
        return self.clients[service]

    # -- SageMaker Pipelines ----------------------------------------------------------------
    def start(self, pipeline: str, parameters: dict[str, Any] | None = None, *, cause: str = "") -> PipelineResult:
        """StartPipelineExecution, then the execution itself, then the events it caused."""
        listed = [{"Name": key, "Value": str(value)} for key, value in (parameters or {}).items()]
        arn = self.client("sagemaker").start_pipeline_execution(PipelineName=pipeline, PipelineParameters=listed, ClientRequestToken=uuid.uuid4().hex)[
            "PipelineExecutionArn"
        ]
        started = account.take_started(self.region, arn)
        if started is None:
            raise PipelineError(f"pipeline {pipeline}: StartPipelineExecution answered {arn}, an execution the emulated account did not record")
        return self.run(*started, cause=cause)

    def run(self, pipeline: str, execution: Any, *, cause: str) -> PipelineResult:
        """An execution moto recorded (`Executing` while it runs), then the events it caused."""
        body = self.client("sagemaker").describe_pipeline(PipelineName=pipeline)
        definition = json.loads(body["PipelineDefinition"])
        limit = int((body.get("ParallelismConfiguration") or {}).get("MaxParallelExecutionSteps") or self.parallelism)
        parameters = {p["Name"]: p["Value"] for p in execution.pipeline_parameters or []}
        self.log(f"pipeline {pipeline}: running{f' ({cause})' if cause else ''}")
        interpreted = Execution(
            definition,
            pipeline,
            execution.arn,
            parameters,
            self.context,
            register=self.register,
            parallelism=min(limit, self.parallelism),
            on_step=lambda step, status: self._step_metric(pipeline, step, status),
        )
        try:
            result = interpreted.run()
        except BaseException:
            account.finish(execution, False, "the execution could not be emulated")
            raise
        account.finish(execution, result.status == SUCCEEDED, interpreted.failure)
        for task in result.tasks.values():
            self.log(f"  {task.name}: {task.status.lower()} in {task.seconds:.1f} s" + (f" ({task.reason})" if task.reason else ""))
        self.log(f"pipeline {pipeline}: {result.status.lower()} in {result.seconds:.1f} s")
        self.on_result(result, cause)
        self.settle()
        return result

    def register(self, request: dict[str, Any]) -> dict[str, Any]:
        """A RegisterModel step: CreateModelPackage (a refused request fails the step)."""
        from botocore.exceptions import ClientError, ParamValidationError

        try:
            answer = self.client("sagemaker").create_model_package(**request)
        except (ClientError, ParamValidationError) as exc:
            raise JobFailed(f"CreateModelPackage: {exc}") from None
        return {"ModelPackageArn": answer["ModelPackageArn"]}

    def _step_metric(self, pipeline: str, step: str, status: str) -> None:
        if status not in (SUCCEEDED, FAILED):
            return
        dimensions = [{"Name": "PipelineName", "Value": pipeline}, {"Name": "StepName", "Value": step}]
        name = "StepSucceeded" if status == SUCCEEDED else "StepFailed"
        self.client("cloudwatch").put_metric_data(
            Namespace=PIPELINE_METRICS, MetricData=[{"MetricName": name, "Dimensions": dimensions, "Value": 1.0, "Unit": "Count"}]
        )

    # -- events ---------------------------------------------------------------------------
    def settle(self) -> None:
        """Evaluate alarms, look at the registry, deliver every event (and what it starts), then
        run the executions steps started through StartPipelineExecution (retraining), oldest first."""
        self.evaluate_alarms()
        self.watch_registry()
        while self.events:
            self.deliver(self.events.popleft())
        while (started := account.take_started(self.region)) is not None:
            pipeline, execution = started
            self.submitted.append(execution.arn)
            self.run(pipeline, execution, cause=f"StartPipelineExecution: {execution.pipeline_execution_description or 'from a step'}")

    def send(self, source: str, detail_type: str, detail: dict[str, Any], resources: list[str]) -> None:
        self.events.append({
            "version": "0", "id": str(uuid.uuid4()), "detail-type": detail_type, "source": source, "account": self.account,
            "time": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"), "region": self.region, "resources": resources, "detail": detail,
        })  # fmt: skip

    def deliver(self, event: dict[str, Any]) -> None:
        events = self.client("events")
        started = []
        for rule in events.list_rules()["Rules"]:
            if rule.get("State") != "ENABLED" or not rule.get("EventPattern"):
                continue
            if not events.test_event_pattern(EventPattern=rule["EventPattern"], Event=json.dumps(event))["Result"]:
                continue
            for target in events.list_targets_by_rule(Rule=rule["Name"])["Targets"]:
                pipeline = _pipeline_of(target["Arn"])
                if pipeline is None:
                    self.log(f"rule {rule['Name']}: target {target['Arn']} is not a SageMaker pipeline (not emulated)")
                    continue
                parameters = {p["Name"]: p["Value"] for p in (target.get("SageMakerPipelineParameters") or {}).get("PipelineParameterList", [])}
                started.append((rule["Name"], pipeline))
                delivery = {"event": event["detail-type"], "rule": rule["Name"], "pipeline": pipeline}
                self.delivered.append(delivery)
                result = self.start(pipeline, parameters, cause=f"rule {rule['Name']}: {event['detail-type']}")
                delivery.update(execution=result.run_id, status=result.status)
        if not started:
            self.delivered.append({"event": event["detail-type"], "rule": None, "pipeline": None})

    # -- CloudWatch -----------------------------------------------------------------------
    def evaluate_alarms(self) -> None:
        cloudwatch = self.client("cloudwatch")
        now = datetime.now(UTC)
        for alarm in cloudwatch.describe_alarms()["MetricAlarms"]:
            period, periods = int(alarm.get("Period", 60)), int(alarm.get("EvaluationPeriods", 1))
            statistic = alarm.get("Statistic", "Sum")
            points = cloudwatch.get_metric_statistics(
                Namespace=alarm["Namespace"], MetricName=alarm["MetricName"], Dimensions=alarm.get("Dimensions", []),
                StartTime=now - timedelta(seconds=period * periods), EndTime=now + timedelta(seconds=1), Period=period * periods, Statistics=[statistic],
            )["Datapoints"]  # fmt: skip
            compare = _OPERATORS.get(alarm["ComparisonOperator"])
            if compare is None:
                raise PipelineError(f"alarm {alarm['AlarmName']}: comparison {alarm['ComparisonOperator']} is not emulated")
            if points:
                state = "ALARM" if compare(sum(float(p[statistic]) for p in points), float(alarm["Threshold"])) else "OK"
            else:
                state = {"breaching": "ALARM", "notBreaching": "OK"}.get(alarm.get("TreatMissingData", "missing"), "INSUFFICIENT_DATA")
            previous = alarm.get("StateValue", "INSUFFICIENT_DATA")
            if state == previous:
                continue
            reason = f"emulated evaluation: {statistic} of {alarm['MetricName']} over {period * periods} s against {alarm['Threshold']}"
            cloudwatch.set_alarm_state(AlarmName=alarm["AlarmName"], StateValue=state, StateReason=reason)
            self.log(f"alarm {alarm['AlarmName']}: {previous} -> {state}")
            self.notify(alarm, state, previous, reason)
            self.send(
                "aws.cloudwatch",
                "CloudWatch Alarm State Change",
                {"alarmName": alarm["AlarmName"], "state": {"value": state, "reason": reason}, "previousState": {"value": previous}},
                [alarm["AlarmArn"]],
            )

    def notify(self, alarm: dict[str, Any], state: str, previous: str, reason: str) -> None:
        """The alarm's actions for its new state that are SNS topics: CloudWatch publishes the
        alarm's JSON to each (the topic's subscriptions, e.g. email, get it)."""
        if not alarm.get("ActionsEnabled", True):
            return
        actions = alarm.get({"ALARM": "AlarmActions", "OK": "OKActions"}.get(state, "InsufficientDataActions")) or []
        message = {
            "AlarmName": alarm["AlarmName"],
            "AlarmDescription": alarm.get("AlarmDescription"),
            "NewStateValue": state,
            "OldStateValue": previous,
            "NewStateReason": reason,
            "Region": self.region,
            "AWSAccountId": self.account,
        }
        for topic in (a for a in actions if a.startswith("arn:aws:sns:")):
            self.client("sns").publish(TopicArn=topic, Subject=f'{state}: "{alarm["AlarmName"]}" in {self.region}'[:100], Message=json.dumps(message))
            self.log(f"alarm {alarm['AlarmName']}: notified {topic}")

    # -- the Model Registry ---------------------------------------------------------------
    def has_pipeline(self, name: str) -> bool:
        from botocore.exceptions import ClientError

        try:
            self.client("sagemaker").describe_pipeline(PipelineName=name)
            return True
        except ClientError:
            return False

    def packages_of(self, group: str) -> list[dict[str, Any]]:
        """Every model package of the group, oldest first (none when there is no such group)."""
        from botocore.exceptions import ClientError

        sagemaker = self.client("sagemaker")
        try:
            sagemaker.describe_model_package_group(ModelPackageGroupName=group)
        except ClientError:
            return []
        found, token = [], None
        while True:
            page = sagemaker.list_model_packages(ModelPackageGroupName=group, **({"NextToken": token} if token else {}))
            found += page["ModelPackageSummaryList"]
            token = page.get("NextToken")
            if not token:
                break
        return sorted(found, key=lambda p: int(p.get("ModelPackageVersion") or 0))

    def watch_registry(self) -> None:
        sagemaker = self.client("sagemaker")
        for group in sagemaker.list_model_package_groups()["ModelPackageGroupSummaryList"]:
            for package in self.packages_of(group["ModelPackageGroupName"]):
                arn, status = package["ModelPackageArn"], str(package.get("ModelApprovalStatus") or "")
                if self.packages.get(arn) == status:
                    continue
                self.packages[arn] = status
                detail = {
                    "ModelPackageGroupName": group["ModelPackageGroupName"],
                    "ModelPackageVersion": package.get("ModelPackageVersion"),
                    "ModelPackageArn": arn,
                    "ModelApprovalStatus": status,
                }
                self.send("aws.sagemaker", "SageMaker Model Package State Change", detail, [arn])

    def approve(self, package_arn: str) -> None:
        """A person approving a version: UpdateModelPackage ModelApprovalStatus=Approved."""
        self.client("sagemaker").update_model_package(
            ModelPackageArn=package_arn, ModelApprovalStatus="Approved", ApprovalDescription="approved in an emulated run"
        )
        self.settle()


def _pipeline_of(arn: str) -> str | None:
    """The pipeline name of arn:aws:sagemaker:R:A:pipeline/NAME."""
    kind, _, name = arn.rpartition(":")[2].partition("/")
    return name if arn.startswith("arn:aws:sagemaker:") and kind == "pipeline" and name else None
