"""The small protocol every target implements, built-in or third-party."""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Protocol, TypeVar, runtime_checkable

from mlcompile.diagnostics import Diagnostic
from mlcompile.runtime.contract import runtime_command

if TYPE_CHECKING:  # annotations only: validating a spec needs no plan classes
    from mlcompile.plan.nodes import OnlineEndpoint, Origin, Pipeline, Plan

T = TypeVar("T")
# ASCII letters, digits, '.', '_', '-' in '/'-separated parts: no absolute path, no '\\', no
# NUL or newline (checked with fullmatch: `$` alone would accept a trailing newline).
_SAFE_PATH = re.compile(r"[A-Za-z0-9._-]+(/[A-Za-z0-9._-]+)*")
MAX_PATH_PART = 255  # bytes in one file name on every common filesystem


@dataclass(frozen=True)
class OutputFile:
    """One file of a build: a relative POSIX path inside the profile's folder, the format it
    is in (manifest `kind`, e.g. `kfp.pipeline_spec`), and its bytes."""

    path: str
    kind: str
    content: bytes

    def __post_init__(self) -> None:
        if not is_safe_relative_path(self.path):
            raise ValueError(f"unsafe output path {self.path!r}: relative, no '..', letters, digits, '.', '_', '-'")


def is_safe_relative_path(path: str) -> bool:
    """A relative POSIX path that stays where it is put: ASCII name characters only, no
    empty, '.' or '..' part, each part short enough for any filesystem."""
    parts = path.split("/")
    return bool(_SAFE_PATH.fullmatch(path)) and all(part not in (".", "..") and len(part) <= MAX_PATH_PART for part in parts)


@runtime_checkable
class Target(Protocol):
    """A platform backend. `render` is pure and offline: same plan, same bytes."""

    name: ClassVar[str]
    # pip extra that installs what the target imports (None: nothing beyond the core)
    extra: ClassVar[str | None]
    # modules the target imports when it renders, checked without importing them
    requires: ClassVar[tuple[str, ...]]

    def check(self, plan: Plan) -> list[Diagnostic]:
        """What this platform cannot do of the plan, each at the spec location it came from."""
        ...

    def render(self, plan: Plan) -> list[OutputFile]:
        """The platform's native files for the plan."""
        ...


def unsupported(origin: Origin, target: str, message: str, hint: str | None = None) -> Diagnostic:
    """A target's refusal of something the spec asks for, located at the spec."""
    return Diagnostic(origin.file, origin.line, origin.col, "error", origin.path, f"{message} (target {target})", hint)


def json_bytes(data: Any) -> bytes:
    """Deterministic JSON: sorted keys, two-space indent, trailing newline."""
    return (json.dumps(data, indent=2, sort_keys=True, ensure_ascii=False, allow_nan=False) + "\n").encode()


def resource_labels(plan: Plan, *, max_value_length: int | None = None) -> dict[str, str]:
    """The labels/tags every cloud resource carries: the spec's `metadata.labels` plus
    lineage (system, spec sha256, git commit). Platforms that cap label values (GCP and
    Kubernetes: 63 characters) pass `max_value_length`; the sha256 prefix stays unique."""
    labels = dict(plan.labels)
    labels["mlcompile-system"] = plan.system
    labels["mlcompile-spec-sha256"] = plan.lineage.spec_sha256
    if plan.lineage.git_commit:
        labels["mlcompile-git-commit"] = plan.lineage.git_commit
    if max_value_length is not None:
        labels = {key: value[:max_value_length] for key, value in labels.items()}
    return dict(sorted(labels.items()))


@dataclass(frozen=True)
class DeployAction:
    """One change `deploy` makes (or, with --dry-run, would make) on the platform.
    `live` fingerprints what deploy read of the resource on the platform before deciding
    (`live_fingerprint`): a saved plan is applied only while every fingerprint still holds."""

    resource: str  # e.g. "pipeline churn-prediction-training"
    action: str  # create | update | unchanged | delete | deferred | manual
    detail: str = ""
    live: str = ""  # "absent", "sha256:…", or "" (a target that does not fingerprint)


ABSENT = "absent"


def live_fingerprint(state: Any) -> str:
    """A short stable hash of the live state deploy compared a resource on — exactly the
    fields its comparison reads, so that a run or a status change of the resource does not
    count, while any change that could alter what deploy does does. None: the resource is absent."""
    if state is None:
        return ABSENT
    text = json.dumps(state, sort_keys=True, default=str, separators=(",", ":"))
    return "sha256:" + hashlib.sha256(text.encode()).hexdigest()[:16]


class DeployFailed(Exception):
    """The platform refused or failed a deployment (exit status 1, not a user error).
    `applied` lists what had been done before the failure and `not_applied` the resources of
    the build that were not (None when the target cannot tell), so that the summary says
    exactly what was and was not applied."""

    def __init__(self, message: str, applied: Sequence[DeployAction] = (), not_applied: Sequence[str] | None = None):
        super().__init__(message)
        self.applied = list(applied)
        self.not_applied = None if not_applied is None else list(not_applied)


def not_applied(planned: Sequence[str], applied: Sequence[DeployAction]) -> list[str]:
    """The planned resources (in order) that no action applied or found in place (a resource
    whose old definition was deleted but whose new one was not created is not applied)."""
    done = {action.resource for action in applied if action.action != "delete"}
    return [resource for resource in planned if resource not in done]


@runtime_checkable
class Deployable(Protocol):
    """A target that can also submit its build to the platform (`mlcompile deploy`)."""

    def deploy(self, plan: Plan, build_dir: Path, *, dry_run: bool) -> list[DeployAction]:
        """Create or update what the build describes; idempotent: deploying the same build
        twice reports every resource `unchanged` the second time. Raise DeployFailed when the
        platform refuses."""
        ...


def deploy_pipeline(plan: Plan, online: OnlineEndpoint) -> Pipeline:
    """With manual approval the training pipeline stops at registration; approving a version
    starts this one (SageMaker: an EventBridge rule; Kubeflow and Vertex AI: the approver
    submits it after moving the `production` alias), which rolls the endpoint to it."""
    from mlcompile.plan.nodes import Pipeline, Step

    standard = plan.training.steps[0].resources
    step = Step(
        name="deploy-online",
        kind="deploy_online",
        image=plan.runtime_image,
        command=runtime_command("deploy-online"),
        args=(),
        resources=standard,
        depends_on=(),
        inputs=(),
        outputs=(),
        params={"endpoint": online.name, "model": plan.registry.model},
        run_if=None,
        uses_user_container=False,
        origin=online.origin,
    )
    return Pipeline(f"{plan.system}-deploy", f"deploys approved versions of {plan.registry.model} to endpoint {online.name}", (step,))
