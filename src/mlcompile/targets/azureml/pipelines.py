"""Plan pipelines → Azure ML pipeline jobs (`@dsl.pipeline` over one `CommandComponent`
per step, a sweep node for tuning).

Where each step runs:
* mlcompile's standard steps run on the profile's `compute` cluster;
* a step with its own resources (the trainer, batch scoring) runs on serverless compute
  (the pipeline's `default_compute: azureml:serverless`) with `resources.instance_type` =
  the VM size the catalog resolved, `instance_count` = replicas, spot → `queue_settings.
  job_tier: spot`, replicas > 1 → a PyTorch distribution with one process per node (the
  trainer's launcher starts one worker per GPU).

Gates: Azure ML's if/else node is private (refused by the public `load_job`). A decision
is the runtime's JSON file (`{"decision": true, …}`, a `uri_file` output); a step that runs
only if a decision holds (`run_if`) takes the decision files as inputs and its command is
wrapped in a guard that runs the step when one of them is true, ends the node successfully
with "skipped" when every one says false (the run stays green when a candidate is rejected),
and fails the node when a decision is missing or malformed (never a green run that silently
registered nothing)."""

from __future__ import annotations

import math
import re
import shlex
import sys
from dataclasses import replace
from typing import Any

from mlcompile.plan.nodes import Pipeline, Plan, SearchParam, Step
from mlcompile.plan.step_config import runtime_args
from mlcompile.runtime.contract import ENV_HYPERPARAMETERS, ENV_LABEL, ENV_METRICS, ENV_MODEL_DIR, ENV_TEST_DATA, ENV_TRAIN_DATA, ENV_VALIDATION_REPORT
from mlcompile.secret_locators import locator_env
from mlcompile.targets.azureml._sdk import identity, tags

SERVERLESS = "azureml:serverless"
# Azure ML input/output type of each plan artifact type
IO_TYPES = {"dataset": "uri_folder", "model": "uri_folder", "metrics": "uri_file", "report": "uri_file", "decision": "uri_file"}
# the container contract's variables and the trainer's artifacts they point to
CONTAINER_INPUT_ENV = {"train": ENV_TRAIN_DATA, "test": ENV_TEST_DATA, "report": ENV_VALIDATION_REPORT}
CONTAINER_OUTPUT_ENV = {"model": ENV_MODEL_DIR, "metrics": ENV_METRICS}
TRAINING_DATA_ASSET = "{system}-training-data"
# the model monitor's reference data, as Azure ML monitoring reads it: an MLTable, here a copy
# of the training set extract_features writes with the MLTable file that describes it
REFERENCE_OUTPUT = "reference"
REFERENCE_MLTABLE = "paths:\n  - file: ./train.parquet\ntransformations:\n  - read_parquet\n"
# run_if: exit 0 (run the step) when any of the decision files given as arguments says true,
# SKIP when every one of them says false; a missing file or one without a true/false
# decision ends in a traceback (exit 1): the step fails, it is never taken for "skipped"
SKIP = 3
GUARD = (
    'import json,sys; d=[json.load(open(p))["decision"] for p in sys.argv[1:]]; '
    'assert d and all(isinstance(v, bool) for v in d), "not a true/false decision"; '
    f"sys.exit(0 if any(d) else {SKIP})"
)


def node_name(name: str) -> str:
    """Azure ML node, input and component names are identifiers ('-' and '.' become '_')."""
    return re.sub(r"[^A-Za-z0-9_]", "_", name)


def is_standard(plan: Plan, step: Step) -> bool:
    """True for steps on mlcompile's standard resources (they run on the profile's cluster)."""
    return step.resources == plan.standard_resources


def _io_type_of(pipeline: Pipeline, step_name: str, artifact: str) -> str:
    producer = pipeline.step(step_name)
    kind = next(a.type for a in producer.outputs if a.name == artifact)
    return IO_TYPES[kind]


def _gating_inputs(pipeline: Pipeline, step: Step) -> dict[str, tuple[str, str]]:
    """Decision inputs of a `run_if` step: input name → (producer step, its output)."""
    if step.run_if is None:
        return {}
    names = {s.name for s in pipeline.steps}
    producers = [step.run_if] if step.run_if in names else list(step.depends_on)  # "breach": any check
    found: dict[str, tuple[str, str]] = {}
    for producer in producers:
        for artifact in pipeline.step(producer).outputs:
            if artifact.type == "decision":
                found[artifact.name] = (producer, artifact.name)
    return found


