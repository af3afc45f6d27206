"""`mlcompile run --emulate` runs the container-trainer example (card-fraud: a user image,
tuned by Katib or a Vertex AI HyperparameterTuningJob) end to end on this machine: the image
is the local command its emulate.yaml names, the trials run as the platform runs them."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from emulator_support import emulator_env

from mlcompile.runtime.launch import _copy, _read_metrics

pytestmark = pytest.mark.emulate

REPO = Path(__file__).resolve().parents[1]
SPEC = REPO / "examples/container-trainer/mlcompile.yaml"
CARDS = {line.split(",")[0] for line in (REPO / "examples/container-trainer/data/cards.csv").read_text().splitlines()[1:]}


def _emulate(profile: str, workdir: Path) -> dict:
    env = emulator_env()
    command = [sys.executable, "-m", "mlcompile", "run", str(SPEC), "--target", str(REPO / f"targets/{profile}.yaml"), "--emulate"]
    done = subprocess.run([*command, "--format", "json", "--workdir", str(workdir)], cwd=REPO, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    summary = json.loads(done.stdout)
    assert set(summary["pipelines"].values()) == {"succeeded"} and "card-fraud-deploy" in summary["pipelines"]
    assert summary["registered"]["model"] == "card-fraud" and summary["registered"]["version"] == "1"
    assert summary["deployed"] == {"endpoint": "card-fraud", "version": "1", "traffic": {"1": 100}}
    assert summary["batch"]["rows"] == len(CARDS)  # each card scored once, through trainer/predict.py
    assert summary["monitoring"]["breach"] is False
    return summary


def _tune_metrics(workdir: Path) -> dict:
    [metrics] = (workdir / "storage/gcs").glob("*/*/card-fraud-training-*/tune/metrics")
    return json.loads(metrics.read_text())


@pytest.mark.slow
def test_katib_tunes_the_trainer_image_and_the_best_trial_is_registered_and_served(tmp_path: Path) -> None:
    summary = _emulate("kfp-gke", tmp_path / "emulate")
    assert summary["registered"]["registry"] == "http://mlflow.ml.svc:5000"
    # Katib's File collector read every metric of the trials; the best one's reached the gates
    assert set(_tune_metrics(tmp_path / "emulate")) >= {"roc_auc", "average_precision", "accuracy"}


@pytest.mark.slow
def test_vertex_tuning_reads_each_trials_metrics_beside_its_model_and_drift_finds_the_baseline(tmp_path: Path) -> None:
    summary = _emulate("gcp-prod", tmp_path / "emulate")
    assert summary["registered"]["registry"] == "vertex" and "production" in summary["registered"]["aliases"]
    # the study measures roc_auc only: average_precision (a gate) came from the trial's metrics.json
    assert set(_tune_metrics(tmp_path / "emulate")) >= {"roc_auc", "average_precision"}
    # the uploaded folder carries what register staged for the container's model
    [model] = (tmp_path / "emulate/storage/gcs").glob("*/*/card-fraud-training-*/tune/model")
    assert (model / "model.json").is_file() and (model / "baseline.parquet").is_file()


def test_the_launcher_reads_and_copies_a_trials_gs_uris_as_emulated_folders(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MLCOMPILE_EMULATE_ROOT", str(tmp_path))
    trial = tmp_path / "gcs/bucket/tune/3"
    (trial / "model").mkdir(parents=True)
    (trial / "model/fraud-model.joblib").write_bytes(b"model")
    (trial / "metrics.json").write_text('{"roc_auc": 0.86, "average_precision": 0.67}')
    _copy("gs://bucket/tune/3/model", str(tmp_path / "out/model"))
    assert (tmp_path / "out/model/fraud-model.joblib").read_bytes() == b"model"
    assert _read_metrics("gs://bucket/tune/3/metrics.json") == {"roc_auc": 0.86, "average_precision": 0.67}
