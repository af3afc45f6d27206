"""The KFP v2 IR shared by the `kubeflow` and `vertex` targets: one plan pipeline → one
`PipelineSpec` (+ `PlatformSpec`) compiled by the kfp SDK itself, so the IR is exactly what
Kubeflow Pipelines and Vertex AI Pipelines accept.

Each plan step becomes a container component built from data (no Python source per step):
typed artifacts between steps (Dataset, Model, Metrics; a report is a generic Artifact),
`decision` outputs become boolean output parameters, and `run_if` becomes `dsl.If` (the
registration runs only when the gate's decision is true; the monitoring alert and
retraining run when any check breached, as an If/Elif chain because KFP conditions cannot
OR). What differs per platform (accelerator naming, node selectors, timeouts, which steps
launch a platform job) comes in through `StepSettings` and a `decorate` callback.

Two small run-time entry points live beside it (they run inside the pipeline's containers):
`run_step` (a runtime step whose decision feeds dsl.If) and `launch` (a step that runs as a
platform job: PyTorchJob, Katib Experiment, Vertex CustomJob / tuning job, model upload).

kfp is imported inside the functions only: importing a target must not import its SDK."""

from __future__ import annotations

import inspect
import json
import math
import os
import tempfile
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from mlcompile.plan.extension import PlanExtension, platform_step
from mlcompile.plan.nodes import Pipeline, Plan, Schedule, Step
from mlcompile.runtime.contract import CONTAINER_ENV, ENV_METRICS, ENV_MODEL_DIR, ENV_TEST_DATA, ENV_TRAIN_DATA, ENV_VALIDATION_REPORT, step_config

# plan artifact type → kfp artifact class name (decision → a boolean output parameter)
ARTIFACT_CLASSES = {"dataset": "Dataset", "model": "Model", "metrics": "Metrics", "report": "Artifact"}
# which input/output feeds which variable of a user's container trainer (CONTAINER_ENV)
CONTAINER_ENV_OF = {"train": ENV_TRAIN_DATA, "test": ENV_TEST_DATA, "report": ENV_VALIDATION_REPORT, "model": ENV_MODEL_DIR, "metrics": ENV_METRICS}
assert set(CONTAINER_ENV_OF.values()) <= set(CONTAINER_ENV)
RUN_STEP = "mlcompile.targets.kfp_ir.run_step"  # a runtime step with decision outputs
LAUNCH = "mlcompile.targets.kfp_ir.launch"  # a step that runs as a platform job
# The pipeline run a task belongs to, as each platform resolves it in a container's args (KFP
# resolves placeholders in command and args only, never in environment variables): the run id
# the KFP API knows (`{{$.pipeline_job_uuid}}`), the PipelineJob id on Vertex AI
# (`{{$.pipeline_job_name}}`). Recorded as the registered model's `pipeline_run` lineage.
RUN_ID_KUBEFLOW = "{{$.pipeline_job_uuid}}"
RUN_ID_VERTEX = "{{$.pipeline_job_name}}"
# Where a container writes its ExecutorOutput (artifact metadata such as a google.VertexModel's
# resourceName): kfp's PIPELINE_TASK_EXECUTOR_OUTPUT_PATH_PLACEHOLDER.
EXECUTOR_OUTPUT = "{{$.outputs.output_file}}"
# The output a trigger-retraining task records what it submitted in: {"submitted": run id or null, …}
RETRAINING_OUTPUT = "retraining"


@dataclass
class StepSettings:
    """How one plan step runs as a KFP task on a platform."""

    image: str
    command: list[str]
    config: dict[str, Any] | None  # runtime steps: the --config document; None: a user container
    cpu: float
    memory: str
    accelerator_type: str | None = None  # vertex: the AcceleratorType enum; kubeflow: nvidia.com/gpu
    accelerator_count: int = 0
    retries: int = 0
    caching: bool = True
    env: dict[str, str] = field(default_factory=dict)
    user_args: list[str] = field(default_factory=list)  # a user container's own args
    pipeline_run: str | None = None  # the platform's run-id placeholder (runtime steps)
    # outputs the platform adds to the plan step's: name → artifact schema title
    # (e.g. "google.VertexModel"); `executor_output` passes EXECUTOR_OUTPUT for their metadata
    extra_outputs: dict[str, str] = field(default_factory=dict)
    executor_output: bool = False


