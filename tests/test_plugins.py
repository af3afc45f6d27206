"""A third-party target, installed for real, goes through the same door as the built-ins.

`tests/toy_target/` is a separate distribution (`mlcompile-toy`, package `mlcompile_toy`)
that registers `toy` under the `mlcompile.targets` entry-point group. It is pip-installed
into a temporary folder once per session, and mlcompile runs in subprocesses with that folder
on PYTHONPATH, exactly as a user's environment would find it."""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from mlcompile import testing

TOY = Path(__file__).parent / "toy_target"
FIXTURE_SPEC = TOY / "fixture" / "mlcompile.yaml"

TOY_PROFILE = """\
apiVersion: mlcompile/v1
kind: Target
metadata: {name: toy-dev}
platform: toy
images: {runtime: ghcr.io/acme/mlcompile-runtime:0.1.0}
settings:
  color: blue
  workers: 2
"""


@pytest.fixture(scope="module")
def toy_site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """`pip install --no-deps --no-build-isolation --target <tmp> tests/toy_target` (by uv when
    the dev extra installed it), from a copy of the package: the repository stays clean."""
    started = time.perf_counter()
    site = testing.install_plugin(TOY, tmp_path_factory.mktemp("toy") / "site", build_isolation=False)
    print(f"install of the toy target: {time.perf_counter() - started:.2f}s")
    assert (site / "mlcompile_toy" / "__init__.py").is_file()
    return site


@pytest.fixture()
def toy_installed(toy_site: Path) -> Iterator[Path]:
    """The toy target found by this process too (the kit's checks build in-process)."""
    with testing.plugin_installed(toy_site):
        yield toy_site


