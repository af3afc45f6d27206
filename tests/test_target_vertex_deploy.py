"""`mlcompile deploy` for vertex against a local stand-in of the Vertex AI REST API
(aiplatform service clients, `api_endpoint` + REST transport, 127.0.0.1 only)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from cli_support import mlcompile
from requires import require

require("google.cloud.aiplatform")
sys.path.insert(0, str(Path(__file__).parent / "stand_ins"))
from vertex_api import VertexStandIn  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


def deploy(endpoint: str, example: str = "churn") -> subprocess.CompletedProcess[str]:
    command = ["deploy", f"examples/{example}/mlcompile.yaml", "-t", "targets/gcp-prod.yaml", "--yes", "--git-commit", "none"]
    return mlcompile(command, env={**os.environ, "MLCOMPILE_VERTEX_API_ENDPOINT": endpoint, "NO_PROXY": "127.0.0.1"})


def test_deploy_creates_schedules_submits_the_training_job_and_creates_the_endpoint_once() -> None:
    with VertexStandIn() as api:
        first = deploy(api.endpoint)
        assert first.returncode == 0, first.stderr
        assert "create schedule churn-prediction-retraining: TZ=UTC 0 2 * * 1" in first.stdout
        assert "create endpoint churn-scorer" in first.stdout
        schedules = {s["displayName"]: s for s in api.schedules.values()}
        assert sorted(schedules) == [
            "churn-prediction-batch-scoring",
            "churn-prediction-monitoring",
            "churn-prediction-retrain-on-new-data-sensor",
            "churn-prediction-retraining",
        ]
        job = schedules["churn-prediction-retraining"]["createPipelineJobRequest"]["pipelineJob"]
        assert job["serviceAccount"] == "vertex-pipelines@acme-ml-prod.iam.gserviceaccount.com"
        assert job["pipelineSpec"]["pipelineInfo"]["name"] == "churn-prediction-training"
        (job_id,) = api.pipeline_jobs
        assert job_id.startswith("churn-prediction-training-")
        assert api.endpoints["churn-scorer"]["displayName"] == "churn-scorer"
        writes = [c for c in api.calls if c[0] != "GET"]

        second = deploy(api.endpoint)
        assert second.returncode == 0, second.stderr
        lines = [line for line in second.stdout.splitlines() if line.strip()]
        assert lines and all(line.startswith("unchanged ") for line in lines), second.stdout
        assert len(api.pipeline_jobs) == 1 and len(api.schedules) == 4
        # the second deploy only reads: the job of this build is found, not submitted again
        assert [c for c in api.calls if c[0] != "GET"] == writes


def test_a_schedule_in_berlin_time_reaches_vertex_with_its_time_zone() -> None:
    with VertexStandIn() as api:
        done = deploy(api.endpoint, "batch-scoring")
        assert done.returncode == 0, done.stderr
        crons = {s["displayName"]: s["cron"] for s in api.schedules.values()}
        assert crons["invoice-late-payment-batch-scoring"] == "TZ=Europe/Berlin 0 6 * * 1-5"
