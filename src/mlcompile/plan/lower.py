"""Lowering: a validated system spec + a target profile → the platform-neutral Plan.

This is the only place that interprets the spec's meaning (which steps exist, in what
order, on what machines); targets translate the result and nothing else."""

from __future__ import annotations

from typing import Any

from mlcompile import __version__
from mlcompile.diagnostics import Diagnostic, JsonPath, errors_in, format_json_path
from mlcompile.errors import SpecError
from mlcompile.plan import nodes
from mlcompile.spec import models
from mlcompile.spec.resolve import Profile, ResolvedSystem
from mlcompile.spec.types import duration_seconds, memory_bytes, memory_gib

DEFAULT_RUNTIME_IMAGE = f"ghcr.io/mlcompile/mlcompile-runtime:{__version__}"
RUNTIME_COMMAND = ("python", "-m", "mlcompile.runtime")
# mlcompile's own steps (feature extraction, validation, evaluation, …) are light: one
# modest machine each, whatever the trainer asks for.
STANDARD_STEP_CPU = 2.0
STANDARD_STEP_MEMORY = "8Gi"
STANDARD_STEP_TIMEOUT = 3600
GPU_PRODUCT_LABEL = "nvidia.com/gpu.product"  # GPU Feature Discovery's, on generic clusters


