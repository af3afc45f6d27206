"""Typed models of the system spec (`MLSystem`; the target profile is in `profile_model.py`).
Field by field as SPEC-v1 says, unknown keys forbidden. Rules that relate one field to
another live in `checks.py`, so that all of them are reported at once."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import ConfigDict, Field, model_validator

from mlcompile.spec.model_base import SpecModel
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

BuiltinPlatform = Literal["kubeflow", "vertex", "sagemaker", "azureml", "local"]
DType = Literal["int32", "int64", "float32", "float64", "string", "bool", "timestamp"]
Labels = dict[Annotated[str, Field(pattern=r"^[a-z][a-z0-9_-]{0,62}$")], Annotated[str, Field(max_length=63)]]


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
