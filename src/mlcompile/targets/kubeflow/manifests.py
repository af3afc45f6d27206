"""Kubernetes manifests of the kubeflow target, as plain data: Training Operator
`PyTorchJob`, Katib `Experiment`, KServe `InferenceService`, KFP recurring-run bodies and,
for schedules outside UTC, Kubernetes `CronJob`s. Pure functions of the plan."""

from __future__ import annotations

import json
from typing import Any

from mlcompile.plan.nodes import Plan, Resources, Schedule, Step
from mlcompile.runtime.contract import CONTAINER_ENV, ENV_HYPERPARAMETERS, ENV_LABEL, ENV_METRICS, ENV_MODEL_DIR, additional_metrics, runtime_args
from mlcompile.runtime.contract import serving_env as model_env
from mlcompile.targets.base import resource_labels
from mlcompile.targets.kfp_ir import CONTAINER_ENV_OF, config_arg, secret_name
from mlcompile.targets.kubeflow import facts

KATIB_METRICS_FILE = "/var/log/katib/metrics.json"
# Katib's JSON file format takes one object per line and only string values ("0.91"); the
# contract's metrics file is any JSON object with numbers, so Katib reads it as text with
# this filter: `"name": 0.91` (or "0.91"), on any line. Two groups: name, value (Go RE2).
KATIB_JSON_METRIC = r'"([A-Za-z0-9_.-]+)"\s*:\s*"?([+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?)'
SERVING_PORT = 8080
# Katib substitutes only ${trialParameters.NAME} in a trial template; the trial's own name
# reaches it through a trial parameter whose reference is the metadata ${trialSpec.Name}
# (https://www.kubeflow.org/docs/components/katib/user-guides/trial-template/)
KATIB_TRIAL_NAME = "trialName"
# Istio's sidecar never exits, so a trial pod with one never completes and Katib's metrics
# collector never reads its file: trial pods run without it (Katib's documented setting)
NO_ISTIO_SIDECAR = {"sidecar.istio.io/inject": "false"}
# the Training Operator labels a PyTorchJob's master pod so; Katib collects the metrics of
# that pod only (Katib's own default primaryPodLabels for Kubeflow training jobs)
KATIB_PYTORCH_PRIMARY = {"training.kubeflow.org/job-role": "master"}


def settings(plan: Plan) -> dict[str, Any]:
    return plan.platform_settings


def labels(plan: Plan) -> dict[str, str]:
    return resource_labels(plan, max_value_length=63)


def metadata(plan: Plan, name: str, annotations: dict[str, str] | None = None) -> dict[str, Any]:
    """Object metadata: namespace, lineage labels, and the owner as an annotation (an e-mail
    address is not a valid label value)."""
    notes = dict(annotations or {})
    if plan.owner:
        notes["mlcompile/owner"] = plan.owner
    data: dict[str, Any] = {"name": name, "namespace": settings(plan)["namespace"], "labels": labels(plan)}
    if notes:
        data["annotations"] = dict(sorted(notes.items()))
    return data


def quantity_cpu(cpu: float) -> str:
    return str(int(cpu)) if float(cpu).is_integer() else f"{int(cpu * 1000)}m"


def scheduling(plan: Plan, resources: Resources) -> tuple[dict[str, str], list[dict[str, str]]]:
    """Node selector and tolerations of a pod: the accelerator's (catalog, per cluster
    flavour) plus spot capacity's (facts.SPOT)."""
    machine = resources.machine
    accelerated = machine is not None and resources.accelerator is not None
    selector = dict(machine.node_selector) if machine and accelerated else {}
    tolerations = [dict(t) for t in machine.tolerations] if machine and accelerated else []
    if resources.spot:
        spot = facts.SPOT[settings(plan)["cluster"]]
        selector.update(spot["node_selector"])  # type: ignore[arg-type]
        tolerations += [dict(t) for t in spot["tolerations"]]  # type: ignore[attr-defined]
    return dict(sorted(selector.items())), tolerations


