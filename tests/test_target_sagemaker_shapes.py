"""Every file of a SageMaker build checked against botocore's service model of the API it is
sent to — the oracle AWS itself validates with (its published pipeline-definition JSON schema
is stale: current SDK output fails it).

* `sagemaker.pipeline_definition`: each step's `Arguments` against the request of the API the
  step calls (Processing → CreateProcessingJob, Training → CreateTrainingJob, Tuning →
  CreateHyperParameterTuningJob, RegisterModel → CreateModelPackage, Transform →
  CreateTransformJob, Model → CreateModel), descending into ConditionSteps; pipeline
  expressions (`Get`, `Std:Join`, `Std:JsonGet`) stand for any value of the expected type.
  Job names are left out by the SDK (the execution sets them) and filled with a placeholder.
* `<service>.<operation>` files: the whole body against that operation's request.

The walk checks more than `botocore.validate.ParamValidator` (which checks types, required
members and minimums): unknown members, maximum lengths/sizes, enums and patterns — e.g. the
256-character limit of a container argument, which a run would otherwise hit in AWS only.
ParamValidator runs too, on the body with expressions replaced by typed placeholders."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from requires import require

botocore = pytest.importorskip("botocore")
require("sagemaker")

from botocore.session import get_session  # noqa: E402
from botocore.validate import ParamValidator  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
EXPRESSIONS = ("Get", "Std:Join", "Std:JsonGet")
STEP_OPERATIONS = {
    "Processing": ("sagemaker", "CreateProcessingJob", {"ProcessingJobName": "job"}),
    "Training": ("sagemaker", "CreateTrainingJob", {"TrainingJobName": "job"}),
    "Tuning": ("sagemaker", "CreateHyperParameterTuningJob", {"HyperParameterTuningJobName": "job"}),
    "RegisterModel": ("sagemaker", "CreateModelPackage", {}),
    "Transform": ("sagemaker", "CreateTransformJob", {"TransformJobName": "job"}),
    "Model": ("sagemaker", "CreateModel", {"ModelName": "model"}),
}
# Filled in by deploy (the definition is its own file) or by botocore (idempotency tokens).
BODY_FILLERS = {"sagemaker.create_pipeline": {"PipelineDefinition": "{}", "ClientRequestToken": "t" * 32}}
# The serving bodies are templates the deploy-online step fills once a version is approved.
TEMPLATE_VALUES = {"${ModelPackageVersion}": "3", "${ModelPackageArn}": "arn:aws:sagemaker:eu-west-1:123456789012:model-package/churn-classifier/3"}
_session = get_session()


def filled(text: str) -> str:
    for placeholder, value in TEMPLATE_VALUES.items():
        text = text.replace(placeholder, value)
    return text


def operation_model(service: str, name: str) -> Any:
    model = _session.get_service_model(service)
    if name not in model.operation_names:  # snake_case → the model's operation name
        name = next(op for op in model.operation_names if botocore.xform_name(op) == name)
    return model.operation_model(name)


def is_expression(value: Any) -> bool:
    return isinstance(value, dict) and len(value) == 1 and next(iter(value)) in EXPRESSIONS


def check_shape(value: Any, shape: Any, path: str, problems: list[str]) -> Any:
    """Problems of `value` against `shape`; returns the value with expressions replaced by a
    placeholder of the shape's type (for ParamValidator)."""
    if is_expression(value):
        return _placeholder(shape)
    meta = shape.metadata
    kind = shape.type_name
    if kind == "structure":
        if not isinstance(value, dict):
            problems.append(f"{path}: expected an object, got {value!r}")
            return value
        for required in shape.required_members:
            if required not in value:
                problems.append(f"{path}: missing required {required}")
        out = {}
        for key, item in value.items():
            if key not in shape.members:
                problems.append(f"{path}: unknown member {key} (known: {', '.join(sorted(shape.members))})")
                continue
            out[key] = check_shape(item, shape.members[key], f"{path}.{key}", problems)
        return out
    if kind == "list":
        if not isinstance(value, list):
            problems.append(f"{path}: expected a list, got {value!r}")
            return value
        _bounds(len(value), meta, path, problems, "items")
        return [check_shape(item, shape.member, f"{path}[{i}]", problems) for i, item in enumerate(value)]
    if kind == "map":
        if not isinstance(value, dict):
            problems.append(f"{path}: expected a map, got {value!r}")
            return value
        _bounds(len(value), meta, path, problems, "entries")
        return {check_shape(k, shape.key, f"{path} key", problems): check_shape(v, shape.value, f"{path}.{k}", problems) for k, v in value.items()}
    if kind == "string":
        if not isinstance(value, str):
            problems.append(f"{path}: expected a string, got {value!r}")
            return value
        _bounds(len(value), meta, path, problems, "characters")
        if shape.enum and value not in shape.enum:
            problems.append(f"{path}: {value!r} is not one of {shape.enum}")
        pattern = meta.get("pattern")
        if pattern:
            try:
                compiled = re.compile(pattern)
            except re.error:
                compiled = None
            if compiled is not None and not compiled.fullmatch(value):
                problems.append(f"{path}: {value!r} does not match {pattern}")
        return value
    if kind in ("integer", "long"):
        if isinstance(value, bool) or not isinstance(value, int):
            problems.append(f"{path}: expected an integer, got {value!r}")
            return value
        _bounds(value, meta, path, problems, "")
        return value
    if kind in ("float", "double"):
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            problems.append(f"{path}: expected a number, got {value!r}")
        return value
    if kind == "boolean":
        if not isinstance(value, bool):
            problems.append(f"{path}: expected a boolean, got {value!r}")
        return value
    return value