def _ordering_only(pipeline: Pipeline, step: Step, gating: dict[str, tuple[str, str]]) -> list[str]:
    """Dependencies with no data between them: Azure ML orders nodes by data only, so they
    become an `after_<step>` input bound to the dependency's `done` output."""
    fed_by = {ref.step for ref in step.inputs} | {producer for producer, _ in gating.values()}
    return [dep for dep in step.depends_on if dep not in fed_by]


def _search_input_type(param: SearchParam) -> str:
    if param.type == "int":
        return "integer"
    if param.type == "float":
        return "number"
    return "string" if any(isinstance(v, str) for v in param.values) else "number"


def _hyperparameters_env(plan: Plan) -> str:
    """`MLCOMPILE_HYPERPARAMETERS="$(printf '{"lr": %s, "depth": %.0f}' '${{inputs.lr}}' …)"`:
    the trial's values as JSON, for a container trainer (the contract it reads). Azure ML
    pastes each sampled value into the command as text, and its `q*` distributions give
    integer parameters as floats (`12.0`): printf's `%.0f` makes them JSON integers again.
    Validate refuses choices holding a quote, backslash, `$` or backquote, so no value can
    leave its JSON string or its shell word."""
    assert plan.tuning is not None
    formats, values = [], []
    for param in plan.tuning.params:
        kind = _search_input_type(param)
        formats.append(f'"{param.name}": ' + {"string": '"%s"', "integer": "%.0f"}.get(kind, "%s"))
        values.append(shlex.quote("${{inputs.%s}}" % node_name(param.name)))
    template = shlex.quote("{" + ", ".join(formats) + "}")
    return f'{ENV_HYPERPARAMETERS}="$(printf {template} {" ".join(values)})"'


def _hyperparameter_args(plan: Plan) -> list[str]:
    """`--hp NAME=${{inputs.NAME}}` per search parameter, for a runtime step: each value is its
    own argument and the runtime types it from the step config (no JSON built in the shell)."""
    assert plan.tuning is not None
    return [a for p in plan.tuning.params for a in ("--hp", f"{p.name}=${{{{inputs.{node_name(p.name)}}}}}")]


def platform_config(plan: Plan, step: Step) -> dict[str, Any] | None:
    """The step's runtime config with the sections of the steps that talk to Azure ML itself
    (None: the plain config): `platform` (the workspace) and, for deploy-online, `serving`
    (how to roll the endpoint to a version, see mlcompile.runtime.rollout_azureml); the alert
    step of a spec with e-mail alerts publishes the breach metric (runtime.alerts_azureml)."""
    from mlcompile.targets.azureml.alerts import alert_platform, emails

    e_mail = step.kind == "alert" and bool(emails(plan))
    if step.kind not in ("deploy_online", "trigger_retraining") and not e_mail:
        return None
    from mlcompile.targets.kfp_ir import runtime_config

    settings = plan.platform_settings
    platform = {"name": "azureml", **{key: settings[key] for key in ("subscription_id", "resource_group", "workspace")}}
    if e_mail:
        return runtime_config(plan, step, platform={**platform, **alert_platform(plan)})
    if step.kind == "deploy_online":
        from mlcompile.targets.azureml.serving import rollout_section

        return runtime_config(plan, step, platform=platform, serving=rollout_section(plan))
    return runtime_config(plan, step, platform=platform, platform_run=_platform_run(plan, step))


def _platform_run(plan: Plan, step: Step) -> dict[str, Any]:
    """How trigger-retraining starts the training pipeline (mlcompile.runtime.retraining_azureml):
    with this build's training pipeline job; a new-data sensor keeps its watermark in the
    workspace's default datastore."""
    import base64
    import json
    import zlib

    from mlcompile.targets.azureml._sdk import plain

    pipeline = step.params["pipeline"]
    training = next(p for p in plan.pipelines() if p.name == pipeline)
    job = json.dumps(plain(build_pipeline_job(plan, training)._to_dict()), sort_keys=True, separators=(",", ":"))
    # compressed and base64-encoded: Azure ML would substitute the `${{inputs.…}}` of the
    # job's own commands if they appeared in this step's command line
    encoded = base64.b64encode(zlib.compress(job.encode(), 9)).decode()
    run: dict[str, Any] = {"kind": "azureml.pipeline_job", "pipeline": pipeline, "experiment": plan.system, "job_zlib_base64": encoded}
    if step.params.get("when") == "new_data":
        run["watermark"] = watermark_uri(plan, str(step.params["source"]))
    return run


