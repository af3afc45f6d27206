"""The spec's online feature views on Vertex AI Feature Store: one FeatureOnlineStore per
system, and per online view a FeatureGroup over its BigQuery source (the feature registry),
the view's Features in it, and a FeatureView that syncs exactly those features into the
online store on the view's refresh cadence. The bodies are request messages of
google.cloud.aiplatform_v1, parsed back strictly before they are written.

Offline-only views get no resources here: training and batch scoring read every source
directly (the runtime's point-in-time join), and nothing serves them online.

`check` is pure (no SDK import): what Vertex AI Feature Store cannot hold is refused at the
spec location it came from."""

from __future__ import annotations

import json
import re
from typing import Any

from mlcompile.diagnostics import Diagnostic
from mlcompile.plan.nodes import DataSource, FeatureView, Plan
from mlcompile.targets.base import unsupported

TARGET = "vertex"
# spec dtype → the BigQuery column type the source must have, and the FeatureValue field the
# online store answers with (Feature.value_type is for the legacy Featurestore only: the
# registry takes the type from the BigQuery column). Vertex AI Feature Store has no
# timestamp value.
DTYPES: dict[str, tuple[str, str]] = {
    "int32": ("INT64", "int64_value"),
    "int64": ("INT64", "int64_value"),
    "float32": ("FLOAT64", "double_value"),
    "float64": ("FLOAT64", "double_value"),
    "string": ("STRING", "string_value"),
    "bool": ("BOOL", "bool_value"),
}
# FeatureOnlineStore, FeatureView, FeatureGroup and Feature ids: lowercase letters, digits
# and '_', not starting with a digit.
_ID = re.compile(r"^[a-z_][a-z0-9_]*$")
MAX_STORE_OR_VIEW_ID = 60
MAX_GROUP_ID = 128
MAX_FEATURE_ID = 128
KINDS = {
    "online_store": "vertex.create_feature_online_store_request",
    "feature_group": "vertex.create_feature_group_request",
    "features": "vertex.batch_create_features_request",
    "feature_view": "vertex.create_feature_view_request",
}


def online_views(plan: Plan) -> list[FeatureView]:
    return [v for v in plan.features.views if v.online]


def source_of(plan: Plan, view: FeatureView) -> DataSource:
    return next(s for s in plan.features.sources if s.name == view.source)


def vertex_id(name: str) -> str:
    return name.replace("-", "_")


def store_settings(plan: Plan) -> dict[str, Any]:
    defaults = {"online_store_id": None, "storage": "bigtable", "min_nodes": 1, "max_nodes": 3, "cpu_utilization_target": 50}
    return {**defaults, **(plan.platform_settings.get("feature_store") or {})}


def online_store_id(plan: Plan) -> str:
    return store_settings(plan)["online_store_id"] or vertex_id(plan.system)


def feature_group_id(plan: Plan, view: FeatureView) -> str:
    """Feature groups live in the project, not in the store: the system name keeps two
    systems' views of the same name apart."""
    return f"{vertex_id(plan.system)}_{vertex_id(view.name)}"


def feature_id(name: str) -> str:
    return name.lower()


def parent(plan: Plan) -> str:
    settings = plan.platform_settings
    return f"projects/{settings['project']}/locations/{settings['region']}"


def store_name(plan: Plan) -> str:
    return f"{parent(plan)}/featureOnlineStores/{online_store_id(plan)}"


def view_name(plan: Plan, view: FeatureView) -> str:
    return f"{store_name(plan)}/featureViews/{vertex_id(view.name)}"


def sync_cron(view: FeatureView) -> str:
    assert view.refresh_cron is not None
    return f"TZ=UTC {view.refresh_cron}"


# ---------------------------------------------------------------------------- check


