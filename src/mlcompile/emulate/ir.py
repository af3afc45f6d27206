"""An interpreter of compiled KFP pipelines (the IR YAML): runs the root DAG and its sub-DAGs
in dependency order, evaluates `triggerPolicy.condition`, passes parameters and artifacts, and
runs each executor's container with its placeholders substituted as KFP's launcher does.

Artifacts live where KFP puts them: `<pipeline_root>/<run>/<task>/<output>`, a `gs://` root
mapped under the emulation root (storage.py); `.path` is that local folder (KFP's `/gcs/`
mount), `.uri` the gs:// URI. A failing task fails the run and its dependents are not
triggered; tasks on other branches still run (Vertex's and KFP's default fail-slow policy)."""

from __future__ import annotations

import json
import re
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from mlcompile.emulate import cel, dag
from mlcompile.emulate.containers import Images, UnmappedImage, run_container
from mlcompile.runtime import emulated_storage as storage

SUCCEEDED, FAILED, SKIPPED, NOT_TRIGGERED = "SUCCEEDED", "FAILED", "SKIPPED", "NOT_TRIGGERED"
_PLACEHOLDER = re.compile(r"\{\{\$(?P<expr>[^{}]*)\}\}")
_IO = re.compile(r"^\.(?P<side>inputs|outputs)\.(?P<kind>parameters|artifacts)\['(?P<name>[^']+)'\](?P<rest>.*)$")


class PipelineError(Exception):
    """The IR asks for something the emulator cannot do (reported, not a traceback)."""


@dataclass
class EmulationContext:
    images: Images
    root: Path  # emulation root: storage folders (gcs/, bigquery/, ...)
    work: Path  # logs and task scratch files
    env: Mapping[str, str] = field(default_factory=dict)  # every container gets these (service endpoints, ...)
    secrets: Mapping[str, str] = field(default_factory=dict)  # Kubernetes secret name -> value
    config_maps: Mapping[str, Mapping[str, str]] = field(default_factory=dict)
    namespace: str = "default"
    pipeline_root: str | None = None  # overrides the IR's defaultPipelineRoot
    parallelism: int = 1  # tasks run at once when their dependencies allow (1: one by one, in order)


@dataclass
class TaskResult:
    name: str
    status: str
    exit_code: int | None = None
    log: Path | None = None
    reason: str = ""
    parameters: dict[str, Any] = field(default_factory=dict)
    artifacts: dict[str, dict[str, Any]] = field(default_factory=dict)  # name -> {uri, metadata, type}
    seconds: float = 0.0


@dataclass
class PipelineResult:
    name: str
    run_id: str
    status: str
    tasks: dict[str, TaskResult]
    seconds: float = 0.0

    def failed(self) -> list[TaskResult]:
        return [task for task in self.tasks.values() if task.status == FAILED]


