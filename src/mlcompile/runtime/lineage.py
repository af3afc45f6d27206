"""Lineage a Vertex AI model upload records, from inside the pipeline task that uploads it:
the run, profile and commit as labels on the model version, and the task's `google.VertexModel`
output artifact (the schema google_cloud_pipeline_components' ModelUploadOp writes), which
links the pipeline run to the model version in Vertex ML Metadata."""

from __future__ import annotations

import json
import os
import re
from typing import Any

from mlcompile.runtime.contract import ENV_PIPELINE_RUN

LABEL_VALUE = re.compile(r"[^a-z0-9_-]")


def run_labels(config: dict[str, Any]) -> dict[str, str]:
    """GCP labels (lowercase letters, digits, `-`, `_`; at most 63 characters) for the run
    that uploads, the profile's sha256 and the git commit of the build."""
    lineage = config.get("lineage") or {}
    values = {
        "mlcompile-pipeline-run": os.environ.get(ENV_PIPELINE_RUN, ""),
        "mlcompile-profile-sha256": lineage.get("profile_sha256") or "",
        "mlcompile-git-commit": lineage.get("git_commit") or "",
    }
    return {key: LABEL_VALUE.sub("-", value.lower())[:63] for key, value in values.items() if value}


def write_vertex_model(executor_output: str, output: str, model: str, version: str, api_endpoint: str) -> None:
    """The task's ExecutorOutput naming the uploaded version as its google.VertexModel output
    (`metadata.resourceName` = `projects/…/models/ID@VERSION`; uri = its REST URL)."""
    resource = f"{model}@{version}"
    host = api_endpoint if "://" in api_endpoint else f"https://{api_endpoint}"
    artifact = {"uri": f"{host.rstrip('/')}/v1/{resource}", "metadata": {"resourceName": resource}}
    os.makedirs(os.path.dirname(executor_output) or ".", exist_ok=True)
    with open(executor_output, "w", encoding="utf-8") as handle:
        json.dump({"artifacts": {output: {"artifacts": [artifact]}}}, handle, sort_keys=True)
