"""`features:` → the Azure ML managed feature store.

One feature store (a workspace of kind FeatureStore), one `FeatureStoreEntity` per entity a
view uses, and per view a `FeatureSet` with its feature-set specification folder:

    feature-store/feature-store.yaml                       azureml.feature_store
    feature-store/entities/<entity>.yaml                   azureml.feature_store_entity
    feature-store/feature-sets/<view>/feature-set.yaml     azureml.feature_set
    feature-store/feature-sets/<view>/spec/FeatureSetSpec.yaml  azureml.featureset_spec

Materialisation is the feature set's own `materialization_settings`: offline and online
materialisation are enabled when the profile names the store to write to, and the
recurrence is the plan's `refresh_cron` (the cadence every platform uses).

What `check` needs lives here too and imports no SDK (the `check_*` and naming functions);
`render` imports azure-ai-ml."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from mlcompile.plan.nodes import FeatureView, Plan
from mlcompile.targets.base import OutputFile

# spec dtype → the managed feature store's column type (azure-ai-ml DataColumnType)
DTYPES = {
    "int32": "integer",
    "int64": "long",
    "float32": "float",
    "float64": "double",
    "string": "string",
    "bool": "boolean",
    "timestamp": "datetime",
}
# source format → featureset spec `source.type` (a `table` on Azure storage is a Delta table)
SOURCE_TYPES = {"parquet": "parquet", "csv": "csv", "table": "deltaTable"}
# the featureset spec reads Azure storage only: ABFS, or blob over wasbs/https
SPEC_SOURCE_URI = re.compile(r"^(abfss?|wasbs?)://|^https://[a-z0-9]+\.(blob|dfs)\.core\.windows\.net/")
# entities and feature sets are versioned assets; a build defines version 1 of each
ASSET_VERSION = "1"
ROOT = "feature-store"
SPEC_FILE = "FeatureSetSpec.yaml"  # the name azure-ai-ml looks for in the specification folder
CRON_EVERY_N_MINUTES = re.compile(r"^\*/([0-9]+) \* \* \* \*$")
CRON_HOURLY = re.compile(r"^([0-9]+) \* \* \* \*$")
CRON_DAILY = re.compile(r"^([0-9]+) ([0-9]+) \* \* \*$")


def store_settings(plan: Plan) -> dict[str, Any]:
    """The profile's `feature_store:` block with its defaults filled in."""
    settings = plan.platform_settings
    block = dict(settings.get("feature_store") or {})
    workspace = str(settings["workspace"])
    return {
        "name": block.get("name") or f"{workspace[:30]}-fs",
        "resource_group": block.get("resource_group") or settings["resource_group"],
        "subscription_id": settings["subscription_id"],
        "online_store": block.get("online_store"),
        "offline_store": block.get("offline_store"),
        "materialization_instance_type": block.get("materialization_instance_type") or "standard_e8s_v3",
    }


def recurrence(cron: str) -> tuple[str, int, list[int], list[int]] | None:
    """A 5-field cron as the (frequency, interval, hours, minutes) of a recurrence trigger —
    materialisation schedules take recurrences only — or None when it is not one of the
    shapes a recurrence expresses exactly (every N minutes, hourly at :M, daily at H:M)."""
    if match := CRON_EVERY_N_MINUTES.match(cron):
        return ("minute", int(match.group(1)), [], [])
    if match := CRON_HOURLY.match(cron):
        return ("hour", 1, [], [int(match.group(1))])
    if match := CRON_DAILY.match(cron):
        return ("day", 1, [int(match.group(2))], [int(match.group(1))])
    return None


def index_columns(plan: Plan, view: FeatureView) -> list[tuple[str, str]]:
    """(join key, column type) of a view. The spec gives join keys no dtype: a key that is
    also one of the view's features takes that feature's type, any other key is a string."""
    typed = {column.name: DTYPES.get(column.dtype, "string") for column in view.features}
    return [(key, typed.get(key, "string")) for key in view.join_keys]


def entity_columns(plan: Plan) -> dict[str, list[tuple[str, str]]]:
    """Entity → its index columns, typed as in the first view that uses the entity."""
    out: dict[str, list[tuple[str, str]]] = {}
    for entity in plan.features.entities:
        view = next((v for v in plan.features.views if entity.name in v.entities), None)
        typed = dict(index_columns(plan, view)) if view is not None else {}
        out[entity.name] = [(key, typed.get(key, "string")) for key in entity.join_keys]
    return out


def materialised_online(plan: Plan, view: FeatureView) -> bool:
    return view.online and bool(store_settings(plan)["online_store"])


