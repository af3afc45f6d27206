"""`mlcompile deploy` of the Feature Store resources of a vertex build, in dependency order:
the online store, each view's feature group and its features, then the feature views.

Each is created when missing and left alone when it matches the build. What changes in place
does: the store's Bigtable autoscaling, new features of a group, a feature view's sync
cadence and features. What does not (a group's BigQuery source or entity columns, a store's
storage type) is a deploy failure that says so: replacing those drops the served values,
which deploy does not do behind the user's back."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from mlcompile.targets.base import DeployAction, DeployFailed, live_fingerprint
from mlcompile.targets.vertex.feature_store import KINDS


def _in_order(files: Callable[[str], list[Path]]) -> tuple[list[Path], ...]:
    return tuple(files(KINDS[k]) for k in ("online_store", "feature_group", "features", "feature_view"))


def planned_feature_store(files: Callable[[str], list[Path]]) -> list[str]:
    """The feature-store resources a deploy applies, in its order (for the failure summary)."""
    return [_label(path) for group in _in_order(files) for path in group]


def deploy_feature_store(files: Callable[[str], list[Path]], options: dict[str, Any], dry_run: bool, actions: list[DeployAction]) -> None:
    """Each resource is read and compared; with `dry_run` nothing is sent."""
    stores, groups, features, views = _in_order(files)
    if not (stores or groups or features or views):
        return
    from google.api_core import exceptions
    from google.cloud.aiplatform_v1 import types as gca
    from google.cloud.aiplatform_v1.services.feature_online_store_admin_service import FeatureOnlineStoreAdminServiceClient
    from google.cloud.aiplatform_v1.services.feature_registry_service import FeatureRegistryServiceClient
    from google.protobuf import field_mask_pb2, json_format

    def parse(path: Path, message: Any) -> Any:
        return message.wrap(json_format.ParseDict(json.loads(path.read_text()), message.pb()()))

    def current_of(get: Callable[[], Any]) -> Any:
        try:
            return get()
        except exceptions.NotFound:
            return None

    def record(resource: str, action: str, detail: str, live: Any, apply: Callable[[], Any] | None = None) -> None:
        if apply is not None and not dry_run:
            apply()
        actions.append(DeployAction(resource, action, detail, live_fingerprint(live)))

    def compared(message: Any, *fields: str) -> dict[str, Any] | None:
        return None if message is None else {f: type(message).to_dict(message).get(f) for f in fields}

    admin = FeatureOnlineStoreAdminServiceClient(**options)
    registry = FeatureRegistryServiceClient(**options)

    for path in stores:
        request = parse(path, gca.CreateFeatureOnlineStoreRequest)
        name = f"{request.parent}/featureOnlineStores/{request.feature_online_store_id}"
        resource = f"feature online store {request.feature_online_store_id}"
        current = current_of(lambda: admin.get_feature_online_store(name=name))
        live = compared(current, "bigtable", "optimized")
        wanted = request.feature_online_store
        if current is None:
            record(
                resource,
                "create",
                "bigtable" if "bigtable" in wanted else "optimized",
                live,
                lambda: admin.create_feature_online_store(request=request).result(),
            )
            continue
        if ("bigtable" in wanted) != ("bigtable" in current):
            raise DeployFailed(
                f"{resource} exists with another storage type: Vertex AI cannot change it in place; delete the store and deploy again", applied=actions
            )
        if "bigtable" in wanted and current.bigtable.auto_scaling != wanted.bigtable.auto_scaling:
            wanted.name = name
            record(
                resource,
                "update",
                "bigtable autoscaling",
                live,
                lambda: admin.update_feature_online_store(
                    feature_online_store=wanted, update_mask=field_mask_pb2.FieldMask(paths=["bigtable.auto_scaling"])
                ).result(),
            )
        else:
            record(resource, "unchanged", "", live)

    for path in groups:
        request = parse(path, gca.CreateFeatureGroupRequest)
        name = f"{request.parent}/featureGroups/{request.feature_group_id}"
        resource = f"feature group {request.feature_group_id}"
        current = current_of(lambda: registry.get_feature_group(name=name))
        if current is None:
            record(
                resource,
                "create",
                request.feature_group.big_query.big_query_source.input_uri,
                None,
                lambda: registry.create_feature_group(request=request).result(),
            )
            continue
        if current.big_query != request.feature_group.big_query:
            raise DeployFailed(
                f"{resource} exists over another BigQuery source, entity columns or timestamp column: delete the group and its feature views, and deploy again",
                applied=actions,
            )
        record(resource, "unchanged", "", compared(current, "big_query"))

    for path in features:
        request = parse(path, gca.BatchCreateFeaturesRequest)
        group = request.parent.rsplit("/", 1)[1]
        try:
            existing = sorted(f.name.rsplit("/", 1)[1] for f in registry.list_features(parent=request.parent))
        except exceptions.NotFound:  # the group itself is still to be created
            existing = []
        missing = [r for r in request.requests if r.feature_id not in existing]
        resource, names = f"features of group {group}", existing or None
        if missing:
            record(
                resource,
                "create" if not existing else "update",
                ", ".join(r.feature_id for r in missing),
                names,
                lambda: registry.batch_create_features(request=gca.BatchCreateFeaturesRequest(parent=request.parent, requests=missing)).result(),
            )
        else:
            record(resource, "unchanged", "", names)

    for path in views:
        request = parse(path, gca.CreateFeatureViewRequest)
        name = f"{request.parent}/featureViews/{request.feature_view_id}"
        resource = f"feature view {request.feature_view_id}"
        current = current_of(lambda: admin.get_feature_view(name=name))
        live = compared(current, "sync_config", "feature_registry_source")
        wanted = request.feature_view
        if current is None:
            record(resource, "create", wanted.sync_config.cron, live, lambda: admin.create_feature_view(request=request).result())
            continue
        paths = [
            p
            for p, same in (
                ("sync_config", current.sync_config == wanted.sync_config),
                ("feature_registry_source", current.feature_registry_source == wanted.feature_registry_source),
            )
            if not same
        ]
        if paths:
            wanted.name = name
            record(
                resource,
                "update",
                wanted.sync_config.cron,
                live,
                lambda: admin.update_feature_view(feature_view=wanted, update_mask=field_mask_pb2.FieldMask(paths=paths)).result(),
            )
        else:
            record(resource, "unchanged", wanted.sync_config.cron, live)


def _label(path: Path) -> str:
    body = json.loads(path.read_text())
    for key, what in (("featureOnlineStoreId", "feature online store"), ("featureGroupId", "feature group"), ("featureViewId", "feature view")):
        if key in body:
            return f"{what} {body[key]}"
    return f"features of group {body['parent'].rsplit('/', 1)[1]}"
