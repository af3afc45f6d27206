"""The spec's online feature views on SageMaker Feature Store. Pure: no AWS import.

Per online view: a feature group (`CreateFeatureGroup`: the view's join key as record
identifier, the source's timestamp field as event time, one feature definition per feature,
an online store whose records expire after the view's ttl, and an offline store in the
profile's bucket that keeps every record written), and a materialisation pipeline — one
processing step running the runtime's `materialize` step, which writes the newest row of each
entity within the ttl with PutRecord — started by EventBridge Scheduler on the view's refresh
cadence.

Offline-only views get no feature group: training and batch scoring read every source
directly (the runtime's point-in-time join), and nothing serves them online."""

from __future__ import annotations

import json
import re
from typing import Any

from mlcompile.diagnostics import Diagnostic
from mlcompile.plan.extension import PlanExtension, platform_step
from mlcompile.plan.nodes import DataSource, FeatureView, Pipeline, Plan, Schedule, Step, StepKind
from mlcompile.runtime.online import ENV as ONLINE_FEATURES_ENV
from mlcompile.targets.base import unsupported
from mlcompile.targets.sagemaker.layout import Layout, fit

TARGET = "sagemaker"
# spec dtype → FeatureDefinition.FeatureType, and how the materialize step writes the value
# (SageMaker Feature Store stores every value as a string of its type).
DTYPES: dict[str, str] = {
    "int32": "Integral",
    "int64": "Integral",
    "bool": "Integral",  # 1 / 0
    "float32": "Fractional",
    "float64": "Fractional",
    "string": "String",
    "timestamp": "String",  # ISO 8601 UTC, e.g. 2026-01-31T06:00:00Z
}
# The record identifier is written as a string: join keys are columns without a declared
# dtype, and String identifiers accept integer keys as well (GetRecord asks by string).
RECORD_IDENTIFIER_TYPE = "String"
EVENT_TIME_TYPE = "String"  # ISO 8601 UTC, what PutRecord's EventTime accepts
NAME = re.compile(r"^[a-zA-Z0-9]([-_]*[a-zA-Z0-9]){0,63}$")
RESERVED = frozenset({"is_deleted", "write_time", "api_invocation_time"})  # columns the offline store adds
MAX_FEATURES = 2500
TTL_UNITS = (("Weeks", 7 * 86400), ("Days", 86400), ("Hours", 3600), ("Minutes", 60), ("Seconds", 1))
STEP_KIND: StepKind = "materialize"
MAX_ENVIRONMENT_VALUE = 1024  # characters of a model container's environment value


def online_views(plan: Plan) -> list[FeatureView]:
    return [v for v in plan.features.views if v.online]


def source_of(plan: Plan, view: FeatureView) -> DataSource:
    return next(s for s in plan.features.sources if s.name == view.source)


def feature_group_name(plan: Plan, view: FeatureView) -> str:
    """Feature groups live in the account and region: the system name keeps two systems'
    views of the same name apart."""
    return fit(f"{plan.system}-{view.name}".replace("_", "-"), 64)


def pipeline_name(plan: Plan, view: FeatureView) -> str:
    # pipeline names take letters, digits and '-' only
    return f"{plan.system}-materialize-{view.name}".replace("_", "-")


