"""The kubeflow target's Feast feature store beyond the repository files: the pipelines and
recurring runs that keep online views fresh, and what the serving container needs to read
them.

Materialisation: online views are grouped by their refresh cadence (`FeatureView.refresh_cron`,
derived from the ttl); each group is a one-task pipeline `<system>-materialize-<cadence>`
whose task runs `python -m mlcompile.runtime materialize-features` on the runtime image:
it writes the repository (carried in its config), `feast apply`s it to the registry and runs
`materialize-incremental` up to now for the group's views. Its KFP recurring run fires on
the cadence (UTC, as every KFP recurring run)."""

from __future__ import annotations

import json
from pathlib import PurePosixPath
from typing import Any

from mlcompile.plan.extension import PlanExtension, platform_step
from mlcompile.plan.nodes import FeatureView, Pipeline, Plan, Schedule
from mlcompile.runtime.online import ENV as ONLINE_FEATURES_ENV
from mlcompile.targets import feast_repo

STEP = "materialize-features"
# pipeline name suffix per refresh cadence (nodes.refresh_cron_for's three)
CADENCE = {"*/15 * * * *": "15m", "0 * * * *": "hourly", "0 0 * * *": "daily"}


def repo_files(plan: Plan) -> dict[str, str]:
    """The repository's files by name, as the build writes them under feature_repo/."""
    return {PurePosixPath(f.path).name: f.content.decode() for f in feast_repo.render(plan)}


def materialization(plan: Plan) -> PlanExtension:
    """One pipeline and its recurring run per refresh cadence of the online views."""
    groups: dict[str, list[FeatureView]] = {}
    for view in plan.features.views:
        if view.online and view.refresh_cron:
            groups.setdefault(view.refresh_cron, []).append(view)
    pipelines, schedules = [], []
    for cron, views in sorted(groups.items(), key=lambda item: item[1][0].name):
        name = f"{plan.system}-materialize-{CADENCE.get(cron, 'scheduled')}"
        names = [v.name for v in views]
        step = platform_step(plan, STEP, "materialize_features", views[0].origin, params={"views": names, "mode": "incremental"})
        description = f"materialises online views {', '.join(names)} into the Feast online store (cron '{cron}' UTC)"
        pipelines.append(Pipeline(name, description, (step,)))
        schedules.append(Schedule(name, name, cron, "UTC", views[0].origin))
    return PlanExtension(tuple(pipelines), tuple(schedules))


def feast_config(plan: Plan) -> dict[str, Any]:
    """The `feast` section of the materialisation task's config: the repository itself."""
    return {"files": repo_files(plan)}


def online_features(plan: Plan) -> dict[str, Any] | None:
    """`MLCOMPILE_ONLINE_FEATURES` of the serving container (runtime.online), when the model
    reads at least one online view: kind feast, the repository's feature_store.yaml (its
    registry names the definitions), the entity keys, the features the store serves (model
    input order) and those of offline views, which each request carries itself."""
    refs = plan.model_features()
    views = {v.name: v for v in plan.features.views}
    online = [r for r in refs if views[r.view].online]
    if not online:
        return None
    keys = list(dict.fromkeys(k for r in online for k in views[r.view].join_keys))
    return {
        "kind": "feast",
        "feature_store_yaml": repo_files(plan)["feature_store.yaml"],
        "project": feast_repo.project_name(plan),
        "entity_keys": keys,
        "features": [str(r) for r in online],
        "request_features": [str(r) for r in refs if r not in online],
    }


def serving_env(plan: Plan) -> list[dict[str, Any]]:
    """Env entries of the serving container: the online features config and the secrets its
    feature_store.yaml refers to (each from the Kubernetes Secret of that name, key `value`)."""
    config = online_features(plan)
    if config is None:
        return []
    env: list[dict[str, Any]] = [{"name": ONLINE_FEATURES_ENV, "value": json.dumps(config, sort_keys=True, separators=(",", ":"))}]
    for name in feast_repo.secrets_of(plan):
        env.append({"name": feast_repo.secret_env(name), "valueFrom": {"secretKeyRef": {"name": name, "key": "value"}}})
    return env
