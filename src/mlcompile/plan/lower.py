"""Lowering: a validated system spec + a target profile → the platform-neutral Plan.

This is the only place that interprets the spec's meaning (which steps exist, in what
order, on what machines); targets translate the result and nothing else. What a platform
adds of its own (sensors, materialisation, …) it adds here too (`extend_plan`), so the plan
holds every step a build runs."""

from __future__ import annotations

from typing import Any

from mlcompile import __version__
from mlcompile.diagnostics import Diagnostic, errors_in
from mlcompile.errors import SpecError
from mlcompile.plan import nodes
from mlcompile.plan.context import LoweringContext
from mlcompile.plan.extension import extend
from mlcompile.plan.pipelines import batch_pipeline, monitoring_pipeline, training_pipeline
from mlcompile.spec import models
from mlcompile.spec.resolve import Profile, ResolvedSystem
from mlcompile.spec.types import duration_seconds


class _Lowering(LoweringContext):
    def lower(self) -> nodes.Plan:
        system = self.system
        training = training_pipeline(self)
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
            batch=batch_pipeline(self),
            monitoring=monitoring,
            monitoring_pipeline=monitoring_pipeline(self, monitoring),
            schedules=self.schedules(),
            triggers=self.triggers(),
            lineage=nodes.Lineage(system.metadata.name, self.spec_sha256, self.profile.document.sha256, self.git_commit),
            standard_resources=self.standard,
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


def lower(resolved: ResolvedSystem, profile: Profile, platform: Any | None = None, *, git_commit: str | None = None) -> tuple[nodes.Plan, list[Diagnostic]]:
    """The plan for one profile, with what `platform` (the profile's target, when it is
    installed) adds to it, and the warnings lowering produced; SpecError when the profile's
    platform cannot provide what the spec asks (e.g. an accelerator it lacks)."""
    lowering = _Lowering(resolved, profile, git_commit)
    plan = lowering.lower()
    if errors_in(lowering.diagnostics):
        raise SpecError(lowering.diagnostics)
    return extend(plan, platform), lowering.diagnostics
