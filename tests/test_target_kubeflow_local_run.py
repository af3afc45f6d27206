"""A kubeflow build of the churn example runs end to end on this machine through
kfp.local.SubprocessRunner(use_venv=False), without network: extract features, validate,
train, evaluate, gate and — because the gates pass — register in MLflow; then the monitoring
pipeline checks drift and performance against it and, on a breach, alerts and asks for
retraining (dsl.If / dsl.Elif evaluated by kfp.local) — after version 1 is approved, as
monitoring watches only the approved version."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from requires import require

require("kfp.local", "sklearn", "mlflow")

ROOT = Path(__file__).resolve().parents[1]


def _no_network_prefix() -> list[str]:
    """`unshare -n` (a network namespace with nothing in it) when this machine allows it."""
    if shutil.which("unshare") is None:
        return []
    probe = subprocess.run(["unshare", "-n", "true"], capture_output=True, check=False)
    return ["unshare", "-n"] if probe.returncode == 0 else []


@pytest.mark.timeout(600)
def test_churn_training_pipeline_runs_with_kfp_local_and_registers_the_model(tmp_path: Path) -> None:
    prefix = _no_network_prefix()
    command = [*prefix, sys.executable, str(ROOT / "tests/stand_ins/kfp_local_run.py"), "churn", str(tmp_path), "--monitoring"]
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MLCOMPILE_", "MLFLOW_"))}  # nothing leaks in
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=580, env=env)
    failures = [line for line in (done.stdout + done.stderr).splitlines() if line.strip().startswith("error:")]
    assert done.returncode == 0, "\n".join(failures) or (done.stdout[-4000:] + done.stderr[-4000:])
    summary = json.loads(done.stdout.strip().splitlines()[-1])
    assert summary["tasks"] == ["evaluate", "extract-features", "gate", "register", "train", "validate-data"]
    # registered under manual approval; the run approves it before monitoring, which watches only an approved version
    assert summary["models"] == {"churn-classifier": {"aliases": {"candidate": 1, "production": 1}, "versions": 1}}
    assert "pipelines/churn-prediction-training.yaml" in summary["compiled"]
    # the monitoring pipeline too: both checks run; on a breach alert and retraining run together
    monitoring = set(summary["monitoring"])
    assert {"check-drift", "check-performance"} <= monitoring
    assert ("alert" in monitoring) == ("trigger-retraining" in monitoring)
    if not prefix:
        pytest.skip("ran, but this machine cannot drop the network (unshare -n): offline not proven")
