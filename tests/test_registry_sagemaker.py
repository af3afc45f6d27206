"""The runtime's SageMaker Model Registry backend, against moto (with the stand-in's
UpdateEndpoint): the versions are model packages created with the very arguments of the
build's RegisterModel step (its Get/Join values filled in as SageMaker Pipelines would), S3 is
the emulator's folder layout, and every request goes through boto3, so botocore validates it.

Newest Approved package = production; a container-trained version is described by the step
config with its metrics from the package's ModelMetrics and its drift baseline from the
training set its `mlcompile-drift-baseline` metadata names; deploy-online fills the build's serving requests and creates, then
updates, the endpoint with the canary."""

from __future__ import annotations

import json
import tarfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from requires import require

require("sagemaker")
moto = pytest.importorskip("moto")
boto3 = pytest.importorskip("boto3")

import stand_ins.moto_aws  # noqa: E402,F401  (UpdateEndpoint, which moto lacks)
from container_trainer_support import extract  # noqa: E402
from test_target_sagemaker_support import plan_of  # noqa: E402

REGION = "eu-west-1"
BUCKET = "acme-ml-artifacts-eu-west-1"
RUNS = f"s3://{BUCKET}/mlcompile/card-fraud/runs"
PREDICT = """\
import json, sys
for line in sys.stdin:
    rows = json.loads(line)["instances"]
    print(json.dumps({"predictions": [0 for _ in rows], "scores": [0.25 for _ in rows]}), flush=True)
"""


@pytest.fixture(scope="module")
def build() -> dict[str, Any]:
    """The container-trainer example's aws-prod build: RegisterModel arguments and step configs."""
    from mlcompile.targets.sagemaker import SageMakerTarget

    plan, _ = plan_of("container-trainer")
    files = {f.path: json.loads(f.content) for f in SageMakerTarget().render(plan)}
    training = files["pipelines/card-fraud-training.definition.json"]
    configs = {c["step"]: c for path, c in files.items() if path.startswith("configs/") and c.get("system") == "card-fraud"}
    return {"register": _find(training["Steps"], "RegisterModel")["Arguments"], "configs": configs}


def _find(steps: list[dict[str, Any]], kind: str) -> dict[str, Any]:
    for step in steps:
        if step["Type"] == kind:
            return step
        inner = [*step.get("Arguments", {}).get("IfSteps", []), *step.get("Arguments", {}).get("ElseSteps", [])]
        if inner and (found := _find(inner, kind)):
            return found
    return {}


def _resolved(value: Any, properties: dict[str, str]) -> Any:
    """A definition value with SageMaker Pipelines' Get / Std:Join evaluated."""
    if isinstance(value, dict) and "Get" in value:
        return properties[value["Get"]]
    if isinstance(value, dict) and "Std:Join" in value:
        return value["Std:Join"]["On"].join(str(_resolved(v, properties)) for v in value["Std:Join"]["Values"])
    if isinstance(value, dict):
        return {k: _resolved(v, properties) for k, v in value.items()}
    if isinstance(value, list):
        return [_resolved(v, properties) for v in value]
    return value


@pytest.fixture
def aws(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """moto for the AWS APIs; S3 objects as the emulator keeps them (MLCOMPILE_EMULATE_ROOT/s3)."""
    for key, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": REGION,
        "MLCOMPILE_EMULATE_ROOT": str(tmp_path / "root"),
    }.items():
        monkeypatch.setenv(key, value)
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    with moto.mock_aws():
        boto3.client("sagemaker", region_name=REGION).create_model_package_group(ModelPackageGroupName="card-fraud")
        yield tmp_path / "root" / "s3"


def s3_path(root: Path, uri: str) -> Path:
    path = root / uri.removeprefix("s3://")
    path.parent.mkdir(parents=True, exist_ok=True)
    return path


