"""Strict parsers for the kubeflow/vertex builds: each output parsed by the platform SDK's own
types, failing on any unknown field (a typo such as `acceleratorr` or `nodeSelectr`)."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import yaml

SDK_MODELS = json.loads((Path(__file__).with_name("kfp_sdk_models.json")).read_text())


def parse_pipeline_spec(text: str) -> tuple[Any, Any | None]:
    """PipelineSpec (+ PlatformSpec) protos; every executor container also parsed into
    PipelineDeploymentConfig.PipelineContainerSpec (deploymentSpec is an untyped Struct)."""
    from google.protobuf import json_format
    from kfp.pipeline_spec import pipeline_spec_pb2

    documents = [d for d in yaml.safe_load_all(text) if d is not None]
    spec = json_format.ParseDict(documents[0], pipeline_spec_pb2.PipelineSpec())
    for executor in documents[0]["deploymentSpec"]["executors"].values():
        json_format.ParseDict(executor["container"], pipeline_spec_pb2.PipelineDeploymentConfig.PipelineContainerSpec())
    platform = None
    if len(documents) > 1:
        platform = json_format.ParseDict(documents[1], pipeline_spec_pb2.PlatformSpec())
        from kfp.kubernetes import kubernetes_executor_config_pb2

        for config in documents[1]["platforms"]["kubernetes"]["deploymentSpec"]["executors"].values():
            json_format.ParseDict(config, kubernetes_executor_config_pb2.KubernetesExecutorConfig())
    return spec, platform


def parse_vertex(kind: str, body: dict[str, Any]) -> Any:
    """A vertex.* body into its google.cloud.aiplatform_v1 type, a monitoring.* body (the email
    alerting of a vertex build) into its google.cloud.monitoring_v3 type (unknown fields rejected)."""
    from google.cloud.aiplatform_v1 import types as gca
    from google.protobuf import json_format

    if kind.startswith("monitoring."):
        from google.cloud import monitoring_v3

        alerting = {"monitoring.notification_channel": monitoring_v3.NotificationChannel, "monitoring.alert_policy": monitoring_v3.AlertPolicy}[kind]
        return alerting.wrap(json_format.ParseDict(body, alerting.pb()()))

    message = {
        "vertex.pipeline_job": gca.PipelineJob,
        "vertex.schedule": gca.Schedule,
        "vertex.custom_job": gca.CustomJob,
        "vertex.hyperparameter_tuning_job": gca.HyperparameterTuningJob,
        "vertex.upload_model_request": gca.UploadModelRequest,
        "vertex.create_endpoint_request": gca.CreateEndpointRequest,
        "vertex.deploy_model_request": gca.DeployModelRequest,
        "vertex.create_feature_online_store_request": gca.CreateFeatureOnlineStoreRequest,
        "vertex.create_feature_group_request": gca.CreateFeatureGroupRequest,
        "vertex.batch_create_features_request": gca.BatchCreateFeaturesRequest,
        "vertex.create_feature_view_request": gca.CreateFeatureViewRequest,
    }[kind]
    return message.wrap(json_format.ParseDict(body, message.pb()()))


# ---------------------------------------------------------------- openapi-generator models
_LIST = re.compile(r"^list\[(.+)\]$")
_DICT = re.compile(r"^dict\((\w+), (.+)\)$")
_PRIMITIVES = {"str": str, "int": int, "bool": bool, "float": (int, float), "object": object}


def _field_map(type_name: str) -> dict[str, str] | None:
    for models in SDK_MODELS.values():
        if type_name in models:
            return models[type_name]
    import kfp_server_api.models as kfp_api
    import kubeflow.training.models as training
    import kubernetes.client.models as k8s

    for module in (training, k8s, kfp_api):
        cls = getattr(module, type_name, None)
        if cls is not None:
            return {cls.attribute_map[a]: t for a, t in cls.openapi_types.items()}
    return None


def check_model(value: Any, type_name: str, where: str = "$") -> None:
    """Walk `value` against the SDK model `type_name`, rejecting unknown keys and wrong
    primitive types (the generated models' own from_dict silently drops unknown keys)."""
    if (m := _LIST.match(type_name)) is not None:
        assert isinstance(value, list), f"{where}: expected a list for {type_name}"
        for i, item in enumerate(value):
            check_model(item, m.group(1), f"{where}[{i}]")
        return
    if (m := _DICT.match(type_name)) is not None:
        assert isinstance(value, dict), f"{where}: expected a map for {type_name}"
        for key, item in value.items():
            check_model(item, m.group(2), f"{where}.{key}")
        return
    if type_name in _PRIMITIVES:
        assert isinstance(value, _PRIMITIVES[type_name]), f"{where}: expected {type_name}, got {value!r}"  # type: ignore[arg-type]
        return
    if type_name in ("ResourceQuantity", "datetime", "V1Time", "IntOrString", "RecurringRunMode", "V2beta1RecurringRunStatus"):
        assert isinstance(value, (str, int, float)), f"{where}: expected a quantity/scalar"
        return
    fields = _field_map(type_name)
    assert fields is not None, f"{where}: no SDK model named {type_name}"
    assert isinstance(value, dict), f"{where}: expected an object for {type_name}"
    unknown = sorted(set(value) - set(fields))
    assert not unknown, f"{where}: {type_name} has no field(s) {unknown}"
    for key, item in value.items():
        check_model(item, fields[key], f"{where}.{key}")


def deserialize_training(manifest: dict[str, Any], cls_name: str) -> Any:
    """A Training Operator manifest into kubeflow-training's model object (after the strict walk)."""
    import kubeflow.training.models as training
    from kubeflow.training import ApiClient

    check_model(manifest, cls_name)

    class _Response:
        data = json.dumps(manifest)

    return ApiClient().deserialize(_Response(), cls_name)
