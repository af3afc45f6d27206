"""How deploy-online makes the endpoint serve the approved version, per platform.

- Vertex AI: `endpoints.deployModel` with the build's DeployModelRequest (`deploy_model` of
  the step's config, written to vertex/deploy-model.json): the version is filled in, and the
  traffic split — which must add up to 100 — is completed at deploy time: the new deployed
  model ("0") takes the rollout's share and the deployed model serving now keeps the rest.
- KServe (`serving` of the config): the InferenceService is updated to the version
  (MLCOMPILE_MODEL_VERSION of its predictor) with the rollout's canaryTrafficPercent, so
  KServe creates a new revision and splits traffic between it and the previous one.
- SageMaker (`params.sagemaker.serving`: the build's serving requests): model, endpoint
  config and endpoint of the approved model package (endpoint_sagemaker.py).
- Azure ML (`serving.kind: azureml`): the managed online endpoint's free slot gets a
  deployment of the version and the traffic moves per rollout (rollout_azureml.py).
- Elsewhere (a local run) the `production` alias is the endpoint."""

from __future__ import annotations

import json
import os
from typing import TYPE_CHECKING, Any

from mlcompile.runtime.io import DataError

if TYPE_CHECKING:
    from mlcompile.runtime.versions import Version

ENV_MODEL_VERSION = "MLCOMPILE_MODEL_VERSION"  # the registry version a KServe predictor serves
SERVING_KEY = "{serving}"  # deploy-model.json: the deployed model serving when the version is deployed
KSERVE = ("serving.kserve.io", "v1beta1", "inferenceservices")


def roll_out(config: dict[str, Any], version: Version) -> dict[str, Any]:
    if config.get("deploy_model"):
        return _vertex(config, version)
    kind = (config.get("serving") or {}).get("kind")
    if kind == "kserve":
        return _kserve(config["serving"], version)
    if ((config.get("params") or {}).get("sagemaker") or {}).get("serving"):
        from mlcompile.runtime.endpoint_sagemaker import roll_out as sagemaker

        return sagemaker(config, version)
    if kind == "azureml":
        from mlcompile.runtime.rollout_azureml import roll_out as azureml

        return azureml(config, version)
    return {"traffic": {version.version: 100}}


def _fill(value: Any, version: str) -> Any:
    return json.loads(json.dumps(value).replace("{version}", version))


def vertex_traffic(share: int, deployed: dict[str, int]) -> dict[str, int]:
    """DeployModel's traffic split: "0" (the model being deployed) gets `share`; the deployed
    model with the most traffic now keeps the rest (the others stop taking any). With nothing
    deployed yet, the new model takes everything: there is no other to split with."""
    serving = max(sorted(deployed), key=lambda k: deployed[k], default=None)
    if serving is None or deployed[serving] == 0 or share >= 100:
        return {"0": 100}
    return {"0": share, serving: 100 - share}


def _vertex(config: dict[str, Any], version: Version) -> dict[str, Any]:
    from google.cloud.aiplatform_v1 import types as gca
    from google.cloud.aiplatform_v1.services.endpoint_service import EndpointServiceClient
    from google.protobuf import json_format

    from mlcompile.runtime.registry_vertex import client_options

    template = _fill(config["deploy_model"], version.version)
    share = int(template.get("trafficSplit", {}).get("0", 100))
    client = EndpointServiceClient(**client_options(config["platform"]))
    endpoint = client.get_endpoint(name=template["endpoint"])
    wanted = template["deployedModel"]["model"].rsplit("@", 1)[0]
    for deployed in endpoint.deployed_models:
        if deployed.model.split("@")[0] == wanted and deployed.model_version_id == version.version and endpoint.traffic_split.get(deployed.id):
            return {"traffic": dict(endpoint.traffic_split), "deployed_model_id": deployed.id, "note": "already deployed"}
    split = vertex_traffic(share, dict(endpoint.traffic_split))
    request = gca.DeployModelRequest.wrap(json_format.ParseDict({**template, "trafficSplit": split}, gca.DeployModelRequest.pb()()))
    result = client.deploy_model(request=request).result(timeout=3600)
    new_id = result.deployed_model.id
    traffic = {(new_id if k == "0" else k): v for k, v in split.items()}
    # a deployed model keeps its replicas (and its bill) with no traffic: an older canary the
    # new split leaves out is undeployed
    for deployed in endpoint.deployed_models:
        if deployed.id not in traffic:
            client.undeploy_model(endpoint=template["endpoint"], deployed_model_id=deployed.id).result(timeout=3600)
    return {"traffic": traffic, "deployed_model_id": new_id, "note": f"deployed to {template['endpoint']} (traffic {traffic})"}


def _kserve(serving: dict[str, Any], version: Version) -> dict[str, Any]:
    """Read the InferenceService, pin its predictor to the version and set the rollout's
    canary share, and write it back (a replace: its resourceVersion guards against a
    concurrent change, and a list of containers cannot be merge-patched)."""
    from kubernetes import client as k8s
    from kubernetes import config as kube_config

    try:
        kube_config.load_incluster_config()
    except kube_config.ConfigException:
        kube_config.load_kube_config(config_file=os.environ.get("KUBECONFIG"))
    api = k8s.CustomObjectsApi()
    group, api_version, plural = KSERVE
    namespace, name = serving["namespace"], serving["name"]
    try:
        isvc = api.get_namespaced_custom_object(group, api_version, namespace, plural, name)
    except k8s.ApiException as exc:
        raise DataError(f"InferenceService {namespace}/{name}: {exc.status} {exc.reason}: apply serving/inference-service.yaml first") from exc
    predictor = isvc["spec"]["predictor"]
    container = predictor["containers"][0]
    env = [e for e in container.get("env") or [] if e.get("name") != ENV_MODEL_VERSION]
    previous = next((e.get("value") for e in container.get("env") or [] if e.get("name") == ENV_MODEL_VERSION), None)
    if previous == version.version:
        return {"traffic": {version.version: 100}, "note": f"InferenceService {name} already serves version {version.version}"}
    container["env"] = [*env, {"name": ENV_MODEL_VERSION, "value": version.version}]
    canary = serving.get("canary_percent")
    # the first pinned version takes all: the revision before it (as `mlcompile deploy` applied
    # it) pins no version, so there is no serving version to compare a canary with; and a canary
    # share on it would leave that unpinned revision the rolled-out one for every later version
    share = 100 if canary is None or previous is None else int(canary)
    if share == 100:
        predictor.pop("canaryTrafficPercent", None)
    else:
        predictor["canaryTrafficPercent"] = share
    api.replace_namespaced_custom_object(group, api_version, namespace, plural, name, isvc)
    traffic = {version.version: share, **({previous or "previous revision": 100 - share} if share < 100 else {})}
    return {"traffic": traffic, "note": f"InferenceService {namespace}/{name} now pins version {version.version} (traffic {traffic})"}
