"""Vertex AI Feature Store resources: online stores and their feature views (admin service),
feature groups and their features (registry service), kept as created; creations and updates
answer with a finished operation, as `mlcompile deploy` reaches them."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from mlcompile.emulate.services.http import ApiError, not_found

_PATH = re.compile(
    r"/v1/(projects/[^/]+/locations/[^/]+(?:/featureOnlineStores/[^/]+|/featureGroups/[^/]+)?)/(featureOnlineStores|featureViews|featureGroups|features)(?:/([^/:]+))?(:batchCreate)?"
)
_KINDS = {
    "featureOnlineStores": ("featureOnlineStoreId", "FeatureOnlineStore"),
    "featureViews": ("featureViewId", "FeatureView"),
    "featureGroups": ("featureGroupId", "FeatureGroup"),
    "features": ("featureId", "Feature"),
}
# (parent, response type name, response) -> a finished operation
Done = Callable[[str, str, dict[str, Any]], dict[str, Any]]


def route(store: dict[str, dict[str, Any]], done: Done, method: str, path: str, query: dict[str, str], body: Any) -> Any | None:
    """The answer to a Feature Store request (raises ApiError), or None for other paths."""
    match = _PATH.fullmatch(path)
    if not match:
        return None
    parent, collection, ident, batch = match.groups()
    id_param, type_name = _KINDS[collection]
    if batch and method == "POST":
        created = []
        for request in body["requests"]:
            name = f"{parent}/features/{request['featureId']}"
            store[name] = created_item = {**request["feature"], "name": name}
            created.append(created_item)
        return done(parent, "BatchCreateFeaturesResponse", {"features": created})
    if method == "GET" and ident is None:
        prefix = f"{parent}/{collection}/"
        return {collection: [v for k, v in sorted(store.items()) if k.startswith(prefix) and "/" not in k[len(prefix) :]]}
    name = f"{parent}/{collection}/{ident if ident is not None else query.get(id_param)}"
    if method == "GET":
        if name not in store:
            raise not_found(name)
        return store[name]
    if method == "POST" and ident is None:
        if name in store:
            raise ApiError(409, "ALREADY_EXISTS", f"{name} already exists")
        store[name] = {**body, "name": name}
        return done(parent, type_name, store[name])
    if method == "PATCH" and ident is not None:
        if name not in store:
            raise not_found(name)
        for field in query.get("updateMask", "").split(","):
            key = re.sub(r"_([a-z])", lambda m: m.group(1).upper(), field.split(".")[0])
            if key in body:
                store[name][key] = body[key]
        return done(parent, type_name, store[name])
    raise not_found(f"{method} {path}")