def check(plan: Plan) -> list[Diagnostic]:
    views = online_views(plan)
    problems: list[Diagnostic] = []
    if not views:
        return problems
    if len(online_store_id(plan)) > MAX_STORE_OR_VIEW_ID:
        problems.append(unsupported(
            views[0].origin, TARGET,
            f"the online store id '{online_store_id(plan)}' (from the system name) is longer than Vertex AI's {MAX_STORE_OR_VIEW_ID} characters",
            "set vertex.feature_store.online_store_id in the profile",
        ))  # fmt: skip
    refused_sources: dict[str, list[str]] = {}
    for view in views:
        source = source_of(plan, view)
        if not source.uri.startswith("bq://"):
            refused_sources.setdefault(source.name, []).append(view.name)
        for name, limit in ((vertex_id(view.name), MAX_STORE_OR_VIEW_ID), (feature_group_id(plan, view), MAX_GROUP_ID)):
            if not _ID.match(name) or len(name) > limit:
                problems.append(unsupported(
                    view.origin.below("name"), TARGET,
                    f"view '{view.name}' cannot be named '{name}' in Vertex AI Feature Store: ids are lowercase letters, digits and '_', not starting with a digit, at most {limit} characters",
                    "rename the view",
                ))  # fmt: skip
                break
        for index, column in enumerate(view.features):
            where = view.origin.below(f"features[{index}]")
            if column.dtype not in DTYPES:
                problems.append(unsupported(
                    where.below("dtype"), TARGET,
                    f"feature '{view.name}:{column.name}' has dtype {column.dtype}: Vertex AI Feature Store serves BOOL, INT64, FLOAT64 and STRING values, no {column.dtype}",
                    "store it as int64 (e.g. epoch seconds) or string (ISO 8601) in the source and declare that dtype",
                ))  # fmt: skip
            ident = feature_id(column.name)
            if not _ID.match(ident) or len(ident) > MAX_FEATURE_ID:
                problems.append(unsupported(
                    where.below("name"), TARGET,
                    f"feature '{column.name}' has no Vertex AI feature id: ids are letters, digits and '_', not starting with a digit, at most {MAX_FEATURE_ID} characters",
                    "rename the column in the source and the view",
                ))  # fmt: skip
        ids = [feature_id(c.name) for c in view.features]
        for ident in sorted({i for i in ids if ids.count(i) > 1}):
            problems.append(unsupported(
                view.origin.below("features"), TARGET,
                f"view '{view.name}' has features that differ only in case ('{ident}'): Vertex AI feature ids are lowercase",
            ))  # fmt: skip
    for source in plan.features.sources:
        if source.name in refused_sources:
            names = ", ".join(f"'{v}'" for v in refused_sources[source.name])
            problems.append(unsupported(
                source.origin, TARGET,
                f"online view {names} reads source '{source.name}' from {source.uri}: Vertex AI Feature Store syncs online views from BigQuery tables only",
                f"override the source's uri for profile '{plan.profile}' with a bq:// table (a BigQuery external table over the files will do)",
            ))  # fmt: skip
    return problems


# ---------------------------------------------------------------------------- bodies


