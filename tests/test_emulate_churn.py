"""`mlcompile run --emulate` runs the churn example's Kubeflow build end to end on this machine:
the built pipelines, the gs:// lake as folders, MLflow served locally. The Vertex AI day, the
drift breach and its retraining are in test_emulate_retraining.py."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
from emulator_support import emulator_env

pytestmark = [pytest.mark.emulate, pytest.mark.slow]

REPO = Path(__file__).resolve().parents[1]


def _emulate(profile: str, workdir: Path, spec: Path = REPO / "examples/churn/mlcompile.yaml", *args: str) -> tuple[subprocess.CompletedProcess[str], float]:
    env = emulator_env()
    command = [sys.executable, "-m", "mlcompile", "run", str(spec), "--target", str(REPO / f"targets/{profile}.yaml"), "--emulate", *args]
    started = time.monotonic()
    done = subprocess.run([*command, "--format", "json", "--workdir", str(workdir)], cwd=REPO, env=env, capture_output=True, text=True, timeout=600)
    return done, time.monotonic() - started


def test_the_kubeflow_build_trains_twice_and_the_second_approved_version_takes_the_canary_share(tmp_path: Path) -> None:
    """Two days of the Kubeflow system in one emulated run (`--runs 2`): the second training reads
    a restaged snapshot (new data, the same market), so it registers a second version as good as
    the first; approving it rolls it out as KServe's canary beside version 1."""
    import pandas as pd

    folder = tmp_path / "churn"
    shutil.copytree(REPO / "examples/churn", folder, ignore=shutil.ignore_patterns(".mlcompile"))
    activity = pd.read_csv(folder / "data/activity.csv")
    activity["spend_30d"] = activity["spend_30d"] + 0.001
    activity.to_csv(folder / "data/activity_v2.csv", index=False)
    (folder / "emulate.yaml").write_text("restage: {training: {customer_activity_daily: data/activity_v2.csv}}\n")
    done, seconds = _emulate("kfp-gke", tmp_path / "emulate", folder / "mlcompile.yaml", "--runs", "2")
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    summary = json.loads(done.stdout)
    assert summary["pipelines"] == dict.fromkeys(
        ["churn-prediction-training", "churn-prediction-deploy", "churn-prediction-batch-scoring", "churn-prediction-monitoring"], "succeeded"
    )
    assert summary["registered"] == {"model": "churn-classifier", "version": "2", "registry": "http://mlflow.ml.svc:5000"}
    assert summary["approved"] == {"version": "2", "by": "emulator"}  # the emulator approved each version (approval: manual)
    # read from the InferenceService KServe reconciled: version 2 on the canary, version 1 on the rest
    assert summary["deployed"] == {"endpoint": "churn-scorer", "version": "2", "traffic": {"2": 10, "1": 90}}
    customers = {line.split(",")[0] for line in (REPO / "examples/churn/data/activity.csv").read_text().splitlines()[1:]}
    assert summary["batch"]["rows"] == len(customers)  # each customer scored once, on the latest snapshot
    assert summary["monitoring"]["breach"] is False  # scoring data drawn like the training data
    assert set(summary) >= {"pipelines", "registered", "deployed", "batch", "monitoring", "retraining"}
    assert set(summary["deployed"]) == {"endpoint", "version", "traffic"} and "submitted" in summary["retraining"]
    # the steps read the built files: the training data came through the emulated gs:// lake
    lake = tmp_path / "emulate/storage/gcs/acme-growth-lake/crm/customer_activity_daily.parquet"
    assert lake.is_file()
    print(f"emulated kfp-gke run, two trainings: {seconds:.1f} s")