def container_resources(resources: Resources) -> dict[str, Any]:
    amounts = {"cpu": quantity_cpu(resources.cpu), "memory": resources.memory}
    limits = dict(amounts)
    accelerator = resources.accelerator
    if accelerator and accelerator.platform_name:
        limits[accelerator.platform_name] = str(accelerator.count)
    return {"requests": amounts, "limits": limits}


def env_list(env: dict[str, str]) -> list[dict[str, Any]]:
    """A container's env; `secret://NAME` values come from Kubernetes Secret NAME, key `value`."""
    out: list[dict[str, Any]] = []
    for name, value in sorted(env.items()):
        secret = secret_name(value)
        if secret:
            out.append({"name": name, "valueFrom": {"secretKeyRef": {"name": secret, "key": "value"}}})
        else:
            out.append({"name": name, "value": value})
    return out


def trainer_container(plan: Plan, step: Step, name: str, extra_env: dict[str, str]) -> dict[str, Any]:
    """The user's (or the runtime's) trainer container inside a platform job. Artifact
    locations are `{{inputs.NAME}}` / `{{outputs.NAME}}`: the launching pipeline task
    replaces them with the task's artifact URIs before it creates the job."""
    env = dict(step.params.get("env", {}))
    for artifact in [*(r.name for r in step.inputs)]:
        if artifact in CONTAINER_ENV_OF:
            env[CONTAINER_ENV_OF[artifact]] = f"{{{{inputs.{artifact}}}}}"
    for out in step.outputs:
        if out.name in CONTAINER_ENV_OF:
            env[CONTAINER_ENV_OF[out.name]] = f"{{{{outputs.{out.name}}}}}"
    env[ENV_LABEL] = str(step.params.get("label", ""))
    env.update(extra_env)
    container: dict[str, Any] = {
        "name": name,
        "image": step.image,
        "command": list(step.command),
        "args": list(step.args),
        "env": env_list(env),
        "resources": container_resources(step.resources),
    }
    return container


def pod_template(plan: Plan, step: Step, container: dict[str, Any]) -> dict[str, Any]:
    selector, tolerations = scheduling(plan, step.resources)
    spec: dict[str, Any] = {"containers": [container], "restartPolicy": "OnFailure"}
    if selector:
        spec["nodeSelector"] = selector
    if tolerations:
        spec["tolerations"] = tolerations
    if settings(plan).get("service_account"):
        spec["serviceAccountName"] = settings(plan)["service_account"]
    return {"metadata": {"labels": labels(plan)}, "spec": spec}


def pytorch_job(plan: Plan, step: Step, extra_env: dict[str, str] | None = None, name: str | None = None) -> dict[str, Any]:
    """`replicas` workers as a Training Operator PyTorchJob: one Master, replicas-1 Workers
    (the operator sets MASTER_ADDR, WORLD_SIZE, RANK for torchrun)."""
    container = trainer_container(plan, step, "pytorch", extra_env or {})  # the operator requires this name
    replicas = step.resources.replicas
    specs = {"Master": {"replicas": 1, "restartPolicy": "OnFailure", "template": pod_template(plan, step, container)}}
    if replicas > 1:
        specs["Worker"] = {"replicas": replicas - 1, "restartPolicy": "OnFailure", "template": pod_template(plan, step, container)}
    run_policy: dict[str, Any] = {"cleanPodPolicy": "None", "backoffLimit": facts.SPOT_RETRIES if step.resources.spot else 0}
    if step.resources.timeout_seconds:
        run_policy["activeDeadlineSeconds"] = step.resources.timeout_seconds
    return {
        "apiVersion": "kubeflow.org/v1",
        "kind": "PyTorchJob",
        "metadata": metadata(plan, name or f"{plan.system}-{step.name}"),
        "spec": {"pytorchReplicaSpecs": specs, "runPolicy": run_policy},
    }