def check_feature_store(plan: Plan, refuse: Callable[..., None], warn: Callable[..., None]) -> None:
    """What the managed feature store cannot take of `features:` (no SDK import)."""
    settings = store_settings(plan)
    for source in plan.features.sources:
        readers = [v.name for v in plan.features.views if v.source == source.name]
        # azureml:// paths reach jobs but not a feature set's source; every other scheme
        # outside Azure storage is refused for all sources by check() already
        if readers and source.uri.startswith("azureml://") and not SPEC_SOURCE_URI.match(source.uri):
            refuse(source.origin,
                   f"source '{source.name}' of view{'s' if len(readers) > 1 else ''} {', '.join(readers)} is {source.uri!r}; an Azure ML "
                   "feature set reads abfss://, wasbs:// or https://<account>.blob|dfs.core.windows.net/ paths only",
                   "give this profile the source's storage path under overrides.<profile>.features.sources")  # fmt: skip
    for view in plan.features.views:
        for index, column in enumerate(view.features):
            if column.dtype not in DTYPES:
                refuse(view.origin.below(f"features[{index}]", "dtype"),
                       f"feature '{view.name}:{column.name}' has dtype {column.dtype!r}, which the Azure ML feature store has no column type for",
                       f"use one of {', '.join(sorted(DTYPES))}")  # fmt: skip
        if view.online and view.refresh_cron and recurrence(view.refresh_cron) is None:
            refuse(view.origin.below("ttl"),
                   f"view '{view.name}' is refreshed at '{view.refresh_cron}', which no materialisation recurrence expresses")  # fmt: skip
        if view.online and not settings["online_store"] and plan.online is not None:
            warn(view.origin.below("online"),
                 f"view '{view.name}' is not materialised to an online store: the profile names no azureml.feature_store.online_store, "
                 "so the online endpoint must receive this view's feature values in each request",
                 "set azureml.feature_store.online_store to the ARM id of the feature store's Azure Cache for Redis")  # fmt: skip


# ---------------------------------------------------------------------- serving


def model_features(plan: Plan) -> list[str]:
    """`view:feature` of the model's inputs, in the training set's order."""
    return [str(f) for f in plan.model_features()]


def online_features_config(plan: Plan) -> dict[str, Any] | None:
    """`MLCOMPILE_ONLINE_FEATURES` of the online deployment (runtime/online/azureml.py reads
    it): the feature sets to look up, by entity key, in the feature store's Redis. Features of
    views that are not materialised online come in the request (`request_features`);
    `model_features` is the model's input order over both."""
    if plan.online is None:
        return None
    settings = store_settings(plan)
    views = {v.name: v for v in plan.features.views}
    wanted = model_features(plan)
    online = [f for f in wanted if materialised_online(plan, views[f.split(":", 1)[0]])]
    if not online:
        return None
    used = list(dict.fromkeys(f.split(":", 1)[0] for f in online))
    feature_sets = []
    for name in used:
        view = views[name]
        types = {c.name: DTYPES[c.dtype] for c in view.features if c.dtype in DTYPES}
        feature_sets.append({
            "name": view.name,
            "version": ASSET_VERSION,
            "index_columns": [{"name": key, "type": kind} for key, kind in index_columns(plan, view)],
            "features": [{"name": f.split(":", 1)[1], "type": types[f.split(":", 1)[1]]} for f in online if f.startswith(f"{name}:")],
        })  # fmt: skip
    return {
        "kind": "azureml",
        "feature_store": {"name": settings["name"], "resource_group": settings["resource_group"], "subscription_id": settings["subscription_id"]},
        "online_store": settings["online_store"],
        "feature_sets": feature_sets,
        "entity_keys": list(dict.fromkeys(key for name in used for key in views[name].join_keys)),
        "features": online,
        "request_features": [f for f in wanted if f not in online],
        "model_features": wanted,
    }


# ---------------------------------------------------------------------- render


def paths(view: str) -> tuple[str, str]:
    """(feature-set file, its specification file) of a view."""
    return f"{ROOT}/feature-sets/{view}/feature-set.yaml", f"{ROOT}/feature-sets/{view}/spec/{SPEC_FILE}"


