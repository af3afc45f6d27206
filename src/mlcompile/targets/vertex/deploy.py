"""`mlcompile deploy` for the vertex target, through google-cloud-aiplatform's service clients
(REST transport): Schedules created (or replaced when their definition changed), the
training PipelineJob submitted once per build (its job id carries the body's sha256, so a
second deploy of the same build is `unchanged`), the online Endpoint created when missing, and
the Feature Store resources of online views created or brought in line (deploy_features.py).

`aiplatform.PipelineJob.submit()` is not used: before calling
`PipelineServiceClient.create_pipeline_job` (which this module calls directly, with the same
body) it creates/checks the GCS bucket of the pipeline root through the Storage API.

MLCOMPILE_VERTEX_API_ENDPOINT overrides the regional endpoint (a Private Service Connect
endpoint, or a local stand-in: an http://127.0.0.1 endpoint uses anonymous credentials)."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

from mlcompile.errors import CredentialsMissing
from mlcompile.plan.nodes import Plan
from mlcompile.runtime.contract import ENV_VERTEX_API_ENDPOINT
from mlcompile.runtime.retries import RetrySettings, create_once, is_transient, with_retries
from mlcompile.targets.base import DeployAction, DeployFailed, live_fingerprint, not_applied
from mlcompile.targets.vertex.deploy_alerts import deploy_alerting, planned_alerting
from mlcompile.targets.vertex.deploy_features import deploy_feature_store, planned_feature_store

LOGIN = "log in with `gcloud auth application-default login`, or set GOOGLE_APPLICATION_CREDENTIALS to a service-account key file"


def _files(build_dir: Path, kind: str) -> list[Path]:
    entries = json.loads((build_dir / "manifest.json").read_text())["files"]
    return [build_dir / e["path"] for e in entries if e["kind"] == kind]


def job_id(path: Path) -> str:
    """PipelineJob ids: [a-z0-9-], at most 128 characters."""
    return job_id_of(path.stem, path.read_bytes())


def job_id_of(pipeline: str, body: bytes) -> str:
    """The id deploy submits a pipeline's PipelineJob body under (the body's sha256 prefix)."""
    return f"{pipeline}-{hashlib.sha256(body).hexdigest()[:12]}"


def planned(plan: Plan, build_dir: Path) -> list[str]:
    """Every resource a deploy of this build applies, in order (for the failure summary)."""
    schedules = [f"schedule {json.loads(p.read_text())['displayName']}" for p in _files(build_dir, "vertex.schedule")]
    jobs = [f"pipeline job {job_id(p)}" for p in _files(build_dir, "vertex.pipeline_job") if p.stem == plan.training.name]
    endpoints = [f"endpoint {json.loads(p.read_text())['endpointId']}" for p in _files(build_dir, "vertex.create_endpoint_request")]
    return schedules + jobs + endpoints + planned_feature_store(lambda kind: _files(build_dir, kind)) + planned_alerting(lambda kind: _files(build_dir, kind))


def deploy(plan: Plan, build_dir: Path, *, dry_run: bool, api_endpoint: str | None = None) -> list[DeployAction]:
    """Read each resource, compare it with the build; with `dry_run` stop there (the
    comparison is the plan), else create or replace what differs."""
    settings = plan.platform_settings
    parent = f"projects/{settings['project']}/locations/{settings['region']}"
    schedules = _files(build_dir, "vertex.schedule")
    training = [p for p in _files(build_dir, "vertex.pipeline_job") if p.stem == plan.training.name]
    endpoints = _files(build_dir, "vertex.create_endpoint_request")
    from google.api_core import exceptions
    from google.auth import exceptions as auth_exceptions
    from google.cloud.aiplatform_v1 import types as gca
    from google.cloud.aiplatform_v1.services.endpoint_service import EndpointServiceClient
    from google.cloud.aiplatform_v1.services.pipeline_service import PipelineServiceClient
    from google.cloud.aiplatform_v1.services.schedule_service import ScheduleServiceClient
    from google.protobuf import json_format

    endpoint = api_endpoint or os.environ.get(ENV_VERTEX_API_ENDPOINT) or f"{settings['region']}-aiplatform.googleapis.com"
    options: dict[str, Any] = {"credentials": _credentials(endpoint), "transport": "rest", "client_options": {"api_endpoint": endpoint}}

    def parse(path: Path, message: Any) -> Any:
        return message.wrap(json_format.ParseDict(json.loads(path.read_text()), message.pb()()))

    # every request gets a deadline (MLCOMPILE_DEPLOY_TIMEOUT); reads, deletes and creates
    # that carry their own id are retried as they are, other creates through create_once
    timeout = RetrySettings.from_env().timeout
    actions: list[DeployAction] = []
    try:
        schedule_client = ScheduleServiceClient(**options)

        def schedules_named(schedule: Any) -> list[Any]:
            request = gca.ListSchedulesRequest(parent=parent, filter=f'display_name="{schedule.display_name}"')
            return with_retries(lambda: list(schedule_client.list_schedules(request=request, timeout=timeout)))

        def same_as(schedule: Any, found: Any) -> bool:
            return bool(found.cron == schedule.cron and found.create_pipeline_job_request.pipeline_job == schedule.create_pipeline_job_request.pipeline_job)

        for path in schedules:
            schedule = parse(path, gca.Schedule)
            listed = schedules_named(schedule)
            live = live_fingerprint(sorted(_compared(s) for s in listed) or None)
            same = [s for s in listed if same_as(schedule, s)]
            if same or dry_run:
                actions.append(
                    DeployAction(f"schedule {schedule.display_name}", "unchanged" if same else "update" if listed else "create", schedule.cron, live)
                )
                continue
            deleted = 0
            try:
                for old in listed:
                    _delete(lambda: schedule_client.delete_schedule(name=old.name, timeout=timeout))
                    deleted += 1
                create_once(
                    lambda: schedule_client.create_schedule(parent=parent, schedule=schedule, timeout=timeout),
                    lambda: next((s for s in schedules_named(schedule) if same_as(schedule, s)), None),
                )
            except Exception:
                if deleted:  # half a replacement: say the old schedule is gone
                    actions.append(DeployAction(f"schedule {schedule.display_name}", "delete", "its previous definition; the new one was not created"))
                raise
            actions.append(DeployAction(f"schedule {schedule.display_name}", "update" if listed else "create", schedule.cron, live))
        pipeline_client = PipelineServiceClient(**options)
        for path in training:
            identifier = job_id(path)
            try:
                found = with_retries(lambda: pipeline_client.get_pipeline_job(name=f"{parent}/pipelineJobs/{identifier}", timeout=timeout))
                actions.append(DeployAction(f"pipeline job {identifier}", "unchanged", "already submitted for this build", live_fingerprint(found.name)))
                continue
            except exceptions.NotFound:
                pass
            if not dry_run:
                try:
                    # the job id makes a repeated create a 409: a retry cannot submit it twice
                    with_retries(
                        lambda: pipeline_client.create_pipeline_job(
                            parent=parent, pipeline_job=parse(path, gca.PipelineJob), pipeline_job_id=identifier, timeout=timeout
                        )
                    )
                except exceptions.Conflict:  # ALREADY_EXISTS: it was missing above, so an attempt whose answer was lost created it
                    pass
            actions.append(DeployAction(f"pipeline job {identifier}", "create", "training run of this build", live_fingerprint(None)))
        endpoint_client = EndpointServiceClient(**options)
        for path in endpoints:
            request = parse(path, gca.CreateEndpointRequest)
            name = f"{parent}/endpoints/{request.endpoint_id}"
            try:
                found = with_retries(lambda: endpoint_client.get_endpoint(name=name, timeout=timeout))
                actions.append(DeployAction(f"endpoint {request.endpoint_id}", "unchanged", "", live_fingerprint(found.name)))
                continue
            except exceptions.NotFound:
                pass
            if not dry_run:
                try:
                    # the endpoint id is in the request: a repeated create is refused, never a second endpoint
                    with_retries(lambda: endpoint_client.create_endpoint(request=request, timeout=timeout))
                except exceptions.Conflict:  # missing above: an attempt whose answer was lost created it
                    pass
            actions.append(DeployAction(f"endpoint {request.endpoint_id}", "create", "models are deployed to it by the pipeline", live_fingerprint(None)))
        deploy_feature_store(lambda kind: _files(build_dir, kind), options, dry_run, actions)
        deploy_alerting(lambda kind: _files(build_dir, kind), settings["project"], endpoint, options["credentials"], dry_run, actions)
    except Exception as exc:
        if isinstance(exc, (exceptions.Unauthenticated, auth_exceptions.RefreshError)):  # expired or revoked
            raise CredentialsMissing("Vertex AI", f"the credentials were refused ({_first_line(exc)})", LOGIN) from exc
        if not (isinstance(exc, exceptions.GoogleAPICallError) or is_transient(exc)):
            raise
        raise DeployFailed(f"Vertex AI ({endpoint}): {_first_line(exc)}", applied=actions, not_applied=not_applied(planned(plan, build_dir), actions)) from exc
    return actions


def _compared(schedule: Any) -> list[Any]:
    """What the comparison of a schedule reads: its name, cron and pipeline job."""
    job = schedule.create_pipeline_job_request.pipeline_job
    return [schedule.name, schedule.cron, type(job).to_dict(job)]


def _credentials(endpoint: str) -> Any:
    """Application Default Credentials, looked up once before any request (a local stand-in
    at http://127.0.0.1 gets anonymous ones); none found is a log-in problem, said in one line."""
    from google.auth import exceptions as auth_exceptions

    if endpoint.startswith(("http://127.0.0.1", "http://localhost")):
        from google.auth.credentials import AnonymousCredentials

        return AnonymousCredentials()
    import google.auth

    try:
        credentials, _project = google.auth.default(scopes=["https://www.googleapis.com/auth/cloud-platform"])
    except auth_exceptions.DefaultCredentialsError as exc:
        raise CredentialsMissing("Vertex AI", "no Application Default Credentials found", LOGIN) from exc
    return credentials


def _first_line(exc: BaseException) -> str:
    return str(exc).splitlines()[0] if str(exc) else type(exc).__name__


def _delete(call: Any) -> None:
    """A delete, retried; one already done (a retry after a lost answer) is fine."""
    from google.api_core import exceptions

    try:
        with_retries(call)
    except exceptions.NotFound:
        pass