def approval_pipelines(plan: Plan) -> PlanExtension:
    """With `approval: manual` and an online endpoint: `<system>-deploy`, the pipeline an
    approver runs after giving a version the alias `production` (its deploy-online step rolls
    the endpoint to that version). With `approval: auto` the training pipeline deploys."""
    from mlcompile.targets.base import deploy_pipeline

    online = plan.online
    return PlanExtension((deploy_pipeline(plan, online),) if online is not None and online.requires_approval else ())


def runtime_config(plan: Plan, step: Step, *, tracking_uri: str | None = None, **extra: Any) -> dict[str, Any]:
    """The runtime contract's config of a step plus platform sections (`platform`,
    `platform_job`, `platform_run`), which the runtime reads when it must talk to the platform;
    `tracking_uri` is the MLflow server the runtime's registry steps use. A register step also
    gets the build's lineage (profile sha256, git commit) to tag the version with; a new-data
    sensor gets the definition of the source it watches."""
    config = step_config(plan, step)
    if tracking_uri:
        config["registry"] = {**config["registry"], "tracking_uri": tracking_uri}
    if step.kind == "register":
        config["lineage"] = {"profile_sha256": plan.lineage.profile_sha256, "git_commit": plan.lineage.git_commit}
    if step.kind == "trigger_retraining" and step.params.get("when") == "new_data":
        from mlcompile.plan.serialize import plan_to_data

        sources = [{k: v for k, v in s.items() if k != "origin"} for s in plan_to_data(plan)["features"]["sources"] if s["name"] == step.params["source"]]
        config["features"] = {"sources": sources, "views": []}
    config.update({k: v for k, v in extra.items() if v is not None})
    return config


def extra_outputs(step: Step) -> dict[str, str]:
    """Outputs a step has in the KFP IR beyond the plan's: trigger-retraining records the run
    it submitted (what the platform's UI and lineage show for the task)."""
    return {RETRAINING_OUTPUT: "system.Artifact"} if step.kind == "trigger_retraining" else {}


def watermark_uri(plan: Plan, pipeline_root: str, sensor: str) -> str:
    """Where a new-data sensor keeps what it last saw of its source (under the pipeline root:
    durable, and readable and writable by the pipeline's service account)."""
    return f"{pipeline_root.rstrip('/')}/{plan.system}/watermarks/{sensor}.json"


def config_arg(config: Mapping[str, Any]) -> str:
    return json.dumps(config, sort_keys=True, separators=(",", ":"))


