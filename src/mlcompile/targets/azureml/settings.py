"""The settings of a `platform: azureml` profile (its `azureml:` block)."""

from __future__ import annotations

from pydantic import Field, model_validator

from mlcompile.spec.model_base import SpecModel


class AzureMLFeatureStoreSettings(SpecModel):
    """The Azure ML managed feature store that `features:` compiles into (a workspace of kind
    FeatureStore). Every field is optional: without the block, the store is `<workspace>-fs` in
    the profile's resource group, with no materialisation stores (views are defined, not
    materialised; online views are then served from the request)."""

    name: str | None = Field(default=None, min_length=3, max_length=33, pattern=r"^[a-zA-Z0-9][a-zA-Z0-9_-]{2,32}$",
                             description="feature store name (default: <workspace>-fs)")  # fmt: skip
    resource_group: str | None = Field(default=None, min_length=1, max_length=90, description="default: the profile's resource_group")
    online_store: str | None = Field(
        default=None,
        pattern=r"^/subscriptions/[^/]+/resourceGroups/[^/]+/providers/Microsoft\.Cache/[Rr]edis/[^/]+$",
        description="ARM id of the Azure Cache for Redis that online views are materialised into",
        examples=["/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/ml-rg/providers/Microsoft.Cache/Redis/acme-fs-online"],
    )
    offline_store: str | None = Field(
        default=None,
        pattern=r"^/subscriptions/[^/]+/resourceGroups/[^/]+/providers/Microsoft\.Storage/storageAccounts/[^/]+/blobServices/default/containers/[^/]+$",
        description="ARM id of the ADLS Gen2 container that views are materialised into for training",
        examples=[
            "/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/ml-rg/providers/Microsoft.Storage/storageAccounts/acmefs/blobServices/default/containers/offline"
        ],
    )
    materialization_instance_type: str = Field(default="standard_e8s_v3", pattern=r"^[a-z0-9_]+$",
                                                description="serverless Spark instance type of materialisation jobs")  # fmt: skip


class AzureMLIdentity(SpecModel):
    """A user-assigned managed identity: its ARM id (endpoints, the feature store name it by
    id) and its client id (jobs name it by client id)."""

    resource_id: str = Field(pattern=r"^/subscriptions/[^/]+/resource[Gg]roups/[^/]+/providers/Microsoft\.ManagedIdentity/userAssignedIdentities/[^/]+$",
                             description="ARM id of the user-assigned managed identity",
                             examples=["/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/ml-rg/providers/Microsoft.ManagedIdentity/userAssignedIdentities/ml-serving"])  # fmt: skip
    client_id: str = Field(pattern=r"^[0-9a-fA-F-]{36}$", description="its client (application) id", examples=["00000000-0000-0000-0000-000000000000"])


class AzureMLIdentities(SpecModel):
    """Least-privilege managed identities, one per duty; a duty without one runs as the
    workspace's default (the compute's identity, the endpoint's system-assigned one).
    docs/targets/azureml.md lists the roles each needs."""

    pipelines: AzureMLIdentity | None = Field(
        default=None, description="identity of the pipeline steps (training, batch scoring, monitoring checks, deploy-online)"
    )
    schedules: AzureMLIdentity | None = Field(
        default=None, description="identity of the steps that start pipelines (trigger-retraining of the monitoring and new-data pipelines): submits jobs"
    )
    serving: AzureMLIdentity | None = Field(
        default=None, description="identity of the online endpoint: pulls the image, reads the model and its online features; cannot submit jobs"
    )
    feature_store: AzureMLIdentity | None = Field(
        default=None, description="materialisation identity of the feature store: reads sources, writes the offline and online stores"
    )

    @model_validator(mode="after")
    def _serving_submits_nothing(self) -> AzureMLIdentities:
        for duty in ("pipelines", "schedules"):
            other = getattr(self, duty)
            if self.serving is not None and other is not None and self.serving.resource_id == other.resource_id:
                raise ValueError(
                    f"identities.serving is also identities.{duty}: the endpoint's identity must not be able to submit jobs; give serving an identity of its own"
                )
        return self


class AzureMLSettings(SpecModel):
    subscription_id: str = Field(description="Azure subscription id", pattern=r"^[0-9a-fA-F-]{36}$", examples=["00000000-0000-0000-0000-000000000000"])
    resource_group: str = Field(description="resource group of the workspace", min_length=1, max_length=90)
    workspace: str = Field(description="Azure Machine Learning workspace name", min_length=3, max_length=33)
    compute: str = Field(description="compute cluster that runs mlcompile's standard steps", min_length=2, max_length=32)
    key_vault: str | None = Field(
        default=None,
        pattern=r"^([a-zA-Z][a-zA-Z0-9-]{1,22}[a-zA-Z0-9]|https://[a-z0-9.-]+/?)$",
        description="Key Vault that holds the secret:// references (name or URL); default: the workspace's own",
        examples=["acme-ml-kv"],
    )
    feature_store: AzureMLFeatureStoreSettings | None = Field(default=None, description="the managed feature store `features:` compiles into")
    identities: AzureMLIdentities | None = Field(
        default=None, description="least-privilege managed identities per duty (pipelines, schedules, serving, feature store)"
    )
