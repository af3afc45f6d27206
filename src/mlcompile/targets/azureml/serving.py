"""Online and batch serving: managed online endpoint + deployments (traffic split per rollout
strategy), the Azure Monitor autoscale setting of each deployment, batch endpoint + pipeline
component deployment."""

from __future__ import annotations

import json
from typing import Any

from mlcompile.plan.nodes import OnlineEndpoint, Plan
from mlcompile.plan.step_config import serving_env
from mlcompile.runtime.azureml_client import ENV_IDENTITY
from mlcompile.runtime.collect_azureml import COLLECTIONS, ENV_COLLECT
from mlcompile.runtime.online import ENV as ONLINE_FEATURES_ENV
from mlcompile.targets.azureml._sdk import entity_yaml, identity, tags
from mlcompile.targets.azureml.feature_store import online_features_config
from mlcompile.targets.base import OutputFile, json_bytes

# The runtime image serves a registered model over HTTP (the serving contract, see
# docs/targets/azureml.md): these are the routes Azure ML probes and forwards to.
SERVING_PORT = 8080
INFERENCE_CONFIG = {
    "liveness_route": {"path": "/health", "port": SERVING_PORT},
    "readiness_route": {"path": "/health", "port": SERVING_PORT},
    "scoring_route": {"path": "/score", "port": SERVING_PORT},
}
# Azure Monitor metrics of a managed online deployment / endpoint the autoscale rule reads
AUTOSCALE_METRICS = {
    "cpu": ("CpuUtilizationPercentage", "deployment", 1.0),
    "gpu": ("GpuUtilizationPercentage", "deployment", 1.0),
    # spec: requests per second per replica; Azure: RequestsPerMinute of the endpoint, divided per instance
    "requests_per_replica": ("RequestsPerMinute", "endpoint", 60.0),
}
AUTOSCALE_API_VERSION = "2022-10-01"
ENDPOINT_METRIC_NAMESPACE = "Microsoft.MachineLearningServices/workspaces/onlineEndpoints"
BATCH_DEPLOYMENT = "default"


def slots(online: OnlineEndpoint) -> list[str]:
    """Deployment slots of the endpoint. The rollout (deploy-online) puts an approved version
    in the slot that does not serve: with a canary it gets canary_percent of the traffic and
    the serving slot keeps the rest; blue/green switches all traffic to it once it is up (the
    other slot stays as the way back); `replace` updates the one slot in place."""
    return ["blue", "green"] if online.strategy in ("canary", "blue_green") else ["blue"]


def deployment_path(online: OnlineEndpoint, slot: str) -> str:
    return f"endpoints/{online.name}-{slot}.yml"


def collected_data_asset(online: OnlineEndpoint, slot: str, collection: str) -> str:
    """The data asset Azure ML registers for what a deployment's data collector collects."""
    return f"{online.name}-{slot}-{collection}"


def batch_endpoint_name(plan: Plan) -> str:
    return f"{plan.system}-batch"


def _deployment(plan: Plan, online: OnlineEndpoint, slot: str) -> Any:
    """One slot's managed online deployment, without a model: which registered version a slot
    serves is the rollout's to set (deploy-online, when a version is approved), never the
    build's; `mlcompile deploy` keeps the version a deployment serves."""
    from azure.ai.ml.entities import DataCollector, DefaultScaleSettings, DeploymentCollection, Environment, ManagedOnlineDeployment, OnlineRequestSettings

    variables = {"MLCOMPILE_MODEL": online.model, "MLCOMPILE_SYSTEM": plan.system}
    # the model's features, read from the feature store's online store by entity key
    online_features = online_features_config(plan)
    if online_features is not None:
        variables[ONLINE_FEATURES_ENV] = json.dumps(online_features, sort_keys=True, separators=(",", ":"))
    variables.update(serving_env(plan))  # a container-trained model's description
    serving_identity = identity(plan, "serving")
    if serving_identity is not None:  # the runtime's credential picks this identity (runtime.azureml_client)
        variables[ENV_IDENTITY] = serving_identity["client_id"]
    if plan.monitoring is not None:  # the server logs what the model monitor reads (runtime.collect_azureml)
        variables[ENV_COLLECT] = "true"
    resources = online.resources
    timeout_ms = resources.timeout_seconds * 1000 if resources.timeout_seconds else None
    return ManagedOnlineDeployment(
        name=slot,
        endpoint_name=online.name,
        description=f"slot {slot} of {online.name} ({online.strategy} rollout): serves the version of {online.model} deploy-online puts here",
        environment=Environment(image=plan.runtime_image, inference_config=INFERENCE_CONFIG),
        environment_variables=variables,
        instance_type=resources.machine.name if resources.machine else None,
        instance_count=online.min_replicas,
        scale_settings=DefaultScaleSettings(),
        request_settings=OnlineRequestSettings(request_timeout_ms=timeout_ms) if timeout_ms else None,
        # the model monitor reads what the deployment collects: the collections the server's
        # collectors log to, each landing in the data asset <endpoint>-<slot>-<collection>
        data_collector=DataCollector(collections={name: DeploymentCollection(enabled="true") for name in COLLECTIONS}) if plan.monitoring is not None else None,
        tags={**tags(plan), "mlcompile-slot": slot},
    )


