"""Where the two sides of a diff come from: the working tree, a git ref (`git show REF:path`
of the spec and the profiles, materialised in a temporary folder), or an earlier --out folder."""

from __future__ import annotations

import json
import os
import subprocess
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path

from mlcompile.build import Compilation, compile_system, resolve_profiles
from mlcompile.diagnostics import Diagnostic, Severity
from mlcompile.diff.engine import BuildSide
from mlcompile.errors import SpecError, UsageError
from mlcompile.plan.serialize import plan_from_data


def sides_of(compilation: Compilation) -> dict[str, BuildSide]:
    sides = {}
    for result in compilation.results:
        side = BuildSide(platform=result.profile.target.platform, plan=result.plan)
        for output in result.files:
            side.files[output.path] = output.content
            side.kinds[output.path] = output.kind
        sides[result.profile.name] = side
    return sides


def build_working_tree(
    spec: str, targets: Sequence[str], policy_severity: Severity = "error", on_warnings: Callable[[Sequence[Diagnostic]], None] | None = None
) -> dict[str, BuildSide]:
    # Lineage's git commit is left out on both sides: it would differ on every commit.
    compilation = compile_system(spec, resolve_profiles(spec, targets), render=True, git_commit=None, policy_severity=policy_severity)
    if on_warnings is not None:  # the change under review: its warnings (policies under --warn-only) are the reviewer's business
        on_warnings(compilation.warnings)
    return sides_of(compilation)


def _git(args: Sequence[str], cwd: Path) -> subprocess.CompletedProcess[bytes]:
    try:
        return subprocess.run(["git", *args], cwd=cwd, capture_output=True, timeout=60, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise UsageError(f"cannot run git: {exc}") from exc


def build_git_ref(ref: str, spec: str, targets: Sequence[str], profile_names: Sequence[str], policy_severity: Severity = "error") -> dict[str, BuildSide]:
    """Build the spec and profiles as they were at `ref`. A profile or spec that did not
    exist there builds as nothing (everything shows as added)."""
    spec_path = Path(spec).resolve()
    top = _git(["rev-parse", "--show-toplevel"], spec_path.parent)
    if top.returncode != 0:
        raise UsageError(f"--base {ref}: {spec} is not inside a git checkout")
    root = Path(top.stdout.decode().strip())
    if _git(["rev-parse", "--verify", "--quiet", f"{ref}^{{commit}}"], root).returncode != 0:
        raise UsageError(f"--base {ref}: no such git revision")
    wanted = [spec_path, *(Path(t).resolve() for t in targets)]
    folders = {p.parent for p in wanted[1:]} | {spec_path.parent / "targets"}
    with tempfile.TemporaryDirectory(prefix="mlcompile-diff-base-") as scratch:
        base_root = Path(scratch)
        paths = {_relative(p, root) for p in wanted}
        for folder in folders:
            listed = _git(["ls-tree", "--name-only", f"{ref}:{_relative(folder, root)}"], root) if folder.is_relative_to(root) else None
            if listed is not None and listed.returncode == 0:
                paths |= {f"{_relative(folder, root)}/{name}".lstrip("/") for name in listed.stdout.decode().split() if name.endswith((".yaml", ".yml"))}
        for relative in sorted(paths):
            shown = _git(["show", f"{ref}:{relative}"], root)
            if shown.returncode == 0:
                destination = base_root / relative
                destination.parent.mkdir(parents=True, exist_ok=True)
                destination.write_bytes(shown.stdout)
        base_spec = base_root / _relative(spec_path, root)
        if not base_spec.exists():
            return {}
        base_targets = [str(base_root / _relative(Path(t).resolve(), root)) for t in targets]
        present = [t for t in base_targets if Path(t).exists()]
        try:
            return build_working_tree(str(base_spec), present, policy_severity) if present else {}
        except SpecError as exc:
            raise SpecError([replace(d, file=f"{ref}:{_strip(d.file, base_root)}") for d in exc.diagnostics]) from None


def _relative(path: Path, root: Path) -> str:
    return path.resolve().relative_to(root).as_posix() if path.resolve().is_relative_to(root) else path.as_posix()


def _strip(file: str, base_root: Path) -> str:
    try:
        return Path(file).resolve().relative_to(base_root.resolve()).as_posix()
    except ValueError:
        return file


def read_build_dir(base_dir: str | os.PathLike[str], profile_names: Sequence[str]) -> dict[str, BuildSide]:
    """An earlier `mlcompile build --out` folder: each profile's files, its manifest's
    kinds, and its plan when the build holds one (plan.json)."""
    root = Path(base_dir)
    if not root.is_dir():
        raise UsageError(f"--base-dir {base_dir}: no such folder")
    sides = {}
    for name in profile_names:
        folder = root / name
        manifest_path = folder / "manifest.json"
        if not manifest_path.is_file():
            continue
        manifest = json.loads(manifest_path.read_text())
        side = BuildSide(platform=manifest.get("platform", ""), plan=None)
        for entry in manifest.get("files", []):
            path = folder / entry["path"]
            if path.is_file():
                side.files[entry["path"]] = path.read_bytes()
                side.kinds[entry["path"]] = entry.get("kind", "")
        plan_file = folder / "plan.json"
        if plan_file.is_file():
            try:
                side.plan = plan_from_data(json.loads(plan_file.read_text()))
            except ValueError:
                side.plan = None  # a plan of another version: files are still compared
        sides[name] = side
    return sides
