"""Vertex AI request bodies built with google-cloud-aiplatform's own types (aiplatform_v1),
offline, and turned into REST JSON by protobuf's json_format. Imported only when the vertex
target renders."""

from __future__ import annotations

from typing import Any

from google.cloud.aiplatform_v1 import types as gca
from google.protobuf import duration_pb2, json_format

from mlcompile.plan.nodes import Plan, Step
from mlcompile.runtime.contract import ENV_LABEL, serving_env
from mlcompile.runtime.online import ENV as ONLINE_FEATURES_ENV
from mlcompile.runtime.rollout import SERVING_KEY
from mlcompile.targets.base import resource_labels
from mlcompile.targets.kfp_ir import CONTAINER_ENV_OF, config_arg, runtime_config, secret_name
from mlcompile.targets.vertex.feature_store import online_features_env

SERVING_PORT = 8080
# The pipeline job's id (KFP's PIPELINE_JOB_ID_PLACEHOLDER, filled in by the pipeline backend
# in the launching task's arguments): each run's jobs write under their own folder, so two
# runs of one pipeline never share AIP_MODEL_DIR or a tuning job's trial folders.
PIPELINE_JOB_ID = "{{$.pipeline_job_uuid}}"
# Outputs a tuning trial must not share: Vertex AI gives each trial its own AIP_MODEL_DIR
# (<baseOutputDirectory>/<trial id>/model); the trial writes its model there and its metrics
# file beside it, and the launcher copies the best trial's to the task's outputs.
TRIAL_OUTPUTS = ("model", "metrics")
TRIAL_METRICS_FILE = "metrics.json"
SERVING_ALIAS = "production"  # the version an endpoint, batch job and champion gate use
ALGORITHM = {
    "bayesian": gca.StudySpec.Algorithm.ALGORITHM_UNSPECIFIED,
    "random": gca.StudySpec.Algorithm.RANDOM_SEARCH,
    "grid": gca.StudySpec.Algorithm.GRID_SEARCH,
}
# the spec's autoscaling metrics → Vertex AI AutoscalingMetricSpec.metric_name
AUTOSCALING_METRIC = {
    "cpu": "aiplatform.googleapis.com/prediction/online/cpu/utilization",
    "gpu": "aiplatform.googleapis.com/prediction/online/accelerator/duty_cycle",
    "requests_per_replica": "aiplatform.googleapis.com/prediction/online/request_count",
}


def to_json(message: Any) -> dict[str, Any]:
    return json_format.MessageToDict(type(message).pb(message))


def settings(plan: Plan) -> dict[str, Any]:
    return plan.platform_settings


def parent(plan: Plan) -> str:
    return f"projects/{settings(plan)['project']}/locations/{settings(plan)['region']}"


def labels(plan: Plan) -> dict[str, str]:
    return resource_labels(plan, max_value_length=63)


def described(plan: Plan) -> str:
    """A description with the owner (an e-mail address is not a valid GCP label value)."""
    text = plan.description or plan.system
    return f"{text} (owner: {plan.owner})" if plan.owner else text


def model_resource(plan: Plan, alias: str = SERVING_ALIAS) -> str:
    return f"{parent(plan)}/models/{plan.registry.model}@{alias}"


def machine_spec(step_resources: Any) -> gca.MachineSpec:
    machine = step_resources.machine
    spec = gca.MachineSpec(machine_type=machine.name)
    accelerator = step_resources.accelerator
    if accelerator and accelerator.platform_name:
        spec.accelerator_type = gca.AcceleratorType[accelerator.platform_name]
        spec.accelerator_count = accelerator.count
    return spec


def platform_section(plan: Plan) -> dict[str, Any]:
    keys = ("project", "region", "pipeline_root", "service_account", "network")
    return {
        "name": "vertex",
        **{k: settings(plan)[k] for k in keys if settings(plan).get(k)},
        "secrets": {"kind": "secret-manager"},
        "model": model_resource(plan, "{alias}"),
    }


