"""How pipelines call mlcompile's steps, and how a user's container trainer is called: the
one contract the compiler (targets, at build time) and the runtime (inside the pipelines'
containers) share. It imports the standard library only: the runtime imports nothing else of
mlcompile (tests/test_runtime_boundary.py), so that renaming a compiler module cannot break a
deployed pipeline. What a step gets from the plan is written by `mlcompile.plan.step_config`.

Runtime steps run ``python -m mlcompile.runtime <step> --config <json> [--input NAME=URI]…
[--output NAME=URI]…``: `--config` carries everything the step needs from the plan (so a
container needs no other file), inputs and outputs are artifact URIs (local paths, gs://,
s3://, abfss://).

A container trainer reads its inputs and writes its outputs through environment variables
(`CONTAINER_ENV`), the way SageMaker and Vertex AI containers already work."""

from __future__ import annotations

import re
from typing import Any

# The modules a generated pipeline runs (`python -m <module> …`): written into built files,
# so each must stay where it is named here.
RUNTIME_MODULE = "mlcompile.runtime"  # a runtime step
RUN_STEP_MODULE = "mlcompile.runtime.run_step"  # a runtime step whose decision feeds KFP's dsl.If
LAUNCH_MODULE = "mlcompile.runtime.launch"  # a step that runs as a platform job (KFP targets)
ENTRY_MODULES = (RUNTIME_MODULE, RUN_STEP_MODULE, LAUNCH_MODULE)


def runtime_command(step: str) -> tuple[str, str, str, str]:
    """The container command that runs runtime step `step` (a step name: `train`, `serve`)."""
    return ("python", "-m", RUNTIME_MODULE, step)


# Environment of a container trainer: where to read and write.
ENV_TRAIN_DATA = "MLCOMPILE_TRAIN_DATA"  # URI of the training set (a parquet file or folder)
ENV_TEST_DATA = "MLCOMPILE_TEST_DATA"  # URI of the held-out set the reported metrics are computed on
ENV_VALIDATION_REPORT = "MLCOMPILE_VALIDATION_REPORT"  # URI of the data validation report (json)
ENV_MODEL_DIR = "MLCOMPILE_MODEL_DIR"  # URI of the folder to write the model into
ENV_METRICS = "MLCOMPILE_METRICS"  # URI of a json file {metric: value} to write
ENV_LABEL = "MLCOMPILE_LABEL"  # name of the label column
ENV_HYPERPARAMETERS = "MLCOMPILE_HYPERPARAMETERS"  # json object of this trial's parameters (tuning)
CONTAINER_ENV = (ENV_TRAIN_DATA, ENV_TEST_DATA, ENV_VALIDATION_REPORT, ENV_MODEL_DIR, ENV_METRICS, ENV_LABEL, ENV_HYPERPARAMETERS)

# The pipeline run a step belongs to: lineage (the registry tags each version with it). The
# executor sets it locally; in a compiled pipeline the task passes `--pipeline-run` with the
# platform's run-id placeholder and the runtime sets it from there.
ENV_PIPELINE_RUN = "MLCOMPILE_PIPELINE_RUN"

# The line the alert step logs on a breach (`<marker> system=<system>: <message>`): Vertex AI
# sends a pipeline task's output to Cloud Logging, where the build's log-match alert policy
# looks for it and mails the spec's email recipients.
BREACH_LOG_MARKER = "mlcompile-alert monitoring-breach"
# The alert it posts to a Kubeflow cluster's Alertmanager, which the build's AlertmanagerConfig
# routes to the email recipients (labels: alertname, mlcompile_system, namespace).
BREACH_ALERT_NAME = "MlcompileMonitoringBreach"

# A container-trained model is described by the runtime, not by its trainer: the plan knows
# its features, keys, label and predict entry point. Steps that read a model get that
# description in their config (`model`); a serving container, in this variable (json).
ENV_MODEL_MANIFEST = "MLCOMPILE_MODEL_MANIFEST"
FORMAT_CONTAINER = "mlcompile.container/1"

# A Vertex AI API endpoint to call instead of the region's (a Private Service Connect endpoint,
# a stand-in): read by deploy and by every runtime step that calls Vertex AI.
ENV_VERTEX_API_ENDPOINT = "MLCOMPILE_VERTEX_API_ENDPOINT"

# The launcher pod's identity: downward-API variables the kubeflow target sets on a launch
# task, so that the job it creates is owned by (and collected with) the pod.
ENV_POD_NAME = "MLCOMPILE_POD_NAME"
ENV_POD_UID = "MLCOMPILE_POD_UID"

# ---------------------------------------------------------------------- secrets
# A spec names a secret `secret://NAME`; a step finds it in MLCOMPILE_SECRET_<NAME>, which
# holds the value or a locator of the platform's secret store (one of LOCATOR_SCHEMES) that
# the runtime reads when the step runs (mlcompile.runtime.secrets).
SECRET_SCHEME = "secret://"
SECRET_ENV_PREFIX = "MLCOMPILE_SECRET_"
LOCATOR_SCHEMES = ("secretmanager:", "secretsmanager:", "keyvault:")


def secret_name(value: Any) -> str | None:
    """`secret://NAME` → NAME (None for anything else)."""
    return value[len(SECRET_SCHEME) :] if isinstance(value, str) and value.startswith(SECRET_SCHEME) else None


def env_name(name: str) -> str:
    """The environment variable that carries secret NAME (or its locator) to a step."""
    return SECRET_ENV_PREFIX + re.sub(r"[^A-Z0-9]", "_", name.upper())


def secret_manager_locator(project: str, name: str) -> str:
    """The locator of secret NAME's latest version in Google Secret Manager."""
    return f"secretmanager:projects/{project}/secrets/{name}/versions/latest"


# ---------------------------------------------------------------------- estimators
# Packages whose classes a scikit-learn trainer may name without the profile allowing them:
# scikit-learn and the two boosting libraries with a scikit-learn API. A profile adds its own
# (`estimator_packages`); anything else (`subprocess.call`, `os.system`) is refused, by
# validate and again by the runtime before it imports anything.
DEFAULT_ESTIMATOR_PACKAGES = ("sklearn", "xgboost", "lightgbm")
# Losses a spec may name as themselves (lower is better) → (task, scikit-learn's scorer)
LOSS_ALIASES: dict[str, tuple[str, str]] = {
    "log_loss": ("classification", "neg_log_loss"),
    "mae": ("regression", "neg_mean_absolute_error"),
    "mape": ("regression", "neg_mean_absolute_percentage_error"),
    "mse": ("regression", "neg_mean_squared_error"),
    "rmse": ("regression", "neg_root_mean_squared_error"),
}


def in_packages(path: str, packages: tuple[str, ...] | list[str]) -> bool:
    return any(path == package or path.startswith(package + ".") for package in packages)


# ---------------------------------------------------------------------- errors


class MLCompileError(Exception):
    """Root of every error mlcompile raises deliberately; the CLI turns these into exit codes."""

    exit_code = 2


class UsageError(MLCompileError):
    """A command line or setting that cannot be carried out (missing file, bad option
    combination, an MLCOMPILE_* variable that is not a number)."""
