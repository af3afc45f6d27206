"""The Vertex AI REST API (v1) on 127.0.0.1, as aiplatform's service clients call it with
`api_endpoint` and the REST transport: CustomJobs and HyperparameterTuningJobs (executed),
the Model Registry, Endpoints, PipelineJobs (run by the emulator's pipeline interpreter),
Schedules, Feature Store resources and (Cloud Monitoring, v3) notification channels and alert
policies, kept as created. Long-running operations finish at once."""

from __future__ import annotations

import copy
import json
import re
import threading
from typing import Any
from urllib.parse import parse_qs, unquote

from mlcompile.emulate.services import cloud_monitoring, secret_manager, vertex_feature_store
from mlcompile.emulate.services.execution import Execution, PipelineRun
from mlcompile.emulate.services.http import ApiError, JsonService, invalid, not_found
from mlcompile.emulate.services.vertex_jobs import JobRequestError, VertexJobs, now
from mlcompile.emulate.services.vertex_registry import VertexRegistry

_LOCATION = r"/v1(?:beta1)?/(projects/[^/]+/locations/[^/]+)"
_JOB = re.compile(_LOCATION + r"/(customJobs|hyperparameterTuningJobs|pipelineJobs)(?:/([^/:]+))?(:cancel)?")
_MODEL = re.compile(_LOCATION + r"/models(?:/([^/:]+))?(?::(upload|listVersions|mergeVersionAliases))?")
_ENDPOINT = re.compile(_LOCATION + r"/endpoints(?:/([^/:]+))?(?::(deployModel|undeployModel))?")
_SCHEDULE = re.compile(_LOCATION + r"/schedules(?:/([^/:]+))?")
_OPERATION = re.compile(r"/v1(?:beta1)?/(.+/operations/[^/]+)")
_PIPELINE_ENDED = {"PIPELINE_STATE_SUCCEEDED", "PIPELINE_STATE_FAILED", "PIPELINE_STATE_CANCELLED"}


def display_filter(query: dict[str, str]) -> str | None:
    wanted = re.fullmatch(r'display_name\s*=\s*"(.*)"', query.get("filter", "").strip())
    return wanted.group(1) if wanted else None


