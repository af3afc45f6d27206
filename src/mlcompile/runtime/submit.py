"""Starting a pipeline through the platform's API from inside a running pipeline (the runtime's
trigger-retraining step, the kubeflow CronJobs): the `platform_run` section of the step's
config, rendered by the kubeflow/vertex targets.

  kfp.run              a run of the pipeline *version* the build uploads (named after the sha256
                       of its compiled file, see kubeflow/deploy.py), in the system's experiment
                       and the profile's namespace, through kfp.Client (the KFP REST API)
  vertex.pipeline_job  PipelineJobs.create with the pipeline spec and runtime config of the
                       PipelineJob `deploy` submits for the build (its id: the body's sha256)
  azureml.pipeline_job MLClient.jobs.create_or_update with the build's training pipeline job
                       (mlcompile.runtime.retraining_azureml)

Each platform is asked first for an active run of the pipeline (pending, running, paused): a
second one is not started beside it. Needs the platform's SDK in the runtime image."""

from __future__ import annotations

import contextlib
import io
import os
import time
from typing import Any, Protocol

from mlcompile.runtime.contract import ENV_VERTEX_API_ENDPOINT

# KFP v2beta1 RuntimeState / Vertex PipelineState of a run that has not finished
KFP_ACTIVE = frozenset({"PENDING", "RUNNING", "PAUSED", "CANCELING"})
VERTEX_ACTIVE = frozenset({"PIPELINE_STATE_QUEUED", "PIPELINE_STATE_PENDING", "PIPELINE_STATE_RUNNING", "PIPELINE_STATE_PAUSED", "PIPELINE_STATE_CANCELLING"})


KFP_HOST_ENV = "MLCOMPILE_KFP_HOST"


class SubmitFailed(Exception):
    pass


class Submitter(Protocol):
    def active_run(self) -> str | None:
        """The id of a run of the pipeline that has not finished, if any."""
        ...

    def submit(self, why: str) -> str:
        """Start a run; its id on the platform."""
        ...


def run_name(pipeline: str, why: str, limit: int = 128) -> str:
    """A run's name: the pipeline, why it runs, and the UTC time it was asked ([a-z0-9-])."""
    stamp = time.strftime("%Y%m%d%H%M%S", time.gmtime())
    return f"{pipeline}-{why}-{stamp}"[:limit]


