"""Job schedules (retraining, batch scoring, the monitoring pipeline) and the model monitor."""

from __future__ import annotations

from typing import Any

from mlcompile.plan.nodes import Plan, Schedule
from mlcompile.targets.azureml._sdk import entity_yaml, tags, yaml_bytes
from mlcompile.targets.azureml._timezones import IANA_TO_WINDOWS
from mlcompile.targets.azureml.check import DRIFT_METRICS, NUMERIC_DTYPES, feature_dtypes
from mlcompile.targets.base import OutputFile

# The model monitor's Spark job: the smallest serverless Spark pool Azure ML monitoring takes
MONITOR_SPARK_INSTANCE = "standard_e4s_v3"
MONITOR_SPARK_RUNTIME = "3.4"


def monitor_name(plan: Plan) -> str:
    return f"{plan.system}-model-monitor"


def production_data_asset(plan: Plan) -> tuple[str, str, str] | None:
    """(name, uri, type) of the data asset the model monitor reads as production data when
    there is no online deployment to collect it: the batch scoring input source. Azure ML
    monitoring reads production data from a data asset only, never from a bare URI."""
    from mlcompile.targets.azureml.pipelines import _is_file

    if plan.online is not None or plan.batch is None or plan.monitoring is None:
        return None
    source_name = str(plan.batch.steps[0].params["source"])
    uri = next(s.uri for s in plan.features.sources if s.name == source_name)
    return f"{plan.system}-{source_name}", uri, "uri_file" if _is_file(uri) else "uri_folder"


def render_production_data(plan: Plan) -> list[OutputFile]:
    from azure.ai.ml.entities import Data

    from mlcompile.targets.azureml.layout import header

    asset = production_data_asset(plan)
    if asset is None or plan.batch is None:
        return []
    name, uri, kind = asset
    data = Data(
        name=name,
        path=uri,
        type=kind,
        description=f"batch scoring input of {plan.system} (source {plan.batch.steps[0].params['source']}): the model monitor's production data",
        tags=tags(plan),
    )
    return [OutputFile(f"data/{name}.yml", "azureml.data", entity_yaml(data, "azureml.data", header(plan)))]


def render_schedules(plan: Plan, schedules: list[Schedule]) -> list[OutputFile]:
    from azure.ai.ml.entities import CronTrigger, JobSchedule

    from mlcompile.targets.azureml.layout import header, pipeline_path

    files = []
    for schedule in schedules:
        entity = JobSchedule(
            name=schedule.name,
            description=f"runs {schedule.pipeline} at '{schedule.cron}' ({schedule.timezone})",
            trigger=CronTrigger(expression=schedule.cron, time_zone=IANA_TO_WINDOWS[schedule.timezone]),
            create_job="placeholder",
            tags={**tags(plan), "mlcompile-timezone": schedule.timezone},
        )
        data = dict(entity._to_dict())
        data["create_job"] = f"../{pipeline_path(schedule.pipeline)}"  # the pipeline file of this build
        files.append(OutputFile(f"schedules/{schedule.name}.yml", "azureml.schedule", yaml_bytes(data, "azureml.schedule", header(plan))))
    return files


