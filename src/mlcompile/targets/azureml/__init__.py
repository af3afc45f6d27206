"""The `azureml` target: Azure Machine Learning (SDK v2, azure-ai-ml).

A build is the YAML that `az ml … create -f` and the SDK's `load_*` functions read, one file
per Azure ML resource (kinds in docs/targets/azureml.md):

    pipelines/<pipeline>.yml             azureml.pipeline_job       training, batch scoring, monitoring, new-data sensors,
                                                                    <system>-deploy (approval: manual): rolls out the approved version
    components/<batch pipeline>.yml      azureml.pipeline_component what the batch deployment runs
    endpoints/<endpoint>.yml             azureml.online_endpoint    (traffic: set by the rollout)
    endpoints/<endpoint>-<slot>.yml      azureml.online_deployment  blue / green (model: set by the rollout)
    endpoints/<endpoint>-<slot>-autoscale.json  azure.monitor_autoscale  min/max replicas, the scaling rule
    endpoints/<system>-batch.yml         azureml.batch_endpoint
    endpoints/<system>-batch-default.yml azureml.batch_deployment
    data/<system>-<source>.yml           azureml.data               batch-only: the monitor's production data
    schedules/<schedule>.yml             azureml.schedule           cron + time zone → a pipeline job
    schedules/<system>-model-monitor.yml azureml.monitor_schedule   data-drift signal, thresholds, e-mails
    feature-store/…                      azureml.feature_store, …   the managed feature store (feature_store.py)
    alerts/<system>-alerts.json          azure.monitor_action_group e-mail recipients (alerts.py)
    alerts/<system>-monitoring-breach.json  azure.monitor_metric_alert  on the breach metric the alert step publishes

Field by field, what is expressed where and what `check` refuses: docs/targets/azureml.md.
The SDK is imported inside `render`/`deploy` only; `check` is plain Python."""

from __future__ import annotations

from pathlib import Path

from mlcompile.diagnostics import Diagnostic
from mlcompile.plan.extension import PlanExtension
from mlcompile.plan.nodes import Plan
from mlcompile.targets.azureml.platform import AzureMLPlatform
from mlcompile.targets.base import DeployAction, OutputFile


class AzureMLTarget(AzureMLPlatform):
    """The azureml platform (platform.py) with its check, render and deploy."""

    def extend_plan(self, plan: Plan) -> PlanExtension:
        """Azure ML schedules are time-based: each new-data trigger is a small sensor pipeline
        on an hourly schedule (as on KFP and Vertex AI). With manual approval, `<system>-deploy`
        is the job an approver submits after approving a version: its deploy-online step rolls
        the endpoint to it."""
        from mlcompile.targets.kfp_ir import approval_pipelines, new_data_sensors

        return new_data_sensors(plan) + approval_pipelines(plan)

    def check(self, plan: Plan) -> list[Diagnostic]:
        from mlcompile.targets.azureml.check import check

        return check(plan)

    def render(self, plan: Plan) -> list[OutputFile]:
        from mlcompile.targets.azureml.render import render

        return render(plan)

    def deploy(self, plan: Plan, build_dir: Path, *, dry_run: bool) -> list[DeployAction]:
        from mlcompile.targets.azureml.deploy import deploy

        return deploy(plan, build_dir, dry_run=dry_run)
