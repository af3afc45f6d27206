"""From files to builds: validate, lower per profile, check and render through each target,
then write every profile's folder atomically with its manifest.

Nothing is written unless every profile compiled: a failed build leaves the previous
output as it was."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mlcompile import __version__
from mlcompile.build_output import MANIFEST, safe_folder_name, write_folders
from mlcompile.diagnostics import Diagnostic, Severity, errors_in
from mlcompile.errors import MLCompileError, SpecError, TargetFailed, UsageError
from mlcompile.spec.loader import Document, SourceMap
from mlcompile.spec.models import PLATFORM_NAMES
from mlcompile.spec.profile_model import TargetProfile as TargetModel
from mlcompile.spec.resolve import (
    Profile,
    SystemBundle,
    discover_profiles,
    load_profiles,
    load_system,
    profile_names_beside,
)
from mlcompile.targets.base import OutputFile, Platform, json_bytes
from mlcompile.targets.capabilities import capability_refusals
from mlcompile.targets.registry import describe_entry_point, install_hint, load_target, missing_modules, runs_here, target_names

if TYPE_CHECKING:
    from mlcompile.limits import Limit
    from mlcompile.plan.nodes import Plan

IMPLICIT_LOCAL_PROFILE = "local"


@dataclass
class Compiled:
    """One profile's compiled result."""

    profile: Profile
    plan: Plan
    files: list[OutputFile] = field(default_factory=list)


@dataclass
class Compilation:
    bundle: SystemBundle | None  # None for a build read back from the cache (mlcompile.build_cache)
    profiles: list[Profile]
    results: list[Compiled]
    warnings: list[Diagnostic]

    @property
    def system(self) -> str:
        return self.bundle.base.system.metadata.name if self.bundle is not None else self.results[0].plan.system


def implicit_local_profile() -> ProfileSet:
    """The profile used when none is given (graph, quick looks): this machine."""
    data = {"apiVersion": "mlcompile/v1", "kind": "Target", "metadata": {"name": IMPLICIT_LOCAL_PROFILE}, "platform": "local"}
    document = Document(file="<implicit local profile>", data=data, source_map=SourceMap("<implicit local profile>"), sha256="")
    return ProfileSet([Profile(target=TargetModel.model_validate(data), document=document)], None)


@dataclass
class ProfileSet:
    """The profiles to compile for, and the names of every profile known beside them."""

    profiles: list[Profile]
    known_names: set[str] | None


def expand_profile_paths(targets: Sequence[str]) -> list[str]:
    """`--target` values: profile files, or folders standing for every profile in them."""
    paths: list[str] = []
    for target in targets:
        if os.path.isdir(target):
            paths += sorted(os.path.join(target, name) for name in os.listdir(target) if name.endswith((".yaml", ".yml")))
        else:
            paths.append(target)
    return paths


# How each command uses profiles: how many it acts on, which of those found beside the spec
# it can use, and what it does when there are none (see select_profiles).
_ONE_PROFILE = {"explain", "deploy", "plan", "graph", "run", "serve"}
_LOCAL_ONLY = {"graph", "run", "serve"}  # they look at, run or serve the system on this machine
_SPEC_ALONE = {"validate"}


def select_profiles(spec: str, targets: Sequence[str], command: str) -> ProfileSet:
    """The one rule by which every command finds its target profiles (docs/spec.md, "Which
    profiles a command uses"):

    1. `--target` given: exactly those (a folder stands for every profile in it);
    2. else the profiles in `targets/` beside the spec (graph, run and serve: its
       `platform: local` ones);
    3. none found: validate checks the spec alone; graph, run and serve use this machine
       (an implicit local profile); build, diff, explain and deploy stop, saying so.

    A command that acts on one profile (explain, deploy, graph, run, serve) stops when the
    rule finds several, naming them."""
    found = resolve_profiles(spec, targets)
    if not targets and command in _LOCAL_ONLY:
        found = ProfileSet([p for p in found.profiles if runs_here(p.target.platform)], found.known_names)
    if not found.profiles:
        if command in _LOCAL_ONLY:
            return implicit_local_profile()
        if command not in _SPEC_ALONE:
            beside = Path(spec).parent / "targets"
            raise UsageError(f"{command} needs a target profile: pass --target PROFILE, or keep the profiles in {beside}/")
    if command in _ONE_PROFILE and len(found.profiles) > 1:
        names = ", ".join(p.name for p in found.profiles)
        raise UsageError(f"{command} acts on one profile and {len(found.profiles)} were found ({names}): choose one with --target PROFILE")
    return found


