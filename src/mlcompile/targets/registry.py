"""Targets are found through the `mlcompile.targets` entry-point group — the built-ins too —
so that a third-party package adds a platform without touching mlcompile."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from typing import TYPE_CHECKING

from mlcompile.errors import UsageError
from mlcompile.targets.base import Platform

if TYPE_CHECKING:
    from importlib.metadata import EntryPoint

GROUP = "mlcompile.targets"


@cache
def _entry_points() -> dict[str, EntryPoint]:
    # imported here: a validate without profiles asks for no target, and importlib.metadata
    # (with email, zipfile, csv) is a noticeable part of a cold start
    from importlib.metadata import entry_points

    found: dict[str, EntryPoint] = {}
    for entry_point in sorted(entry_points(group=GROUP), key=lambda ep: (ep.name, ep.value)):
        found.setdefault(entry_point.name, entry_point)
    return found


def target_names() -> list[str]:
    return sorted(_entry_points())


def describe_entry_point(name: str) -> str:
    """`module:Class from distribution` of a registered target, for messages."""
    entry_point = _entry_points().get(name)
    if entry_point is None:
        return "not installed"
    distribution = f" from {entry_point.dist.name}" if entry_point.dist is not None else ""
    return f"{entry_point.value}{distribution}"


@cache
def load_target(name: str) -> Platform:
    """The target registered under `name`, instantiated. Importing a target module must not
    import its cloud SDK: that happens inside `render`."""
    entry_point = _entry_points().get(name)
    if entry_point is None:
        installed = ", ".join(target_names()) or "none"
        raise UsageError(f"no target '{name}' is installed (installed: {installed})")
    try:
        target_class = entry_point.load()
    except Exception as exc:  # a broken third-party plugin must not take the CLI down
        raise UsageError(f"target '{name}' ({entry_point.value}) failed to load: {exc}") from exc
    target = target_class()
    if not isinstance(target, Platform):
        members = {*Platform.__annotations__, *(key for key, value in vars(Platform).items() if callable(value) and not key.startswith("_"))}
        missing = sorted(member for member in members if not hasattr(target, member))
        raise UsageError(
            f"target '{name}' ({entry_point.value}) does not implement the Platform protocol (missing: {', '.join(missing)}): "
            "subclass mlcompile.targets.base.PlatformBase"
        )
    return target


def platform_named(name: str) -> Platform | None:
    """The installed platform `name`, or None (not installed, or it fails to load)."""
    try:
        return load_target(name) if name in _entry_points() else None
    except UsageError:
        return None


def runs_here(name: str) -> bool:
    """Whether platform `name` runs on this machine (`mlcompile run`: no charge, local files)."""
    platform = platform_named(name)
    return platform is not None and platform.runs_on_this_machine


@dataclass(frozen=True)
class TargetInfo:
    name: str
    module: str
    distribution: str | None
    extra: str | None
    missing: tuple[str, ...]  # required modules that are not installed

    @property
    def ready(self) -> bool:
        return not self.missing


def describe_targets() -> list[TargetInfo]:
    infos = []
    for name, entry_point in _entry_points().items():
        distribution = entry_point.dist.name if entry_point.dist is not None else None
        try:
            target = load_target(name)
        except UsageError:
            infos.append(TargetInfo(name, entry_point.value, distribution, None, ("<failed to load>",)))
            continue
        infos.append(TargetInfo(name, entry_point.value, distribution, target.extra, missing_modules(target)))
    return infos


def missing_modules(target: Platform) -> tuple[str, ...]:
    """The modules a target needs (`requires`) that are not installed, found without importing them."""
    return tuple(m for m in target.requires if not _importable(m))


def install_hint(target: Platform) -> str:
    """How to install what a target needs: its pip extra, else its own package."""
    return f"pip install 'mlcompile[{target.extra}]'" if target.extra else f"install the package that provides target '{target.name}'"


def _importable(module: str) -> bool:
    import importlib.util

    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):
        return False