def job_container(plan: Plan, step: Step, *, trial: bool = False) -> gca.ContainerSpec:
    """The container a CustomJob runs: the user's trainer (env contract) or the runtime
    step itself. `{{inputs.NAME}}`/`{{outputs.NAME}}` are replaced by the launching
    pipeline task with the task's artifact URIs; `{{secret:NAME}}` by Secret Manager's value.
    A tuning `trial` gets no shared model/metrics output: it writes to its own AIP_MODEL_DIR."""
    outputs = [o for o in step.outputs if not (trial and o.name in TRIAL_OUTPUTS)]
    if step.uses_user_container:
        env = {k: (f"{{{{secret:{s}}}}}" if (s := secret_name(v)) else v) for k, v in step.params.get("env", {}).items()}
        env.update({CONTAINER_ENV_OF[r.name]: f"{{{{inputs.{r.name}}}}}" for r in step.inputs if r.name in CONTAINER_ENV_OF})
        env.update({CONTAINER_ENV_OF[o.name]: f"{{{{outputs.{o.name}}}}}" for o in outputs if o.name in CONTAINER_ENV_OF})
        env[ENV_LABEL] = str(step.params.get("label", ""))
        return gca.ContainerSpec(
            image_uri=step.image, command=list(step.command), args=list(step.args), env=[gca.EnvVar(name=k, value=v) for k, v in sorted(env.items())]
        )
    args = ["--config", config_arg(runtime_config(plan, step, platform=platform_section(plan)))]
    for ref in sorted(step.inputs, key=lambda r: r.name):
        args += ["--input", f"{ref.name}={{{{inputs.{ref.name}}}}}"]
    for out in sorted(outputs, key=lambda o: o.name):
        args += ["--output", f"{out.name}={{{{outputs.{out.name}}}}}"]
    return gca.ContainerSpec(image_uri=step.image, command=list(step.command), args=args)


def custom_job_spec(plan: Plan, step: Step, *, trial: bool = False) -> gca.CustomJobSpec:
    """Worker pool 0 is the chief (one replica); pool 1 holds the other replicas-1 workers
    (Vertex sets CLUSTER_SPEC/TF_CONFIG for them)."""
    r = step.resources
    container = job_container(plan, step, trial=trial)
    pools = [gca.WorkerPoolSpec(machine_spec=machine_spec(r), replica_count=1, container_spec=container)]
    if r.replicas > 1:
        pools.append(gca.WorkerPoolSpec(machine_spec=machine_spec(r), replica_count=r.replicas - 1, container_spec=container))
    scheduling = gca.Scheduling(strategy=gca.Scheduling.Strategy.SPOT if r.spot else gca.Scheduling.Strategy.STANDARD)
    if r.timeout_seconds:
        scheduling.timeout = duration_pb2.Duration(seconds=r.timeout_seconds)
    spec = gca.CustomJobSpec(
        worker_pool_specs=pools,
        scheduling=scheduling,
        service_account=settings(plan)["service_account"],
        base_output_directory=gca.GcsDestination(output_uri_prefix=base_output_directory(plan, step)),
    )
    if settings(plan).get("network"):
        spec.network = settings(plan)["network"]
    return spec


def base_output_directory(plan: Plan, step: Step) -> str:
    return f"{settings(plan)['pipeline_root']}/{plan.system}/jobs/{PIPELINE_JOB_ID}/{step.name}"


def custom_job(plan: Plan, step: Step) -> dict[str, Any]:
    job = gca.CustomJob(display_name=f"{plan.system}-{step.name}", job_spec=custom_job_spec(plan, step), labels=labels(plan))
    return to_json(job)


def hyperparameter_tuning_job(plan: Plan, step: Step) -> dict[str, Any]:
    tuning = plan.tuning
    assert tuning is not None
    parameters = []
    for p in tuning.params:
        scale = gca.StudySpec.ParameterSpec.ScaleType.UNIT_LOG_SCALE if p.scale == "log" else gca.StudySpec.ParameterSpec.ScaleType.UNIT_LINEAR_SCALE
        if p.type == "float":
            parameters.append(gca.StudySpec.ParameterSpec(parameter_id=p.name, double_value_spec={"min_value": p.min, "max_value": p.max}, scale_type=scale))
        elif p.type == "int":
            parameters.append(
                gca.StudySpec.ParameterSpec(
                    parameter_id=p.name, integer_value_spec={"min_value": int(p.min or 0), "max_value": int(p.max or 0)}, scale_type=scale
                )
            )
        else:
            parameters.append(gca.StudySpec.ParameterSpec(parameter_id=p.name, categorical_value_spec={"values": [str(v) for v in p.values]}))
    goal = gca.StudySpec.MetricSpec.GoalType.MAXIMIZE if tuning.goal == "maximize" else gca.StudySpec.MetricSpec.GoalType.MINIMIZE
    job = gca.HyperparameterTuningJob(
        display_name=f"{plan.system}-{step.name}",
        study_spec=gca.StudySpec(
            metrics=[gca.StudySpec.MetricSpec(metric_id=tuning.metric, goal=goal)], parameters=parameters, algorithm=ALGORITHM[tuning.algorithm]
        ),
        max_trial_count=tuning.max_trials,
        parallel_trial_count=tuning.parallel_trials,
        max_failed_trial_count=tuning.max_trials,
        trial_job_spec=custom_job_spec(plan, step, trial=True),
        labels=labels(plan),
    )
    return to_json(job)


