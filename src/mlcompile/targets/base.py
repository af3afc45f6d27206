"""The small protocol every target implements, built-in or third-party."""

from __future__ import annotations

import json
import random
import re
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Protocol, TypeVar, runtime_checkable

from mlcompile.diagnostics import Diagnostic

if TYPE_CHECKING:  # annotations only: validating a spec needs no plan classes
    from mlcompile.plan.nodes import Origin, Plan

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
    """One change `deploy` makes (or, with --dry-run, would make) on the platform."""

    resource: str  # e.g. "pipeline churn-prediction-training"
    action: str  # create | update | unchanged | delete
    detail: str = ""


class DeployFailed(Exception):
    """The platform refused or failed a deployment (exit status 1, not a user error).
    `applied` lists what had been done before the failure, so that the summary can say
    exactly what was and was not applied."""

    def __init__(self, message: str, applied: Sequence[DeployAction] = ()):
        super().__init__(message)
        self.applied = list(applied)


TRANSIENT_STATUSES = frozenset({408, 429, 500, 502, 503, 504})


def is_transient(exc: BaseException) -> bool:
    """A failure worth retrying: throttling, a server error, a timeout or a dropped connection."""
    for attribute in ("status", "status_code", "code"):
        value = getattr(exc, attribute, None)
        if isinstance(value, int) and value in TRANSIENT_STATUSES:
            return True
    response = getattr(exc, "response", None)
    if isinstance(getattr(response, "status_code", None), int):
        return response.status_code in TRANSIENT_STATUSES
    return isinstance(exc, (ConnectionError, TimeoutError)) or type(exc).__name__ in ("ProtocolError", "MaxRetryError", "ReadTimeoutError")


def with_retries(
    call: Callable[[], T],
    *,
    attempts: int = 4,
    first_delay: float = 0.5,
    max_delay: float = 8.0,
    transient: Callable[[BaseException], bool] = is_transient,
    sleep: Callable[[float], None] = time.sleep,
) -> T:
    """`call()`, retried on transient failures with capped exponential backoff and jitter."""
    for attempt in range(1, attempts + 1):
        try:
            return call()
        except Exception as exc:
            if attempt == attempts or not transient(exc):
                raise
            sleep(min(max_delay, first_delay * 2 ** (attempt - 1)) * random.uniform(0.5, 1.0))
    raise AssertionError("unreachable")


@runtime_checkable
class Deployable(Protocol):
    """A target that can also submit its build to the platform (`mlcompile deploy`)."""

    def deploy(self, plan: Plan, build_dir: Path, *, dry_run: bool) -> list[DeployAction]:
        """Create or update what the build describes; idempotent: deploying the same build
        twice reports every resource `unchanged` the second time. Raise DeployFailed when the
        platform refuses."""
        ...
