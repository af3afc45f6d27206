"""The `MLClient` of an Azure ML workspace, as `mlcompile deploy` and the steps that talk to
Azure ML (deploy-online's rollout, trigger-retraining) build it.

Configuration (environment):
* credentials: `DefaultAzureCredential` (az login, AZURE_* variables, or — inside an Azure
  ML job or endpoint — the managed identity the profile gives that duty, whose client id
  Azure ML sets as DEFAULT_IDENTITY_CLIENT_ID); `MLCOMPILE_AZUREML_ACCESS_TOKEN` uses that
  bearer token instead (CI, stand-ins, the emulator);
* `MLCOMPILE_AZUREML_ARM_ENDPOINT`: the Resource Manager URL (default Azure public cloud), for
  sovereign clouds and local stand-ins; `MLCOMPILE_AZUREML_CA_BUNDLE`: a CA file to trust."""

from __future__ import annotations

import hashlib
import os
import time
from collections.abc import Mapping
from typing import Any

ENV_TOKEN = "MLCOMPILE_AZUREML_ACCESS_TOKEN"
ENV_ARM = "MLCOMPILE_AZUREML_ARM_ENDPOINT"
ENV_CA = "MLCOMPILE_AZUREML_CA_BUNDLE"
ENV_IDENTITY = "DEFAULT_IDENTITY_CLIENT_ID"  # set by Azure ML on compute with a user-assigned identity
CUSTOM_CLOUD = "mlcompile-custom-arm"


class StaticToken:
    """A credential that hands out one bearer token (azure-core's TokenCredential shape)."""

    def __init__(self, token: str):
        self.token = token

    def get_token(self, *scopes: str, **kwargs: Any) -> Any:
        from azure.core.credentials import AccessToken

        return AccessToken(self.token, int(time.time()) + 3600)


def credential() -> Any:
    token = os.environ.get(ENV_TOKEN)
    if token:
        return StaticToken(token)
    from azure.identity import DefaultAzureCredential

    return DefaultAzureCredential(managed_identity_client_id=os.environ.get(ENV_IDENTITY) or None)


def client_kwargs() -> dict[str, Any]:
    """MLClient's cloud and TLS settings from the environment (none: Azure public cloud)."""
    kwargs: dict[str, Any] = {"enable_telemetry": False, "show_progress": False}
    arm = os.environ.get(ENV_ARM)
    if arm:
        arm = arm.rstrip("/") + "/"
        # EndpointURLS keys of azure.ai.ml._azure_environments; all must be present, or the
        # SDK falls back to downloading cloud metadata from management.azure.com; the SDK keeps
        # clouds in a process-wide table it never overwrites: one name per URL
        kwargs["cloud"] = f"{CUSTOM_CLOUD}-{hashlib.sha256(arm.encode()).hexdigest()[:12]}"
        kwargs["cloud_metadata"] = {
            "azure_portal": arm,
            "resource_manager": arm,
            "active_directory": arm,
            "aml_resource_id": arm,
            "storage_endpoint": "core.windows.net",
            "registry_discovery_endpoint": arm,
        }
    if os.environ.get(ENV_CA):
        kwargs["connection_verify"] = os.environ[ENV_CA]
    return kwargs


def ml_client(platform: Mapping[str, Any], *, workspace: str | None = None, resource_group: str | None = None, **extra: Any) -> Any:
    """The MLClient of the workspace `platform` names (subscription_id, resource_group,
    workspace), or of another workspace of the subscription (the feature store)."""
    from azure.ai.ml import MLClient

    return MLClient(
        credential(), platform["subscription_id"], resource_group or platform["resource_group"], workspace or platform["workspace"],
        **{**client_kwargs(), **extra},
    )  # fmt: skip
