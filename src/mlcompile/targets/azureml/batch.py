"""The batch endpoint that runs the plan's batch-scoring pipeline as a pipeline component."""

from __future__ import annotations

from mlcompile.plan.nodes import Plan
from mlcompile.targets.azureml._sdk import entity_yaml, tags, yaml_bytes
from mlcompile.targets.azureml.serving import BATCH_DEPLOYMENT, batch_endpoint_name
from mlcompile.targets.base import OutputFile


def render_batch(plan: Plan) -> list[OutputFile]:
    from azure.ai.ml.entities import BatchEndpoint, PipelineComponentBatchDeployment

    from mlcompile.targets.azureml.layout import header
    from mlcompile.targets.azureml.pipelines import build_pipeline_job

    if plan.batch is None:
        return []
    labels = tags(plan)
    job = build_pipeline_job(plan, plan.batch, on_cluster=True)
    component = job.component
    component.tags = labels
    component_path = f"components/{plan.batch.name}.yml"
    name = batch_endpoint_name(plan)
    endpoint = BatchEndpoint(
        name=name, description=f"batch scoring of {plan.system} (model {plan.registry.model})", tags=labels, defaults={"deployment_name": BATCH_DEPLOYMENT}
    )
    deployment = PipelineComponentBatchDeployment(
        name=BATCH_DEPLOYMENT,
        endpoint_name=name,
        description=f"runs {plan.batch.name}",
        component="placeholder",
        # the SDK annotates settings as strings, yet writes this bool as the YAML boolean Azure ML reads
        settings={"default_compute": str(plan.platform_settings["compute"]), "continue_on_step_failure": False},  # type: ignore[dict-item]
        tags=labels,
    )
    with_component = dict(deployment._to_dict())
    with_component["component"] = f"../{component_path}"  # a file reference, resolved next to this file
    return [
        OutputFile(component_path, "azureml.pipeline_component", entity_yaml(component, "azureml.pipeline_component", header(plan))),
        OutputFile(f"endpoints/{name}.yml", "azureml.batch_endpoint", entity_yaml(endpoint, "azureml.batch_endpoint", header(plan))),
        OutputFile(
            f"endpoints/{name}-{BATCH_DEPLOYMENT}.yml", "azureml.batch_deployment", yaml_bytes(with_component, "azureml.batch_deployment", header(plan))
        ),
    ]
