"""A stand-in for the Kubeflow Pipelines REST API (v2beta1) on 127.0.0.1, recording every call:
the emulator's KFP service (pipelines, versions, experiments, recurring runs, runs that run
nothing), with faults a test injects."""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qs

from mlcompile.emulate.services.kfp import KfpService


class KfpStandIn(KfpService):
    def __init__(self) -> None:
        self.calls: list[tuple[str, str, dict[str, Any]]] = []
        # fault injection: statuses answered to the next requests (before routing), and
        # (method, path prefix, status) answered to every matching request
        self.fail_next: list[int] = []
        self.fail_always: list[tuple[str, str, int]] = []
        super().__init__()

    def respond(self, method: str, url: Any, raw: bytes, content_type: str) -> tuple[int, Any]:
        query = {k: v[0] for k, v in parse_qs(url.query).items()}
        self.calls.append((method, url.path, query))
        fault = self.fault_for(method, url.path)
        if fault is not None:
            return fault, {"error": "injected fault", "code": fault}
        return super().respond(method, url, raw, content_type)

    def fault_for(self, method: str, path: str) -> int | None:
        if path.endswith("/healthz"):
            return None
        if self.fail_next:
            return self.fail_next.pop(0)
        return next((status for m, prefix, status in self.fail_always if m == method and path.startswith(prefix)), None)
