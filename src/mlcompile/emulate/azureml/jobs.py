"""An interpreter of Azure ML pipeline jobs (the YAML `az ml job create` and
`MLClient.jobs.create_or_update` take): the file is first loaded with azure-ai-ml's own
`load_job` (what the SDK refuses, the emulator refuses), then its `jobs:` run in the order
their `${{parent.jobs.X.outputs.Y}}` bindings make, independent ones at once. Command nodes
run as steps.py says; sweep nodes run their trials (sweep.py) and pass on the best trial's
outputs. A pipeline output with a `name` is registered as a data asset version of the
workspace when its job succeeds, as the service does.

With `settings.continue_on_step_failure: false` (the default) the first failed job stops the
pipeline: jobs not yet started are canceled."""

from __future__ import annotations

import time
import uuid
import zlib
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from mlcompile.emulate import dag
from mlcompile.emulate.azureml import sweep as sweeps
from mlcompile.emulate.azureml.bindings import BindingError, binding, upstream
from mlcompile.emulate.azureml.steps import Data, JobContext, data_input, declared_type, prepare_output, run_command
from mlcompile.emulate.ir import FAILED, NOT_TRIGGERED, SKIPPED, SUCCEEDED, PipelineError, PipelineResult, TaskResult

CANCELED = NOT_TRIGGERED  # the summary's word for a job that never started


def load(path: Path) -> dict[str, Any]:
    """The pipeline job of a file, after azure-ai-ml's `load_job` accepted it."""
    import yaml

    check_with_sdk(path)
    job = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    if job.get("type") != "pipeline":
        raise PipelineError(f"{path}: type {job.get('type')!r}: the emulator runs pipeline jobs")
    return job


def check_with_sdk(path: Path) -> None:
    from azure.ai.ml import load_job

    from mlcompile.targets.azureml._sdk import experimental_checks_skipped, offline_cloud, quiet

    try:
        with quiet(), offline_cloud(), experimental_checks_skipped():
            load_job(source=str(path))
    except Exception as exc:  # the SDK's validation errors have no common base class
        raise PipelineError(
            f"{path}: azure-ai-ml's load_job refuses it: {str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__}"
        ) from None


def run_job(job: Mapping[str, Any], context: JobContext, *, name: str | None = None, parallelism: int = 4) -> PipelineResult:
    display = str(job.get("display_name") or name or "pipeline")
    run_id = name or f"{display}-{datetime.now(UTC):%Y%m%d%H%M%S}-{uuid.uuid4().hex[:6]}"
    started = time.monotonic()
    run = _PipelineRun(job, context, display, run_id)
    run.run(parallelism)
    status = FAILED if any(t.status == FAILED for t in run.results.values()) else SUCCEEDED
    return PipelineResult(display, run_id, status, run.results, time.monotonic() - started)


