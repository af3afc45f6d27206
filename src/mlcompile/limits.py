"""Size limits of the platforms' objects, by output-file kind, and the check `build` applies
after rendering: a warning when an artifact passes WARN_FRACTION of its platform's limit
(it still builds; past 100% the platform will reject it at deploy time). Each platform
declares the limits of its files (`Platform.size_limits`) from the figures here."""

from __future__ import annotations

from dataclasses import dataclass
from fnmatch import fnmatchcase

WARN_FRACTION = 0.8
MIB = 1024 * 1024


@dataclass(frozen=True)
class Limit:
    kinds: str  # an output-file kind, or a glob of kinds ("kubeflow.*")
    limit: int
    unit: str  # "characters" (of the UTF-8 text) or "bytes"
    what: str


# Sources: SageMaker CreatePipeline PipelineDefinition (max 1,048,576 characters); the
# Kubernetes API server / etcd object size (~1.5 MB request, 1 MiB is the safe figure Argo and
# KServe objects are held to); the KFP pipeline-spec upload limit (32 MiB).
SAGEMAKER_PIPELINE = (Limit("sagemaker.pipeline_definition", 1_048_576, "characters", "SageMaker pipeline definition (CreatePipeline)"),)
KFP_PIPELINE_SPEC = (Limit("kfp.pipeline_spec", 32 * MIB, "bytes", "KFP pipeline IR upload"),)
KUBERNETES_OBJECTS = (
    Limit("kserve.inference_service", MIB, "bytes", "Kubernetes object"),
    Limit("kubeflow.*", MIB, "bytes", "Kubernetes object"),
    Limit("katib.*", MIB, "bytes", "Kubernetes object"),
    Limit("kubernetes.*", MIB, "bytes", "Kubernetes object"),
)


def limit_of(kind: str, limits: tuple[Limit, ...]) -> Limit | None:
    """The first of `limits` whose kinds match `kind`."""
    return next((limit for limit in limits if fnmatchcase(kind, limit.kinds)), None)


def size_of(content: bytes, unit: str) -> int:
    return len(content.decode("utf-8", errors="replace")) if unit == "characters" else len(content)


def over_warning(kind: str, content: bytes, limits: tuple[Limit, ...]) -> tuple[Limit, int] | None:
    """(limit, size) when `content` passes WARN_FRACTION of the limit for `kind`, else None."""
    limit = limit_of(kind, limits)
    if limit is None:
        return None
    if len(content) <= WARN_FRACTION * limit.limit:  # characters never outnumber UTF-8 bytes
        return None
    size = size_of(content, limit.unit)
    return (limit, size) if size > WARN_FRACTION * limit.limit else None
