"""`retraining.on_new_data` on SageMaker, debounced: S3 sends one event per object and each
starts the sensor pipeline the build's rule targets (not training); the sensor's
trigger-retraining step — its config from the churn example's aws-prod build — lets only the
oldest running sensor execution decide, starts training through StartPipelineExecution only
past its watermark and while no training runs. Against moto (in process); S3 is the
emulator's folder layout."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from requires import require

require("sagemaker")
require("moto", "boto3")

from test_target_sagemaker_support import plan_of  # noqa: E402

REGION = "eu-west-1"
SENSOR = "churn-prediction-retrain-on-new-data-sensor"
TRAINING = "churn-prediction-training"


@pytest.fixture(scope="module")
def build() -> dict[str, Any]:
    from mlcompile.targets.sagemaker import SageMakerTarget

    plan, _ = plan_of("churn")
    return {f.path: json.loads(f.content) for f in SageMakerTarget().render(plan)}


def test_each_new_object_starts_the_sensor_not_training(build: dict[str, Any]) -> None:
    (target,) = build["rules/churn-prediction-retrain-on-new-data.targets.json"]["Targets"]
    assert target["Arn"].endswith(f":pipeline/{SENSOR}")
    (step,) = build[f"pipelines/{SENSOR}.definition.json"]["Steps"]
    assert step["Arguments"]["AppSpecification"]["ContainerArguments"][2:] == ["--pipeline-run", {"Get": "Execution.PipelineExecutionArn"}]


@pytest.fixture
def aws(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, build: dict[str, Any]) -> Iterator[Any]:
    for key, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": REGION,
        "MLCOMPILE_EMULATE_ROOT": str(tmp_path / "root"),
    }.items():
        monkeypatch.setenv(key, value)
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    import boto3
    import moto

    with moto.mock_aws():
        client = boto3.client("sagemaker", region_name=REGION)
        for name in (TRAINING, SENSOR):
            client.create_pipeline(**build[f"pipelines/{name}.json"], PipelineDefinition=json.dumps(build[f"pipelines/{name}.definition.json"]))
        yield client


def executing(client: Any, arn: str, status: str = "Executing") -> None:
    """A running execution (moto's finish at once)."""
    from moto.sagemaker.models import sagemaker_backends

    pipeline = arn.split(":pipeline/")[1].split("/")[0]
    sagemaker_backends["123456789012"][REGION].pipelines[pipeline].pipeline_executions[arn].pipeline_execution_status = status


def sensor_tick(build: dict[str, Any], arn: str, monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    from mlcompile.runtime import step_function

    config = next(
        c
        for path, c in build.items()
        if path.startswith("configs/") and c.get("kind") == "trigger_retraining" and c.get("platform_run", {}).get("sensor") == SENSOR
    )
    monkeypatch.setenv("MLCOMPILE_PIPELINE_RUN", arn)
    return step_function("trigger_retraining")(config, {}, {})


def labels(root: Path, months: int) -> None:
    path = root / "s3" / "acme-growth-lake-eu" / "crm" / "churn_labels.parquet"
    path.parent.mkdir(parents=True, exist_ok=True)
    stamps = pd.date_range("2026-01-31", periods=months, freq="ME", tz="UTC")
    pd.DataFrame({"customer_id": [f"C{i}" for i in range(months)], "label_ts": stamps, "churned": [i % 2 for i in range(months)]}).to_parquet(path)


def test_a_burst_of_objects_starts_training_once(build: dict[str, Any], aws: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    root = tmp_path / "root"
    labels(root, 2)
    first, second = (aws.start_pipeline_execution(PipelineName=SENSOR)["PipelineExecutionArn"] for _ in range(2))
    executing(aws, first)
    executing(aws, second)
    later = sensor_tick(build, second, monkeypatch)
    assert later["submitted"] is None and later["debounced"] == first
    assert sensor_tick(build, first, monkeypatch)["submitted"] is None  # first look: the watermark is recorded
    assert (
        json.loads((root / "s3" / "acme-ml-artifacts-eu-west-1" / "mlcompile" / "churn-prediction" / "watermarks" / f"{SENSOR}.json").read_text())["rows"] == 2
    )
    executing(aws, first, "Succeeded")

    labels(root, 3)  # a new month of labels
    started = sensor_tick(build, second, monkeypatch)
    (training,) = aws.list_pipeline_executions(PipelineName=TRAINING)["PipelineExecutionSummaries"]
    assert started["submitted"] == training["PipelineExecutionArn"]

    executing(aws, second, "Succeeded")
    executing(aws, training["PipelineExecutionArn"])
    labels(root, 4)
    third = aws.start_pipeline_execution(PipelineName=SENSOR)["PipelineExecutionArn"]
    waiting = sensor_tick(build, third, monkeypatch)
    assert waiting["submitted"] is None and waiting["active"] == training["PipelineExecutionArn"]
    assert len(aws.list_pipeline_executions(PipelineName=TRAINING)["PipelineExecutionSummaries"]) == 1


MONITORING = "churn-prediction-monitoring"


def breach_config(build: dict[str, Any]) -> dict[str, Any]:
    return next(
        c
        for path, c in build.items()
        if path.startswith("configs/") and c.get("kind") == "trigger_retraining" and c["params"].get("when", "breach") == "breach"
    )


def test_a_breach_starts_training_from_the_monitoring_step_not_from_a_rule(build: dict[str, Any]) -> None:
    """One path starts training on a breach: the monitoring pipeline's step. The alarm on that
    step only tells (no action, no rule targets it), so nothing starts a second execution."""
    assert breach_config(build)["platform_run"] == {"kind": "sagemaker.pipeline_execution", "pipeline": TRAINING, "sensor": MONITORING}
    assert not [path for path in build if path.startswith("rules/") and "breach" in path]
    alarm = build["alarms/churn-prediction-monitoring-breach.json"]
    assert alarm["Dimensions"][1] == {"Name": "StepName", "Value": "trigger-retraining"}
    assert not alarm.get("AlarmActions")


def breach_tick(build: dict[str, Any], arn: str, monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    from mlcompile.runtime import step_function

    monkeypatch.setenv("MLCOMPILE_PIPELINE_RUN", arn)
    return step_function("trigger_retraining")(breach_config(build), {}, {})


def test_a_breach_starts_training_once_and_not_while_training_runs(build: dict[str, Any], aws: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    aws.create_pipeline(**build[f"pipelines/{MONITORING}.json"], PipelineDefinition=json.dumps(build[f"pipelines/{MONITORING}.definition.json"]))
    first, second = (aws.start_pipeline_execution(PipelineName=MONITORING)["PipelineExecutionArn"] for _ in range(2))
    executing(aws, first)
    executing(aws, second)
    later = breach_tick(build, second, monkeypatch)  # two monitoring executions overlap: the older decides
    assert later["submitted"] is None and later["debounced"] == first
    assert aws.list_pipeline_executions(PipelineName=TRAINING)["PipelineExecutionSummaries"] == []

    started = breach_tick(build, first, monkeypatch)
    (training,) = aws.list_pipeline_executions(PipelineName=TRAINING)["PipelineExecutionSummaries"]
    assert started["submitted"] == training["PipelineExecutionArn"]

    executing(aws, first, "Succeeded")
    executing(aws, second, "Succeeded")
    executing(aws, training["PipelineExecutionArn"])
    third = aws.start_pipeline_execution(PipelineName=MONITORING)["PipelineExecutionArn"]
    executing(aws, third)
    waiting = breach_tick(build, third, monkeypatch)  # the next day's breach, training still running
    assert waiting["submitted"] is None and waiting["active"] == training["PipelineExecutionArn"]
    assert len(aws.list_pipeline_executions(PipelineName=TRAINING)["PipelineExecutionSummaries"]) == 1
