"""`mlcompile deploy` of a vertex build's email alerting (alerting.py) through the Cloud
Monitoring REST API (v3): each email notification channel found by its address or created,
then the alert policy created with the channels' names, or updated when its definition
changed. google-cloud-monitoring ships gRPC transport only, so requests go over REST with
google-auth's AuthorizedSession; errors become google.api_core exceptions like the other
clients'. MLCOMPILE_MONITORING_API_ENDPOINT overrides https://monitoring.googleapis.com; a
local stand-in given as the Vertex AI endpoint (http://127.0.0.1…) serves both APIs."""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from mlcompile.runtime.retries import RetrySettings, create_once, with_retries
from mlcompile.targets.base import DeployAction, live_fingerprint
from mlcompile.targets.vertex.alerting import CHANNEL_KIND, POLICY_KIND

ENDPOINT_ENV = "MLCOMPILE_MONITORING_API_ENDPOINT"
COMPARED = ("displayName", "conditions", "combiner", "documentation", "alertStrategy", "severity", "notificationChannels", "userLabels")


def planned_alerting(files: Callable[[str], list[Path]]) -> list[str]:
    channels = [f"notification channel {json.loads(p.read_text())['labels']['email_address']}" for p in files(CHANNEL_KIND)]
    return channels + [f"alert policy {json.loads(p.read_text())['displayName']}" for p in files(POLICY_KIND)]


class _Monitoring:
    def __init__(self, base: str, project: str, credentials: Any):
        from google.auth.transport.requests import AuthorizedSession

        self.base = base.rstrip("/")
        self.parent = f"projects/{project}"
        self.session = AuthorizedSession(credentials)
        self.timeout = RetrySettings.from_env().timeout

    def call(self, method: str, path: str, body: Any = None, params: dict[str, str] | None = None) -> Any:
        from google.api_core import exceptions

        response = self.session.request(method, f"{self.base}/v3/{path}", json=body, params=params, timeout=self.timeout)
        if response.status_code >= 400:
            raise exceptions.from_http_response(response)
        return response.json()

    def listed(self, collection: str, filter_: str) -> list[dict[str, Any]]:
        found = with_retries(lambda: self.call("GET", f"{self.parent}/{collection}", params={"filter": filter_}))
        return list(found.get(collection) or [])


def endpoint(vertex_endpoint: str) -> str:
    if os.environ.get(ENDPOINT_ENV):
        return os.environ[ENDPOINT_ENV]
    if vertex_endpoint.startswith(("http://127.0.0.1", "http://localhost")):
        return vertex_endpoint
    return "https://monitoring.googleapis.com"


def deploy_alerting(
    files: Callable[[str], list[Path]], project: str, vertex_endpoint: str, credentials: Any, dry_run: bool, actions: list[DeployAction]
) -> None:
    channel_files, policy_files = files(CHANNEL_KIND), files(POLICY_KIND)
    if not (channel_files or policy_files):
        return
    api = _Monitoring(endpoint(vertex_endpoint), project, credentials)
    names: list[str] = []
    for path in channel_files:
        body = json.loads(path.read_text())
        address = body["labels"]["email_address"]
        found = api.listed("notificationChannels", f'type="email" AND labels.email_address="{address}"')
        resource = f"notification channel {address}"
        if found:
            names.append(found[0]["name"])
            actions.append(DeployAction(resource, "unchanged", found[0]["name"], live_fingerprint(found[0]["name"])))
            continue
        if not dry_run:
            created = create_once(
                lambda: api.call("POST", f"{api.parent}/notificationChannels", body),
                lambda: next(iter(api.listed("notificationChannels", f'type="email" AND labels.email_address="{address}"')), None),
            )
            names.append(created["name"])
        actions.append(DeployAction(resource, "create", "email", live_fingerprint(None)))
    for path in policy_files:
        policy = {**json.loads(path.read_text()), "notificationChannels": sorted(names)}
        found = api.listed("alertPolicies", f'display_name="{policy["displayName"]}"')
        resource = f"alert policy {policy['displayName']}"
        live = live_fingerprint([{k: p.get(k) for k in ("name", *COMPARED)} for p in found] or None)
        current = found[0] if found else None
        if current is not None and all(_same(current.get(k), policy.get(k)) for k in COMPARED):
            actions.append(DeployAction(resource, "unchanged", "", live))
            continue
        if not dry_run:
            if current is None:
                create_once(
                    lambda: api.call("POST", f"{api.parent}/alertPolicies", policy),
                    lambda: next(iter(api.listed("alertPolicies", f'display_name="{policy["displayName"]}"')), None),
                )
            else:  # a PATCH without updateMask replaces the policy's fields with the body's
                with_retries(lambda: api.call("PATCH", current["name"], policy))
        actions.append(DeployAction(resource, "update" if current is not None else "create", "emails on a logged monitoring breach", live))


def _same(live: Any, built: Any) -> bool:
    """Equal up to what the API fills in (condition names, sorted channel lists)."""
    if isinstance(live, list) and isinstance(built, list):
        if all(isinstance(v, str) for v in [*live, *built]):
            return sorted(live) == sorted(built)
        return len(live) == len(built) and all(_same(a, b) for a, b in zip(live, built))
    if isinstance(live, dict) and isinstance(built, dict):
        return all(_same(live.get(k), v) for k, v in built.items())
    return bool(live == built)
