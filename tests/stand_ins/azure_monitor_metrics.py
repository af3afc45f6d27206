"""A local stand-in for Azure Monitor's custom metrics ingestion endpoint
(POST https://<region>.monitoring.azure.com<resource id>/metrics) on 127.0.0.1, plain HTTP.

It answers as the service documents (learn.microsoft.com, "Ingest custom metrics for an Azure
resource using the REST API"): 200 for a valid document; 401 without a bearer token; 400 when
the body is not one metric document — `time` (ISO 8601, within the last 20 minutes or the
next 5), `data.baseData` with `metric`, `namespace`, `series` of values (`min`, `max`, `sum`,
`count`), and as many `dimValues` per series as `dimNames`. It records what it accepted, with
the path's region prefix (a stand-in serves every region under `/<region>`)."""

from __future__ import annotations

import datetime
import json
from dataclasses import dataclass
from typing import Any
from urllib.parse import ParseResult

from mlcompile.emulate.services.http import JsonService


@dataclass
class Ingested:
    path: str
    token: str
    document: dict[str, Any]


class MetricsStandIn(JsonService):
    """Use as a context manager (`with MetricsStandIn() as ingestion: … ingestion.url`)."""

    def __init__(self) -> None:
        super().__init__()
        self.accepted: list[Ingested] = []
        self.refused: list[str] = []

    def respond(self, method: str, url: ParseResult, raw: bytes, content_type: str) -> tuple[int, Any]:
        try:
            document = json.loads(raw) if method == "POST" else None
        except ValueError:
            document = None
        authorization = self.last_headers.get("Authorization") or ""
        refused = self.problem(url.path, authorization, document)
        if refused is not None:
            self.refused.append(refused[1])
            return refused[0], {"error": {"code": "BadRequest", "message": refused[1]}}
        self.accepted.append(Ingested(url.path, authorization[len("Bearer ") :], document))
        return 200, {}

    def problem(self, path: str, authorization: str, document: Any) -> tuple[int, str] | None:
        if not authorization.startswith("Bearer ") or len(authorization) <= len("Bearer "):
            return 401, "no bearer token"
        if "/subscriptions/" not in path or not path.endswith("/metrics"):
            return 404, f"not a resource's metrics path: {path}"
        if not isinstance(document, dict):
            return 400, "the body is not a JSON object"
        try:
            when = datetime.datetime.fromisoformat(str(document["time"]).replace("Z", "+00:00"))
        except (KeyError, ValueError):
            return 400, "time: missing or not ISO 8601"
        now = datetime.datetime.now(datetime.UTC)
        if when.tzinfo is None or not now - datetime.timedelta(minutes=20) <= when <= now + datetime.timedelta(minutes=5):
            return 400, f"time {document['time']} is outside the last 20 minutes and the next 5"
        base = (document.get("data") or {}).get("baseData")
        if not isinstance(base, dict) or not all(isinstance(base.get(k), str) and base[k] for k in ("metric", "namespace")):
            return 400, "data.baseData needs metric and namespace"
        names = base.get("dimNames") or []
        series = base.get("series")
        if not isinstance(series, list) or not series:
            return 400, "data.baseData.series is empty"
        for item in series:
            if len(item.get("dimValues") or []) != len(names):
                return 400, "a series has not one dimValue per dimName"
            if not all(isinstance(item.get(k), (int, float)) for k in ("min", "max", "sum", "count")):
                return 400, "a series needs min, max, sum and count"
        return None