def watermark_uri(plan: Plan, source: str) -> str:
    """Where a new-data sensor keeps what it last saw of its source: the workspace's default
    blob datastore (durable; the pipelines' identity reads and writes it)."""
    settings = plan.platform_settings
    return (
        f"azureml://subscriptions/{settings['subscription_id']}/resourcegroups/{settings['resource_group']}/workspaces/{settings['workspace']}"
        f"/datastores/workspaceblobstore/paths/mlcompile/{plan.system}/watermarks/{source}.json"
    )


def output_binding(name: str, artifact_type: str, io_type: str) -> str:
    """What the runtime is told to write an output to. Azure ML substitutes `${{outputs.x}}`
    of a `uri_folder` output with a folder that exists before the command runs: a table goes
    into it as `<name>.parquet` (every reader of a dataset takes a file or a folder of them);
    a model is that folder; a `uri_file` output is the file itself."""
    placeholder = "${{outputs.%s}}" % name
    if artifact_type == "dataset" and io_type == "uri_folder":
        return f"{placeholder}/{name}.parquet"
    return placeholder


def _with_reference(command: str, train: str) -> str:
    """The command, then the monitor's reference data written from the training set it wrote."""
    reference = "${{outputs.%s}}" % REFERENCE_OUTPUT
    copy, describe = shlex.quote(f"{reference}/train.parquet"), shlex.quote(f"{reference}/MLTable")
    return f"{command} && cp {shlex.quote(train)} {copy} && printf %s {shlex.quote(REFERENCE_MLTABLE)} > {describe}"


def _guarded(command: str, step: Step, decisions: list[str]) -> str:
    if not decisions:
        return command
    test = " ".join(["python", "-c", shlex.quote(GUARD), *(shlex.quote(d) for d in decisions)])
    skipped = shlex.quote(f"{step.name}: skipped, run_if {step.run_if} is false")
    broken = shlex.quote(f"{step.name}: failed, the decision of run_if {step.run_if} is missing or unreadable")
    return f"{test}; case $? in 0) {command};; {SKIP}) echo {skipped};; *) echo {broken} >&2; exit 1;; esac"


def _command(plan: Plan, step: Step, inputs: dict[str, str], outputs: dict[str, str], tuned: bool, config: dict[str, Any] | None) -> str:
    if step.kind == "score_batch":
        # Azure ML writes the scores output to the batch output URI (the node's output path):
        # the step writes only its output, never that URI a second time by itself
        step = replace(step, params={k: v for k, v in step.params.items() if k != "output_uri"})
    if not step.uses_user_container:
        args = [*step.command, *runtime_args(plan, step, inputs, outputs, config), *(_hyperparameter_args(plan) if tuned else ())]
        return " ".join(shlex.quote(a) for a in args)
    env = [f"{CONTAINER_INPUT_ENV[n]}={shlex.quote(v)}" for n, v in sorted(inputs.items()) if n in CONTAINER_INPUT_ENV]
    env += [f"{CONTAINER_OUTPUT_ENV[n]}={shlex.quote(v)}" for n, v in sorted(outputs.items()) if n in CONTAINER_OUTPUT_ENV]
    env.append(f"{ENV_LABEL}={shlex.quote(str(step.params.get('label', '')))}")
    if tuned:
        env.append(_hyperparameters_env(plan))
    return " ".join([*env, *(shlex.quote(a) for a in (*step.command, *step.args))])


