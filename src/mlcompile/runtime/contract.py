"""How pipelines call mlcompile's steps, and how a user's container trainer is called: the
one contract every target and the runtime share. Kept free of heavy imports, because
targets import it at build time.

Runtime steps run ``python -m mlcompile.runtime <step> --config <json> [--input NAME=URI]…
[--output NAME=URI]…``: `--config` carries everything the step needs from the plan (so a
container needs no other file), inputs and outputs are artifact URIs (local paths, gs://,
s3://, abfss://).

A container trainer reads its inputs and writes its outputs through environment variables
(`CONTAINER_ENV`), the way SageMaker and Vertex AI containers already work."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from mlcompile.plan.nodes import Plan, Step

RUNTIME_MODULE = "mlcompile.runtime"

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
# Steps that read a model folder (what the trainer wrote, or a registered version).
_READS_MODEL = frozenset({"train", "tune", "evaluate", "register", "deploy_online", "score_batch", "check_drift", "check_performance"})

# Steps whose config includes the feature store section (they read sources).
_READS_FEATURES = frozenset({"extract_features", "score_batch", "check_drift", "check_performance", "materialize", "materialize_features"})


def step_config(plan: Plan, step: Step) -> dict[str, Any]:
    """Everything a runtime step needs from the plan, as plain JSON data."""
    from mlcompile.plan.serialize import plan_to_data

    config: dict[str, Any] = {
        "system": plan.system,
        "step": step.name,
        "kind": step.kind,
        "params": step.params,
        "spec_sha256": plan.spec_sha256,
        "registry": {"model": plan.registry.model, "approval": plan.registry.approval, "aliases": list(plan.registry.aliases)},
    }
    if step.kind in _READS_FEATURES:
        features = plan_to_data(plan)["features"]
        for item in (*features["sources"], *features["views"]):
            item.pop("origin", None)  # where the spec said it: nothing a running step needs
        config["features"] = features
    if step.kind == "gate":
        config["gates"] = [{"metric": g.metric, "comparison": g.comparison, "threshold": g.threshold} for g in plan.gates]
    if step.kind == "tune" and plan.tuning is not None:
        config["tuning"] = plan_to_data(plan)["tuning"]
        config["tuning"]["additional_metrics"] = additional_metrics(plan)
    if step.kind in _READS_MODEL:
        described = container_model(plan)
        if described is not None:
            config["model"] = described
    return config


def container_model(plan: Plan) -> dict[str, Any] | None:
    """What the runtime knows of a model a user's container trained (None for mlcompile's own
    models, which describe themselves): image, predict entry point, label, and the features and
    entity keys of the training set, named as extract-features names its columns."""
    from mlcompile.plan.serialize import plan_to_data
    from mlcompile.runtime.features import FeatureStore

    trainer = next((s for s in plan.training.steps if s.uses_user_container), None)
    if trainer is None:
        return None
    dataset = plan.training.step("extract-features").params
    store = FeatureStore(plan_to_data(plan)["features"])
    specs = store.specs(list(dataset["features"]))
    return {
        "format": FORMAT_CONTAINER,
        "system": plan.system,
        "image": trainer.image,
        "predict": trainer.params.get("predict"),
        "label": dataset["label"]["column"],
        "features": [{"ref": s.ref, "view": s.view, "column": s.column, "dtype": s.dtype} for s in specs],
        "keys": store.keys_of(specs),
        "spec_sha256": plan.spec_sha256,
    }


def additional_metrics(plan: Plan) -> list[str]:
    """The evaluation metrics besides the tuning objective: each trial reports them too, and
    the platform's tuner records them per trial (Katib additionalMetricNames), so the best
    trial's secondary scores (e.g. roc_auc beside f1) reach the task's metrics output."""
    if plan.tuning is None:
        return []
    evaluate = next((s for s in plan.training.steps if s.kind == "evaluate"), None)
    metrics = evaluate.params.get("metrics", []) if evaluate is not None else []
    return [m for m in metrics if m != plan.tuning.metric]


def config_json(plan: Plan, step: Step) -> str:
    """`step_config` as compact, deterministic JSON (one command-line argument)."""
    return json.dumps(step_config(plan, step), sort_keys=True, separators=(",", ":"))


def runtime_args(plan: Plan, step: Step, inputs: Mapping[str, str], outputs: Mapping[str, str], config: Mapping[str, Any] | None = None) -> list[str]:
    """Arguments after `python -m mlcompile.runtime <step>`; inputs/outputs map artifact
    names to URIs or to the platform's placeholders for them; `config` replaces the step's
    config (a target that adds platform sections to it)."""
    args = ["--config", config_json(plan, step) if config is None else json.dumps(config, sort_keys=True, separators=(",", ":"))]
    for name in sorted(inputs):
        args += ["--input", f"{name}={inputs[name]}"]
    for name in sorted(outputs):
        args += ["--output", f"{name}={outputs[name]}"]
    return args


def serving_env(plan: Plan) -> dict[str, str]:
    """The serving container's MLCOMPILE_MODEL_MANIFEST: the description of a container-trained
    model, where the platform serves the folder its trainer wrote (a Vertex AI model's
    artifactUri, a SageMaker model.tar.gz); compact (features as [ref, column, dtype]), since an
    environment value is short on some platforms (SageMaker: 1,024 characters). Empty for
    mlcompile's own models."""
    described = container_model(plan)
    if described is None:
        return {}
    compact = {**described, "features": [[f["ref"], f["column"], f["dtype"]] for f in described["features"]]}
    compact.pop("spec_sha256", None)
    return {ENV_MODEL_MANIFEST: json.dumps(compact, sort_keys=True, separators=(",", ":"))}
