"""The feedback loop of the churn example under `mlcompile run --emulate`, through the platform
APIs only: the emulation config restages the activity source before monitoring with shifted
order and spend distributions; check-drift breaches, the alert and trigger-retraining steps
run, and trigger-retraining submits the training pipeline through the emulated KFP runs API
(Kubeflow) or PipelineJobs.create (Vertex AI). The emulator runs that submitted run to its end
before it writes the summary, which reports the run's id, status, gate and new version."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from emulate_services_support import alert_webhook, drift
from emulator_support import emulator_env

pytestmark = [pytest.mark.emulate, pytest.mark.slow]

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture
def webhook() -> Iterator[tuple[str, list[bytes]]]:
    """The team's chat webhook the alert step posts to (its URL a Kubernetes secret)."""
    with alert_webhook() as hook:
        yield hook


def _drifted_churn(tmp_path: Path, webhook_url: str) -> Path:
    spec_dir = tmp_path / "churn"
    shutil.copytree(REPO / "examples/churn", spec_dir, ignore=shutil.ignore_patterns(".mlcompile"))
    drift(spec_dir / "data/activity.csv", spec_dir / "data/activity_drifted.csv")
    (spec_dir / "emulate.yaml").write_text(
        f"secrets:\n  growth-ml-alerts-webhook: {webhook_url}\nrestage:\n  monitoring:\n    customer_activity_daily: data/activity_drifted.csv\n"
    )
    return spec_dir / "mlcompile.yaml"


def _emulate(spec: Path, profile: str, workdir: Path, only: tuple[str, ...] = ()) -> tuple[dict, float]:
    env = emulator_env()
    command = [sys.executable, "-m", "mlcompile", "run", str(spec), "--target", str(REPO / f"targets/{profile}.yaml"), "--emulate"]
    started = time.monotonic()
    done = subprocess.run(
        [*command, *(f"--only={kind}" for kind in only), "--format", "json", "--workdir", str(workdir)],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return json.loads(done.stdout), time.monotonic() - started


def _assert_breach_retrained(summary: dict, received: list[bytes]) -> None:
    assert summary["monitoring"] == {"breach": True}
    assert summary["tasks"]["churn-prediction-monitoring"]["alert"] == "succeeded"
    assert summary["tasks"]["churn-prediction-monitoring"]["trigger-retraining"] == "succeeded"
    assert any(b"churn-prediction: monitoring breach" in body for body in received)  # the alert reached the team's webhook
    retraining = summary["retraining"]
    assert retraining["requested"] is True and retraining["status"] == "succeeded"
    assert set(retraining["tasks"]) >= {"train", "evaluate", "gate", "register"}
    # trained on the drifted snapshots, the challenger still clears the gates (roc_auc >= 0.78,
    # no worse than the approved version 1) and is registered as version 2, pending approval
    assert retraining["gate"] is True and retraining["version"] == "2"
    assert summary["registered"]["version"] == "2" and summary["approved"]["version"] == "1"
    assert summary["pipelines"]["churn-prediction-training"] == "succeeded" and summary["status"] == "succeeded"


def test_a_drift_breach_on_kubeflow_submits_a_training_run_through_the_kfp_api_that_runs(tmp_path: Path, webhook: tuple[str, list[bytes]]) -> None:
    url, received = webhook
    summary, seconds = _emulate(_drifted_churn(tmp_path, url), "kfp-gke", tmp_path / "emulate", only=("training", "monitoring"))
    _assert_breach_retrained(summary, received)
    # the id is the one the KFP API gave the run the trigger-retraining step created with kfp.Client
    submitted = summary["retraining"]["submitted"]
    assert len(submitted) == 36 and submitted.count("-") == 4
    assert (tmp_path / "emulate/runs" / submitted / "register/log.txt").is_file()
    print(f"emulated kfp-gke drift and retraining: {seconds:.1f} s")


def test_a_vertex_day_trains_from_bigquery_deploys_scores_and_a_drift_breach_submits_a_pipeline_job_that_runs(
    tmp_path: Path, webhook: tuple[str, list[bytes]]
) -> None:
    """The whole first day of the Vertex AI system (no --only): training reads the bq:// tables,
    the emulator approves version 1, the deploy pipeline puts it on the endpoint, batch scores,
    and monitoring on the drifted snapshots breaches and submits retraining."""
    url, received = webhook
    summary, seconds = _emulate(_drifted_churn(tmp_path, url), "gcp-prod", tmp_path / "emulate")
    _assert_breach_retrained(summary, received)
    assert set(summary["pipelines"].values()) == {"succeeded"} and "churn-prediction-deploy" in summary["pipelines"]
    # the PipelineJob id trigger-retraining chose (pipeline, why, time) for PipelineJobs.create
    assert summary["retraining"]["submitted"].startswith("churn-prediction-training-breach-")
    assert summary["registered"]["registry"] == "vertex" and summary["registered"]["aliases"] == ["candidate"]
    assert summary["approved"] == {"version": "1", "by": "emulator"}
    # the Vertex AI endpoint's trafficSplit, read from the emulated Endpoints API: the approved version 1 takes all
    assert summary["deployed"] == {"endpoint": "churn-scorer", "version": "1", "traffic": {"1": 100}}
    assert summary["batch"]["rows"] > 0
    tasks = summary["tasks"]["churn-prediction-training"]
    # extract-features read the bq:// tables (parquet fixtures under bigquery/)
    assert tasks["extract-features"] == "succeeded" and tasks["validate-data"] == "succeeded"
    assert (tmp_path / "emulate/storage/bigquery/acme-growth-prod.crm.churn_labels.parquet").is_file()
    print(f"emulated gcp-prod day with drift and retraining: {seconds:.1f} s")
