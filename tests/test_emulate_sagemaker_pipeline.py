"""The SageMaker emulator's interpreter of pipeline definitions, step by step: expressions
(`Get`, `Std:Join`, `Std:JsonGet`), conditions, property files, the order steps run in, Fail
steps, and the `/opt/ml` layout of processing, training and tuning jobs. The containers are
tiny `python -c` programs standing for user images, so every case runs in about a second."""

from __future__ import annotations

import json
import sys
import tarfile
from pathlib import Path
from typing import Any

import pytest

from mlcompile.emulate.containers import Images
from mlcompile.emulate.ir import FAILED, NOT_TRIGGERED, SKIPPED, SUCCEEDED, PipelineError
from mlcompile.emulate.sagemaker.expressions import ExpressionError, Scope, condition, resolve, walk
from mlcompile.emulate.sagemaker.jobs import JobContext, metrics_from_log, run_training
from mlcompile.emulate.sagemaker.pipeline import Execution
from mlcompile.emulate.sagemaker.tuning import draw, run_tuning
from mlcompile.runtime import emulated_storage as storage

ARN = "arn:aws:sagemaker:eu-west-1:123456789012:pipeline/p/execution/abc123"
BUCKET = "s3://bucket/runs"

# user images: each a python program reading its arguments the way a container would
WRITE_JSON = "import json,os,sys; path,doc=sys.argv[1],sys.argv[2]; os.makedirs(os.path.dirname(path),exist_ok=True); open(path,'w').write(doc)"
TRAIN = (
    "import json,os,sys; base=os.environ['SM_INPUT_CONFIG_DIR']; hp=json.load(open(base+'/hyperparameters.json'));"
    "rc=json.load(open(base+'/resourceconfig.json')); data=open(os.environ['SM_CHANNEL_TRAIN']+'/rows.csv').read();"
    "open(os.environ['SM_MODEL_DIR']+'/model.json','w').write(json.dumps({'hp':hp,'host':rc['current_host'],'rows':data,'argv':sys.argv[1:]}));"
    "print('loss=%s' % (1/float(hp.get('rate','1'))))"
)


def context(tmp_path: Path, **commands: str) -> JobContext:
    images = Images("runtime:1", {name: [sys.executable, "-c", code] for name, code in commands.items()})
    return JobContext(images, tmp_path / "storage", tmp_path / "work", region="eu-west-1")


def scope(**properties: Any) -> Scope:
    files = {("evaluate", "metrics"): {"metrics": {"roc_auc": 0.91}, "results": [{"passed": False}, {"passed": True}]}}
    return Scope({"PipelineExecutionId": "abc123"}, {"Threshold": 0.8}, dict(properties), read_property_file=lambda step, name: files.get((step, name)))


def writer(name: str, output: str, document: dict[str, Any], **extra: Any) -> dict[str, Any]:
    """A Processing step whose container writes `document` as output/<output>/doc.json."""
    local = f"/opt/ml/processing/output/{output}"
    return {
        "Name": name,
        "Type": "Processing",
        "Arguments": {
            "AppSpecification": {"ImageUri": "writer", "ContainerArguments": [f"{local}/doc.json", json.dumps(document)]},
            "ProcessingOutputConfig": {
                "Outputs": [
                    {
                        "OutputName": output,
                        "S3Output": {
                            "LocalPath": local,
                            "S3UploadMode": "EndOfJob",
                            "S3Uri": {"Std:Join": {"On": "/", "Values": [BUCKET, {"Get": "Execution.PipelineExecutionId"}, name, output]}},
                        },
                    }
                ]
            },
        },
        "PropertyFiles": [{"PropertyFileName": output, "OutputName": output, "FilePath": "doc.json"}],
        **extra,
    }


def json_get(step: str, name: str, path: str) -> dict[str, Any]:
    return {"Std:JsonGet": {"PropertyFile": {"Get": f"Steps.{step}.PropertyFiles.{name}"}, "Path": path}}


# -- expressions ----------------------------------------------------------------------------


def test_get_reads_execution_variables_parameters_and_step_properties_by_output_name() -> None:
    properties = {
        "prep": {
            "ProcessingOutputConfig": {
                "Outputs": [{"OutputName": "test", "S3Output": {"S3Uri": "s3://b/test"}}, {"OutputName": "train", "S3Output": {"S3Uri": "s3://b/train"}}]
            }
        }
    }
    value = {
        "Std:Join": {
            "On": "/",
            "Values": [
                {"Get": "Steps.prep.ProcessingOutputConfig.Outputs['train'].S3Output.S3Uri"},
                {"Get": "Execution.PipelineExecutionId"},
                {"Get": "Parameters.Threshold"},
                True,
            ],
        }
    }
    assert resolve(value, scope(**properties)) == "s3://b/train/abc123/0.8/true"


