"""deploy-online on SageMaker: make the endpoint serve an approved model package.

The build's serving bodies (`params.sagemaker.serving` of the step config: the requests of
CreateModel, CreateEndpointConfig, CreateEndpoint, PutMetricAlarm, RegisterScalableTarget and
PutScalingPolicy, see targets/sagemaker/bodies.py) carry two placeholders, the package's ARN
and version number, filled in here. Then, in order: the rollback alarm (the endpoint's
deployment watches it), the model and the endpoint config named after the version (left alone
when they exist), the endpoint — created, or updated with the build's `DeploymentConfig`
(canary / blue-green with automatic rollback) — and its autoscaling once it is in service.
The first deployment takes all traffic: there is no serving version to compare a canary with."""

from __future__ import annotations

import json
import os
from typing import Any

from mlcompile.runtime.io import DataError
from mlcompile.runtime.registry_sagemaker import ARN_TAG, sagemaker_client
from mlcompile.runtime.versions import Version

PACKAGE_ARN = "${ModelPackageArn}"
PACKAGE_VERSION = "${ModelPackageVersion}"
WAIT_ENV = "MLCOMPILE_SAGEMAKER_ENDPOINT_WAIT_SECONDS"  # how long to wait for InService (default 1 h)


def _filled(body: Any, version: Version) -> Any:
    text = json.dumps(body).replace(PACKAGE_ARN, version.tags[ARN_TAG]).replace(PACKAGE_VERSION, version.version)
    return json.loads(text)


def _missing(call: Any, **key: Any) -> bool:
    from botocore.exceptions import ClientError

    try:
        call(**key)
        return False
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") in ("ValidationException", "ResourceNotFound"):
            return True
        raise


def canary_share(deployment: dict[str, Any], instances: int) -> int:
    """The new version's percent of traffic while the canary runs: SageMaker shifts whole
    instances, so its share is its instances over the fleet's."""
    routing = deployment.get("BlueGreenUpdatePolicy", {}).get("TrafficRoutingConfiguration", {})
    if routing.get("Type") != "CANARY":
        return 100
    size = routing.get("CanarySize", {})
    if size.get("Type") == "INSTANCE_COUNT":
        return min(100, round(100 * int(size.get("Value", 1)) / max(instances, 1)))
    return int(size.get("Value", 100))


def roll_out(config: dict[str, Any], version: Version) -> dict[str, Any]:
    settings = config["params"]["sagemaker"]
    serving = {name: _filled(body, version) for name, body in settings["serving"].items()}
    platform = {"region": settings.get("region") or config["platform"]["region"]}
    sagemaker = sagemaker_client(platform)
    cloudwatch = sagemaker_client(platform, "cloudwatch")
    if "rollback-alarm" in serving:
        cloudwatch.put_metric_alarm(**serving["rollback-alarm"])
    model, endpoint_config, endpoint = serving["model"], serving["endpoint-config"], serving["endpoint"]
    if _missing(sagemaker.describe_model, ModelName=model["ModelName"]):
        sagemaker.create_model(**model)
    if _missing(sagemaker.describe_endpoint_config, EndpointConfigName=endpoint_config["EndpointConfigName"]):
        sagemaker.create_endpoint_config(**endpoint_config)
    name, wanted = endpoint["EndpointName"], endpoint["EndpointConfigName"]
    instances = sum(int(v.get("InitialInstanceCount", 1)) for v in endpoint_config["ProductionVariants"])
    if _missing(sagemaker.describe_endpoint, EndpointName=name):
        sagemaker.create_endpoint(EndpointName=name, EndpointConfigName=wanted, Tags=endpoint.get("Tags", []))
        traffic, note = {version.version: 100}, f"endpoint {name} created, serving version {version.version}"
    else:
        current = sagemaker.describe_endpoint(EndpointName=name)
        previous = str(current.get("EndpointConfigName"))
        if previous == wanted:
            return {"traffic": {version.version: 100}, "endpoint_config": wanted, "note": f"endpoint {name} already serves version {version.version}"}
        _wait(sagemaker, name)  # an endpoint being created or updated takes no update
        sagemaker.update_endpoint(EndpointName=name, EndpointConfigName=wanted, DeploymentConfig=endpoint["DeploymentConfig"])
        share = canary_share(endpoint["DeploymentConfig"], instances)
        traffic = {version.version: share, previous: 100 - share} if share < 100 else {version.version: 100}
        note = f"endpoint {name} updating from {previous} to {wanted} (traffic during the rollout {traffic})"
    _wait(sagemaker, name)
    autoscaling = sagemaker_client(platform, "application-autoscaling")
    if "scalable-target" in serving:
        autoscaling.register_scalable_target(**serving["scalable-target"])
    if "scaling-policy" in serving:
        autoscaling.put_scaling_policy(**serving["scaling-policy"])
    return {"traffic": traffic, "endpoint_config": wanted, "note": note}


def _wait(sagemaker: Any, name: str) -> None:
    from botocore.exceptions import WaiterError

    status = sagemaker.describe_endpoint(EndpointName=name).get("EndpointStatus")
    if status == "InService":
        return
    seconds = int(os.environ.get(WAIT_ENV, "3600"))
    try:
        sagemaker.get_waiter("endpoint_in_service").wait(EndpointName=name, WaiterConfig={"Delay": 30, "MaxAttempts": max(seconds // 30, 1)})
    except WaiterError as exc:
        raise DataError(f"endpoint {name} did not come into service ({exc})") from exc
