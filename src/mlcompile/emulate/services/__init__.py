"""The platform services an emulated run serves on 127.0.0.1, so that the compiled steps reach
their platform through its own APIs and clients: for Vertex AI its REST API (jobs executed,
Model Registry, Endpoints, PipelineJobs, Schedules); for Kubeflow the Kubernetes API (Katib
Experiments, PyTorchJobs, KServe InferenceServices) and the KFP API (runs executed). Every
job and run they start executes on this machine through the emulator (see docs/emulate.md)."""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mlcompile.emulate.lifecycle import apply_inference_service
from mlcompile.emulate.services.execution import Execution, PipelineRun
from mlcompile.emulate.services.http import JsonService
from mlcompile.emulate.services.kfp import KfpService
from mlcompile.emulate.services.kube import KubeService
from mlcompile.emulate.services.provision import follow, provision_kubeflow, provision_vertex
from mlcompile.emulate.services.vertex import VertexService

VERTEX_ENDPOINT_ENV = "MLCOMPILE_VERTEX_API_ENDPOINT"  # what the launcher and runtime call instead of Google's
SECRET_MANAGER_ENV = "MLCOMPILE_SECRETMANAGER_ENDPOINT"  # what runtime.secrets reads Secret Manager at
MODEL_VERSION_ENV = "MLCOMPILE_MODEL_VERSION"  # the registry version a KServe predictor serves
DRAIN_SECONDS = 300.0  # how long the end of a run waits for jobs and runs still going
POLL_ENV, POLL_SECONDS = "MLCOMPILE_LAUNCH_POLL_SECONDS", "0.5"  # the launcher polls a local job often


@dataclass
class Services:
    execution: Execution
    vertex: VertexService | None = None
    kube: KubeService | None = None
    kfp: KfpService | None = None

    def wait(self, timeout: float | None = None) -> bool:
        """Wait for the jobs and pipeline runs submitted so far (e.g. a retraining run)."""
        return self.execution.wait(timeout)


def pipeline_runner(session: Any) -> Any:
    """Runs a pipeline submitted through a platform API with the emulator's interpreter, as
    the session runs the built ones (its parameters, storage, secrets; its results)."""

    def run(request: PipelineRun) -> str | None:
        from mlcompile.emulate.ir import SUCCEEDED, run_pipeline

        name = request.ir.get("pipelineInfo", {}).get("name", request.name)
        parameters = {**session.config.parameters.get(name, {}), **request.parameters}
        session.log(f"pipeline {name}: running (submitted as {request.name})")
        result = run_pipeline(request.ir, parameters=parameters, context=session.context(), platform=request.platform, run_id=request.name)
        session.results.append(result)
        session.log(f"pipeline {name}: {result.status.lower()} in {result.seconds:.1f} s")
        if result.status == SUCCEEDED:
            return None
        return "; ".join(f"task {t.name} failed" + (f": {t.reason}" if t.reason else "") for t in result.failed()) or result.status.lower()

    return run


@contextlib.contextmanager
def serve(session: Any) -> Iterator[Services]:
    """Start the platform's services for `session`, point its steps at them (session.env,
    session.hosts) and keep session.facts up to date with what they observed."""
    from mlcompile.emulate import storage

    execution = Execution(session.images, session.root, run_pipeline=pipeline_runner(session), secrets=dict(session.config.secrets))
    services = Services(execution)
    with contextlib.ExitStack() as stack:
        session.env.setdefault(POLL_ENV, POLL_SECONDS)
        if getattr(session, "stand_ins", None) == "vertex":
            services.vertex = stack.enter_context(VertexService(execution))
            session.env[VERTEX_ENDPOINT_ENV] = services.vertex.url
            session.env[SECRET_MANAGER_ENV] = services.vertex.url  # served beside it
            if getattr(session, "build", None) is not None:  # what deploy leaves: endpoints, the training job
                original = follow(session, services.vertex, provision_vertex(session, services.vertex))
                stack.callback(setattr, session, "run_pipeline_file", original)
        else:
            services.kube = stack.enter_context(KubeService(execution))
            services.kfp = stack.enter_context(KfpService(execution))
            session.env["KUBECONFIG"] = str(services.kube.kubeconfig(session.work / "kubernetes"))
            host = session.plan.platform_settings.get("host")
            if host:
                session.hosts[storage.netloc(str(host))] = storage.netloc(services.kfp.url)
        for service in (services.vertex, services.kube, services.kfp):
            if service is not None:
                service.on_change = functools.partial(_observe, session, service)
        if services.kube is not None and getattr(session, "build", None) is not None:  # what deploy leaves: the InferenceService, the pipelines
            apply_inference_service(session.build, Path(session.env["KUBECONFIG"]))
            provision_kubeflow(session, services.kfp.url)
        execution.env.update(session.context().env)
        try:
            yield services
        finally:
            execution.wait(DRAIN_SECONDS)


def _observe(session: Any, service: JsonService, kind: str) -> None:
    facts = _facts(session, service, kind)
    if facts is not None:
        session.facts[kind] = facts


def _facts(session: Any, service: Any, kind: str) -> dict[str, Any] | None:
    """What the summary reports of a service's state: the model version registered last, the
    endpoint's versions and their traffic, the retraining run submitted."""
    plan = session.plan
    if kind == "retraining":
        runs = getattr(service, "runs", None)
        if runs is not None:  # the KFP API
            first = min(runs.values(), key=lambda r: r["created_at"])
            return {"submitted": first["run_id"], "status": first["state"].lower()}
        job = service.pipeline_jobs[service.submitted[0]]
        return {"submitted": service.submitted[0], "status": job["state"].removeprefix("PIPELINE_STATE_").lower()}
    if isinstance(service, VertexService) and kind == "registered":
        entry = next((m for n, m in service.models.items() if n.endswith(f"/models/{plan.registry.model}")), None)
        if entry is None or not entry["versions"]:
            return None
        newest = entry["versions"][-1]
        return {"model": plan.registry.model, "version": newest["model"]["versionId"], "registry": "vertex", "aliases": list(newest["aliases"])}
    if kind != "deployed" or plan.online is None:
        return None
    traffic: dict[str, int] = {}
    if isinstance(service, VertexService):
        endpoint = service.endpoints.get(plan.online.name)
        if endpoint is None:
            return None
        split = endpoint.get("trafficSplit") or {}
        newest = None
        for deployed in endpoint.get("deployedModels") or []:
            version = deployed["modelVersionId"]
            traffic[version] = traffic.get(version, 0) + int(split.get(deployed["id"], 0))
            newest = version if split.get(deployed["id"]) else newest
        return {"endpoint": plan.online.name, "version": newest, "traffic": {v: p for v, p in traffic.items() if p}}
    from mlcompile.emulate.services.kserve import serving

    key = next((k for k in service.revisions if k.endswith(f"/inferenceservices/{plan.online.name}")), None)
    if key is None:
        return None
    version = None
    for predictor, percent in serving(service, key):
        containers = [predictor.get("model") or {}, *(predictor.get("containers") or [])]
        found = next((e.get("value") for c in containers for e in c.get("env") or [] if e.get("name") == MODEL_VERSION_ENV), None)
        version = version or found
        traffic[found or "unpinned"] = traffic.get(found or "unpinned", 0) + percent
    return {"endpoint": plan.online.name, "version": version, "traffic": traffic}