def deployment_files(plan: Plan) -> dict[str, bytes]:
    """Slot → the bytes of its deployment file."""
    from mlcompile.targets.azureml.layout import header

    online = plan.online
    assert online is not None
    return {slot: entity_yaml(_deployment(plan, online, slot), "azureml.online_deployment", header(plan)) for slot in slots(online)}


def rollout_section(plan: Plan) -> dict[str, Any]:
    """What deploy-online needs to roll the endpoint to an approved version (the `serving`
    section of its config, see mlcompile.runtime.rollout_azureml): each slot's deployment as
    its file says, with the file's sha256 (so `mlcompile deploy` finds it unchanged)."""
    import hashlib

    import yaml

    online = plan.online
    assert online is not None
    deployments = {}
    for slot, content in deployment_files(plan).items():
        body = yaml.safe_load(content)
        body.pop("$schema", None)
        deployments[slot] = {"file_sha256": hashlib.sha256(content).hexdigest(), "body": body}
    return {
        "kind": "azureml",
        "endpoint": online.name,
        "strategy": online.strategy,
        "canary_percent": online.canary_percent,
        "slots": slots(online),
        "deployments": deployments,
    }


def render_online(plan: Plan) -> list[OutputFile]:
    from azure.ai.ml.entities import IdentityConfiguration, ManagedIdentityConfiguration, ManagedOnlineEndpoint

    from mlcompile.targets.azureml.layout import header

    online = plan.online
    if online is None:
        return []
    # no traffic here: it names deployments, which exist once a version is rolled out, and
    # the rollout owns the split (`mlcompile deploy` leaves it as it is)
    serving_identity = identity(plan, "serving")
    endpoint = ManagedOnlineEndpoint(
        name=online.name,
        description=f"{plan.description or plan.system} (model {online.model}, rollout {online.strategy})",
        auth_mode="key",
        tags=tags(plan),
        # the serving duty's own identity: it reads the model and features, submits nothing
        identity=IdentityConfiguration(
            type="user_assigned", user_assigned_identities=[ManagedIdentityConfiguration(resource_id=serving_identity["resource_id"])]
        )
        if serving_identity is not None
        else None,
    )
    files = [OutputFile(f"endpoints/{online.name}.yml", "azureml.online_endpoint", entity_yaml(endpoint, "azureml.online_endpoint", header(plan)))]
    for slot, content in deployment_files(plan).items():
        files.append(OutputFile(deployment_path(online, slot), "azureml.online_deployment", content))
        if online.autoscaling_metric is not None:
            files.append(
                OutputFile(f"endpoints/{online.name}-{slot}-autoscale.json", "azure.monitor_autoscale", json_bytes(autoscale_setting(plan, online, slot)))
            )
    return files


def autoscale_setting(plan: Plan, online: OnlineEndpoint, slot: str) -> dict[str, Any]:
    """The `Microsoft.Insights/autoscaleSettings` resource of one deployment (managed online
    deployments scale through Azure Monitor autoscale, not through the deployment itself).
    Azure Monitor has no target tracking: scale out by one above the target, in by one below
    half of it (hysteresis), averaged over 5 minutes."""
    settings = plan.platform_settings
    workspace = (
        f"/subscriptions/{settings['subscription_id']}/resourceGroups/{settings['resource_group']}"
        f"/providers/Microsoft.MachineLearningServices/workspaces/{settings['workspace']}"
    )
    endpoint_id = f"{workspace}/onlineEndpoints/{online.name}"
    deployment_id = f"{endpoint_id}/deployments/{slot}"
    assert online.autoscaling_metric is not None and online.autoscaling_target is not None
    metric, scope, factor = AUTOSCALE_METRICS[online.autoscaling_metric]
    threshold = online.autoscaling_target * factor
    per_instance = online.autoscaling_metric == "requests_per_replica"

    def rule(direction: str, operator: str, value: float) -> dict[str, Any]:
        trigger: dict[str, Any] = {
            "metricName": metric,
            "metricResourceUri": endpoint_id if scope == "endpoint" else deployment_id,
            "timeGrain": "PT1M",
            "statistic": "Average",
            "timeWindow": "PT5M",
            "timeAggregation": "Average",
            "operator": operator,
            "threshold": value,
            "dividePerInstance": per_instance,
        }
        if scope == "endpoint":
            # an endpoint metric counts every slot's requests: only this deployment's scale it
            # (a 10% canary must not scale on the 90% its neighbour serves)
            trigger["metricNamespace"] = ENDPOINT_METRIC_NAMESPACE
            trigger["dimensions"] = [{"DimensionName": "deployment", "Operator": "Equals", "Values": [slot]}]
        return {"metricTrigger": trigger, "scaleAction": {"direction": direction, "type": "ChangeCount", "value": "1", "cooldown": "PT5M"}}

    return {
        "type": "Microsoft.Insights/autoscaleSettings",
        "apiVersion": AUTOSCALE_API_VERSION,
        "name": f"{online.name}-{slot}-autoscale",
        "tags": tags(plan),
        "properties": {
            "enabled": True,
            "targetResourceUri": deployment_id,
            "profiles": [
                {
                    "name": "mlcompile",
                    "capacity": {"minimum": str(online.min_replicas), "maximum": str(online.max_replicas), "default": str(online.min_replicas)},
                    "rules": [rule("Increase", "GreaterThan", threshold), rule("Decrease", "LessThan", threshold / 2)],
                }
            ],
        },
    }
