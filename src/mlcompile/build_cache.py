"""Builds kept by what they were built from, so that an unchanged system is not built again.

A build is a pure function of the spec's bytes, the profiles' bytes (and the names of the
profiles beside them), the git commit recorded as lineage, the policy severity, and the code
that builds it: mlcompile (its version and its installed files) and the platform SDKs that
render. The sha256 of all of that names one cache entry, a JSON file in the cache folder
(`--cache-dir`): each profile's plan and files. A monorepo build or diff where one system of
a hundred changed compiles that one system.

The cache folder is trusted like a build folder: keep it per repository and branch (a CI
cache keyed by the base branch), not shared with builds of untrusted pull requests. An entry
that does not read back as a build (cut short, another format) is ignored and rebuilt."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import tempfile
from collections.abc import Sequence
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mlcompile import __version__

if TYPE_CHECKING:
    from mlcompile.build import Compiled, ProfileSet
    from mlcompile.plan.nodes import Plan
    from mlcompile.targets.base import OutputFile

FORMAT = 1
# distributions whose version changes what a target renders
_RENDERING_DISTRIBUTIONS = ("kfp", "google-cloud-aiplatform", "sagemaker", "azure-ai-ml", "feast", "pydantic", "PyYAML")


@cache
def code_fingerprint() -> str:
    """mlcompile's version, its installed files (name, size, modification time) and the
    rendering SDKs' versions: a development checkout that changed invalidates the cache."""
    from importlib import metadata

    digest = hashlib.sha256(__version__.encode())
    package = Path(__file__).resolve().parent
    for path in sorted(package.rglob("*")):
        if path.suffix in (".py", ".yaml", ".json", ".j2", ".txt") and "__pycache__" not in path.parts:
            info = path.stat()
            digest.update(f"{path.relative_to(package).as_posix()}\0{info.st_size}\0{info.st_mtime_ns}\n".encode())
    for name in _RENDERING_DISTRIBUTIONS:
        try:
            digest.update(f"{name}={metadata.version(name)}\n".encode())
        except metadata.PackageNotFoundError:
            digest.update(f"{name}=-\n".encode())
    return digest.hexdigest()


def build_key(spec_bytes: bytes, profile_set: ProfileSet, *, git_commit: str | None, policy_severity: str) -> str:
    """The name of the build of these inputs."""
    digest = hashlib.sha256()
    for part in (
        f"format {FORMAT}",
        code_fingerprint(),
        f"commit {git_commit or '-'}",
        f"severity {policy_severity}",
        "known " + ",".join(sorted(profile_set.known_names or ())),
    ):
        digest.update(part.encode() + b"\n")
    digest.update(hashlib.sha256(spec_bytes).digest())
    for profile in profile_set.profiles:
        digest.update(profile.name.encode() + b"\0" + profile.document.sha256.encode() + b"\n")
    return digest.hexdigest()


class BuildCache:
    """One folder of cached builds."""

    def __init__(self, folder: str | os.PathLike[str]):
        self.folder = Path(folder)

    def _entry(self, key: str) -> Path:
        return self.folder / key[:2] / f"{key}.json"

    def get(self, key: str, profile_set: ProfileSet) -> list[tuple[Plan, list[OutputFile]]] | None:
        """The cached build of `key`: the plan and files of each of these profiles, in order; or None."""
        from mlcompile.plan.serialize import plan_from_data
        from mlcompile.targets.base import OutputFile

        try:
            data = json.loads(self._entry(key).read_bytes())
            results = []
            for profile in profile_set.profiles:
                entry = data["profiles"][profile.name]
                files = [OutputFile(f["path"], f["kind"], base64.b64decode(f["content"], validate=True)) for f in entry["files"]]
                results.append((plan_from_data(entry["plan"]), files))
            return results
        except (OSError, ValueError, KeyError, TypeError):
            return None  # missing, cut short or of another format: build again

    def put(self, key: str, results: Sequence[Compiled]) -> None:
        """Store a build; a cache that cannot be written is skipped (it is only a cache)."""
        from mlcompile.plan.serialize import plan_to_data

        data: dict[str, Any] = {
            "format": FORMAT,
            "profiles": {
                r.profile.name: {
                    "plan": plan_to_data(r.plan),
                    "files": [{"path": f.path, "kind": f.kind, "content": base64.b64encode(f.content).decode()} for f in r.files],
                }
                for r in results
            },
        }
        entry = self._entry(key)
        try:
            entry.parent.mkdir(parents=True, exist_ok=True)
            handle, staged = tempfile.mkstemp(prefix=".entry-", dir=entry.parent)
            with os.fdopen(handle, "w") as stream:
                json.dump(data, stream, separators=(",", ":"))
            os.replace(staged, entry)  # whole or absent, for a concurrent reader
        except OSError:
            return
