"""The pipelines the spec asks for: training (extract, validate, train or tune, evaluate,
gate, register, deploy), batch scoring and monitoring, as steps of the plan."""

from __future__ import annotations

from typing import Any

from mlcompile.plan import nodes
from mlcompile.plan.context import LoweringContext


def training_pipeline(ctx: LoweringContext) -> nodes.Pipeline:
    training = ctx.system.training
    dataset = training.dataset
    ref = nodes.ArtifactRef
    art = nodes.Artifact
    steps = [
        ctx.step(
            "extract-features",
            "extract_features",
            ("training", "dataset"),
            outputs=(art("train", "dataset"), art("test", "dataset")),
            params={
                "features": list(dataset.features),
                "label": dataset.label.model_dump(),
                "split": dataset.split.model_dump(),
            },
        ),
        ctx.step(
            "validate-data",
            "validate_data",
            ("training", "dataset"),
            depends_on=("extract-features",),
            inputs=(ref("train", "extract-features", "train"), ref("test", "extract-features", "test")),
            outputs=(art("report", "report"),),
            params={"label": dataset.label.column},
        ),
    ]
    steps.append(trainer_step(ctx))
    trainer = steps[-1].name
    evaluation = training.evaluation
    # A scikit-learn model is scored by the runtime on the held-out set; a container's
    # model by default is not: the metrics the container computed on that same held-out
    # set (MLCOMPILE_TEST_DATA → MLCOMPILE_METRICS, the `reported` input) are checked and
    # passed on instead, unless metrics_from: runtime scores it through its predict entry point.
    user_container = training.trainer.container is not None
    metrics_from = evaluation.metrics_from or ("reported" if user_container else "runtime")
    steps.append(
        ctx.step(
            "evaluate",
            "evaluate",
            ("training", "evaluation"),
            depends_on=(trainer,),
            inputs=(
                (ref("model", trainer, "model"), ref("test", "extract-features", "test"), ref("reported", trainer, "metrics"))
                if user_container
                else (ref("model", trainer, "model"), ref("test", "extract-features", "test"))
            ),
            outputs=(art("metrics", "metrics"),),
            params={
                "metrics": list(evaluation.metrics),
                "label": dataset.label.column,
                "metrics_from": metrics_from,
            },
        )
    )
    steps.append(
        ctx.step(
            "gate",
            "gate",
            ("training", "evaluation", "gates"),
            depends_on=("evaluate",),
            inputs=(ref("metrics", "evaluate", "metrics"),),
            outputs=(art("decision", "decision"),),
            params={"gates": [g.model_dump(exclude_none=True) for g in evaluation.gates], "model": ctx.system.registry.model},
        )
    )
    registry = ctx.system.registry
    steps.append(
        ctx.step(
            "register",
            "register",
            ("registry",),
            depends_on=("gate",),
            # a container's model folder holds what its trainer wrote: register adds the
            # runtime's description of it and the drift baseline, from the training set
            inputs=(
                ref("model", trainer, "model"),
                ref("metrics", "evaluate", "metrics"),
                *((ref("train", "extract-features", "train"),) if user_container else ()),
            ),
            params={
                "model": registry.model,
                "approval": registry.approval,
                "aliases": list(registry.aliases),
                "tags": dict(sorted(registry.tags.items())),
            },
            run_if="gate",
        )
    )
    online = ctx.system.deployment.online if ctx.system.deployment else None
    if online is not None and registry.approval == "auto":
        steps.append(
            ctx.step(
                "deploy-online",
                "deploy_online",
                ("deployment", "online"),
                depends_on=("register",),
                params={"endpoint": online.endpoint, "model": registry.model},
                run_if="gate",
            )
        )
    return nodes.Pipeline(
        name=f"{ctx.system.metadata.name}-training",
        description=ctx.system.metadata.description or f"training pipeline of {ctx.system.metadata.name}",
        steps=tuple(steps),
    )


