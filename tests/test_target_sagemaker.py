"""The `sagemaker` target, read as documentation: what a build of each example contains on
the aws-prod profile (eu-west-1, role SageMakerPipelinesExecution, bucket
acme-ml-artifacts-eu-west-1), and what the target refuses, where, and why.

Shapes against botocore's service model: test_target_sagemaker_shapes.py; deploy against a
local moto server: test_target_sagemaker_deploy.py."""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest
from requires import require

require("sagemaker")

from test_target_sagemaker_support import ROOT, all_builds, example_text, plan_of, plan_of_text, write  # noqa: E402

from mlcompile.errors import SpecError  # noqa: E402
from mlcompile.plan.step_config import step_config  # noqa: E402
from mlcompile.targets.capabilities import capability_refusals  # noqa: E402
from mlcompile.targets.sagemaker import SageMakerTarget  # noqa: E402
from mlcompile.targets.sagemaker.cron import CronNotExpressible, aws_cron  # noqa: E402

BUCKET = "acme-ml-artifacts-eu-west-1"
ROLE = "arn:aws:iam::123456789012:role/SageMakerPipelinesExecution"
SCHEDULERS = "arn:aws:iam::123456789012:role/EventBridgeStartPipelines"
RUNTIME = "123456789012.dkr.ecr.eu-west-1.amazonaws.com/mlcompile-runtime:0.1.0"


