"""Plan → the build's files (see the package docstring for the layout)."""

from __future__ import annotations

from mlcompile.plan.nodes import Plan
from mlcompile.targets.azureml._sdk import entity_yaml, experimental_checks_skipped, offline_cloud, quiet
from mlcompile.targets.azureml.layout import header, pipeline_path
from mlcompile.targets.base import OutputFile


def render(plan: Plan) -> list[OutputFile]:
    from mlcompile.targets.azureml import alerts, batch, feature_store, schedules, serving
    from mlcompile.targets.azureml.pipelines import build_pipeline_job

    files: list[OutputFile] = []
    with quiet(), offline_cloud(), experimental_checks_skipped():
        for pipeline in plan.pipelines():
            job = build_pipeline_job(plan, pipeline)
            files.append(OutputFile(pipeline_path(pipeline.name), "azureml.pipeline_job", entity_yaml(job, "azureml.pipeline_job", header(plan))))
        files += serving.render_online(plan)
        files += batch.render_batch(plan)
        files += schedules.render_schedules(plan, list(plan.schedules))
        files += schedules.render_production_data(plan)
        files += schedules.render_monitor(plan)
        files += feature_store.render_feature_store(plan)
        files += alerts.render_alerts(plan)
    return sorted(files, key=lambda f: f.path)
