"""Calling azure-ai-ml quietly and turning its entities into deterministic YAML.

Imported only from `render`/`deploy` (and tests): importing this module does not import
the SDK either; `quiet()` does, on first use."""

from __future__ import annotations

import contextlib
import logging
import os
import sys
import warnings
from collections.abc import Iterator, Mapping
from typing import Any

from mlcompile import yaml_emit

# The `$schema` of each file kind: lets editors (the Azure ML VS Code extension) validate
# the files, and `az ml … create -f` ignores it.
SCHEMAS = {
    "azureml.pipeline_job": "https://azuremlschemas.azureedge.net/latest/pipelineJob.schema.json",
    "azureml.pipeline_component": "https://azuremlschemas.azureedge.net/latest/pipelineComponent.schema.json",
    "azureml.online_endpoint": "https://azuremlschemas.azureedge.net/latest/managedOnlineEndpoint.schema.json",
    "azureml.online_deployment": "https://azuremlschemas.azureedge.net/latest/managedOnlineDeployment.schema.json",
    "azureml.batch_endpoint": "https://azuremlschemas.azureedge.net/latest/batchEndpoint.schema.json",
    "azureml.batch_deployment": "https://azuremlschemas.azureedge.net/latest/pipelineComponentBatchDeployment.schema.json",
    "azureml.data": "https://azuremlschemas.azureedge.net/latest/data.schema.json",
    "azureml.schedule": "https://azuremlschemas.azureedge.net/latest/schedule.schema.json",
    "azureml.monitor_schedule": "https://azuremlschemas.azureedge.net/latest/monitorSchedule.schema.json",
    # the managed feature store's files name these schema ids (Azure ML docs and samples)
    "azureml.feature_store": "http://azureml/sdk-2-0/FeatureStore.json",
    "azureml.feature_store_entity": "http://azureml/sdk-2-0/FeatureStoreEntity.json",
    "azureml.feature_set": "http://azureml/sdk-2-0/FeatureSet.json",
    "azureml.featureset_spec": "http://azureml/sdk-2-0/FeatureSetSpec.json",
}


@contextlib.contextmanager
def quiet() -> Iterator[None]:
    """Silence the SDK's "experimental class" log lines and Python warnings, and keep it
    from reading a user's Azure ML CLI configuration or private-feature switches."""
    previous = logging.root.manager.disable
    logging.disable(logging.WARNING)
    saved = os.environ.pop("AZURE_ML_CLI_PRIVATE_FEATURES_ENABLED", None)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        logging.disable(previous)
        if saved is not None:
            os.environ["AZURE_ML_CLI_PRIVATE_FEATURES_ENABLED"] = saved


@contextlib.contextmanager
def experimental_checks_skipped() -> Iterator[None]:
    """Before logging its "experimental class" line, the SDK lists the whole call stack with
    its source lines (`inspect.stack()`) to see whether it runs under `_from_rest_object`: ~15%
    of an Azure ML build's CPU. Inside this context the same question is answered from the
    frames' function names alone, so the decision, the SDK's once-per-process warning cache and
    what is logged are unchanged; the SDK's own check is put back on exit. Enter it after
    `offline_cloud()` in a build: importing the SDK reads the cloud that names."""
    from azure.ai.ml._utils import _experimental

    decide = getattr(_experimental, "_should_skip_warning", None)
    if decide is None:
        yield
        return
    _experimental._should_skip_warning = _under_from_rest_object
    try:
        yield
    finally:
        _experimental._should_skip_warning = decide


def _under_from_rest_object() -> bool:
    frame = sys._getframe(1)
    while frame is not None:
        if frame.f_code.co_name == "_from_rest_object":
            return True
        frame = frame.f_back  # type: ignore[assignment]
    return False


# azure-ai-ml resolves the "current cloud" named by these variables while it builds entities,
# and downloads the cloud list from Azure Resource Manager when the name is not a built-in
# one: a build must not touch the network, nor depend on the machine's cloud settings.
CLOUD_VARIABLES = ("AZUREML_CURRENT_CLOUD", "ARM_CLOUD_METADATA_URL")


@contextlib.contextmanager
def offline_cloud() -> Iterator[None]:
    """Render with the SDK's default cloud: the variables that name another one are set aside."""
    saved = {name: os.environ.pop(name) for name in CLOUD_VARIABLES if name in os.environ}
    try:
        yield
    finally:
        os.environ.update(saved)


def plain(value: Any) -> Any:
    """OrderedDicts, tuples and enums of an SDK dump → plain JSON-like data; empty maps and
    None dropped (the SDK writes `properties: {}`, `tags: {}` and nulls for unset fields)."""
    if isinstance(value, Mapping):
        out = {}
        for key, item in value.items():
            item = plain(item)
            if item is None or item == {}:
                continue
            out[str(key)] = item
        return out
    if isinstance(value, (list, tuple)):
        return [plain(item) for item in value]
    if hasattr(value, "value") and type(value).__module__.startswith("azure."):  # SDK enums
        return value.value
    return value


def tags(plan: Any) -> dict[str, str]:
    """Tags of every Azure resource of a build: the spec's labels and lineage (system, spec
    sha256, git commit; `resource_labels`), plus the spec's owner."""
    from mlcompile.targets.base import resource_labels

    found = resource_labels(plan)
    if plan.owner:
        found["mlcompile-owner"] = plan.owner
    return dict(sorted(found.items()))


def identity(plan: Any, duty: str) -> dict[str, str] | None:
    """The profile's managed identity of a duty (`azureml.identities.<duty>`: resource_id,
    client_id), or None: that duty runs as the workspace's default."""
    found = (plan.platform_settings.get("identities") or {}).get(duty)
    return dict(found) if found else None


def yaml_bytes(data: Mapping[str, Any], kind: str, header: str) -> bytes:
    """Deterministic YAML: `$schema` first, then keys sorted, no line wrapping."""
    body = dict(plain(data))
    body.pop("$schema", None)
    text = yaml_emit.dump(body)
    schema = SCHEMAS.get(kind)
    prefix = f"$schema: {schema}\n" if schema else ""
    return (f"# {header}\n" + prefix + text).encode()


def entity_yaml(entity: Any, kind: str, header: str) -> bytes:
    """An SDK entity as the YAML `az ml` and the SDK's `load_*` functions read."""
    with quiet():
        data = entity._to_dict()  # what the entity's own dump() writes
    return yaml_bytes(data, kind, header)
