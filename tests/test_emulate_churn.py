"""`mlcompile run --emulate` runs the churn example's Kubeflow build end to end on this
machine: the built pipelines, the gs:// lake as folders, MLflow served locally."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
from mlcompile.emulate.containers import host_environment

pytestmark = [pytest.mark.emulate, pytest.mark.slow]

REPO = Path(__file__).resolve().parents[1]


def _emulate(profile: str, workdir: Path, spec: Path = REPO / "examples/churn/mlcompile.yaml", *args: str) -> tuple[subprocess.CompletedProcess[str], float]:
    env = {**host_environment(), "PYTHONPATH": str(REPO / "src")}  # nothing of this session's MLCOMPILE_/MLFLOW_ settings
    command = [sys.executable, "-m", "mlcompile", "run", str(spec), "--target", str(REPO / f"targets/{profile}.yaml"), "--emulate", *args]
    started = time.monotonic()
    done = subprocess.run([*command, "--format", "json", "--workdir", str(workdir)], cwd=REPO, env=env, capture_output=True, text=True, timeout=600)
    return done, time.monotonic() - started


def test_the_kubeflow_build_trains_registers_scores_and_monitors(tmp_path: Path) -> None:
    done, seconds = _emulate("kfp-gke", tmp_path / "emulate")
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    summary = json.loads(done.stdout)
    assert summary["pipelines"] == {
        "churn-prediction-training": "succeeded",
        "churn-prediction-deploy": "succeeded",  # after the emulator approved version 1 (approval: manual)
        "churn-prediction-batch-scoring": "succeeded",
        "churn-prediction-monitoring": "succeeded",
    }
    assert summary["registered"] == {"model": "churn-classifier", "version": "1", "registry": "http://mlflow.ml.svc:5000"}
    assert summary["approved"] == {"version": "1", "by": "emulator"}
    assert summary["deployed"] == {"endpoint": "churn-scorer", "version": "1", "traffic": {"1": 100}}  # the first version takes all
    customers = {line.split(",")[0] for line in (REPO / "examples/churn/data/activity.csv").read_text().splitlines()[1:]}
    assert summary["batch"]["rows"] == len(customers)  # each customer scored once, on the latest snapshot
    assert summary["monitoring"]["breach"] is False  # scoring data drawn like the training data
    assert set(summary) >= {"pipelines", "registered", "deployed", "batch", "monitoring", "retraining"}
    assert set(summary["deployed"]) == {"endpoint", "version", "traffic"} and "submitted" in summary["retraining"]
    # the steps read the built files: the training data came through the emulated gs:// lake
    lake = tmp_path / "emulate/storage/gcs/acme-growth-lake/crm/customer_activity_daily.parquet"
    assert lake.is_file()
    print(f"emulated kfp-gke run: {seconds:.1f} s")


def test_the_vertex_build_trains_from_bigquery_fixtures_registers_deploys_scores_and_monitors(tmp_path: Path) -> None:
    done, seconds = _emulate("gcp-prod", tmp_path / "emulate")
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    summary = json.loads(done.stdout)
    assert set(summary["pipelines"].values()) == {"succeeded"} and "churn-prediction-deploy" in summary["pipelines"]
    assert summary["registered"]["registry"] == "vertex" and summary["registered"]["version"] == "1"
    assert "production" in summary["registered"]["aliases"] and summary["approved"] == {"version": "1", "by": "emulator"}
    # the Vertex AI endpoint's trafficSplit, read from the emulated Endpoints API
    assert summary["deployed"] == {"endpoint": "churn-scorer", "version": "1", "traffic": {"1": 100}}
    assert summary["batch"]["rows"] > 0 and summary["monitoring"] == {"breach": False}
    print(f"emulated gcp-prod run: {seconds:.1f} s")
    tasks = summary["tasks"]["churn-prediction-training"]
    # extract-features read the bq:// tables (parquet fixtures under bigquery/)
    assert tasks["extract-features"] == "succeeded" and tasks["validate-data"] == "succeeded"
    assert (tmp_path / "emulate/storage/bigquery/acme-growth-prod.crm.churn_labels.parquet").is_file()


def test_drifted_data_breaches_alerts_and_asks_for_retraining(tmp_path: Path) -> None:
    import pandas as pd

    folder = tmp_path / "churn"
    shutil.copytree(REPO / "examples/churn", folder, ignore=shutil.ignore_patterns(".mlcompile"))
    activity = pd.read_csv(folder / "data/activity.csv")
    activity["spend_30d"] = activity["spend_30d"] * 6 + 500  # a market the model never saw
    activity["orders_30d"] = activity["orders_30d"] + 20
    activity.to_csv(folder / "data/activity_drifted.csv", index=False)
    (folder / "emulate.yaml").write_text(
        "secrets: {growth-ml-alerts-webhook: 'http://127.0.0.1:9/alerts'}\n"
        "restage: {monitoring: {customer_activity_daily: data/activity_drifted.csv}}\n"
    )
    done, _ = _emulate("kfp-gke", tmp_path / "emulate", folder / "mlcompile.yaml", "--only", "training", "--only", "monitoring")
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    summary = json.loads(done.stdout)
    assert summary["monitoring"] == {"breach": True}
    assert summary["retraining"]["requested"] is True
    tasks = summary["tasks"]["churn-prediction-monitoring"]
    assert tasks["condition-2"] == "succeeded" and tasks["alert"] == "succeeded" and tasks["trigger-retraining"] == "succeeded"
