"""Typed models of the two kinds of file: the system spec (`MLSystem`) and the target
profile (`Target`). Field by field as SPEC-v1 says, unknown keys forbidden. Rules that
relate one field to another live in `checks.py`, so that all of them are reported at once."""

from __future__ import annotations

import re
import sys
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, model_validator

from mlcompile.spec.pydantic_plugins import skip_lookup_when_disabled
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

PLATFORM_NAMES = ("kubeflow", "vertex", "sagemaker", "azureml", "local")

Platform = Literal["kubeflow", "vertex", "sagemaker", "azureml", "local"]
DType = Literal["int32", "int64", "float32", "float64", "string", "bool", "timestamp"]
Labels = dict[Annotated[str, Field(pattern=r"^[a-z][a-z0-9_-]{0,62}$")], Annotated[str, Field(max_length=63)]]


skip_lookup_when_disabled()  # before the first validator is built


class SpecModel(BaseModel):
    # allow_inf_nan=False: YAML's .nan/.inf are no thresholds, and plan.json must stay JSON.
    # defer_build: a model's validator is built when first used, so a validate without
    # profiles never builds the Target's (five platforms' settings), nor each sub-model's own
    model_config = ConfigDict(extra="forbid", frozen=True, str_strip_whitespace=False, allow_inf_nan=False, defer_build=True)


# ---------------------------------------------------------------------------- metadata


class Metadata(SpecModel):
    name: Name
    description: str | None = Field(default=None, description="one line saying what the system predicts")
    owner: str | None = Field(default=None, description="who answers for the system (an e-mail address or team name)")
    labels: Labels = Field(default_factory=dict, description="propagated as labels/tags on every cloud resource")


# ---------------------------------------------------------------------------- features


class Entity(SpecModel):
    name: ItemName = Field(description="the entity's name, referred to by views")
    join_keys: list[ColumnName] = Field(description="columns that identify one instance of the entity; features are joined on them", min_length=1)
    description: str | None = Field(default=None, description="what one instance of the entity is")


class Source(SpecModel):
    name: ItemName = Field(description="the source's name, referred to by views, labels and ground truth")
    uri: DataUri
    format: Literal["table", "parquet", "csv"] = Field(description="table (BigQuery and other warehouse tables), parquet or csv")
    timestamp_field: ColumnName = Field(description="column with each row's event time, used for point-in-time-correct joins")
    description: str | None = Field(default=None, description="what the source holds")


class FeatureSpec(SpecModel):
    name: ColumnName = Field(description="the feature's column in the view's source")
    dtype: DType = Field(description="the feature's value type")
    description: str | None = Field(default=None, description="what the feature measures")


class View(SpecModel):
    name: ItemName = Field(description="the view's name; dataset features refer to <view>:<feature>")
    entities: list[ItemName] = Field(description="entities the view's rows are keyed by", min_length=1)
    source: ItemName = Field(description="the source the view reads")
    ttl: Duration = Field(description="how old a row may be and still be joined: older values count as missing")
    online: bool = Field(default=False, description="materialise the view to the online store for low-latency serving")
    features: list[FeatureSpec] = Field(description="the view's features (columns of its source)", min_length=1)
    description: str | None = Field(default=None, description="what the view describes")


class Features(SpecModel):
    entities: list[Entity] = Field(description="the things features describe (customer, item, …) and their join keys", min_length=1)
    sources: list[Source] = Field(description="tables and files that features and labels are read from", min_length=1)
    views: list[View] = Field(description="named groups of features read from one source and keyed by entities", min_length=1)


# ---------------------------------------------------------------------------- training


class SourceColumn(SpecModel):
    source: ItemName = Field(description="the source that holds the column")
    column: ColumnName = Field(description="the column's name")


class Split(SpecModel):
    test_fraction: float = Field(description="share of the labelled rows held out to evaluate the model", gt=0, lt=1)
    seed: int = Field(default=0, description="random seed of the split, so the same data splits the same way")


class Dataset(SpecModel):
    features: list[FeatureRef] = Field(description="the model's inputs, as <view>:<feature>", min_length=1)
    label: SourceColumn = Field(description="the column the model predicts, point-in-time joined on the entity keys")
    split: Split = Field(description="how the rows are split into training and test sets", default_factory=lambda: Split(test_fraction=0.2))


