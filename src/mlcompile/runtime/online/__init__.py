"""Online feature reads at serving time: one reader per feature-store kind.

A serving deployment that reads its model's features by entity key carries the environment
variable `MLCOMPILE_ONLINE_FEATURES`, a JSON object written by the target at build time:

    {"kind": "feast" | "vertex" | "sagemaker" | "azureml",
     "entity_keys": ["customer_id"],
     "features": ["customer_activity:orders_30d", ...],   # view:feature, model input order
     ...}                                                  # the kind's own settings

`reader_for(config)` imports only the module of that kind (so a serving container pulls in
one cloud SDK at most) and returns an `OnlineReader`."""

from __future__ import annotations

import importlib
import json
import os
from typing import Any, Protocol

ENV = "MLCOMPILE_ONLINE_FEATURES"
KINDS = ("feast", "vertex", "sagemaker", "azureml")


class OnlineReader(Protocol):
    def read(self, entities: list[dict[str, Any]], features: list[str]) -> list[dict[str, Any]]:
        """One row per entity, keyed by `view:feature`; a value the store lacks is None."""


def reader_for(config: dict[str, Any]) -> OnlineReader:
    kind = config.get("kind")
    if kind not in KINDS:
        raise ValueError(f"{ENV}: unknown online store kind {kind!r} (expected one of {', '.join(KINDS)})")
    module = importlib.import_module(f"{__name__}.{kind}")
    return module.make_reader(config)


def config_from_env(environ: dict[str, str] | None = None) -> dict[str, Any] | None:
    raw = (os.environ if environ is None else environ).get(ENV)
    return json.loads(raw) if raw else None


def features_by_view(features: list[str], served_views: Any) -> dict[str, list[str]]:
    """`view:feature` refs grouped by view, in request order; a view the store does not serve
    online is the deployment's misconfiguration, not a missing value."""
    by_view: dict[str, list[str]] = {}
    for ref in features:
        view, _, name = ref.partition(":")
        if view not in served_views:
            raise ValueError(f"feature {ref}: view {view} is not served online")
        by_view.setdefault(view, []).append(name)
    return by_view
