"""Online feature reads from Vertex AI Feature Store: one FetchFeatureValues per entity and
feature view (FeatureOnlineStoreServiceClient, imported only when a reader is made).

The kind's settings in MLCOMPILE_ONLINE_FEATURES (written by targets/vertex/feature_store.py):

    {"kind": "vertex", "entity_keys": [...], "features": ["view:feature", ...],
     "project": "...", "region": "us-central1", "storage": "bigtable" | "optimized",
     "online_store": "projects/…/featureOnlineStores/<id>",
     "views": {"<view>": {"feature_view": "projects/…/featureViews/<id>",
                         "join_keys": ["customer_id"], "features": {"<feature>": "<feature id>"}}}}

A bigtable store answers on the regional API endpoint; an optimized store on its own public
endpoint, looked up once. MLCOMPILE_VERTEX_API_ENDPOINT overrides both (a Private Service
Connect endpoint, or a local stand-in: an http://127.0.0.1 endpoint is spoken to over REST
with anonymous credentials)."""

from __future__ import annotations

import os
from typing import Any

from mlcompile.runtime.contract import ENV_VERTEX_API_ENDPOINT
from mlcompile.runtime.online import features_by_view


def service_options(endpoint: str) -> dict[str, Any]:
    """Keyword arguments of an aiplatform_v1 service client for `endpoint`: gRPC to Google's,
    REST with anonymous credentials to a local stand-in (the emulator's)."""
    options: dict[str, Any] = {"client_options": {"api_endpoint": endpoint}}
    if endpoint.startswith(("http://127.0.0.1", "http://localhost")):
        from google.auth.credentials import AnonymousCredentials

        options.update(credentials=AnonymousCredentials(), transport="rest")
    return options


def endpoint_of(config: dict[str, Any]) -> str:
    override = os.environ.get(ENV_VERTEX_API_ENDPOINT)
    if override:
        return override
    regional = f"{config['region']}-aiplatform.googleapis.com"
    if config.get("storage") != "optimized":
        return regional
    from google.cloud.aiplatform_v1.services.feature_online_store_admin_service import FeatureOnlineStoreAdminServiceClient

    store = FeatureOnlineStoreAdminServiceClient(**service_options(regional)).get_feature_online_store(name=config["online_store"])
    return store.dedicated_serving_endpoint.public_endpoint_domain_name or regional


def value_of(feature_value: Any) -> Any:
    """A FeatureValue as a Python value (None when unset)."""
    from google.cloud.aiplatform_v1 import types as gca

    message = gca.FeatureValue.pb(feature_value)
    which = message.WhichOneof("value")
    if which is None:
        return None
    value = getattr(feature_value, which)
    if which.endswith("_array_value"):
        return list(value.values)
    if which == "struct_value":
        return {v.name: value_of(v.value) for v in value.values}
    return value


class VertexReader:
    def __init__(self, config: dict[str, Any], client: Any = None):
        self.config = config
        if client is None:
            from google.cloud.aiplatform_v1.services.feature_online_store_service import FeatureOnlineStoreServiceClient

            client = FeatureOnlineStoreServiceClient(**service_options(endpoint_of(config)))
        self.client = client

    def read(self, entities: list[dict[str, Any]], features: list[str]) -> list[dict[str, Any]]:
        from google.api_core import exceptions
        from google.cloud.aiplatform_v1 import types as gca

        by_view = features_by_view(features, self.config["views"])
        rows: list[dict[str, Any]] = []
        for entity in entities:
            row: dict[str, Any] = {}
            for view, names in by_view.items():
                spec = self.config["views"][view]
                missing = [k for k in spec["join_keys"] if k not in entity]
                if missing:
                    raise ValueError(f"entity {entity}: no {', '.join(missing)} (view {view} is keyed by {', '.join(spec['join_keys'])})")
                parts = [str(entity[k]) for k in spec["join_keys"]]
                key = (
                    gca.FeatureViewDataKey(key=parts[0])
                    if len(parts) == 1
                    else gca.FeatureViewDataKey(composite_key=gca.FeatureViewDataKey.CompositeKey(parts=parts))
                )
                request = gca.FetchFeatureValuesRequest(feature_view=spec["feature_view"], data_key=key, data_format=gca.FeatureViewDataFormat.KEY_VALUE)
                try:
                    response = self.client.fetch_feature_values(request=request)
                    values = {pair.name: value_of(pair.value) for pair in response.key_values.features}
                except exceptions.NotFound:  # the entity has no row in the view (yet, or any more)
                    values = {}
                ids = spec.get("features", {})
                for name in names:
                    row[f"{view}:{name}"] = values.get(ids.get(name, name))
            rows.append(row)
        return rows


def make_reader(config: dict[str, Any]) -> VertexReader:
    return VertexReader(config)