def _delay(seconds: int) -> dict[str, int]:
    """A lookback as the featureset spec's days/hours/minutes (rounded up to a minute)."""
    minutes = -(-seconds // 60)
    return {"days": minutes // 1440, "hours": minutes % 1440 // 60, "minutes": minutes % 60}


def featureset_spec(plan: Plan, view: FeatureView) -> dict[str, Any]:
    """The featureset spec (FeatureSetSpec.yaml) of a view: no transformation — the source
    already holds one row per entity and timestamp with the features as columns; the ttl
    bounds both how far back a materialisation window reads the source (source_lookback) and
    how old a value a point-in-time join may take (temporal_join_lookback)."""
    source = next(s for s in plan.features.sources if s.name == view.source)
    return {
        "source": {
            "type": SOURCE_TYPES.get(source.format, source.format),
            "path": source.uri,
            "timestamp_column": {"name": source.timestamp_field},
        },
        "features": [{"name": c.name, "type": DTYPES.get(c.dtype, c.dtype)} for c in view.features],
        "index_columns": [{"name": key, "type": kind} for key, kind in index_columns(plan, view)],
        "source_lookback": _delay(view.ttl_seconds),
        "temporal_join_lookback": _delay(view.ttl_seconds),
    }


def render_feature_store(plan: Plan) -> list[OutputFile]:
    from azure.ai.ml.entities import (
        DataColumn,
        FeatureSet,
        FeatureSetSpecification,
        FeatureStore,
        FeatureStoreEntity,
        ManagedIdentityConfiguration,
        MaterializationComputeResource,
        MaterializationSettings,
        MaterializationStore,
        RecurrencePattern,
        RecurrenceTrigger,
    )

    from mlcompile.targets.azureml._sdk import entity_yaml, identity, tags, yaml_bytes
    from mlcompile.targets.azureml.render import header

    features = plan.features
    if not features.views:
        return []
    settings = store_settings(plan)
    labels = tags(plan)
    head = header(plan)
    materializer = identity(plan, "feature_store")
    store = FeatureStore(
        name=settings["name"],
        resource_group=settings["resource_group"],
        description=f"feature store of {plan.system}",
        online_store=MaterializationStore(type="redis", target=settings["online_store"]) if settings["online_store"] else None,
        offline_store=MaterializationStore(type="azure_data_lake_gen2", target=settings["offline_store"]) if settings["offline_store"] else None,
        # the feature store duty's own identity: materialisation reads sources, writes the stores
        materialization_identity=ManagedIdentityConfiguration(client_id=materializer["client_id"], resource_id=materializer["resource_id"])
        if materializer
        else None,
        tags=labels,
    )
    store_data = dict(store._to_dict())
    store_data.pop("hbi_workspace", None)  # the SDK's default, not a choice of this build
    files = [OutputFile(f"{ROOT}/feature-store.yaml", "azureml.feature_store", yaml_bytes(store_data, "azureml.feature_store", head))]

    columns = entity_columns(plan)
    for entity in features.entities:
        if not any(entity.name in v.entities for v in features.views):
            continue
        described = FeatureStoreEntity(
            name=entity.name,
            version=ASSET_VERSION,
            index_columns=[DataColumn(name=key, type=kind) for key, kind in columns[entity.name]],
            description=f"{entity.name}, keyed by {', '.join(entity.join_keys)}",
            tags=labels,
        )
        files.append(OutputFile(f"{ROOT}/entities/{entity.name}.yaml", "azureml.feature_store_entity",
                                entity_yaml(described, "azureml.feature_store_entity", head)))  # fmt: skip

    for view in features.views:
        set_path, spec_path = paths(view.name)
        # Only online views are materialised: mlcompile's own steps read the sources (the
        # training set's point-in-time join runs in the runtime), so the offline store is
        # written alongside the online one, by the same scheduled job, for other readers.
        online = materialised_online(plan, view)
        offline = online and bool(settings["offline_store"])
        schedule = None
        shape = recurrence(view.refresh_cron) if view.refresh_cron else None
        if shape is not None and (offline or online):
            frequency, interval, hours, minutes = shape
            pattern = RecurrencePattern(hours=hours, minutes=minutes) if frequency != "minute" else None
            schedule = RecurrenceTrigger(frequency=frequency, interval=interval, schedule=pattern, time_zone="UTC")
        materialization = (
            MaterializationSettings(
                offline_enabled=offline,
                online_enabled=online,
                schedule=schedule,
                resource=MaterializationComputeResource(instance_type=settings["materialization_instance_type"]),
            )
            if offline or online
            else None
        )
        feature_set = FeatureSet(
            name=view.name,
            version=ASSET_VERSION,
            entities=[f"azureml:{entity}:{ASSET_VERSION}" for entity in view.entities],
            specification=FeatureSetSpecification(path="./spec"),
            materialization_settings=materialization,
            description=f"{len(view.features)} features of {', '.join(view.entities)} from source {view.source}, ttl {view.ttl_seconds}s"
            + (f", materialised online at '{view.refresh_cron}' (UTC)" if online else ""),
            tags={**labels, "mlcompile-ttl-seconds": str(view.ttl_seconds)},
        )
        files.append(OutputFile(set_path, "azureml.feature_set", entity_yaml(feature_set, "azureml.feature_set", head)))
        files.append(OutputFile(spec_path, "azureml.featureset_spec", yaml_bytes(featureset_spec(plan, view), "azureml.featureset_spec", head)))
    return files