class PredictEntry(SpecModel):
    command: list[str] = Field(
        min_length=1,
        description="program that scores rows with a model this trainer wrote, run in the model's folder by mlcompile's runtime "
        "(online serving, batch scoring, performance monitoring, evaluation with metrics_from: runtime): it reads one JSON "
        'object {"instances": [{feature: value}, ...]} a line on stdin and answers each with one line '
        '{"predictions": [...], "scores": [...]} on stdout',
        examples=[["python", "predict.py"]],
    )
    args: list[str] = Field(description="arguments passed to the command", default_factory=list)


class ContainerTrainer(SpecModel):
    image: str = Field(description="container image that runs your training code", min_length=1, pattern=r"^[^\s]+$")
    command: list[str] = Field(description="entrypoint to run; empty keeps the image's own", default_factory=list)
    args: list[str] = Field(description="arguments passed to the command", default_factory=list)
    env: dict[Annotated[str, Field(pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")], str] = Field(
        default_factory=dict, description="environment variables; credentials only as secret:// references"
    )
    predict: PredictEntry | None = Field(
        default=None,
        description="the predict entry point of the models this trainer writes; online and batch deployments, performance "
        "monitoring and metrics_from: runtime need it",
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
        pattern=r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)+$",
        description="dotted path of a scikit-learn compatible estimator class",
        examples=["sklearn.ensemble.RandomForestClassifier"],
    )
    params: dict[str, Any] = Field(description="keyword arguments of the estimator's constructor", default_factory=dict)

    @model_validator(mode="after")
    def _finite_params(self) -> SklearnTrainer:
        _finite(self.params)
        return self


class Trainer(SpecModel):
    container: ContainerTrainer | None = Field(default=None, description="your own training code in a container image")
    sklearn: SklearnTrainer | None = Field(default=None, description="a scikit-learn estimator that mlcompile trains, evaluates and registers itself")

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
    memory: Memory = Field(default="4Gi", description="memory per replica, as a Kubernetes quantity (Ki, Mi, Gi, Ti)")
    accelerator: Accelerator | None = Field(default=None, description="GPUs or TPUs per replica, by portable catalog name")
    spot: bool = Field(default=False, description="preemptible / spot / low-priority capacity")
    timeout: Duration | None = Field(default=None, description="training: run time limit; serving: request time limit")


class Resources(ServingResources):
    replicas: int = Field(default=1, ge=1, le=1024, description=">1 = distributed training workers")
    timeout: Duration = Field(default="24h", description="run time limit of each training step; also the upper bound of cost estimates")


class FloatParam(SpecModel):
    type: Literal["float"] = Field(description="a real-valued parameter")
    min: float = Field(description="smallest value tried")
    max: float = Field(description="largest value tried")
    scale: Literal["linear", "log"] = Field(default="linear", description="log: search the range on a logarithmic scale (learning rates)")


class IntParam(SpecModel):
    type: Literal["int"] = Field(description="an integer parameter")
    min: int = Field(description="smallest value tried")
    max: int = Field(description="largest value tried")
    scale: Literal["linear", "log"] = Field(default="linear", description="log: search the range on a logarithmic scale")


class CategoricalParam(SpecModel):
    type: Literal["categorical"] = Field(description="a parameter with listed values")
    values: list[str | int | float | bool] = Field(description="the values tried", min_length=1)


SearchParam = Annotated[FloatParam | IntParam | CategoricalParam, Field(discriminator="type")]


class Objective(SpecModel):
    metric: str = Field(description="the metric the search optimises; one of evaluation.metrics")
    goal: Literal["maximize", "minimize"] = Field(description="whether a higher (maximize) or lower (minimize) value is better")


class Tuning(SpecModel):
    objective: Objective = Field(description="the metric the search optimises and its direction")
    max_trials: int = Field(description="trainings the search runs in all", ge=1, le=10_000)
    parallel_trials: int = Field(description="trainings run at the same time", default=1, ge=1, le=1_000)
    algorithm: Literal["bayesian", "random", "grid"] = Field(default="bayesian", description="how the next trial's parameters are chosen")
    params: dict[Annotated[str, Field(pattern=r"^[A-Za-z_][A-Za-z0-9_.-]*$")], SearchParam] = Field(
        description="the search space: parameter name → its range or values", min_length=1
    )


class Gate(SpecModel):
    metric: str = Field(description="the metric the gate checks; one of evaluation.metrics")
    min: float | None = Field(default=None, description="the model is registered only if the metric is at least this")
    max: float | None = Field(default=None, description="the model is registered only if the metric is at most this")
    min_delta_vs_production: float | None = Field(default=None, description="champion/challenger")

    @model_validator(mode="after")
    def _exactly_one(self) -> Gate:
        if sum(v is not None for v in (self.min, self.max, self.min_delta_vs_production)) != 1:
            raise ValueError("set exactly one of 'min', 'max' or 'min_delta_vs_production'")
        return self


class Evaluation(SpecModel):
    metrics: list[Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]*$")]] = Field(
        description="metrics computed on the test set and recorded with each model", min_length=1
    )
    gates: list[Gate] = Field(description="conditions every model must pass to be registered", default_factory=list)
    metrics_from: Literal["reported", "runtime"] | None = Field(
        default=None,
        description="who computes the metrics on the test set: reported = the container trainer (its MLCOMPILE_METRICS file; "
        "the default for container trainers), runtime = mlcompile, through the model's predict entry point (the default, "
        "and the only choice, for scikit-learn trainers)",
    )


