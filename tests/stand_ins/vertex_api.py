"""A stand-in for the Vertex AI REST API (v1) on 127.0.0.1, recording every call: the
emulator's Vertex service (pipeline jobs, schedules, models, endpoints, Feature Store), with
CustomJobs and tuning jobs that run nothing and end as a test scripts them."""

from __future__ import annotations

from typing import Any

from mlcompile.emulate.services.http import not_found
from mlcompile.emulate.services.vertex import VertexService


class VertexStandIn(VertexService):
    def __init__(self) -> None:
        self.calls: list[tuple[str, str, dict[str, str], Any]] = []
        self.final_state = "JOB_STATE_SUCCEEDED"  # what a job ends in (after one RUNNING poll)
        self.trials: list[dict[str, Any]] = []  # trials a tuning job reports when it ends
        super().__init__()

    def route(self, method: str, path: str, query: dict[str, str], body: Any) -> tuple[int, Any]:
        self.calls.append((method, path, query, body))
        return super().route(method, path, query, body)

    def _job(self, method: str, parent: str, collection: str, ident: str | None, cancel: str | None, *, query: dict[str, str], body: Any) -> Any:
        if collection == "pipelineJobs":
            return super()._job(method, parent, collection, ident, cancel, query=query, body=body)
        if method == "POST" and ident is None:
            self._next += 1
            name = f"{parent}/{collection}/{self._next}"
            self.jobs[name] = {**body, "name": name, "state": "JOB_STATE_PENDING", "polls": 0}
            return {k: v for k, v in self.jobs[name].items() if k != "polls"}
        name = f"{parent}/{collection}/{ident}"
        if name not in self.jobs:
            raise not_found(name)
        job = self.jobs[name]
        if cancel:
            job["state"] = "JOB_STATE_CANCELLED"
            return {}
        job["polls"] += 1
        if job["state"] != "JOB_STATE_CANCELLED":
            job["state"] = "JOB_STATE_RUNNING" if job["polls"] == 1 or self.final_state == "RUNNING_FOREVER" else self.final_state
            if collection == "hyperparameterTuningJobs" and job["state"] == "JOB_STATE_SUCCEEDED":
                job["trials"] = self.trials
        return {k: v for k, v in job.items() if k != "polls"}
