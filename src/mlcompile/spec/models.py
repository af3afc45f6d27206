"""Typed models of the two kinds of file: the system spec (`MLSystem`) and the target
profile (`Target`). Field by field as SPEC-v1 says, unknown keys forbidden. Rules that
relate one field to another live in `checks.py`, so that all of them are reported at once."""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from mlcompile.spec.types import (
    ColumnName,
    Cron,
    DataUri,
    Duration,
    FeatureRef,
    ItemName,
    Memory,
    Name,
    SecretRef,
    TimeZone,
)

API_VERSION = "mlcompile/v1"
PLATFORM_NAMES = ("kubeflow", "vertex", "sagemaker", "azureml", "local")

Platform = Literal["kubeflow", "vertex", "sagemaker", "azureml", "local"]
DType = Literal["int32", "int64", "float32", "float64", "string", "bool", "timestamp"]
Labels = dict[Annotated[str, Field(pattern=r"^[a-z][a-z0-9_-]{0,62}$")], Annotated[str, Field(max_length=63)]]


class SpecModel(BaseModel):
    # allow_inf_nan=False: YAML's .nan/.inf are no thresholds, and plan.json must stay JSON
    model_config = ConfigDict(extra="forbid", frozen=True, str_strip_whitespace=False, allow_inf_nan=False)


# ---------------------------------------------------------------------------- metadata


class Metadata(SpecModel):
    name: Name
    description: str | None = None
    owner: str | None = None
    labels: Labels = Field(default_factory=dict, description="propagated as labels/tags on every cloud resource")


# ---------------------------------------------------------------------------- features


class Entity(SpecModel):
    name: ItemName
    join_keys: list[ColumnName] = Field(min_length=1)
    description: str | None = None


class Source(SpecModel):
    name: ItemName
    uri: DataUri
    format: Literal["table", "parquet", "csv"]
    timestamp_field: ColumnName
    description: str | None = None


class FeatureSpec(SpecModel):
    name: ColumnName
    dtype: DType
    description: str | None = None


class View(SpecModel):
    name: ItemName
    entities: list[ItemName] = Field(min_length=1)
    source: ItemName
    ttl: Duration
    online: bool = False
    features: list[FeatureSpec] = Field(min_length=1)
    description: str | None = None


class Features(SpecModel):
    entities: list[Entity] = Field(min_length=1)
    sources: list[Source] = Field(min_length=1)
    views: list[View] = Field(min_length=1)


# ---------------------------------------------------------------------------- training


class SourceColumn(SpecModel):
    source: ItemName
    column: ColumnName


class Split(SpecModel):
    test_fraction: float = Field(gt=0, lt=1)
    seed: int = 0


class Dataset(SpecModel):
    features: list[FeatureRef] = Field(min_length=1)
    label: SourceColumn
    split: Split = Field(default_factory=lambda: Split(test_fraction=0.2))


