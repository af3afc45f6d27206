"""The emulated AWS account: moto's server in this process on 127.0.0.1 (SageMaker, S3,
EventBridge, EventBridge Scheduler, CloudWatch), with moto corrected where it does not answer
as AWS does:

- DescribeFeatureGroup of a group that does not exist is `ResourceNotFound` (moto: a 500);
- UpdateEndpoint (moto has none): the endpoint takes the new endpoint config's variants at
  once and stays InService; its DeploymentConfig is kept (`last_deployment_config`, and
  ROLLOUTS for the emulator: a canary's traffic split);
- TestEventPattern (moto answers nothing): moto's own matcher, the one its PutEvents uses;
- StartPipelineExecution (moto: Succeeded at once): the execution is `Executing` and queued in
  STARTED, whoever started it (the emulator, an EventBridge target, a step's boto3 client);
  the emulator runs it and sets its end status (`finish`); DescribePipelineExecution reports
  a failed one's FailureReason (moto: always empty).

Every boto3 client of the emulator and of the steps reaches it through AWS_ENDPOINT_URL and
test credentials (`environment()`); `mlcompile deploy` of the build is what provisions it."""

from __future__ import annotations

import contextlib
import os
import socket
from collections import deque
from collections.abc import Iterator
from typing import Any

PATCHED = False
# (region, endpoint) -> the last UpdateEndpoint's {from, to, deployment}: what the endpoint's
# blue/green deployment is doing (moto keeps no deployment)
ROLLOUTS: dict[tuple[str, str], dict[str, Any]] = {}
# (region, pipeline name, moto's execution) of every StartPipelineExecution the emulator has
# not run yet, oldest first
STARTED: deque[tuple[str, str, Any]] = deque()


def patch_moto() -> None:
    """Make moto answer as AWS does where the emulated system relies on it (idempotent; the
    in-process `mock_aws` too)."""
    global PATCHED
    if PATCHED:
        return
    from moto.core.responses import ActionResult
    from moto.events.models import EventPattern
    from moto.events.responses import EventsHandler
    from moto.sagemaker.exceptions import ResourceNotFound, ValidationError
    from moto.sagemaker.models import SageMakerModelBackend
    from moto.sagemaker.responses import SageMakerResponse
    from moto.sagemaker.utils import get_pipeline_execution_from_arn, get_pipeline_from_name

    describe = SageMakerModelBackend.describe_feature_group

    def describe_feature_group(self: SageMakerModelBackend, feature_group_name: str) -> Any:
        try:
            return describe(self, feature_group_name)
        except KeyError:
            raise ResourceNotFound(f"Resource Not Found: Amazon SageMaker can't find a FeatureGroup with name {feature_group_name}") from None

    def update_endpoint(self: SageMakerModelBackend, endpoint_name: str, endpoint_config_name: str, deployment_config: Any) -> str:
        endpoint = self.endpoints.get(endpoint_name)
        if endpoint is None:
            raise ValidationError(message=f"Could not find endpoint '{endpoint_name}'.")
        try:
            config = self.describe_endpoint_config(endpoint_config_name)
        except KeyError:
            raise ValidationError(message=f"Could not find endpoint configuration '{endpoint_config_name}'.") from None
        ROLLOUTS[(self.region_name, endpoint_name)] = {"from": endpoint.endpoint_config_name, "to": endpoint_config_name, "deployment": deployment_config or {}}
        endpoint.endpoint_config_name = endpoint_config_name
        endpoint.production_variants = endpoint._process_production_variants(config["ProductionVariants"])
        endpoint.last_deployment_config = deployment_config  # type: ignore[attr-defined]
        return str(endpoint.arn)

    start = SageMakerModelBackend.start_pipeline_execution

    def start_pipeline_execution(self: SageMakerModelBackend, pipeline_name: str, *args: Any, **kwargs: Any) -> dict[str, str]:
        answer = start(self, pipeline_name, *args, **kwargs)
        pipeline = get_pipeline_from_name(self.pipelines, pipeline_name)
        execution = pipeline.pipeline_executions[answer["PipelineExecutionArn"]]
        execution.pipeline_execution_status = "Executing"
        STARTED.append((self.region_name, pipeline.pipeline_name, execution))
        return answer

    update_package = SageMakerModelBackend.update_model_package

    def update_model_package(self: SageMakerModelBackend, model_package_arn: str, **request: Any) -> str:
        # AWS keeps a version's CustomerMetadataProperties through an update that does not name
        # them (an approval); moto drops them, and with them mlcompile's aliases and drift baseline
        if request.get("customer_metadata_properties") is None:
            package = self.model_packages.get(self.model_package_name_mapping.get(model_package_arn, model_package_arn))
            request["customer_metadata_properties"] = getattr(package, "customer_metadata_properties", None)
        return str(update_package(self, model_package_arn, **request))

    describe_execution = SageMakerModelBackend.describe_pipeline_execution

    def describe_pipeline_execution(self: SageMakerModelBackend, pipeline_execution_arn: str) -> dict[str, Any]:
        answer = dict(describe_execution(self, pipeline_execution_arn))
        reason = get_pipeline_execution_from_arn(self.pipelines, pipeline_execution_arn).pipeline_execution_failure_reason
        answer.pop("FailureReason", None)
        return {**answer, "FailureReason": reason} if reason else answer

    def update_endpoint_action(self: SageMakerResponse) -> Any:
        backend: Any = self.sagemaker_backend
        arn = backend.update_endpoint(self._get_param("EndpointName"), self._get_param("EndpointConfigName"), self._get_param("DeploymentConfig"))
        return ActionResult({"EndpointArn": arn})

    def test_event_pattern(self: EventsHandler) -> Any:
        import json

        pattern, event = self._get_param("EventPattern"), self._get_param("Event")
        try:
            matched = EventPattern.load(pattern).matches_event(json.loads(event))
        except (ValueError, TypeError, KeyError) as exc:
            return self.error("InvalidEventPatternException", str(exc))
        return self._create_response({"Result": bool(matched)})

    EventsHandler.test_event_pattern = test_event_pattern  # type: ignore[method-assign]
    SageMakerModelBackend.describe_feature_group = describe_feature_group  # type: ignore[method-assign]
    SageMakerModelBackend.update_endpoint = update_endpoint  # type: ignore[attr-defined]
    SageMakerModelBackend.start_pipeline_execution = start_pipeline_execution  # type: ignore[method-assign]
    SageMakerModelBackend.describe_pipeline_execution = describe_pipeline_execution  # type: ignore[method-assign]
    SageMakerModelBackend.update_model_package = update_model_package  # type: ignore[assignment]  # moto's takes its fields by name; this one any
    SageMakerResponse.update_endpoint = update_endpoint_action  # type: ignore[attr-defined]
    PATCHED = True


