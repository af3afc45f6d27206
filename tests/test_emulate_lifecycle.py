"""The emulated system's life after `mlcompile deploy`, through the platform's APIs: a person
approves each registered version (the `production` alias) and runs the deploy pipeline (the
canary split of a second version is in test_emulate_churn.py); batch scoring and monitoring need an approved
version; a failing gate registers nothing."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from test_emulate_churn import REPO, _emulate

pytestmark = [pytest.mark.emulate, pytest.mark.slow]


def _churn(tmp_path: Path, emulate_yaml: str = "") -> Path:
    folder = tmp_path / "churn"
    shutil.copytree(REPO / "examples/churn", folder, ignore=shutil.ignore_patterns(".mlcompile"))
    if emulate_yaml:
        (folder / "emulate.yaml").write_text(emulate_yaml)
    return folder


def test_without_approval_nothing_is_deployed_and_batch_waits_for_an_approved_version(tmp_path: Path) -> None:
    done, _ = _emulate("kfp-gke", tmp_path / "emulate", REPO / "examples/churn/mlcompile.yaml", "--no-approve")
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    summary = json.loads(done.stdout)
    assert summary["registered"]["version"] == "1" and summary["approved"] is None
    assert summary["pipelines"] == {
        "churn-prediction-training": "succeeded",
        "churn-prediction-batch-scoring": "skipped",
        "churn-prediction-monitoring": "skipped",
    }
    assert "no approved version of churn-classifier" in summary["batch"]["reason"] and summary["batch"]["rows"] is None
    assert summary["deployed"]["version"] is None  # the InferenceService deploy applied pins none
    assert summary["failures"] == []


def test_a_failing_gate_registers_nothing(tmp_path: Path) -> None:
    folder = _churn(tmp_path)
    spec = folder / "mlcompile.yaml"
    text = spec.read_text()
    assert "{metric: roc_auc, min: 0.78}" in text
    spec.write_text(text.replace("{metric: roc_auc, min: 0.78}", "{metric: roc_auc, min: 0.99}"))
    done, _ = _emulate("kfp-gke", tmp_path / "emulate", spec)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    summary = json.loads(done.stdout)
    assert summary["gate"] == {"passed": False}
    training = summary["tasks"]["churn-prediction-training"]
    assert training["condition-1"] == "skipped" and "register" not in training  # the dsl.If around register
    assert summary["registered"]["version"] is None and summary["approved"] is None and summary["deployed"]["version"] is None
    assert "churn-prediction-deploy" not in summary["pipelines"]
    assert summary["pipelines"]["churn-prediction-batch-scoring"] == "skipped"