@pytest.fixture(scope="module")
def builds(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    return all_builds(tmp_path_factory.mktemp("sagemaker"))


def load(folder: Path, path: str) -> Any:
    return json.loads((folder / path).read_text())


def steps_of(definition: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Every step by name, those inside condition branches too."""
    found: dict[str, dict[str, Any]] = {}

    def walk(steps: list[dict[str, Any]]) -> None:
        for step in steps:
            found[step["Name"]] = step
            if step["Type"] == "Condition":
                walk(step["Arguments"]["IfSteps"])
                walk(step["Arguments"]["ElseSteps"])

    walk(definition["Steps"])
    return found


def tag_map(tags: list[dict[str, str]]) -> dict[str, str]:
    return {t["Key"]: t["Value"] for t in tags}


# ---------------------------------------------------------------------------- the build


def test_a_build_lists_every_file_with_its_kind(builds: dict[str, Path]) -> None:
    manifest = load(builds["churn"], "manifest.json")
    kinds = {f["path"]: f["kind"] for f in manifest["files"]}
    assert manifest["platform"] == "sagemaker"
    assert kinds["pipelines/churn-prediction-training.definition.json"] == "sagemaker.pipeline_definition"
    assert kinds["pipelines/churn-prediction-training.json"] == "sagemaker.create_pipeline"
    assert kinds["registry/churn-classifier.json"] == "sagemaker.create_model_package_group"
    assert kinds["serving/endpoint-config.json"] == "sagemaker.create_endpoint_config"
    assert kinds["serving/scaling-policy.json"] == "application-autoscaling.put_scaling_policy"
    assert kinds["schedules/churn-prediction-retraining.json"] == "scheduler.create_schedule"
    assert kinds["alarms/churn-prediction-monitoring-breach.json"] == "cloudwatch.put_metric_alarm"
    assert kinds["rules/churn-prediction-retrain-on-new-data.json"] == "events.put_rule"
    assert kinds["rules/churn-prediction-retrain-on-new-data.targets.json"] == "events.put_targets"
    assert {k for p, k in kinds.items() if p.startswith("configs/")} == {"mlcompile.step_config"}
    assert kinds["feature-store/customer_activity.json"] == "sagemaker.create_feature_group"
    # training, batch scoring, monitoring, deploy-on-approval (manual approval), one
    # materialisation pipeline per online feature view, and the new-data sensor
    assert sorted(p for p, k in kinds.items() if k == "sagemaker.pipeline_definition") == [
        "pipelines/churn-prediction-batch-scoring.definition.json",
        "pipelines/churn-prediction-deploy.definition.json",
        "pipelines/churn-prediction-materialize-customer-activity.definition.json",
        "pipelines/churn-prediction-materialize-customer-profile.definition.json",
        "pipelines/churn-prediction-monitoring.definition.json",
        "pipelines/churn-prediction-retrain-on-new-data-sensor.definition.json",
        "pipelines/churn-prediction-training.definition.json",
    ]


def test_training_pipeline_runs_the_plan_then_one_condition_per_gate(builds: dict[str, Path]) -> None:
    definition = load(builds["churn"], "pipelines/churn-prediction-training.definition.json")
    assert [(s["Name"], s["Type"]) for s in definition["Steps"]] == [
        ("extract-features", "Processing"),
        ("validate-data", "Processing"),
        ("train", "Training"),
        ("evaluate", "Processing"),
        ("gate", "Processing"),
        ("gate-roc_auc-min", "Condition"),
    ]
    steps = steps_of(definition)
    first = steps["gate-roc_auc-min"]["Arguments"]
    assert first["Conditions"] == [
        {
            "Type": "GreaterThanOrEqualTo",
            "LeftValue": {"Std:JsonGet": {"PropertyFile": {"Get": "Steps.evaluate.PropertyFiles.metrics"}, "Path": "metrics.roc_auc"}},
            "RightValue": 0.78,
        }
    ]
    assert [s["Name"] for s in first["IfSteps"]] == ["gate-f1-min"]
    assert steps["gate-f1-min"]["Arguments"]["Conditions"][0]["RightValue"] == 0.55
    # the runtime's evaluation report is {"metrics": {name: value}, "production": …}; champion/
    # challenger needs the production model's score: the gate step's decision
    # {"passed": …, "results": [one per gate, in spec order]} says
    champion = steps["gate-roc_auc-min-delta-vs-production"]["Arguments"]
    assert champion["Conditions"][0]["LeftValue"]["Std:JsonGet"] == {"PropertyFile": {"Get": "Steps.gate.PropertyFiles.decision"}, "Path": "results[2].passed"}
    assert [s["Name"] for s in champion["IfSteps"]] == ["register-RegisterModel"]
    # a failed gate ends the run in a FailStep naming it, with the candidate's value
    fail = steps["fail-gate-roc_auc-min"]["Arguments"]["ErrorMessage"]["Std:Join"]
    assert fail["Values"][0] == "gate failed: roc_auc >= 0.78 required, the candidate has "
    assert "beat the production model by at least 0" in steps["fail-gate-roc_auc-min-delta-vs-production"]["Arguments"]["ErrorMessage"]


def test_scikit_learn_training_runs_the_runtime_on_the_catalog_machine(builds: dict[str, Path]) -> None:
    train = steps_of(load(builds["churn"], "pipelines/churn-prediction-training.definition.json"))["train"]["Arguments"]
    assert train["ResourceConfig"] == {"InstanceCount": 1, "InstanceType": "ml.m5.xlarge", "VolumeSizeInGB": 30}  # cpu 4, 16Gi
    assert train["StoppingCondition"] == {"MaxRuntimeInSeconds": 3600}  # timeout: 1h
    assert "EnableManagedSpotTraining" not in train
    assert train["AlgorithmSpecification"]["TrainingImage"] == RUNTIME
    assert train["AlgorithmSpecification"]["ContainerEntrypoint"] == ["python", "-m", "mlcompile.runtime", "train"]
    assert train["OutputDataConfig"] == {"S3OutputPath": f"s3://{BUCKET}/mlcompile/churn-prediction/models"}
    batch_train = steps_of(load(builds["batch-scoring"], "pipelines/invoice-late-payment-training.definition.json"))["train"]["Arguments"]
    assert batch_train["ResourceConfig"]["InstanceType"] == "ml.m5.2xlarge"  # cpu 8, 32Gi
    assert batch_train["StoppingCondition"] == {"MaxRuntimeInSeconds": 7200}  # timeout: 2h


def test_runtime_steps_read_their_config_from_s3(builds: dict[str, Path]) -> None:
    """A container argument holds at most 256 characters: the runtime's --config is a file,
    content-addressed under the bucket, uploaded by `mlcompile deploy` (never by build)."""
    folder = builds["churn"]
    extract = steps_of(load(folder, "pipelines/churn-prediction-training.definition.json"))["extract-features"]["Arguments"]
    arguments = extract["AppSpecification"]["ContainerArguments"]
    assert arguments[0] == "--config" and arguments[1].startswith("@/opt/ml/processing/input/config/")
    key = Path(arguments[1]).stem
    config_input = next(i for i in extract["ProcessingInputs"] if i["InputName"] == "config")
    assert config_input["S3Input"]["S3Uri"] == f"s3://{BUCKET}/mlcompile/churn-prediction/configs/{key}.json"
    plan, _ = plan_of("churn")
    platform = {"platform": {"name": "sagemaker", "region": "eu-west-1", "bucket": BUCKET}}  # the runtime's registry: SageMaker's
    assert load(folder, f"configs/{key}.json") == {**step_config(plan, plan.training.step("extract-features")), **platform}
    assert arguments[2:] == ["--output", "test=/opt/ml/processing/output/test/test.parquet", "--output", "train=/opt/ml/processing/output/train/train.parquet"]
    assert extract["ProcessingResources"]["ClusterConfig"] == {"InstanceCount": 1, "InstanceType": "ml.m5.large", "VolumeSizeInGB": 30}


def test_tuning_distributed_spot_training_on_a100(builds: dict[str, Path]) -> None:
    """ranker-gpu: 2 replicas × 8 A100 40GB on spot, 12h, 24 trials 3 at a time."""
    tune = steps_of(load(builds["ranker-tuned"], "pipelines/search-ranker-training.definition.json"))["tune"]
    assert tune["Type"] == "Tuning"
    job = tune["Arguments"]["TrainingJobDefinition"]
    assert job["HyperParameterTuningResourceConfig"] == {"InstanceCount": 2, "InstanceType": "ml.p4d.24xlarge", "VolumeSizeInGB": 30}
    assert job["EnableManagedSpotTraining"] is True
    assert job["StoppingCondition"] == {"MaxRuntimeInSeconds": 12 * 3600, "MaxWaitTimeInSeconds": 24 * 3600}
    assert job["AlgorithmSpecification"]["TrainingImage"] == "123456789012.dkr.ecr.eu-west-1.amazonaws.com/search-ranker-train:2.3.0"
    assert job["Environment"]["MLCOMPILE_TRAIN_DATA"] == "/opt/ml/input/data/train/train.parquet"
    assert job["Environment"]["MLCOMPILE_MODEL_DIR"] == "/opt/ml/model"
    assert job["Environment"]["ENCODER"] == "intfloat/multilingual-e5-base"
    config = tune["Arguments"]["HyperParameterTuningJobConfig"]
    assert config["Strategy"] == "Bayesian"
    assert config["HyperParameterTuningJobObjective"] == {"MetricName": "ndcg_at_10", "Type": "Maximize"}
    assert config["ResourceLimits"] == {"MaxNumberOfTrainingJobs": 24, "MaxParallelTrainingJobs": 3}
    ranges = config["ParameterRanges"]
    assert {"Name": "learning_rate", "MinValue": "1e-05", "MaxValue": "0.001", "ScalingType": "Logarithmic"} in ranges["ContinuousParameterRanges"]
    assert {"Name": "warmup_steps", "MinValue": "100", "MaxValue": "2000", "ScalingType": "Logarithmic"} in ranges["IntegerParameterRanges"]
    assert ranges["CategoricalParameterRanges"] == [{"Name": "loss", "Values": ["lambdarank", "listnet", "softmax_ce"]}]
    assert "ndcg_at_10" in {d["Name"] for d in job["AlgorithmSpecification"]["MetricDefinitions"]}  # with the other evaluation metrics
    # spot trials checkpoint under one prefix (mlcompile's entry gives each trial a folder in it)
    assert job["CheckpointConfig"] == {"S3Uri": f"s3://{BUCKET}/mlcompile/search-ranker/checkpoints/tune", "LocalPath": "/opt/ml/checkpoints"}
    # the image's ENTRYPOINT (mlcompile's entry) gets the command and the static args here
    assert "ContainerEntrypoint" not in job["AlgorithmSpecification"]
    assert job["StaticHyperParameters"] == {
        "epochs": "6", "precision": "bf16", "per-device-batch-size": "256", "checkpoint-every": "500", "mlcompile_command": '["python", "-m", "ranker.launch"]',
    }  # fmt: skip
    # the best trial's model is evaluated and registered
    evaluate = steps_of(load(builds["ranker-tuned"], "pipelines/search-ranker-training.definition.json"))["evaluate"]["Arguments"]
    model_input = next(i for i in evaluate["ProcessingInputs"] if i["InputName"] == "model")["S3Input"]["S3Uri"]["Std:Join"]
    assert {"Get": "Steps.tune.TrainingJobSummaries[0].TrainingJobName"} in model_input["Values"]


def test_spot_training_checkpoints_to_s3(tmp_path: Path) -> None:
    """Without tuning, spot training resumes from checkpoints after a preemption."""
    text = example_text("ranker-gpu", ("  tuning:\n", "  x-tuning:\n"))
    text = text.replace("  x-tuning:", "  tuning_removed:", 1)
    start = text.index("  tuning_removed:")
    end = text.index("  evaluation:")
    plan, profile = plan_of_text(text[:start] + text[end:], tmp_path)
    plan = plan
    folder = write(plan, profile, tmp_path / "out")
    train = steps_of(load(folder, "pipelines/search-ranker-training.definition.json"))["train"]["Arguments"]
    assert train["ResourceConfig"] == {"InstanceCount": 2, "InstanceType": "ml.p4d.24xlarge", "VolumeSizeInGB": 30}
    assert train["EnableManagedSpotTraining"] is True
    assert train["StoppingCondition"] == {"MaxRuntimeInSeconds": 43200, "MaxWaitTimeInSeconds": 86400}
    assert train["CheckpointConfig"] == {"S3Uri": f"s3://{BUCKET}/mlcompile/search-ranker/checkpoints/train", "LocalPath": "/opt/ml/checkpoints"}
    # two instances: mlcompile's entry starts the command on each with its rank
    specification = train["AlgorithmSpecification"]
    assert specification["ContainerEntrypoint"] == ["python", "-m", "mlcompile.runtime.sagemaker_entry", "--", "python", "-m", "ranker.launch"]
    assert specification["ContainerArguments"][:2] == ["--epochs", "6"]


def test_registration_follows_the_approval_policy(builds: dict[str, Path]) -> None:
    churn = steps_of(load(builds["churn"], "pipelines/churn-prediction-training.definition.json"))["register-RegisterModel"]["Arguments"]
    assert churn["ModelPackageGroupName"] == "churn-classifier"
    assert churn["ModelApprovalStatus"] == "PendingManualApproval"  # approval: manual
    assert churn["CustomerMetadataProperties"]["mlcompile-aliases"] == "candidate"
    assert churn["InferenceSpecification"]["SupportedRealtimeInferenceInstanceTypes"] == ["ml.m5.large"]
    assert churn["InferenceSpecification"]["Containers"][0]["Environment"]["MLCOMPILE_REQUEST_TIMEOUT_SECONDS"] == "2"
    assert tag_map(churn["Tags"])["mlcompile-system"] == "churn-prediction"
    invoice = steps_of(load(builds["batch-scoring"], "pipelines/invoice-late-payment-training.definition.json"))["register-RegisterModel"]["Arguments"]
    assert invoice["ModelApprovalStatus"] == "Approved"  # approval: auto
    assert invoice["InferenceSpecification"]["SupportedTransformInstanceTypes"] == ["ml.m5.xlarge"]
    group = load(builds["churn"], "registry/churn-classifier.json")
    assert group["ModelPackageGroupName"] == "churn-classifier"
    assert tag_map(group["Tags"])["use-case"] == "churn"  # registry.tags


def test_a_version_names_its_training_set_as_mlcompiles_drift_baseline_not_as_model_monitor_statistics(builds: dict[str, Path]) -> None:
    """`DriftCheckBaselines.ModelDataQuality.Statistics` is where Model Monitor and Clarify
    expect a data-quality statistics JSON; the training parquet is no such file, so the version
    names it in its metadata, where mlcompile's runtime reads it (drift checks of a
    container-trained version sample it)."""
    for name, pipeline in (("churn", "churn-prediction"), ("batch-scoring", "invoice-late-payment")):
        register = steps_of(load(builds[name], f"pipelines/{pipeline}-training.definition.json"))["register-RegisterModel"]["Arguments"]
        assert "DriftCheckBaselines" not in register
        assert register["CustomerMetadataProperties"]["mlcompile-drift-baseline"] == {
            "Std:Join": {"On": "/", "Values": [{"Get": "Steps.extract-features.ProcessingOutputConfig.Outputs['train'].S3Output.S3Uri"}, "train.parquet"]}
        }
        assert register["ModelMetrics"]["ModelQuality"]["Statistics"]["ContentType"] == "application/json"  # the evaluation report, still


def test_auto_approval_deploys_from_the_training_pipeline(tmp_path: Path) -> None:
    plan, profile = plan_of_text(example_text("churn", ("approval: manual", "approval: auto")), tmp_path)
    folder = write(plan, profile, tmp_path / "out")
    steps = steps_of(load(folder, "pipelines/churn-prediction-training.definition.json"))
    last_gate = steps["gate-roc_auc-min-delta-vs-production"]["Arguments"]
    assert [s["Name"] for s in last_gate["IfSteps"]] == ["register-RegisterModel", "deploy-online"]
    assert steps["deploy-online"]["DependsOn"] == ["register-RegisterModel"]  # branch steps otherwise run in parallel
    assert not (folder / "pipelines/churn-prediction-deploy.definition.json").exists()
    assert not (folder / "rules/churn-prediction-deploy-on-approval.json").exists()
    key = Path(steps["deploy-online"]["Arguments"]["AppSpecification"]["ContainerArguments"][1]).stem
    serving = load(folder, f"configs/{key}.json")["params"]["sagemaker"]["serving"]
    assert serving["endpoint"]["EndpointName"] == "churn-scorer"


def test_manual_approval_deploys_when_a_version_is_approved(builds: dict[str, Path]) -> None:
    rule = load(builds["churn"], "rules/churn-prediction-deploy-on-approval.json")
    assert json.loads(rule["EventPattern"]) == {
        "source": ["aws.sagemaker"],
        "detail-type": ["SageMaker Model Package State Change"],
        "detail": {"ModelPackageGroupName": ["churn-classifier"], "ModelApprovalStatus": ["Approved"]},
    }
    targets = load(builds["churn"], "rules/churn-prediction-deploy-on-approval.targets.json")
    assert targets["Targets"][0]["Arn"] == "arn:aws:sagemaker:eu-west-1:123456789012:pipeline/churn-prediction-deploy"
    assert targets["Targets"][0]["RoleArn"] == SCHEDULERS  # may only start pipelines


def test_each_duty_runs_as_its_own_role(builds: dict[str, Path]) -> None:
    """The profile's roles per duty: the pipelines (and their jobs) as role_arn, the endpoint's
    model as the serving role — which cannot start pipelines —, schedules and rules as the
    schedulers' role, feature groups' offline store as the feature store's."""
    folder = builds["churn"]
    assert load(folder, "pipelines/churn-prediction-training.json")["RoleArn"] == ROLE
    training = steps_of(load(folder, "pipelines/churn-prediction-training.definition.json"))
    assert training["extract-features"]["Arguments"]["RoleArn"] == ROLE
    assert load(folder, "serving/model.json")["ExecutionRoleArn"] == "arn:aws:iam::123456789012:role/SageMakerEndpointServing"
    assert load(folder, "schedules/churn-prediction-retraining.json")["Target"]["RoleArn"] == SCHEDULERS
    assert {t["RoleArn"] for t in load(folder, "rules/churn-prediction-retrain-on-new-data.targets.json")["Targets"]} == {SCHEDULERS}
    assert load(folder, "feature-store/customer_activity.json")["RoleArn"] == "arn:aws:iam::123456789012:role/SageMakerFeatureStoreOffline"


def test_canary_endpoint_with_cpu_autoscaling(builds: dict[str, Path]) -> None:
    folder = builds["churn"]
    config = load(folder, "serving/endpoint-config.json")
    (variant,) = config["ProductionVariants"]
    assert variant["InstanceType"] == "ml.m5.large"  # cpu 2, 4Gi
    assert variant["InitialInstanceCount"] == 2  # replicas.min
    # monitored, but monitoring reads the feature sources: nothing would read captured traffic
    assert "DataCaptureConfig" not in config
    endpoint = load(folder, "serving/endpoint.json")
    routing = endpoint["DeploymentConfig"]["BlueGreenUpdatePolicy"]["TrafficRoutingConfiguration"]
    assert routing == {"Type": "CANARY", "CanarySize": {"Type": "INSTANCE_COUNT", "Value": 1}, "WaitIntervalInSeconds": 600}
    assert endpoint["DeploymentConfig"]["AutoRollbackConfiguration"] == {"Alarms": [{"AlarmName": "churn-scorer-rollback"}]}
    target = load(folder, "serving/scalable-target.json")
    assert (target["ResourceId"], target["MinCapacity"], target["MaxCapacity"]) == ("endpoint/churn-scorer/variant/AllTraffic", 2, 6)
    policy = load(folder, "serving/scaling-policy.json")["TargetTrackingScalingPolicyConfiguration"]
    assert policy["CustomizedMetricSpecification"]["MetricName"] == "CPUUtilization"
    assert policy["TargetValue"] == 120.0  # 60% of each of the 2 vCPUs: SageMaker sums utilisation over cores


def test_blue_green_gpu_endpoint_scaling_on_requests(builds: dict[str, Path]) -> None:
    folder = builds["ranker-tuned"]
    (variant,) = load(folder, "serving/endpoint-config.json")["ProductionVariants"]
    assert (variant["InstanceType"], variant["InitialInstanceCount"]) == ("ml.g4dn.xlarge", 2)  # 1 × T4
    policy = load(folder, "serving/endpoint.json")["DeploymentConfig"]["BlueGreenUpdatePolicy"]
    assert policy == {"TrafficRoutingConfiguration": {"Type": "ALL_AT_ONCE", "WaitIntervalInSeconds": 0}, "TerminationWaitInSeconds": 600}
    scaling = load(folder, "serving/scaling-policy.json")["TargetTrackingScalingPolicyConfiguration"]
    assert scaling["PredefinedMetricSpecification"] == {"PredefinedMetricType": "SageMakerVariantInvocationsPerInstance"}
    assert scaling["TargetValue"] == 2400.0  # 40 requests/s per replica, counted per minute
    assert load(folder, "serving/scalable-target.json")["MaxCapacity"] == 12


def test_batch_scoring_runs_the_runtime_on_its_machine(builds: dict[str, Path]) -> None:
    """The runtime writes the scores to deployment.batch.output.uri itself (config
    params.output_uri); the step's own scores artifact stays with the run."""
    folder = builds["batch-scoring"]
    score = steps_of(load(folder, "pipelines/invoice-late-payment-batch-scoring.definition.json"))["score-batch"]["Arguments"]
    assert score["ProcessingResources"]["ClusterConfig"]["InstanceType"] == "ml.m5.xlarge"  # cpu 4, 16Gi
    assert score["StoppingCondition"] == {"MaxRuntimeInSeconds": 3600}
    key = Path(score["AppSpecification"]["ContainerArguments"][1]).stem
    assert load(folder, f"configs/{key}.json")["params"]["output_uri"] == "s3://acme-finance-lake-eu/scores/invoice_late_payment.parquet"
    (output,) = score["ProcessingOutputConfig"]["Outputs"]
    assert output["S3Output"]["S3Uri"]["Std:Join"]["Values"][0] == f"s3://{BUCKET}/mlcompile/invoice-late-payment"


def test_schedules_keep_their_time_zone(builds: dict[str, Path]) -> None:
    retraining = load(builds["churn"], "schedules/churn-prediction-retraining.json")
    assert retraining["ScheduleExpression"] == "cron(0 2 ? * MON *)"  # "0 2 * * 1"
    assert retraining["ScheduleExpressionTimezone"] == "UTC"
    assert retraining["Target"]["Arn"] == "arn:aws:sagemaker:eu-west-1:123456789012:pipeline/churn-prediction-training"
    assert retraining["GroupName"] == "mlcompile-churn-prediction"
    batch = load(builds["batch-scoring"], "schedules/invoice-late-payment-batch-scoring.json")
    assert batch["ScheduleExpression"] == "cron(0 6 ? * MON-FRI *)"  # "0 6 * * 1-5"
    assert batch["ScheduleExpressionTimezone"] == "Europe/Berlin"  # EventBridge Scheduler follows DST
    monitoring = load(builds["ranker-tuned"], "schedules/search-ranker-monitoring.json")
    assert monitoring["ScheduleExpression"] == "cron(15 * * * ? *)"  # hourly at :15


def test_monitoring_runs_the_runtime_checks_and_signals_a_breach(builds: dict[str, Path]) -> None:
    """psi is not a method of SageMaker's built-in Model Monitor: drift and performance are
    processing-job monitors running the runtime image, in the monitoring pipeline."""
    folder = builds["churn"]
    steps = steps_of(load(folder, "pipelines/churn-prediction-monitoring.definition.json"))
    drift = steps["check-drift"]["Arguments"]
    key = Path(drift["AppSpecification"]["ContainerArguments"][1]).stem
    assert drift["AppSpecification"]["ImageUri"] == RUNTIME
    params = load(folder, f"configs/{key}.json")["params"]
    assert (params["method"], params["threshold"]) == ("psi", 0.2)
    breach = steps["breach"]["Arguments"]["Conditions"][0]
    assert breach["Type"] == "Or" and len(breach["Conditions"]) == 2
    assert [s["Name"] for s in steps["breach"]["Arguments"]["IfSteps"]] == ["alert", "trigger-retraining"]
    # alert and trigger-retraining read the checks' decisions (to say why)
    inputs = {i["InputName"] for i in steps["trigger-retraining"]["Arguments"]["ProcessingInputs"]}
    assert inputs == {"config", "drift", "performance"}


def test_a_breach_is_told_by_an_alarm_on_the_step_that_starts_training(builds: dict[str, Path]) -> None:
    folder = builds["churn"]
    alarm = load(folder, "alarms/churn-prediction-monitoring-breach.json")
    # SageMaker Pipelines' own step metric: trigger-retraining runs (and succeeds) only on a breach
    assert (alarm["Namespace"], alarm["MetricName"], alarm["Threshold"]) == ("AWS/Sagemaker/ModelBuildingPipeline", "StepSucceeded", 1.0)
    assert alarm["Dimensions"] == [{"Name": "PipelineName", "Value": "churn-prediction-monitoring"}, {"Name": "StepName", "Value": "trigger-retraining"}]
    # the step starts training itself (test_retraining_sagemaker.py): no rule starts a second execution
    assert not list(folder.glob("rules/*breach*"))
    # on_breach: alert (batch-scoring, ranker-gpu): no breach alarm, no retraining rule (only the email alerts' alarm)
    assert [p.name for p in builds["batch-scoring"].glob("alarms/*")] == ["invoice-late-payment-monitoring-alert.json"]
    assert not list(builds["batch-scoring"].glob("rules/*retrain*"))


def test_new_labels_start_training(builds: dict[str, Path]) -> None:
    rule = load(builds["churn"], "rules/churn-prediction-retrain-on-new-data.json")
    assert json.loads(rule["EventPattern"]) == {
        "source": ["aws.s3"],
        "detail-type": ["Object Created"],
        "detail": {"bucket": {"name": ["acme-growth-lake-eu"]}, "object": {"key": [{"prefix": "crm/churn_labels.parquet"}]}},
    }


def test_every_resource_carries_the_lineage_tags(builds: dict[str, Path]) -> None:
    plan, _ = plan_of("churn")
    expected = {"mlcompile-system": "churn-prediction", "mlcompile-spec-sha256": plan.spec_sha256, "team": "growth-ml"}
    folder = builds["churn"]
    for entry in load(folder, "manifest.json")["files"]:
        body = load(folder, entry["path"])
        if entry["kind"] == "sagemaker.pipeline_definition":
            for step in steps_of(body).values():
                if step["Type"] not in ("Condition", "Fail"):
                    assert expected.items() <= tag_map(step["Arguments"]["Tags"]).items(), (entry["path"], step["Name"])
        elif entry["kind"] in (
            "scheduler.create_schedule",
            "events.put_targets",
            "application-autoscaling.put_scaling_policy",
            "mlcompile.step_config",
            "sns.subscribe",
        ):
            continue  # not taggable: schedules are tagged through their group, rules, scalable targets and topics carry the tags
        elif entry["kind"] == "application-autoscaling.register_scalable_target":
            assert expected.items() <= body["Tags"].items()
        else:
            assert expected.items() <= tag_map(body["Tags"]).items(), entry["path"]


def test_git_commit_is_a_tag_when_known() -> None:
    plan, _ = plan_of("batch-scoring")
    plan = dataclasses.replace(plan, lineage=dataclasses.replace(plan.lineage, git_commit="0" * 40))
    files = {f.path: json.loads(f.content) for f in SageMakerTarget().render(plan)}
    assert tag_map(files["registry/invoice-late-payment.json"]["Tags"])["mlcompile-git-commit"] == "0" * 40


def test_rendering_is_deterministic() -> None:
    plan, _ = plan_of("churn")
    first, second = SageMakerTarget().render(plan), SageMakerTarget().render(plan)
    assert [(f.path, f.content) for f in first] == [(f.path, f.content) for f in second]
    assert not any(b"/tmp" in f.content or b"/work/" in f.content for f in first)


def test_an_oversized_definition_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    from mlcompile.targets.sagemaker import render

    monkeypatch.setattr(render, "MAX_DEFINITION_CHARS", 1000)
    plan, _ = plan_of("batch-scoring")
    with pytest.raises(SpecError, match=r"pipeline invoice-late-payment-training has a [0-9,]+-character definition: SageMaker accepts at most 1,000"):
        SageMakerTarget().render(plan)


# ---------------------------------------------------------------------------- refusals


def problems(plan: Any) -> dict[str, str]:
    return {f"{d.severity}:{d.path}": d.message for d in SageMakerTarget().check(plan)}


def test_examples_pass_the_checks() -> None:
    assert problems(plan_of("batch-scoring")[0]) == {}
    assert list(problems(plan_of("churn")[0])) == ["warning:deployment.online.rollout.canary_percent"]  # below


def test_a_canary_is_whole_instances_and_a_share_far_from_the_specs_is_warned_about(builds: dict[str, Path]) -> None:
    """SageMaker's canary moves whole instances: churn's 10 % canary on replicas.min 2 is one
    instance, half the traffic — the endpoint says so (INSTANCE_COUNT, not a percent SageMaker
    would round up anyway) and the check warns at the spec's line."""
    routing = load(builds["churn"], "serving/endpoint.json")["DeploymentConfig"]["BlueGreenUpdatePolicy"]["TrafficRoutingConfiguration"]
    assert routing["CanarySize"] == {"Type": "INSTANCE_COUNT", "Value": 1}
    (warning,) = [d for d in SageMakerTarget().check(plan_of("churn")[0]) if d.severity == "warning"]
    assert "gets 1 of 2 instances, about 50% of the traffic" in warning.message
    assert "raise replicas.min to at least 10" in (warning.hint or "")


def test_a_tuned_containers_command_runs_through_mlcompiles_entry_which_the_image_must_start(tmp_path: Path) -> None:
    """A tuning job runs the image's ENTRYPOINT: the build says, at the command's line, that it
    must be mlcompile's SageMaker entry, which runs the command from the hyperparameters."""
    plan, _ = plan_of("ranker-gpu")
    diagnostics = SageMakerTarget().check(plan)
    assert [d for d in diagnostics if d.severity == "error"] == []
    warnings = {d.path: d for d in diagnostics if d.severity == "warning"}
    assert "secret://search-hf-read-token" in warnings["training.trainer.container.env.HF_TOKEN"].message
    entry = warnings["training.trainer.container.command"]
    assert "must be mlcompile's SageMaker entry (`python -m mlcompile.runtime.sagemaker_entry`)" in entry.message
    assert 'ENTRYPOINT ["python", "-m", "mlcompile.runtime.sagemaker_entry"]' in (entry.hint or "")


def test_tuning_refuses_positional_args_and_rankless_instances_where_they_are_written(tmp_path: Path) -> None:
    """Static args travel as named hyperparameters; two instances per trial get their rank only
    from mlcompile's entry, which needs the command."""
    text = example_text("ranker-gpu", ('args: [--epochs, "6",', 'args: [warmup, --epochs, "6",'))
    errors = {d.path: d for d in SageMakerTarget().check(plan_of_text(text, tmp_path)[0]) if d.severity == "error"}
    assert list(errors) == ["training.trainer.container.args"]
    assert "include a positional argument" in errors["training.trainer.container.args"].message
    text = example_text("ranker-gpu", ("search-ranker-train:2.3.0}}", "search-ranker-train:2.3.0, command: [], args: []}}"))
    errors = {d.path: d for d in SageMakerTarget().check(plan_of_text(text, tmp_path)[0]) if d.severity == "error"}
    assert list(errors) == ["training.resources.replicas"]
    assert "SageMaker tells each instance only its host name (resourceconfig.json)" in errors["training.resources.replicas"].message
    lines = text.splitlines()
    block = next(n for n, line in enumerate(lines, 1) if line == "  resources:")
    assert block < errors["training.resources.replicas"].line <= lines.index("    replicas: 2") + 1  # in training.resources


@pytest.mark.parametrize(
    ("replacements", "path", "message"),
    [
        ((("resources: {cpu: 2, memory: 4Gi, timeout: 2s}", "resources: {cpu: 2, memory: 4Gi, spot: true}"),),
         "deployment.online.resources.spot", "real-time endpoints have no spot capacity"),
        ((("timeout: 2s}", "timeout: 90s}"),), "deployment.online.resources.timeout", "answer within 60s"),
        ((("replicas: {min: 2, max: 6}", "replicas: {min: 0, max: 6}"),), "deployment.online.replicas.min", "at least one instance"),
        ((("    autoscaling: {metric: cpu, target: 60}\n", ""),), "deployment.online.replicas.max", "without autoscaling"),
        ((('schedule: "0 2 * * 1"', 'schedule: "0 2 1 * 1"'),), "retraining.schedule", "both day of month and day of week"),
        ((("output: {uri: s3://acme-growth-lake-eu/churn/churn_scores.parquet}", "output: {uri: gs://elsewhere/scores.parquet}"),),
         "deployment.batch.output.uri", "is not an s3:// URI"),
    ],
)  # fmt: skip
def test_what_sagemaker_cannot_express_is_refused(tmp_path: Path, replacements: tuple[tuple[str, str], ...], path: str, message: str) -> None:
    plan, _ = plan_of_text(example_text("churn", *replacements), tmp_path)
    found = problems(plan)
    assert message in found.get(f"error:{path}", ""), found


def test_spot_scoring_is_refused(tmp_path: Path) -> None:
    text = example_text("batch-scoring", ("resources: {cpu: 4, memory: 16Gi, timeout: 1h}", "resources: {cpu: 4, memory: 16Gi, timeout: 1h, spot: true}"))
    assert "processing job, which has no spot capacity" in problems(plan_of_text(text, tmp_path)[0])["error:deployment.batch.resources.spot"]


def test_grid_search_over_numbers_and_log_scale_from_zero_are_refused() -> None:
    plan, _ = plan_of("ranker-gpu")
    assert plan.tuning is not None
    params = tuple(dataclasses.replace(p, scale="log") if p.name == "dropout" else p for p in plan.tuning.params)
    plan = dataclasses.replace(plan, tuning=dataclasses.replace(plan.tuning, algorithm="grid", params=params))
    found = problems(plan)
    assert "num_layers, warmup_steps are int ranges" in found["error:training.tuning.algorithm"]
    # the float ranges: SageMaker declares no grid over a float range, so the core refuses each
    refused = {d.path: d.message for d in capability_refusals(SageMakerTarget(), plan)}
    assert sorted(refused) == ["training.tuning.params.dropout", "training.tuning.params.learning_rate"]
    assert refused["training.tuning.params.dropout"].startswith("SageMaker grid search cannot enumerate a float range")
    assert "log scale needs min > 0 (got 0.0)" in found["error:training.tuning.params.dropout.min"]


def test_images_outside_ecr_are_refused() -> None:
    plan, _ = plan_of("churn")
    plan = dataclasses.replace(plan, runtime_image="ghcr.io/mlcompile/mlcompile-runtime:0.1.0")
    assert any("is not in Amazon ECR" in m for m in problems(plan).values())


def test_aws_cron() -> None:
    assert aws_cron("30 7 * * *") == "cron(30 7 * * ? *)"
    assert aws_cron("0 3 * * 0") == "cron(0 3 ? * SUN *)"  # Unix 0 = Sunday; AWS 1 = Sunday: names avoid the trap
    assert aws_cron("0 0 * * 5-7") == "cron(0 0 ? * SUN,FRI-SAT *)"
    assert aws_cron("@daily") == "cron(0 0 * * ? *)"
    with pytest.raises(CronNotExpressible, match="AWS cron has no '/'"):
        aws_cron("0 0 * * */2")


# ---------------------------------------------------------------------------- offline, lazy


def test_the_build_opens_no_socket(tmp_path: Path) -> None:
    """In a fresh process (the SDK probes at import), with every socket refused and no AWS
    credentials in the environment: the build still succeeds."""
    script = textwrap.dedent(
        f"""
        import socket
        def refuse(*args, **kwargs):
            raise AssertionError(f"network use: {{args!r}}")
        socket.socket.connect = refuse
        socket.socket.connect_ex = refuse
        socket.getaddrinfo = refuse
        socket.create_connection = refuse
        from mlcompile.build import compile_system, resolve_profiles, write_builds
        spec = "examples/churn/mlcompile.yaml"
        result = compile_system(spec, resolve_profiles(spec, ["targets/aws-prod.yaml"]), render=True, git_commit=None)
        write_builds(result.results, {str(tmp_path)!r})
        import sagemaker
        print("built")
        """
    )
    env = {k: v for k, v in __import__("os").environ.items() if not k.startswith("AWS_")}
    done = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, env=env, timeout=120)
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.strip().endswith("built")
    assert (tmp_path / "aws-prod" / "pipelines" / "churn-prediction-training.definition.json").is_file()