def _make_component(step: Step, settings: StepSettings) -> Any:
    from kfp import dsl

    artifacts = {name: getattr(dsl, cls) for name, cls in ARTIFACT_CLASSES.items()}
    inputs = {ref.name: artifacts[_input_type(step, ref.name)] for ref in step.inputs}
    outputs = {a.name: artifacts[a.type] for a in step.outputs if a.type != "decision"}
    outputs.update({name: _artifact_class(title) for name, title in settings.extra_outputs.items()})
    decisions = [a.name for a in step.outputs if a.type == "decision"]
    names = [*inputs, *outputs, *decisions]

    def body(*placeholders):  # type: ignore[no-untyped-def]  # kfp reads annotations: none here
        bound = dict(zip(names, placeholders))
        in_paths = {n: bound[n].path for n in inputs}
        out_paths = {n: bound[n].path for n in outputs} | {n: bound[n] for n in decisions}
        if settings.config is not None:
            command = list(settings.command)
            args = ["--config", config_arg(settings.config)]
            if decisions:  # the runtime writes a decision document; dsl.If needs a boolean
                command = ["python", "-m", RUN_STEP, *command[3:]]
                args = [a for name in decisions for a in ("--decision", name)] + args
            for name in sorted(in_paths):
                args += ["--input", f"{name}={in_paths[name]}"]
            for name in sorted(out_paths):
                args += ["--output", f"{name}={out_paths[name]}"]
            if settings.pipeline_run:
                args += ["--pipeline-run", settings.pipeline_run]
            if settings.executor_output:
                args += ["--executor-output", EXECUTOR_OUTPUT]
            return dsl.ContainerSpec(image=settings.image, command=command, args=args)
        # A user's container trainer: the contract is environment variables; KFP resolves
        # placeholders in command and args only, so a POSIX shell exports them first.
        paths = {**in_paths, **out_paths}
        wired = sorted(n for n in paths if n in CONTAINER_ENV_OF)
        exports = " ".join(f'{CONTAINER_ENV_OF[n]}="${i + 1}"' for i, n in enumerate(wired))
        script = f'export {exports}; shift {len(wired)}; exec "$@"'
        args = ["mlcompile-trainer", *(paths[n] for n in wired), *settings.command, *settings.user_args]
        return dsl.ContainerSpec(image=settings.image, command=["sh", "-c", script], args=args)

    parameters = [inspect.Parameter(n, inspect.Parameter.POSITIONAL_OR_KEYWORD, annotation=dsl.Input[t]) for n, t in inputs.items()]
    parameters += [inspect.Parameter(n, inspect.Parameter.POSITIONAL_OR_KEYWORD, annotation=dsl.Output[t]) for n, t in outputs.items()]
    parameters += [inspect.Parameter(n, inspect.Parameter.POSITIONAL_OR_KEYWORD, annotation=dsl.OutputPath(bool)) for n in decisions]
    body.__signature__ = inspect.Signature(parameters)  # type: ignore[attr-defined]
    body.__name__ = step.name.replace("-", "_")
    body.__doc__ = f"mlcompile step {step.name} ({step.kind})"
    return dsl.container_component(body)


def _artifact_class(schema_title: str) -> Any:
    """The kfp artifact class of a schema title: kfp's own (system.*), or a subclass carrying
    another schema (google.VertexModel, as google_cloud_pipeline_components declares it)."""
    from kfp import dsl

    own = next((cls for cls in vars(dsl).values() if isinstance(cls, type) and issubclass(cls, dsl.Artifact) and cls.schema_title == schema_title), None)
    if own is not None:
        return own
    return type(schema_title.rsplit(".", 1)[-1], (dsl.Artifact,), {"schema_title": schema_title, "schema_version": "0.0.1"})


def _input_type(step: Step, name: str) -> str:
    # inputs carry no type in the plan; the producing step's output does
    ref = next(r for r in step.inputs if r.name == name)
    return _OUTPUT_TYPES[(ref.step, ref.artifact)]


_OUTPUT_TYPES: dict[tuple[str, str], str] = {}