def register(build: dict[str, Any], root: Path, run: str, roc_auc: float, train: str) -> str:
    """What the training pipeline's RegisterModel step does for run `run`: the trainer's
    model.tar.gz (no model.json), the evaluation report, the training set, one package."""
    model = root.parent.parent / f"trained-{run}"
    model.mkdir(parents=True)
    (model / "predict.py").write_text(PREDICT)
    job = f"tune-{run}-trial-1"
    with tarfile.open(s3_path(root, f"s3://{BUCKET}/mlcompile/card-fraud/models/{job}/output/model.tar.gz"), "w:gz") as tar:
        tar.add(model / "predict.py", arcname="predict.py")
    s3_path(root, f"{RUNS}/{run}/evaluate/metrics/metrics.json").write_text(
        json.dumps({"metrics": {"roc_auc": roc_auc, "average_precision": 0.5}, "production": None})
    )
    s3_path(root, f"{RUNS}/{run}/extract-features/train/train.parquet").write_bytes(Path(train).read_bytes())
    properties = {
        "Steps.tune.TrainingJobSummaries[0].TrainingJobName": job,
        "Steps.evaluate.ProcessingOutputConfig.Outputs['metrics'].S3Output.S3Uri": f"{RUNS}/{run}/evaluate/metrics",
        "Steps.extract-features.ProcessingOutputConfig.Outputs['train'].S3Output.S3Uri": f"{RUNS}/{run}/extract-features/train",
    }
    arguments = _resolved(build["register"], properties)
    return boto3.client("sagemaker", region_name=REGION).create_model_package(**arguments)["ModelPackageArn"]


@pytest.fixture(scope="module")
def train_set(tmp_path_factory: pytest.TempPathFactory) -> str:
    return extract(tmp_path_factory.mktemp("card-fraud"))["train"]


def approve(arn: str) -> None:
    boto3.client("sagemaker", region_name=REGION).update_model_package(ModelPackageArn=arn, ModelApprovalStatus="Approved")


def test_no_step_of_an_aws_build_looks_for_mlflow(build: dict[str, Any], aws: Path) -> None:
    from mlcompile.runtime.registry import backend

    assert {step: backend(config).kind for step, config in build["configs"].items()} == dict.fromkeys(build["configs"], "sagemaker")


def test_production_is_the_newest_approved_package_described_with_its_metrics_and_baseline(build: dict[str, Any], aws: Path, train_set: str) -> None:
    from mlcompile.runtime.registry import backend, not_approved, production_model

    config = build["configs"]["evaluate"]
    assert config["platform"]["name"] == "sagemaker" and backend(config).kind == "sagemaker"
    first = register(build, aws, "run-1", 0.81, train_set)
    assert production_model(config, "card-fraud") is None  # pending manual approval
    assert "ModelApprovalStatus to Approved" in not_approved(config, "card-fraud")
    approve(first)
    register(build, aws, "run-2", 0.9, train_set)  # newer, not approved: not production
    serving = production_model(config, "card-fraud")
    assert serving is not None and serving.version == "1" and serving.alias == "production"
    manifest = json.loads((serving.folder / "model.json").read_text())
    assert manifest["format"] == "mlcompile.container/1" and manifest["metrics"] == {"roc_auc": 0.81, "average_precision": 0.5}
    baseline = pd.read_parquet(serving.folder / "baseline.parquet")
    assert "foreign_ratio_7d" in baseline.columns and len(baseline) > 0
    package = boto3.client("sagemaker", region_name=REGION).describe_model_package(ModelPackageName=first)
    assert "DriftCheckBaselines" not in package  # no Model Monitor statistics is claimed
    assert package["CustomerMetadataProperties"]["mlcompile-drift-baseline"] == f"{RUNS}/run-1/extract-features/train/train.parquet"


def test_a_version_registered_with_the_training_set_as_its_drift_check_baseline_still_gets_its_baseline(
    build: dict[str, Any], aws: Path, train_set: str
) -> None:
    """Versions registered by earlier builds named the training set in
    DriftCheckBaselines.ModelDataQuality.Statistics: drift checks of them keep working."""
    from mlcompile.runtime.registry import production_model

    metadata = {k: v for k, v in build["register"]["CustomerMetadataProperties"].items() if k != "mlcompile-drift-baseline"}
    earlier = {**build["register"], "CustomerMetadataProperties": metadata}
    earlier["DriftCheckBaselines"] = {
        "ModelDataQuality": {
            "Statistics": {"ContentType": "application/x-parquet", "S3Uri": build["register"]["CustomerMetadataProperties"]["mlcompile-drift-baseline"]}
        }
    }
    approve(register({**build, "register": earlier}, aws, "run-1", 0.81, train_set))
    serving = production_model(build["configs"]["evaluate"], "card-fraud")
    assert serving is not None and len(pd.read_parquet(serving.folder / "baseline.parquet")) > 0