class _PipelineRun:
    def __init__(self, job: Mapping[str, Any], context: JobContext, display: str, run_id: str) -> None:
        self.job, self.context, self.display, self.run_id = job, context, display, run_id
        self.experiment = str(job.get("experiment_name") or display)
        self.nodes: dict[str, Mapping[str, Any]] = dict(job.get("jobs") or {})
        self.results: dict[str, TaskResult] = {}  # by display name (the step's name in the studio)
        self.outputs: dict[str, dict[str, Data]] = {}  # node -> its outputs
        self.stop_at_failure = not (job.get("settings") or {}).get("continue_on_step_failure", False)
        self.parent_run = context.workspace.start_run(self.experiment, run_id, tags={"mlflow.runName": display, "azureml.runType": "pipeline"})

    def run(self, parallelism: int) -> None:
        try:
            graph = {node: upstream(spec) for node, spec in self.nodes.items()}
        except BindingError as exc:
            raise PipelineError(f"pipeline {self.display}: {exc}") from None
        for node, needs in graph.items():
            unknown = needs - set(self.nodes)
            if unknown:
                raise PipelineError(f"pipeline {self.display}: job {node} binds to {', '.join(sorted(unknown))}, which the pipeline has no job named")
        failed: list[str] = []

        def gate(node: str, done: Mapping[str, TaskResult]) -> TaskResult | None:
            blocked = [d for d in sorted(graph[node]) if done[d].status in (FAILED, CANCELED)]
            if blocked:
                return TaskResult(self.label(node), CANCELED, reason=f"upstream {', '.join(blocked)} did not succeed")
            if failed and self.stop_at_failure:
                return TaskResult(self.label(node), CANCELED, reason="canceled: the pipeline stops at its first failed job (continue_on_step_failure: false)")
            return None

        def ended(node: str, result: TaskResult) -> None:
            if result.status == FAILED:
                failed.append(node)

        try:
            done = dag.run(graph, lambda node, _: self.node(node), gate=gate, ended=ended, parallelism=parallelism, name=f"job-{self.run_id}")
        except dag.Cycle as exc:
            raise PipelineError(f"pipeline {self.display}: jobs bind to each other in a cycle: {exc.steps}") from None
        for result in done.values():
            self.results[result.name] = result
        self.context.workspace.end_run(self.parent_run, not failed)

    def label(self, node: str) -> str:
        spec = self.nodes[node]
        component = spec.get("component") or spec.get("trial") or {}
        return str((component.get("display_name") if isinstance(component, Mapping) else None) or spec.get("display_name") or node)

    # -- one node -------------------------------------------------------------------------
    def node(self, node: str) -> TaskResult:
        spec = self.nodes[node]
        kind = spec.get("type", "command")
        component = spec.get("trial") if kind == "sweep" else spec.get("component")
        label = self.label(node)
        if not isinstance(component, Mapping):
            return TaskResult(label, FAILED, reason=f"component {component!r}: only inline components are emulated")
        try:
            inputs = self.inputs(spec, component)
        except (BindingError, PipelineError, OSError) as exc:
            return TaskResult(label, FAILED, reason=f"inputs: {exc}")
        if kind == "command":
            outputs = self.prepare_outputs(node, spec, component, self.job_folder(node))
            result = run_command(self.context, label, self.run_id, self.experiment, spec, component, inputs, outputs, parent_run=self.parent_run)
        elif kind == "sweep":
            result, outputs = self.sweep(node, label, spec, component, inputs)
        else:
            return TaskResult(label, FAILED, reason=f"job type {kind!r} is not emulated (command and sweep are)")
        if result.status in (SUCCEEDED, SKIPPED):  # a guarded step that skipped its work still completed
            self.outputs[node] = outputs
            self.publish(spec, outputs)
        return result

    def job_folder(self, node: str, *more: str) -> tuple[str, Path]:
        return self.context.workspace.datastore_path("azureml", self.run_id, node, *more)

    def inputs(self, spec: Mapping[str, Any], component: Mapping[str, Any]) -> dict[str, Data]:
        found: dict[str, Data] = {}
        pipeline_inputs = self.job.get("inputs") or {}
        for key, value in (spec.get("inputs") or {}).items():
            bound = binding(value)
            kind = declared_type(component, "inputs", key)
            if bound is None:
                found[key] = data_input(value, kind, self.context.root, self.context.workspace)
            elif "job" in bound:
                produced = self.outputs.get(bound["job"], {})
                if bound["output"] not in produced:
                    raise BindingError(f"{key}: job {bound['job']} has no output {bound['output']!r}")
                found[key] = produced[bound["output"]]
            elif bound["side"] == "inputs":
                if bound["name"] not in pipeline_inputs:
                    raise BindingError(f"{key}: the pipeline has no input {bound['name']!r}")
                found[key] = data_input(pipeline_inputs[bound["name"]], kind, self.context.root, self.context.workspace)
            else:
                raise BindingError(f"{key}: an input cannot bind to the pipeline's outputs")
        return found

    def prepare_outputs(self, node: str, spec: Mapping[str, Any], component: Mapping[str, Any], folder: tuple[str, Path]) -> dict[str, Data]:
        pipeline_outputs = self.job.get("outputs") or {}
        prepared = {}
        for key, declared in (component.get("outputs") or {}).items():
            given = (spec.get("outputs") or {}).get(key)
            bound = binding(given) if given is not None else None
            if bound is not None and bound.get("side") == "outputs":
                given = pipeline_outputs.get(bound["name"]) or {}
            prepared[key] = prepare_output(key, declared or {}, given, folder, self.context.root)
        return prepared

    def publish(self, spec: Mapping[str, Any], outputs: Mapping[str, Data]) -> None:
        """Register the named pipeline outputs this node wrote (a new data asset version)."""
        pipeline_outputs = self.job.get("outputs") or {}
        for key, given in (spec.get("outputs") or {}).items():
            bound = binding(given)
            if bound is None or bound.get("side") != "outputs" or key not in outputs:
                continue
            declared = pipeline_outputs.get(bound["name"]) or {}
            if isinstance(declared, Mapping) and declared.get("name"):
                self.context.workspace.register_data(str(declared["name"]), outputs[key])

    # -- sweep ----------------------------------------------------------------------------
    def sweep(self, node: str, label: str, spec: Mapping[str, Any], trial: Mapping[str, Any], inputs: dict[str, Data]) -> tuple[TaskResult, dict[str, Data]]:
        started = time.monotonic()
        objective = spec.get("objective") or {}
        goal, metric = str(objective.get("goal", "maximize")).lower(), objective.get("primary_metric")
        limits = spec.get("limits") or {}
        total = int(limits.get("max_total_trials") or 1)
        at_once = max(1, int(limits.get("max_concurrent_trials") or total))
        try:
            candidates = sweeps.sample(
                spec.get("search_space") or {}, spec.get("sampling_algorithm", "random"), total, seed=zlib.crc32(f"{self.run_id}/{node}".encode())
            )
        except sweeps.SearchSpaceError as exc:
            return TaskResult(label, FAILED, reason=str(exc)), {}
        if not metric:
            return TaskResult(label, FAILED, reason="objective.primary_metric is not set"), {}
        sweep_run = self.context.workspace.start_run(self.experiment, label, parent=self.parent_run, tags={"azureml.runType": "hyperdrive"})
        trials = [sweeps.Trial(number, parameters) for number, parameters in enumerate(candidates)]
        finished: list[sweeps.Trial] = []
        trial_node = {**spec, "limits": {"timeout": limits.get("trial_timeout")}}

        def one(trial_: sweeps.Trial) -> None:
            outputs = self.prepare_outputs(node, spec, trial, self.job_folder(node, "trials", str(trial_.number)))
            literals = {name: Data("literal", "", value=value) for name, value in trial_.parameters.items()}
            result = run_command(
                self.context,
                f"{label}-trial-{trial_.number}",
                self.run_id,
                self.experiment,
                trial_node,
                trial,
                {**inputs, **literals},
                outputs,
                parent_run=sweep_run,
            )
            trial_.outputs = outputs
            run_id = result.parameters.get("mlflow_run_id")
            trial_.history = self.context.workspace.metric_history(run_id, metric) if run_id else []
            trial_.metric = trial_.history[-1] if trial_.history else None
            if result.status != SUCCEEDED:
                trial_.status, trial_.reason = "failed", result.reason
            elif trial_.metric is None:
                trial_.status, trial_.reason = "completed", f"logged no {metric!r} metric to its MLflow run"
            else:
                trial_.status = "completed"
                trial_.reason = sweeps.terminated(trial_, finished, spec.get("early_termination"), goal)
                trial_.status = "canceled" if trial_.reason else "completed"

        with ThreadPoolExecutor(max_workers=at_once, thread_name_prefix=f"trial-{node}") as pool:
            for batch_start in range(0, len(trials), at_once):
                batch = trials[batch_start : batch_start + at_once]
                list(pool.map(one, batch))
                finished.extend(batch)
        best = sweeps.best_trial(trials, goal)
        self.context.workspace.end_run(sweep_run, best is not None)
        summary = {t.number: {"status": t.status, metric: t.metric, "parameters": t.parameters, **({"reason": t.reason} if t.reason else {})} for t in trials}
        result = TaskResult(label, SUCCEEDED if best else FAILED, 0 if best else 1, seconds=time.monotonic() - started)
        result.parameters["trials"] = summary
        if best is None:
            reasons = sorted({t.reason for t in trials if t.reason})
            result.reason = f"no trial completed with a logged {metric!r}" + (f": {'; '.join(reasons)}" if reasons else "")
            return result, {}
        result.parameters.update(best_trial=best.number, best_parameters=best.parameters, **{metric: best.metric})
        for key, data in best.outputs.items():
            result.artifacts[key] = {"uri": data.uri, "path": str(data.path), "type": data.type}
        return result, dict(best.outputs)
