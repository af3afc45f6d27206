"""What `mlcompile deploy` leaves on the platform before the first run, made through the
emulated APIs from the build's files.

Vertex AI: the online endpoints (the deploy step deploys models to them) and the training
PipelineJob deploy submits. That job is the emulator's own run of the training pipeline: its
state follows that run, and a retraining submission copies it, as it copies the deployed job
on Vertex.

Kubeflow: `mlcompile deploy` itself, with kfp.Client against the emulated KFP API: every
pipeline uploaded as the version named after its file's sha256 (the version a retraining
submission runs), the system's experiment and its recurring runs (kept, not fired)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from mlcompile.emulate.services.vertex import VertexService
from mlcompile.emulate.services.vertex_jobs import now


def _files(build: Path, kind: str) -> list[Path]:
    entries = json.loads((build / "manifest.json").read_text(encoding="utf-8"))["files"]
    return [build / e["path"] for e in entries if e["kind"] == kind]


def provision_vertex(session: Any, vertex: VertexService) -> dict[str, str]:
    """Create the endpoints and record deploy's training PipelineJob; returns pipeline name ->
    the PipelineJob id standing for the emulator's run of it."""
    from mlcompile.targets.vertex.deploy import job_id

    for path in _files(session.build, "vertex.create_endpoint_request"):
        request = json.loads(path.read_text(encoding="utf-8"))
        if request["endpointId"] not in vertex.endpoints:
            vertex.registry.create_endpoint(request["parent"], request["endpointId"], request["endpoint"])
    jobs: dict[str, str] = {}
    parent = f"projects/{session.plan.platform_settings['project']}/locations/{session.plan.platform_settings['region']}"
    for path in _files(session.build, "vertex.pipeline_job"):
        if path.stem != session.plan.training.name:
            continue  # deploy submits the training pipeline; the others run on their schedules
        ident = job_id(path)
        body = json.loads(path.read_text(encoding="utf-8"))
        vertex.pipeline_jobs[ident] = {**body, "name": f"{parent}/pipelineJobs/{ident}", "state": "PIPELINE_STATE_PENDING", "createTime": now()}
        jobs[path.stem] = ident
    return jobs


def provision_kubeflow(session: Any, host: str) -> None:
    """Deploy the build to the emulated KFP API as `mlcompile deploy` does."""
    import contextlib
    import io
    import warnings

    import kfp

    from mlcompile.targets.kubeflow.deploy import deploy

    # kfp.Client prints links on stdout and warns about old servers
    with contextlib.redirect_stdout(io.StringIO()), warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        client = kfp.Client(host=host, namespace=session.plan.platform_settings.get("namespace"))
    deploy(session.plan, session.build, dry_run=False, client=client)


def follow(session: Any, vertex: VertexService, jobs: dict[str, str]) -> Any:
    """Wrap `session.run_pipeline_file` so that the recorded PipelineJob of a pipeline takes
    the state of the emulator's run of it; returns the original to restore."""
    original = session.run_pipeline_file

    def run_pipeline_file(path: Path, parameters: dict[str, Any] | None = None) -> Any:
        job = vertex.pipeline_jobs.get(jobs.get(Path(path).stem, ""))
        if job is not None:
            job.update(state="PIPELINE_STATE_RUNNING", startTime=now())
        result = original(path, parameters)
        if job is not None:
            job.update(state=f"PIPELINE_STATE_{result.status}", endTime=now())
        return result

    session.run_pipeline_file = run_pipeline_file
    return original