def _bounds(size: int, meta: dict[str, Any], path: str, problems: list[str], unit: str) -> None:
    if "min" in meta and size < meta["min"]:
        problems.append(f"{path}: {size} {unit} < minimum {meta['min']}".replace("  ", " "))
    if "max" in meta and size > meta["max"]:
        problems.append(f"{path}: {size} {unit} > maximum {meta['max']}".replace("  ", " "))


def _placeholder(shape: Any) -> Any:
    return {"string": "s3://placeholder/x", "integer": 1, "long": 1, "float": 1.0, "double": 1.0, "boolean": True, "list": [], "map": {}, "structure": {}}.get(
        shape.type_name, "x"
    )


def validate_request(service: str, operation: str, body: dict[str, Any], where: str) -> list[str]:
    model = operation_model(service, operation)
    problems: list[str] = []
    concrete = check_shape(body, model.input_shape, where, problems)
    report = ParamValidator().validate(concrete, model.input_shape)
    if report.has_errors():
        problems.append(f"{where}: ParamValidator: {report.generate_report()}")
    return problems


def walk_steps(steps: list[dict[str, Any]]) -> list[dict[str, Any]]:
    found = []
    for step in steps:
        found.append(step)
        if step["Type"] == "Condition":
            found += walk_steps(step["Arguments"]["IfSteps"]) + walk_steps(step["Arguments"]["ElseSteps"])
    return found


def validate_definition(definition: dict[str, Any], where: str) -> list[str]:
    problems: list[str] = []
    for step in walk_steps(definition["Steps"]):
        at = f"{where}:{step['Name']}"
        if step["Type"] in STEP_OPERATIONS:
            service, operation, names = STEP_OPERATIONS[step["Type"]]
            problems += validate_request(service, operation, {**names, **step["Arguments"]}, at)
        elif step["Type"] == "Condition":
            for condition in step["Arguments"]["Conditions"]:
                if not {"Type", "LeftValue", "RightValue"} <= set(condition) and condition.get("Type") not in ("Or", "Not", "In"):
                    problems.append(f"{at}: malformed condition {condition}")
        elif step["Type"] == "Fail":
            if not step["Arguments"].get("ErrorMessage"):
                problems.append(f"{at}: a FailStep without a message")
        else:
            problems.append(f"{at}: step type {step['Type']} has no API mapping in this test")
        if not re.fullmatch(r"[A-Za-z0-9\-_]{1,64}", step["Name"]):
            problems.append(f"{at}: step name is not a valid SageMaker step name")
    return problems


