"""A stand-in for the Kubernetes API server on 127.0.0.1, recording calls: the emulator's
API server (custom objects, a kubeconfig pointing at it) with jobs that run nothing and end
as a test scripts them: after one poll, in `final`, a Katib Experiment with `optimal_trial`."""

from __future__ import annotations

from typing import Any

from mlcompile.emulate.services.kube import KubeService


class KubeStandIn(KubeService):
    def __init__(self) -> None:
        self.calls: list[tuple[str, str]] = []
        self.polls: dict[str, int] = {}
        self.final = "Succeeded"  # or Failed, or Running
        self.optimal_trial: dict[str, Any] = {}
        super().__init__()

    def respond(self, method: str, url: Any, raw: bytes, content_type: str) -> tuple[int, Any]:
        self.calls.append((method, url.path + (f"?{url.query}" if url.query else "")))
        return super().respond(method, url, raw, content_type)

    def route(self, method: str, path: str, query: dict[str, str], body: Any, content_type: str) -> tuple[int, Any]:
        status, answer = super().route(method, path, query, body, content_type)
        namespace_plural_name = path.split("/namespaces/", 1)[-1]
        if method != "GET" or namespace_plural_name.count("/") != 2:
            return status, answer
        self.polls[namespace_plural_name] = self.polls.get(namespace_plural_name, 0) + 1
        if self.polls[namespace_plural_name] > 1 and self.final != "Running":
            answer["status"] = {
                "conditions": [{"type": "Created", "status": "True"}, {"type": self.final, "status": "True", "message": f"job {self.final.lower()}"}]
            }
            if "/experiments/" in path and self.final == "Succeeded":
                answer["status"]["currentOptimalTrial"] = self.optimal_trial
        return status, answer
