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
from typing import Any

from mlcompile.build import Compilation, compile_cached, resolve_profiles
from mlcompile.diagnostics import Diagnostic, Severity
from mlcompile.diff.engine import BuildSide
from mlcompile.diff.lineage import LineageValues
from mlcompile.errors import SpecError, UsageError
from mlcompile.plan.serialize import plan_from_data


def sides_of(compilation: Compilation) -> dict[str, BuildSide]:
    sides = {}
    for result in compilation.results:
        lineage = result.plan.lineage
        side = BuildSide(
            platform=result.profile.target.platform, plan=result.plan, lineage=LineageValues(lineage.spec_sha256, lineage.profile_sha256, lineage.git_commit)
        )
        for output in result.files:
            side.files[output.path] = output.content
            side.kinds[output.path] = output.kind
        sides[result.profile.name] = side
    return sides


def build_working_tree(
    spec: str,
    targets: Sequence[str],
    policy_severity: Severity = "error",
    on_warnings: Callable[[Sequence[Diagnostic]], None] | None = None,
    cache_dir: str | os.PathLike[str] | None = None,
) -> dict[str, BuildSide]:
    # Lineage's git commit is left out on both sides: it would differ on every commit.
    compilation = compile_cached(spec, resolve_profiles(spec, targets), cache_dir=cache_dir, git_commit=None, policy_severity=policy_severity)
    if on_warnings is not None:  # the change under review: its warnings (policies under --warn-only) are the reviewer's business
        on_warnings(compilation.warnings)
    return sides_of(compilation)


def _git(args: Sequence[str], cwd: Path) -> subprocess.CompletedProcess[bytes]:
    try:
        return subprocess.run(["git", *args], cwd=cwd, capture_output=True, timeout=60, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise UsageError(f"cannot run git: {exc}") from exc


def build_git_ref(
    ref: str, spec: str, targets: Sequence[str], policy_severity: Severity = "error", cache_dir: str | os.PathLike[str] | None = None
) -> dict[str, BuildSide]:
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
            return build_working_tree(str(base_spec), present, policy_severity, cache_dir=cache_dir) if present else {}
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
    kinds and lineage, and its plan when the build holds one (plan.json).

    The folder may come from anywhere (a CI artifact of another branch): a manifest is only
    trusted to name files inside its own profile folder. A path that leaves it (`../..`, an
    absolute path, a symbolic link out) or is not a regular file (`/proc/self/environ`, a
    device, a fifo) is refused, so that nothing outside the build is ever read and printed."""
    root = Path(base_dir)
    if not root.is_dir():
        raise UsageError(f"--base-dir {base_dir}: no such folder")
    sides = {}
    for name in profile_names:
        folder = root / name
        manifest_path = folder / "manifest.json"
        if folder.is_symlink():
            raise UsageError(f"--base-dir {base_dir}: refusing to follow {folder}: a symbolic link")
        if not manifest_path.is_file():
            continue
        raw = _read_bytes(manifest_path)
        manifest = _read_manifest(manifest_path, raw)
        lineage = LineageValues(
            spec_sha256=_hex(manifest.get("spec_sha256")), profile_sha256=_hex(manifest.get("profile_sha256")), git_commit=_hex(manifest.get("git_commit"))
        )
        side = BuildSide(platform=str(manifest.get("platform", "")), plan=None, lineage=lineage)
        entries: list[Any] = manifest.get("files", [])
        for index, entry in enumerate(entries):
            relative = entry.get("path") if isinstance(entry, dict) else None
            try:
                if not isinstance(relative, str):
                    raise _Refused("not a file path")
                path = _inside(folder, relative)
            except _Refused as refused:
                raise SpecError([_refusal(manifest_path, raw, index, relative, str(refused))]) from None
            if path is None:
                continue  # listed but gone: compares as removed
            side.files[relative] = path.read_bytes()
            side.kinds[relative] = str(entry.get("kind", ""))
        if "plan.json" in side.files:
            try:
                side.plan = plan_from_data(json.loads(side.files["plan.json"]))
            except ValueError:
                side.plan = None  # a plan of another version: files are still compared
        sides[name] = side
    return sides


def _read_bytes(path: Path) -> bytes:
    if path.is_symlink() or not path.is_file():
        raise UsageError(f"{path}: refusing to read a build manifest that is not a regular file")
    try:
        return path.read_bytes()
    except OSError as exc:
        raise UsageError(f"{path}: cannot read the build manifest: {exc.strerror or exc}") from None


def _read_manifest(path: Path, raw: bytes) -> dict[str, Any]:
    try:
        data = json.loads(raw)
    except ValueError as exc:
        raise UsageError(f"{path}: not a build manifest ({exc})") from None
    if not isinstance(data, dict) or not isinstance(data.get("files", []), list):
        raise UsageError(f"{path}: not a build manifest (expected an object with a list of files)")
    return data


def _hex(value: object) -> str | None:
    return value if isinstance(value, str) and value.isalnum() else None


class _Refused(Exception):
    """A manifest entry that names something other than a file of its own build."""


def _refusal(manifest_path: Path, raw: bytes, index: int, relative: object, reason: str) -> Diagnostic:
    """Where in the manifest the refused entry is: the line and column of its path."""
    text = raw.decode("utf-8", "replace")
    offset = text.find(json.dumps(relative)) if isinstance(relative, str) else -1
    line = text.count("\n", 0, offset) + 1 if offset >= 0 else 1
    col = offset - text.rfind("\n", 0, offset) if offset >= 0 else 1
    shown = json.dumps(relative)[:80] if isinstance(relative, str) else type(relative).__name__
    return Diagnostic(
        str(manifest_path),
        line,
        col,
        "error",
        f"files[{index}].path",
        f"refusing to read {shown}: {reason}",
        hint="--base-dir reads only the files a build wrote into its own profile folder; rebuild the base with `mlcompile build --out`",
    )


def _inside(folder: Path, relative: str) -> Path | None:
    """`folder/relative` when it is a regular file inside `folder` (None when it is missing);
    anything else is refused."""
    import stat

    candidate = Path(relative)
    if not relative or candidate.is_absolute() or ".." in candidate.parts or "\\" in relative or "\0" in relative:
        raise _Refused("a build's files are inside its own folder")
    path = folder / candidate
    for part in [path, *path.parents]:  # a link anywhere below the folder: refused, wherever it points
        if part == folder or not part.is_relative_to(folder):
            break
        if part.is_symlink():
            raise _Refused(f"{part.relative_to(folder).as_posix()} is a symbolic link")
    try:
        resolved = path.resolve(strict=True)
    except FileNotFoundError:
        return None
    except (OSError, RuntimeError) as exc:
        raise _Refused(str(exc)) from None
    if not resolved.is_relative_to(folder.resolve()):
        raise _Refused(f"it leads outside {folder}")
    if not stat.S_ISREG(os.stat(resolved).st_mode):
        raise _Refused("not a regular file")
    return resolved
