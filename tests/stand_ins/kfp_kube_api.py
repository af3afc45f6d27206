"""A stand-in for the Kubernetes API server on 127.0.0.1 (custom objects only), recording
calls: enough for the kubeflow launcher to create a PyTorchJob or Katib Experiment, watch its
conditions and read the optimal trial. A kubeconfig pointing at it is written for the client."""

from __future__ import annotations

import json
import re
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import yaml


class KubeStandIn:
    def __init__(self) -> None:
        self.calls: list[tuple[str, str]] = []
        self.objects: dict[str, dict[str, Any]] = {}
        self.polls: dict[str, int] = {}
        self.final = "Succeeded"  # or Failed
        self.optimal_trial: dict[str, Any] = {}
        stand_in = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def _handle(self, method: str) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = json.loads(self.rfile.read(length)) if length else None
                stand_in.calls.append((method, self.path))
                status, data = stand_in.route(method, self.path.split("?")[0], body)
                payload = json.dumps(data).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def do_GET(self) -> None:
                self._handle("GET")

            def do_POST(self) -> None:
                self._handle("POST")

            def do_DELETE(self) -> None:
                self._handle("DELETE")

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.host = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

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

    def __enter__(self) -> KubeStandIn:
        self.thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.server.shutdown()
        self.server.server_close()

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
