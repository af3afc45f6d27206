"""Plan nodes: frozen dataclasses, built once by `lower.py`, read by every target.

The plan is what the spec means, with nothing left to look up: every reference resolved,
every duration in seconds, every resource request resolved to a machine of the target
platform, every element carrying the spec location it came from (so a target's "cannot do
this here" is still reported at file:line:col). `PLAN_VERSION` changes whenever the shape does.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

PLAN_VERSION = "2"

StepKind = Literal[
    "extract_features",
    "validate_data",
    "train",
    "tune",
    "evaluate",
    "gate",
    "register",
    "deploy_online",
    "score_batch",
    "check_drift",
    "check_performance",
    "alert",
    "trigger_retraining",
    # steps a platform adds to the plan (Platform.extend_plan): keeping a feature store's
    # online views fresh, on a schedule (Kubeflow, SageMaker) or after extraction (local)
    "materialize_features",
    "materialize",
]
ArtifactType = Literal["dataset", "model", "metrics", "report", "decision"]


@dataclass(frozen=True)
class Origin:
    """Where in the spec a plan element came from."""

    file: str
    line: int
    col: int
    path: str

    def below(self, *parts: str) -> Origin:
        """A field under this element: the same position (the plan keeps one per element),
        the longer path — what a target names when it refuses one field of a step."""
        base = () if self.path in ("", "$") else (self.path,)
        return Origin(self.file, self.line, self.col, ".".join((*base, *parts)))


@dataclass(frozen=True)
class Machine:
    """A machine of the target platform (None on the local platform)."""

    name: str | None
    accelerator: str | None
    accelerator_platform_name: str | None
    accelerator_count: int
    vcpus: float | None
    memory_gib: float | None
    node_selector: dict[str, str] = field(default_factory=dict)
    tolerations: list[dict[str, str]] = field(default_factory=list)


@dataclass(frozen=True)
class Accelerator:
    """The accelerator a replica gets, as resolved: the portable type, the count the catalog
    gives (a TPU slice's chips, the machine's GPUs: possibly more than the spec asked), the
    platform's own name for it and the machine that carries it (None where there is no
    catalogue: the local platform, third-party platforms)."""

    type: str
    count: int
    platform_name: str | None
    machine: str | None


@dataclass(frozen=True)
class Resources:
    """What one replica gets. `accelerator` is the one resolved accelerator (the catalog's
    count: the machine's GPUs, a TPU slice's chips) that every consumer reads (targets,
    cost, diff, explain), so none can ask for the spec's unrounded count."""

    cpu: float
    memory: str
    memory_bytes: int
    accelerator: Accelerator | None
    replicas: int
    spot: bool
    timeout_seconds: int | None
    machine: Machine | None
    origin: Origin


@dataclass(frozen=True)
class ArtifactRef:
    """An input of a step: artifact `artifact` produced by step `step`."""

    name: str
    step: str
    artifact: str


@dataclass(frozen=True)
class Artifact:
    name: str
    type: ArtifactType


@dataclass(frozen=True)
class Step:
    name: str
    kind: StepKind
    image: str
    command: tuple[str, ...]
    args: tuple[str, ...]
    resources: Resources
    depends_on: tuple[str, ...]
    inputs: tuple[ArtifactRef, ...]
    outputs: tuple[Artifact, ...]
    params: dict[str, Any]
    run_if: str | None  # name of a step whose decision must be true for this one to run
    uses_user_container: bool
    origin: Origin


@dataclass(frozen=True)
class Pipeline:
    name: str
    description: str
    steps: tuple[Step, ...]

    def step(self, name: str) -> Step:
        return next(s for s in self.steps if s.name == name)


@dataclass(frozen=True)
class Schedule:
    name: str
    pipeline: str
    cron: str
    timezone: str
    origin: Origin


@dataclass(frozen=True)
class Trigger:
    """An event that starts a pipeline: a monitoring breach, or new data in a source."""

    name: str
    kind: Literal["monitoring_breach", "new_data"]
    pipeline: str
    source: str | None
    origin: Origin


@dataclass(frozen=True)
class Gate:
    metric: str
    comparison: Literal["min", "max", "min_delta_vs_production"]
    threshold: float
    origin: Origin


@dataclass(frozen=True)
class SearchParam:
    name: str
    type: Literal["float", "int", "categorical"]
    min: float | None
    max: float | None
    scale: Literal["linear", "log"] | None
    values: tuple[Any, ...]


@dataclass(frozen=True)
class Tuning:
    metric: str
    goal: Literal["maximize", "minimize"]
    max_trials: int
    parallel_trials: int
    algorithm: str
    params: tuple[SearchParam, ...]
    origin: Origin


