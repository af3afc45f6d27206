"""From files to builds: validate, lower per profile, check and render through each target,
then write every profile's folder atomically with its manifest.

Nothing is written unless every profile compiled: a failed build leaves the previous
output as it was."""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mlcompile import __version__
from mlcompile.diagnostics import Diagnostic, Severity, errors_in
from mlcompile.errors import MLCompileError, SpecError, TargetFailed, UsageError
from mlcompile.spec.loader import Document, SourceMap
from mlcompile.spec.models import PLATFORM_NAMES
from mlcompile.spec.models import TargetProfile as TargetModel
from mlcompile.spec.resolve import (
    Profile,
    SystemBundle,
    discover_profiles,
    load_profiles,
    load_system,
    profile_names_beside,
)
from mlcompile.targets.base import OutputFile, Platform, capability_refusals, is_safe_relative_path, json_bytes
from mlcompile.targets.registry import describe_entry_point, install_hint, load_target, missing_modules, runs_here, target_names

if TYPE_CHECKING:
    from mlcompile.limits import Limit
    from mlcompile.plan.nodes import Plan

IMPLICIT_LOCAL_PROFILE = "local"
MANIFEST = "manifest.json"


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
        target = _installed_target(profile, required=render)
        try:
            plan, warnings = lower(resolved, profile, None if isinstance(target, Diagnostic) else target, git_commit=commit)
        except SpecError as exc:
            diagnostics += exc.diagnostics
            continue
        diagnostics += warnings
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
        return Compilation(None, list(profile_set.profiles), cached, [])
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
    from mlcompile.secrets import refuse_leaks

    refuse_leaks(results, out_dir)


STAGING_PREFIX = ".mlcompile-build-"
LOCK_FILE = ".mlcompile.lock"
LOCK_TIMEOUT_ENV = "MLCOMPILE_LOCK_TIMEOUT"
DEFAULT_LOCK_TIMEOUT = 300.0  # seconds a build waits for another one writing the same --out
# Test-only fault injection point: with MLCOMPILE_TEST_PAUSE=<point>[:<seconds>] the build
# prints "paused at <point>" on stderr and sleeps (an hour, or the seconds given), so that a
# test can interrupt it, or start a second build, at a known moment. Points: "written" (every
# file staged, nothing swapped), "swapped-<n>" (n profile folders swapped in).
TEST_PAUSE_ENV = "MLCOMPILE_TEST_PAUSE"


def safe_folder_name(name: str, what: str) -> str:
    """A name that becomes one folder of --out: a single safe path part, not hidden (hidden
    names are mlcompile's own: staging folders and the lock file). The spec's patterns already
    refuse anything else with a located diagnostic; this is the writer's last line of defence."""
    if not is_safe_relative_path(name) or "/" in name or name.startswith("."):
        raise UsageError(f"refusing to write {what} {name!r}: not a safe folder name (letters, digits, '.', '_', '-')")
    return name


@contextmanager
def output_errors(out: Path) -> Iterator[None]:
    """An OSError while writing the build (a read-only or full disk, a folder where the lock
    file goes, a permission) is the environment's, not a bug: exit status 2, with the path
    and the reason."""
    try:
        yield
    except OSError as exc:
        where = exc.filename if exc.filename is not None else out
        reason = exc.strerror or type(exc).__name__
        raise UsageError(f"cannot write the build into {out}: {where}: {reason}") from exc


def _is_previous_build(folder: Path, name: str) -> bool:
    """Whether `folder` is what a build of profile `name` wrote: a real folder whose
    manifest.json is mlcompile's, for that profile. (Files added to a build since, such as a
    tool's caches, go with it: the folder is the build's.)"""
    import json

    if folder.is_symlink() or not folder.is_dir():
        return False
    try:
        data = json.loads((folder / MANIFEST).read_bytes())
        return isinstance(data["files"], list) and "mlcompile_version" in data and data["profile"] == name
    except (OSError, ValueError, TypeError, KeyError):
        return False


def refuse_foreign_folders(results: Sequence[Compiled], out_dir: str | os.PathLike[str]) -> None:
    """A build replaces `out/<profile>/` whole: only ever what an earlier build wrote there.
    Anything else of that name (a file, a symlink, a folder without mlcompile's manifest for
    that profile) is the user's: refused, with exit status 2."""
    out = Path(out_dir)
    for result in results:
        folder = out / safe_folder_name(result.profile.name, "profile")
        if (folder.exists() or folder.is_symlink()) and not _is_previous_build(folder, result.profile.name):
            raise UsageError(
                f"{folder} exists and is not an earlier build of profile '{result.profile.name}' "
                f"(no mlcompile {MANIFEST} for that profile in it): the build would replace it; "
                "nothing was written. Move it away, or build into another --out"
            )


class _Resumed(Exception):
    """SIGUSR1 ended a test pause early."""


def _resume(*_: Any) -> None:
    raise _Resumed


def _pause_for_tests(point: str) -> None:
    wanted, _, seconds = (os.environ.get(TEST_PAUSE_ENV) or "").partition(":")
    if wanted == point:
        import signal
        import sys
        import time

        # SIGUSR1 resumes the build: a test that has seen what it waited for need not guess
        # how long a loaded machine takes to get there.
        previous = signal.signal(signal.SIGUSR1, _resume)
        print(f"paused at {point}", file=sys.stderr, flush=True)
        try:
            time.sleep(float(seconds or 3600))
        except _Resumed:
            pass
        finally:
            signal.signal(signal.SIGUSR1, previous)