def _component(
    plan: Plan, pipeline: Pipeline, step: Step, gating: dict[str, tuple[str, str]], after: list[str], done: bool, tuned: bool, config: dict[str, Any] | None
) -> Any:
    from azure.ai.ml import Input, Output, PyTorchDistribution
    from azure.ai.ml.entities import CommandComponent, Environment

    inputs: dict[str, Any] = {}
    bindings_in: dict[str, str] = {}
    for ref in step.inputs:
        inputs[ref.name] = Input(type=_io_type_of(pipeline, ref.step, ref.artifact))
        bindings_in[ref.name] = "${{inputs.%s}}" % ref.name
    for name in gating:
        inputs[name] = Input(type="uri_file")
    for dep in after:
        inputs[f"after_{node_name(dep)}"] = Input(type="uri_folder")
    if tuned:
        assert plan.tuning is not None
        for param in plan.tuning.params:
            inputs[node_name(param.name)] = Input(type=_search_input_type(param))
    outputs: dict[str, Any] = {}
    bindings_out: dict[str, str] = {}
    for artifact in step.outputs:
        io_type = IO_TYPES[artifact.type]
        if step.kind == "score_batch" and artifact.name == "scores":
            io_type = scores_type(step)
        outputs[artifact.name] = Output(type=io_type)
        bindings_out[artifact.name] = output_binding(artifact.name, artifact.type, io_type)
    if done:
        outputs["done"] = Output(type="uri_folder")
    command = _command(plan, step, bindings_in, bindings_out, tuned, config)
    if step.kind == "extract_features":
        outputs[REFERENCE_OUTPUT] = Output(type="mltable")
        command = _with_reference(command, bindings_out["train"])
    distributed: dict[str, Any] = {}
    if step.resources.replicas > 1:
        # one process per node: the trainer's launcher starts one worker per accelerator
        distributed = {"distribution": PyTorchDistribution(process_count_per_instance=1), "resources": {"instance_count": step.resources.replicas}}
    environment_variables = None
    if step.uses_user_container:
        environment_variables = {k: str(v) for k, v in sorted(step.params.get("env", {}).items())}
    # MLCOMPILE_SECRET_<NAME> → the secret in Key Vault, read by the runtime with the job's
    # identity (Azure ML jobs cannot inject a Key Vault secret into the environment)
    secrets = locator_env("azureml", plan.platform_settings, step.params)
    if secrets:
        environment_variables = {**(environment_variables or {}), **secrets}
    return CommandComponent(
        name=node_name(f"{plan.system}-{step.name}"),
        version="1",
        display_name=step.name,
        description=f"mlcompile step {step.name} ({step.kind}) of {pipeline.name}",
        command=_guarded(command, step, ["${{inputs.%s}}" % name for name in sorted(gating)]),
        environment=Environment(image=step.image),
        environment_variables=environment_variables,
        inputs=inputs or None,
        outputs=outputs or None,
        # steps read live sources and registries: never reuse a previous run's outputs
        is_deterministic=False,
        tags={"mlcompile-step-kind": step.kind},
        **distributed,
    )


def _search_space(plan: Plan) -> tuple[dict[str, Any], str]:
    from azure.ai.ml.sweep import Choice, LogUniform, QLogUniform, QUniform, Uniform

    assert plan.tuning is not None
    tuning = plan.tuning
    algorithm = tuning.algorithm
    if algorithm == "bayesian" and any(p.scale == "log" for p in tuning.params):
        algorithm = "random"  # check() warns: Bayesian sampling has no log-scale distributions
    space: dict[str, Any] = {}
    for p in tuning.params:
        name = node_name(p.name)
        if p.type == "categorical":
            space[name] = Choice(values=list(p.values))
        elif algorithm == "grid":  # int ranges only (check() refuses floats)
            space[name] = Choice(values=list(range(int(p.min or 0), int(p.max or 0) + 1)))
        elif p.scale == "log":
            low, high = math.log(float(p.min or 0)), math.log(float(p.max or 0))
            space[name] = QLogUniform(min_value=low, max_value=high, q=1) if p.type == "int" else LogUniform(min_value=low, max_value=high)
        elif p.type == "int":
            space[name] = QUniform(min_value=int(p.min or 0), max_value=int(p.max or 0), q=1)
        else:
            space[name] = Uniform(min_value=float(p.min or 0), max_value=float(p.max or 0))
    return space, algorithm


def _place(plan: Plan, step: Step, node: Any, compute: str, on_cluster: bool) -> None:
    """Compute, VM size, replicas, spot and timeout of one node."""
    from azure.ai.ml.entities import JobResourceConfiguration, QueueSettings

    resources = step.resources
    if on_cluster:
        # batch endpoint deployments run on a compute cluster, never serverless
        node.compute = f"azureml:{compute}"
        node.resources = JobResourceConfiguration(instance_count=resources.replicas)
    elif is_standard(plan, step):
        node.compute = f"azureml:{compute}"
    else:
        machine = resources.machine
        node.resources = JobResourceConfiguration(instance_type=machine.name if machine else None, instance_count=resources.replicas)
        if resources.spot:
            node.queue_settings = QueueSettings(job_tier="spot")


