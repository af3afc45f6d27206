"""Builds as the kit's checks see them: a spec compiled for one profile and written to a
folder (in this process, or by `python -m mlcompile build` in a fresh interpreter), and
plugin distributions installed where mlcompile's entry-point lookup finds them."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from mlcompile.plan.nodes import Plan

MANIFEST = "manifest.json"


def read_tree(folder: str | os.PathLike[str]) -> dict[str, bytes]:
    """Every file under `folder` as {relative POSIX path: bytes}, sorted by path."""
    root = Path(folder)
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


@dataclass(frozen=True)
class Build:
    """One profile's build folder as written: its files (manifest.json included) and, for an
    in-process build, the plan it was rendered from."""

    folder: Path
    files: dict[str, bytes]
    plan: Plan | None = field(default=None, compare=False)

    @classmethod
    def read(cls, folder: Path, plan: Plan | None = None) -> Build:
        return cls(folder, read_tree(folder), plan)

    @property
    def manifest(self) -> dict[str, Any]:
        return json.loads(self.files[MANIFEST])

    @property
    def kinds(self) -> dict[str, str]:
        """{path: kind} of every file the manifest lists."""
        return {entry["path"]: entry["kind"] for entry in self.manifest["files"]}

    def text(self, path: str) -> str:
        return self.files[path].decode()


def build(spec: str | os.PathLike[str], profile: str | os.PathLike[str], out: str | os.PathLike[str], *, git_commit: str | None = None) -> Build:
    """`mlcompile build SPEC --target PROFILE --out OUT` in this process (lineage without a
    git commit unless one is given, so that a build does not change with every commit)."""
    from mlcompile.build import compile_system, resolve_profiles, write_builds

    compilation = compile_system(str(spec), resolve_profiles(str(spec), [str(profile)]), render=True, git_commit=git_commit)
    (folder,) = write_builds(compilation.results, out)
    return Build.read(Path(folder), compilation.results[0].plan)


def build_in_subprocess(
    spec: str | os.PathLike[str],
    profile: str | os.PathLike[str],
    out: str | os.PathLike[str],
    *,
    cwd: str | os.PathLike[str] | None = None,
    hash_seed: str | None = None,
) -> Build:
    """The same build by the command line in a fresh interpreter (optionally under a fixed
    PYTHONHASHSEED and from another working directory)."""
    env = dict(os.environ)
    if hash_seed is not None:
        env["PYTHONHASHSEED"] = hash_seed
    command = [sys.executable, "-m", "mlcompile", "build", str(spec), "--target", str(profile), "--out", str(out), "--git-commit", "none"]
    proc = subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, f"`mlcompile build` exited {proc.returncode}:\n{proc.stderr}"
    written = [p for p in Path(cwd or ".", out).iterdir() if p.is_dir()]
    assert len(written) == 1, f"expected one profile folder in {out}, found {written}"
    return Build.read(written[0])


def install_plugin(source: str | os.PathLike[str], site: str | os.PathLike[str], *, build_isolation: bool = True) -> Path:
    """`pip install --no-deps --target SITE SOURCE` from a copy of the source (the build
    writes into the source tree; the repository stays clean), by uv when it is installed
    (seconds, where pip's isolated build takes tens). mlcompile itself is not installed
    again: the plugin finds the one this interpreter runs. Returns SITE."""
    site = Path(site)
    with tempfile.TemporaryDirectory(prefix="mlcompile-plugin-") as scratch:
        copy = Path(scratch) / Path(source).name
        shutil.copytree(source, copy, ignore=shutil.ignore_patterns("__pycache__", "*.egg-info", "build", "tests"))
        options = ["--no-deps", "--target", str(site), str(copy)] + ([] if build_isolation else ["--no-build-isolation", "--no-index"])
        uv = uv_binary()
        if uv is not None:
            command = [uv, "pip", "install", "--quiet", "--python", sys.executable, *options]
        else:
            command = [sys.executable, "-m", "pip", "install", "--disable-pip-version-check", "--no-cache-dir", "-q", *options]
        proc = subprocess.run(command, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, f"installing {source} failed:\n{proc.stdout}\n{proc.stderr}"
    return site


def uv_binary() -> str | None:
    try:
        from uv import find_uv_bin
    except ImportError:
        return None
    return find_uv_bin()


@contextmanager
def plugin_installed(site: str | os.PathLike[str]) -> Iterator[None]:
    """Plugins installed in `site` are found by mlcompile while the block runs: in this
    process (sys.path, with the target registry's lookups forgotten) and in every interpreter
    started from it (PYTHONPATH)."""
    import importlib

    from mlcompile.targets import registry

    folder = str(site)
    previous = os.environ.get("PYTHONPATH")
    sys.path.insert(0, folder)
    os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [folder, previous]))

    def forget() -> None:
        importlib.invalidate_caches()
        for value in vars(registry).values():  # every cached lookup of the entry-point group
            if callable(getattr(value, "cache_clear", None)):
                value.cache_clear()

    forget()
    try:
        yield
    finally:
        sys.path.remove(folder)
        if previous is None:
            os.environ.pop("PYTHONPATH", None)
        else:
            os.environ["PYTHONPATH"] = previous
        forget()
