"""The front door of the spec layer: files in, validated models out (or every diagnostic).

`load_system` validates the spec as written and, for each known profile, as merged with
that profile's overrides, so that one `validate` run reports the problems of every build."""

from __future__ import annotations

import functools
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

from pydantic import BaseModel, ValidationError

from mlcompile.diagnostics import Diagnostic, Severity, errors_in
from mlcompile.errors import SpecError
from mlcompile.spec.checks import check_characters, check_for_profile, check_literal_secrets, check_system, check_target
from mlcompile.spec.loader import Document, SourceMap, display_path, kind_problem, load_yaml_file
from mlcompile.spec.models import MLSystem
from mlcompile.spec.overrides import apply_overrides
from mlcompile.spec.policy import check_policy, check_policy_profile
from mlcompile.spec.profile_model import TargetProfile
from mlcompile.spec.salvage import salvage
from mlcompile.spec.structure import structural_diagnostics

M = TypeVar("M", bound=BaseModel)


@dataclass(frozen=True)
class Profile:
    """A loaded target profile."""

    target: TargetProfile
    document: Document

    @property
    def name(self) -> str:
        return self.target.metadata.name


@dataclass(frozen=True)
class ResolvedSystem:
    """The system spec as it is built for one profile (overrides merged and re-validated)."""

    system: MLSystem
    document: Document
    profile: Profile | None

    @property
    def spec_dir(self) -> Path:
        return Path(self.document.file).parent


@dataclass
class SystemBundle:
    base: ResolvedSystem
    per_profile: dict[str, ResolvedSystem] = field(default_factory=dict)
    warnings: list[Diagnostic] = field(default_factory=list)


def validate_model(document: Document, model: type[M]) -> tuple[M | None, list[Diagnostic]]:
    try:
        return model.model_validate(document.data), []
    except ValidationError as exc:
        return None, structural_diagnostics(document, model, exc)


def load_profile(path: str | os.PathLike[str]) -> Profile:
    document = load_yaml_file(path, display_path(path))
    problems = kind_problem(document, "Target")
    if problems:
        raise SpecError(problems)
    target, diagnostics = validate_model(document, TargetProfile)
    diagnostics += check_literal_secrets(document.data, document.source_map)
    diagnostics += check_characters(document.data, document.source_map)
    if target is not None:
        from mlcompile.targets.registry import target_names

        diagnostics += check_target(target, document.source_map, target_names())
        diagnostics += check_policy_profile(target, document.source_map)
    if errors_in(diagnostics) or target is None:
        raise SpecError(diagnostics)
    return Profile(target=target, document=document)


def load_profiles(paths: Iterable[str | os.PathLike[str]]) -> list[Profile]:
    """Every profile, or one SpecError with the diagnostics of all of them."""
    profiles: list[Profile] = []
    diagnostics: list[Diagnostic] = []
    names: dict[str, Profile] = {}
    for path in paths:
        try:
            profile = load_profile(path)
        except SpecError as exc:
            diagnostics += exc.diagnostics
            continue
        if profile.name in names:
            diagnostics.append(
                profile.document.source_map.diagnostic(
                    ("metadata", "name"), f"profile name '{profile.name}' is also used by {names[profile.name].document.file}"
                )
            )
            continue
        names[profile.name] = profile
        profiles.append(profile)
    if diagnostics:
        raise SpecError(diagnostics)
    return profiles


def profile_names_beside(profile_paths: Iterable[str | os.PathLike[str]]) -> set[str]:
    """Names of all profiles in the folders the given profiles live in: profiles are kept
    together, and an override may name any of them even when only one is being built.
    Files that do not read as profiles are skipped here (they are not being built)."""
    names: set[str] = set()
    for folder in sorted({Path(p).parent for p in profile_paths}):
        for candidate in sorted(folder.glob("*.y*ml")):
            try:
                data = load_yaml_file(candidate).data
            except SpecError:
                continue
            metadata = data.get("metadata")
            if data.get("kind") == "Target" and isinstance(metadata, dict) and isinstance(metadata.get("name"), str):
                names.add(metadata["name"])
    return names


def discover_profiles(spec_path: str | os.PathLike[str]) -> list[str] | None:
    """Profiles in a `targets/` folder beside the spec, or None when there is no such folder."""
    folder = Path(spec_path).parent / "targets"
    if not folder.is_dir():
        return None
    return sorted(str(p) for p in folder.iterdir() if p.suffix in (".yaml", ".yml") and p.is_file())


def _validate_system(
    document: Document,
    profile_names: Sequence[str] | None,
    profile: Profile | None,
    policy_severity: Severity = "error",
    estimator_packages: Sequence[str] | None = None,
) -> tuple[MLSystem | None, list[Diagnostic]]:
    def cross_references(system: MLSystem, source_map: SourceMap, *, salvaged: bool = False) -> list[Diagnostic]:
        found = check_system(system, source_map, profile_names=profile_names, estimator_packages=estimator_packages)
        if profile is not None:
            found += check_for_profile(system, source_map, profile.target)
            found += check_policy(system, document.data, source_map, profile.target, severity=policy_severity, salvaged=salvaged)
        return found

    system, diagnostics = validate_model(document, MLSystem)
    if system is not None:
        diagnostics += cross_references(system, document.source_map)
    else:  # still report the reference errors of the parts that did validate
        salvaged = functools.partial(cross_references, salvaged=True)
        diagnostics += salvage(document.data, MLSystem, document.source_map, salvaged)
    return system, diagnostics


def load_system(
    spec_path: str | os.PathLike[str],
    profiles: Sequence[Profile] | None = None,
    profile_names: Iterable[str] | None = None,
    *,
    policy_severity: Severity = "error",
) -> SystemBundle:
    """Validate the spec as written and as merged for each profile; every diagnostic of every
    variant is collected before anything is raised. `profile_names` (all known profiles,
    not only those built) makes an override that names none of them an error. Each profile's
    policy is checked on the spec as merged for it; `policy_severity="warning"` (--warn-only)
    reports its violations without failing."""
    document = load_yaml_file(spec_path, display_path(spec_path))
    problems = kind_problem(document, "MLSystem")
    if problems:
        raise SpecError(problems)
    names = sorted(set(profile_names) | {p.name for p in profiles or ()}) if profile_names is not None else None
    diagnostics = check_literal_secrets(document.data, document.source_map)
    diagnostics += check_characters(document.data, document.source_map)
    # the spec as written may name an estimator of any package some profile allows
    allowed = sorted({package for p in profiles or () for package in p.target.estimator_packages})
    system, found = _validate_system(document, names, None, estimator_packages=allowed)
    diagnostics += found
    bundle_profiles: dict[str, ResolvedSystem] = {}
    for profile in profiles or ():
        merged = apply_overrides(document, profile.name)
        merged_system, found = _validate_system(merged, names, profile, policy_severity)
        diagnostics += found
        if merged_system is not None:
            bundle_profiles[profile.name] = ResolvedSystem(merged_system, merged, profile)
    if errors_in(diagnostics) or system is None:
        raise SpecError(diagnostics)
    return SystemBundle(
        base=ResolvedSystem(system, document, None),
        per_profile=bundle_profiles,
        warnings=[d for d in diagnostics if d.severity == "warning"],
    )