class Training(SpecModel):
    dataset: Dataset = Field(description="features, label and split of the training data")
    trainer: Trainer = Field(description="what trains the model: exactly one of container or sklearn")
    resources: Resources = Field(description="machine, accelerators, replicas, spot capacity and timeout of training", default_factory=Resources)
    tuning: Tuning | None = Field(default=None, description="optional hyperparameter search around the trainer")
    evaluation: Evaluation = Field(description="metrics computed on the test set and the gates a model must pass")


# ---------------------------------------------------------------------------- registry


class Registry(SpecModel):
    model: Name = Field(description="registered model (model package group) name")
    approval: Literal["manual", "auto"] = Field(default="manual", description="manual: a person approves each version; auto: approved when it passes its gates")
    aliases: list[Annotated[str, Field(pattern=r"^[a-z][a-z0-9_-]{0,62}$")]] = Field(description="aliases applied to each new version", default_factory=list)
    tags: Labels = Field(description="tags set on each registered version", default_factory=dict)


# ---------------------------------------------------------------------------- deployment


class ReplicaRange(SpecModel):
    min: int = Field(description="fewest replicas the endpoint scales down to", default=1, ge=0, le=1000)
    max: int = Field(description="most replicas the endpoint scales up to", default=1, ge=1, le=1000)


class Autoscaling(SpecModel):
    metric: Literal["cpu", "gpu", "requests_per_replica"] = Field(description="what autoscaling watches: cpu or gpu utilisation, or requests per replica")
    target: float = Field(description="value of the metric autoscaling keeps each replica at (percent for cpu and gpu)", gt=0)


class Rollout(SpecModel):
    strategy: Literal["replace", "canary", "blue_green"] = Field(
        default="replace", description="how a new model replaces the serving one: replace, canary or blue_green"
    )
    canary_percent: int | None = Field(description="canary: share of traffic the new model gets first", default=None, ge=1, le=99)


class OnlineDeployment(SpecModel):
    endpoint: Name = Field(description="the endpoint's name")
    resources: ServingResources = Field(description="machine and accelerators of each replica", default_factory=ServingResources)
    replicas: ReplicaRange = Field(description="fewest and most replicas", default_factory=ReplicaRange)
    autoscaling: Autoscaling | None = Field(default=None, description="what scales the replicas between min and max")
    rollout: Rollout = Field(description="how a new model version replaces the serving one", default_factory=Rollout)


class SourceRef(SpecModel):
    source: ItemName = Field(description="name of a source in features.sources")


class UriRef(SpecModel):
    uri: DataUri = Field(description="where the scores are written")


class BatchDeployment(SpecModel):
    schedule: Cron = Field(description="when batch scoring runs")
    timezone: TimeZone = Field(default="UTC", description="time zone of the schedule")
    input: SourceRef = Field(description="the source whose rows are scored")
    output: UriRef = Field(description="where the scores are written")
    resources: ServingResources = Field(description="machine and accelerators of the scoring job", default_factory=ServingResources)


class Deployment(SpecModel):
    online: OnlineDeployment | None = Field(default=None, description="a real-time endpoint that serves the registered model")
    batch: BatchDeployment | None = Field(default=None, description="scheduled scoring of a source, written to a table or files")

    @model_validator(mode="after")
    def _at_least_one(self) -> Deployment:
        if self.online is None and self.batch is None:
            raise ValueError("set at least one of 'online' or 'batch'")
        return self


# ---------------------------------------------------------------------------- monitoring


class Drift(SpecModel):
    method: Literal["psi", "ks", "jensen_shannon", "wasserstein"] = Field(
        default="psi", description="statistic that compares serving data with the training data"
    )
    threshold: float = Field(description="drift above this value on any watched feature is a breach", gt=0)
    features: Literal["all"] | list[FeatureRef] = Field(default="all", description="the features watched: all, or a list of <view>:<feature>")


