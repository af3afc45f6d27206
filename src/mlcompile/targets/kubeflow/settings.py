"""The settings of a `platform: kubeflow` profile (its `kubeflow:` block)."""

from __future__ import annotations

import re
from typing import Annotated, Literal

from pydantic import Field, model_validator

from mlcompile.spec.model_base import SpecModel


class KubeflowRegistry(SpecModel):
    kind: Literal["mlflow"] = Field(default="mlflow", description="the model registry: mlflow")
    uri: str = Field(description="tracking URI of the MLflow server", pattern=r"^https?://.+$", examples=["http://mlflow.ml.svc:5000"])


FeastOption = str | int | float | bool
# option names that carry a credential: their values must be secret:// references
_CREDENTIAL_OPTION = ("password", "secret", "token", "credential", "private_key", "key_id")


class FeastStore(SpecModel):
    options: dict[Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]*$")], FeastOption] = Field(
        default_factory=dict,
        description="the store's own settings, as in Feast's feature_store.yaml (credentials only as secret:// references)",
        examples=[{"connection_string": "redis.feast.svc:6379", "password": "secret://feast-redis-password"}],
    )

    @model_validator(mode="after")
    def _no_literal_credentials(self) -> FeastStore:
        for key, value in self.options.items():
            if any(word in key for word in _CREDENTIAL_OPTION) and not (isinstance(value, str) and value.startswith("secret://")):
                raise ValueError(f"options.{key} carries a credential: give a secret:// reference, not a literal")
            # a connection string's password (Redis: "host:port,password=…") likewise
            if isinstance(value, str) and re.search(r"password=(?!secret://)", value):
                raise ValueError(f"options.{key} carries a password: write it password=secret://NAME, not a literal")
        return self


class FeastOfflineStore(FeastStore):
    kind: Literal["file", "bigquery", "redshift", "snowflake", "spark"] = Field(
        default="file", description="Feast offline store: file (parquet on gs/s3/abfss), bigquery, redshift, snowflake, spark"
    )


class FeastOnlineStore(FeastStore):
    kind: Literal["redis", "dynamodb", "bigtable", "datastore", "postgres", "snowflake"] = Field(
        default="redis", description="Feast online store that serving reads features from"
    )


class KubeflowFeatureStore(SpecModel):
    """The cluster's Feast feature store: where the generated feature repository keeps its
    registry, reads its sources (offline) and materialises online views (online)."""

    registry: str | None = Field(
        default=None, pattern=r"^(gs|s3)://.+$", description="Feast registry file; default <pipeline_root>/feast/<project>/registry.db",
        examples=["gs://acme-ml-kfp/feast/registry.db"],
    )  # fmt: skip
    offline: FeastOfflineStore = Field(description="the offline store training reads features from", default_factory=FeastOfflineStore)
    online: FeastOnlineStore = Field(
        description="the online store serving reads features from", default_factory=lambda: FeastOnlineStore(options={"connection_string": "redis:6379"})
    )


class KubeflowAlertmanager(SpecModel):
    """The cluster's Alertmanager (prometheus-operator), which mails the spec's email alerts."""

    url: str = Field(
        description="URL of the Alertmanager API the alert step posts to",
        pattern=r"^https?://.+$",
        examples=["http://alertmanager-operated.monitoring.svc:9093"],
    )


class KubeflowSettings(SpecModel):
    host: str = Field(description="URL of the Kubeflow Pipelines API", pattern=r"^https?://.+$", examples=["https://kfp.example.internal"])
    namespace: str = Field(description="Kubernetes namespace runs are created in", pattern=r"^[a-z0-9]([a-z0-9-]*[a-z0-9])?$", max_length=63)
    pipeline_root: str = Field(
        description="where pipeline artifacts are written", pattern=r"^(gs|s3|minio|abfss)://.+$", examples=["gs://bucket/pipelines", "s3://bucket/pipelines"]
    )
    registry: KubeflowRegistry | None = Field(default=None, description="the MLflow model registry; default: none (models stay as pipeline artifacts)")
    cluster: Literal["gke", "eks", "aks", "generic"] = Field(default="generic", description="cluster flavour: decides GPU node selectors and tolerations")
    gpu_products: dict[str, Annotated[str, Field(pattern=r"^[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$")]] = Field(
        default_factory=dict,
        description="generic clusters: the nvidia.com/gpu.product node label (GPU Feature Discovery) of an accelerator where this "
        "cluster's differs from the catalog's (which names the SXM parts), e.g. PCIe A100s",
        examples=[{"nvidia-a100-40gb": "NVIDIA-A100-PCIE-40GB"}],
    )
    service_account: str | None = Field(default=None, description="Kubernetes service account the pipeline pods run as")
    feature_store: KubeflowFeatureStore | None = Field(
        default=None, description="Feast stores of the generated feature repository (default: file offline store, Redis at redis:6379)"
    )
    alertmanager: KubeflowAlertmanager | None = Field(
        default=None, description="the cluster's Alertmanager: email alerts are posted to it and routed to the recipients by a generated AlertmanagerConfig"
    )

    @model_validator(mode="after")
    def _gpu_products_name_gpus_of_a_generic_cluster(self) -> KubeflowSettings:
        if not self.gpu_products:
            return self
        if self.cluster != "generic":
            raise ValueError(
                f"gpu_products applies to generic clusters (GPU Feature Discovery labels); a {self.cluster} cluster's GPU labels come from the catalog"
            )
        from mlcompile.catalog import offered_accelerators

        gpus = [name for name in offered_accelerators("kubeflow") if name.startswith("nvidia-")]
        unknown = sorted(set(self.gpu_products) - set(gpus))
        if unknown:
            raise ValueError(f"gpu_products names {', '.join(repr(u) for u in unknown)}, not an NVIDIA GPU of the catalog ({', '.join(gpus)})")
        return self

    @model_validator(mode="after")
    def _feast_registry_has_a_home(self) -> KubeflowSettings:
        # Feast's file registry lives on gs:// or s3://; by default beside the pipeline root
        if (self.feature_store is None or self.feature_store.registry is None) and not self.pipeline_root.startswith(("gs://", "s3://")):
            raise ValueError(
                f"the Feast registry defaults to the pipeline root, and Feast cannot write {self.pipeline_root.split('://')[0]}://: "
                "set feature_store.registry to a gs:// or s3:// path"
            )
        return self
