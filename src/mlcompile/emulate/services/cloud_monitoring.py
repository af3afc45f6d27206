"""Cloud Monitoring (v3) notification channels and alert policies, kept as created: what a
Vertex AI deploy creates for email alerts, served beside the Vertex AI API."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from mlcompile.emulate.services.http import not_found

_PATH = re.compile(r"/v3/(projects/[^/]+)/(notificationChannels|alertPolicies)(?:/([^/]+))?")
_FILTER = re.compile(r'(labels\.email_address|display_name)\s*=\s*"([^"]*)"')


def route(store: dict[str, dict[str, Any]], number: Callable[[], int], method: str, path: str, query: dict[str, str], body: Any) -> Any | None:
    """The answer to a Cloud Monitoring request (raises ApiError), or None for other paths."""
    match = _PATH.fullmatch(path)
    if not match:
        return None
    parent, collection, ident = match.groups()
    prefix = f"{parent}/{collection}/"
    if method == "GET" and ident is None:
        wanted = dict(_FILTER.findall(query.get("filter", "")))

        def field(item: dict[str, Any], key: str) -> Any:
            return (item.get("labels") or {}).get("email_address") if key == "labels.email_address" else item.get("displayName")

        return {collection: [v for k, v in sorted(store.items()) if k.startswith(prefix) and all(field(v, key) == value for key, value in wanted.items())]}
    if method == "POST" and ident is None:
        name = f"{prefix}{number()}"
        store[name] = {**body, "name": name}
        return store[name]
    name = f"{prefix}{ident}"
    if name not in store:
        raise not_found(name)
    if method == "PATCH":
        store[name] = {**body, "name": name}
        return store[name]
    if method == "GET":
        return store[name]
    if method == "DELETE":
        del store[name]
        return {}
    raise not_found(f"{method} {path}")