def test_evaluate_compares_with_the_champions_registered_metrics(build: dict[str, Any], aws: Path, train_set: str, tmp_path: Path) -> None:
    from mlcompile.runtime.evaluation import _production_metrics

    approve(register(build, aws, "run-1", 0.83, train_set))
    config = build["configs"]["evaluate"]
    production, note = _production_metrics(config, ["roc_auc"], pd.read_parquet(train_set), "is_fraud", {})
    assert note is None and production == {"model": "card-fraud", "version": "1", "metrics": {"roc_auc": 0.83}, "source": "reported by its trainer"}


def test_deploy_online_creates_the_endpoint_then_rolls_the_next_approved_version_out_as_a_canary(build: dict[str, Any], aws: Path, train_set: str) -> None:
    from mlcompile.runtime import step_function

    sagemaker = boto3.client("sagemaker", region_name=REGION)
    config = build["configs"]["deploy-online"]
    first = register(build, aws, "run-1", 0.8, train_set)
    approve(first)
    result = step_function("deploy_online")(config, {}, {})
    assert result["version"] == "1" and result["traffic"] == {"1": 100}
    endpoint = sagemaker.describe_endpoint(EndpointName="card-fraud")
    assert endpoint["EndpointConfigName"] == "card-fraud-v1"
    model = sagemaker.describe_model(ModelName="card-fraud-v1")
    assert model["PrimaryContainer"]["ModelPackageName"] == first
    scaling = boto3.client("application-autoscaling", region_name=REGION).describe_scalable_targets(ServiceNamespace="sagemaker")["ScalableTargets"]
    assert [(t["ResourceId"], t["MinCapacity"], t["MaxCapacity"]) for t in scaling] == [("endpoint/card-fraud/variant/AllTraffic", 2, 4)]
    assert boto3.client("cloudwatch", region_name=REGION).describe_alarms(AlarmNames=["card-fraud-rollback"])["MetricAlarms"]
    versions = {m["ModelPackageVersion"]: m for m in sagemaker.list_model_packages(ModelPackageGroupName="card-fraud")["ModelPackageSummaryList"]}
    assert sagemaker.describe_model_package(ModelPackageName=versions[1]["ModelPackageArn"])["CustomerMetadataProperties"]["mlcompile.endpoint"] == "card-fraud"

    approve(register(build, aws, "run-2", 0.85, train_set))
    result = step_function("deploy_online")(config, {}, {})
    assert result["version"] == "2"
    assert result["traffic"] == {"2": 50, "card-fraud-v1": 50}  # one canary instance of two: half the traffic
    assert sagemaker.describe_endpoint(EndpointName="card-fraud")["EndpointConfigName"] == "card-fraud-v2"
    again = step_function("deploy_online")(config, {}, {})
    assert "already serves version 2" in again["note"]


def test_deploying_the_version_the_endpoint_serves_leaves_its_package_untouched(build: dict[str, Any], aws: Path, train_set: str) -> None:
    """Every UpdateModelPackage of an Approved package is a "SageMaker Model Package State
    Change" event with ModelApprovalStatus Approved, which the build's deploy-on-approval rule
    matches: the deploy it starts must change nothing, or each deploy would start the next."""
    from mlcompile.runtime import step_function

    sagemaker = boto3.client("sagemaker", region_name=REGION)
    arn = register(build, aws, "run-1", 0.8, train_set)
    approve(arn)
    step_function("deploy_online")(build["configs"]["deploy-online"], {}, {})  # records the endpoint: one event
    recorded = sagemaker.describe_model_package(ModelPackageName=arn)
    again = step_function("deploy_online")(build["configs"]["deploy-online"], {}, {})  # what that event starts
    assert "already serves version 1" in again["note"]
    after = sagemaker.describe_model_package(ModelPackageName=arn)
    assert after["LastModifiedTime"] == recorded["LastModifiedTime"]
    assert after["CustomerMetadataProperties"] == recorded["CustomerMetadataProperties"]