def scores_type(step: Step) -> str:
    return "uri_file" if _is_file(str(step.params["output_uri"])) else "uri_folder"


def build_pipeline_job(plan: Plan, pipeline: Pipeline, *, on_cluster: bool = False) -> Any:
    """The Azure ML PipelineJob of one plan pipeline (SDK imported; call inside `quiet()`).
    `on_cluster`: every node on the profile's cluster (for a batch endpoint deployment)."""
    from azure.ai.ml import Output, dsl
    from azure.ai.ml.entities import ManagedIdentityConfiguration, PipelineJob

    compute = str(plan.platform_settings["compute"])
    depended_on_for_order = {dep for s in pipeline.steps for dep in _ordering_only(pipeline, s, _gating_inputs(pipeline, s))}
    # before the pipeline's body: a pipeline job built inside it (trigger-retraining carries
    # the training one) would become one of its nodes
    configs = {step.name: platform_config(plan, step) for step in pipeline.steps}

    def body() -> dict[str, Any]:
        # azure-ai-ml reads the body's locals through a profile hook (sys.setprofile) that
        # Python calls on every call and return made inside it, doubling the cost of building
        # the nodes; the hook is set aside while they are built and is back for the body's own
        # return, which is the one event it reads
        hook = sys.getprofile()
        sys.setprofile(None)
        try:
            return _nodes()
        finally:
            sys.setprofile(hook)

    def _nodes() -> dict[str, Any]:
        nodes: dict[str, Any] = {}
        returned: dict[str, Any] = {}
        for step in pipeline.steps:
            gating = _gating_inputs(pipeline, step)
            after = _ordering_only(pipeline, step, gating)
            tuned = step.kind == "tune" and plan.tuning is not None
            component = _component(plan, pipeline, step, gating, after, step.name in depended_on_for_order, tuned, configs[step.name])
            kwargs: dict[str, Any] = {ref.name: nodes[ref.step].outputs[ref.artifact] for ref in step.inputs}
            kwargs.update({name: nodes[producer].outputs[output] for name, (producer, output) in gating.items()})
            kwargs.update({f"after_{node_name(dep)}": nodes[dep].outputs["done"] for dep in after})
            if tuned:
                space, algorithm = _search_space(plan)
                kwargs.update(space)
            node = component(**kwargs)
            if tuned:
                assert plan.tuning is not None
                node = node.sweep(
                    primary_metric=plan.tuning.metric,
                    goal=plan.tuning.goal,
                    sampling_algorithm=algorithm,
                )
                node.set_limits(
                    max_total_trials=plan.tuning.max_trials,
                    max_concurrent_trials=plan.tuning.parallel_trials,
                    trial_timeout=step.resources.timeout_seconds,
                )
            elif step.resources.timeout_seconds:
                node.set_limits(timeout=step.resources.timeout_seconds)
            node.name = node_name(step.name)
            node.display_name = step.name
            _place(plan, step, node, compute, on_cluster)
            runs_as = identity(plan, "schedules" if step.kind == "trigger_retraining" else "pipelines")
            if runs_as is not None:  # jobs name a user-assigned identity by its client id
                node.identity = ManagedIdentityConfiguration(client_id=runs_as["client_id"])
            if step.kind == "score_batch":
                uri = str(step.params["output_uri"])
                node.outputs.scores = Output(type=scores_type(step), path=uri, mode="rw_mount")
            if step.kind == "extract_features":
                returned["training_data"] = node.outputs[REFERENCE_OUTPUT]
            nodes[step.name] = node
        return returned

    body.__name__ = node_name(pipeline.name)
    job: PipelineJob = dsl.pipeline(
        body,
        name=node_name(pipeline.name),
        display_name=pipeline.name,
        description=pipeline.description,
        experiment_name=plan.system,
        tags=tags(plan),
        default_compute=SERVERLESS,
    )()
    assert job.settings is not None  # a dsl pipeline has settings, holding default_compute
    job.settings.continue_on_step_failure = False
    outputs: Any = job.outputs  # outputs by attribute, which the SDK's annotation (a dict) does not show
    if "training_data" in outputs:
        # the monitor's reference distribution: registered as a data asset by each run
        outputs.training_data.name = TRAINING_DATA_ASSET.format(system=plan.system)
    return job


def _is_file(uri: str) -> bool:
    last = uri.rstrip("/").rsplit("/", 1)[-1]
    return not uri.endswith("/") and "." in last