def test_checking_imports_no_cloud_sdk() -> None:
    script = (
        "import sys\n"
        "from test_target_sagemaker_support import plan_of\n"
        "from mlcompile.targets.registry import load_target\n"
        "target = load_target('sagemaker')\n"
        "assert [d for d in target.check(plan_of('churn')[0]) if d.severity == 'error'] == []\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('sagemaker', 'boto3', 'botocore')))\n"
    )
    done = subprocess.run([sys.executable, "-c", script], cwd=ROOT / "tests", capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.strip() == "[]"


def test_retraining_on_drift_without_on_breach_retrain_gets_the_step_that_starts_training(tmp_path: Path) -> None:
    """batch-scoring alerts on a breach; with retraining.on_drift its monitoring pipeline also
    runs trigger-retraining on a breach (the one path that starts training, skipping while a
    training execution runs), which the breach alarm watches; no rule starts training."""
    text = example_text("batch-scoring", ('  schedule: "0 3 * * 0"        # weekly', '  on_drift: true\n  schedule: "0 3 * * 0"        # weekly'))
    plan, profile = plan_of_text(text, tmp_path)
    assert problems(plan) == {}
    folder = write(plan, profile, tmp_path / "out")
    alarm = load(folder, "alarms/invoice-late-payment-monitoring-breach.json")
    assert alarm["Dimensions"] == [{"Name": "PipelineName", "Value": "invoice-late-payment-monitoring"}, {"Name": "StepName", "Value": "trigger-retraining"}]
    assert not list(folder.glob("rules/*breach*"))
    steps = steps_of(load(folder, "pipelines/invoice-late-payment-monitoring.definition.json"))
    assert [s["Name"] for s in steps["breach"]["Arguments"]["IfSteps"]] == ["alert", "trigger-retraining"]
    config = next(c for c in (load(folder, str(p.relative_to(folder))) for p in folder.glob("configs/*.json")) if c["kind"] == "trigger_retraining")
    assert config["platform_run"]["pipeline"] == "invoice-late-payment-training"


def test_replace_rollout_and_gpu_autoscaling() -> None:
    """rollout: replace → all at once, the old fleet gone at once; gpu → GPUUtilization × GPUs."""
    plan, _ = plan_of("ranker-gpu")
    assert plan.online is not None
    online = dataclasses.replace(plan.online, strategy="replace", autoscaling_metric="gpu", autoscaling_target=70.0)
    files = {f.path: json.loads(f.content) for f in SageMakerTarget().render(dataclasses.replace(plan, online=online))}
    update = files["serving/endpoint.json"]["DeploymentConfig"]["BlueGreenUpdatePolicy"]
    assert update == {"TrafficRoutingConfiguration": {"Type": "ALL_AT_ONCE", "WaitIntervalInSeconds": 0}, "TerminationWaitInSeconds": 0}
    scaling = files["serving/scaling-policy.json"]["TargetTrackingScalingPolicyConfiguration"]
    assert (scaling["CustomizedMetricSpecification"]["MetricName"], scaling["TargetValue"]) == ("GPUUtilization", 70.0)  # one T4


def test_names_over_aws_limits_are_shortened_deterministically() -> None:
    """EventBridge rule and schedule names hold 64 characters (spec names hold 40, so today's
    names fit): a longer one keeps a prefix and 8 hex digits of its hash."""
    from mlcompile.targets.sagemaker.layout import fit

    assert fit("churn-prediction-retrain-on-new-data", 64) == "churn-prediction-retrain-on-new-data"
    long_name = "x" * 50 + "-retrain-on-new-data"
    assert len(fit(long_name, 64)) == 64 and fit(long_name, 64) == fit(long_name, 64)
    assert fit(long_name, 64).startswith("x" * 50 + "-re")