def serving_config(plan: Plan) -> dict[str, Any]:
    return {"system": plan.system, "model": plan.registry.model, "aliases": list(plan.registry.aliases), "platform": platform_section(plan)}


def model(plan: Plan) -> dict[str, Any]:
    """The Model Registry entry the register step uploads each version into (model_id =
    the registry model's name, so every resource can name it; aliases per version)."""
    registry = plan.registry
    online_features = online_features_env(plan)
    body = gca.Model(
        display_name=registry.model,
        description=described(plan),
        version_aliases=list(registry.aliases),
        labels={**labels(plan), **{k: v[:63] for k, v in registry.tags.items()}},
        container_spec=gca.ModelContainerSpec(
            image_uri=plan.runtime_image,
            command=["python", "-m", "mlcompile.runtime", "serve"],
            args=["--config", config_arg(serving_config(plan))],
            ports=[gca.Port(container_port=SERVING_PORT)],
            predict_route="/predict",
            health_route="/health",
        ),
    )
    env = {**({ONLINE_FEATURES_ENV: online_features} if online_features is not None else {}), **serving_env(plan)}
    if env:  # the model's features by entity key; a container-trained model's description
        body.container_spec.env = [gca.EnvVar(name=k, value=v) for k, v in env.items()]
    return {"parent": parent(plan), "modelId": registry.model, "model": to_json(body)}


def endpoint(plan: Plan) -> dict[str, Any]:
    online = plan.online
    assert online is not None
    body = gca.Endpoint(display_name=online.name, description=described(plan), labels=labels(plan))
    if online.resources.timeout_seconds:
        body.client_connection_config = gca.ClientConnectionConfig(inference_timeout=duration_pb2.Duration(seconds=online.resources.timeout_seconds))
    if settings(plan).get("network"):
        body.network = settings(plan)["network"]
    return {"parent": parent(plan), "endpointId": online.name, "endpoint": to_json(body)}


def traffic_percent(plan: Plan) -> int:
    """Traffic the new version takes when deployed: all (replace), the canary share, or
    none until promoted (blue/green: the runtime's deploy step shifts 100% after checks)."""
    online = plan.online
    assert online is not None
    return {"replace": 100, "canary": online.canary_percent or 0, "blue_green": 0}[online.strategy]


def deploy_model_request(plan: Plan) -> dict[str, Any]:
    online = plan.online
    assert online is not None
    resources = gca.DedicatedResources(
        machine_spec=machine_spec(online.resources), min_replica_count=online.min_replicas, max_replica_count=online.max_replicas, spot=online.resources.spot
    )
    if online.autoscaling_metric:
        target = online.autoscaling_target or 0
        # spec: requests per second per replica; Vertex's request_count target is per minute
        value = int(round(target * 60)) if online.autoscaling_metric == "requests_per_replica" else int(round(target))
        resources.autoscaling_metric_specs = [gca.AutoscalingMetricSpec(metric_name=AUTOSCALING_METRIC[online.autoscaling_metric], target=value)]
    deployed = gca.DeployedModel(model=model_resource(plan, "{version}"), display_name=f"{online.model}-{{version}}", dedicated_resources=resources)
    if settings(plan).get("service_account"):
        deployed.service_account = settings(plan)["service_account"]
    # DeployModel's split must add up to 100: "0" is the model being deployed; SERVING_KEY
    # stands for the deployed model serving then, which deploy-online looks up at deploy time
    share = traffic_percent(plan)
    split = {"0": share, SERVING_KEY: 100 - share} if share < 100 else {"0": 100}
    request = gca.DeployModelRequest(endpoint=f"{parent(plan)}/endpoints/{online.name}", deployed_model=deployed, traffic_split=split)
    return to_json(request)


def schedule(plan: Plan, name: str, cron: str, timezone: str, pipeline_job: dict[str, Any]) -> dict[str, Any]:
    request = gca.CreatePipelineJobRequest(parent=parent(plan))
    json_format.ParseDict({"pipelineJob": pipeline_job}, gca.CreatePipelineJobRequest.pb(request))
    body = gca.Schedule(display_name=name, cron=f"TZ={timezone} {cron}", max_concurrent_run_count=1, create_pipeline_job_request=request)
    return to_json(body)