def test_tuning_summaries_are_indexed_and_property_files_read_through_json_get() -> None:
    tuned = {"tune": {"TrainingJobSummaries": [{"TrainingJobName": "best"}, {"TrainingJobName": "second"}]}, "evaluate": {}}
    assert resolve({"Get": "Steps.tune.TrainingJobSummaries[0].TrainingJobName"}, scope(**tuned)) == "best"
    assert resolve(json_get("evaluate", "metrics", "metrics.roc_auc"), scope(**tuned)) == 0.91
    assert resolve(json_get("evaluate", "metrics", "results[1].passed"), scope(**tuned)) is True


@pytest.mark.parametrize(
    "reference",
    [
        {"Get": "Steps.train.ModelArtifacts.S3ModelArtifacts"},
        {"Get": "Parameters.Missing"},
        {"Get": "Execution.Nope"},
        json_get("evaluate", "metrics", "metrics.f1"),
    ],
)
def test_a_reference_sagemaker_could_not_resolve_is_an_error(reference: dict[str, Any]) -> None:
    with pytest.raises(ExpressionError):
        resolve(reference, scope(evaluate={}))


def test_conditions_compare_resolved_values_and_combine_with_or_and_not() -> None:
    roc = json_get("evaluate", "metrics", "metrics.roc_auc")
    s = scope(evaluate={})
    assert condition({"Type": "GreaterThanOrEqualTo", "LeftValue": roc, "RightValue": {"Get": "Parameters.Threshold"}}, s)
    assert not condition({"Type": "LessThan", "LeftValue": roc, "RightValue": 0.5}, s)
    assert condition(
        {"Type": "Or", "Conditions": [{"Type": "Equals", "LeftValue": 1, "RightValue": 2}, {"Type": "In", "QueryValue": "b", "Values": ["a", "b"]}]}, s
    )
    assert condition({"Type": "Not", "Condition": {"Type": "Equals", "LeftValue": roc, "RightValue": 0.5}}, s)
    with pytest.raises(ExpressionError, match="not one SageMaker has"):
        condition({"Type": "Between", "LeftValue": 1, "RightValue": 2}, s)


def test_walk_reads_nested_keys_indexes_and_quoted_names() -> None:
    assert walk({"a": [{"b": {"c d": 3}}]}, "a[0].b['c d']") == 3


# -- executions -----------------------------------------------------------------------------


def gated(roc_auc: float) -> dict[str, Any]:
    """evaluate writes roc_auc; the gate registers at 0.78 or more, else fails with the value."""
    roc = json_get("evaluate", "metrics", "roc_auc")
    register = {
        "ModelPackageGroupName": "g",
        "ModelApprovalStatus": "PendingManualApproval",
        "Metrics": {"Get": "Steps.evaluate.ProcessingOutputConfig.Outputs['metrics'].S3Output.S3Uri"},
    }
    gate = {
        "Conditions": [{"Type": "GreaterThanOrEqualTo", "LeftValue": roc, "RightValue": 0.78}],
        "IfSteps": [{"Name": "register", "Type": "RegisterModel", "Arguments": register}],
        "ElseSteps": [{"Name": "fail", "Type": "Fail", "Arguments": {"ErrorMessage": {"Std:Join": {"On": "", "Values": ["roc_auc is ", roc]}}}}],
    }
    return {"Steps": [writer("evaluate", "metrics", {"roc_auc": roc_auc}), {"Name": "gate", "Type": "Condition", "Arguments": gate}]}


def test_a_condition_runs_the_branch_it_chose_and_its_fail_step_fails_the_execution(tmp_path: Path) -> None:
    registered: list[dict[str, Any]] = []
    result = Execution(
        gated(0.6), "p", ARN, {}, context(tmp_path, writer=WRITE_JSON), register=lambda request: registered.append(request) or {"ModelPackageArn": "arn"}
    ).run()
    assert result.status == FAILED
    assert {name: task.status for name, task in result.tasks.items()} == {"evaluate": SUCCEEDED, "gate": SUCCEEDED, "register": SKIPPED, "fail": FAILED}
    assert result.tasks["fail"].reason == "roc_auc is 0.6"
    assert result.tasks["evaluate"].parameters == {"roc_auc": 0.6}
    assert result.tasks["evaluate"].artifacts["metrics"]["uri"] == f"{BUCKET}/abc123/evaluate/metrics/doc.json"
    assert registered == []  # a failing gate registers nothing