# ---------------------------------------------------------------------------- builds


@pytest.fixture(scope="module")
def builds(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    from test_target_sagemaker_support import all_builds

    return all_builds(tmp_path_factory.mktemp("sagemaker"))


def manifest_files(folder: Path) -> list[dict[str, Any]]:
    return json.loads((folder / "manifest.json").read_text())["files"]


def test_every_file_is_validated_by_its_kind(builds: dict[str, Path]) -> None:
    """No kind slips past the oracle: every kind is a definition, a step config, or an API body."""
    for name, folder in builds.items():
        for entry in manifest_files(folder):
            kind = entry["kind"]
            assert kind in ("sagemaker.pipeline_definition", "mlcompile.step_config") or "." in kind, (name, entry)
            if "." in kind and kind.split(".", 1)[0] not in ("sagemaker", "mlcompile"):
                service, operation = kind.split(".", 1)
                operation_model(service, operation)  # raises if botocore has no such operation


@pytest.mark.parametrize("build", ["churn", "batch-scoring", "ranker-tuned"])
def test_pipeline_steps_match_the_apis_they_call(builds: dict[str, Path], build: str) -> None:
    folder = builds[build]
    problems: list[str] = []
    definitions = [e for e in manifest_files(folder) if e["kind"] == "sagemaker.pipeline_definition"]
    assert definitions
    for entry in definitions:
        problems += validate_definition(json.loads((folder / entry["path"]).read_text()), entry["path"])
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("build", ["churn", "batch-scoring", "ranker-tuned"])
def test_request_bodies_match_their_apis(builds: dict[str, Path], build: str) -> None:
    folder = builds[build]
    problems: list[str] = []
    for entry in manifest_files(folder):
        kind = entry["kind"]
        if kind in ("sagemaker.pipeline_definition", "mlcompile.step_config"):
            continue
        service, operation = kind.split(".", 1)
        body = {**json.loads(filled((folder / entry["path"]).read_text())), **BODY_FILLERS.get(kind, {})}
        problems += validate_request(service, operation, body, entry["path"])
    assert not problems, "\n".join(problems)


def test_the_walk_catches_what_aws_would_refuse() -> None:
    """The oracle itself: a too-long container argument, an unknown member, a bad enum."""
    body = {
        "ProcessingJobName": "job",
        "RoleArn": "arn:aws:iam::123456789012:role/r",
        "AppSpecification": {"ImageUri": "img", "ContainerArguments": ["x" * 257]},
        "ProcessingResources": {"ClusterConfig": {"InstanceCount": 1, "InstanceType": "ml.m5.huge", "VolumeSizeInGB": 30, "Acceleratorr": 1}},
    }
    problems = "\n".join(validate_request("sagemaker", "CreateProcessingJob", body, "job"))
    assert "ContainerArguments[0]: 257 characters > maximum 256" in problems
    assert "unknown member Acceleratorr" in problems
    assert "'ml.m5.huge' is not one of" in problems
    # and a pipeline expression stands for any value of the expected type
    body["AppSpecification"]["ContainerArguments"] = [{"Get": "Steps.a.ProcessingOutputConfig.Outputs['x'].S3Output.S3Uri"}]
    body["ProcessingResources"]["ClusterConfig"] = {"InstanceCount": {"Get": "Parameters.Count"}, "InstanceType": "ml.m5.large", "VolumeSizeInGB": 30}
    assert validate_request("sagemaker", "CreateProcessingJob", body, "job") == []
