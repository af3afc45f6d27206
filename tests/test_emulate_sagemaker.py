"""`mlcompile run … --target targets/aws-prod.yaml --emulate` runs the SageMaker build of each
example end to end on this machine: `mlcompile deploy` into moto, the pipeline definitions
interpreted with the /opt/ml container layout, the approval through UpdateModelPackage, the
EventBridge rule deploying it, and the execution monitoring's step starts through
StartPipelineExecution run to its end. One emulated run per
example (module-scoped), its wall time printed."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from emulate_services_support import SUMMARY_KEYS, alert_webhook, drift
from emulator_support import emulator_env
from requires import require

pytestmark = [pytest.mark.emulate, pytest.mark.slow, pytest.mark.timeout(1800)]  # the first test runs both systems
require("moto")

REPO = Path(__file__).resolve().parents[1]
RETRAINING_KEYS = {"requested", "submitted", "status", "gate", "version", "tasks"}


def emulate(spec: Path, workdir: Path, *args: str) -> tuple[subprocess.CompletedProcess[str], float]:
    env = emulator_env()
    command = [
        sys.executable,
        "-m",
        "mlcompile",
        "run",
        str(spec),
        "--target",
        str(REPO / "targets/aws-prod.yaml"),
        "--emulate",
        *args,
        "--format",
        "json",
        "--workdir",
        str(workdir),
    ]
    started = time.monotonic()
    done = subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True, timeout=900)
    return done, time.monotonic() - started


@pytest.fixture(scope="module")
def webhook() -> Iterator[tuple[str, list[bytes]]]:
    """The team's chat webhook the alert step posts to (its URL a Secrets Manager secret)."""
    with alert_webhook() as hook:
        yield hook


@pytest.fixture(scope="module")
def churn(tmp_path_factory: pytest.TempPathFactory, webhook: tuple[str, list[bytes]]) -> dict[str, Any]:
    """The churn example with its activity source drifted before monitoring (orders and spend
    far from what the model was trained on)."""
    root = tmp_path_factory.mktemp("sagemaker-churn")
    spec_dir = root / "churn"
    shutil.copytree(REPO / "examples/churn", spec_dir, ignore=shutil.ignore_patterns(".mlcompile"))
    drift(spec_dir / "data/activity.csv", spec_dir / "data/activity_drifted.csv")
    (spec_dir / "emulate.yaml").write_text(
        f"secrets:\n  growth-ml-alerts-webhook: {webhook[0]}\nrestage:\n  monitoring:\n    customer_activity_daily: data/activity_drifted.csv\n"
    )
    done, seconds = emulate(spec_dir / "mlcompile.yaml", root / "emulate")
    print(f"emulated aws-prod run of churn (drifted monitoring data): {seconds:.1f} s")
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return {"summary": json.loads(done.stdout), "work": root / "emulate", "alerts": webhook[1]}


