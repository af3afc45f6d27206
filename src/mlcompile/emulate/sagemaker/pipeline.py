"""An interpreter of SageMaker pipeline definitions (the JSON CreatePipeline takes), running an
execution as SageMaker Pipelines does:

- a step starts when the steps it depends on succeeded: its `DependsOn`, every step whose
  properties its arguments read (`Get: Steps.X…`), and, for a step inside a Condition's
  IfSteps/ElseSteps, that Condition step, which runs only the branch its conditions chose;
- Processing, Training and Tuning steps run their jobs (jobs.py, tuning.py) with the
  arguments resolved (expressions.py); their properties are the jobs' Describe answers;
- a step's PropertyFiles are JSON files of its outputs that Std:JsonGet reads;
- a Fail step, or a failed step, fails the execution: no further step starts (the running
  ones finish);
- RegisterModel creates a model package through the model registry (the `register` hook,
  CreateModelPackage against the emulated SageMaker API).

Step results are the emulator's common ones (ir.TaskResult): a step with property files
reports their top-level values as its parameters (the gate's `decision`, a check's `breach`),
its outputs as artifacts (by OutputName, the file the container wrote when its arguments name
one)."""

from __future__ import annotations

import hashlib
import json
import re
import time
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any

from mlcompile.emulate import dag
from mlcompile.emulate.ir import FAILED, NOT_TRIGGERED, SKIPPED, SUCCEEDED, PipelineError, PipelineResult, TaskResult
from mlcompile.emulate.sagemaker import expressions
from mlcompile.emulate.sagemaker.expressions import ExpressionError, Scope
from mlcompile.emulate.sagemaker.jobs import JobContext, JobFailed, run_processing, run_training
from mlcompile.emulate.sagemaker.tuning import run_tuning
from mlcompile.runtime import emulated_storage as storage

JOB_STEPS = ("Processing", "Training", "Tuning")
KNOWN_STEPS = (*JOB_STEPS, "Condition", "Fail", "RegisterModel")
Register = Callable[[dict[str, Any]], dict[str, Any]]  # CreateModelPackage request -> its properties (ModelPackageArn)