class ContainerTrainer(SpecModel):
    image: str = Field(min_length=1, pattern=r"^[^\s]+$")
    command: list[str] = Field(default_factory=list)
    args: list[str] = Field(default_factory=list)
    env: dict[Annotated[str, Field(pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")], str] = Field(
        default_factory=dict, description="environment variables; credentials only as secret:// references"
    )


def _finite(value: Any, where: str = "params") -> None:
    if isinstance(value, float) and (value != value or value in (float("inf"), float("-inf"))):
        raise ValueError(f"{where}: {value} is not a finite number")
    if isinstance(value, dict):
        for key, item in value.items():
            _finite(item, f"{where}.{key}")
    elif isinstance(value, list):
        for index, item in enumerate(value):
            _finite(item, f"{where}[{index}]")


class SklearnTrainer(SpecModel):
    estimator: str = Field(
        pattern=r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)+$", description="dotted path", examples=["sklearn.ensemble.RandomForestClassifier"]
    )
    params: dict[str, Any] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _finite_params(self) -> SklearnTrainer:
        _finite(self.params)
        return self


class Trainer(SpecModel):
    container: ContainerTrainer | None = None
    sklearn: SklearnTrainer | None = None

    @model_validator(mode="after")
    def _exactly_one(self) -> Trainer:
        if (self.container is None) == (self.sklearn is None):
            raise ValueError("set exactly one of 'container' or 'sklearn'")
        return self


class Accelerator(SpecModel):
    type: str = Field(min_length=1, description="portable name from the accelerator catalog")
    count: int = Field(default=1, ge=1, le=64, description="accelerators per replica")


class ServingResources(SpecModel):
    cpu: float = Field(default=1, gt=0, le=1024, description="cores")
    memory: Memory = "4Gi"
    accelerator: Accelerator | None = None
    spot: bool = Field(default=False, description="preemptible / spot / low-priority capacity")
    timeout: Duration | None = Field(default=None, description="training: run time limit; serving: request time limit")


class Resources(ServingResources):
    replicas: int = Field(default=1, ge=1, le=1024, description=">1 = distributed training workers")
    timeout: Duration = "24h"


class FloatParam(SpecModel):
    type: Literal["float"]
    min: float
    max: float
    scale: Literal["linear", "log"] = "linear"


class IntParam(SpecModel):
    type: Literal["int"]
    min: int
    max: int
    scale: Literal["linear", "log"] = "linear"


class CategoricalParam(SpecModel):
    type: Literal["categorical"]
    values: list[str | int | float | bool] = Field(min_length=1)


SearchParam = Annotated[FloatParam | IntParam | CategoricalParam, Field(discriminator="type")]


class Objective(SpecModel):
    metric: str
    goal: Literal["maximize", "minimize"]


class Tuning(SpecModel):
    objective: Objective
    max_trials: int = Field(ge=1, le=10_000)
    parallel_trials: int = Field(default=1, ge=1, le=1_000)
    algorithm: Literal["bayesian", "random", "grid"] = "bayesian"
    params: dict[Annotated[str, Field(pattern=r"^[A-Za-z_][A-Za-z0-9_.-]*$")], SearchParam] = Field(min_length=1)


class Gate(SpecModel):
    metric: str
    min: float | None = None
    max: float | None = None
    min_delta_vs_production: float | None = Field(default=None, description="champion/challenger")

    @model_validator(mode="after")
    def _exactly_one(self) -> Gate:
        if sum(v is not None for v in (self.min, self.max, self.min_delta_vs_production)) != 1:
            raise ValueError("set exactly one of 'min', 'max' or 'min_delta_vs_production'")
        return self


class Evaluation(SpecModel):
    metrics: list[Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]*$")]] = Field(min_length=1)
    gates: list[Gate] = Field(default_factory=list)


class Training(SpecModel):
    dataset: Dataset
    trainer: Trainer
    resources: Resources = Field(default_factory=Resources)
    tuning: Tuning | None = None
    evaluation: Evaluation


# ---------------------------------------------------------------------------- registry


class Registry(SpecModel):
    model: Name
    approval: Literal["manual", "auto"] = "manual"
    aliases: list[Annotated[str, Field(pattern=r"^[a-z][a-z0-9_-]{0,62}$")]] = Field(default_factory=list)
    tags: Labels = Field(default_factory=dict)


# ---------------------------------------------------------------------------- deployment


class ReplicaRange(SpecModel):
    min: int = Field(default=1, ge=0, le=1000)
    max: int = Field(default=1, ge=1, le=1000)


class Autoscaling(SpecModel):
    metric: Literal["cpu", "gpu", "requests_per_replica"]
    target: float = Field(gt=0)


class Rollout(SpecModel):
    strategy: Literal["replace", "canary", "blue_green"] = "replace"
    canary_percent: int | None = Field(default=None, ge=1, le=99)


class OnlineDeployment(SpecModel):
    endpoint: Name
    resources: ServingResources = Field(default_factory=ServingResources)
    replicas: ReplicaRange = Field(default_factory=ReplicaRange)
    autoscaling: Autoscaling | None = None
    rollout: Rollout = Field(default_factory=Rollout)


class SourceRef(SpecModel):
    source: ItemName


class UriRef(SpecModel):
    uri: DataUri


class BatchDeployment(SpecModel):
    schedule: Cron
    timezone: TimeZone = "UTC"
    input: SourceRef
    output: UriRef
    resources: ServingResources = Field(default_factory=ServingResources)


class Deployment(SpecModel):
    online: OnlineDeployment | None = None
    batch: BatchDeployment | None = None

    @model_validator(mode="after")
    def _at_least_one(self) -> Deployment:
        if self.online is None and self.batch is None:
            raise ValueError("set at least one of 'online' or 'batch'")
        return self


# ---------------------------------------------------------------------------- monitoring


class Drift(SpecModel):
    method: Literal["psi", "ks", "jensen_shannon", "wasserstein"] = "psi"
    threshold: float = Field(gt=0)
    features: Literal["all"] | list[FeatureRef] = "all"


class Performance(SpecModel):
    metric: str
    min: float
    ground_truth: SourceColumn


class EmailAlert(SpecModel):
    channel: Literal["email"]
    to: list[Annotated[str, Field(pattern=r"^[^@\s]+@[^@\s]+\.[^@\s]+$")]] = Field(min_length=1)


class WebhookAlert(SpecModel):
    channel: Literal["webhook"]
    url: SecretRef = Field(description="webhook URLs carry credentials: a secret:// reference")


Alert = Annotated[EmailAlert | WebhookAlert, Field(discriminator="channel")]


class Monitoring(SpecModel):
    schedule: Cron
    timezone: TimeZone = "UTC"
    baseline: Literal["training"] = "training"
    drift: Drift | None = None
    performance: Performance | None = None
    alerts: list[Alert] = Field(default_factory=list)
    on_breach: Literal["retrain", "alert"] = "alert"


class Retraining(SpecModel):
    schedule: Cron | None = None
    timezone: TimeZone = "UTC"
    on_drift: bool = False
    on_new_data: SourceRef | None = None


# ---------------------------------------------------------------------------- system


class MLSystem(SpecModel):
    """The system spec (`mlcompile.yaml`): what the ML system is."""

    model_config = ConfigDict(title="mlcompile system spec (MLSystem, v1)")

    apiVersion: Literal["mlcompile/v1"]
    kind: Literal["MLSystem"]
    metadata: Metadata
    features: Features
    training: Training
    registry: Registry
    deployment: Deployment | None = None
    monitoring: Monitoring | None = None
    retraining: Retraining | None = None
    overrides: dict[str, dict[str, Any]] = Field(
        default_factory=dict, description="deep-merged patches keyed by target profile name"
    )


# ---------------------------------------------------------------------------- target profile


class Images(SpecModel):
    runtime: str = Field(min_length=1, pattern=r"^[^\s]+$", description="image that runs mlcompile's standard steps")


class KubeflowRegistry(SpecModel):
    kind: Literal["mlflow"] = "mlflow"
    uri: str = Field(pattern=r"^https?://.+$", examples=["http://mlflow.ml.svc:5000"])


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
    offline: FeastOfflineStore = Field(default_factory=FeastOfflineStore)
    online: FeastOnlineStore = Field(default_factory=lambda: FeastOnlineStore(options={"connection_string": "redis:6379"}))


class KubeflowSettings(SpecModel):
    host: str = Field(pattern=r"^https?://.+$", examples=["https://kfp.example.internal"])
    namespace: str = Field(pattern=r"^[a-z0-9]([a-z0-9-]*[a-z0-9])?$", max_length=63)
    pipeline_root: str = Field(pattern=r"^(gs|s3|minio|abfss)://.+$", examples=["gs://bucket/pipelines", "s3://bucket/pipelines"])
    registry: KubeflowRegistry | None = None
    cluster: Literal["gke", "eks", "aks", "generic"] = Field(
        default="generic", description="cluster flavour: decides GPU node selectors and tolerations"
    )
    service_account: str | None = None
    feature_store: KubeflowFeatureStore | None = Field(
        default=None, description="Feast stores of the generated feature repository (default: file offline store, Redis at redis:6379)"
    )

    @model_validator(mode="after")
    def _feast_registry_has_a_home(self) -> KubeflowSettings:
        # Feast's file registry lives on gs:// or s3://; by default beside the pipeline root
        if (self.feature_store is None or self.feature_store.registry is None) and not self.pipeline_root.startswith(("gs://", "s3://")):
            raise ValueError(
                f"the Feast registry defaults to the pipeline root, and Feast cannot write {self.pipeline_root.split('://')[0]}://: "
                "set feature_store.registry to a gs:// or s3:// path"
            )
        return self


class VertexFeatureStoreSettings(SpecModel):
    """The Vertex AI Feature Store online store that serves the spec's online views."""

    online_store_id: str | None = Field(
        default=None,
        pattern=r"^[a-z][a-z0-9_]{0,59}$",
        description="FeatureOnlineStore id; default: the system name with '_' for '-' (one store per system)",
    )
    storage: Literal["bigtable", "optimized"] = Field(
        default="bigtable",
        description="bigtable: autoscaled Bigtable nodes, served through the regional API; optimized: Vertex AI's optimized store on its own public endpoint",
    )
    min_nodes: int = Field(default=1, ge=1, description="bigtable: fewest nodes autoscaling keeps")
    max_nodes: int = Field(default=3, ge=1, description="bigtable: most nodes autoscaling adds")
    cpu_utilization_target: int = Field(default=50, ge=10, le=80, description="bigtable: node CPU utilisation (percent) autoscaling aims for")

    @model_validator(mode="after")
    def _node_range(self) -> VertexFeatureStoreSettings:
        if self.max_nodes < self.min_nodes:
            raise ValueError(f"max_nodes ({self.max_nodes}) is below min_nodes ({self.min_nodes})")
        return self


class VertexSettings(SpecModel):
    project: str = Field(pattern=r"^[a-z][a-z0-9-]{4,28}[a-z0-9]$", examples=["acme-ml"])
    region: str = Field(pattern=r"^[a-z]+-[a-z]+[0-9]+$", examples=["us-central1", "europe-west4"])
    pipeline_root: str = Field(pattern=r"^gs://.+$", examples=["gs://acme-ml/pipelines"])
    service_account: str = Field(pattern=r"^[^@\s]+@[^@\s]+$", examples=["pipelines@acme-ml.iam.gserviceaccount.com"])
    network: str | None = None
    feature_store: VertexFeatureStoreSettings = Field(
        default_factory=VertexFeatureStoreSettings, description="the online store of the spec's online feature views"
    )


class SageMakerSettings(SpecModel):
    region: str = Field(pattern=r"^[a-z]{2}(-gov)?-[a-z]+-[0-9]$", examples=["eu-west-1", "us-east-1"])
    role_arn: str = Field(pattern=r"^arn:aws[a-z-]*:iam::[0-9]{12}:role/.+$", examples=["arn:aws:iam::123456789012:role/SageMakerPipelines"])
    bucket: str = Field(pattern=r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$", examples=["acme-ml-artifacts"])


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
        examples=["/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/ml-rg/providers/Microsoft.Storage/storageAccounts/acmefs/blobServices/default/containers/offline"],
    )
    materialization_instance_type: str = Field(default="standard_e8s_v3", pattern=r"^[a-z0-9_]+$",
                                                description="serverless Spark instance type of materialisation jobs")  # fmt: skip


class AzureMLSettings(SpecModel):
    subscription_id: str = Field(pattern=r"^[0-9a-fA-F-]{36}$", examples=["00000000-0000-0000-0000-000000000000"])
    resource_group: str = Field(min_length=1, max_length=90)
    workspace: str = Field(min_length=3, max_length=33)
    compute: str = Field(min_length=2, max_length=32)
    key_vault: str | None = Field(
        default=None,
        pattern=r"^([a-zA-Z][a-zA-Z0-9-]{1,22}[a-zA-Z0-9]|https://[a-z0-9.-]+/?)$",
        description="Key Vault that holds the secret:// references (name or URL); default: the workspace's own",
        examples=["acme-ml-kv"],
    )
    feature_store: AzureMLFeatureStoreSettings | None = Field(default=None, description="the managed feature store `features:` compiles into")


class LocalSettings(SpecModel):
    workdir: str = ".mlcompile"
    allowed_output_roots: list[Annotated[str, Field(min_length=1, max_length=4096)]] = Field(
        default_factory=list,
        max_length=100,
        description="folders outside the spec's folder that `mlcompile run` may write into (its workdir, batch scores), "
        "absolute or relative to the spec's folder; by default a run writes only inside the spec's folder",
        examples=[["/data/ml-runs"]],
    )


class TargetMetadata(SpecModel):
    name: Name
    description: str | None = None
    labels: Labels = Field(default_factory=dict)


PolicyLabelKey = Annotated[str, Field(pattern=r"^[a-z][a-z0-9_-]{0,62}$")]


class Policy(SpecModel):
    """What a system may ask for on this profile: the platform team's guardrails. Every rule
    is optional. A violation is an error at the spec field that caused it (after overrides are
    merged); `--warn-only` reports violations as warnings instead."""

    allowed_accelerators: list[str] | None = Field(
        default=None,
        description="accelerator types (portable catalog names) that training, the online endpoint and batch scoring may use; [] allows none",
        examples=[["nvidia-t4", "nvidia-l4"]],
    )
    max_accelerators_per_replica: int | None = Field(
        default=None, ge=1, le=64, description="most accelerators one replica may ask for (resources.accelerator.count)"
    )
    max_replicas: int | None = Field(
        default=None,
        ge=1,
        le=1024,
        description="most machines one workload may hold at once: training.resources.replicas, "
        "tuning parallel_trials x training replicas, deployment.online.replicas.max",
    )
    max_cpu_per_replica: float | None = Field(default=None, gt=0, le=1024, description="most cores one replica may ask for (resources.cpu)")
    max_memory_per_replica: Memory | None = Field(default=None, description="most memory one replica may ask for (resources.memory)")
    spot_required: bool = Field(
        default=False, description="training (and so every tuning trial) must run on spot / preemptible capacity: training.resources.spot: true"
    )
    registry_approval: Literal["manual", "any"] = Field(
        default="any", description="manual: registry.approval: auto is refused, a person approves every version"
    )
    max_training_timeout: Duration | None = Field(
        default=None, description="longest training.resources.timeout (the default timeout is 24h); each tuning trial has that timeout"
    )
    required_labels: list[PolicyLabelKey] = Field(
        default_factory=list, description="keys metadata.labels must have, each with a non-empty value", examples=[["team", "cost-center"]]
    )
    endpoint_min_replicas: int | None = Field(
        default=None, ge=1, le=1000, description="fewest replicas an online endpoint may scale down to (deployment.online.replicas.min)"
    )


class Target(SpecModel):
    """A target profile (`targets/<name>.yaml`): where the system runs."""

    model_config = ConfigDict(title="mlcompile target profile (Target, v1)")

    apiVersion: Literal["mlcompile/v1"]
    kind: Literal["Target"]
    metadata: TargetMetadata
    platform: Platform | Annotated[str, Field(pattern=r"^[a-z][a-z0-9_-]{1,30}$")] = Field(
        description="kubeflow | vertex | sagemaker | azureml | local, or the name of an installed third-party target"
    )
    images: Images | None = None
    kubeflow: KubeflowSettings | None = None
    vertex: VertexSettings | None = None
    sagemaker: SageMakerSettings | None = None
    azureml: AzureMLSettings | None = None
    local: LocalSettings | None = None
    settings: dict[str, Any] | None = Field(default=None, description="settings of a third-party target's platform")
    policy: Policy | None = Field(default=None, description="guardrails: what a system built for this profile may ask for")

    @property
    def name(self) -> str:
        return self.metadata.name

    def platform_settings(self) -> dict[str, Any]:
        """The settings block of this profile's platform, as plain data."""
        if self.platform in PLATFORM_NAMES:
            block = getattr(self, self.platform)
            data: dict[str, Any] = (block if block is not None else LocalSettings()).model_dump(mode="json")
            if isinstance(block, LocalSettings) or block is None:
                if not data.get("allowed_output_roots"):  # listed in the plan only when a profile allows any
                    data.pop("allowed_output_roots", None)
            return data
        return dict(self.settings or {})
