"""`mlcompile diff` of one spec or many (a monorepo: 'systems/*/mlcompile.yaml').

A system whose spec and profiles are byte for byte what they were at the base is not built
at all: its builds cannot differ (a build depends on nothing else, mlcompile.build_cache).
The base's bytes of every spec and profile are read from git in one process, so that a pull
request touching one system of a hundred costs about the diff of that one system."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

from mlcompile.build import expand_profile_paths, load_profiles
from mlcompile.diagnostics import Diagnostic, Severity
from mlcompile.diff.engine import DiffReport, ProfileDiff, diff_builds
from mlcompile.diff.sources import build_git_ref, build_working_tree, read_build_dir
from mlcompile.errors import UsageError
from mlcompile.plan.nodes import Plan
from mlcompile.spec.resolve import discover_profiles


@dataclass(frozen=True)
class DiffRequest:
    specs: Sequence[str]
    targets: Sequence[str]
    base_ref: str | None = None
    base_dir: str | None = None
    policy_severity: Severity = "error"
    cache_dir: str | None = None
    on_warnings: Callable[[Sequence[Diagnostic]], None] | None = None


def diff_specs(request: DiffRequest) -> tuple[DiffReport, dict[str, Plan]]:
    """The report for every spec, and the working tree's plans (by profile, or by
    system/profile when there are several specs) for the comment's DAGs."""
    if request.base_ref and request.base_dir:
        raise UsageError("give --base or --base-dir, not both")
    label = request.base_dir or request.base_ref or "HEAD"
    several = len(request.specs) > 1
    inputs = {spec: _profile_paths(spec, request.targets) for spec in request.specs}
    unchanged = set() if request.base_dir else _unchanged_at(label, inputs)
    profiles: list[ProfileDiff] = []
    plans: dict[str, Plan] = {}
    loaded: dict[tuple[str, ...], list[tuple[str, str]]] = {}
    for spec, profile_paths in inputs.items():
        if spec in unchanged:
            profiles += _unchanged_profiles(spec, profile_paths, loaded)
            continue
        head = build_working_tree(spec, profile_paths, request.policy_severity, request.on_warnings, cache_dir=request.cache_dir)
        system = next((side.plan.system for side in head.values() if side.plan is not None), Path(spec).parent.name)
        if request.base_dir:
            folder = Path(request.base_dir) / system if several else Path(request.base_dir)
            # a system new since the base build has no folder there: everything is added
            base = read_build_dir(folder, sorted(head)) if folder.is_dir() or not several else {}
        else:
            base = build_git_ref(label, spec, profile_paths, request.policy_severity, cache_dir=request.cache_dir)
        report = diff_builds(label, base, head)
        profiles += [replace(p, system=system) for p in report.profiles]
        plans.update({f"{system}/{name}" if several else name: side.plan for name, side in head.items() if side.plan is not None})
    profiles.sort(key=lambda p: (p.system, p.profile))
    return DiffReport(base=label, changed=any(p.changed for p in profiles), profiles=tuple(profiles)), plans


def _profile_paths(spec: str, targets: Sequence[str]) -> list[str]:
    paths = expand_profile_paths(targets) or discover_profiles(spec) or []
    if not paths:
        # the words of build.select_profiles, the rule every command follows
        raise UsageError(f"diff needs a target profile: pass --target PROFILE, or keep the profiles in {Path(spec).parent / 'targets'}/")
    return paths


def _inputs_of(spec: str, profile_paths: Sequence[str]) -> list[Path]:
    """Every file a build of `spec` reads: the spec, its profiles, and the profiles beside
    them (their names are valid references in the spec)."""
    folders = {Path(p).parent for p in profile_paths} | {Path(spec).parent / "targets"}
    beside = [p for folder in sorted(folders) if folder.is_dir() for p in sorted(folder.glob("*.y*ml"))]
    return [Path(spec), *(Path(p) for p in profile_paths), *beside]


def _unchanged_at(ref: str, inputs: dict[str, list[str]]) -> set[str]:
    """The specs whose every input is the same at `ref` as in the working tree."""
    if not inputs:
        return set()
    first = Path(next(iter(inputs))).resolve().parent
    top = _run(["git", "rev-parse", "--show-toplevel"], first)
    if top is None or top.returncode != 0:
        return set()  # not a checkout: build_git_ref says so
    root = Path(top.stdout.decode().strip()).resolve()
    files = {spec: _inputs_of(spec, paths) for spec, paths in inputs.items()}
    wanted = sorted({p.resolve() for paths in files.values() for p in paths if p.resolve().is_relative_to(root)})
    at_base = _cat_files(ref, root, [p.relative_to(root).as_posix() for p in wanted])
    if at_base is None:
        return set()
    unchanged = set()
    for spec, paths in files.items():
        same = True
        for path in paths:
            resolved = path.resolve()
            if not resolved.is_relative_to(root):
                same = False
                break
            try:
                same = at_base.get(resolved.relative_to(root).as_posix()) == resolved.read_bytes()
            except OSError:
                same = False
            if not same:
                break
        if same:
            unchanged.add(spec)
    return unchanged


def _run(command: list[str], cwd: Path, stdin: bytes | None = None) -> subprocess.CompletedProcess[bytes] | None:
    try:
        return subprocess.run(command, cwd=cwd, input=stdin, capture_output=True, timeout=120, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return None


def _cat_files(ref: str, root: Path, paths: Sequence[str]) -> dict[str, bytes] | None:
    """The bytes of each path at `ref` (missing paths left out), in one `git cat-file --batch`."""
    if any("\n" in p for p in paths):
        return None
    found = _run(["git", "cat-file", "--batch"], root, "".join(f"{ref}:{p}\n" for p in paths).encode())
    if found is None or found.returncode != 0:
        return None
    out, position, blobs = found.stdout, 0, {}
    for path in paths:
        end = out.index(b"\n", position)
        header = out[position:end].split()
        position = end + 1
        if len(header) != 3 or header[1] != b"blob":
            continue  # "<ref>:<path> missing" (or a folder): not at the base
        size = int(header[2])
        blobs[path] = out[position : position + size]
        position += size + 1
    return blobs


def _unchanged_profiles(spec: str, profile_paths: Sequence[str], loaded: dict[tuple[str, ...], list[tuple[str, str]]]) -> list[ProfileDiff]:
    """The report of a system that was not built: each profile, unchanged. `loaded` keeps the
    profiles' names and platforms (read once for all the specs that share them)."""
    key = tuple(os.path.abspath(p) for p in profile_paths)
    if key not in loaded:
        loaded[key] = [(p.name, p.target.platform) for p in load_profiles(profile_paths)]
    system = _system_name(spec)
    return [
        ProfileDiff(profile=name, platform=platform, impacts=(), resources=(), files=(), changed_steps=(), changed=False, system=system)
        for name, platform in loaded[key]
    ]


def _system_name(spec: str) -> str:
    """metadata.name of a spec that is not built (it is unchanged), read without validating."""
    import yaml

    try:
        data = yaml.load(Path(spec).read_bytes(), Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))  # noqa: S506 — a safe loader
        name = data["metadata"]["name"]
        if isinstance(name, str):
            return name
    except Exception:  # noqa: BLE001 — any spec that does not read: named by its folder
        pass
    return Path(spec).resolve().parent.name