def resolve_profiles(spec: str, targets: Sequence[str]) -> ProfileSet:
    """Profiles named on the command line (files or folders of them), else those in
    `targets/` beside the spec."""
    paths = expand_profile_paths(targets) if targets else discover_profiles(spec)
    if paths is None:
        return ProfileSet([], None)
    return ProfileSet(load_profiles(paths), profile_names_beside(paths))


def expand_spec_patterns(specs: Sequence[str]) -> tuple[list[str], bool]:
    """SPEC arguments with glob patterns the shell left alone ('systems/*/mlcompile.yaml')
    expanded, sorted; and whether any argument was such a pattern. An existing file is taken
    as it is, even if its name looks like a pattern."""
    import glob

    paths: list[str] = []
    patterned = False
    for spec in specs:
        if not os.path.exists(spec) and glob.has_magic(spec):
            matches = sorted(glob.glob(spec, recursive=True))
            if not matches:
                raise UsageError(f"no spec matches {spec!r}")
            paths += matches
            patterned = True
        else:
            paths.append(spec)
    seen: set[str] = set()
    duplicates = sorted({p for p in paths if p in seen or seen.add(p)})  # type: ignore[func-returns-value]
    if duplicates:
        raise UsageError(f"spec given more than once: {', '.join(duplicates)}")
    return paths, patterned