def batch_job(plan: Plan, step: Step, extra_env: dict[str, str]) -> dict[str, Any]:
    """One replica: a Kubernetes Job (Katib's default trial kind)."""
    container = trainer_container(plan, step, "training", extra_env)
    template = pod_template(plan, step, container)
    template["spec"]["restartPolicy"] = "Never"
    spec: dict[str, Any] = {"template": template, "backoffLimit": facts.SPOT_RETRIES if step.resources.spot else 0}
    if step.resources.timeout_seconds:
        spec["activeDeadlineSeconds"] = step.resources.timeout_seconds
    return {"apiVersion": "batch/v1", "kind": "Job", "spec": spec}


def katib_experiment(plan: Plan, step: Step) -> dict[str, Any]:
    tuning = plan.tuning
    assert tuning is not None
    value = {p.name: f"${{trialParameters.{trial_parameter_name(p.name)}}}" for p in tuning.params}
    # each trial writes its model to its own folder (the trial's name, a trial parameter); the
    # launcher copies the best trial's (status.currentOptimalTrial) to the task's model output
    # and writes its observed metrics to the task's metrics output
    trial_model = f"{{{{outputs.model}}}}/trials/${{trialParameters.{KATIB_TRIAL_NAME}}}"
    if step.uses_user_container:
        hyper = ", ".join(f'"{p.name}": ' + (f'"{value[p.name]}"' if p.type == "categorical" else value[p.name]) for p in tuning.params)
        extra = {ENV_HYPERPARAMETERS: "{" + hyper + "}", ENV_METRICS: KATIB_METRICS_FILE, ENV_MODEL_DIR: trial_model}
        args: list[str] | None = None
    else:
        # mlcompile's runtime runs the one trial Katib chose: each value as its own `--hp`
        # argument (the runtime types it from the step config), the same as Azure ML's sweep
        extra = {}
        inputs = {r.name: f"{{{{inputs.{r.name}}}}}" for r in step.inputs}
        args = [*runtime_args(plan, step, inputs, {"model": trial_model, "metrics": KATIB_METRICS_FILE})]
        args += [a for p in tuning.params for a in ("--hp", f"{p.name}={value[p.name]}")]
    primary_pods: dict[str, str] | None = None
    if step.resources.replicas > 1:
        trial = pytorch_job(plan, step, extra)
        trial.pop("metadata")
        primary = "pytorch"
        primary_pods = dict(KATIB_PYTORCH_PRIMARY)
        success = 'status.conditions.#(type=="Succeeded")#|#(status=="True")#'
        failure = 'status.conditions.#(type=="Failed")#|#(status=="True")#'
    else:
        trial = batch_job(plan, step, extra)
        primary = "training"
        success = 'status.conditions.#(type=="Complete")#|#(status=="True")#'
        failure = 'status.conditions.#(type=="Failed")#|#(status=="True")#'
    if args is not None:
        for container in _containers(trial):
            container["args"] = args
            env = [e for e in container.pop("env") if e["name"] not in CONTAINER_ENV]
            container.update({"env": env} if env else {})
    for template in _pod_templates(trial):
        template["metadata"]["annotations"] = dict(NO_ISTIO_SIDECAR)
    parameters = []
    for p in tuning.params:
        space: dict[str, Any]
        if p.type == "categorical":
            space = {"list": [str(v) for v in p.values]}
        else:
            space = {"min": _number(p.min, p.type), "max": _number(p.max, p.type)}
            if p.scale == "log":
                space["distribution"] = "logUniform"
        parameters.append({"name": p.name, "parameterType": facts.KATIB_PARAMETER_TYPE[p.type], "feasibleSpace": space})
    objective: dict[str, Any] = {"type": tuning.goal, "objectiveMetricName": tuning.metric}
    if additional_metrics(plan):
        objective["additionalMetricNames"] = additional_metrics(plan)
    trial_parameters = [{"name": trial_parameter_name(p.name), "reference": p.name, "description": f"hyperparameter {p.name}"} for p in tuning.params]
    trial_parameters.append({"name": KATIB_TRIAL_NAME, "reference": "${trialSpec.Name}", "description": "the trial's name: its model folder"})
    template: dict[str, Any] = {"primaryContainerName": primary}
    if primary_pods:
        template["primaryPodLabels"] = primary_pods
    template.update({"trialParameters": trial_parameters, "trialSpec": trial, "successCondition": success, "failureCondition": failure})
    return {
        "apiVersion": "kubeflow.org/v1beta1",
        "kind": "Experiment",
        "metadata": metadata(plan, f"{plan.system}-{step.name}"),
        "spec": {
            "objective": objective,
            "algorithm": {"algorithmName": facts.KATIB_ALGORITHM[tuning.algorithm]},
            "maxTrialCount": tuning.max_trials,
            "parallelTrialCount": tuning.parallel_trials,
            "maxFailedTrialCount": tuning.max_trials,
            "metricsCollectorSpec": {
                "collector": {"kind": "File"},
                "source": {"fileSystemPath": {"path": KATIB_METRICS_FILE, "kind": "File", "format": "TEXT"}, "filter": {"metricsFormat": [KATIB_JSON_METRIC]}},
            },
            "parameters": parameters,
            "trialTemplate": template,
        },
    }