def pipeline_function(
    pipeline: Pipeline,
    component_of: Callable[[Step], Any],
    configure: Callable[[Any, Step], None],
    *,
    pipeline_root: str | None,
    decision_output: Callable[[str], str] = str,
) -> Any:
    """The plan pipeline as a kfp pipeline function: tasks from `component_of(step)`, wired by
    the plan's artifacts and dependencies, `run_if` as dsl.If, each task then `configure`d.
    `decision_output` names the task output that carries a plan decision (default: same name)."""
    from kfp import dsl

    _OUTPUT_TYPES.clear()
    _OUTPUT_TYPES.update({(s.name, a.name): a.type for s in pipeline.steps for a in s.outputs})
    components = {s.name: component_of(s) for s in pipeline.steps}

    def add(step: Step, tasks: dict[str, Any]) -> Any:
        kwargs = {ref.name: tasks[ref.step].outputs[ref.artifact] for ref in step.inputs}
        task = components[step.name](**kwargs)
        task.set_display_name(step.name)
        for dependency in step.depends_on:
            if dependency in tasks and dependency not in {r.step for r in step.inputs}:
                task.after(tasks[dependency])
        configure(task, step)
        tasks[step.name] = task
        return task

    def body():  # type: ignore[no-untyped-def]  # kfp reads annotations: none here
        tasks: dict[str, Any] = {}
        for step in pipeline.steps:
            if step.run_if is None:
                add(step, tasks)
        groups: dict[str, list[Step]] = {}
        for step in pipeline.steps:
            if step.run_if is not None:
                groups.setdefault(step.run_if, []).append(step)
        for key, steps in groups.items():
            if key in tasks:  # run_if names a step: its decision must be true
                (decision,) = [a.name for a in pipeline.step(key).outputs if a.type == "decision"]
                with dsl.If(tasks[key].outputs[decision_output(decision)] == True, name=f"{key}-passed"):  # noqa: E712
                    for step in steps:
                        add(step, tasks)
            else:  # "breach": any check's decision; KFP has no OR, so one branch per check
                checks = [(s.name, a.name) for s in pipeline.steps for a in s.outputs if a.type == "decision" and s.name in tasks]
                for index, (check, decision) in enumerate(checks):
                    condition = dsl.If if index == 0 else dsl.Elif
                    with condition(tasks[check].outputs[decision_output(decision)] == True, name=f"{key}-{check}"):  # noqa: E712
                        branch = dict(tasks)
                        for step in steps:
                            add(step, branch)

    body.__name__ = pipeline.name.replace("-", "_")
    body.__doc__ = pipeline.description
    return dsl.pipeline(name=pipeline.name, description=pipeline.description, pipeline_root=pipeline_root)(body)


def compile_pipeline(
    plan: Plan,
    pipeline: Pipeline,
    settings_of: Callable[[Step], StepSettings],
    decorate: Callable[[Any, Step, StepSettings], None],
    *,
    pipeline_root: str | None,
) -> str:
    """The pipeline's IR as the YAML the kfp compiler writes (PipelineSpec, then the
    PlatformSpec document when a task has Kubernetes settings)."""
    from kfp import compiler

    settings = {s.name: settings_of(s) for s in pipeline.steps}

    def configure(task: Any, step: Step) -> None:
        _resources(task, settings[step.name])
        decorate(task, step, settings[step.name])

    _OUTPUT_TYPES.clear()
    _OUTPUT_TYPES.update({(s.name, a.name): a.type for s in pipeline.steps for a in s.outputs})

    def build() -> str:
        fn = pipeline_function(pipeline, lambda s: _make_component(s, settings[s.name]), configure, pipeline_root=pipeline_root)
        with tempfile.TemporaryDirectory(prefix="mlcompile-kfp-") as scratch:
            path = os.path.join(scratch, "pipeline.yaml")
            compiler.Compiler().compile(fn, package_path=path)
            with open(path, encoding="utf-8") as handle:
                return handle.read()

    with _cheap_container_checks():
        return build()


@contextmanager
def _cheap_container_checks() -> Iterator[None]:
    """kfp's task setters (set_cpu_limit, …) first check that the task is a container task
    and, to name the setter in that error, call `inspect.stack()`, which reads the source of
    every frame on the stack: ~0.5 s per build from inside mlcompile's CLI, for errors that
    cannot happen here (every task is a container component). The same check, minus the
    stack walk, while mlcompile compiles (kfp is pinned exactly in the extras)."""
    from kfp.dsl import pipeline_task

    original = pipeline_task.PipelineTask._ensure_container_spec_exists

    def ensure(self: Any) -> None:
        if self.container_spec is None:
            raise ValueError(
                "resource settings can only be used on single-step components, not pipelines used as components, or special components like importers."
            )

    pipeline_task.PipelineTask._ensure_container_spec_exists = ensure  # type: ignore[method-assign]
    try:
        yield
    finally:
        pipeline_task.PipelineTask._ensure_container_spec_exists = original  # type: ignore[method-assign]