def ttl_duration(seconds: int) -> dict[str, Any]:
    """The largest unit that states the ttl exactly: 30d → 30 Days, 36h → 36 Hours."""
    unit, size = next((u, s) for u, s in TTL_UNITS if seconds % s == 0)
    return {"Unit": unit, "Value": seconds // size}


# ---------------------------------------------------------------------------- check


def check(plan: Plan) -> list[Diagnostic]:
    problems: list[Diagnostic] = []
    tables: dict[str, list[str]] = {}
    for view in online_views(plan):
        source = source_of(plan, view)
        if source.uri.startswith("bq://"):
            tables.setdefault(source.name, []).append(view.name)
        if len(view.join_keys) != 1:
            problems.append(unsupported(
                view.origin.below("entities"), TARGET,
                f"online view '{view.name}' is keyed by {len(view.join_keys)} columns ({', '.join(view.join_keys)}): a SageMaker feature group has one record identifier",
                "key the view by one entity with one join key (e.g. a column that combines the keys in the source), or set online: false for this profile",
            ))  # fmt: skip
        if len(view.features) + 2 > MAX_FEATURES:
            problems.append(
                unsupported(
                    view.origin.below("features"),
                    TARGET,
                    f"view '{view.name}' has {len(view.features)} features: a SageMaker feature group holds at most {MAX_FEATURES - 2} besides its identifier and event time",
                )
            )
        reserved_columns = {*view.join_keys, source.timestamp_field}
        for index, column in enumerate(view.features):
            where = view.origin.below(f"features[{index}]", "name")
            if not NAME.match(column.name):
                problems.append(unsupported(
                    where, TARGET,
                    f"feature '{column.name}' is no SageMaker feature name: letters and digits, '-' or '_' only between them, at most 64 characters",
                    "rename the column in the source and the view",
                ))  # fmt: skip
            elif column.name.lower() in RESERVED:
                problems.append(
                    unsupported(
                        where,
                        TARGET,
                        f"feature '{column.name}' is a column SageMaker Feature Store's offline store adds itself ({', '.join(sorted(RESERVED))})",
                        "rename the column in the source and the view",
                    )
                )
            elif column.name in reserved_columns:
                problems.append(
                    unsupported(where, TARGET, f"feature '{column.name}' is the view's record identifier or event time: a feature group defines it once")
                )
        for key_column in sorted({*view.join_keys, source.timestamp_field}):
            if not NAME.match(key_column):
                problems.append(
                    unsupported(
                        view.origin,
                        TARGET,
                        f"column '{key_column}' of view '{view.name}' is no SageMaker feature name (record identifier / event time)",
                        "rename the column in the source",
                    )
                )
    for source in plan.features.sources:
        if source.name in tables:
            names = ", ".join(f"'{v}'" for v in tables[source.name])
            problems.append(unsupported(
                source.origin, TARGET,
                f"online view {names} reads source '{source.name}' from BigQuery ({source.uri}): the materialisation job reads files (parquet, csv), not BigQuery tables",
                f"override the source's uri for profile '{plan.profile}' with an s3:// export of the table",
            ))  # fmt: skip
    if plan.online is not None and not problems:
        value = online_features_env(plan, Layout.of(plan))
        if value is not None and len(value) > MAX_ENVIRONMENT_VALUE:
            problems.append(unsupported(
                plan.online.origin, TARGET,
                f"the endpoint's {len(value):,}-character {ONLINE_FEATURES_ENV} (the online features it reads) exceeds the {MAX_ENVIRONMENT_VALUE} characters of a SageMaker container environment value",
                "read fewer or shorter-named features online, or send the offline views' features in the request",
            ))  # fmt: skip
    return problems


# ---------------------------------------------------------------------------- bodies


def create_feature_group(plan: Plan, layout: Layout, view: FeatureView) -> dict[str, Any]:
    from mlcompile.targets.sagemaker.bodies import tags

    source = source_of(plan, view)
    (key,) = view.join_keys
    definitions = [{"FeatureName": key, "FeatureType": RECORD_IDENTIFIER_TYPE}, {"FeatureName": source.timestamp_field, "FeatureType": EVENT_TIME_TYPE}]
    definitions += [{"FeatureName": c.name, "FeatureType": DTYPES[c.dtype]} for c in view.features]
    return {
        "FeatureGroupName": feature_group_name(plan, view),
        "RecordIdentifierFeatureName": key,
        "EventTimeFeatureName": source.timestamp_field,
        "FeatureDefinitions": definitions,
        # records expire a ttl after their event time: serving never reads a stale value
        "OnlineStoreConfig": {"EnableOnlineStore": True, "TtlDuration": ttl_duration(view.ttl_seconds)},
        "OfflineStoreConfig": {"S3StorageConfig": {"S3Uri": f"{layout.prefix}/feature-store"}},
        "RoleArn": layout.feature_store_role,
        "Description": f"view {view.name} of {plan.system} (source {source.name})"[:128],
        "Tags": tags(plan),
    }


def store_params(plan: Plan, layout: Layout, view: FeatureView) -> dict[str, Any]:
    """What the runtime's materialize step needs to write the view (its `params.store`)."""
    source = source_of(plan, view)
    return {
        "kind": "sagemaker",
        "region": layout.region,
        "feature_group": feature_group_name(plan, view),
        "record_identifier": view.join_keys[0],
        "event_time": source.timestamp_field,
    }


def materialize_step(plan: Plan, layout: Layout, view: FeatureView) -> Step:
    name = f"materialize-{view.name}".replace("_", "-")[:64]
    params = {"view": view.name, "store": store_params(plan, layout, view)}
    return platform_step(plan, name, STEP_KIND, view.origin, params=params, entry="materialize")


def materialize_pipelines(plan: Plan, layout: Layout) -> PlanExtension:
    """Per online view: the pipeline that writes it into its feature group, and the schedule
    that starts it on the view's refresh cadence (UTC)."""
    pipelines, schedules = [], []
    for view in online_views(plan):
        assert view.refresh_cron is not None
        name = pipeline_name(plan, view)
        step = materialize_step(plan, layout, view)
        description = f"writes the newest rows of view {view.name} into feature group {feature_group_name(plan, view)}"
        pipelines.append(Pipeline(name, description, (step,)))
        schedules.append(Schedule(name, name, view.refresh_cron, "UTC", view.origin.below("online")))
    return PlanExtension(tuple(pipelines), tuple(schedules))


# ---------------------------------------------------------------------------- serving


def online_features_config(plan: Plan, layout: Layout) -> dict[str, Any] | None:
    """MLCOMPILE_ONLINE_FEATURES of the endpoint: the model's features that online views
    serve, read by entity key from their feature groups (runtime/online/sagemaker.py)."""
    if plan.online is None:
        return None
    online = {v.name: v for v in online_views(plan)}
    refs = [r for r in plan.model_features() if r.view in online]
    if not refs:
        return None
    used = [online[name] for name in dict.fromkeys(r.view for r in refs)]
    return {
        "kind": "sagemaker",
        "entity_keys": list(dict.fromkeys(k for v in used for k in v.join_keys)),
        "features": [str(r) for r in refs],
        "region": layout.region,
        "views": {
            v.name: {
                "feature_group": feature_group_name(plan, v),
                "record_identifier": v.join_keys[0],
                "dtypes": {c.name: c.dtype for c in v.features},
            }
            for v in used
        },
    }


def online_features_env(plan: Plan, layout: Layout) -> str | None:
    config = online_features_config(plan, layout)
    return None if config is None else json.dumps(config, sort_keys=True, separators=(",", ":"))