@dataclass(frozen=True)
class Registry:
    model: str
    approval: Literal["manual", "auto"]
    aliases: tuple[str, ...]
    tags: dict[str, str]
    origin: Origin


@dataclass(frozen=True)
class OnlineEndpoint:
    name: str
    model: str
    resources: Resources
    min_replicas: int
    max_replicas: int
    autoscaling_metric: str | None
    autoscaling_target: float | None
    strategy: Literal["replace", "canary", "blue_green"]
    canary_percent: int | None
    requires_approval: bool
    origin: Origin


@dataclass(frozen=True)
class FeatureColumn:
    name: str
    dtype: str


@dataclass(frozen=True)
class FeatureView:
    name: str
    entities: tuple[str, ...]
    join_keys: tuple[str, ...]
    source: str
    ttl_seconds: int
    online: bool
    features: tuple[FeatureColumn, ...]
    origin: Origin
    # How often an online view is materialised into the online store (UTC cron), so that
    # serving reads values well inside the ttl; None for offline-only views.
    refresh_cron: str | None = None


def refresh_cron_for(ttl_seconds: int) -> str:
    """Materialise at least four times per ttl, on a round cadence: every 15 minutes below a
    4 h ttl, hourly below 4 days, daily (00:00 UTC) above."""
    if ttl_seconds < 4 * 3600:
        return "*/15 * * * *"
    if ttl_seconds < 4 * 86400:
        return "0 * * * *"
    return "0 0 * * *"


@dataclass(frozen=True)
class FeatureRef:
    """One feature the model reads: `view:feature` in the spec."""

    view: str
    feature: str

    @classmethod
    def parse(cls, ref: str) -> FeatureRef:
        view, _, feature = ref.partition(":")
        return cls(view, feature)

    def __str__(self) -> str:
        return f"{self.view}:{self.feature}"


@dataclass(frozen=True)
class DataSource:
    name: str
    uri: str
    format: str
    timestamp_field: str
    origin: Origin  # of the uri: what a platform that cannot read it points at


@dataclass(frozen=True)
class Entity:
    name: str
    join_keys: tuple[str, ...]


@dataclass(frozen=True)
class FeatureStore:
    entities: tuple[Entity, ...]
    sources: tuple[DataSource, ...]
    views: tuple[FeatureView, ...]


@dataclass(frozen=True)
class Monitoring:
    drift_method: str | None
    drift_threshold: float | None
    drift_features: tuple[str, ...]
    performance_metric: str | None
    performance_min: float | None
    alerts: tuple[dict[str, Any], ...]
    on_breach: Literal["retrain", "alert"]
    origin: Origin


@dataclass(frozen=True)
class Lineage:
    """What every cloud resource is labelled with, to trace it back to its source."""

    system: str
    spec_sha256: str
    profile_sha256: str
    git_commit: str | None  # of the checkout the spec was built in, when it is one


@dataclass(frozen=True)
class Plan:
    plan_version: str
    mlcompile_version: str
    system: str
    description: str | None
    owner: str | None
    labels: dict[str, str]
    spec_sha256: str
    profile: str
    platform: str
    platform_settings: dict[str, Any]
    runtime_image: str
    features: FeatureStore
    training: Pipeline
    tuning: Tuning | None
    gates: tuple[Gate, ...]
    registry: Registry
    online: OnlineEndpoint | None
    batch: Pipeline | None
    monitoring: Monitoring | None
    monitoring_pipeline: Pipeline | None
    schedules: tuple[Schedule, ...]
    triggers: tuple[Trigger, ...]
    lineage: Lineage
    # what mlcompile's own steps get (one modest machine): also the platform's added steps
    standard_resources: Resources
    # pipelines the platform adds (Platform.extend_plan): new-data sensors, feature
    # materialisation, the deploy pipeline an approval starts; their schedules are in `schedules`
    platform_pipelines: tuple[Pipeline, ...] = ()

    def pipelines(self) -> tuple[Pipeline, ...]:
        """Every pipeline of the plan: the spec's, then the platform's."""
        return (*(p for p in (self.training, self.batch, self.monitoring_pipeline) if p is not None), *self.platform_pipelines)

    def pipeline(self, name: str) -> Pipeline | None:
        return next((p for p in self.pipelines() if p.name == name), None)

    def model_features(self) -> tuple[FeatureRef, ...]:
        """The features the model reads, in its input order (the extract-features step's)."""
        step = next((s for s in self.training.steps if s.kind == "extract_features"), None)
        return tuple(FeatureRef.parse(str(ref)) for ref in (step.params.get("features", []) if step is not None else []))
