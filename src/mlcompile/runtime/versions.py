"""What a model registry holds, as every backend (registry_mlflow, registry_vertex,
registry_sagemaker) and the rollouts see it: versions, the aliases and tags mlcompile sets,
and the protocol a backend implements (chosen per profile by `registry.py`)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

PRODUCTION = "production"
ENV_TRY_UNAPPROVED = "MLCOMPILE_TRY_UNAPPROVED"  # the local runner: serve the newest version before any approval
TAG_APPROVAL = "mlcompile.approval"
TAG_PIPELINE_RUN = "mlcompile.pipeline_run"
TAG_MODEL_SHA256 = "mlcompile.model_sha256"
TAG_ENDPOINT = "mlcompile.endpoint"


@dataclass(frozen=True)
class Version:
    """One registered version, as either backend reports it."""

    model: str
    version: str
    aliases: tuple[str, ...] = ()
    tags: Mapping[str, str] = field(default_factory=dict)
    run_id: str | None = None  # MLflow: the run holding the model; Vertex: none
    artifact_uri: str | None = None  # Vertex: the model folder the version was uploaded from


@dataclass
class ServingModel:
    name: str
    version: str
    alias: str | None
    reason: str
    folder: Path
    run_id: str | None


class Registry(Protocol):
    """What the steps need of a model registry."""

    kind: str  # "mlflow" or "vertex": what results and summaries name
    location: str  # the tracking URI, or the Vertex AI parent (projects/…/locations/…)

    def versions(self, model: str) -> list[Version]: ...

    def get(self, model: str, version: str) -> Version | None: ...

    def with_alias(self, model: str, alias: str) -> Version | None: ...

    def set_aliases(self, model: str, version: str, aliases: list[str]) -> None: ...

    def set_tag(self, model: str, version: str, key: str, value: str) -> None: ...

    def create(self, new: NewVersion) -> Version: ...

    def download(self, version: Version, destination: Path) -> Path: ...


@dataclass
class NewVersion:
    """Everything register hands a backend to create a version from."""

    config: dict[str, Any]
    model: str
    folder: Path  # the model folder (model.json + files)
    uri: str  # where that folder is (the step's input URI)
    meta: dict[str, Any]
    tags: dict[str, str]  # lineage and approval, with the spec's registry.tags
    metrics: dict[str, Any]
    evaluation: dict[str, Any]