class KfpRuns:
    def __init__(self, config: dict[str, Any]):
        from mlcompile.runtime.kfp_client import kfp_client
        from mlcompile.runtime.retries import RetryingClient

        platform = config["platform"]
        self.run = config["platform_run"]
        self.namespace = platform.get("namespace")
        from mlcompile.runtime.emulated_storage import service_url

        # inside the cluster the API is often reached at its service (http://ml-pipeline.kubeflow:8888)
        # rather than at the profile's external host; under the emulator, at its local stand-in
        host = os.environ.get(KFP_HOST_ENV) or service_url(platform["host"])
        with contextlib.redirect_stdout(io.StringIO()):  # kfp.Client prints links on stdout
            self.client = RetryingClient(kfp_client(host, self.namespace))

    def _experiment(self, create: bool) -> str | None:
        try:
            return str(self.client.get_experiment(experiment_name=self.run["experiment"], namespace=self.namespace).experiment_id)
        except ValueError:  # kfp: "No experiment is found with name …"
            if not create:
                return None
        from mlcompile.runtime.retries import create_once

        return create_once(
            lambda: str(self.client.create_experiment(self.run["experiment"], namespace=self.namespace).experiment_id), lambda: self._experiment(False)
        )

    def _pipeline_id(self) -> str:
        pipeline_id = self.client.get_pipeline_id(self.run["pipeline"])
        if pipeline_id is None:
            raise SubmitFailed(f"pipeline {self.run['pipeline']} is not on Kubeflow Pipelines: deploy this build (mlcompile deploy)")
        return str(pipeline_id)

    def _runs(self, experiment_id: str) -> list[Any]:
        listed = self.client.list_runs(experiment_id=experiment_id, page_size=100, sort_by="created_at desc")
        return list(listed.runs or [])

    def active_run(self) -> str | None:
        experiment_id = self._experiment(create=False)
        if experiment_id is None:
            return None
        pipeline_id = self._pipeline_id()
        for run in self._runs(experiment_id):
            reference = run.pipeline_version_reference
            if reference is not None and reference.pipeline_id == pipeline_id and run.state in KFP_ACTIVE:
                return str(run.run_id)
        return None

    def submit(self, why: str) -> str:
        import json

        from mlcompile.runtime.retries import create_once

        pipeline_id = self._pipeline_id()
        wanted = self.run["version"]
        predicate = {"predicates": [{"key": "display_name", "operation": "EQUALS", "string_value": wanted}]}
        listed = self.client.list_pipeline_versions(pipeline_id, page_size=100, filter=json.dumps(predicate))
        version = next((v for v in listed.pipeline_versions or [] if v.display_name == wanted), None)
        if version is None:
            raise SubmitFailed(f"pipeline {self.run['pipeline']} has no version {wanted}: deploy this build (mlcompile deploy)")
        experiment_id = self._experiment(create=True)
        assert experiment_id is not None
        name = run_name(self.run["pipeline"], why)
        with contextlib.redirect_stdout(io.StringIO()):
            created = create_once(
                lambda: self.client.run_pipeline(
                    experiment_id, name, pipeline_id=pipeline_id, version_id=version.pipeline_version_id,
                    pipeline_root=self.run.get("pipeline_root"), service_account=self.run.get("service_account"),
                ),
                lambda: next((r for r in self._runs(experiment_id) if r.display_name == name), None),
            )  # fmt: skip
        return str(created.run_id)


class VertexPipelineJobs:
    def __init__(self, config: dict[str, Any]):
        from google.cloud.aiplatform_v1.services.pipeline_service import PipelineServiceClient

        platform = config["platform"]
        self.run = config["platform_run"]
        self.parent = f"projects/{platform['project']}/locations/{platform['region']}"
        from mlcompile.runtime.online.vertex import service_options

        endpoint = os.environ.get(ENV_VERTEX_API_ENDPOINT) or f"{platform['region']}-aiplatform.googleapis.com"
        options = service_options(endpoint)
        self.client = PipelineServiceClient(**options)

    def active_run(self) -> str | None:
        from google.cloud.aiplatform_v1 import types as gca

        from mlcompile.runtime.retries import with_retries

        request = gca.ListPipelineJobsRequest(parent=self.parent, filter=f'display_name="{self.run["pipeline"]}"')
        jobs = with_retries(lambda: list(self.client.list_pipeline_jobs(request=request)))
        for job in jobs:
            if job.state.name in VERTEX_ACTIVE:
                return str(job.name.rsplit("/", 1)[-1])
        return None

    def submit(self, why: str) -> str:
        from google.api_core import exceptions
        from google.cloud.aiplatform_v1 import types as gca

        from mlcompile.runtime.retries import with_retries

        try:
            template = with_retries(lambda: self.client.get_pipeline_job(name=self.run["template"]))
        except exceptions.NotFound as exc:
            raise SubmitFailed(
                f"{self.run['template']} (the build's {self.run['pipeline']} PipelineJob) is not on Vertex AI: deploy this build (mlcompile deploy)"
            ) from exc
        job = gca.PipelineJob(
            display_name=template.display_name, pipeline_spec=template.pipeline_spec, runtime_config=template.runtime_config,
            service_account=template.service_account, network=template.network, encryption_spec=template.encryption_spec,
            labels={**template.labels, "mlcompile-trigger": why},
        )  # fmt: skip
        identifier = run_name(self.run["pipeline"], why)
        try:  # the job id makes a repeated create a 409: a retry cannot submit it twice
            with_retries(lambda: self.client.create_pipeline_job(parent=self.parent, pipeline_job=job, pipeline_job_id=identifier))
        except exceptions.Conflict:
            pass
        return identifier