def test_a_passing_condition_registers_with_the_resolved_request(tmp_path: Path) -> None:
    registered: list[dict[str, Any]] = []
    result = Execution(
        gated(0.9), "p", ARN, {}, context(tmp_path, writer=WRITE_JSON), register=lambda request: registered.append(request) or {"ModelPackageArn": "arn:g/1"}
    ).run()
    assert result.status == SUCCEEDED and result.tasks["fail"].status == SKIPPED
    assert registered == [{"ModelPackageGroupName": "g", "ModelApprovalStatus": "PendingManualApproval", "Metrics": f"{BUCKET}/abc123/evaluate/metrics"}]
    assert result.tasks["register"].parameters == {"ModelPackageArn": "arn:g/1"}


def test_steps_wait_for_depends_on_and_for_the_steps_whose_properties_they_read(tmp_path: Path) -> None:
    reader = writer("second", "out", {"n": 2})
    reader["Arguments"]["AppSpecification"]["ContainerArguments"].append({"Get": "Steps.first.ProcessingOutputConfig.Outputs['out'].S3Output.S3Uri"})
    steps = [writer("third", "out", {"n": 3}, DependsOn=["second"]), reader, writer("first", "out", {"n": 1})]
    ended: list[str] = []
    execution = Execution({"Steps": steps}, "p", ARN, {}, context(tmp_path, writer=WRITE_JSON), on_step=lambda step, status: ended.append(step))
    assert execution.run().status == SUCCEEDED
    assert ended == ["first", "second", "third"]


def test_a_failed_step_leaves_its_dependents_not_triggered(tmp_path: Path) -> None:
    broken = writer("first", "out", {})
    broken["Arguments"]["AppSpecification"]["ContainerArguments"] = ["/opt/ml/processing/output/out/doc.json"]  # no document: IndexError
    execution = Execution({"Steps": [broken, writer("second", "out", {}, DependsOn=["first"])]}, "p", ARN, {}, context(tmp_path, writer=WRITE_JSON))
    result = execution.run()
    assert (result.status, result.tasks["first"].status, result.tasks["second"].status) == (FAILED, FAILED, NOT_TRIGGERED)
    assert "IndexError" in result.tasks["first"].reason and result.tasks["first"].log is not None


@pytest.mark.parametrize(
    ("steps", "message"),
    [
        ([{"Name": "a", "Type": "Fail", "DependsOn": ["b"]}, {"Name": "b", "Type": "Fail", "DependsOn": ["a"]}], "cycle"),
        ([{"Name": "a", "Type": "Fail", "DependsOn": ["nope"]}], "no such step"),
        ([{"Name": "a", "Type": "Lambda"}], "not emulated"),
    ],
)
def test_definitions_sagemaker_would_refuse_are_refused(tmp_path: Path, steps: list[dict[str, Any]], message: str) -> None:
    with pytest.raises(PipelineError, match=message):
        Execution({"Steps": steps}, "p", ARN, {}, context(tmp_path)).run()


def test_parameters_take_their_defaults_and_types(tmp_path: Path) -> None:
    definition = {"Parameters": [{"Name": "Epochs", "Type": "Integer", "DefaultValue": 3}, {"Name": "Rate", "Type": "Float"}], "Steps": []}
    assert Execution(definition, "p", ARN, {"Rate": "0.5"}, context(tmp_path)).scope.parameters == {"Epochs": 3, "Rate": 0.5}
    with pytest.raises(PipelineError, match="needs parameter 'Rate'"):
        Execution(definition, "p", ARN, {}, context(tmp_path))


# -- jobs -----------------------------------------------------------------------------------


def training_request(hyperparameters: dict[str, Any], instances: int = 1) -> dict[str, Any]:
    return {
        "AlgorithmSpecification": {
            "TrainingImage": "trainer",
            "TrainingInputMode": "File",
            "MetricDefinitions": [{"Name": "loss", "Regex": r"loss=([0-9.]+)"}],
        },
        "HyperParameters": hyperparameters,
        "InputDataConfig": [{"ChannelName": "train", "DataSource": {"S3DataSource": {"S3DataType": "S3Prefix", "S3Uri": "s3://bucket/data/train"}}}],
        "OutputDataConfig": {"S3OutputPath": "s3://bucket/models"},
        "ResourceConfig": {"InstanceCount": instances, "InstanceType": "ml.m5.large"},
    }


