"""trigger-retraining on Azure ML: the training pipeline job is submitted through
`MLClient.jobs.create_or_update`, unless a job of it has not finished.

The `platform_run` section (kind `azureml.pipeline_job`) carries the training pipeline job
of the build, as `pipelines/<system>-training.yml` holds it (JSON, zlib-compressed and
base64-encoded: Azure ML substitutes every `${{inputs.…}}` of a command line, those of the
embedded job's commands too), so a retraining runs exactly this build's pipeline; it runs in
the system's experiment, tagged with why it was started."""

from __future__ import annotations

import io
from typing import Any

from mlcompile.runtime.submit import SubmitFailed, run_name

# Azure ML job statuses of a job that has not finished (Completed, Failed, Canceled have)
ACTIVE = frozenset(
    {"NotStarted", "Scheduled", "Starting", "Provisioning", "Preparing", "Queued", "Running", "Finalizing", "CancelRequested", "Paused", "NotResponding"}
)
TAG_TRIGGER = "mlcompile-trigger"


class AzureMLPipelineJobs:
    def __init__(self, config: dict[str, Any]):
        from mlcompile.runtime.azureml_client import ml_client

        self.run = config["platform_run"]
        self.client = ml_client(config["platform"])

    def active_run(self) -> str | None:
        try:
            jobs = list(self.client.jobs.list())
        except Exception as exc:  # noqa: BLE001 - any refusal: the step fails with its reason
            raise SubmitFailed(f"cannot list the workspace's jobs: {type(exc).__name__}: {exc}") from exc
        for job in jobs:
            if job.display_name == self.run["pipeline"] and job.status in ACTIVE:
                return str(job.name)
        return None

    def submit(self, why: str) -> str:
        import base64
        import json
        import zlib

        import yaml
        from azure.ai.ml import load_job

        definition = json.loads(zlib.decompress(base64.b64decode(self.run["job_zlib_base64"])))
        job = load_job(io.StringIO(yaml.safe_dump(definition)))
        job.name = run_name(self.run["pipeline"], why).replace("-", "_")
        job.tags = {**(job.tags or {}), TAG_TRIGGER: why}
        try:
            created = self.client.jobs.create_or_update(job, experiment_name=self.run["experiment"])
        except Exception as exc:  # noqa: BLE001
            raise SubmitFailed(f"Azure ML refused the {self.run['pipeline']} job: {type(exc).__name__}: {exc}") from exc
        return str(created.name)
