"""`mlcompile run --target azure-prod --emulate` runs each example's Azure ML build end to end
on this machine, through Azure ML's own APIs only: `mlcompile deploy` with MLClient against the
workspace stand-in, the pipeline jobs (pipelines/*.yml) by the emulator's interpreter, the
approval through MLClient, the retraining a drift breach submits through MLClient run to its
end. One emulated run per example (module-scoped fixtures): every test below reads it."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from emulator_support import emulator_env

sys.path.insert(0, str(Path(__file__).parent))
from emulate_services_support import SUMMARY_KEYS, alert_webhook, drift  # noqa: E402

pytestmark = [pytest.mark.emulate, pytest.mark.slow, pytest.mark.timeout(1200)]  # a whole emulated system per example

REPO = Path(__file__).resolve().parents[1]


def _emulate(spec: Path, workdir: Path, *args: str) -> tuple[subprocess.CompletedProcess[str], float]:
    env = emulator_env()
    command = [
        sys.executable,
        "-m",
        "mlcompile",
        "run",
        str(spec),
        "--target",
        str(REPO / "targets/azure-prod.yaml"),
        "--emulate",
        *args,
        "--format",
        "json",
        "--workdir",
        str(workdir),
    ]
    started = time.monotonic()
    done = subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True, timeout=900)
    seconds = time.monotonic() - started
    print(f"emulated azure-prod run of {spec.parent.name}: {seconds:.1f} s")
    return done, seconds


@pytest.fixture(scope="module")
def webhook() -> Iterator[tuple[str, list[bytes]]]:
    with alert_webhook() as hook:
        yield hook


@pytest.fixture(scope="module")
def churn(tmp_path_factory: pytest.TempPathFactory, webhook: tuple[str, list[bytes]]) -> dict:
    """The churn example with its activity source drifted before monitoring (orders x3, spend
    x2.5: PSI far above 0.2), so that one run goes through breach and retraining too."""
    folder = tmp_path_factory.mktemp("azure-churn")
    spec_dir = folder / "churn"
    shutil.copytree(REPO / "examples/churn", spec_dir, ignore=shutil.ignore_patterns(".mlcompile"))
    drift(spec_dir / "data/activity.csv", spec_dir / "data/activity_drifted.csv")
    (spec_dir / "emulate.yaml").write_text(
        f"secrets:\n  growth-ml-alerts-webhook: {webhook[0]}\nrestage:\n  monitoring:\n    customer_activity_daily: data/activity_drifted.csv\n"
    )
    done, _ = _emulate(spec_dir / "mlcompile.yaml", folder / "emulate")
    assert done.returncode == 0, done.stdout[-6000:] + done.stderr[-4000:]
    return json.loads(done.stdout)


@pytest.fixture(scope="module")
def card_fraud(tmp_path_factory: pytest.TempPathFactory) -> dict:
    done, _ = _emulate(REPO / "examples/container-trainer/mlcompile.yaml", tmp_path_factory.mktemp("azure-card-fraud") / "emulate")
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-4000:]
    return json.loads(done.stdout)


def _entities(path: str) -> int:
    return len({line.split(",")[0] for line in (REPO / path).read_text().splitlines()[1:]})


def test_churn_trains_registers_approves_deploys_scores_and_monitors(churn: dict) -> None:
    assert set(churn) == SUMMARY_KEYS and churn["platform"] == "azureml"
    assert churn["pipelines"] == {
        "churn-prediction-training": "succeeded",
        "churn-prediction-deploy": "succeeded",  # the job the approver submits after approving version 1
        "churn-prediction-batch-scoring": "succeeded",
        "churn-prediction-monitoring": "succeeded",
    }
    assert churn["gate"] == {"passed": True}
    assert churn["approved"] == {"version": "1", "by": "emulator"}
    assert churn["registered"]["registry"].startswith("azureml://westeurope.api.azureml.ms/mlflow/v1.0/subscriptions/")
    # the approved version serves, taking all the traffic while it is the only one
    assert churn["deployed"] == {"endpoint": "churn-scorer", "version": "1", "traffic": {"1": 100}}
    assert churn["batch"]["rows"] == _entities("examples/churn/data/activity.csv")


def test_a_churn_drift_breach_alerts_and_submits_retraining_through_mlclient_which_runs(churn: dict, webhook: tuple[str, list[bytes]]) -> None:
    assert churn["monitoring"] == {"breach": True}
    assert churn["tasks"]["churn-prediction-monitoring"]["alert"] == "succeeded"
    assert any(b"churn-prediction: monitoring breach" in body for body in webhook[1])
    retraining = churn["retraining"]
    assert retraining["requested"] is True and retraining["status"] == "succeeded", retraining
    assert set(retraining["tasks"]) >= {"train", "evaluate", "gate", "register"}
    # the challenger trained on the drifted data clears the gates: version 2, pending approval
    assert retraining["gate"] is True and retraining["version"] == "2"
    assert churn["registered"]["version"] == "2" and churn["approved"]["version"] == "1"


def test_card_fraud_sweeps_the_trainer_image_and_serves_the_best_trial(card_fraud: dict) -> None:
    assert set(card_fraud) == SUMMARY_KEYS and card_fraud["status"] == "succeeded", card_fraud["failures"]
    assert set(card_fraud["pipelines"].values()) == {"succeeded"}
    assert card_fraud["tasks"]["card-fraud-training"]["tune"] == "succeeded"
    assert card_fraud["registered"]["model"] == "card-fraud" and card_fraud["registered"]["version"] == "1"
    assert card_fraud["deployed"] == {"endpoint": "card-fraud", "version": "1", "traffic": {"1": 100}}
    assert card_fraud["batch"]["rows"] == _entities("examples/container-trainer/data/cards.csv")
    assert card_fraud["monitoring"]["breach"] is False


def test_a_failing_gate_registers_nothing(tmp_path: Path) -> None:
    """A gate the model cannot clear: the register step's guard reads the decision `false` and
    skips (the job stays green, as Azure ML runs it); no model version is created."""
    spec_dir = tmp_path / "churn"
    shutil.copytree(REPO / "examples/churn", spec_dir, ignore=shutil.ignore_patterns(".mlcompile"))
    text = (spec_dir / "mlcompile.yaml").read_text()
    assert "{metric: roc_auc, min: 0.78}" in text
    (spec_dir / "mlcompile.yaml").write_text(text.replace("{metric: roc_auc, min: 0.78}", "{metric: roc_auc, min: 0.999}"))
    done, _ = _emulate(spec_dir / "mlcompile.yaml", tmp_path / "emulate", "--only", "training")
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    summary = json.loads(done.stdout)
    assert summary["gate"] == {"passed": False}
    assert summary["tasks"]["churn-prediction-training"]["register"] == "skipped"
    assert summary["registered"]["version"] is None and summary["approved"] is None and summary["deployed"]["version"] is None
