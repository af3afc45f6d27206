"""What the CLI imports: nothing cloud for a local build, nothing heavy for --help/--version.

Each check runs in a fresh interpreter (a subprocess) that drives the CLI in-process and then
reports `sys.modules`, so that modules imported by pytest or other tests cannot hide a leak."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
from importlib.metadata import entry_points
from pathlib import Path

import pytest

HERE = Path(__file__).parent / "toy_target"
SPEC_DIR = HERE / "fixture"
EXAMPLES = Path(__file__).parent.parent / "examples"

# SDKs of the cloud targets, and the runtime's data stack: none of them is needed to
# validate a spec or to build it for the local platform.
HEAVY = ("kfp", "sagemaker", "azure", "google.cloud", "boto3", "botocore", "sklearn", "pandas")
# what `--help` / `--version` must not pay for
SCHEMA_STACK = ("pydantic", "pydantic_core", "jsonschema")

DRIVER = textwrap.dedent(
    """
    import sys
    before = set(sys.modules)  # what site/.pth files loaded (e.g. an nspkg .pth creates google.cloud)
    import json
    from mlcompile.cli import main

    codes = []
    for args in json.loads(sys.argv[1]):
        try:
            main(args, prog_name="mlcompile")
        except SystemExit as exc:
            codes.append(exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1))
        else:
            codes.append(0)
    sys.stdout.write("\\n@@MODULES@@" + json.dumps({"codes": codes, "modules": sorted(set(sys.modules) - before)}))
    """
)


def modules_after(*commands: list[str], cwd: Path) -> tuple[list[int], set[str], str]:
    """Run the CLI commands in one fresh interpreter; their exit codes and the modules they
    loaded (beyond those the interpreter had loaded at startup)."""
    proc = subprocess.run([sys.executable, "-c", DRIVER, json.dumps(list(commands))], cwd=cwd, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout.rsplit("@@MODULES@@", 1)[1])
    return report["codes"], set(report["modules"]), proc.stderr


def loaded(modules: set[str], package: str) -> list[str]:
    return sorted(m for m in modules if m == package or m.startswith(package + "."))


@pytest.fixture()
def example(tmp_path: Path) -> Path:
    shutil.copytree(SPEC_DIR, tmp_path / "example")
    # every profile the spec's overrides name; only `local` is built
    shutil.copytree(HERE / "profiles", tmp_path / "example" / "targets")
    return tmp_path / "example"


def test_validate_and_local_build_import_no_cloud_sdk(example: Path, tmp_path: Path) -> None:
    spec, profile = example / "mlcompile.yaml", example / "targets" / "local.yaml"
    codes, modules, stderr = modules_after(
        ["validate", str(spec)],
        ["validate", str(spec), "--target", str(profile)],
        ["build", str(spec), "--target", str(profile), "--out", str(tmp_path / "out")],
        cwd=tmp_path,
    )
    assert codes == [0, 0, 0], stderr
    assert (tmp_path / "out" / "local" / "manifest.json").is_file()
    # the targets of every profile beside the spec were loaded and ran their check() (the
    # first validate discovers targets/), and still no SDK: SDKs are for render() only
    installed = {ep.name: ep.value.split(":")[0] for ep in entry_points(group="mlcompile.targets")}
    platforms = {"local", "vertex", "sagemaker", "kubeflow", "azureml"}  # those of tests/toy_target/profiles
    checked = {installed[p] for p in platforms & set(installed)}
    assert "mlcompile.targets.local" in checked and checked <= modules, checked - modules
    leaked = {package: loaded(modules, package) for package in HEAVY if loaded(modules, package)}
    assert not leaked, f"a local validate/build imported {leaked}"


@pytest.mark.parametrize("args", [["--version"], ["--help"], ["validate", "--help"], ["build", "--help"]], ids=" ".join)
def test_help_and_version_are_lazy(args: list[str], tmp_path: Path) -> None:
    codes, modules, stderr = modules_after(args, cwd=tmp_path)
    assert codes == [0], stderr
    leaked = {package: loaded(modules, package) for package in (*SCHEMA_STACK, *HEAVY) if loaded(modules, package)}
    assert not leaked, f"`mlcompile {' '.join(args)}` imported {leaked}"
    assert "mlcompile.spec.models" not in modules


# what a bare `validate` (a spec, no profiles: editors and pre-commit on every save) must not
# pay for at start: pydantic and the spec's models (spec/fastcheck.py checks a valid spec
# without them), the targets' entry points (importlib.metadata, which brings email, zipfile,
# csv), the cost report a build writes, the plan, templates, JSON Schema
COLD_VALIDATE_NEEDS_NONE = (
    "pydantic", "pydantic_core", "mlcompile.spec.models",
    "importlib.metadata", "email", "zipfile", "csv", "jinja2", "jsonschema",
    "mlcompile.cost", "mlcompile.plan", "mlcompile.targets.local",
)  # fmt: skip


def test_a_bare_validate_imports_only_what_validating_needs(tmp_path: Path) -> None:
    # an example as bench/validate.py measures it. (A spec asking for accelerators also reads
    # the machine catalog, and one scheduling in a time zone reads tzdata through
    # importlib.resources, which brings zipfile: the other examples do.)
    shutil.copytree(EXAMPLES / "churn", tmp_path / "churn")
    codes, modules, stderr = modules_after(["validate", str(tmp_path / "churn" / "mlcompile.yaml")], cwd=tmp_path)
    assert codes == [0], stderr
    assert "no target profiles found" in stderr  # the case measured by bench/validate.py
    leaked = {package: loaded(modules, package) for package in (*COLD_VALIDATE_NEEDS_NONE, *HEAVY) if loaded(modules, package)}
    assert not leaked, f"a bare validate imported {leaked}"


STAND_IN_DRIVER = textwrap.dedent(
    """
    import sys
    import mlcompile.cli  # turns plugins off
    import mlcompile.spec.models  # puts the stand-in loader in place
    from pydantic import BaseModel
    from pydantic_core import SchemaValidator

    class Probe(BaseModel):
        count: int

    assert Probe.model_validate({"count": "3"}).count == 3
    assert type(Probe.__pydantic_validator__) is SchemaValidator, type(Probe.__pydantic_validator__)
    assert "importlib.metadata" not in sys.modules
    """
)


def test_pydantic_builds_validators_with_the_stand_in_plugin_loader() -> None:
    """pydantic still asks its loader only `get_plugins()`, and builds plain validators."""
    env = {k: v for k, v in os.environ.items() if k != "PYDANTIC_DISABLE_PLUGINS"}
    proc = subprocess.run([sys.executable, "-c", STAND_IN_DRIVER], capture_output=True, text=True, timeout=120, env=env)
    assert proc.returncode == 0, proc.stderr


def test_the_real_plugin_loader_finds_no_plugins_when_all_are_disabled() -> None:
    """What the stand-in answers is what pydantic's own loader answers under the CLI's setting."""
    env = {**os.environ, "PYDANTIC_DISABLE_PLUGINS": "__all__"}
    probe = "from pydantic.plugin._loader import get_plugins; assert list(get_plugins()) == []"
    proc = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=120, env=env)
    assert proc.returncode == 0, proc.stderr


def test_the_command_collects_garbage_with_thresholds_fit_for_its_imported_sdks() -> None:
    """The console script's process raises the collector's thresholds before the command line
    loads anything (bench/build_gc.py: a full build's collections had been ~30% of its CPU);
    the library, imported by a program, leaves that program's collector alone."""
    report = "import atexit, gc, sys; atexit.register(lambda: sys.stderr.write(f'thresholds {gc.get_threshold()}'))"
    command = [sys.executable, "-c", f"{report}; sys.argv = ['mlcompile', '--version']; from mlcompile.entry import main; main()"]
    done = subprocess.run(command, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0 and "thresholds (2000, 20, 50)" in done.stderr
    library = subprocess.run([sys.executable, "-c", f"{report}; import mlcompile.cli, mlcompile.build"], capture_output=True, text=True, timeout=60)
    assert library.returncode == 0 and "thresholds (700, 10, 10)" in library.stderr