class VertexService(JsonService):
    def __init__(self, execution: Execution | None = None) -> None:
        self.execution = execution
        self.registry = VertexRegistry()
        self.models = self.registry.models
        self.endpoints = self.registry.endpoints
        self.jobs: dict[str, dict[str, Any]] = {}
        self._jobs = VertexJobs(execution, self.jobs) if execution is not None else None
        self.pipeline_jobs: dict[str, dict[str, Any]] = {}  # job id -> PipelineJob
        self.submitted: list[str] = []  # ids of the PipelineJobs created through the API, in order
        self.schedules: dict[str, dict[str, Any]] = {}
        self.feature_store: dict[str, dict[str, Any]] = {}
        self.monitoring: dict[str, dict[str, Any]] = {}  # Cloud Monitoring: notification channels and alert policies
        self.operations: dict[str, dict[str, Any]] = {}
        self._lock = threading.RLock()
        self._next = 0
        super().__init__()
        self.endpoint = self.url

    def respond(self, method: str, url: Any, raw: bytes, content_type: str) -> tuple[int, Any]:
        query = {k: v[0] for k, v in parse_qs(url.query).items()}
        try:
            body = json.loads(raw) if raw else None
        except json.JSONDecodeError:
            return invalid("the request body is not JSON").google()
        try:
            return self.route(method, unquote(url.path), query, body)
        except ApiError as error:
            return error.google()
        except JobRequestError as error:
            return invalid(str(error)).google()

    def _number(self) -> int:
        with self._lock:
            self._next += 1
            return self._next

    def done(self, parent: str, type_name: str | None, response: dict[str, Any] | None = None) -> dict[str, Any]:
        """A finished long-running operation (kept, so polling it answers too)."""
        with self._lock:
            self._next += 1
            name = f"{parent}/operations/{self._next}"
            operation: dict[str, Any] = {"name": name, "done": True}
            if type_name is not None:
                operation["response"] = {"@type": f"type.googleapis.com/google.cloud.aiplatform.v1.{type_name}", **(response or {})}
            self.operations[name] = operation
            return operation

    def route(self, method: str, path: str, query: dict[str, str], body: Any) -> tuple[int, Any]:
        answer = vertex_feature_store.route(self.feature_store, self.done, method, path, query, body)
        if answer is None:
            answer = cloud_monitoring.route(self.monitoring, self._number, method, path, query, body)
        if answer is None:
            answer = secret_manager.route(self.execution.secrets if self.execution else {}, method, path)
        if answer is not None:
            return 200, answer
        for pattern, handler in ((_MODEL, self._model), (_JOB, self._job), (_ENDPOINT, self._endpoint), (_SCHEDULE, self._schedule)):
            match = pattern.fullmatch(path)
            if match:
                return 200, handler(method, *match.groups(), query=query, body=body)
        match = _OPERATION.fullmatch(path)
        if match and method == "GET":
            if match.group(1) not in self.operations:
                raise not_found(f"Operation {match.group(1)}")
            return 200, self.operations[match.group(1)]
        raise not_found(f"{method} {path}")

    # ------------------------------------------------------------------ models
    def _model(self, method: str, parent: str, ident: str | None, verb: str | None, *, query: dict[str, str], body: Any) -> Any:
        name = f"{parent}/models/{ident}"
        if method == "POST" and verb == "upload" and ident is None:
            operation = self.done(parent, "UploadModelResponse", self.registry.upload(parent, body))
            self.on_change("registered")
            return operation
        if method == "GET" and ident is None:
            return {"models": self.registry.list_models(parent, display_filter(query))}
        if method == "GET" and verb == "listVersions":
            return {"models": self.registry.list_versions(name)}
        if method == "GET" and verb is None:
            return self.registry.version(name)
        if method == "POST" and verb == "mergeVersionAliases":
            merged = self.registry.merge_aliases(name, list(body.get("versionAliases") or []))
            self.on_change("registered")
            return merged
        if method == "PATCH" and verb is None:
            return self.registry.update_version(name, body, [f for f in query.get("updateMask", "").split(",") if f])
        raise not_found(f"{method} models")

    # ------------------------------------------------------------------ jobs
    def _job(self, method: str, parent: str, collection: str, ident: str | None, cancel: str | None, *, query: dict[str, str], body: Any) -> Any:
        if collection == "pipelineJobs":
            return self._pipeline_job(method, parent, ident, cancel, query, body)
        if self._jobs is None:
            raise ApiError(501, "UNIMPLEMENTED", "this service runs no jobs (no emulation)")
        name = f"{parent}/{collection}/{ident}"
        if method == "POST" and ident is None:
            return self._jobs.create(parent, collection, body)
        if method == "GET" and ident is None:
            return {collection: self._jobs.listed(parent, collection)}
        if name not in self.jobs:
            raise not_found(name)
        if method == "POST" and cancel:
            self._jobs.cancel(name)
            return {}
        if method == "GET":
            return self._jobs.get(name)
        raise not_found(f"{method} {name}")

    def _pipeline_job(self, method: str, parent: str, ident: str | None, cancel: str | None, query: dict[str, str], body: Any) -> Any:
        if method == "POST" and ident is None:
            with self._lock:
                self._next += 1
                job_id = query.get("pipelineJobId") or f"{(body.get('displayName') or 'pipeline')}-{self._next}"
                if job_id in self.pipeline_jobs:
                    raise ApiError(409, "ALREADY_EXISTS", f"PipelineJob {job_id} already exists")
                self.pipeline_jobs[job_id] = {**body, "name": f"{parent}/pipelineJobs/{job_id}", "state": "PIPELINE_STATE_PENDING", "createTime": now()}
                self.submitted.append(job_id)
                created = copy.deepcopy(self.pipeline_jobs[job_id])
            if self.execution is not None and self.execution.run_pipeline is not None:
                self.execution.background(lambda: self._run_pipeline(job_id))
            self.on_change("retraining")
            return created
        if method == "GET" and ident is None:
            wanted = display_filter(query)
            with self._lock:
                return {"pipelineJobs": [copy.deepcopy(j) for _, j in sorted(self.pipeline_jobs.items()) if wanted is None or j.get("displayName") == wanted]}
        if ident not in self.pipeline_jobs:
            raise not_found(f"PipelineJob {ident}")
        job = self.pipeline_jobs[ident]
        if method == "POST" and cancel:
            with self._lock:
                if job["state"] not in _PIPELINE_ENDED:
                    job["state"] = "PIPELINE_STATE_CANCELLING"
            return {}
        with self._lock:
            return copy.deepcopy(job)

    def _run_pipeline(self, job_id: str) -> None:
        assert self.execution is not None
        with self._lock:
            job = self.pipeline_jobs[job_id]
            job.update(state="PIPELINE_STATE_RUNNING", startTime=now())
            spec, runtime = copy.deepcopy(job.get("pipelineSpec") or {}), job.get("runtimeConfig") or {}
        parameters = dict(runtime.get("parameterValues") or runtime.get("parameters") or {})
        error = self.execution.pipeline(PipelineRun(spec, parameters, job_id))
        with self._lock:
            if job["state"] == "PIPELINE_STATE_CANCELLING":
                job["state"] = "PIPELINE_STATE_CANCELLED"
            elif error:
                job.update(state="PIPELINE_STATE_FAILED", error={"code": 9, "message": error})
            else:
                job["state"] = "PIPELINE_STATE_SUCCEEDED"
            job["endTime"] = now()
        self.on_change("retraining")

    # ------------------------------------------------------------------ endpoints
    def _endpoint(self, method: str, parent: str, ident: str | None, verb: str | None, *, query: dict[str, str], body: Any) -> Any:
        if method == "POST" and ident is None:
            return self.done(parent, "Endpoint", self.registry.create_endpoint(parent, query.get("endpointId"), body))
        if method == "GET" and ident is None:
            return {"endpoints": self.registry.list_endpoints(parent, display_filter(query))}
        assert ident is not None
        if method == "GET":
            return self.registry.endpoint(ident)
        if method == "PATCH":
            answer = self.registry.update_endpoint(ident, body, [f for f in query.get("updateMask", "").split(",") if f])
        elif method == "POST" and verb == "deployModel":
            answer = self.done(parent, "DeployModelResponse", self.registry.deploy(ident, body))
        elif method == "POST" and verb == "undeployModel":
            answer = self.done(parent, "UndeployModelResponse", self.registry.undeploy(ident, body))
        else:
            raise not_found(f"{method} endpoints/{ident}")
        self.on_change("deployed")
        return answer

    # ------------------------------------------------------------------ schedules
    def _schedule(self, method: str, parent: str, ident: str | None, *, query: dict[str, str], body: Any) -> Any:
        name = f"{parent}/schedules/{ident}"
        if method == "GET" and ident is None:
            wanted = display_filter(query)
            return {"schedules": [s for s in self.schedules.values() if wanted is None or s["displayName"] == wanted]}
        if method == "POST" and ident is None:
            with self._lock:
                self._next += 1
                name = f"{parent}/schedules/{self._next}"
                self.schedules[name] = {**body, "name": name, "state": "ACTIVE", "createTime": now()}
                return self.schedules[name]
        if method == "DELETE":
            self.schedules.pop(name, None)
            return self.done(parent, None)
        if method == "GET" and name in self.schedules:
            return self.schedules[name]
        raise not_found(f"Schedule {name}")
