"""trigger-retraining: start the training pipeline — on a monitoring breach, when the watched
source has new rows (the new-data sensor), or on a CronJob's schedule (kubeflow).

Under `mlcompile run` (no `platform_run` in the config) the request is recorded in the workdir
and the executor starts the pipeline after the step. In a compiled pipeline the step submits
the run itself, through the platform's API (`submitter`, mlcompile.runtime.submit), unless a run of
the training pipeline is still active; the submitted run id is the step's result and its
`retraining` output (`{"submitted": id or null, …}`).

A step whose config names its own pipeline (`platform_run.sensor`: SageMaker's event-started
new-data sensor, one execution per S3 object, and its monitoring pipeline) is debounced first:
while an earlier execution of that pipeline runs, a later one submits nothing.
The new-data sensor keeps a watermark of its source (newest timestamp and row count) in the
pipeline root: it submits only when the source moved past it, and advances it only after a
successful submit, so a skipped or failed tick is retried by the next one. Its first tick
records the watermark (the build's first training run reads the data there is)."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from mlcompile.runtime.submit import Submitter

from mlcompile.runtime.io import DataError, exists, read_json, write_json
from mlcompile.runtime.monitoring import breaches, record


def source_watermark(config: dict[str, Any], source: str) -> dict[str, Any]:
    """What the sensor compares: the source's newest timestamp and its row count."""
    from mlcompile.runtime.features import FeatureStore

    store = FeatureStore(config["features"])
    frame = store.source(source)
    ts = store.sources[source]["timestamp_field"]
    newest = frame[ts].max() if len(frame) else None
    return {"source": source, "uri": store.sources[source]["uri"], "rows": int(len(frame)), "max_timestamp": None if newest is None else newest.isoformat()}


def has_new_rows(current: dict[str, Any], seen: dict[str, Any]) -> bool:
    """Rows newer than the watermark's newest timestamp, or more rows than it counted (late
    rows with old timestamps are new data too)."""
    import pandas as pd

    if current["max_timestamp"] is not None and (
        seen.get("max_timestamp") is None or pd.Timestamp(current["max_timestamp"]) > pd.Timestamp(seen["max_timestamp"])
    ):
        return True
    return int(current["rows"]) > int(seen.get("rows") or 0)


def trigger_retraining(config: dict[str, Any], inputs: dict[str, str], outputs: dict[str, str]) -> dict[str, Any]:
    params = config["params"]
    pipeline, when = params["pipeline"], params.get("when", "breach")
    reasons = breaches(inputs)
    result: dict[str, Any] = {"pipeline": pipeline, "when": when, "reasons": reasons, "submitted": None}
    run = config.get("platform_run")
    if run is None:
        result["status"] = "requested (the executor starts the pipeline)"
    else:
        result.update(_submit(config, run, when))
    result["log"] = record("triggers", {"time": time.time(), **result})
    print(f"{pipeline}: {result['status']}" + (f" ({'; '.join(reasons)})" if reasons else ""))
    if "retraining" in outputs:
        write_json(outputs["retraining"], {k: v for k, v in result.items() if k != "log"})
    return result


def _earlier_sensor(config: dict[str, Any]) -> str | None:
    from mlcompile.runtime.submit import SubmitFailed

    try:
        return getattr(submitter(config), "earlier_sensor", lambda: None)()
    except SubmitFailed as exc:
        raise DataError(str(exc)) from exc


def _submit(config: dict[str, Any], run: dict[str, Any], when: str) -> dict[str, Any]:
    from mlcompile.runtime.submit import SubmitFailed

    done: dict[str, Any] = {}
    current = None
    earlier = _earlier_sensor(config) if run.get("sensor") else None
    if earlier is not None:  # a burst of object events: the oldest sensor run decides
        return {"debounced": earlier, "status": f"not submitted: sensor run {earlier} started earlier and decides (debounced)"}
    if when == "new_data":
        current = source_watermark(config, config["params"]["source"])
        seen = read_json(run["watermark"]) if exists(run["watermark"]) else None
        done["watermark"] = {"uri": run["watermark"], "seen": seen, "current": current}
        if seen is None:
            write_json(run["watermark"], current)
            return {
                **done,
                "status": f"first look at source {current['source']}: watermark recorded ({current['rows']} rows, newest {current['max_timestamp']}), nothing submitted",
            }
        if not has_new_rows(current, seen):
            return {**done, "status": f"no new rows in source {current['source']} since {seen.get('max_timestamp')}: nothing submitted"}
    try:
        platform = submitter(config)
        active = platform.active_run()
        if active is not None:
            return {**done, "active": active, "status": f"not submitted: run {active} of the pipeline is still active (the watermark stays)"}
        run_id = platform.submit(when.replace("_", "-"))
    except SubmitFailed as exc:
        raise DataError(str(exc)) from exc
    if current is not None:
        write_json(run["watermark"], current)  # only now: a failed submit is retried next tick
    return {**done, "submitted": run_id, "status": f"submitted run {run_id}"}


def submitter(config: dict[str, Any]) -> Submitter:
    """What starts a run on the platform the `platform_run` section names."""
    from mlcompile.runtime.submit import KfpRuns, SubmitFailed, VertexPipelineJobs

    run = config["platform_run"]
    if run["kind"] == "kfp.run":
        return KfpRuns(config)
    if run["kind"] == "vertex.pipeline_job":
        return VertexPipelineJobs(config)
    if run["kind"] == "sagemaker.pipeline_execution":
        from mlcompile.runtime.pipelines_sagemaker import SageMakerExecutions

        return SageMakerExecutions(config)
    if run["kind"] == "azureml.pipeline_job":
        from mlcompile.runtime.retraining_azureml import AzureMLPipelineJobs

        return AzureMLPipelineJobs(config)
    raise SubmitFailed(f"unknown platform_run kind {run['kind']!r}")
