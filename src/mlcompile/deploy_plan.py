"""Saved deploy plans: what `deploy --dry-run --out-plan FILE` found it would do on the
platform, resource by resource, and what `deploy --plan FILE` checks before applying it.

A plan holds the content hash of the build it was made from and, per resource, a fingerprint
of the live state the comparison read (`DeployAction.live`). Applying it rebuilds the spec
with the plan's git commit, compares the platform again, and refuses — changing nothing —
unless the build hashes the same and every resource compares to the same action on the same
live state: what is applied is exactly what was reviewed. The format is
`schemas/deploy-plan-v1.schema.json` (docs/deploy.md)."""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any, Final, Literal

from pydantic import TypeAdapter, ValidationError

from mlcompile import __version__
from mlcompile.errors import UsageError
from mlcompile.targets.base import DeployAction, OutputFile, json_bytes

FORMAT: Final = "mlcompile.deploy-plan"
VERSION: Final = 1


@dataclass(frozen=True)
class PlannedChange:
    """One resource of the plan: what deploy would do to it, and the fingerprint of the live
    state it compared against ("absent": not on the platform; "": not fingerprinted)."""

    resource: str
    action: str  # create | update | delete | unchanged | deferred | manual
    detail: str
    live: str


@dataclass(frozen=True)
class DeployPlan:
    format: Literal["mlcompile.deploy-plan"]
    version: Literal[1]
    mlcompile_version: str
    system: str
    profile: str
    platform: str
    spec: str  # as given on the command line that made the plan
    target: str
    git_commit: str | None  # recorded as lineage in the build; applying rebuilds with it
    build_sha256: str
    summary: dict[str, int]  # resources per action
    changes: tuple[PlannedChange, ...]


class PlanOutOfDate(UsageError):
    """A saved plan that no longer describes what deploy would do (exit status 2)."""


@cache
def _adapter() -> TypeAdapter[DeployPlan]:
    return TypeAdapter(DeployPlan)


def deploy_plan_schema() -> dict[str, Any]:
    schema = _adapter().json_schema()
    schema["title"] = "mlcompile deploy plan (deploy --dry-run --out-plan)"
    return schema


def build_sha256(files: Sequence[OutputFile]) -> str:
    """The content hash of a build: every file's path, kind and bytes."""
    listing = sorted((f.path, f.kind, hashlib.sha256(f.content).hexdigest()) for f in files)
    return hashlib.sha256(json.dumps(listing).encode()).hexdigest()


def make_plan(
    *, system: str, profile: str, platform: str, spec: str, target: str, git_commit: str | None, files: Sequence[OutputFile], actions: Sequence[DeployAction]
) -> DeployPlan:
    changes = tuple(PlannedChange(a.resource, a.action, a.detail, a.live) for a in actions)
    return DeployPlan(
        FORMAT,
        VERSION,
        __version__,
        system,
        profile,
        platform,
        spec,
        target,
        git_commit,
        build_sha256(files),
        dict(sorted(Counter(c.action for c in changes).items())),
        changes,
    )


def write_plan(plan: DeployPlan, path: str | os.PathLike[str]) -> None:
    """Written whole or not at all (a temporary file beside it, renamed)."""
    target = Path(path)
    data = json_bytes(_adapter().dump_python(plan, mode="json"))
    handle, temporary = tempfile.mkstemp(prefix=f".{target.name}.", dir=target.parent if str(target.parent) else ".")
    try:
        with os.fdopen(handle, "wb") as stream:
            stream.write(data)
        os.replace(temporary, target)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def read_plan(path: str | os.PathLike[str]) -> DeployPlan:
    try:
        data = json.loads(Path(path).read_text())
    except FileNotFoundError:
        raise UsageError(f"{path}: no such plan file") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise UsageError(f"{path}: not a deploy plan ({exc})") from None
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise UsageError(f"{path}: not a deploy plan (make one with `mlcompile deploy SPEC --target PROFILE --dry-run --out-plan {path}`)")
    if data.get("version") != VERSION:
        raise UsageError(f"{path}: deploy plan version {data.get('version')!r}; this mlcompile reads version {VERSION}: make the plan again")
    try:
        return _adapter().validate_python(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(part) for part in first["loc"])
        raise UsageError(f"{path}: not a valid deploy plan ({where}: {first['msg']})") from None


def check_build(plan: DeployPlan, files: Sequence[OutputFile], path: str) -> None:
    if build_sha256(files) != plan.build_sha256:
        raise PlanOutOfDate(
            f"{path} is out of date: the build changed since the plan was made (the spec, the profile or mlcompile differ); nothing was applied: "
            f"make and review a new plan ({_again(plan, path)})"
        )


def check_live(plan: DeployPlan, actions: Sequence[DeployAction], path: str) -> None:
    """Refuse unless the platform compares now exactly as it did when the plan was made."""
    then = {c.resource: (c.action, c.live) for c in plan.changes}
    now = {a.resource: (a.action, a.live) for a in actions}
    differing = [r for r in [*then, *(r for r in now if r not in then)] if then.get(r) != now.get(r)]
    if not differing:
        return
    first = differing[0]
    before, after = then.get(first), now.get(first)
    change = (
        f"{first} was not in the plan"
        if before is None
        else f"{first} is no longer planned"
        if after is None
        else f"{first}: planned {before[0]}, now {after[0]}"
        if before[0] != after[0]
        else f"{first} changed on the platform"
    )
    more = f" (and {len(differing) - 1} more)" if len(differing) > 1 else ""
    raise PlanOutOfDate(
        f"{path} is out of date: the live state changed since the plan was made: {change}{more}; nothing was applied: "
        f"make and review a new plan ({_again(plan, path)})"
    )


def _again(plan: DeployPlan, path: str) -> str:
    return f"mlcompile deploy {plan.spec} --target {plan.target} --dry-run --out-plan {path}"