def bodies(plan: Plan) -> list[tuple[str, str, dict[str, Any]]]:
    """(path, kind, body) of every feature-store request, each parsed back strictly."""
    from google.cloud.aiplatform_v1 import types as gca

    from mlcompile.targets.vertex.bodies import labels, to_json

    views = online_views(plan)
    if not views:
        return []
    settings = store_settings(plan)
    store = gca.FeatureOnlineStore(labels=labels(plan))
    if settings["storage"] == "optimized":
        store.optimized = gca.FeatureOnlineStore.Optimized()
    else:
        store.bigtable = gca.FeatureOnlineStore.Bigtable(
            auto_scaling=gca.FeatureOnlineStore.Bigtable.AutoScaling(
                min_node_count=settings["min_nodes"], max_node_count=settings["max_nodes"], cpu_utilization_target=settings["cpu_utilization_target"]
            )
        )
    out: list[tuple[str, str, Any]] = [
        (
            "vertex/feature-store/online-store.json",
            KINDS["online_store"],
            gca.CreateFeatureOnlineStoreRequest(parent=parent(plan), feature_online_store_id=online_store_id(plan), feature_online_store=store),
        )
    ]
    for view in views:
        source = source_of(plan, view)
        group_id = feature_group_id(plan, view)
        group = gca.FeatureGroup(
            big_query=gca.FeatureGroup.BigQuery(
                big_query_source=gca.BigQuerySource(input_uri=source.uri),
                entity_id_columns=list(view.join_keys),
                time_series=gca.FeatureGroup.BigQuery.TimeSeries(timestamp_column=source.timestamp_field),
            ),
            description=f"view {view.name} of {plan.system} (source {source.name})",
            labels=labels(plan),
        )
        group_name = f"{parent(plan)}/featureGroups/{group_id}"
        features = gca.BatchCreateFeaturesRequest(
            parent=group_name,
            requests=[
                gca.CreateFeatureRequest(
                    parent=group_name,
                    feature_id=feature_id(c.name),
                    feature=gca.Feature(version_column_name=c.name, description=f"{c.dtype} (BigQuery {DTYPES[c.dtype][0]})", labels=labels(plan)),
                )
                for c in view.features
            ],
        )
        feature_view = gca.FeatureView(
            feature_registry_source=gca.FeatureView.FeatureRegistrySource(
                feature_groups=[
                    gca.FeatureView.FeatureRegistrySource.FeatureGroup(feature_group_id=group_id, feature_ids=[feature_id(c.name) for c in view.features])
                ]
            ),
            sync_config=gca.FeatureView.SyncConfig(cron=sync_cron(view)),
            labels=labels(plan),
        )
        stem = vertex_id(view.name)
        out += [
            (
                f"vertex/feature-store/feature-groups/{stem}.json",
                KINDS["feature_group"],
                gca.CreateFeatureGroupRequest(parent=parent(plan), feature_group_id=group_id, feature_group=group),
            ),
            (f"vertex/feature-store/features/{stem}.json", KINDS["features"], features),
            (
                f"vertex/feature-store/feature-views/{stem}.json",
                KINDS["feature_view"],
                # synced once at creation, so that serving finds values before the first cron run
                gca.CreateFeatureViewRequest(parent=store_name(plan), feature_view_id=stem, feature_view=feature_view, run_sync_immediately=True),
            ),
        ]
    result = []
    for path, kind, message in out:
        body = to_json(message)
        parse_strict(kind, body)  # what the API would refuse is refused here, not at deploy
        result.append((path, kind, body))
    return result


def parse_strict(kind: str, body: dict[str, Any]) -> Any:
    """A feature-store body into its aiplatform_v1 request type; unknown fields raise."""
    from google.cloud.aiplatform_v1 import types as gca
    from google.protobuf import json_format

    message: Any = {
        KINDS["online_store"]: gca.CreateFeatureOnlineStoreRequest,
        KINDS["feature_group"]: gca.CreateFeatureGroupRequest,
        KINDS["features"]: gca.BatchCreateFeaturesRequest,
        KINDS["feature_view"]: gca.CreateFeatureViewRequest,
    }[kind]
    return message.wrap(json_format.ParseDict(body, message.pb()(), ignore_unknown_fields=False))


# ---------------------------------------------------------------------------- serving


def online_features_config(plan: Plan) -> dict[str, Any] | None:
    """MLCOMPILE_ONLINE_FEATURES of the endpoint: the model's features that online views
    serve, read by entity key from the views' FeatureViews (runtime/online/vertex.py)."""
    if plan.online is None:
        return None
    online = {v.name: v for v in online_views(plan)}
    refs = [r for r in plan.model_features() if r.view in online]
    if not refs:
        return None
    used = [online[name] for name in dict.fromkeys(r.view for r in refs)]
    keys = list(dict.fromkeys(k for v in used for k in v.join_keys))
    settings = plan.platform_settings
    return {
        "kind": "vertex",
        "entity_keys": keys,
        "features": [str(r) for r in refs],
        "project": settings["project"],
        "region": settings["region"],
        "online_store": store_name(plan),
        "storage": store_settings(plan)["storage"],
        "views": {
            v.name: {"feature_view": view_name(plan, v), "join_keys": list(v.join_keys), "features": {c.name: feature_id(c.name) for c in v.features}}
            for v in used
        },
    }


def online_features_env(plan: Plan) -> str | None:
    config = online_features_config(plan)
    return None if config is None else json.dumps(config, sort_keys=True, separators=(",", ":"))