def git_commit_of(path: str | os.PathLike[str]) -> str | None:
    """The commit checked out where `path` lives, or None outside a git checkout."""
    import subprocess

    folder = Path(path).resolve().parent
    try:
        found = subprocess.run(["git", "-C", str(folder), "rev-parse", "HEAD"], capture_output=True, text=True, timeout=10, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return None
    commit = found.stdout.strip()
    return commit if found.returncode == 0 and len(commit) == 40 else None


def compile_system(spec: str, profile_set: ProfileSet, *, render: bool, git_commit: str | None = "auto", policy_severity: Severity = "error") -> Compilation:
    """Validate the spec for every profile, lower it, let each target check (and render)
    it. All diagnostics of all profiles are gathered before anything is raised.
    `git_commit` is recorded as lineage: "auto" asks git (when rendering), None omits it.
    `policy_severity="warning"` reports violations of the profiles' policies without failing."""
    profiles = profile_set.profiles
    bundle = load_system(spec, profiles, profile_set.known_names, policy_severity=policy_severity)
    commit = (git_commit_of(spec) if render else None) if git_commit == "auto" else git_commit
    diagnostics: list[Diagnostic] = list(bundle.warnings)
    results: list[Compiled] = []
    for profile in profiles:
        from mlcompile.plan.lower import lower  # only with profiles: a bare validate needs no plan

        resolved = bundle.per_profile[profile.name]
        try:
            plan, warnings = lower(resolved, profile, git_commit=commit)
        except SpecError as exc:
            diagnostics += exc.diagnostics
            continue
        diagnostics += warnings
        target = _installed_target(profile, required=render)
        if isinstance(target, Diagnostic):
            diagnostics.append(target)
            if target.severity == "warning":
                results.append(Compiled(profile, plan))  # validated and lowered, not checked by the platform
            continue
        # what the platform refuses: its own check, and what it lacks of the declared capabilities
        problems = [*_call_target(target, "check", plan), *capability_refusals(target, plan)]
        diagnostics += problems
        if errors_in(problems):
            continue
        result = Compiled(profile, plan)
        if render:
            from mlcompile.cost import COST_FILE, cost_file  # with decimal: not needed to validate

            result.files = _call_target(target, "render", plan)
            paths = [f.path for f in result.files]
            if MANIFEST in paths or COST_FILE in paths or len(set(paths)) != len(paths):
                raise UsageError(f"target '{target.name}' produced a duplicate or reserved file name: {sorted(paths)}")
            # every build states what it may cost, whatever the target (docs/cost.md)
            result.files.append(cost_file(plan))
            diagnostics += size_warnings(result.files, resolved.document, profile.name, target.size_limits)
        results.append(result)
    if errors_in(diagnostics):
        raise SpecError(diagnostics)
    return Compilation(bundle, list(profiles), results, [d for d in diagnostics if d.severity == "warning"])


def size_warnings(files: Sequence[OutputFile], document: Document, profile: str, size_limits: tuple[Limit, ...]) -> list[Diagnostic]:
    """A warning, at the spec's metadata.name, for each artifact past 80% of its platform's
    size limit (`Platform.size_limits`)."""
    from mlcompile import limits

    found = []
    for output in files:
        over = limits.over_warning(output.kind, output.content, size_limits)
        if over is None:
            continue
        limit, size = over
        found.append(
            document.source_map.diagnostic(
                ("metadata", "name"),
                f"{profile}/{output.path} is {size:,} {limit.unit}, {size / limit.limit:.0%} of the {limit.limit:,}-{limit.unit[:-1]} "
                f"limit of a {limit.what} ({output.kind})",
                hint="split the system (fewer features, steps or pipelines per spec) before it reaches the limit and the platform rejects it",
                severity="warning",
            )
        )
    return found


def compile_cached(
    spec: str, profile_set: ProfileSet, *, cache_dir: str | os.PathLike[str] | None, git_commit: str | None = "auto", policy_severity: Severity = "error"
) -> Compilation:
    """compile_system (rendered), or the build of the same inputs from the cache folder
    (warnings were shown when it was built); a new build is stored there."""
    if cache_dir is None or not profile_set.profiles:
        return compile_system(spec, profile_set, render=True, git_commit=git_commit, policy_severity=policy_severity)
    from mlcompile.build_cache import BuildCache, build_key

    commit = git_commit_of(spec) if git_commit == "auto" else git_commit
    try:
        spec_bytes = Path(spec).read_bytes()
    except OSError:  # let the loader say what is wrong with it
        return compile_system(spec, profile_set, render=True, git_commit=commit, policy_severity=policy_severity)
    cache, key = BuildCache(cache_dir), build_key(spec_bytes, profile_set, git_commit=commit, policy_severity=policy_severity)
    cached = cache.get(key, profile_set)
    if cached is not None:
        results = [Compiled(profile, plan, files) for profile, (plan, files) in zip(profile_set.profiles, cached, strict=True)]
        return Compilation(None, list(profile_set.profiles), results, [])
    compilation = compile_system(spec, profile_set, render=True, git_commit=commit, policy_severity=policy_severity)
    cache.put(key, compilation.results)
    return compilation


def compile_systems(
    specs: Sequence[str],
    profile_set: ProfileSet,
    *,
    render: bool,
    git_commit: str | None = "auto",
    policy_severity: Severity = "error",
    cache_dir: str | os.PathLike[str] | None = None,
) -> list[Compilation]:
    """compile_system for each spec, in order; the diagnostics of every spec are gathered and
    raised together, so nothing is written unless all specs compiled. With `cache_dir`, an
    unchanged system is read from the cache instead of being built again."""
    import gc

    compilations: list[Compilation] = []
    diagnostics: list[Diagnostic] = []
    for spec in specs:
        try:
            if render and cache_dir is not None:
                compilations.append(compile_cached(spec, profile_set, cache_dir=cache_dir, git_commit=git_commit, policy_severity=policy_severity))
            else:
                compilations.append(compile_system(spec, profile_set, render=render, git_commit=git_commit, policy_severity=policy_severity))
        except SpecError as exc:
            diagnostics += exc.diagnostics
        if len(specs) > 1:
            # The SDKs' modules and the systems compiled so far live until the process ends:
            # move them out of the collector's generations, else every full collection walks
            # them again (measured: a third of the per-system cost of a monorepo build).
            gc.freeze()
    if errors_in(diagnostics):
        raise SpecError(diagnostics + [w for c in compilations for w in c.warnings])
    return compilations


def _call_target(target: Platform, stage: str, plan: Plan) -> Any:
    """A target's check or render; an exception from it names the target's package."""
    try:
        return getattr(target, stage)(plan)
    except MLCompileError:
        raise
    except Exception as exc:
        if isinstance(exc, ImportError) and exc.name and exc.name.partition(".")[0] != "mlcompile":
            # an SDK the target imports without listing it in `requires`
            raise UsageError(f"target '{target.name}' needs {exc.name}, which is not installed: {install_hint(target)}") from exc
        raise TargetFailed(target.name, describe_entry_point(target.name), f"{stage}()", exc) from exc


def _installed_target(profile: Profile, *, required: bool) -> Platform | Diagnostic:
    """The profile's target, or a diagnostic at its `platform:` saying it is not installed
    (an error when building, a warning when only validating: the spec was still checked)."""
    platform = profile.target.platform
    if platform in target_names():
        target = load_target(platform)
        missing = missing_modules(target) if required else ()
        if not missing:
            return target
        return profile.document.source_map.diagnostic(
            ("platform",),
            f"target '{platform}' needs {', '.join(missing)}, which {'is' if len(missing) == 1 else 'are'} not installed",
            hint=install_hint(target),
        )
    extra = f"pip install 'mlcompile[{platform}]'" if platform in PLATFORM_NAMES else "install the package that provides it"
    return profile.document.source_map.diagnostic(
        ("platform",),
        f"target '{platform}' is not installed" + ("" if required else ": its platform checks were skipped"),
        hint=f"installed targets: {', '.join(target_names())}; {extra}",
        severity="error" if required else "warning",
    )


def manifest(result: Compiled) -> OutputFile:
    files = sorted(result.files, key=lambda f: f.path)
    data = {
        "mlcompile_version": __version__,
        "spec_sha256": result.plan.spec_sha256,
        "profile_sha256": result.profile.document.sha256,
        "profile": result.profile.name,
        "platform": result.profile.target.platform,
        "files": [{"path": f.path, "kind": f.kind, "sha256": hashlib.sha256(f.content).hexdigest()} for f in files],
    }
    if result.plan.lineage.git_commit:  # lineage in one place, for `diff --base-dir` to set aside
        data["git_commit"] = result.plan.lineage.git_commit
    return OutputFile(MANIFEST, "mlcompile.manifest", json_bytes(data))


def refuse_credential_leaks(results: Sequence[Compiled], out_dir: str | os.PathLike[str]) -> None:
    """No file that looks like it holds a credential is written (see mlcompile.secrets)."""
    from mlcompile.secret_checks import refuse_leaks

    refuse_leaks(results, out_dir)


def write_builds(results: Sequence[Compiled], out_dir: str | os.PathLike[str], *, on_wait: Any = None) -> list[Path]:
    """Write each profile's files and manifest to `out_dir/<profile>/`, atomically and under a
    lock (mlcompile.build_output), after checking that none looks like it holds a credential."""
    refuse_credential_leaks(results, out_dir)
    names = [safe_folder_name(result.profile.name, "profile") for result in results]  # before a manifest reads the profile
    return write_folders([(name, [*result.files, manifest(result)]) for name, result in zip(names, results)], out_dir, on_wait=on_wait)
