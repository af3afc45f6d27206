"""Pipeline jobs submitted to the emulated workspace (`MLClient.jobs.create_or_update`, `az ml
job create`): the ARM `…/jobs/NAME` PUT is turned back into the pipeline job it was made from
(each node's `componentId` replaced by the component the SDK registered just before, its
environment by the image of the environment it registered), run by the interpreter on its
own thread, and answered with the status Azure ML reports (NotStarted, Running, Completed,
Failed, Canceled), which GET and the jobs list show as the run goes."""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Mapping
from typing import Any

from mlcompile.emulate.azureml.workspace import AzureWorkspace

_JOBS = re.compile(
    r"^(?P<workspace>/subscriptions/[^/]+/resourceGroups/[^/]+/providers/Microsoft\.MachineLearningServices/workspaces/[^/]+)/jobs(?:/(?P<name>[^/]+)(?P<action>/cancel)?)?/?$",
    re.IGNORECASE,
)
_DURATION = re.compile(r"^P(?:(?P<d>\d+)D)?(?:T(?:(?P<h>\d+)H)?(?:(?P<m>\d+)M)?(?:(?P<s>[\d.]+)S)?)?$")
ACTIVE = ("NotStarted", "Queued", "Preparing", "Running", "Finalizing")


def seconds(value: Any) -> Any:
    """ISO 8601 durations (the REST form of `limits.timeout`) as seconds; others unchanged."""
    match = _DURATION.match(value) if isinstance(value, str) else None
    if not match:
        return value
    d, h, m, s = (float(match.group(k) or 0) for k in "dhms")
    return int(((d * 24 + h) * 60 + m) * 60 + s)


class SubmittedJobs:
    def __init__(self, session: Any, workspace: AzureWorkspace) -> None:
        self.session, self.workspace = session, workspace
        self.jobs: dict[str, dict[str, Any]] = {}  # name -> the ARM resource as GET answers it
        self.order: list[str] = []
        self.threads: list[threading.Thread] = []
        self.lock = threading.Lock()

    def answer(self, method: str, path: str, query: dict[str, list[str]], body: Any) -> tuple[int, Any] | None:
        match = _JOBS.match(path)
        if match is None:
            return None
        name = match.group("name")
        with self.lock:
            if method == "GET" and name is None:
                return 200, {"value": [self.jobs[n] for n in reversed(self.order)]}
            if method == "GET":
                return (200, self.jobs[name]) if name in self.jobs else (404, {"error": {"code": "UserError", "message": f"job {name} not found"}})
            if method == "POST" and match.group("action") and name in self.jobs:
                if self.jobs[name]["properties"]["status"] in ACTIVE:
                    self.jobs[name]["properties"]["status"] = "Canceled"
                return 202, None
        if method == "PUT" and name:
            return self.submit(path, name, body or {})
        return None

    def submit(self, path: str, name: str, body: Mapping[str, Any]) -> tuple[int, Any]:
        properties = dict(body.get("properties") or {})
        if properties.get("jobType") != "Pipeline":
            return 400, {"error": {"code": "UserError", "message": f"job type {properties.get('jobType')!r}: the emulated workspace runs pipeline jobs"}}
        try:
            job = self.pipeline_job(properties)
        except LookupError as exc:
            return 400, {"error": {"code": "UserError", "message": str(exc)}}
        resource = {"id": path, "name": name, "type": "Microsoft.MachineLearningServices/workspaces/jobs", "properties": {**properties, "status": "Running"},
                    "systemData": {"createdAt": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}}  # fmt: skip
        with self.lock:
            self.jobs[name] = resource
            self.order.append(name)
            first = len(self.order) == 1
        self.session.log(f"job {name} ({properties.get('displayName')}): submitted through the workspace's API")
        thread = threading.Thread(target=self._run, args=(name, job, first), daemon=True)
        self.threads.append(thread)
        thread.start()
        return 201, resource

    def _run(self, name: str, job: dict[str, Any], first: bool) -> None:
        try:
            succeeded = self.session.run_job(job, name=name).status == "SUCCEEDED"
        except Exception as exc:  # a defect of the interpreter fails the job rather than leaving it running
            self.session.log(f"job {name}: the emulator could not run it: {exc!r}")
            succeeded = False
        with self.lock:
            if self.jobs[name]["properties"]["status"] != "Canceled":
                self.jobs[name]["properties"]["status"] = "Completed" if succeeded else "Failed"
        if first:  # in the summary's words, as for every platform
            self.session.facts["retraining"] = {"submitted": name, "status": "succeeded" if succeeded else "failed"}

    def wait(self, timeout: float | None = None) -> bool:
        deadline = None if timeout is None else time.monotonic() + timeout
        for thread in list(self.threads):
            thread.join(None if deadline is None else max(0.0, deadline - time.monotonic()))
        return not any(t.is_alive() for t in self.threads)

    # -- REST -> pipeline job YAML ----------------------------------------------------------
    def pipeline_job(self, properties: Mapping[str, Any]) -> dict[str, Any]:
        jobs = {node: self.node(dict(spec)) for node, spec in (properties.get("jobs") or {}).items()}
        return {
            "type": "pipeline", "display_name": properties.get("displayName"), "experiment_name": properties.get("experimentName"),
            "settings": dict(properties.get("settings") or {}), "jobs": jobs,
            "inputs": {k: _input(v) for k, v in (properties.get("inputs") or {}).items()},
            "outputs": {k: _output(v) for k, v in (properties.get("outputs") or {}).items()},
        }  # fmt: skip

    def node(self, spec: dict[str, Any]) -> dict[str, Any]:
        node = {k: v for k, v in spec.items() if k not in ("componentId", "computeId", "_source", "inputs", "outputs", "trial", "limits")}
        node["inputs"] = {k: _input(v) for k, v in (spec.get("inputs") or {}).items()}
        node["outputs"] = {k: _output(v) for k, v in (spec.get("outputs") or {}).items()}
        node["limits"] = {k: seconds(v) for k, v in (spec.get("limits") or {}).items() if k != "job_limits_type"}
        key = "trial" if spec.get("type") == "sweep" else "component"
        reference = (spec.get("trial") or {}).get("componentId") if key == "trial" else spec.get("componentId")
        node[key] = self.component(str(reference or ""))
        return node

    def component(self, reference: str) -> dict[str, Any]:
        stored = self.workspace.arm.get(reference.removeprefix("azureml:"))
        if stored is None:
            raise LookupError(f"component {reference} does not exist in the workspace")
        component = dict(stored["properties"]["componentSpec"])
        environment = component.get("environment")
        if isinstance(environment, str):
            found = self.workspace.arm.get(environment.removeprefix("azureml:"))
            if found is None or not found["properties"].get("image"):
                raise LookupError(f"environment {environment} does not exist in the workspace (or has no image)")
            component["environment"] = {"image": found["properties"]["image"]}
        return component


def _input(value: Mapping[str, Any]) -> Any:
    kind = value.get("job_input_type") or value.get("jobInputType")
    if kind == "literal" or "value" in value:
        return value.get("value")
    return {"type": kind, "path": value.get("uri")}


def _output(value: Mapping[str, Any]) -> Any:
    if value.get("value") is not None:
        return value["value"]
    kind = value.get("job_output_type") or value.get("jobOutputType") or value.get("type")
    out = {"type": kind}
    if value.get("uri"):
        out["path"] = value["uri"]
    if value.get("assetName") or value.get("name"):
        out["name"] = value.get("assetName") or value.get("name")
    return out