def test_a_training_job_gets_channels_string_hyperparameters_and_its_model_packed_to_s3(tmp_path: Path) -> None:
    ctx = context(tmp_path, trainer=TRAIN)
    data = storage.local_path("s3://bucket/data/train/rows.csv", ctx.root)
    data.parent.mkdir(parents=True)
    data.write_text("a,b\n1,2\n")
    done = run_training(ctx, "job-1", training_request({"rate": 4, "depth": "3"}, instances=2))
    assert done.description["ModelArtifacts"]["S3ModelArtifacts"] == "s3://bucket/models/job-1/output/model.tar.gz"
    assert done.metrics == {"loss": 0.25}
    with tarfile.open(storage.local_path("s3://bucket/models/job-1/output/model.tar.gz", ctx.root)) as archive:
        assert archive.getnames() == ["model.json"]
        model = json.loads(archive.extractfile("model.json").read())  # type: ignore[union-attr]
    assert model == {"hp": {"rate": "4", "depth": "3"}, "host": "algo-1", "rows": "a,b\n1,2\n", "argv": ["train"]}
    assert json.loads((tmp_path / "work/jobs/job-1/algo-2/opt/ml/input/config/resourceconfig.json").read_text())["hosts"] == ["algo-1", "algo-2"]


def test_a_channel_with_no_objects_fails_the_job_as_sagemaker_does(tmp_path: Path) -> None:
    from mlcompile.emulate.sagemaker.jobs import JobFailed

    with pytest.raises(JobFailed, match="No S3 objects found"):
        run_training(context(tmp_path, trainer=TRAIN), "job-2", training_request({}))


def test_metrics_are_the_last_match_of_each_definitions_regex() -> None:
    log = "epoch 1 auc=0.5\nepoch 2 auc=0.75\nloss=nan\n"
    assert metrics_from_log(log, [{"Name": "auc", "Regex": r"auc=([0-9.]+)"}, {"Name": "loss", "Regex": r"loss=([0-9.]+)"}]) == {"auc": 0.75}


def test_tuning_draws_within_the_ranges_and_ranks_the_trials_best_first(tmp_path: Path) -> None:
    import random

    ranges = {
        "ContinuousParameterRanges": [{"Name": "rate", "MinValue": "0.5", "MaxValue": "8", "ScalingType": "Logarithmic"}],
        "IntegerParameterRanges": [{"Name": "depth", "MinValue": "2", "MaxValue": "4"}],
        "CategoricalParameterRanges": [{"Name": "kind", "Values": ["x", "y"]}],
    }
    for _ in range(20):
        values = draw(ranges, random.Random(_))
        assert 0.5 <= float(values["rate"]) <= 8 and values["depth"] in ("2", "3", "4") and values["kind"] in ("x", "y")
    ctx = context(tmp_path, trainer=TRAIN)
    data = storage.local_path("s3://bucket/data/train/rows.csv", ctx.root)
    data.parent.mkdir(parents=True)
    data.write_text("a\n")
    definition = {**training_request({}), "StaticHyperParameters": {"epochs": "20"}}
    definition.pop("HyperParameters")
    request = {
        "HyperParameterTuningJobConfig": {
            "HyperParameterTuningJobObjective": {"MetricName": "loss", "Type": "Minimize"},
            "ParameterRanges": ranges,
            "ResourceLimits": {"MaxNumberOfTrainingJobs": 3, "MaxParallelTrainingJobs": 2},
        },
        "TrainingJobDefinition": definition,
    }
    description, trials = run_tuning(ctx, "tune", request)
    losses = [s["FinalHyperParameterTuningJobObjectiveMetric"]["Value"] for s in description["TrainingJobSummaries"]]
    assert len(trials) == 3 and losses == sorted(losses)
    assert description["BestTrainingJob"] == description["TrainingJobSummaries"][0]
    assert all(s["TunedHyperParameters"]["epochs"] == "20" for s in description["TrainingJobSummaries"])


def test_a_tuning_job_whose_trials_print_no_objective_fails(tmp_path: Path) -> None:
    from mlcompile.emulate.sagemaker.jobs import JobFailed

    ctx = context(tmp_path, trainer=TRAIN.replace("loss=", "other="))
    data = storage.local_path("s3://bucket/data/train/rows.csv", ctx.root)
    data.parent.mkdir(parents=True)
    data.write_text("a\n")
    request = {
        "HyperParameterTuningJobConfig": {
            "HyperParameterTuningJobObjective": {"MetricName": "loss", "Type": "Minimize"},
            "ParameterRanges": {},
            "ResourceLimits": {"MaxNumberOfTrainingJobs": 1, "MaxParallelTrainingJobs": 1},
        },
        "TrainingJobDefinition": training_request({}),
    }
    with pytest.raises(JobFailed, match="objective metric loss was not found"):
        run_tuning(ctx, "tune", request)
