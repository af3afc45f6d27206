"""Starting a SageMaker pipeline from inside one: the trigger-retraining step of the new-data
sensor and of the monitoring pipeline (on a breach) — `platform_run` kind
`sagemaker.pipeline_execution` of its config, rendered by the sagemaker target —, through
boto3's StartPipelineExecution.

Debounced: S3 sends one event per object, and each starts the sensor pipeline, so a burst of
files starts a burst of sensor executions. Only the oldest execution still running of the
step's own pipeline (`sensor`) decides; a later one that finds it running stops there (its
files are that one's new rows, or the next event's; overlapping monitoring executions saw the
same endpoint). The decider starts training only when no training execution is running (and,
for new data, the watermark moved; it advances the watermark after the start: retraining.py)."""

from __future__ import annotations

import os
from typing import Any

from mlcompile.runtime.contract import ENV_PIPELINE_RUN
from mlcompile.runtime.registry_sagemaker import sagemaker_client

ACTIVE = frozenset({"Executing", "Stopping"})


class SageMakerExecutions:
    def __init__(self, config: dict[str, Any]):
        self.run = config["platform_run"]
        self.client = sagemaker_client(config["platform"])

    def _executing(self, pipeline: str) -> list[dict[str, Any]]:
        listed = self.client.list_pipeline_executions(PipelineName=pipeline, SortBy="CreationTime", SortOrder="Ascending", MaxResults=100)
        running = [e for e in listed.get("PipelineExecutionSummaries", []) if e.get("PipelineExecutionStatus") in ACTIVE]
        return sorted(running, key=lambda e: e["StartTime"])  # oldest first, whatever order the answer had

    def earlier_sensor(self) -> str | None:
        """An execution of this sensor pipeline that started before this one and still runs."""
        sensor, mine = self.run.get("sensor"), os.environ.get(ENV_PIPELINE_RUN)
        if not sensor or not mine:
            return None
        arns = [str(e["PipelineExecutionArn"]) for e in self._executing(sensor)]
        earlier = arns[: arns.index(mine)] if mine in arns else arns
        return earlier[0] if earlier else None

    def active_run(self) -> str | None:
        running = self._executing(self.run["pipeline"])
        return str(running[0]["PipelineExecutionArn"]) if running else None

    def submit(self, why: str) -> str:
        from mlcompile.runtime.submit import run_name

        started = self.client.start_pipeline_execution(
            PipelineName=self.run["pipeline"], PipelineExecutionDisplayName=run_name(self.run["pipeline"], why, 82).rstrip("-"),
            PipelineExecutionDescription=f"started by mlcompile's trigger-retraining ({why})",
        )  # fmt: skip
        return str(started["PipelineExecutionArn"])