def take_started(region: str, arn: str | None = None) -> tuple[str, Any] | None:
    """(pipeline name, moto's execution) of the oldest execution started in `region` and not
    run yet (the one with ARN `arn` if given); None when there is none."""
    for entry in list(STARTED):
        if entry[0] == region and (arn is None or entry[2].arn == arn):
            STARTED.remove(entry)
            return entry[1], entry[2]
    return None


def finish(execution: Any, succeeded: bool, reason: str | None) -> None:
    """The execution's end, as DescribePipelineExecution and ListPipelineExecutions report it."""
    from moto.core.utils import utcnow

    execution.pipeline_execution_status = "Succeeded" if succeeded else "Failed"
    execution.pipeline_execution_failure_reason = reason
    execution.last_modified_time = utcnow()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def environment(url: str, region: str) -> dict[str, str]:
    """What points boto3 (the emulator's and every step's) at the emulated account."""
    return {
        "AWS_ENDPOINT_URL": url,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": region,
        "AWS_REGION": region,
        "AWS_EC2_METADATA_DISABLED": "true",
    }


@contextlib.contextmanager
def moto_account() -> Iterator[str]:
    """moto's server on a free port of 127.0.0.1; yields its URL."""
    import logging

    try:
        from moto.server import ThreadedMotoServer
    except ImportError:
        from mlcompile.errors import UsageError

        raise UsageError(
            "--emulate on a SageMaker profile needs moto's server and boto3: pip install 'moto[s3,events]>=5.2,<6' flask flask-cors boto3"
        ) from None

    patch_moto()
    STARTED.clear()  # nothing of an earlier account in this process
    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # one line per request otherwise
    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.stop()


@contextlib.contextmanager
def pointed_at(env: dict[str, str]) -> Iterator[None]:
    """This process's boto3 clients (mlcompile deploy's) use `env` while inside."""
    from unittest import mock

    with mock.patch.dict(os.environ, env):
        yield


def client(service: str, url: str, region: str) -> Any:
    import boto3

    return boto3.session.Session(aws_access_key_id="testing", aws_secret_access_key="testing", region_name=region).client(service, endpoint_url=url)