def load_documents(text: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """The IR and its platform-config document (kfp writes both into one multi-document file)."""
    import yaml

    documents = [doc for doc in yaml.safe_load_all(text) if doc]
    ir = next((doc for doc in documents if "pipelineInfo" in doc), None)
    if ir is None:
        raise PipelineError("no pipeline spec (pipelineInfo) in the file")
    platform: dict[str, Any] = next((doc for doc in documents if "platforms" in doc), {})
    return ir, platform


def run_pipeline(
    ir: dict[str, Any], *, parameters: dict[str, Any], context: EmulationContext, platform: dict[str, Any] | None = None, run_id: str | None = None
) -> PipelineResult:
    name = ir.get("pipelineInfo", {}).get("name", "pipeline")
    run_id = run_id or f"{name}-{datetime.now(UTC):%Y%m%d%H%M%S}-{uuid.uuid4().hex[:6]}"
    run = _Run(ir, platform or {}, context, name, run_id)
    started = time.monotonic()
    inputs = run.pipeline_inputs(parameters)
    run.dag(ir["root"], inputs)
    status = FAILED if any(task.status == FAILED for task in run.results.values()) else SUCCEEDED
    return PipelineResult(name, run_id, status, run.results, time.monotonic() - started)


class _Run:
    def __init__(self, ir: dict[str, Any], platform: dict[str, Any], context: EmulationContext, name: str, run_id: str) -> None:
        self.ir, self.context, self.name, self.run_id = ir, context, name, run_id
        self.components = ir.get("components", {})
        self.executors = ir.get("deploymentSpec", {}).get("executors", {})
        self.kubernetes = platform.get("platforms", {}).get("kubernetes", {}).get("deploymentSpec", {}).get("executors", {})
        self.pipeline_root = (context.pipeline_root or ir.get("defaultPipelineRoot") or f"file://{context.root / 'pipeline-root'}").rstrip("/")
        self.created = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        self.job_uuid = str(uuid.uuid4())
        self.results: dict[str, TaskResult] = {}

    # -- inputs ---------------------------------------------------------------------------
    def pipeline_inputs(self, given: dict[str, Any]) -> dict[str, Any]:
        definitions = self.ir["root"].get("inputDefinitions", {}).get("parameters", {})
        unknown = sorted(set(given) - set(definitions))
        if unknown:
            raise PipelineError(f"pipeline {self.name} has no parameter {', '.join(unknown)} (it has: {', '.join(sorted(definitions)) or 'none'})")
        values: dict[str, Any] = {}
        for key, definition in definitions.items():
            if key in given:
                values[key] = _coerce(given[key], definition.get("parameterType", "STRING"))
            elif "defaultValue" in definition:
                values[key] = _coerce(definition["defaultValue"], definition.get("parameterType", "STRING"))
            elif not definition.get("isOptional"):
                raise PipelineError(f"pipeline {self.name} needs parameter {key!r} (no default)")
        return {"parameters": values, "artifacts": {}}

    def task_inputs(self, spec: dict[str, Any], scope: dict[str, Any], done: Mapping[str, TaskResult]) -> dict[str, Any] | str:
        """The task's parameter values and artifacts, or the name of a producer that gave none."""
        found: dict[str, dict[str, Any]] = {"parameters": {}, "artifacts": {}}
        for kind, singular in (("parameters", "Parameter"), ("artifacts", "Artifact")):
            for key, source in spec.get("inputs", {}).get(kind, {}).items():
                if f"componentInput{singular}" in source:
                    name = source[f"componentInput{singular}"]
                    if name not in scope[kind]:
                        return f"input {name}"
                    found[kind][key] = scope[kind][name]
                elif f"taskOutput{singular}" in source:
                    ref = source[f"taskOutput{singular}"]
                    producer = done.get(ref["producerTask"])
                    produced = getattr(producer, kind, {})
                    if ref[f"output{singular}Key"] not in produced:
                        return ref["producerTask"]
                    found[kind][key] = produced[ref[f"output{singular}Key"]]
                elif kind == "parameters" and "runtimeValue" in source:
                    found[kind][key] = source["runtimeValue"].get("constant")
                else:
                    raise PipelineError(f"input {singular.lower()} {key}: unsupported source {sorted(source)}")
        return found

    # -- DAGs -----------------------------------------------------------------------------
    def dag(self, component: dict[str, Any], scope: dict[str, Any]) -> dict[str, TaskResult]:
        tasks = component["dag"]["tasks"]
        graph = {name: set(spec.get("dependentTasks", [])) | _producers(spec) for name, spec in tasks.items()}
        try:
            # like the platform: every task whose upstream tasks finished starts at once
            return dag.run(
                graph,
                lambda name, done: self.task(name, tasks[name], scope, done),
                gate=lambda name, done: _not_triggered(name, graph[name], done),
                ended=self.results.__setitem__,
                parallelism=self.context.parallelism,
                name=f"task-{self.run_id}",
            )
        except dag.Cycle as exc:
            raise PipelineError(f"pipeline {self.name}: tasks depend on each other in a cycle: {exc.steps}") from None

    def task(self, name: str, spec: dict[str, Any], scope: dict[str, Any], done: Mapping[str, TaskResult]) -> TaskResult:
        inputs = self.task_inputs(spec, scope, done)
        if isinstance(inputs, str):
            return TaskResult(name, SKIPPED, reason=f"{inputs} produced nothing (skipped upstream)")
        condition = spec.get("triggerPolicy", {}).get("condition")
        if condition:
            try:
                if not cel.evaluate(condition, inputs["parameters"]):
                    return TaskResult(name, SKIPPED, reason=f"condition false: {condition}")
            except cel.ConditionError as exc:
                return TaskResult(name, FAILED, reason=f"condition: {exc}")
        if "parameterIterator" in spec or "artifactIterator" in spec:
            raise PipelineError(f"task {name}: ParallelFor loops are not emulated yet")
        component = self.components[spec["componentRef"]["name"]]
        if "dag" in component:
            return self.sub_dag(name, component, inputs)
        return self.execute(name, component, inputs)

    def sub_dag(self, name: str, component: dict[str, Any], inputs: dict[str, Any]) -> TaskResult:
        started = time.monotonic()
        inner = self.dag(component, inputs)
        status = FAILED if any(task.status == FAILED for task in inner.values()) else SUCCEEDED
        result = TaskResult(name, status, seconds=time.monotonic() - started, reason="" if status == SUCCEEDED else "a task inside failed")
        outputs = component["dag"].get("outputs", {})
        for key, selector in outputs.get("parameters", {}).items():
            picked = selector.get("valueFromParameter", {})
            producer = inner.get(picked.get("producerSubtask", ""))
            if producer and picked.get("outputParameterKey") in producer.parameters:
                result.parameters[key] = producer.parameters[picked["outputParameterKey"]]
        for key, selectors in outputs.get("artifacts", {}).items():
            for picked in selectors.get("artifactSelectors", []):
                producer = inner.get(picked.get("producerSubtask", ""))
                if producer and picked.get("outputArtifactKey") in producer.artifacts:
                    result.artifacts[key] = producer.artifacts[picked["outputArtifactKey"]]
        return result

    # -- executors ------------------------------------------------------------------------
    def execute(self, name: str, component: dict[str, Any], inputs: dict[str, Any]) -> TaskResult:
        label = component.get("executorLabel", "")
        declared = component.get("inputDefinitions", {}).get("parameters", {})
        inputs = {**inputs, "parameters": {k: _coerce(v, declared.get(k, {}).get("parameterType", "")) for k, v in inputs["parameters"].items()}}
        container = self.executors.get(label, {}).get("container")
        if container is None:
            raise PipelineError(f"task {name}: executor {label!r} is not a container (importers and resolvers are not emulated)")
        task_dir = self.context.work / self.run_id / name
        log = task_dir / "log.txt"
        outputs = component.get("outputDefinitions", {})
        out_artifacts = {
            key: {"uri": f"{self.pipeline_root}/{self.run_id}/{name}/{key}", "type": d.get("artifactType", {}), "metadata": {}}
            for key, d in outputs.get("artifacts", {}).items()
        }
        out_files = {key: task_dir / "outputs" / key for key in outputs.get("parameters", {})}
        executor_output = task_dir / "executor_output.json"
        executor_input = self.executor_input(inputs, out_artifacts, out_files, executor_output)
        substitute = _Substitution(self, name, inputs, out_artifacts, out_files, executor_output, executor_input)
        try:
            command = [substitute(part) for part in container.get("command", [])]
            args = [substitute(part) for part in container.get("args", [])]
        except KeyError as exc:
            return TaskResult(name, FAILED, reason=f"placeholder names no such input or output: {exc.args[0]}")
        for artifact in out_artifacts.values():
            self.local(artifact["uri"]).parent.mkdir(parents=True, exist_ok=True)
        for path in out_files.values():
            path.parent.mkdir(parents=True, exist_ok=True)
        env, timeout, missing = self.environment(label, container, name)
        if missing:
            return TaskResult(name, FAILED, reason=missing)
        started = time.monotonic()
        try:
            code = run_container(self.context.images, container.get("image", ""), command, args, env, task_dir, log, timeout=timeout)
        except UnmappedImage as exc:
            return TaskResult(name, FAILED, reason=str(exc))
        result = TaskResult(name, SUCCEEDED if code == 0 else FAILED, code, log, seconds=time.monotonic() - started)
        if code:
            result.reason = "timed out (activeDeadlineSeconds)" if code == 124 and timeout else f"exit status {code}"
            return result
        self.collect(result, outputs, out_artifacts, out_files, executor_output)
        return result

    def executor_input(self, inputs: dict[str, Any], out_artifacts: dict[str, Any], out_files: dict[str, Path], output_file: Path) -> dict[str, Any]:
        def artifact(key: str, value: dict[str, Any]) -> dict[str, Any]:
            return {"artifacts": [{"name": key, "type": value.get("type", {}), "uri": value["uri"], "metadata": value.get("metadata", {})}]}

        return {
            "inputs": {
                "parameterValues": inputs["parameters"],
                "artifacts": {key: artifact(key, value) for key, value in inputs["artifacts"].items()},
            },
            "outputs": {
                "parameters": {key: {"outputFile": str(path)} for key, path in out_files.items()},
                "artifacts": {key: artifact(key, value) for key, value in out_artifacts.items()},
                "outputFile": str(output_file),
            },
        }

    def environment(self, label: str, container: dict[str, Any], task: str) -> tuple[dict[str, str], float | None, str]:
        env = {storage.EMULATE_ROOT_ENV: str(self.context.root), **self.context.env}
        env.update({item["name"]: str(item.get("value", "")) for item in container.get("env", [])})
        k8s = self.kubernetes.get(label, {})
        for secret in k8s.get("secretAsEnv", []):
            secret_name = secret.get("secretName") or secret.get("secretNameParameter", {}).get("runtimeValue", {}).get("constant", "")
            if secret_name not in self.context.secrets:
                if secret.get("optional"):
                    continue
                return env, None, f"Kubernetes secret {secret_name!r} is not in the emulation config's `secrets:` (the pod could not start)"
            for item in secret.get("keyToEnv", []):
                env[item["envVar"]] = self.context.secrets[secret_name]
        for config_map in k8s.get("configMapAsEnv", []):
            values = self.context.config_maps.get(config_map.get("configMapName", ""), {})
            for item in config_map.get("keyToEnv", []):
                if item.get("configMapKey") in values:
                    env[item["envVar"]] = values[item["configMapKey"]]
        fields = {"metadata.name": f"{self.run_id}-{task}", "metadata.namespace": self.context.namespace}
        for item in k8s.get("fieldPathAsEnv", []):
            env[item["name"]] = fields.get(item.get("fieldPath", ""), "")
        deadline = k8s.get("activeDeadlineSeconds")
        return env, float(deadline) if deadline else None, ""

    def collect(self, result: TaskResult, outputs: dict[str, Any], artifacts: dict[str, Any], files: dict[str, Path], executor_output: Path) -> None:
        written: dict[str, Any] = {}
        if executor_output.is_file():
            written = json.loads(executor_output.read_text() or "{}")
        for key, definition in outputs.get("parameters", {}).items():
            kind = definition.get("parameterType", "STRING")
            if key in written.get("parameterValues", {}):
                result.parameters[key] = written["parameterValues"][key]
            elif files[key].is_file():
                try:
                    result.parameters[key] = _parse(files[key].read_text(), kind)
                except ValueError as exc:
                    result.status, result.reason = FAILED, f"output parameter {key}: {exc}"
            else:
                result.status, result.reason = FAILED, f"output parameter {key} was not written ({files[key]})"
        for key, artifact in artifacts.items():
            listed = written.get("artifacts", {}).get(key, {}).get("artifacts", [])
            if listed:
                artifact["metadata"] = listed[0].get("metadata", {})
            result.artifacts[key] = artifact

    def local(self, uri: str) -> Path:
        if uri.startswith("file://"):
            return Path(uri[len("file://") :])
        return storage.local_path(uri, self.context.root)


class _Substitution:
    """KFP's launcher placeholders: `{{$}}`, `{{$.inputs.parameters['x']}}`,
    `{{$.inputs|outputs.artifacts['x'].path|uri|metadata}}`, `.output_file`, and the pipeline
    and task names and ids."""

    def __init__(
        self,
        run: _Run,
        task: str,
        inputs: dict[str, Any],
        out_artifacts: dict[str, Any],
        out_files: dict[str, Path],
        output_file: Path,
        executor_input: dict[str, Any],
    ) -> None:
        self.run, self.task, self.inputs = run, task, inputs
        self.out_artifacts, self.out_files, self.output_file, self.executor_input = out_artifacts, out_files, output_file, executor_input
        self.task_uuid = str(uuid.uuid4())

    def __call__(self, text: Any) -> str:
        if isinstance(text, dict):
            raise PipelineError(f"task {self.task}: IfPresent/Concat placeholders are not emulated yet")
        return _PLACEHOLDER.sub(lambda match: self.value(match.group("expr")), str(text))

    def value(self, expr: str) -> str:
        simple = {
            "": json.dumps(self.executor_input, sort_keys=True),
            ".pipeline_job_name": self.run.run_id,
            ".pipeline_job_resource_name": f"namespaces/{self.run.context.namespace}/runs/{self.run.run_id}",
            ".pipeline_job_uuid": self.run.job_uuid,
            ".pipeline_task_name": self.task,
            ".pipeline_task_uuid": self.task_uuid,
            ".pipeline_root": self.run.pipeline_root,
            ".pipeline_job_create_time_utc": self.run.created,
            ".pipeline_job_schedule_time_utc": self.run.created,
            ".outputs.output_file": str(self.output_file),
        }
        if expr in simple:
            return simple[expr]
        match = _IO.match(expr)
        if not match:
            raise PipelineError(f"task {self.task}: unknown placeholder {{{{${expr}}}}}")
        side, kind, name, rest = match.group("side", "kind", "name", "rest")
        if kind == "parameters":
            if side == "outputs":
                if rest != ".output_file":
                    raise PipelineError(f"task {self.task}: unknown placeholder {{{{${expr}}}}}")
                return str(self.out_files[name])
            return _text(self.inputs["parameters"][name])
        artifact = (self.inputs["artifacts"] if side == "inputs" else self.out_artifacts)[name]
        if rest == ".path":
            return str(self.run.local(artifact["uri"]))
        if rest == ".uri":
            return artifact["uri"]
        if rest == ".metadata":
            return json.dumps(artifact.get("metadata", {}), sort_keys=True)
        key = re.fullmatch(r"\.metadata\['([^']+)'\]", rest)
        if key:
            return _text(artifact.get("metadata", {}).get(key.group(1), ""))
        raise PipelineError(f"task {self.task}: unknown placeholder {{{{${expr}}}}}")


def _not_triggered(name: str, upstream_tasks: set[str], done: Mapping[str, TaskResult]) -> TaskResult | None:
    """A task after a failed (or never triggered) upstream task is not triggered."""
    upstream = [d for d in sorted(upstream_tasks) if d in done and done[d].status in (FAILED, NOT_TRIGGERED)]
    return TaskResult(name, NOT_TRIGGERED, reason=f"upstream {', '.join(upstream)} did not succeed") if upstream else None


def _producers(spec: dict[str, Any]) -> set[str]:
    found = set()
    for kind, ref in (("parameters", "taskOutputParameter"), ("artifacts", "taskOutputArtifact")):
        for source in spec.get("inputs", {}).get(kind, {}).values():
            if ref in source:
                found.add(source[ref]["producerTask"])
    return found


def _text(value: Any) -> str:
    """A parameter as the launcher prints it: strings raw, everything else as JSON."""
    return value if isinstance(value, str) else json.dumps(value)


def _parse(text: str, kind: str) -> Any:
    """An output parameter file read back by its declared type (as the launcher does)."""
    if kind == "STRING":
        return text
    if kind == "BOOLEAN":
        lowered = text.strip().lower()
        if lowered not in ("true", "false"):
            raise ValueError(f"{text.strip()!r} is not true or false")
        return lowered == "true"
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ValueError(f"{text.strip()[:40]!r} is not a {kind}") from exc
    if kind == "NUMBER_INTEGER":
        return int(value)
    if kind == "NUMBER_DOUBLE":
        return float(value)
    return value


def _coerce(value: Any, kind: str) -> Any:
    """A value as its declared type (the IR stores every number as a double: 3 is 3.0)."""
    if isinstance(value, str) and kind not in ("STRING", ""):
        return _parse(value, kind)
    if kind == "NUMBER_INTEGER" and isinstance(value, float) and value.is_integer():
        return int(value)
    return value
