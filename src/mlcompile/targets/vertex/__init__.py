"""The `vertex` target: Vertex AI Pipelines (KFP v2 IR compiled by the kfp SDK) plus Vertex AI
request bodies built with google-cloud-aiplatform's types: PipelineJob, Schedule, CustomJob /
HyperparameterTuningJob, Model Registry upload, Endpoint and DeployModel, and the Feature
Store resources of online feature views (feature_store.py). See
docs/targets/vertex.md for every output file and kind."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from mlcompile.diagnostics import Diagnostic
from mlcompile.plan.extension import PlanExtension
from mlcompile.plan.nodes import Plan, Step
from mlcompile.targets.base import DeployAction, OutputFile, json_bytes, unsupported
from mlcompile.targets.kfp_ir import (
    LAUNCH,
    RUN_ID_VERTEX,
    StepSettings,
    approval_pipelines,
    compile_pipeline,
    extra_outputs,
    job_timeout,
    new_data_sensors,
    runtime_config,
    secret_name,
    split_documents,
    watermark_uri,
)  # fmt: skip
from mlcompile.targets.vertex import alerting, feature_store
from mlcompile.targets.vertex.platform import VertexPlatform

NAME = "vertex"
CACHEABLE = frozenset({"validate_data", "train", "tune", "evaluate"})
# the register task's output linking the run to the uploaded version in Vertex ML Metadata
VERTEX_MODEL_OUTPUT = "vertex_model"


def launches_job(step: Step, plan: Plan) -> str | None:
    """Steps that run as a Vertex AI job launched by their pipeline task: the trainer (a
    CustomJob: machine type, accelerators, replicas as worker pools, spot, timeout; a
    HyperparameterTuningJob with tuning) and batch scoring (a CustomJob on its machine)."""
    if step.kind == "tune" and plan.tuning is not None:
        return "vertex.hyperparameter_tuning_job"
    if step.kind in ("train", "tune", "score_batch"):
        return "vertex.custom_job"
    return None


class VertexTarget(VertexPlatform):
    """The vertex platform (platform.py) with its check, render and deploy."""

    # ------------------------------------------------------------------ check
    def extend_plan(self, plan: Plan) -> PlanExtension:
        """Vertex AI starts runs on a cron only: a sensor pipeline per new-data trigger, polled
        hourly; and the deploy pipeline an approver starts."""
        return new_data_sensors(plan) + approval_pipelines(plan)

    def check(self, plan: Plan) -> list[Diagnostic]:
        problems: list[Diagnostic] = []
        online = plan.online
        if online is not None and online.min_replicas < 1:
            problems.append(unsupported(
                online.origin.below("replicas", "min"), NAME,
                "a Vertex AI endpoint cannot scale to zero replicas (DedicatedResources.min_replica_count >= 1)",
                "set `replicas.min: 1` (override it for this profile)",
            ))  # fmt: skip
        tuning = plan.tuning  # a grid over a float range: refused from the capabilities (platform.py)
        if tuning is not None and any(s.uses_user_container for s in plan.training.steps):
            problems.append(Diagnostic(
                tuning.origin.file, tuning.origin.line, tuning.origin.col, "warning", tuning.origin.path,
                "a Vertex AI HyperparameterTuningJob passes each trial's parameters as arguments --NAME=VALUE (not in "
                "MLCOMPILE_HYPERPARAMETERS), reads the trial's metric from cloudml-hypertune, and gives each trial its own "
                f"AIP_MODEL_DIR (target {NAME})",
                "in the container: parse --NAME=VALUE arguments when MLCOMPILE_HYPERPARAMETERS is unset, report the objective "
                "with hypertune, and, as MLCOMPILE_MODEL_DIR and MLCOMPILE_METRICS are unset in a trial, write the model to "
                "$AIP_MODEL_DIR and the metrics JSON to metrics.json in its parent folder",
            ))  # fmt: skip
        for step in plan.training.steps:
            if step.uses_user_container:
                for key, value in sorted(step.params.get("env", {}).items()):
                    if secret_name(value):
                        problems.append(Diagnostic(
                            step.origin.file, step.origin.line, step.origin.col, "warning", f"{step.origin.path}.env.{key}",
                            f"on Vertex AI a CustomJob has no secret-backed environment: the launcher reads {value} from Secret "
                            f"Manager and puts its value in the job's environment, visible to whoever can read the job (target {NAME})",
                            "prefer reading the secret inside the trainer",
                        ))  # fmt: skip
        problems += feature_store.check(plan)
        return problems

    # ------------------------------------------------------------------ render
    def render(self, plan: Plan) -> list[OutputFile]:
        from mlcompile.targets.vertex import bodies

        files: list[OutputFile] = []
        settings = plan.platform_settings
        pipelines = plan.pipelines()
        jobs: dict[str, dict[str, Any]] = {}
        for pipeline in pipelines:
            for step in pipeline.steps:
                kind = launches_job(step, plan)
                if kind is not None:
                    body = bodies.hyperparameter_tuning_job(plan, step) if kind == "vertex.hyperparameter_tuning_job" else bodies.custom_job(plan, step)
                    jobs[step.name] = {"kind": kind, "body": body, "timeout_seconds": job_timeout(plan, step)}
                    stem = "hyperparameter-tuning-job" if kind == "vertex.hyperparameter_tuning_job" else "custom-job"
                    files.append(OutputFile(f"vertex/jobs/{step.name}-{stem}.json", kind, json_bytes(body)))
        # registration uploads the model version through the launcher (Model Registry)
        register = {**bodies.model(plan)}
        register["model"] = {**register["model"], "artifactUri": "{{inputs.model}}"}
        for step in plan.training.steps:
            if step.kind == "register":
                jobs[step.name] = {"kind": "vertex.upload_model_request", "body": register, "timeout_seconds": step.resources.timeout_seconds}
        pipeline_jobs: dict[str, dict[str, Any]] = {}
        for pipeline in pipelines:
            text = compile_pipeline(
                plan,
                pipeline,
                lambda s: self._settings(plan, s, jobs, pipeline_jobs),
                lambda t, s, st: self._decorate(plan, t, s),
                pipeline_root=settings["pipeline_root"],
            )
            files.append(OutputFile(f"pipelines/{pipeline.name}.yaml", "kfp.pipeline_spec", text.encode()))
            pipeline_jobs[pipeline.name] = self._pipeline_job(plan, text)
            files.append(OutputFile(f"vertex/pipeline-jobs/{pipeline.name}.json", "vertex.pipeline_job", json_bytes(pipeline_jobs[pipeline.name])))
        for schedule in plan.schedules:
            body = bodies.schedule(plan, schedule.name, schedule.cron, schedule.timezone, pipeline_jobs[schedule.pipeline])
            files.append(OutputFile(f"vertex/schedules/{schedule.name}.json", "vertex.schedule", json_bytes(body)))
        files.append(OutputFile("vertex/model.json", "vertex.upload_model_request", json_bytes(bodies.model(plan))))
        for path, kind, body in [*feature_store.bodies(plan), *alerting.bodies(plan)]:
            files.append(OutputFile(path, kind, json_bytes(body)))
        if plan.online is not None:
            files.append(OutputFile("vertex/endpoint.json", "vertex.create_endpoint_request", json_bytes(bodies.endpoint(plan))))
            files.append(OutputFile("vertex/deploy-model.json", "vertex.deploy_model_request", json_bytes(bodies.deploy_model_request(plan))))
        return files

    def _pipeline_job(self, plan: Plan, text: str) -> dict[str, Any]:
        """The PipelineJob body as the aiplatform SDK builds it from the compiled template."""
        import os
        import tempfile

        from google.auth.credentials import AnonymousCredentials
        from google.cloud import aiplatform

        from mlcompile import yaml_emit
        from mlcompile.targets.vertex import bodies

        settings = plan.platform_settings
        aiplatform.init(project=settings["project"], location=settings["region"], credentials=AnonymousCredentials())
        spec, _ = split_documents(text)
        with tempfile.TemporaryDirectory(prefix="mlcompile-vertex-") as scratch:
            path = os.path.join(scratch, "pipeline.yaml")
            with open(path, "w", encoding="utf-8") as handle:
                handle.write(yaml_emit.dump(spec))
            job = aiplatform.PipelineJob(
                display_name=spec["pipelineInfo"]["name"], template_path=path, pipeline_root=settings["pipeline_root"], labels=bodies.labels(plan)
            )
        resource = job._gca_resource
        resource.service_account = settings["service_account"]
        if settings.get("network"):
            resource.network = settings["network"]
        return bodies.to_json(resource)

    def _settings(self, plan: Plan, step: Step, jobs: dict[str, dict[str, Any]], pipeline_jobs: dict[str, dict[str, Any]]) -> StepSettings:
        from mlcompile.targets.vertex import bodies

        r = step.resources
        caching = step.kind in CACHEABLE
        if step.name in jobs:
            standard = plan.standard_resources
            config = runtime_config(plan, step, platform=bodies.platform_section(plan), platform_job=jobs[step.name])
            registers = jobs[step.name]["kind"] == "vertex.upload_model_request"
            return StepSettings(
                plan.runtime_image, ["python", "-m", LAUNCH, step.name], config, standard.cpu, standard.memory, caching=caching, pipeline_run=RUN_ID_VERTEX,
                extra_outputs={VERTEX_MODEL_OUTPUT: "google.VertexModel"} if registers else {}, executor_output=registers,
            )  # fmt: skip
        resolved = r.accelerator
        accelerator, count = (resolved.platform_name, resolved.count) if resolved else (None, 0)
        config = runtime_config(plan, step, platform=bodies.platform_section(plan))
        if step.kind == "trigger_retraining":
            config["platform_run"] = self._platform_run(plan, step, pipeline_jobs)
        if step.kind == "deploy_online" and plan.online is not None:  # deployModel with the approved version
            config["deploy_model"] = bodies.deploy_model_request(plan)
        return StepSettings(
            step.image, list(step.command), config, r.cpu, r.memory, accelerator, count, caching=caching, pipeline_run=RUN_ID_VERTEX,
            extra_outputs=extra_outputs(step),
        )  # fmt: skip

    def _platform_run(self, plan: Plan, step: Step, pipeline_jobs: dict[str, dict[str, Any]]) -> dict[str, Any]:
        """How the runtime starts the training pipeline through PipelineJobs.create: with the
        pipeline spec of the training PipelineJob that `deploy` submits for this build (its id
        is known here: the body's sha256), so a retraining runs exactly this build's pipeline."""
        from mlcompile.targets.base import json_bytes
        from mlcompile.targets.vertex import bodies
        from mlcompile.targets.vertex.deploy import job_id_of

        pipeline = step.params["pipeline"]
        template = f"{bodies.parent(plan)}/pipelineJobs/{job_id_of(pipeline, json_bytes(pipeline_jobs[pipeline]))}"
        run = {"kind": "vertex.pipeline_job", "pipeline": pipeline, "template": template}
        if step.params.get("when") == "new_data":
            run["watermark"] = watermark_uri(plan, plan.platform_settings["pipeline_root"], step.params["source"])
        return run

    def _decorate(self, plan: Plan, task: Any, step: Step) -> None:
        """MLCOMPILE_SECRET_<NAME> → the Secret Manager version of each secret:// the step
        uses (alert webhooks, a trainer's env read by its launcher): resolved when the step
        runs, with the pipeline's service account (Vertex AI injects no secret itself)."""
        from mlcompile.secrets import locator_env

        for env, where in sorted(locator_env(NAME, plan.platform_settings, step.params).items()):
            task.set_env_variable(env, where)

    # ------------------------------------------------------------------ deploy
    def deploy(self, plan: Plan, build_dir: Path, *, dry_run: bool) -> list[DeployAction]:
        from mlcompile.targets.vertex.deploy import deploy

        return deploy(plan, build_dir, dry_run=dry_run)