def _pod_templates(job: dict[str, Any]) -> list[dict[str, Any]]:
    if job["kind"] == "PyTorchJob":
        return [replica["template"] for replica in job["spec"]["pytorchReplicaSpecs"].values()]
    return [job["spec"]["template"]]


def _containers(job: dict[str, Any]) -> list[dict[str, Any]]:
    return [c for template in _pod_templates(job) for c in template["spec"]["containers"]]


def trial_parameter_name(name: str) -> str:
    head, *rest = name.replace("-", "_").replace(".", "_").split("_")
    return head + "".join(part.title() for part in rest)


def _number(value: float | None, kind: str) -> str:
    assert value is not None
    return str(int(value)) if kind == "int" else repr(float(value))


def rollout(plan: Plan) -> dict[str, Any]:
    """What deploy-online needs to roll a version out on the InferenceService: its name and
    namespace and the share a new revision takes (None: all of it)."""
    online = plan.online
    assert online is not None
    share = {"replace": None, "canary": online.canary_percent, "blue_green": 0}[online.strategy]
    return {"kind": "kserve", "name": online.name, "namespace": settings(plan)["namespace"], "canary_percent": share}


def inference_service(plan: Plan) -> dict[str, Any]:
    online = plan.online
    assert online is not None
    platform = {k: settings(plan)[k] for k in ("namespace", "registry") if settings(plan).get(k) is not None}
    registry = {"model": online.model, "aliases": list(plan.registry.aliases)}
    if (settings(plan).get("registry") or {}).get("kind") == "mlflow":
        registry["tracking_uri"] = settings(plan)["registry"]["uri"]
    config = {"system": plan.system, "model": online.model, "registry": registry, "platform": {"name": "kubeflow", **platform}}
    container: dict[str, Any] = {
        "name": "kserve-container",
        "image": plan.runtime_image,
        "command": ["python", "-m", "mlcompile.runtime", "serve"],
        # the Open Inference Protocol's model name is the InferenceService's: /v2/models/<name>/infer
        "args": ["--config", config_arg(config), "--model_name", online.name],
        "ports": [{"containerPort": SERVING_PORT, "protocol": "TCP"}],
        "resources": container_resources(online.resources),
    }
    from mlcompile.targets.kubeflow.feature_store import serving_env

    env = serving_env(plan)  # features by entity key from the Feast online store
    env += [{"name": k, "value": v} for k, v in model_env(plan).items()]  # a container-trained model's description
    if env:
        container["env"] = env
    predictor: dict[str, Any] = {"containers": [container], "minReplicas": online.min_replicas, "maxReplicas": online.max_replicas}
    if online.autoscaling_metric:
        predictor["scaleMetric"] = facts.KSERVE_SCALE_METRIC[online.autoscaling_metric]
        predictor["scaleTarget"] = int(round(online.autoscaling_target or 0))
    annotations: dict[str, str] = {}
    if online.strategy == "canary":
        predictor["canaryTrafficPercent"] = online.canary_percent
    elif online.strategy == "blue_green":
        # the new (green) revision takes no traffic until promoted; tag routing gives it its
        # own URL to test; promotion sets canaryTrafficPercent to 100 (runtime deploy step)
        predictor["canaryTrafficPercent"] = 0
        annotations["serving.kserve.io/enable-tag-routing"] = "true"
    if online.resources.timeout_seconds:
        predictor["timeout"] = online.resources.timeout_seconds
    selector, tolerations = scheduling(plan, online.resources)
    if selector:
        predictor["nodeSelector"] = selector
    if tolerations:
        predictor["tolerations"] = tolerations
    if settings(plan).get("service_account"):
        predictor["serviceAccountName"] = settings(plan)["service_account"]
    return {
        "apiVersion": "serving.kserve.io/v1beta1",
        "kind": "InferenceService",
        "metadata": metadata(plan, online.name, annotations),
        "spec": {"predictor": predictor},
    }