def _resources(task: Any, settings: StepSettings) -> None:
    task.set_cpu_request(_cpu(settings.cpu)).set_cpu_limit(_cpu(settings.cpu))
    memory = _kfp_memory(settings.memory)
    task.set_memory_request(memory).set_memory_limit(memory)
    if settings.accelerator_type and settings.accelerator_count:
        task.set_accelerator_type(settings.accelerator_type).set_accelerator_limit(settings.accelerator_count)
    if settings.retries:
        task.set_retry(num_retries=settings.retries, backoff_duration="60s", backoff_factor=2.0)
    task.set_caching_options(settings.caching)
    for name, value in sorted(settings.env.items()):
        task.set_env_variable(name, value)


def _cpu(cpu: float) -> str:
    return str(int(cpu)) if float(cpu).is_integer() else f"{int(cpu * 1000)}m"


_MEMORY_UNITS = (("Ti", 1024**4), ("Gi", 1024**3), ("Mi", 1024**2), ("Ki", 1024))


def _kfp_memory(memory: str) -> str:
    """A spec quantity as kfp's setters take it: they accept whole numbers only, while the
    spec allows '7.5Gi'. A fraction becomes the largest unit that holds it whole ('7680Mi'),
    else bytes, rounded up so that the task never gets less than asked."""
    number, unit = memory[:-2], memory[-2:]
    if number.isdigit():
        return memory
    size = math.ceil(Decimal(number) * dict(_MEMORY_UNITS)[unit])
    return next((f"{size // factor}{name}" for name, factor in _MEMORY_UNITS if size % factor == 0), str(size))


# How often a new-data sensor looks for new rows: neither KFP nor Vertex AI Pipelines start a
# run on a storage event, so `retraining.on_new_data` becomes a small scheduled pipeline
# whose one step compares the source's newest timestamp with the last training run's.
NEW_DATA_POLL_CRON = "0 * * * *"


def new_data_sensors(plan: Plan, *, polled: bool = True) -> PlanExtension:
    """One sensor pipeline per `new_data` trigger of the plan, and its hourly schedule when
    the platform polls (`polled`; SageMaker starts its sensors on S3 events instead)."""
    pipelines, schedules = [], []
    for trigger in plan.triggers:
        if trigger.kind != "new_data":
            continue
        params = {"pipeline": trigger.pipeline, "when": "new_data", "source": trigger.source}
        step = platform_step(plan, "trigger-retraining", "trigger_retraining", trigger.origin, params=params)
        name = sensor_name(trigger.name)
        pipelines.append(Pipeline(name, f"starts {trigger.pipeline} when source {trigger.source} has new rows", (step,)))
        schedules.append(Schedule(name, name, NEW_DATA_POLL_CRON, "UTC", trigger.origin))
    return PlanExtension(tuple(pipelines), tuple(schedules) if polled else ())


def sensor_name(trigger: str) -> str:
    """The sensor pipeline (and its schedule) of a `new_data` trigger."""
    return f"{trigger}-sensor"


def job_timeout(plan: Plan, step: Step) -> int | None:
    """How long the task that launches a platform job may wait for it: the step's timeout,
    times the number of trial waves when it tunes (max_trials / parallel_trials, rounded up)."""
    timeout = step.resources.timeout_seconds
    if timeout is None or step.kind != "tune" or plan.tuning is None:
        return timeout
    waves = -(-plan.tuning.max_trials // plan.tuning.parallel_trials)
    return timeout * waves


def secret_name(value: str) -> str | None:
    """`secret://NAME` → NAME (None for a plain value)."""
    return value[len("secret://") :] if isinstance(value, str) and value.startswith("secret://") else None


def split_documents(text: str) -> tuple[dict[str, Any], dict[str, Any] | None]:
    """The compiled YAML's PipelineSpec and PlatformSpec (None when there is none)."""
    import yaml

    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # libyaml when present: large IR parses ~10x faster
    documents = [d for d in yaml.load_all(text, Loader=loader) if d is not None]  # noqa: S506
    return documents[0], (documents[1] if len(documents) > 1 else None)
