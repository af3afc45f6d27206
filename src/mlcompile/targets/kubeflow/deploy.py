"""`mlcompile deploy` for the kubeflow target, through `kfp.Client` (the KFP REST API).

Every pipeline of the build is uploaded as a pipeline *version* named after the sha256 of its
compiled file: deploying the same build again finds that version and changes nothing. Each
KFP recurring run is created in the experiment named after the system; one whose pipeline
version or definition changed is replaced. Kubernetes manifests (KServe, Katib, Training
Operator, CronJobs) are not KFP API objects: the pipeline's own launcher/deploy steps apply
the job and serving manifests; CronJobs are reported for `kubectl apply`."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from mlcompile.plan.nodes import Plan
from mlcompile.targets.base import DeployAction, DeployFailed, with_retries


def _manifest(build_dir: Path) -> list[dict[str, str]]:
    return json.loads((build_dir / "manifest.json").read_text())["files"]


def version_name(pipeline: str, content: bytes) -> str:
    return f"{pipeline}-{hashlib.sha256(content).hexdigest()[:12]}"


def deploy(plan: Plan, build_dir: Path, *, dry_run: bool, client: Any = None) -> list[DeployAction]:
    import contextlib
    import io
    import warnings

    # kfp.Client prints "Pipeline details: <url>" on stdout and warns about old servers
    with contextlib.redirect_stdout(io.StringIO()), warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        return _deploy(plan, build_dir, dry_run=dry_run, client=client)


def _deploy(plan: Plan, build_dir: Path, *, dry_run: bool, client: Any) -> list[DeployAction]:
    files = _manifest(build_dir)
    settings = plan.platform_settings
    actions: list[DeployAction] = []
    if client is None and not dry_run:
        import kfp

        client = kfp.Client(host=settings["host"], namespace=settings["namespace"])
    if client is not None:
        client = _Retrying(client)
    try:
        versions: dict[str, tuple[str, str]] = {}
        for entry in files:
            if entry["kind"] != "kfp.pipeline_spec":
                continue
            path = build_dir / entry["path"]
            pipeline = path.stem
            name = version_name(pipeline, path.read_bytes())
            if dry_run:
                actions.append(DeployAction(f"pipeline {pipeline}", "create", f"version {name} (dry run: not compared)"))
                continue
            pipeline_id = client.get_pipeline_id(pipeline)
            if pipeline_id is None:
                created = client.upload_pipeline(str(path), pipeline_name=pipeline, description=f"mlcompile: {plan.system}")
                pipeline_id = created.pipeline_id
            existing = client.list_pipeline_versions(pipeline_id, page_size=100, filter=_name_filter(name))
            found = [v for v in (existing.pipeline_versions or []) if v.display_name == name]
            if found:
                versions[pipeline] = (pipeline_id, found[0].pipeline_version_id)
                actions.append(DeployAction(f"pipeline {pipeline}", "unchanged", f"version {name}"))
                continue
            version = client.upload_pipeline_version(str(path), pipeline_version_name=name, pipeline_id=pipeline_id, description=f"spec sha256 {plan.spec_sha256}")
            versions[pipeline] = (pipeline_id, version.pipeline_version_id)
            actions.append(DeployAction(f"pipeline {pipeline}", "create", f"version {name}"))
        actions += _recurring_runs(plan, build_dir, files, versions, client, dry_run)
    except DeployFailed:
        raise
    except Exception as exc:  # the KFP API refused: report, do not crash
        raise DeployFailed(f"Kubeflow Pipelines at {settings['host']}: {exc}", applied=actions) from exc
    for entry in files:
        if entry["kind"] == "kubernetes.cron_job":
            actions.append(DeployAction(f"cronjob {Path(entry['path']).stem}", "manual", f"kubectl apply -f {entry['path']} (not a KFP API object)"))
    return actions


def _name_filter(name: str) -> str:
    return json.dumps({"predicates": [{"key": "display_name", "operation": "EQUALS", "string_value": name}]})


def _recurring_runs(plan: Plan, build_dir: Path, files: list[dict[str, str]], versions: dict[str, tuple[str, str]], client: Any, dry_run: bool) -> list[DeployAction]:
    actions: list[DeployAction] = []
    schedules = {s.name: s.pipeline for s in plan.schedules}
    runs = [e for e in files if e["kind"] == "kfp.recurring_run"]
    if not runs:
        return actions
    experiment_id = None
    if not dry_run:
        try:
            experiment_id = client.get_experiment(experiment_name=plan.system, namespace=plan.platform_settings["namespace"]).experiment_id
        except Exception:
            experiment_id = client.create_experiment(plan.system, namespace=plan.platform_settings["namespace"]).experiment_id
    for entry in runs:
        body = json.loads((build_dir / entry["path"]).read_text())
        name = body["display_name"]
        pipeline = schedules.get(name, name)  # sensors run their own pipeline, named like the schedule
        if dry_run:
            actions.append(DeployAction(f"recurring run {name}", "create", body["trigger"]["cron_schedule"]["cron"]))
            continue
        pipeline_id, version_id = versions[pipeline]
        listed = client.list_recurring_runs(experiment_id=experiment_id, page_size=100, filter=_name_filter(name))
        current = [r for r in (listed.recurring_runs or []) if r.display_name == name]
        same = [
            r for r in current
            if r.pipeline_version_reference is not None and r.pipeline_version_reference.pipeline_version_id == version_id and r.description == body["description"]
        ]  # fmt: skip
        if same:
            actions.append(DeployAction(f"recurring run {name}", "unchanged", body["trigger"]["cron_schedule"]["cron"]))
            continue
        for run in current:
            client.delete_recurring_run(run.recurring_run_id)
        client.create_recurring_run(
            experiment_id=experiment_id,
            job_name=name,
            description=body["description"],
            cron_expression=body["trigger"]["cron_schedule"]["cron"],
            max_concurrency=int(body["max_concurrency"]),
            no_catchup=body["no_catchup"],
            pipeline_id=pipeline_id,
            version_id=version_id,
            pipeline_root=body["runtime_config"]["pipeline_root"],
            service_account=body.get("service_account"),
        )
        actions.append(DeployAction(f"recurring run {name}", "update" if current else "create", body["trigger"]["cron_schedule"]["cron"]))
    return actions


class _Retrying:
    """The KFP client with each API call retried on throttling, server errors and dropped
    connections (kfp.Client itself does not retry)."""

    def __init__(self, client: Any):
        self._client = client

    def __getattr__(self, name: str) -> Any:
        attribute = getattr(self._client, name)
        if not callable(attribute):
            return attribute
        return lambda *args, **kwargs: with_retries(lambda: attribute(*args, **kwargs))
