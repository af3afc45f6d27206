"""The model monitor's reference data is an MLTable (Azure ML monitoring reads reference data
through MLTable): each training run's extract_features step writes, besides the training set
the trainer reads, a copy of it with the MLTable file describing it, and the pipeline
registers that as `<system>-training-data`, which the monitor's signal reads. Checked on the
golden azure-prod build of the churn example with azure-ai-ml's loaders, and by running the
part of the step's command that writes the MLTable on a local folder."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from requires import require

yaml = pytest.importorskip("yaml")
pd = pytest.importorskip("pandas")
require("azure.ai.ml")

BUILD = Path(__file__).parent / "golden" / "churn" / "azure-prod"


def test_the_monitor_reads_the_training_set_registered_as_an_mltable() -> None:
    from azure.ai.ml import load_job
    from azure.ai.ml.entities._load_functions import load_schedule  # not re-exported by azure.ai.ml

    job = load_job(BUILD / "pipelines" / "churn-prediction-training.yml")
    registered = job.outputs["training_data"]
    assert (registered.name, registered.type) == ("churn-prediction-training-data", "mltable")
    assert job.jobs["extract_features"].component.outputs["reference"].type == "mltable"
    monitor = load_schedule(BUILD / "schedules" / "churn-prediction-model-monitor.yml")
    reference = monitor.create_monitor.monitoring_signals["data-drift"].reference_data
    assert reference.input_data.type == "mltable"
    assert reference.input_data.path.removeprefix("azureml:") == "churn-prediction-training-data@latest"


def test_extract_features_writes_the_training_set_and_the_mltable_that_reads_it(tmp_path: Path) -> None:
    command = yaml.safe_load((BUILD / "pipelines" / "churn-prediction-training.yml").read_text())["jobs"]["extract_features"]["component"]["command"]
    _, writes_reference = command.split(" && ", 1)  # after the runtime's own command
    train, reference = tmp_path / "train", tmp_path / "reference"
    train.mkdir(), reference.mkdir()  # Azure ML creates an output's folder before the command
    frame = pd.DataFrame({"customer_id": ["C1", "C2"], "orders_30d": [1, 9]})
    frame.to_parquet(train / "train.parquet")
    # Azure ML substitutes the outputs' mount points into the command
    script = writes_reference.replace("${{outputs.train}}", str(train)).replace("${{outputs.reference}}", str(reference))
    subprocess.run(["sh", "-c", script], check=True, timeout=30)
    table = yaml.safe_load((reference / "MLTable").read_text())
    assert table["transformations"] == ["read_parquet"]
    (path,) = table["paths"]
    pd.testing.assert_frame_equal(pd.read_parquet(reference / path["file"]), frame)