class _Lowering:
    def __init__(self, resolved: ResolvedSystem, profile: Profile, git_commit: str | None):
        self.git_commit = git_commit
        self.system = resolved.system
        self.source_map = resolved.document.source_map
        self.profile = profile
        self.target = profile.target
        self.platform = self.target.platform
        # what lowering asks of the platform: the catalog section its machines come from, and
        # whether it runs on this machine (None: a platform that is not installed)
        from mlcompile.targets.registry import platform_named

        self.platform_class = platform_named(self.platform)
        self.settings = self.target.platform_settings()
        self.cluster = self.settings.get("cluster", "generic")
        self.runtime_image = self.target.images.runtime if self.target.images else DEFAULT_RUNTIME_IMAGE
        self.spec_sha256 = resolved.document.sha256
        self.diagnostics: list[Diagnostic] = []
        self._machines: dict[tuple[Any, ...], nodes.Machine | None] = {}

    # ------------------------------------------------------------------ helpers
    def origin(self, path: JsonPath) -> nodes.Origin:
        line, col = self.source_map.locate(path)
        return nodes.Origin(self.source_map.file, line, col, format_json_path(path))

    def diagnostic(self, path: JsonPath, message: str, hint: str | None = None, severity: str = "error") -> None:
        self.diagnostics.append(self.source_map.diagnostic(path, message, hint=hint, severity=severity))

    def resources(self, spec: models.ServingResources | None, path: JsonPath, *, replicas: int = 1) -> nodes.Resources:
        if spec is None:
            cpu, memory, accelerator, count, spot, timeout = STANDARD_STEP_CPU, STANDARD_STEP_MEMORY, None, 0, False, STANDARD_STEP_TIMEOUT
        else:
            cpu, memory, spot = spec.cpu, spec.memory, spec.spot
            accelerator = spec.accelerator.type if spec.accelerator else None
            count = spec.accelerator.count if spec.accelerator else 0
            timeout = duration_seconds(spec.timeout) if spec.timeout else None
        machine = self.machine(accelerator, count, cpu, memory, path)
        if machine is not None and accelerator:
            # one count from here on: what the catalog resolved (a TPU slice's chips, the
            # machine's GPUs), which the lowering warned about when it differs from the ask
            count = machine.accelerator_count
        if self.platform_class is not None and self.platform_class.runs_on_this_machine and spec is not None:
            self._local_warnings(path, accelerator, replicas, spot)
        return nodes.Resources(
            cpu=float(cpu),
            memory=memory,
            memory_bytes=memory_bytes(memory),
            accelerator=accelerator,
            accelerator_count=count,
            replicas=replicas,
            spot=spot,
            timeout_seconds=timeout,
            machine=machine,
            origin=self.origin(path),
        )

    def _local_warnings(self, path: JsonPath, accelerator: str | None, replicas: int, spot: bool) -> None:
        where = f"profile '{self.profile.name}' runs on this machine"
        if accelerator:
            self.diagnostic((*path, "accelerator"), f"accelerator {accelerator} is not applied: {where}", severity="warning")
        if replicas > 1:
            self.diagnostic((*path, "replicas"), f"{replicas} replicas are not applied: {where}, as one process", severity="warning")
        if spot:
            self.diagnostic((*path, "spot"), f"spot capacity is not applied: {where}", severity="warning")

    def machine(self, accelerator: str | None, count: int, cpu: float, memory: str, path: JsonPath) -> nodes.Machine | None:
        from mlcompile.catalog import CatalogError, resolve_machine

        catalog = self.platform_class.machine_catalog if self.platform_class is not None else None
        if catalog is None:
            return None  # a platform without catalogued machines (local, most third-party ones)
        key = (accelerator, count, cpu, memory)
        if key in self._machines:
            return self._machines[key]
        try:
            resolution = resolve_machine(catalog, accelerator=accelerator, count=max(count, 1), cpu=cpu, memory_gib=memory_gib(memory), cluster=self.cluster)
        except CatalogError as exc:
            at = (*path, "accelerator", "type") if accelerator else path
            self.diagnostic(at, f"{exc.message} (profile '{self.profile.name}')", exc.hint)
            self._machines[key] = None
            return None
        for warning in resolution.warnings:
            self.diagnostic((*path, "accelerator") if accelerator else path, warning, severity="warning")
        found = resolution.machine
        selector = dict(found.node_selector)
        if GPU_PRODUCT_LABEL in selector and accelerator in self.settings.get("gpu_products", {}):
            selector[GPU_PRODUCT_LABEL] = self.settings["gpu_products"][accelerator]  # this cluster's part (profile)
        machine = nodes.Machine(
            name=found.name,
            accelerator=found.accelerator,
            accelerator_platform_name=found.accelerator_platform_name,
            accelerator_count=found.accelerator_count,
            vcpus=found.vcpus,
            memory_gib=found.memory_gib,
            node_selector=selector,
            tolerations=[dict(t) for t in found.tolerations],
        )
        self._machines[key] = machine
        return machine

    def step(
        self,
        name: str,
        kind: nodes.StepKind,
        path: JsonPath,
        *,
        depends_on: tuple[str, ...] = (),
        inputs: tuple[nodes.ArtifactRef, ...] = (),
        outputs: tuple[nodes.Artifact, ...] = (),
        params: dict[str, Any] | None = None,
        resources: nodes.Resources | None = None,
        run_if: str | None = None,
    ) -> nodes.Step:
        return nodes.Step(
            name=name,
            kind=kind,
            image=self.runtime_image,
            command=(*RUNTIME_COMMAND, name),
            args=(),
            resources=resources or self.standard,
            depends_on=depends_on,
            inputs=inputs,
            outputs=outputs,
            params=params or {},
            run_if=run_if,
            uses_user_container=False,
            origin=self.origin(path),
        )

    # ------------------------------------------------------------------ sections
    def lower(self) -> nodes.Plan:
        system = self.system
        self.standard = self.resources(None, ())
        training = self.training_pipeline()
        monitoring = self.monitoring()
        plan = nodes.Plan(
            plan_version=nodes.PLAN_VERSION,
            mlcompile_version=__version__,
            system=system.metadata.name,
            description=system.metadata.description,
            owner=system.metadata.owner,
            labels=dict(sorted(system.metadata.labels.items())),
            spec_sha256=self.spec_sha256,
            profile=self.profile.name,
            platform=self.platform,
            platform_settings=self.settings,
            runtime_image=self.runtime_image,
            features=self.feature_store(),
            training=training,
            tuning=self.tuning(),
            gates=self.gates(),
            registry=self.registry(),
            online=self.online(),
            batch=self.batch_pipeline(),
            monitoring=monitoring,
            monitoring_pipeline=self.monitoring_pipeline(monitoring),
            schedules=self.schedules(),
            triggers=self.triggers(),
            lineage=nodes.Lineage(system.metadata.name, self.spec_sha256, self.profile.document.sha256, self.git_commit),
        )
        return plan

    def feature_store(self) -> nodes.FeatureStore:
        features = self.system.features
        join_keys = {e.name: tuple(e.join_keys) for e in features.entities}
        return nodes.FeatureStore(
            entities=tuple(nodes.Entity(e.name, tuple(e.join_keys)) for e in features.entities),
            sources=tuple(
                nodes.DataSource(s.name, s.uri, s.format, s.timestamp_field, self.origin(("features", "sources", index, "uri")))
                for index, s in enumerate(features.sources)
            ),
            views=tuple(
                nodes.FeatureView(
                    name=v.name,
                    entities=tuple(v.entities),
                    join_keys=tuple(k for e in v.entities for k in join_keys[e]),
                    source=v.source,
                    ttl_seconds=duration_seconds(v.ttl),
                    online=v.online,
                    features=tuple(nodes.FeatureColumn(f.name, f.dtype) for f in v.features),
                    origin=self.origin(("features", "views", index)),
                    refresh_cron=nodes.refresh_cron_for(duration_seconds(v.ttl)) if v.online else None,
                )
                for index, v in enumerate(features.views)
            ),
        )

    def training_pipeline(self) -> nodes.Pipeline:
        training = self.system.training
        dataset = training.dataset
        ref = nodes.ArtifactRef
        art = nodes.Artifact
        steps = [
            self.step(
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
            self.step(
                "validate-data",
                "validate_data",
                ("training", "dataset"),
                depends_on=("extract-features",),
                inputs=(ref("train", "extract-features", "train"), ref("test", "extract-features", "test")),
                outputs=(art("report", "report"),),
                params={"label": dataset.label.column},
            ),
        ]
        steps.append(self.trainer_step())
        trainer = steps[-1].name
        evaluation = training.evaluation
        # A scikit-learn model is scored by the runtime on the held-out set; a container's
        # model by default is not: the metrics the container computed on that same held-out
        # set (MLCOMPILE_TEST_DATA → MLCOMPILE_METRICS, the `reported` input) are checked and
        # passed on instead, unless metrics_from: runtime scores it through its predict entry point.
        user_container = training.trainer.container is not None
        metrics_from = evaluation.metrics_from or ("reported" if user_container else "runtime")
        steps.append(
            self.step(
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
            self.step(
                "gate",
                "gate",
                ("training", "evaluation", "gates"),
                depends_on=("evaluate",),
                inputs=(ref("metrics", "evaluate", "metrics"),),
                outputs=(art("decision", "decision"),),
                params={"gates": [g.model_dump(exclude_none=True) for g in evaluation.gates], "model": self.system.registry.model},
            )
        )
        registry = self.system.registry
        steps.append(
            self.step(
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
        online = self.system.deployment.online if self.system.deployment else None
        if online is not None and registry.approval == "auto":
            steps.append(
                self.step(
                    "deploy-online",
                    "deploy_online",
                    ("deployment", "online"),
                    depends_on=("register",),
                    params={"endpoint": online.endpoint, "model": registry.model},
                    run_if="gate",
                )
            )
        return nodes.Pipeline(
            name=f"{self.system.metadata.name}-training",
            description=self.system.metadata.description or f"training pipeline of {self.system.metadata.name}",
            steps=tuple(steps),
        )

    def trainer_step(self) -> nodes.Step:
        training = self.system.training
        spec = training.resources
        resources = self.resources(spec, ("training", "resources"), replicas=spec.replicas)
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
            if self.target.estimator_packages:  # the runtime imports estimators of these packages only
                params["estimator_packages"] = list(self.target.estimator_packages)
            step = self.step(
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
            origin=self.origin(("training", "trainer", "container")),
        )

    def tuning(self) -> nodes.Tuning | None:
        tuning = self.system.training.tuning
        if tuning is None:
            return None
        params = []
        for name, p in sorted(tuning.params.items()):
            if isinstance(p, models.CategoricalParam):
                params.append(nodes.SearchParam(name, "categorical", None, None, None, tuple(p.values)))
            else:
                params.append(nodes.SearchParam(name, p.type, p.min, p.max, p.scale, ()))
        return nodes.Tuning(
            metric=tuning.objective.metric,
            goal=tuning.objective.goal,
            max_trials=tuning.max_trials,
            parallel_trials=tuning.parallel_trials,
            algorithm=tuning.algorithm,
            params=tuple(params),
            origin=self.origin(("training", "tuning")),
        )

    def gates(self) -> tuple[nodes.Gate, ...]:
        gates = []
        for index, gate in enumerate(self.system.training.evaluation.gates):
            for comparison in ("min", "max", "min_delta_vs_production"):
                value = getattr(gate, comparison)
                if value is not None:
                    gates.append(nodes.Gate(gate.metric, comparison, float(value), self.origin(("training", "evaluation", "gates", index))))
        return tuple(gates)

    def registry(self) -> nodes.Registry:
        registry = self.system.registry
        return nodes.Registry(
            model=registry.model,
            approval=registry.approval,
            aliases=tuple(registry.aliases),
            tags=dict(sorted(registry.tags.items())),
            origin=self.origin(("registry",)),
        )

    def online(self) -> nodes.OnlineEndpoint | None:
        online = self.system.deployment.online if self.system.deployment else None
        if online is None:
            return None
        path = ("deployment", "online")
        return nodes.OnlineEndpoint(
            name=online.endpoint,
            model=self.system.registry.model,
            resources=self.resources(online.resources, (*path, "resources")),
            min_replicas=online.replicas.min,
            max_replicas=online.replicas.max,
            autoscaling_metric=online.autoscaling.metric if online.autoscaling else None,
            autoscaling_target=online.autoscaling.target if online.autoscaling else None,
            strategy=online.rollout.strategy,
            canary_percent=online.rollout.canary_percent,
            requires_approval=self.system.registry.approval == "manual",
            origin=self.origin(path),
        )

    def batch_pipeline(self) -> nodes.Pipeline | None:
        batch = self.system.deployment.batch if self.system.deployment else None
        if batch is None:
            return None
        path = ("deployment", "batch")
        score = self.step(
            "score-batch",
            "score_batch",
            path,
            outputs=(nodes.Artifact("scores", "dataset"),),
            params={"source": batch.input.source, "output_uri": batch.output.uri, "model": self.system.registry.model},
            resources=self.resources(batch.resources, (*path, "resources")),
        )
        return nodes.Pipeline(f"{self.system.metadata.name}-batch-scoring", f"batch scoring for {self.system.metadata.name}", (score,))

    def monitoring(self) -> nodes.Monitoring | None:
        monitoring = self.system.monitoring
        if monitoring is None:
            return None
        drift = monitoring.drift
        performance = monitoring.performance
        return nodes.Monitoring(
            drift_method=drift.method if drift else None,
            drift_threshold=drift.threshold if drift else None,
            drift_features=tuple(self.system.training.dataset.features if drift is None or drift.features == "all" else drift.features) if drift else (),
            performance_metric=performance.metric if performance else None,
            performance_min=performance.min if performance else None,
            alerts=tuple(a.model_dump(mode="json") for a in monitoring.alerts),
            on_breach=monitoring.on_breach,
            origin=self.origin(("monitoring",)),
        )

    def monitoring_pipeline(self, plan: nodes.Monitoring | None) -> nodes.Pipeline | None:
        monitoring = self.system.monitoring
        if monitoring is None or plan is None:
            return None
        steps: list[nodes.Step] = []
        checks: list[str] = []
        if monitoring.drift is not None:
            steps.append(
                self.step(
                    "check-drift", "check_drift", ("monitoring", "drift"),
                    outputs=(nodes.Artifact("drift", "decision"),),
                    params={"method": plan.drift_method, "threshold": plan.drift_threshold, "features": list(plan.drift_features), "baseline": monitoring.baseline},
                )
            )  # fmt: skip
            checks.append("check-drift")
        if monitoring.performance is not None:
            performance = monitoring.performance
            steps.append(
                self.step(
                    "check-performance", "check_performance", ("monitoring", "performance"),
                    outputs=(nodes.Artifact("performance", "decision"),),
                    params={"metric": performance.metric, "min": performance.min, "ground_truth": performance.ground_truth.model_dump()},
                )
            )  # fmt: skip
            checks.append("check-performance")
        if monitoring.alerts:
            steps.append(
                self.step(
                    "alert", "alert", ("monitoring", "alerts"), depends_on=tuple(checks),
                    params={"alerts": [a.model_dump(mode="json") for a in monitoring.alerts]}, run_if="breach",
                )
            )  # fmt: skip
        if monitoring.on_breach == "retrain":
            steps.append(
                self.step(
                    "trigger-retraining", "trigger_retraining", ("monitoring", "on_breach"), depends_on=tuple(checks),
                    params={"pipeline": f"{self.system.metadata.name}-training"}, run_if="breach",
                )
            )  # fmt: skip
        return nodes.Pipeline(f"{self.system.metadata.name}-monitoring", f"drift and performance monitoring for {self.system.metadata.name}", tuple(steps))

    def schedules(self) -> tuple[nodes.Schedule, ...]:
        name = self.system.metadata.name
        schedules = []
        retraining = self.system.retraining
        if retraining is not None and retraining.schedule:
            schedules.append(
                nodes.Schedule(f"{name}-retraining", f"{name}-training", retraining.schedule, retraining.timezone, self.origin(("retraining", "schedule")))
            )
        batch = self.system.deployment.batch if self.system.deployment else None
        if batch is not None:
            schedules.append(
                nodes.Schedule(
                    f"{name}-batch-scoring", f"{name}-batch-scoring", batch.schedule, batch.timezone, self.origin(("deployment", "batch", "schedule"))
                )
            )
        monitoring = self.system.monitoring
        if monitoring is not None:
            schedules.append(
                nodes.Schedule(f"{name}-monitoring", f"{name}-monitoring", monitoring.schedule, monitoring.timezone, self.origin(("monitoring", "schedule")))
            )
        return tuple(schedules)

    def triggers(self) -> tuple[nodes.Trigger, ...]:
        name = self.system.metadata.name
        triggers = []
        retraining = self.system.retraining
        monitoring = self.system.monitoring
        if (retraining is not None and retraining.on_drift) or (monitoring is not None and monitoring.on_breach == "retrain"):
            path = ("retraining", "on_drift") if retraining is not None and retraining.on_drift else ("monitoring", "on_breach")
            triggers.append(nodes.Trigger(f"{name}-retrain-on-breach", "monitoring_breach", f"{name}-training", None, self.origin(path)))
        if retraining is not None and retraining.on_new_data is not None:
            triggers.append(
                nodes.Trigger(
                    f"{name}-retrain-on-new-data", "new_data", f"{name}-training", retraining.on_new_data.source, self.origin(("retraining", "on_new_data"))
                )
            )
        return tuple(triggers)


def lower(resolved: ResolvedSystem, profile: Profile, *, git_commit: str | None = None) -> tuple[nodes.Plan, list[Diagnostic]]:
    """The plan for one profile, and the warnings lowering produced; SpecError when the
    profile's platform cannot provide what the spec asks (e.g. an accelerator it lacks)."""
    lowering = _Lowering(resolved, profile, git_commit)
    plan = lowering.lower()
    if errors_in(lowering.diagnostics):
        raise SpecError(lowering.diagnostics)
    return plan, lowering.diagnostics
