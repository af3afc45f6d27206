"""The expressions of a SageMaker pipeline definition, evaluated as SageMaker Pipelines does:

    {"Get": "Execution.PipelineExecutionId"}           the execution's own variables
    {"Get": "Parameters.Name"}                          a pipeline parameter's value
    {"Get": "Steps.train.ModelArtifacts.S3ModelArtifacts"}
    {"Get": "Steps.s.ProcessingOutputConfig.Outputs['name'].S3Output.S3Uri"}
    {"Get": "Steps.tune.TrainingJobSummaries[0].TrainingJobName"}
    {"Get": "Steps.evaluate.PropertyFiles.metrics"}     (only inside Std:JsonGet)
    {"Std:Join": {"On": "/", "Values": [...]}}
    {"Std:JsonGet": {"PropertyFile": {"Get": ...}, "Path": "metrics.roc_auc"}}

and the conditions of a Condition step (Equals, GreaterThan[OrEqualTo], LessThan[OrEqualTo],
In, Not, Or). A step's properties are the Describe* answer of its job (a property a step does
not have is an error, as when SageMaker refuses the definition)."""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

_PART = re.compile(r"\.?([A-Za-z_][\w-]*)|\[(\d+)\]|\['([^']*)'\]")


class ExpressionError(Exception):
    """A reference SageMaker could not resolve (a missing property, a malformed function)."""


@dataclass
class Scope:
    """What references resolve against during one execution."""

    execution: Mapping[str, Any]  # PipelineExecutionId, PipelineExecutionArn, PipelineName, StartDateTime, ...
    parameters: Mapping[str, Any]
    properties: dict[str, Any] = field(default_factory=dict)  # step name -> its properties (Describe* shape)
    # (step name, property file name) -> the parsed JSON file of that step's output
    read_property_file: Callable[[str, str], Any] = lambda step, name: None


def referenced_steps(value: Any) -> set[str]:
    """The steps whose properties `value` reads (an implicit dependency, as in SageMaker)."""
    found: set[str] = set()
    if isinstance(value, dict):
        get = value.get("Get")
        if isinstance(get, str) and get.startswith("Steps."):
            found.add(get.split(".")[1])
        for item in value.values():
            found |= referenced_steps(item)
    elif isinstance(value, list):
        for item in value:
            found |= referenced_steps(item)
    return found


def resolve(value: Any, scope: Scope) -> Any:
    """`value` with every expression in it replaced by its value."""
    if isinstance(value, list):
        return [resolve(item, scope) for item in value]
    if not isinstance(value, dict):
        return value
    if set(value) == {"Get"}:
        return _get(value["Get"], scope)
    if set(value) == {"Std:Join"}:
        join = value["Std:Join"]
        return str(join.get("On", "")).join(_text(resolve(item, scope)) for item in join.get("Values", []))
    if set(value) == {"Std:JsonGet"}:
        return _json_get(value["Std:JsonGet"], scope)
    return {key: resolve(item, scope) for key, item in value.items()}


def _text(value: Any) -> str:
    """How Std:Join writes a value: JSON's spelling for booleans and null, Python's for numbers."""
    if isinstance(value, bool) or value is None:
        return json.dumps(value)
    return str(value)


def _get(path: str, scope: Scope) -> Any:
    head, _, rest = path.partition(".")
    if head == "Execution":
        if rest not in scope.execution:
            raise ExpressionError(f"{path}: no such execution variable (there are {', '.join(sorted(scope.execution))})")
        return scope.execution[rest]
    if head == "Parameters":
        if rest not in scope.parameters:
            raise ExpressionError(f"{path}: the pipeline has no parameter {rest!r}")
        return scope.parameters[rest]
    if head == "Steps":
        step, _, property_path = rest.partition(".")
        if step not in scope.properties:
            raise ExpressionError(f"{path}: step {step!r} has not run")
        if property_path.startswith("PropertyFiles."):
            raise ExpressionError(f"{path}: a property file is read through Std:JsonGet")
        return walk(scope.properties[step], property_path, path)
    raise ExpressionError(f"{path}: unknown reference (Execution, Parameters or Steps)")


def walk(value: Any, path: str, whole: str | None = None) -> Any:
    """`value` at `path` (`a.b[0]['c']`), as SageMaker reads properties and JsonGet reads files."""
    position = 0
    while position < len(path):
        match = _PART.match(path, position)
        if match is None:
            raise ExpressionError(f"{whole or path}: cannot read {path[position:]!r}")
        key, index, quoted = match.groups()
        try:
            if index is not None:
                value = value[int(index)]
            elif quoted is not None and isinstance(value, list):
                value = _named(value, quoted)
            else:
                value = value[key if key is not None else quoted]
        except (KeyError, IndexError, TypeError):
            raise ExpressionError(f"{whole or path}: no {path[: match.end()]!r}") from None
        position = match.end()
    return value


def _named(items: list[Any], name: str) -> Any:
    """The item of a property list SageMaker indexes by name (Outputs['train'] is the output
    whose OutputName is train)."""
    for item in items:
        if isinstance(item, dict) and any(key.endswith("Name") and value == name for key, value in item.items()):
            return item
    raise KeyError(name)


def _json_get(spec: Mapping[str, Any], scope: Scope) -> Any:
    reference = spec.get("PropertyFile")
    get = reference.get("Get", "") if isinstance(reference, dict) else ""
    parts = get.split(".")
    if len(parts) != 4 or parts[0] != "Steps" or parts[2] != "PropertyFiles":
        raise ExpressionError(f"Std:JsonGet: PropertyFile must be {{'Get': 'Steps.STEP.PropertyFiles.NAME'}}, not {reference!r}")
    step, name = parts[1], parts[3]
    if step not in scope.properties:
        raise ExpressionError(f"{get}: step {step!r} has not run")
    document = scope.read_property_file(step, name)
    if document is None:
        raise ExpressionError(f"{get}: step {step} declares no property file {name!r} (or did not write it)")
    return walk(document, str(spec.get("Path", "")), f"{get} {spec.get('Path')}")


_COMPARISONS: dict[str, Callable[[Any, Any], bool]] = {
    "Equals": lambda left, right: left == right,
    "GreaterThan": lambda left, right: left > right,
    "GreaterThanOrEqualTo": lambda left, right: left >= right,
    "LessThan": lambda left, right: left < right,
    "LessThanOrEqualTo": lambda left, right: left <= right,
}


def condition(spec: Mapping[str, Any], scope: Scope) -> bool:
    """One condition of a Condition step (a step's `Conditions` all hold: they are ANDed)."""
    kind = spec.get("Type")
    if kind == "Or":
        return any(condition(inner, scope) for inner in spec.get("Conditions", []))
    if kind == "Not":
        return not condition(spec["Condition"], scope)
    if kind == "In":
        return resolve(spec["QueryValue"], scope) in [resolve(v, scope) for v in spec.get("Values", [])]
    if kind not in _COMPARISONS:
        raise ExpressionError(f"condition type {kind!r} is not one SageMaker has")
    left, right = resolve(spec["LeftValue"], scope), resolve(spec["RightValue"], scope)
    try:
        return _COMPARISONS[kind](left, right)
    except TypeError:
        raise ExpressionError(f"{kind}: cannot compare {left!r} with {right!r}") from None


def all_hold(conditions: list[Mapping[str, Any]], scope: Scope) -> bool:
    return all(condition(spec, scope) for spec in conditions)