class Performance(SpecModel):
    metric: str = Field(description="the metric computed on labelled serving data; one of evaluation.metrics")
    min: float = Field(description="a value below this is a breach")
    ground_truth: SourceColumn = Field(description="the column that holds the true labels")


class EmailAlert(SpecModel):
    channel: Literal["email"] = Field(description="email")
    to: list[Annotated[str, Field(pattern=r"^[^@\s]+@[^@\s]+\.[^@\s]+$")]] = Field(description="addresses alerted on a breach", min_length=1)


class WebhookAlert(SpecModel):
    channel: Literal["webhook"] = Field(description="webhook")
    url: SecretRef = Field(description="webhook URLs carry credentials: a secret:// reference")


Alert = Annotated[EmailAlert | WebhookAlert, Field(discriminator="channel")]


class Monitoring(SpecModel):
    schedule: Cron = Field(description="when monitoring runs")
    timezone: TimeZone = Field(default="UTC", description="time zone of the schedule")
    baseline: Literal["training"] = Field(default="training", description="the reference distribution: the training dataset")
    drift: Drift | None = Field(default=None, description="feature drift check")
    performance: Performance | None = Field(default=None, description="model quality check on labelled serving data")
    alerts: list[Alert] = Field(description="who is told of a breach", default_factory=list)
    on_breach: Literal["retrain", "alert"] = Field(default="alert", description="retrain: a breach starts the training pipeline; alert: only alerts")


class Retraining(SpecModel):
    schedule: Cron | None = Field(default=None, description="when the training pipeline runs on its own")
    timezone: TimeZone = Field(default="UTC", description="time zone of the schedule")
    on_drift: bool = Field(default=False, description="a monitoring breach starts the training pipeline")
    on_new_data: SourceRef | None = Field(default=None, description="new data in this source starts the training pipeline")


# ---------------------------------------------------------------------------- system


class MLSystem(SpecModel):
    """The system spec (`mlcompile.yaml`): what the ML system is."""

    model_config = ConfigDict(title="mlcompile system spec (MLSystem, v1)")

    apiVersion: Literal["mlcompile/v1"] = Field(description="the spec language version: exactly mlcompile/v1")
    kind: Literal["MLSystem"] = Field(description="what the file is: MLSystem for a system spec")
    metadata: Metadata = Field(description="name, description, owner and labels of the system")
    features: Features = Field(description="the feature store section: entities, data sources and the feature views built on them")
    training: Training = Field(description="how the model is trained: dataset, trainer, resources, optional tuning, evaluation and gates")
    registry: Registry = Field(description="where each model that passes its gates is registered, and how a version is approved")
    deployment: Deployment | None = Field(default=None, description="how the model serves: an online endpoint, scheduled batch scoring, or both")
    monitoring: Monitoring | None = Field(default=None, description="scheduled drift and performance checks against the training data, with alerts")
    retraining: Retraining | None = Field(default=None, description="what starts the training pipeline again: a schedule, a monitoring breach, new data")
    overrides: dict[str, dict[str, Any]] = Field(default_factory=dict, description="deep-merged patches keyed by target profile name")


# ---------------------------------------------------------------------------- target profile


class Images(SpecModel):
    runtime: str = Field(min_length=1, pattern=r"^[^\s]+$", description="image that runs mlcompile's standard steps")


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
    project: str = Field(description="Google Cloud project id", pattern=r"^[a-z][a-z0-9-]{4,28}[a-z0-9]$", examples=["acme-ml"])
    region: str = Field(
        description="Google Cloud region pipelines, models and endpoints are created in",
        pattern=r"^[a-z]+-[a-z]+[0-9]+$",
        examples=["us-central1", "europe-west4"],
    )
    pipeline_root: str = Field(description="Cloud Storage path where pipeline artifacts are written", pattern=r"^gs://.+$", examples=["gs://acme-ml/pipelines"])
    service_account: str = Field(
        description="service account the pipelines run as", pattern=r"^[^@\s]+@[^@\s]+$", examples=["pipelines@acme-ml.iam.gserviceaccount.com"]
    )
    network: str | None = Field(default=None, description="VPC network to peer jobs with (projects/<number>/global/networks/<name>)")
    feature_store: VertexFeatureStoreSettings = Field(
        default_factory=VertexFeatureStoreSettings, description="the online store of the spec's online feature views"
    )


