"""What a runtime step gets from the plan: its `--config` (everything the step needs, so a
container needs no other file), its command-line arguments, and the description of a model a
user's container trained. The names both sides agree on are in `mlcompile.runtime.contract`."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from mlcompile.plan.nodes import Plan, Step
from mlcompile.runtime.contract import ENV_MODEL_MANIFEST, FORMAT_CONTAINER

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
