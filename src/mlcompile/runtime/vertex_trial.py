"""A Vertex AI tuning trial of a runtime step, under Vertex AI's contract for trial containers:

- the study's values arrive as extra arguments `--NAME=VALUE` (one per parameter, after the
  container's own arguments);
- each trial has its own AIP_MODEL_DIR (`<baseOutputDirectory>/<trial id>/model`): the
  model goes there and the metrics file beside it (`<trial id>/metrics.json`), where the
  launcher reads the best trial's after the study;
- the objective is reported the way cloudml-hypertune does, which is where Vertex AI reads
  it: one JSON object per line in $CLOUD_ML_HP_METRIC_FILE (default
  /tmp/hypertune/output.metrics), `{"<metric>": "<value>", "global_step": "0", "timestamp":
  <epoch seconds>, "trial": "<CLOUD_ML_TRIAL_ID>"}`, values as strings
  (https://github.com/GoogleCloudPlatform/cloudml-hypertune, hypertune/hypertune.py).
  The library is used when installed; otherwise the same lines are written here."""

from __future__ import annotations

import json
import os
import posixpath
import time
from typing import Any

ENV_MODEL_DIR = "AIP_MODEL_DIR"
ENV_TRIAL_ID = "CLOUD_ML_TRIAL_ID"
ENV_METRIC_FILE = "CLOUD_ML_HP_METRIC_FILE"
DEFAULT_METRIC_FILE = "/tmp/hypertune/output.metrics"  # noqa: S108 - cloudml-hypertune's own default
METRICS_FILE = "metrics.json"


def trial_values(extra: list[str], config: dict[str, Any]) -> dict[str, str]:
    """`--NAME=VALUE` arguments naming the step's search parameters → {NAME: VALUE}."""
    known = {p["name"] for p in (config.get("tuning") or {}).get("params", [])}
    values: dict[str, str] = {}
    for argument in extra:
        name, sep, value = argument.removeprefix("--").partition("=")
        if not argument.startswith("--") or not sep or name not in known:
            expected = f"--NAME=VALUE for a search parameter ({', '.join(sorted(known))})" if known else "no extra arguments: this step has no search space"
            raise ValueError(f"unrecognized argument {argument!r}: expected {expected}")
        values[name] = value
    return values


def trial_outputs(outputs: dict[str, str]) -> dict[str, str]:
    """The trial's own model folder and metrics file (AIP_MODEL_DIR and beside it), unless
    the command line named them."""
    model_dir = os.environ.get(ENV_MODEL_DIR)
    if not model_dir:
        return outputs
    folder = posixpath.dirname(model_dir.rstrip("/"))
    return {"model": model_dir, "metrics": posixpath.join(folder, METRICS_FILE), **outputs}


def report_objective(config: dict[str, Any], result: dict[str, Any]) -> None:
    metric = (config.get("tuning") or {}).get("metric")
    if not metric or metric not in result:
        return
    try:
        import hypertune  # cloudml-hypertune, when the image has it
    except ImportError:
        _write_metric_line(metric, float(result[metric]))
        return
    hypertune.HyperTune().report_hyperparameter_tuning_metric(hyperparameter_metric_tag=metric, metric_value=float(result[metric]), global_step=0)


def _write_metric_line(metric: str, value: float) -> None:
    path = os.environ.get(ENV_METRIC_FILE, DEFAULT_METRIC_FILE)
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    line = {"timestamp": time.time(), "trial": str(os.environ.get(ENV_TRIAL_ID, 0)), metric: str(value), "global_step": "0"}
    with open(path, "a", encoding="utf-8") as handle:
        handle.write(json.dumps(line, sort_keys=True) + "\n")