class BuildLock:
    """An exclusive lock on `out/.mlcompile.lock` (flock) held while a build writes into
    `out`, so that two builds into the same folder never interleave. A second build waits
    for the first (saying so once) up to MLCOMPILE_LOCK_TIMEOUT seconds, then gives up with
    exit status 2. The lock file is removed on release; a waiter that wakes up holding the
    lock of a removed file takes the lock again on the new one."""

    def __init__(self, out: Path, on_wait: Any = None):
        self.path = out / LOCK_FILE
        self.on_wait = on_wait
        self.fd: int | None = None

    def __enter__(self) -> BuildLock:
        import fcntl
        import time

        timeout = float(os.environ.get(LOCK_TIMEOUT_ENV) or DEFAULT_LOCK_TIMEOUT)
        deadline = time.monotonic() + timeout
        told = False
        while True:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
            try:
                while True:
                    try:
                        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                        break
                    except BlockingIOError:
                        if time.monotonic() >= deadline:
                            raise UsageError(
                                f"another mlcompile build is writing into {self.path.parent} (lock {self.path}); "
                                f"gave up after {timeout:g}s ({LOCK_TIMEOUT_ENV} sets how long to wait)"
                            ) from None
                        if not told and self.on_wait is not None:
                            self.on_wait(f"waiting for another mlcompile build writing into {self.path.parent} …")
                            told = True
                        time.sleep(0.05)
                try:
                    same = os.fstat(fd).st_ino == os.stat(self.path).st_ino
                except FileNotFoundError:
                    same = False
                if same:
                    self.fd = fd
                    return self
            except BaseException:
                os.close(fd)
                raise
            os.close(fd)  # the holder removed this file on release: lock the new one

    def __exit__(self, *exc: Any) -> None:
        if self.fd is not None:
            # unlinked while still held: a waiter on this inode sees it is gone and retries
            self.path.unlink(missing_ok=True)
            os.close(self.fd)
            self.fd = None


def _exchange(staged: Path, final: Path) -> bool:
    """Swap two paths atomically (Linux renameat2 RENAME_EXCHANGE): `final` is never missing.
    False when the platform or filesystem cannot (the caller falls back to two renames)."""
    import ctypes
    import sys

    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        renameat2 = libc.renameat2
    except (OSError, AttributeError):
        return False
    at_fdcwd, rename_exchange = -100, 2
    if renameat2(at_fdcwd, os.fsencode(staged), at_fdcwd, os.fsencode(final), rename_exchange) == 0:
        return True
    return False


def _recover(out: Path) -> None:
    """Finish what an interrupted build left (called under the lock, so no build is running):
    a profile folder moved aside but not replaced is moved back, and staging folders go."""
    for staging in sorted(out.glob(STAGING_PREFIX + "*")):
        for retired in sorted(staging.glob(".retired-*")):
            final = out / retired.name.removeprefix(".retired-")
            if not final.exists():
                retired.rename(final)
        shutil.rmtree(staging, ignore_errors=True)


def write_builds(results: Sequence[Compiled], out_dir: str | os.PathLike[str], *, on_wait: Any = None) -> list[Path]:
    """Write each profile to `out_dir/<profile>/` atomically: everything is written into a
    temporary folder inside `out_dir` (same filesystem), then each profile folder is swapped
    in by rename. An interruption before the swap leaves the previous build byte for byte;
    each profile folder is replaced in one step, so it is always one whole build. Two builds
    into the same `out_dir` take turns (BuildLock); the next build removes what an
    interrupted one left (its hidden `.mlcompile-build-*` staging folder)."""
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise UsageError(f"--out {out} exists and is not a directory")
    if out.is_symlink() and not out.exists():
        raise UsageError(f"--out {out} is a symbolic link to {os.readlink(out)}, which does not exist")
    refuse_credential_leaks(results, out_dir)
    with output_errors(out):
        refuse_foreign_folders(results, out)
        return _write(results, out, on_wait)


def _write(results: Sequence[Compiled], out: Path, on_wait: Any) -> list[Path]:
    out.mkdir(parents=True, exist_ok=True)
    names = [safe_folder_name(result.profile.name, "profile") for result in results]
    written: list[Path] = []
    with BuildLock(out, on_wait):
        _recover(out)
        refuse_foreign_folders(results, out)  # again under the lock: another build may have run
        staging = Path(tempfile.mkdtemp(prefix=STAGING_PREFIX, dir=out))
        root = staging.resolve()  # a symlinked --out resolves here too
        try:
            for name, result in zip(names, results):
                folder = staging / name
                for output in [*result.files, manifest(result)]:
                    destination = folder / output.path
                    # last line of defence: OutputFile checked the path; check where it lands
                    if not is_safe_relative_path(output.path) or not destination.resolve().is_relative_to(root / name):
                        raise UsageError(f"refusing to write {output.path!r} outside {out / name}")
                    destination.parent.mkdir(parents=True, exist_ok=True)
                    destination.write_bytes(output.content)
            _pause_for_tests("written")
            for index, name in enumerate(names, 1):
                final = out / name
                staged = staging / name
                if not (final.is_dir() and not final.is_symlink() and _exchange(staged, final)):
                    if final.exists() or final.is_symlink():
                        final.rename(staging / f".retired-{name}")
                    staged.rename(final)
                written.append(final)
                _pause_for_tests(f"swapped-{index}")
        finally:
            _recover(out)  # on an exception between two renames, the previous folder goes back
    return written