@pytest.fixture(scope="module")
def card_fraud(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    work = tmp_path_factory.mktemp("sagemaker-card-fraud") / "emulate"
    done, seconds = emulate(REPO / "examples/container-trainer/mlcompile.yaml", work)
    print(f"emulated aws-prod run of container-trainer: {seconds:.1f} s")
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return {"summary": json.loads(done.stdout), "work": work}


def test_the_summary_has_the_kubeflow_and_vertex_summarys_keys(churn: dict[str, Any], card_fraud: dict[str, Any]) -> None:
    for summary in (churn["summary"], card_fraud["summary"]):
        assert set(summary) == SUMMARY_KEYS and summary["platform"] == "sagemaker"
        assert set(summary["registered"]) == {"model", "version", "registry"}
        assert set(summary["deployed"]) == {"endpoint", "version", "traffic"}
        assert set(summary["retraining"]) == RETRAINING_KEYS
        assert summary["status"] == "succeeded" and summary["failures"] == []


def test_training_registers_the_approval_deploys_it_and_batch_scores_with_it(churn: dict[str, Any]) -> None:
    summary = churn["summary"]
    assert summary["gate"] == {"passed": True}
    assert summary["approved"] == {"version": "1", "by": "emulator"}  # UpdateModelPackage Approved
    assert summary["pipelines"]["churn-prediction-deploy"] == "succeeded"  # started by the deploy-on-approval rule
    assert summary["deployed"] == {"endpoint": "churn-scorer", "version": "1", "traffic": {"1": 100}}  # the first version takes all
    customers = {line.split(",")[0] for line in (REPO / "examples/churn/data/activity.csv").read_text().splitlines()[1:]}
    assert summary["batch"]["rows"] == len(customers)
    # the model left the training job as SageMaker packs it
    assert list((churn["work"] / "storage/s3/acme-ml-artifacts-eu-west-1/mlcompile/churn-prediction/models").glob("*/output/model.tar.gz"))


def test_drift_makes_the_monitoring_step_start_retraining_through_the_api_and_the_approved_version_keeps_serving(churn: dict[str, Any]) -> None:
    summary = churn["summary"]
    assert summary["monitoring"] == {"breach": True}
    assert summary["tasks"]["churn-prediction-monitoring"]["alert"] == "succeeded"
    assert summary["tasks"]["churn-prediction-monitoring"]["trigger-retraining"] == "succeeded"
    assert churn["alerts"] and b"churn-prediction" in churn["alerts"][0]  # the webhook URL came from Secrets Manager
    retraining = summary["retraining"]
    # the execution the step's StartPipelineExecution started, run by the emulator to its end
    assert retraining["requested"] is True and retraining["status"] == "succeeded"
    assert retraining["submitted"].startswith("arn:aws:sagemaker:eu-west-1:123456789012:pipeline/churn-prediction-training/execution/")
    assert retraining["gate"] is True and retraining["tasks"]["register-RegisterModel"] == "succeeded"
    assert retraining["version"] == "2" == summary["registered"]["version"]  # pending approval
    assert summary["approved"] == {"version": "1", "by": "emulator"}
    assert summary["deployed"]["version"] == "1"  # the approved version still serves


def test_tuning_trials_get_string_hyperparameters_and_the_best_trial_is_registered_and_served(card_fraud: dict[str, Any]) -> None:
    summary = card_fraud["summary"]
    assert summary["tasks"]["card-fraud-training"]["tune"] == "succeeded"
    trials = sorted((card_fraud["work"] / "jobs").glob("*-tune-*/algo-1/opt/ml/input/config/hyperparameters.json"))
    assert len(trials) == 4  # MaxNumberOfTrainingJobs of the spec's tuning
    for trial in trials:
        values = json.loads(trial.read_text())
        assert all(isinstance(value, str) for value in values.values()) and 7 <= int(values["max_leaf_nodes"]) <= 31
    assert summary["registered"]["version"] == "1" and summary["deployed"]["version"] == "1"
    assert summary["batch"]["rows"] and summary["monitoring"]["breach"] is False


def test_a_failing_gate_registers_nothing(tmp_path: Path) -> None:
    """A gate the model cannot clear: the pipeline's Condition step takes its else branch, whose
    Fail step fails the execution as SageMaker does (so the run exits 1); no package is created."""
    spec_dir = tmp_path / "churn"
    shutil.copytree(REPO / "examples/churn", spec_dir, ignore=shutil.ignore_patterns(".mlcompile"))
    text = (spec_dir / "mlcompile.yaml").read_text()
    assert "{metric: roc_auc, min: 0.78}" in text
    (spec_dir / "mlcompile.yaml").write_text(text.replace("{metric: roc_auc, min: 0.78}", "{metric: roc_auc, min: 0.999}"))
    done, seconds = emulate(spec_dir / "mlcompile.yaml", tmp_path / "emulate", "--only", "training")
    print(f"emulated aws-prod training with a failing gate: {seconds:.1f} s")
    assert done.returncode == 1, done.stdout[-3000:] + done.stderr[-3000:]
    summary = json.loads(done.stdout)
    assert summary["gate"] == {"passed": False}
    assert summary["registered"]["version"] is None and summary["approved"] is None and summary["deployed"]["version"] is None
    assert summary["pipelines"]["churn-prediction-training"] == "failed" and "churn-prediction-deploy" not in summary["pipelines"]
