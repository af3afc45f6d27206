"""A stand-in for the Kubernetes API server on 127.0.0.1 (custom objects only), recording
calls: enough for the kubeflow launcher to create a PyTorchJob or Katib Experiment, watch its
conditions and read the optimal trial, and for deploy-online to read and replace an
InferenceService. A kubeconfig pointing at it is written for the client."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import yaml
from json_service import JsonService


class KubeStandIn(JsonService):
    def __init__(self) -> None:
        self.calls: list[tuple[str, str]] = []
        self.objects: dict[str, dict[str, Any]] = {}
        self.polls: dict[str, int] = {}
        self.final = "Succeeded"  # or Failed
        self.optimal_trial: dict[str, Any] = {}
        super().__init__()
        self.host = self.url

    def respond(self, method: str, url: Any, raw: bytes, content_type: str) -> tuple[int, Any]:
        path = url.path + (f"?{url.query}" if url.query else "")
        self.calls.append((method, path))
        return self.route(method, url.path, json.loads(raw) if raw else None)

    def kubeconfig(self, folder: Path) -> Path:
        config = {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [{"name": "stand-in", "cluster": {"server": self.host}}],
            "users": [{"name": "tester", "user": {"token": "not-a-secret"}}],
            "contexts": [{"name": "stand-in", "context": {"cluster": "stand-in", "user": "tester"}}],
            "current-context": "stand-in",
        }
        path = folder / "kubeconfig"
        path.write_text(yaml.safe_dump(config))
        return path


    def route(self, method: str, path: str, body: Any) -> tuple[int, Any]:
        match = re.fullmatch(r"/apis/([^/]+)/([^/]+)/namespaces/([^/]+)/([^/]+)(?:/([^/]+))?", path)
        if not match:
            return 404, {"kind": "Status", "code": 404, "message": f"no {path}"}
        _, _, namespace, plural, name = match.groups()
        if method == "POST" and name is None:
            key = f"{namespace}/{plural}/{body['metadata']['name']}"
            self.objects[key] = body
            return 201, body
        key = f"{namespace}/{plural}/{name}"
        if key not in self.objects:
            return 404, {"kind": "Status", "code": 404, "message": f"{key} not found"}
        if method == "PUT":  # a replace: the whole object, as the client read and changed it
            if body["metadata"].get("name") != name:
                return 400, {"kind": "Status", "code": 400, "message": "the body's name does not match the URL"}
            self.objects[key] = body
            return 200, body
        if method == "DELETE":
            self.objects.pop(key)
            return 200, {"kind": "Status", "status": "Success"}
        self.polls[key] = self.polls.get(key, 0) + 1
        obj = dict(self.objects[key])
        if self.polls[key] > 1 and self.final != "Running":
            obj["status"] = {"conditions": [{"type": "Created", "status": "True"}, {"type": self.final, "status": "True", "message": f"job {self.final.lower()}"}]}
            if plural == "experiments" and self.final == "Succeeded":
                obj["status"]["currentOptimalTrial"] = self.optimal_trial
        return 200, obj
