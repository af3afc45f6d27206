"""A stand-in for a Kubernetes cluster's Alertmanager (API v2) on 127.0.0.1, configured with
AlertmanagerConfig resources the way prometheus-operator applies them: each resource's route
gets a `namespace="<its namespace>"` matcher before its own, and an alert whose labels match
every matcher of a route goes to that route's receiver. Records each alert posted and, per
receiver, the addresses its emailConfigs would mail."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import ParseResult

from json_service import JsonService


class AlertmanagerStandIn(JsonService):
    def __init__(self, configs: list[dict[str, Any]]) -> None:
        super().__init__()
        self.configs = configs
        self.alerts: list[dict[str, Any]] = []
        self.mailed: list[str] = []  # addresses, in the order their mail would go out

    def respond(self, method: str, url: ParseResult, raw: bytes, content_type: str) -> tuple[int, Any]:
        if (method, url.path) != ("POST", "/api/v2/alerts"):
            return 404, {"error": f"stand-in has no {method} {url.path}"}
        alerts = json.loads(raw)
        if not isinstance(alerts, list) or not all(isinstance(a.get("labels"), dict) and all(isinstance(v, str) for v in a["labels"].values()) for a in alerts):
            return 400, {"error": "postableAlerts: a list of alerts with string labels"}
        for alert in alerts:
            self.alerts.append(alert)
            for config in self.configs:
                route = config["spec"]["route"]
                matchers = [{"name": "namespace", "value": config["metadata"]["namespace"], "matchType": "="}, *route.get("matchers", [])]
                if all(m["matchType"] == "=" and alert["labels"].get(m["name"]) == m["value"] for m in matchers):
                    receiver = next(r for r in config["spec"]["receivers"] if r["name"] == route["receiver"])
                    self.mailed += [email["to"] for email in receiver.get("emailConfigs", [])]
        return 200, {}