def trainer_step(ctx: LoweringContext) -> nodes.Step:
    training = ctx.system.training
    spec = training.resources
    resources = ctx.resources(spec, ("training", "resources"), replicas=spec.replicas)
    kind: nodes.StepKind = "tune" if training.tuning else "train"
    inputs = (
        nodes.ArtifactRef("train", "extract-features", "train"),
        nodes.ArtifactRef("test", "extract-features", "test"),
        nodes.ArtifactRef("report", "validate-data", "report"),
    )
    outputs = (nodes.Artifact("model", "model"), nodes.Artifact("metrics", "metrics"))
    params: dict[str, Any] = {"label": training.dataset.label.column}
    if training.trainer.sklearn is not None:
        params.update(estimator=training.trainer.sklearn.estimator, estimator_params=training.trainer.sklearn.params)
        if ctx.target.estimator_packages:  # the runtime imports estimators of these packages only
            params["estimator_packages"] = list(ctx.target.estimator_packages)
        step = ctx.step(
            kind.replace("_", "-"), kind, ("training", "trainer"), depends_on=("validate-data",),
            inputs=inputs, outputs=outputs, params=params, resources=resources,
        )  # fmt: skip
        return step
    container = training.trainer.container
    assert container is not None
    params["env"] = dict(sorted(container.env.items()))
    if container.predict is not None:
        params["predict"] = container.predict.model_dump()
    return nodes.Step(
        name=kind,
        kind=kind,
        image=container.image,
        command=tuple(container.command),
        args=tuple(container.args),
        resources=resources,
        depends_on=("validate-data",),
        inputs=inputs,
        outputs=outputs,
        params=params,
        run_if=None,
        uses_user_container=True,
        origin=ctx.origin(("training", "trainer", "container")),
    )


def batch_pipeline(ctx: LoweringContext) -> nodes.Pipeline | None:
    batch = ctx.system.deployment.batch if ctx.system.deployment else None
    if batch is None:
        return None
    path = ("deployment", "batch")
    score = ctx.step(
        "score-batch",
        "score_batch",
        path,
        outputs=(nodes.Artifact("scores", "dataset"),),
        params={"source": batch.input.source, "output_uri": batch.output.uri, "model": ctx.system.registry.model},
        resources=ctx.resources(batch.resources, (*path, "resources")),
    )
    return nodes.Pipeline(f"{ctx.system.metadata.name}-batch-scoring", f"batch scoring for {ctx.system.metadata.name}", (score,))


def monitoring_pipeline(ctx: LoweringContext, plan: nodes.Monitoring | None) -> nodes.Pipeline | None:
    monitoring = ctx.system.monitoring
    if monitoring is None or plan is None:
        return None
    steps: list[nodes.Step] = []
    checks: list[str] = []
    if monitoring.drift is not None:
        steps.append(
            ctx.step(
                "check-drift", "check_drift", ("monitoring", "drift"),
                outputs=(nodes.Artifact("drift", "decision"),),
                params={"method": plan.drift_method, "threshold": plan.drift_threshold, "features": list(plan.drift_features), "baseline": monitoring.baseline},
            )
        )  # fmt: skip
        checks.append("check-drift")
    if monitoring.performance is not None:
        performance = monitoring.performance
        steps.append(
            ctx.step(
                "check-performance", "check_performance", ("monitoring", "performance"),
                outputs=(nodes.Artifact("performance", "decision"),),
                params={"metric": performance.metric, "min": performance.min, "ground_truth": performance.ground_truth.model_dump()},
            )
        )  # fmt: skip
        checks.append("check-performance")
    if monitoring.alerts:
        steps.append(
            ctx.step(
                "alert", "alert", ("monitoring", "alerts"), depends_on=tuple(checks),
                params={"alerts": [a.model_dump(mode="json") for a in monitoring.alerts]}, run_if="breach",
            )
        )  # fmt: skip
    if monitoring.on_breach == "retrain":
        steps.append(
            ctx.step(
                "trigger-retraining", "trigger_retraining", ("monitoring", "on_breach"), depends_on=tuple(checks),
                params={"pipeline": f"{ctx.system.metadata.name}-training"}, run_if="breach",
            )
        )  # fmt: skip
    return nodes.Pipeline(f"{ctx.system.metadata.name}-monitoring", f"drift and performance monitoring for {ctx.system.metadata.name}", tuple(steps))
