"""The small protocol every target implements, built-in or third-party."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any, ClassVar, Protocol, runtime_checkable

from mlcompile.diagnostics import Diagnostic
from mlcompile.plan.nodes import Origin, Plan

_SAFE_PATH = re.compile(r"^[A-Za-z0-9._-]+(/[A-Za-z0-9._-]+)*$")


@dataclass(frozen=True)
class OutputFile:
    """One file of a build: a relative POSIX path inside the profile's folder, the format it
    is in (manifest `kind`, e.g. `kfp.pipeline_spec`), and its bytes."""

    path: str
    kind: str
    content: bytes

    def __post_init__(self) -> None:
        if not _SAFE_PATH.match(self.path) or any(part in (".", "..") for part in self.path.split("/")):
            raise ValueError(f"unsafe output path {self.path!r}: relative, no '..', letters, digits, '.', '_', '-'")


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
    return (json.dumps(data, indent=2, sort_keys=True, ensure_ascii=False) + "\n").encode()
