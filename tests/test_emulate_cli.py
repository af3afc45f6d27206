"""`mlcompile run --emulate` on bad input: one message and exit status 2, nothing run; and,
through the emulator, a failing evaluation gate registers nothing."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from mlcompile.emulate.containers import host_environment

pytestmark = pytest.mark.emulate
REPO = Path(__file__).resolve().parents[1]


def _churn(tmp_path: Path, *, replace: tuple[str, str] | None = None, config: str | None = None) -> Path:
    folder = tmp_path / "churn"
    shutil.copytree(REPO / "examples/churn", folder, ignore=shutil.ignore_patterns(".mlcompile"))
    shutil.copytree(REPO / "targets", folder / "targets")
    spec = folder / "mlcompile.yaml"
    if replace:
        text = spec.read_text()
        assert replace[0] in text
        spec.write_text(text.replace(*replace))
    if config is not None:
        (folder / "emulate.yaml").write_text(config)
    return spec


def _run(spec: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**host_environment(), "PYTHONPATH": str(REPO / "src")}  # nothing of this session's MLCOMPILE_/MLFLOW_ settings
    command = [sys.executable, "-m", "mlcompile", "run", spec.name, "--emulate", "--workdir", str(spec.parent / "emulated"), *args]
    return subprocess.run(command, cwd=spec.parent, env=env, capture_output=True, text=True, timeout=600)


def test_a_local_profile_is_refused(tmp_path: Path) -> None:
    spec = _churn(tmp_path)
    (spec.parent / "targets/local.yaml").write_text("apiVersion: mlcompile/v1\nkind: Target\nmetadata: {name: local}\nplatform: local\n")
    done = _run(spec, "--target", "targets/local.yaml")
    assert done.returncode == 2, done.stderr
    assert "--emulate runs Azure ML, Kubeflow Pipelines, SageMaker and Vertex AI builds" in done.stderr and "Traceback" not in done.stderr


def test_the_profile_is_required(tmp_path: Path) -> None:
    done = _run(_churn(tmp_path))
    assert done.returncode == 2 and "--emulate needs --target PROFILE" in done.stderr


def test_a_cloud_source_without_a_fixture_names_the_fix(tmp_path: Path) -> None:
    # the spec's own URI is a cloud one too, so nothing local stands for the source
    spec = _churn(tmp_path, replace=("uri: file://data/labels.csv", "uri: gs://acme-growth-lake/crm/labels.csv"))
    done = _run(spec, "--target", "targets/kfp-gke.yaml")
    assert done.returncode == 2, done.stderr
    assert "source 'churn_labels'" in done.stderr and "fixtures:" in done.stderr and "Traceback" not in done.stderr


def test_an_unknown_key_in_the_emulation_config_is_refused(tmp_path: Path) -> None:
    spec = _churn(tmp_path, config="image: {}\n")
    done = _run(spec, "--target", "targets/kfp-gke.yaml")
    assert done.returncode == 2 and "unknown key image" in done.stderr


def test_a_workdir_holding_other_files_is_not_emptied(tmp_path: Path) -> None:
    spec = _churn(tmp_path)
    precious = tmp_path / "precious"
    precious.mkdir()
    (precious / "notes.txt").write_text("keep me")
    done = _run(spec, "--target", "targets/kfp-gke.yaml", "--workdir", str(precious))
    assert done.returncode == 2 and "holds other files" in done.stderr
    assert (precious / "notes.txt").read_text() == "keep me"


def test_only_names_pipelines(tmp_path: Path) -> None:
    done = _run(_churn(tmp_path), "--target", "targets/kfp-gke.yaml", "--only", "train")
    assert done.returncode == 2 and "training, batch-scoring, monitoring" in done.stderr
