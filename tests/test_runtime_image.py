"""The runtime image installs what runs in it: every third-party module the runtime's steps and
the platform-job launcher import (on any platform) comes from a distribution the Dockerfile's
install set holds, directly or through its dependencies, and the filesystems and plugins that
are loaded by name rather than imported (fsspec's gs:// s3:// abfss://, MLflow's azureml://)
are named in it. Imports guarded by `except ImportError` are optional and not required."""

from __future__ import annotations

import ast
import importlib.metadata
import importlib.util
import re
import sys
import tomllib
from functools import cache
from pathlib import Path

import pytest
from packaging.requirements import Requirement

ROOT = Path(__file__).resolve().parents[1]
SRC = ROOT / "src"
# what runs inside the image: the runtime's steps and the tasks that launch platform jobs
ENTRY_POINTS = sorted((SRC / "mlcompile/runtime").rglob("*.py"))  # the launchers included
# loaded by name, never imported: the URI schemes' filesystems, MLflow's Azure ML tracking store
LOADED_BY_NAME = {"gcsfs": "gs:// artifacts", "s3fs": "s3:// artifacts", "adlfs": "abfss:// artifacts", "azureml-mlflow": "MLflow's azureml:// tracking URI"}


def _imports(path: Path) -> tuple[set[str], set[str]]:
    """(required, optional) absolute module names a file imports."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    optional: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Try) and any(_catches_import_error(h) for h in node.handlers):
            optional.update(id(n) for child in node.body for n in ast.walk(child))
    required, maybe = set(), set()
    for node in ast.walk(tree):
        names: list[str] = []
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names = [node.module] + [f"{node.module}.{a.name}" for a in node.names]
        (maybe if id(node) in optional else required).update(names)
    return required, maybe


def _catches_import_error(handler: ast.ExceptHandler) -> bool:
    caught = handler.type
    names = [e for e in (caught.elts if isinstance(caught, ast.Tuple) else [caught]) if e is not None]
    return any(isinstance(n, ast.Name) and n.id in ("ImportError", "ModuleNotFoundError") for n in names)


@cache
def third_party_imports() -> frozenset[str]:
    """Modules imported by the entry points and the mlcompile modules they import, outside
    mlcompile and the standard library."""
    seen, queue, found = set(), list(ENTRY_POINTS), set()
    while queue:
        path = queue.pop()
        if path in seen:
            continue
        seen.add(path)
        required, _ = _imports(path)
        for name in required:
            if name.split(".")[0] == "mlcompile":
                module = SRC / Path(*name.split("."))
                for candidate in (module.with_suffix(".py"), module / "__init__.py"):
                    if candidate.exists():
                        queue.append(candidate)
            elif name.split(".")[0] not in sys.stdlib_module_names:
                found.add(name)
    return frozenset(found)


@cache
def _file_owners() -> dict[str, str]:
    """Module file (relative to site-packages) → its distribution, for the packages the image's
    code imports (reading every distribution's whole RECORD is slow)."""
    tops = {m.split(".")[0] for m in third_party_imports()}
    owners = {}
    for dist in importlib.metadata.distributions():
        files = [f for f in dist.files or () if f.parts and f.parts[0].removesuffix(".py") in tops and f.suffix == ".py"]
        if files:
            name = dist.metadata["Name"].lower()
            owners.update((str(f), name) for f in files)
    return owners


def distribution_of(module: str) -> str | None:
    """The installed distribution that provides a module (namespace packages such as google.*
    and azure.* are shared: the module's own file decides); None for a name that is not a module
    (`from package import function`)."""
    parts = module.split(".")
    for depth in range(1, len(parts) + 1):  # no deeper than a regular package: importing feast to find feast.x is slow
        try:
            spec = importlib.util.find_spec(".".join(parts[:depth]))
        except (ModuleNotFoundError, ValueError):
            return None
        if spec is None:
            return None
        if spec.origin not in (None, "namespace"):
            break
    if not spec.origin or spec.origin in ("built-in", "frozen", "namespace"):
        return None
    origin = Path(spec.origin).resolve()
    # the deepest entry of sys.path holding the file: a venv inside the checkout sits below
    # the checkout's own entry, and only the site-packages folder's relative path is in RECORD
    roots = sorted((Path(r).resolve() for r in sys.path if r), key=lambda p: len(p.parts), reverse=True)
    for root in roots:
        if origin.is_relative_to(root):
            return _file_owners().get(str(origin.relative_to(root)))
    return None


def _normal(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def image_requirements() -> list[Requirement]:
    """The requirements the Dockerfile installs: `pip install ".[extra,…]"` expanded through
    pyproject.toml (self-references included), plus the core dependencies."""
    dockerfile = (ROOT / "Dockerfile").read_text()
    (extras,) = re.findall(r'pip install "\.\[([a-z,]+)\]"', dockerfile)
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    requirements = [Requirement(r) for r in project["dependencies"]]
    pending, done = extras.split(","), set()
    while pending:
        extra = pending.pop()
        if extra in done:
            continue
        done.add(extra)
        for text in project["optional-dependencies"][extra]:
            requirement = Requirement(text)
            if _normal(requirement.name) == "mlcompile":
                pending += sorted(requirement.extras)
            else:
                requirements.append(requirement)
    return requirements


def install_set() -> set[str]:
    """The image's distributions: its requirements and, for those installed here, everything
    they depend on (markers evaluated for this interpreter, no extras)."""
    names = {_normal(r.name) for r in image_requirements()}
    pending = sorted(names)
    while pending:
        name = pending.pop()
        try:
            requires = importlib.metadata.requires(name) or []
        except importlib.metadata.PackageNotFoundError:
            continue
        for text in requires:
            requirement = Requirement(text)
            if requirement.marker is not None and not requirement.marker.evaluate({"extra": ""}):
                continue
            if _normal(requirement.name) not in names:
                names.add(_normal(requirement.name))
                pending.append(_normal(requirement.name))
    return names


def test_the_dockerfile_installs_the_runtime_extra() -> None:
    assert 'pip install ".[runtime]"' in (ROOT / "Dockerfile").read_text()


def test_every_module_the_runtime_and_the_launcher_import_is_installed_in_the_image() -> None:
    modules = third_party_imports()
    assert {"kubernetes", "google.cloud.aiplatform_v1", "boto3", "fsspec"} <= modules  # the scan sees the platform imports
    owners = {m: distribution_of(m) for m in modules}
    unknown = sorted(m for m, d in owners.items() if d is None and "." not in m)
    if unknown:
        pytest.skip(f"not installed here, so their distributions are unknown: {', '.join(unknown)}")
    image = install_set()
    missing = sorted(f"{m} (from {d})" for m, d in owners.items() if d is not None and _normal(d) not in image)
    assert missing == [], "add to the runtime extra: " + ", ".join(missing)


def test_what_is_loaded_by_name_is_named_in_the_image() -> None:
    direct = {_normal(r.name) for r in image_requirements()}
    assert {name: why for name, why in LOADED_BY_NAME.items() if name not in direct} == {}


def test_the_scan_finds_an_import_the_image_lacks(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # the check itself: a runtime module importing kubernetes is caught when no extra brings it
    step = tmp_path / "step.py"
    step.write_text("import json\nfrom kubernetes import client\ntry:\n    import hypertune\nexcept ImportError:\n    hypertune = None\n")
    required, optional = _imports(step)
    assert "kubernetes" in required and "hypertune" in optional and "hypertune" not in required
    monkeypatch.setattr(sys.modules[__name__], "image_requirements", lambda: [Requirement("pandas>=2")])
    assert "kubernetes" not in install_set()