def kfp_cron(cron: str) -> str:
    """KFP's cron has a seconds field first: `m h dom mon dow` → `0 m h dom mon dow`."""
    return f"0 {cron}"


def recurring_run(plan: Plan, schedule: Schedule) -> dict[str, Any]:
    """A KFP v2beta1 RecurringRun body; `mlcompile deploy` fills in the pipeline version it
    uploaded (pipeline_version_reference) and the experiment."""
    body: dict[str, Any] = {
        "display_name": schedule.name,
        "description": f"{schedule.pipeline} on cron '{schedule.cron}' ({schedule.timezone}); mlcompile spec sha256 {plan.spec_sha256[:12]}",
        "mode": "ENABLE",
        "max_concurrency": "1",
        "no_catchup": True,
        "trigger": {"cron_schedule": {"cron": kfp_cron(schedule.cron)}},
        "runtime_config": {"pipeline_root": settings(plan)["pipeline_root"]},
    }
    if settings(plan).get("service_account"):
        body["service_account"] = settings(plan)["service_account"]
    return body


def cron_job(plan: Plan, schedule: Schedule, platform_run: dict[str, Any]) -> dict[str, Any]:
    """A schedule in a time zone other than the KFP controller's: a CronJob (spec.timeZone)
    whose pod starts the pipeline through the KFP API (runtime step trigger-retraining, with
    `platform_run`: the pipeline version this build uploads)."""
    config = {
        "system": plan.system,
        "step": "start-run",
        "kind": "trigger_retraining",
        "params": {"pipeline": schedule.pipeline, "when": "schedule", "schedule": schedule.name},
        "spec_sha256": plan.spec_sha256,
        "platform": {"name": "kubeflow", "host": settings(plan)["host"], "namespace": settings(plan)["namespace"]},
        "platform_run": platform_run,
    }
    container = {
        "name": "start-run",
        "image": plan.runtime_image,
        "command": ["python", "-m", "mlcompile.runtime", "trigger-retraining"],
        "args": ["--config", json.dumps(config, sort_keys=True, separators=(",", ":"))],
        "resources": {"requests": {"cpu": "100m", "memory": "256Mi"}, "limits": {"cpu": "500m", "memory": "512Mi"}},
    }
    pod: dict[str, Any] = {"containers": [container], "restartPolicy": "OnFailure"}
    if settings(plan).get("service_account"):
        pod["serviceAccountName"] = settings(plan)["service_account"]
    return {
        "apiVersion": "batch/v1",
        "kind": "CronJob",
        "metadata": metadata(plan, schedule.name),
        "spec": {
            "schedule": schedule.cron,
            "timeZone": schedule.timezone,
            "concurrencyPolicy": "Forbid",
            "jobTemplate": {"spec": {"backoffLimit": 2, "template": {"metadata": {"labels": labels(plan)}, "spec": pod}}},
        },
    }