def mlcompile(*args: str, site: Path, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(site), env.get("PYTHONPATH")]))
    return subprocess.run([sys.executable, "-m", "mlcompile", *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=120)


def toy_spec(*, accelerator: bool) -> dict[str, Any]:
    """The fixture with an override for the toy profile (object-store URIs instead of
    file://), with or without the accelerator toy refuses."""
    data = yaml.safe_load(FIXTURE_SPEC.read_text())
    data["overrides"]["toy-dev"] = {
        "features": {
            "sources": [
                {"name": "transactions", "uri": "s3://acme-ml/data/transactions.parquet", "format": "parquet"},
                {"name": "churn_labels", "uri": "s3://acme-ml/data/churn_labels.parquet", "format": "parquet"},
            ]
        },
        "deployment": {"batch": {"output": {"uri": "s3://acme-ml/data/churn_scores.parquet"}}},
    }
    if not accelerator:
        del data["training"]["resources"]["accelerator"]
    return data


@pytest.fixture()
def project(tmp_path: Path) -> Path:
    """A project folder: the fixture's profiles plus the toy one under targets/."""
    shutil.copytree(TOY / "profiles", tmp_path / "targets")
    (tmp_path / "targets" / "toy-dev.yaml").write_text(TOY_PROFILE)
    (tmp_path / "mlcompile.yaml").write_text(yaml.safe_dump(toy_spec(accelerator=False), sort_keys=False))
    (tmp_path / "refused.yaml").write_text(yaml.safe_dump(toy_spec(accelerator=True), sort_keys=False))
    return tmp_path


def test_toy_target_builds(toy_site: Path, project: Path) -> None:
    proc = mlcompile("build", "mlcompile.yaml", "--target", "targets/toy-dev.yaml", "--out", "out", site=toy_site, cwd=project)
    assert proc.returncode == 0, proc.stderr
    assert "Traceback" not in proc.stderr
    folder = project / "out" / "toy-dev"
    manifest = json.loads((folder / "manifest.json").read_text())
    assert manifest["profile"] == "toy-dev" and manifest["platform"] == "toy"
    assert manifest["files"] == [
        {"path": "cost.json", "kind": "mlcompile.cost_estimate", "sha256": hashlib.sha256((folder / "cost.json").read_bytes()).hexdigest()},
        {"path": "toy-steps.json", "kind": "toy.steps", "sha256": hashlib.sha256((folder / "toy-steps.json").read_bytes()).hexdigest()},
    ]  # cost.json is mlcompile's own, written for every target
    assert sorted(p.name for p in folder.iterdir()) == ["cost.json", "manifest.json", "toy-steps.json"]
    steps = json.loads((folder / "toy-steps.json").read_text())
    assert steps["profile"] == "toy-dev"
    assert steps["settings"] == {"color": "blue", "workers": 2}  # the profile's `settings:` reach the target
    kinds = {step["kind"] for pipeline in steps["pipelines"] for step in pipeline["steps"]}
    assert {"extract_features", "validate_data", "tune", "evaluate", "gate", "register", "score_batch", "check_drift"} <= kinds, kinds

    testing.assert_manifest_complete(folder, spec=project / "mlcompile.yaml")


def test_toy_target_passes_the_kits_determinism_check(toy_installed: Path, project: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(project)
    built = testing.assert_deterministic("mlcompile.yaml", "targets/toy-dev.yaml", project / "determinism", hash_seeds=("4242",))
    assert built.kinds["toy-steps.json"] == "toy.steps"


def test_toy_target_is_listed(toy_site: Path, project: Path) -> None:
    proc = mlcompile("targets", site=toy_site, cwd=project)
    assert proc.returncode == 0, proc.stderr
    rows = {line.split()[0]: line.split() for line in proc.stdout.splitlines()[1:] if line.strip()}
    assert "toy" in rows, proc.stdout
    assert rows["toy"][1:] == ["mlcompile-toy", "mlcompile_toy:ToyTarget", "ready"]
    assert "local" in rows  # the built-in still comes through the same door


def test_toy_check_refusal_is_located(toy_installed: Path, project: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """check() refuses accelerators: exit 2, nothing written, the error at the spec's line."""
    monkeypatch.chdir(project)
    refusal = testing.assert_refused(
        "refused.yaml",
        "targets/toy-dev.yaml",
        at="training.resources",
        message=r"accelerator 'nvidia-t4' is not available: toy machines have CPUs only",
        out="out",
    )
    assert refusal.message.endswith("(target toy)") and refusal.path.startswith("training.resources")


def test_toy_refusal_lifted_by_override(toy_site: Path, project: Path) -> None:
    """`overrides.<profile>` can null the refused field for that profile only."""
    data = toy_spec(accelerator=True)
    data["overrides"]["toy-dev"]["training"] = {"resources": {"accelerator": None}}
    (project / "nulled.yaml").write_text(yaml.safe_dump(data, sort_keys=False))
    proc = mlcompile("build", "nulled.yaml", "--target", "targets/toy-dev.yaml", "--target", "targets/local.yaml", "--out", "out", site=toy_site, cwd=project)
    assert proc.returncode == 0, proc.stderr
    # the toy file lists every step of the plan, pipeline by pipeline, in order
    toy = json.loads((project / "out" / "toy-dev" / "toy-steps.json").read_text())
    plan = json.loads((project / "out" / "local" / "plan.json").read_text())
    # (less what the local platform adds to its own plan: it materialises the online views)
    planned = [
        {"name": plan[key]["name"], "steps": [step["name"] for step in plan[key]["steps"] if step["kind"] != "materialize_features"]}
        for key in ("training", "batch", "monitoring_pipeline")
        if plan.get(key)
    ]
    assert [{"name": p["name"], "steps": [s["name"] for s in p["steps"]]} for p in toy["pipelines"]] == planned


def test_toy_settings_are_checked_by_its_own_settings_model(toy_site: Path, project: Path) -> None:
    """A third-party platform's `settings:` are read by its settings model (ToySettings), each
    problem located at the profile's line, as a built-in platform's block is."""
    profile = project / "targets" / "toy-dev.yaml"
    profile.write_text(TOY_PROFILE.replace("color: blue", "color: purple").replace("workers: 2", "workers: 2\n  speed: 3"))
    proc = mlcompile("validate", "mlcompile.yaml", "--target", "targets/toy-dev.yaml", site=toy_site, cwd=project)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr, proc.stderr
    errors = dict(re.findall(r"^targets/toy-dev\.yaml:(\d+):\d+: error: (settings\.\w+): ", proc.stderr, re.M)[::-1])
    lines = TOY_PROFILE.replace("workers: 2", "workers: 2\n  speed: 3").splitlines()
    assert {path: int(line) for line, path in errors.items()} == {
        "settings.color": lines.index("  color: blue") + 1,
        "settings.speed": lines.index("  speed: 3") + 1,
    }, proc.stderr
    assert "'speed' is not a setting of platform 'toy'" in proc.stderr

    # the block is required (ToyTarget.settings_required), and its defaults reach the plan
    profile.write_text(TOY_PROFILE.split("settings:")[0])
    proc = mlcompile("validate", "mlcompile.yaml", "--target", "targets/toy-dev.yaml", site=toy_site, cwd=project)
    assert proc.returncode == 2 and "platform 'toy' needs a 'settings:' block with its settings" in proc.stderr, proc.stderr
    profile.write_text(TOY_PROFILE.replace("  workers: 2\n", ""))
    proc = mlcompile("build", "mlcompile.yaml", "--target", "targets/toy-dev.yaml", "--out", "out", site=toy_site, cwd=project)
    assert proc.returncode == 0, proc.stderr
    assert json.loads((project / "out" / "toy-dev" / "toy-steps.json").read_text())["settings"] == {"color": "blue", "workers": 1}