_IAM_ROLE = r"^arn:aws[a-z-]*:iam::[0-9]{12}:role/.+$"


class SageMakerRoles(SpecModel):
    """Least-privilege IAM roles, one per duty; a duty without one uses `role_arn` (the
    pipelines' role). docs/targets/sagemaker.md lists what each needs."""

    serving: str | None = Field(
        default=None,
        pattern=_IAM_ROLE,
        description="role of the endpoint's model (CreateModel ExecutionRoleArn): reads the model, its online features; cannot start pipelines",
    )
    schedulers: str | None = Field(
        default=None, pattern=_IAM_ROLE, description="role EventBridge schedules and rules start pipelines with (StartPipelineExecution only)"
    )
    feature_store: str | None = Field(
        default=None,
        pattern=_IAM_ROLE,
        description="role of the feature groups' offline store (CreateFeatureGroup RoleArn): writes its S3 prefix and Glue table",
    )


class SageMakerSettings(SpecModel):
    region: str = Field(
        description="AWS region pipelines, models and endpoints are created in", pattern=r"^[a-z]{2}(-gov)?-[a-z]+-[0-9]$", examples=["eu-west-1", "us-east-1"]
    )
    role_arn: str = Field(
        description="IAM role SageMaker runs the pipelines as", pattern=_IAM_ROLE, examples=["arn:aws:iam::123456789012:role/SageMakerPipelines"]
    )
    bucket: str = Field(
        description="S3 bucket where pipeline artifacts are written", pattern=r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$", examples=["acme-ml-artifacts"]
    )
    roles: SageMakerRoles | None = Field(
        default=None, description="least-privilege roles per duty (serving, schedulers, feature store); each defaults to role_arn"
    )


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


class LocalSettings(SpecModel):
    workdir: str = Field(default=".mlcompile", description="folder (relative to the spec) for runs, artifacts and the local registry")
    allowed_output_roots: list[Annotated[str, Field(min_length=1, max_length=4096)]] = Field(
        default_factory=list,
        max_length=100,
        description="folders outside the spec's folder that `mlcompile run` may write into (its workdir, batch scores), "
        "absolute or relative to the spec's folder; by default a run writes only inside the spec's folder",
        examples=[["/data/ml-runs"]],
    )


class TargetMetadata(SpecModel):
    name: Name
    description: str | None = Field(default=None, description="one line saying what the profile is for")
    labels: Labels = Field(description="labels of the profile", default_factory=dict)


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


def _not_stdlib(package: str) -> str:
    # allowing `subprocess` or `os` would let a spec name subprocess.call as its "estimator"
    if package.split(".", 1)[0] in (*sys.stdlib_module_names, "__main__"):
        raise ValueError(f"'{package}' is Python's standard library: it holds no estimators")
    return package


class Target(SpecModel):
    """A target profile (`targets/<name>.yaml`): where the system runs."""

    model_config = ConfigDict(title="mlcompile target profile (Target, v1)")

    apiVersion: Literal["mlcompile/v1"] = Field(description="the spec language version: exactly mlcompile/v1")
    kind: Literal["Target"] = Field(description="what the file is: Target for a target profile")
    metadata: TargetMetadata = Field(description="name, description and labels of the profile")
    platform: Platform | Annotated[str, Field(pattern=r"^[a-z][a-z0-9_-]{1,30}$")] = Field(
        description="kubeflow | vertex | sagemaker | azureml | local, or the name of an installed third-party target"
    )
    images: Images | None = Field(default=None, description="container images the platform runs")
    kubeflow: KubeflowSettings | None = Field(default=None, description="settings of platform: kubeflow")
    vertex: VertexSettings | None = Field(default=None, description="settings of platform: vertex")
    sagemaker: SageMakerSettings | None = Field(default=None, description="settings of platform: sagemaker")
    azureml: AzureMLSettings | None = Field(default=None, description="settings of platform: azureml")
    local: LocalSettings | None = Field(default=None, description="settings of platform: local")
    settings: dict[str, Any] | None = Field(default=None, description="settings of a third-party target's platform")
    policy: Policy | None = Field(default=None, description="guardrails: what a system built for this profile may ask for")
    estimator_packages: list[Annotated[str, Field(pattern=r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*$"), AfterValidator(_not_stdlib)]] = Field(
        default_factory=list,
        description="Python packages (besides sklearn, xgboost, lightgbm) whose scikit-learn-compatible estimator classes "
        "a scikit-learn trainer may name; the runtime imports nothing else",
        examples=[["mycompany_models"]],
    )

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