class Execution:
    """One execution of a pipeline definition."""

    def __init__(
        self,
        definition: Mapping[str, Any],
        name: str,
        execution_arn: str,
        parameters: Mapping[str, Any],
        context: JobContext,
        *,
        register: Register | None = None,
        parallelism: int = 4,
        on_step: Callable[[str, str], None] = lambda step, status: None,
    ) -> None:
        self.name, self.arn, self.context = name, execution_arn, context
        self.register_hook, self.parallelism, self.on_step = register, max(1, parallelism), on_step
        self.id = execution_arn.rsplit("/", 1)[-1]
        self.steps: dict[str, dict[str, Any]] = {}
        self.parents: dict[str, set[str]] = {}
        self.branch_of: dict[str, tuple[str, bool]] = {}  # nested step -> (its Condition step, in IfSteps)
        for step in definition.get("Steps", []):
            self._add(step, None)
        self.scope = Scope(
            execution={
                "PipelineExecutionId": self.id,
                "PipelineExecutionArn": execution_arn,
                "PipelineName": name,
                "StartDateTime": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
                "CurrentDateTime": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
                "PipelineExperimentName": name,
                "PipelineExecutionDisplayName": self.id,
            },
            parameters=self._parameters(definition, parameters),
            read_property_file=self._property_file,
        )
        self.chosen: dict[str, bool] = {}  # Condition step -> the outcome of its conditions
        self.results: dict[str, TaskResult] = {}
        self.failure: str | None = None

    # -- the graph ------------------------------------------------------------------------
    def _add(self, step: dict[str, Any], branch: tuple[str, bool] | None) -> None:
        name = step["Name"]
        if name in self.steps:
            raise PipelineError(f"pipeline {self.name}: two steps are named {name!r}")
        if step["Type"] not in KNOWN_STEPS:
            raise PipelineError(f"step {name}: type {step['Type']} is not emulated (emulated: {', '.join(KNOWN_STEPS)})")
        self.steps[name] = step
        arguments = step.get("Arguments", {})
        # a Condition step reads what its conditions read; its branches' steps depend on it
        reads = arguments.get("Conditions", []) if step["Type"] == "Condition" else arguments
        self.parents[name] = set(step.get("DependsOn") or []) | expressions.referenced_steps(reads)
        if branch is not None:
            self.branch_of[name] = branch
            self.parents[name].add(branch[0])
        if step["Type"] == "Condition":
            for key, taken in (("IfSteps", True), ("ElseSteps", False)):
                for inner in step.get("Arguments", {}).get(key, []):
                    self._add(inner, (name, taken))

    def _parameters(self, definition: Mapping[str, Any], given: Mapping[str, Any]) -> dict[str, Any]:
        declared = {p["Name"]: p for p in definition.get("Parameters", [])}
        unknown = sorted(set(given) - set(declared))
        if unknown:
            raise PipelineError(f"pipeline {self.name} has no parameter {', '.join(unknown)} (it has: {', '.join(sorted(declared)) or 'none'})")
        values = {}
        for key, spec in declared.items():
            if key not in given and "DefaultValue" not in spec:
                raise PipelineError(f"pipeline {self.name} needs parameter {key!r} (no default)")
            value = given.get(key, spec.get("DefaultValue"))
            kind = spec.get("Type", "String")
            values[key] = (
                int(value) if kind == "Integer" else float(value) if kind == "Float" else (str(value).lower() == "true" if kind == "Boolean" else str(value))
            )
        return values

    # -- running --------------------------------------------------------------------------
    def run(self) -> PipelineResult:
        started = time.monotonic()
        for name, parents in self.parents.items():
            missing = sorted(parents - set(self.steps))
            if missing:
                raise PipelineError(f"step {name} depends on {', '.join(missing)}: no such step in pipeline {self.name}")
        try:
            results = dag.run(
                self.parents, lambda name, _: self._step(name), gate=self._blocked, ended=self._ended, parallelism=self.parallelism, name=f"step-{self.id}"
            )
        except dag.Cycle as exc:
            raise PipelineError(f"pipeline {self.name}: steps depend on each other in a cycle: {exc.steps}") from None
        status = FAILED if self.failure else SUCCEEDED
        return PipelineResult(self.name, self.arn, status, results, time.monotonic() - started)

    def _ended(self, name: str, result: TaskResult) -> None:
        self.results[name] = result
        self.on_step(name, result.status)
        if result.status == FAILED and self.failure is None:
            self.failure = f"step {name} failed: {result.reason}"

    def _blocked(self, name: str, done: Mapping[str, TaskResult]) -> TaskResult | None:
        """Why a step whose parents ended does not start (None: it starts)."""
        branch = self.branch_of.get(name)
        if branch is not None and branch[0] in self.chosen and self.chosen[branch[0]] != branch[1]:
            return TaskResult(name, SKIPPED, reason=f"condition {branch[0]} chose the other branch")
        not_run = sorted(p for p in self.parents[name] if done[p].status != SUCCEEDED)
        if not_run:
            return TaskResult(name, NOT_TRIGGERED, reason=f"{', '.join(not_run)} did not succeed")
        if self.failure is not None:
            return TaskResult(name, NOT_TRIGGERED, reason=f"the execution failed ({self.failure})")
        return None

    def _step(self, name: str) -> TaskResult:
        step = self.steps[name]
        started = time.monotonic()
        result = TaskResult(name, SUCCEEDED)
        try:
            arguments = expressions.resolve(step.get("Arguments", {}), self.scope) if step["Type"] != "Condition" else step.get("Arguments", {})
            kind = step["Type"]
            if kind == "Condition":
                self.chosen[name] = expressions.all_hold(arguments.get("Conditions", []), self.scope)
                result.parameters["Outcome"] = self.chosen[name]
                self.scope.properties[name] = {"Outcome": self.chosen[name]}
            elif kind == "Fail":
                message = str(arguments.get("ErrorMessage", ""))
                self.scope.properties[name] = {"ErrorMessage": message}
                result.status, result.reason = FAILED, message or "a Fail step ran"
            elif kind == "RegisterModel":
                if self.register_hook is None:
                    raise JobFailed("no model registry to register in")
                self.scope.properties[name] = self.register_hook(arguments)
                result.parameters.update(self.scope.properties[name])
            else:
                self._job(name, kind, arguments, result)
        except JobFailed as exc:
            result.status, result.reason, result.log = FAILED, str(exc), exc.log
        except (ExpressionError, storage.UnmappedURI) as exc:
            result.status, result.reason = FAILED, str(exc)
        result.seconds = time.monotonic() - started
        return result

    def _job(self, name: str, kind: str, arguments: dict[str, Any], result: TaskResult) -> None:
        job = job_name(self.id, name)
        if kind == "Processing":
            done = run_processing(self.context, job, arguments)
        elif kind == "Training":
            done = run_training(self.context, job, arguments)
        else:
            description, _ = run_tuning(self.context, job[:32], arguments)
            self.scope.properties[name] = description
            result.parameters["BestTrainingJob"] = description["BestTrainingJob"]["TrainingJobName"]
            return
        self.scope.properties[name] = done.description
        result.log = done.log
        result.parameters.update(done.metrics)
        if kind == "Processing":
            arguments_text = list(arguments.get("AppSpecification", {}).get("ContainerArguments", []))
            for output in arguments.get("ProcessingOutputConfig", {}).get("Outputs", []):
                result.artifacts[output["OutputName"]] = {"uri": _written(output["S3Output"], arguments_text)}
            for spec in self.steps[name].get("PropertyFiles", []):
                document = self._property_file(name, spec["PropertyFileName"])
                if isinstance(document, dict):
                    result.parameters.update({k: v for k, v in document.items() if isinstance(v, (bool, int, float, str))})
        else:
            result.artifacts["model"] = {"uri": done.description["ModelArtifacts"]["S3ModelArtifacts"]}

    def _property_file(self, step: str, name: str) -> Any:
        spec = next((p for p in self.steps.get(step, {}).get("PropertyFiles", []) if p["PropertyFileName"] == name), None)
        properties = self.scope.properties.get(step) or {}
        if spec is None or "ProcessingOutputConfig" not in properties:
            return None
        output = next((o for o in properties["ProcessingOutputConfig"]["Outputs"] if o["OutputName"] == spec["OutputName"]), None)
        if output is None:
            raise ExpressionError(f"step {step}: property file {name} names output {spec['OutputName']!r}, which the step does not have")
        path = storage.local_path(str(output["S3Output"]["S3Uri"]).rstrip("/") + "/" + spec["FilePath"], self.context.root)
        if not path.is_file():
            raise ExpressionError(f"step {step}: property file {name}: {spec['FilePath']} is not among the output {spec['OutputName']}'s files")
        try:
            return json.loads(path.read_text())
        except ValueError as exc:
            raise ExpressionError(f"step {step}: property file {name} is not JSON: {exc}") from None


def _written(output: Mapping[str, Any], arguments: list[str]) -> str:
    """The S3 URI of the file the container wrote into an output's folder (when its arguments
    name one), else the output's prefix."""
    uri, folder = str(output["S3Uri"]).rstrip("/"), str(output["LocalPath"]).rstrip("/") + "/"
    for argument in arguments:
        at = argument.find(folder)
        if at >= 0 and "/" not in argument[at + len(folder) :]:
            return f"{uri}/{argument[at + len(folder) :]}"
    return uri


def job_name(execution_id: str, step: str) -> str:
    """pipelines-<execution>-<step>-<hash>, as SageMaker names a step's job (63 characters at most)."""
    clean = re.sub(r"[^a-zA-Z0-9-]", "-", step).strip("-")[:20]
    digest = hashlib.sha1(f"{execution_id}/{step}".encode()).hexdigest()[:8]
    return f"pipelines-{execution_id[-12:]}-{clean}-{digest}"
