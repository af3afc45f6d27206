"""A stand-in for the Kubeflow Pipelines REST API (v2beta1) on 127.0.0.1, recording every call:
enough of pipelines, pipeline versions (upload), experiments, recurring runs and runs for
`kfp.Client` as `mlcompile deploy` and the runtime's trigger-retraining use it. A new run is
PENDING until a test moves its `state`."""

from __future__ import annotations

import json
import re
import uuid
from typing import Any
from urllib.parse import parse_qs

from json_service import JsonService


class KfpStandIn(JsonService):
    def __init__(self) -> None:
        self.calls: list[tuple[str, str, dict[str, Any]]] = []
        self.pipelines: dict[str, dict[str, Any]] = {}
        self.versions: dict[str, dict[str, Any]] = {}
        self.experiments: dict[str, dict[str, Any]] = {}
        self.recurring_runs: dict[str, dict[str, Any]] = {}
        self.runs: dict[str, dict[str, Any]] = {}
        self.uploads: dict[str, bytes] = {}
        # fault injection: statuses answered to the next requests (before routing), and
        # (method, path prefix, status) answered to every matching request
        self.fail_next: list[int] = []
        self.fail_always: list[tuple[str, str, int]] = []
        super().__init__()
        self.host = self.url

    def respond(self, method: str, url: Any, raw: bytes, content_type: str) -> tuple[int, Any]:
        query = {k: v[0] for k, v in parse_qs(url.query).items()}
        self.calls.append((method, url.path, query))
        fault = self.fault_for(method, url.path)
        if fault is not None:
            return fault, {"error": "injected fault", "code": fault}
        return self.route(method, url.path, query, raw, content_type)


    def fault_for(self, method: str, path: str) -> int | None:
        if path.endswith("/healthz"):
            return None
        if self.fail_next:
            return self.fail_next.pop(0)
        return next((status for m, prefix, status in self.fail_always if m == method and path.startswith(prefix)), None)

    # ------------------------------------------------------------------ routing
    @staticmethod
    def _filter_name(query: dict[str, str]) -> str | None:
        if "filter" not in query:
            return None
        predicates = json.loads(query["filter"]).get("predicates", [])
        for p in predicates:
            if p.get("key") in ("display_name", "name"):
                return p.get("string_value") or p.get("stringValue")
        return None

    @staticmethod
    def _file(raw: bytes, content_type: str) -> bytes:
        boundary = re.search(r"boundary=(.+)", content_type)
        if not boundary:
            return raw
        for part in raw.split(b"--" + boundary.group(1).encode()):
            if b"filename=" in part:
                return part.split(b"\r\n\r\n", 1)[1].rsplit(b"\r\n", 1)[0]
        return b""

    def route(self, method: str, path: str, query: dict[str, str], raw: bytes, content_type: str) -> tuple[int, Any]:
        body = json.loads(raw) if raw and "json" in content_type else {}
        name = self._filter_name(query)
        if path == "/apis/v2beta1/healthz":
            return 200, {"multi_user": False}
        if method == "GET" and path == "/apis/v2beta1/pipelines":
            found = [p for p in self.pipelines.values() if name is None or p["display_name"] == name]
            return 200, {"pipelines": found, "total_size": len(found)}
        if method == "POST" and path == "/apis/v2beta1/pipelines/upload":
            pid = str(uuid.uuid4())
            display = query.get("display_name") or query.get("name")
            self.pipelines[pid] = {"pipeline_id": pid, "display_name": display, "name": display, "description": query.get("description", "")}
            self._add_version(pid, display, self._file(raw, content_type))
            return 200, self.pipelines[pid]
        if method == "POST" and path == "/apis/v2beta1/pipelines/upload_version":
            pid = query["pipelineid"]
            version = self._add_version(pid, query.get("display_name") or query.get("name"), self._file(raw, content_type))
            return 200, version
        match = re.fullmatch(r"/apis/v2beta1/pipelines/([^/]+)/versions", path)
        if method == "GET" and match:
            found = [v for v in self.versions.values() if v["pipeline_id"] == match.group(1) and (name is None or v["display_name"] == name)]
            return 200, {"pipeline_versions": found, "total_size": len(found)}
        if method == "GET" and path == "/apis/v2beta1/experiments":
            found = [e for e in self.experiments.values() if name is None or e["display_name"] == name]
            return 200, {"experiments": found, "total_size": len(found)}
        if method == "POST" and path == "/apis/v2beta1/experiments":
            eid = str(uuid.uuid4())
            self.experiments[eid] = {"experiment_id": eid, "display_name": body["display_name"], "namespace": body.get("namespace")}
            return 200, self.experiments[eid]
        if method == "GET" and path == "/apis/v2beta1/recurringruns":
            found = [r for r in self.recurring_runs.values() if name is None or r["display_name"] == name]
            return 200, {"recurringRuns": found, "recurring_runs": found, "total_size": len(found)}
        if method == "POST" and path == "/apis/v2beta1/recurringruns":
            rid = str(uuid.uuid4())
            self.recurring_runs[rid] = {**body, "recurring_run_id": rid}
            return 200, self.recurring_runs[rid]
        if method == "GET" and path == "/apis/v2beta1/runs":
            found = [r for r in self.runs.values() if query.get("experiment_id") in (None, r["experiment_id"])]
            found.sort(key=lambda r: r["created_at"], reverse=query.get("sort_by", "").endswith(" desc"))
            return 200, {"runs": found, "total_size": len(found)}
        if method == "POST" and path == "/apis/v2beta1/runs":
            rid = str(uuid.uuid4())
            self.runs[rid] = {**body, "run_id": rid, "state": "PENDING", "created_at": f"2026-01-01T00:00:{len(self.runs):02d}Z"}
            return 200, self.runs[rid]
        match = re.fullmatch(r"/apis/v2beta1/recurringruns/([^/]+)", path)
        if method == "DELETE" and match:
            self.recurring_runs.pop(match.group(1), None)
            return 200, {}
        return 404, {"error": f"stand-in has no {method} {path}", "code": 5}

    def _add_version(self, pid: str, name: str | None, content: bytes) -> dict[str, Any]:
        vid = str(uuid.uuid4())
        self.uploads[vid] = content
        self.versions[vid] = {"pipeline_id": pid, "pipeline_version_id": vid, "display_name": name, "name": name}
        return self.versions[vid]