def render_monitor(plan: Plan) -> list[OutputFile]:
    """Azure ML model monitoring: one data-drift signal over the spec's features, reference =
    the training set the training pipeline registers, production = what the online
    deployment collects (or, batch only, the batch input source). Performance checks, webhook
    alerts and retraining on breach are the monitoring pipeline's job (Azure ML's performance
    signal knows no ranking or AUC metrics and cannot start a pipeline)."""
    from azure.ai.ml import Input
    from azure.ai.ml.constants import MonitorDatasetContext
    from azure.ai.ml.entities import (
        AlertNotification,
        CategoricalDriftMetrics,
        CronTrigger,
        DataDriftMetricThreshold,
        DataDriftSignal,
        MonitorDefinition,
        MonitoringTarget,
        MonitorSchedule,
        NumericalDriftMetrics,
        ProductionData,
        ReferenceData,
        ServerlessSparkCompute,
    )

    from mlcompile.runtime.collect_azureml import MODEL_INPUTS
    from mlcompile.targets.azureml.layout import header
    from mlcompile.targets.azureml.pipelines import TRAINING_DATA_ASSET
    from mlcompile.targets.azureml.serving import collected_data_asset, slots

    monitoring = plan.monitoring
    if monitoring is None or monitoring.drift_method is None or monitoring.drift_threshold is None:
        return []
    schedule = next(s for s in plan.schedules if s.pipeline == plan.monitoring_pipeline.name) if plan.monitoring_pipeline else None
    cron, timezone = (schedule.cron, schedule.timezone) if schedule else ("0 0 * * *", "UTC")
    dtypes = feature_dtypes(plan)
    columns = [feature.split(":", 1)[1] for feature in monitoring.drift_features]
    kinds = {"numerical" if dtypes.get(f) in NUMERIC_DTYPES else "categorical" for f in monitoring.drift_features}
    metrics = DRIFT_METRICS[monitoring.drift_method]
    thresholds: dict[str, Any] = {}
    if "numerical" in kinds:
        numerical: dict[str, Any] = {str(metrics["numerical"]): monitoring.drift_threshold}  # by the metric's name (DRIFT_METRICS)
        thresholds["numerical"] = NumericalDriftMetrics(**numerical)
    if "categorical" in kinds:
        thresholds["categorical"] = CategoricalDriftMetrics(**{str(metrics["categorical"]): monitoring.drift_threshold})
    reference = ReferenceData(
        input_data=Input(type="mltable", path=f"azureml:{TRAINING_DATA_ASSET.format(system=plan.system)}@latest"),
        data_context=MonitorDatasetContext.TRAINING,
    )
    production = None
    target = None
    if plan.online is not None:
        slot = slots(plan.online)[0]
        target = MonitoringTarget(endpoint_deployment_id=f"azureml:{plan.online.name}:{slot}")
        # the model's inputs after the online feature lookup, as the server's collector logs them
        collected = collected_data_asset(plan.online, slot, MODEL_INPUTS)
        production = ProductionData(input_data=Input(type="uri_folder", path=f"azureml:{collected}@latest"), data_context=MonitorDatasetContext.MODEL_INPUTS)
    elif plan.batch is not None:
        # what the batch deployment scores, as the data asset render_production_data writes
        asset = production_data_asset(plan)
        assert asset is not None
        production = ProductionData(input_data=Input(type=asset[2], path=f"azureml:{asset[0]}@latest"), data_context=MonitorDatasetContext.MODEL_INPUTS)
    signal = DataDriftSignal(
        production_data=production,
        reference_data=reference,
        features=columns,
        metric_thresholds=DataDriftMetricThreshold(**thresholds),
        alert_enabled=True,
    )
    emails = sorted({address for alert in monitoring.alerts if alert.get("channel") == "email" for address in alert.get("to", [])})
    entity = MonitorSchedule(
        name=monitor_name(plan),
        description=f"{monitoring.drift_method} drift of {len(columns)} features against the training set, threshold {monitoring.drift_threshold}",
        trigger=CronTrigger(expression=cron, time_zone=IANA_TO_WINDOWS[timezone]),
        create_monitor=MonitorDefinition(
            compute=ServerlessSparkCompute(instance_type=MONITOR_SPARK_INSTANCE, runtime_version=MONITOR_SPARK_RUNTIME),
            monitoring_target=target,
            monitoring_signals={"data-drift": signal},
            alert_notification=AlertNotification(emails=emails) if emails else None,
        ),
        tags={**tags(plan), "mlcompile-timezone": timezone},
    )
    return [OutputFile(f"schedules/{monitor_name(plan)}.yml", "azureml.monitor_schedule", entity_yaml(entity, "azureml.monitor_schedule", header(plan)))]
