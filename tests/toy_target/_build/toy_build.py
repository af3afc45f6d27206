"""A PEP 517 build backend in about sixty lines of standard library, so that the toy target
installs with `pip install --no-build-isolation` on any machine: offline, and without
setuptools' `wheel` dependency (setuptools < 70.1 cannot build wheels without it).

It reads [project] and [project.entry-points] from pyproject.toml and packs the packages
named in [tool.toy-build] into a pure-Python wheel."""

from __future__ import annotations

import base64
import hashlib
import tomllib
import zipfile
from pathlib import Path

_ROOT = Path(__file__).resolve().parent.parent
_EPOCH = (2020, 1, 1, 0, 0, 0)  # fixed timestamps: the same sources give the same wheel


def _project() -> tuple[dict, list[str]]:
    data = tomllib.loads((_ROOT / "pyproject.toml").read_text())
    return data["project"], data["tool"]["toy-build"]["packages"]


def _dist_info_files() -> tuple[str, dict[str, bytes]]:
    project, _ = _project()
    name, version = project["name"], project["version"]
    stem = f"{name.replace('-', '_')}-{version}"
    metadata = ["Metadata-Version: 2.1", f"Name: {name}", f"Version: {version}"]
    if "description" in project:
        metadata.append(f"Summary: {project['description']}")
    if "requires-python" in project:
        metadata.append(f"Requires-Python: {project['requires-python']}")
    metadata += [f"Requires-Dist: {requirement}" for requirement in project.get("dependencies", [])]
    entry_points = "".join(
        f"[{group}]\n" + "".join(f"{key} = {value}\n" for key, value in sorted(items.items())) + "\n"
        for group, items in sorted(project.get("entry-points", {}).items())
    )
    wheel = "Wheel-Version: 1.0\nGenerator: toy_build\nRoot-Is-Purelib: true\nTag: py3-none-any\n"
    files = {"METADATA": ("\n".join(metadata) + "\n").encode(), "WHEEL": wheel.encode(), "entry_points.txt": entry_points.encode()}
    return f"{stem}.dist-info", files


def get_requires_for_build_wheel(config_settings=None):
    return []


def prepare_metadata_for_build_wheel(metadata_directory, config_settings=None):
    dist_info, files = _dist_info_files()
    folder = Path(metadata_directory) / dist_info
    folder.mkdir(parents=True, exist_ok=True)
    for name, content in files.items():
        (folder / name).write_bytes(content)
    return dist_info


def build_wheel(wheel_directory, config_settings=None, metadata_directory=None):
    _, packages = _project()
    dist_info, files = _dist_info_files()
    entries = {
        path.relative_to(_ROOT).as_posix(): path.read_bytes()
        for package in packages
        for path in sorted((_ROOT / package).rglob("*.py"))
    }
    entries.update({f"{dist_info}/{name}": content for name, content in files.items()})
    record = "".join(
        f"{path},sha256={base64.urlsafe_b64encode(hashlib.sha256(content).digest()).rstrip(b'=').decode()},{len(content)}\n"
        for path, content in entries.items()
    ) + f"{dist_info}/RECORD,,\n"
    entries[f"{dist_info}/RECORD"] = record.encode()
    wheel_name = f"{dist_info.removesuffix('.dist-info')}-py3-none-any.whl"
    with zipfile.ZipFile(Path(wheel_directory) / wheel_name, "w", zipfile.ZIP_DEFLATED) as archive:
        for path, content in entries.items():
            archive.writestr(zipfile.ZipInfo(path, _EPOCH), content)
    return wheel_name
