"""The `kubeflow` target: Kubeflow Pipelines (KFP v2 IR compiled by the kfp SDK, with
kfp-kubernetes platform settings) on any Kubernetes cluster, plus Training Operator,
Katib and KServe manifests. See docs/targets/kubeflow.md for every output file and kind."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from mlcompile.diagnostics import Diagnostic
from mlcompile.plan.extension import PlanExtension
from mlcompile.plan.nodes import Plan, Step
from mlcompile.targets import feast_repo
from mlcompile.targets.base import DeployAction, OutputFile, json_bytes, unsupported
from mlcompile.targets.kfp_ir import (
    LAUNCH,
    RUN_ID_KUBEFLOW,
    StepSettings,
    approval_pipelines,
    compile_pipeline,
    extra_outputs,
    job_timeout,
    new_data_sensors,
    runtime_config,
    secret_name,
    watermark_uri,
)  # fmt: skip
from mlcompile.targets.kubeflow import alerting, facts, feature_store, manifests
from mlcompile.targets.kubeflow.deploy import version_name
from mlcompile.targets.kubeflow.platform import KubeflowPlatform

NAME = "kubeflow"
# steps whose result depends only on their inputs: safe to take from KFP's cache
CACHEABLE = frozenset({"validate_data", "train", "tune", "evaluate"})
SECRET_ENV_PREFIX = "MLCOMPILE_SECRET_"


def launches_job(step: Step, plan: Plan) -> str | None:
    """The platform job a trainer step launches: Katib for tuning, a PyTorchJob for
    replicas > 1, none (a plain KFP task) otherwise."""
    if step.kind == "tune" and plan.tuning is not None:
        return "katib.experiment"
    if step.kind in ("train", "tune") and step.resources.replicas > 1:
        return "kubeflow.pytorch_job"
    return None


def secret_env_name(secret: str) -> str:
    from mlcompile.secrets import env_name

    return env_name(secret)


class KubeflowTarget(KubeflowPlatform):
    """The kubeflow platform (platform.py) with its check, render and deploy."""

    # ------------------------------------------------------------------ plan
    def extend_plan(self, plan: Plan) -> PlanExtension:
        """KFP starts runs on a cron only: a sensor pipeline per new-data trigger, polled
        hourly; a pipeline per refresh cadence of the online views, materialising them; the
        deploy pipeline an approver starts."""
        return new_data_sensors(plan) + feature_store.materialization(plan) + approval_pipelines(plan)

    # ------------------------------------------------------------------ check
    def check(self, plan: Plan) -> list[Diagnostic]:
        problems: list[Diagnostic] = []
        settings = plan.platform_settings
        cluster = settings.get("cluster", "generic")
        seen: set[tuple[str, str]] = set()
        resources = [s.resources for p in plan.pipelines() for s in p.steps]
        if plan.online is not None:
            resources.append(plan.online.resources)
        for r in resources:
            if r.spot and cluster not in facts.SPOT and (r.origin.path, "spot") not in seen:
                seen.add((r.origin.path, "spot"))
                problems.append(unsupported(
                    r.origin.below("spot"), NAME,
                    f"spot capacity cannot be requested on a '{cluster}' cluster: Kubernetes has no standard spot node label",
                    "set `kubeflow.cluster` in the profile to gke, eks or aks, or remove `spot: true` for this profile (overrides)",
                ))  # fmt: skip
        online = plan.online
        if online is not None and online.autoscaling_metric and online.autoscaling_metric not in facts.KSERVE_SCALE_METRIC:
            problems.append(unsupported(
                online.origin.below("autoscaling", "metric"), NAME,
                f"KServe cannot autoscale on '{online.autoscaling_metric}' (its predictors scale on cpu, memory, concurrency or rps)",
                "use metric cpu or requests_per_replica for this profile",
            ))  # fmt: skip
        if online is not None and online.autoscaling_metric in facts.KSERVE_SCALE_METRIC and round(online.autoscaling_target or 0) < 1:
            problems.append(unsupported(
                online.origin.below("autoscaling", "target"), NAME,
                f"KServe's scaleTarget is a whole number; {online.autoscaling_target:g} rounds to 0",
                "use a target of at least 1",
            ))  # fmt: skip
        if settings.get("registry") is None:
            problems.append(unsupported(
                plan.registry.origin, NAME,
                f"the profile '{plan.profile}' names no model registry, so model '{plan.registry.model}' cannot be registered",
                "add `kubeflow.registry: {kind: mlflow, uri: http://…}` to the profile",
            ))  # fmt: skip
        tuning = plan.tuning  # a grid over a float range (Katib needs a step): refused from the capabilities (platform.py)
        for p in tuning.params if tuning is not None else ():
            if manifests.trial_parameter_name(p.name) == manifests.KATIB_TRIAL_NAME:
                problems.append(unsupported(
                    tuning.origin.below("params", p.name), NAME,
                    f"search parameter '{p.name}' becomes Katib trial parameter '{manifests.KATIB_TRIAL_NAME}', which carries the trial's name",
                    "rename the parameter",
                ))  # fmt: skip
        problems += feast_repo.check(plan, NAME)
        problems += alerting.check(plan, NAME)
        return problems

    # ------------------------------------------------------------------ render
    def render(self, plan: Plan) -> list[OutputFile]:
        files: list[OutputFile] = []
        root = plan.platform_settings["pipeline_root"]
        pipelines = plan.pipelines()
        # pipeline → the version `deploy` uploads it as: what trigger-retraining and the
        # CronJobs start (training is compiled first, so the steps that start it can name it)
        versions: dict[str, str] = {}
        for pipeline in pipelines:
            text = compile_pipeline(
                plan, pipeline, lambda s: self._settings(plan, s, versions), lambda t, s, st: self._decorate(plan, t, s), pipeline_root=root
            )
            files.append(OutputFile(f"pipelines/{pipeline.name}.yaml", "kfp.pipeline_spec", text.encode()))
            versions[pipeline.name] = version_name(pipeline.name, text.encode())
        for step in plan.training.steps:
            job = launches_job(step, plan)
            if job == "katib.experiment":
                files.append(OutputFile(f"training/{step.name}-experiment.yaml", job, _yaml(manifests.katib_experiment(plan, step))))
            elif job == "kubeflow.pytorch_job":
                files.append(OutputFile(f"training/{step.name}-pytorchjob.yaml", job, _yaml(manifests.pytorch_job(plan, step))))
        files += feast_repo.render(plan)
        if plan.online is not None:
            files.append(OutputFile("serving/inference-service.yaml", "kserve.inference_service", _yaml(manifests.inference_service(plan))))
        routing = alerting.alertmanager_config(plan)
        if routing is not None:
            files.append(OutputFile(alerting.PATH, alerting.KIND, _yaml(routing)))
        for schedule in plan.schedules:
            if schedule.timezone == facts.KFP_SCHEDULE_TIMEZONE:
                files.append(OutputFile(f"schedules/{schedule.name}.json", "kfp.recurring_run", json_bytes(manifests.recurring_run(plan, schedule))))
            else:
                cron_job = manifests.cron_job(plan, schedule, self._platform_run(plan, schedule.pipeline, versions))
                files.append(OutputFile(f"schedules/{schedule.name}-cronjob.yaml", "kubernetes.cron_job", _yaml(cron_job)))
        return files

    def _platform(self, plan: Plan) -> dict[str, Any]:
        settings = plan.platform_settings
        section = {k: settings[k] for k in ("host", "namespace", "pipeline_root", "registry") if settings.get(k) is not None}
        return {"name": NAME, **section, "secrets": {"kind": "env", "prefix": SECRET_ENV_PREFIX}}

    def _platform_run(self, plan: Plan, pipeline: str, versions: dict[str, str]) -> dict[str, Any]:
        """How the runtime starts `pipeline` through the KFP runs API: the pipeline version this
        build uploads, in the system's experiment and the profile's namespace."""
        settings = plan.platform_settings
        run = {"kind": "kfp.run", "pipeline": pipeline, "version": versions[pipeline], "experiment": plan.system, "pipeline_root": settings["pipeline_root"]}
        if settings.get("service_account"):
            run["service_account"] = settings["service_account"]
        return run

    def _tracking_uri(self, plan: Plan) -> str | None:
        registry = plan.platform_settings.get("registry") or {}
        return registry.get("uri") if registry.get("kind") == "mlflow" else None

    def _settings(self, plan: Plan, step: Step, versions: dict[str, str]) -> StepSettings:
        job = launches_job(step, plan)
        r = step.resources
        common: dict[str, Any] = {"retries": facts.SPOT_RETRIES if r.spot else 0, "caching": step.kind in CACHEABLE, "pipeline_run": RUN_ID_KUBEFLOW}
        if job is not None:
            # the pipeline task is a small launcher (runtime image, standard resources) that
            # creates the job from its manifest, waits for it and collects its outputs
            manifest = manifests.katib_experiment(plan, step) if job == "katib.experiment" else manifests.pytorch_job(plan, step)
            standard = plan.standard_resources
            config = runtime_config(
                plan,
                step,
                tracking_uri=self._tracking_uri(plan),
                platform=self._platform(plan),
                platform_job={"kind": job, "manifest": manifest, "timeout_seconds": job_timeout(plan, step)},
            )
            return StepSettings(
                plan.runtime_image,
                ["python", "-m", LAUNCH, step.name],
                config,
                standard.cpu,
                standard.memory,
                caching=common["caching"],
                pipeline_run=RUN_ID_KUBEFLOW,
            )
        resolved = r.accelerator
        accelerator, count = (resolved.platform_name, resolved.count) if resolved else (None, 0)
        if step.uses_user_container:
            env = {k: v for k, v in step.params.get("env", {}).items() if not secret_name(v)}
            env["MLCOMPILE_LABEL"] = str(step.params.get("label", ""))
            return StepSettings(step.image, list(step.command), None, r.cpu, r.memory, accelerator, count, env=env, user_args=list(step.args), **common)
        config = runtime_config(plan, step, tracking_uri=self._tracking_uri(plan), platform=self._platform(plan))
        if step.kind == "materialize_features":
            config["feast"] = feature_store.feast_config(plan)
        if step.kind == "alert" and plan.platform_settings.get("alertmanager"):
            config["platform"]["alertmanager"] = {**plan.platform_settings["alertmanager"], "labels": alerting.route_labels(plan)}
        if step.kind == "trigger_retraining":
            config["platform_run"] = self._platform_run(plan, step.params["pipeline"], versions)
            if step.params.get("when") == "new_data":
                config["platform_run"]["watermark"] = watermark_uri(plan, plan.platform_settings["pipeline_root"], step.params["source"])
        if step.kind == "deploy_online" and plan.online is not None:  # a new KServe revision pinned to the approved version
            config["serving"] = manifests.rollout(plan)
        return StepSettings(step.image, list(step.command), config, r.cpu, r.memory, accelerator, count, extra_outputs=extra_outputs(step), **common)

    def _decorate(self, plan: Plan, task: Any, step: Step) -> None:
        from kfp import kubernetes

        r = step.resources if launches_job(step, plan) is None else plan.standard_resources
        selector, tolerations = manifests.scheduling(plan, r)
        for key, value in selector.items():
            kubernetes.add_node_selector(task, key, value)
        for toleration in tolerations:
            kubernetes.add_toleration(
                task, key=toleration.get("key"), operator=toleration["operator"], value=toleration.get("value"), effect=toleration.get("effect")
            )
        timeout = job_timeout(plan, step) if launches_job(step, plan) else step.resources.timeout_seconds
        if timeout:
            kubernetes.set_timeout(task, timeout)
        if launches_job(step, plan) is not None:  # the launcher makes its pod the job's owner
            from mlcompile.targets.kfp_ir.launch import ENV_POD_NAME, ENV_POD_UID

            kubernetes.use_field_path_as_env(task, ENV_POD_NAME, "metadata.name")
            kubernetes.use_field_path_as_env(task, ENV_POD_UID, "metadata.uid")
        secrets: dict[str, str] = {}
        if step.uses_user_container and launches_job(step, plan) is None:
            secrets.update({env: name for env, value in step.params.get("env", {}).items() if (name := secret_name(value))})
        elif launches_job(step, plan) is None:  # a runtime step: every secret:// of its params
            from mlcompile.secrets import refs_in

            secrets.update({secret_env_name(name): name for name in refs_in(step.params)})
        if step.kind == "materialize_features":  # the secrets the repo's feature_store.yaml names
            secrets.update({feast_repo.secret_env(name): name for name in feast_repo.secrets_of(plan)})
        for env, name in sorted(secrets.items()):
            kubernetes.use_secret_as_env(task, secret_name=name, secret_key_to_env={"value": env})

    # ------------------------------------------------------------------ deploy
    def deploy(self, plan: Plan, build_dir: Path, *, dry_run: bool) -> list[DeployAction]:
        from mlcompile.targets.kubeflow.deploy import deploy

        return deploy(plan, build_dir, dry_run=dry_run)


def _yaml(data: Any) -> bytes:
    """Deterministic YAML; no anchors/aliases (Kubernetes tooling reads them, humans don't)."""
    from mlcompile import yaml_emit

    return yaml_emit.dump(data, width=4096).encode()
