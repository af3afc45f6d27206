"""A stand-in for the Vertex AI REST API (v1) on 127.0.0.1, recording every call: pipeline jobs,
schedules, endpoints and Feature Store resources, as `mlcompile deploy` reaches them through
aiplatform's service clients with `api_endpoint` + REST transport. A new pipeline job is
PIPELINE_STATE_PENDING until a test moves its `state`. It also serves the Cloud Monitoring
API (v3) notification channels and alert policies that a deploy creates beside them."""

from __future__ import annotations

import json
import re
from typing import Any
from urllib.parse import parse_qs

from json_service import JsonService


class VertexStandIn(JsonService):
    def __init__(self) -> None:
        self.calls: list[tuple[str, str, dict[str, str], Any]] = []
        self.pipeline_jobs: dict[str, dict[str, Any]] = {}
        self.schedules: dict[str, dict[str, Any]] = {}
        self.endpoints: dict[str, dict[str, Any]] = {}
        self.jobs: dict[str, dict[str, Any]] = {}  # custom and hyperparameter tuning jobs
        self.final_state = "JOB_STATE_SUCCEEDED"  # what a job ends in (after one RUNNING poll)
        self.trials: list[dict[str, Any]] = []  # trials a tuning job reports when it ends
        self.models: dict[str, dict[str, Any]] = {}  # name -> model, with its versions
        self.feature_store: dict[str, dict[str, Any]] = {}  # resource name -> online store, group, feature or view
        self.monitoring: dict[str, dict[str, Any]] = {}  # Cloud Monitoring: notification channels and alert policies by name
        self._next = 0
        super().__init__()
        self.endpoint = self.url

    def respond(self, method: str, url: Any, raw: bytes, content_type: str) -> tuple[int, Any]:
        query = {k: v[0] for k, v in parse_qs(url.query).items()}
        body = json.loads(raw) if raw else None
        self.calls.append((method, url.path, query, body))
        return self.route(method, url.path, query, body)


    def _operation(self, parent: str, response: dict[str, Any] | None = None) -> dict[str, Any]:
        self._next += 1
        return {"name": f"{parent}/operations/{self._next}", "done": True}

    def _model(self, method: str, parent: str, ident: str | None, upload: str | None, body: Any) -> tuple[int, Any]:
        if method == "GET" and ident is not None:
            name = f"{parent}/models/{ident}"
            return (200, self.models[name]) if name in self.models else self._error(404, "NOT_FOUND", f"{name} not found")
        if method == "POST" and upload:
            name = body.get("parentModel") or f"{parent}/models/{body['modelId']}"
            entry = self.models.setdefault(name, {**body["model"], "name": name, "versions": []})
            entry["versions"].append({"request": body, "aliases": body["model"].get("versionAliases", [])})
            version = str(len(entry["versions"]))
            response = {"@type": "type.googleapis.com/google.cloud.aiplatform.v1.UploadModelResponse", "model": name, "modelVersionId": version}
            self._next += 1
            return 200, {"name": f"{parent}/operations/{self._next}", "done": True, "response": response}
        return self._error(404, "NOT_FOUND", f"stand-in has no {method} models")

    def _job(self, method: str, parent: str, collection: str, ident: str | None, cancel: str | None, body: Any) -> tuple[int, Any]:
        if method == "POST" and ident is None:
            self._next += 1
            name = f"{parent}/{collection}/{self._next}"
            self.jobs[name] = {**body, "name": name, "state": "JOB_STATE_PENDING", "polls": 0}
            return 200, {k: v for k, v in self.jobs[name].items() if k != "polls"}
        name = f"{parent}/{collection}/{ident}"
        if name not in self.jobs:
            return self._error(404, "NOT_FOUND", f"{name} not found")
        job = self.jobs[name]
        if cancel:
            job["state"] = "JOB_STATE_CANCELLED"
            return 200, {}
        job["polls"] += 1
        if job["state"] != "JOB_STATE_CANCELLED":
            job["state"] = "JOB_STATE_RUNNING" if job["polls"] == 1 or self.final_state == "RUNNING_FOREVER" else self.final_state
            if collection == "hyperparameterTuningJobs" and job["state"] == "JOB_STATE_SUCCEEDED":
                job["trials"] = self.trials
        return 200, {k: v for k, v in job.items() if k != "polls"}

    @staticmethod
    def _error(code: int, status: str, message: str) -> tuple[int, Any]:
        return code, {"error": {"code": code, "status": status, "message": message}}

    def _feature_store(self, method: str, path: str, query: dict[str, str], body: Any) -> tuple[int, Any] | None:
        """Vertex AI Feature Store: online stores and their feature views (admin service), feature
        groups and their features (registry service); creations answer with a finished operation."""
        match = re.fullmatch(r"/v1/(projects/[^/]+/locations/[^/]+(?:/featureOnlineStores/[^/]+|/featureGroups/[^/]+)?)/(featureOnlineStores|featureViews|featureGroups|features)(?:/([^/:]+))?(:batchCreate)?", path)
        if not match:
            return None
        parent, collection, ident, batch = match.groups()
        kinds = {"featureOnlineStores": ("featureOnlineStoreId", "FeatureOnlineStore"), "featureViews": ("featureViewId", "FeatureView"), "featureGroups": ("featureGroupId", "FeatureGroup"), "features": ("featureId", "Feature")}
        id_param, type_name = kinds[collection]
        if batch and method == "POST":
            created = []
            for request in body["requests"]:
                name = f"{parent}/features/{request['featureId']}"
                self.feature_store[name] = created_item = {**request["feature"], "name": name}
                created.append(created_item)
            return 200, self._done(parent, "BatchCreateFeaturesResponse", {"features": created})
        if method == "GET" and ident is None:
            prefix = f"{parent}/{collection}/"
            return 200, {collection: [v for k, v in sorted(self.feature_store.items()) if k.startswith(prefix) and "/" not in k[len(prefix):]]}
        if method == "GET":
            name = f"{parent}/{collection}/{ident}"
            return (200, self.feature_store[name]) if name in self.feature_store else self._error(404, "NOT_FOUND", f"{name} not found")
        if method == "POST" and ident is None:
            name = f"{parent}/{collection}/{query[id_param]}"
            if name in self.feature_store:
                return self._error(409, "ALREADY_EXISTS", f"{name} already exists")
            self.feature_store[name] = {**body, "name": name}
            return 200, self._done(parent, type_name, self.feature_store[name])
        if method == "PATCH" and ident is not None:
            name = f"{parent}/{collection}/{ident}"
            if name not in self.feature_store:
                return self._error(404, "NOT_FOUND", f"{name} not found")
            for field in query.get("updateMask", "").split(","):
                key = re.sub(r"_([a-z])", lambda m: m.group(1).upper(), field.split(".")[0])
                if key in body:
                    self.feature_store[name][key] = body[key]
            return 200, self._done(parent, type_name, self.feature_store[name])
        return self._error(404, "NOT_FOUND", f"stand-in has no {method} {path}")

    def _done(self, parent: str, type_name: str, response: dict[str, Any]) -> dict[str, Any]:
        self._next += 1
        return {"name": f"{parent}/operations/{self._next}", "done": True, "response": {"@type": f"type.googleapis.com/google.cloud.aiplatform.v1.{type_name}", **response}}

    def _cloud_monitoring(self, method: str, path: str, query: dict[str, str], body: Any) -> tuple[int, Any] | None:
        match = re.fullmatch(r"/v3/(projects/[^/]+)/(notificationChannels|alertPolicies)(?:/([^/]+))?", path)
        if not match:
            return None
        parent, collection, ident = match.groups()
        prefix = f"{parent}/{collection}/"
        if method == "GET" and ident is None:
            wanted = dict(re.findall(r'(labels\.email_address|display_name)="([^"]*)"', query.get("filter", "")))

            def field(item: dict[str, Any], key: str) -> Any:
                return item.get("labels", {}).get("email_address") if key == "labels.email_address" else item.get("displayName")

            found = [v for k, v in sorted(self.monitoring.items()) if k.startswith(prefix) and all(field(v, key) == value for key, value in wanted.items())]
            return 200, {collection: found}
        if method == "POST" and ident is None:
            self._next += 1
            name = f"{prefix}{self._next}"
            self.monitoring[name] = {**body, "name": name}
            return 200, self.monitoring[name]
        if method == "PATCH" and f"{prefix}{ident}" in self.monitoring:
            self.monitoring[f"{prefix}{ident}"] = {**body, "name": f"{prefix}{ident}"}
            return 200, self.monitoring[f"{prefix}{ident}"]
        return self._error(404, "NOT_FOUND", f"stand-in has no {method} {path}")

    def route(self, method: str, path: str, query: dict[str, str], body: Any) -> tuple[int, Any]:
        answer = self._cloud_monitoring(method, path, query, body) or self._feature_store(method, path, query, body)
        if answer is not None:
            return answer
        model = re.fullmatch(r"/v1/(projects/[^/]+/locations/[^/]+)/models(?:/([^/:]+))?(:upload)?", path)
        if model:
            return self._model(method, *model.groups(), body)
        job = re.fullmatch(r"/v1/(projects/[^/]+/locations/[^/]+)/(customJobs|hyperparameterTuningJobs)(?:/([^/:]+))?(:cancel)?", path)
        if job:
            return self._job(method, *job.groups(), body)
        match = re.fullmatch(r"/v1/(projects/[^/]+/locations/[^/]+)/(pipelineJobs|schedules|endpoints)(?:/([^/]+))?", path)
        if not match:
            return self._error(404, "NOT_FOUND", f"stand-in has no {method} {path}")
        parent, collection, ident = match.groups()
        if collection == "pipelineJobs" and method == "GET" and ident is not None:
            if ident not in self.pipeline_jobs:
                return self._error(404, "NOT_FOUND", f"PipelineJob {ident} not found")
            return 200, self.pipeline_jobs[ident]
        if collection == "pipelineJobs" and method == "GET":
            wanted = re.fullmatch(r'display_name="(.*)"', query.get("filter", ""))
            found = [j for j in self.pipeline_jobs.values() if wanted is None or j.get("displayName") == wanted.group(1)]
            return 200, {"pipelineJobs": found}
        if collection == "pipelineJobs" and method == "POST":
            job_id = query["pipelineJobId"]
            if job_id in self.pipeline_jobs:
                return self._error(409, "ALREADY_EXISTS", f"PipelineJob {job_id} already exists")
            self.pipeline_jobs[job_id] = {**body, "name": f"{parent}/pipelineJobs/{job_id}", "state": "PIPELINE_STATE_PENDING"}
            return 200, self.pipeline_jobs[job_id]
        if collection == "schedules" and method == "GET" and ident is None:
            wanted = re.fullmatch(r'display_name="(.*)"', query.get("filter", ""))
            found = [s for s in self.schedules.values() if wanted is None or s["displayName"] == wanted.group(1)]
            return 200, {"schedules": found}
        if collection == "schedules" and method == "POST":
            self._next += 1
            name = f"{parent}/schedules/{self._next}"
            self.schedules[name] = {**body, "name": name}
            return 200, self.schedules[name]
        if collection == "schedules" and method == "DELETE":
            self.schedules.pop(f"{parent}/schedules/{ident}", None)
            return 200, self._operation(parent)
        if collection == "endpoints" and method == "GET" and ident is not None:
            if ident not in self.endpoints:
                return self._error(404, "NOT_FOUND", f"Endpoint {ident} not found")
            return 200, self.endpoints[ident]
        if collection == "endpoints" and method == "POST":
            ident = query["endpointId"]
            if ident in self.endpoints:
                return self._error(409, "ALREADY_EXISTS", f"Endpoint {ident} already exists")
            self.endpoints[ident] = {**body, "name": f"{parent}/endpoints/{ident}"}
            return 200, self._operation(parent)
        return self._error(404, "NOT_FOUND", f"stand-in has no {method} {path}")
