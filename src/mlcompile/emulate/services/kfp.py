"""The Kubeflow Pipelines REST API (v2beta1) on 127.0.0.1, as `kfp.Client` calls it:
pipelines and their versions (uploaded files kept), experiments, recurring runs (kept), and
runs, which the emulator's pipeline interpreter executes."""

from __future__ import annotations

import copy
import json
import re
import threading
import uuid
from typing import Any
from urllib.parse import parse_qs

import yaml

from mlcompile.emulate.services.execution import Execution, PipelineRun
from mlcompile.emulate.services.http import JsonService
from mlcompile.emulate.services.vertex_jobs import now

_ENDED = {"SUCCEEDED", "FAILED", "CANCELED"}


def not_found(what: str) -> tuple[int, Any]:
    return 404, {"error": f"{what} not found", "message": f"{what} not found", "code": 5}


def pipeline_documents(spec: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """The IR and platform config of a run's `pipeline_spec` (kfp.Client nests the two when
    the package has a platform config)."""
    if "pipeline_spec" in spec:
        return spec["pipeline_spec"], spec.get("platform_spec") or {}
    return spec, {}


class KfpService(JsonService):
    def __init__(self, execution: Execution | None = None) -> None:
        self.execution = execution
        self.pipelines: dict[str, dict[str, Any]] = {}
        self.versions: dict[str, dict[str, Any]] = {}
        self.experiments: dict[str, dict[str, Any]] = {}
        self.recurring_runs: dict[str, dict[str, Any]] = {}
        self.runs: dict[str, dict[str, Any]] = {}
        self.uploads: dict[str, bytes] = {}  # version id -> the uploaded pipeline file
        self._lock = threading.RLock()
        super().__init__()
        self.host = self.url

    def respond(self, method: str, url: Any, raw: bytes, content_type: str) -> tuple[int, Any]:
        query = {k: v[0] for k, v in parse_qs(url.query).items()}
        return self.route(method, url.path, query, raw, content_type)

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
        if path.startswith("/apis/v2beta1/runs"):
            return self._runs(method, path, query, body)
        if method == "GET" and path == "/apis/v2beta1/pipelines":
            found = [p for p in self.pipelines.values() if name is None or p["display_name"] == name]
            return 200, {"pipelines": found, "total_size": len(found)}
        if method == "POST" and path == "/apis/v2beta1/pipelines/upload":
            pid = str(uuid.uuid4())
            display = query.get("display_name") or query.get("name")
            self.pipelines[pid] = {
                "pipeline_id": pid,
                "display_name": display,
                "name": display,
                "description": query.get("description", ""),
                "created_at": now(),
            }
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
            self.experiments[eid] = {"experiment_id": eid, "display_name": body["display_name"], "namespace": body.get("namespace"), "created_at": now()}
            return 200, self.experiments[eid]
        if method == "GET" and path == "/apis/v2beta1/recurringruns":
            found = [r for r in self.recurring_runs.values() if name is None or r["display_name"] == name]
            return 200, {"recurringRuns": found, "recurring_runs": found, "total_size": len(found)}
        if method == "POST" and path == "/apis/v2beta1/recurringruns":
            rid = str(uuid.uuid4())
            self.recurring_runs[rid] = {**body, "recurring_run_id": rid}
            return 200, self.recurring_runs[rid]
        match = re.fullmatch(r"/apis/v2beta1/recurringruns/([^/]+)", path)
        if method == "DELETE" and match:
            self.recurring_runs.pop(match.group(1), None)
            return 200, {}
        return 404, {"error": f"no {method} {path}", "code": 5}

    def _add_version(self, pid: str, name: str | None, content: bytes) -> dict[str, Any]:
        vid = str(uuid.uuid4())
        self.uploads[vid] = content
        self.versions[vid] = {"pipeline_id": pid, "pipeline_version_id": vid, "display_name": name, "name": name, "created_at": now()}
        return self.versions[vid]

    # ------------------------------------------------------------------ runs
    def _runs(self, method: str, path: str, query: dict[str, str], body: dict[str, Any]) -> tuple[int, Any]:
        match = re.fullmatch(r"/apis/v2beta1/runs(?:/([^/:]+))?(:terminate)?", path)
        if not match:
            return not_found(path)
        run_id, terminate = match.groups()
        if method == "POST" and run_id is None:
            return self._create_run(body)
        if method == "GET" and run_id is None:
            wanted = query.get("experiment_id")
            with self._lock:
                found = [copy.deepcopy(r) for r in self.runs.values() if wanted is None or r.get("experiment_id") == wanted]
            found.sort(key=lambda r: r["created_at"], reverse=query.get("sort_by", "").endswith(" desc"))
            return 200, {"runs": found, "total_size": len(found)}
        if run_id not in self.runs:
            return not_found(f"run {run_id}")
        with self._lock:
            run = self.runs[run_id]
            if method == "POST" and terminate:
                if run["state"] not in _ENDED:
                    run["state"] = "CANCELING"
                return 200, {}
            return 200, copy.deepcopy(run)

    def _create_run(self, body: dict[str, Any]) -> tuple[int, Any]:
        reference = body.get("pipeline_version_reference") or {}
        if body.get("pipeline_spec"):
            spec, platform = pipeline_documents(body["pipeline_spec"])
        elif reference.get("pipeline_version_id") in self.uploads:
            documents = [d for d in yaml.safe_load_all(self.uploads[reference["pipeline_version_id"]]) if d]
            spec = next((d for d in documents if "pipelineInfo" in d), documents[0] if documents else {})
            platform = next((d for d in documents if "platforms" in d), {})
        else:
            return 400, {"error": "a run needs pipeline_spec or an uploaded pipeline_version_reference", "code": 3}
        run_id = str(uuid.uuid4())
        with self._lock:
            self.runs[run_id] = {**body, "run_id": run_id, "state": "PENDING", "created_at": now(), "scheduled_at": now()}
            created = copy.deepcopy(self.runs[run_id])
        if self.execution is not None and self.execution.run_pipeline is not None:
            self.execution.background(lambda: self._execute(run_id, spec, platform))
        self.on_change("retraining")
        return 200, created

    def _execute(self, run_id: str, spec: dict[str, Any], platform: dict[str, Any]) -> None:
        assert self.execution is not None
        with self._lock:
            run = self.runs[run_id]
            run["state"] = "RUNNING"
            parameters = dict((run.get("runtime_config") or {}).get("parameters") or {})
        error = self.execution.pipeline(PipelineRun(spec, parameters, run_id, platform))
        with self._lock:
            if run["state"] == "CANCELING":
                run["state"] = "CANCELED"
            elif error:
                run.update(state="FAILED", error={"code": 2, "message": error})
            else:
                run["state"] = "SUCCEEDED"
            run["finished_at"] = now()
        self.on_change("retraining")
