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

from mlcompile.errors import CredentialsMissing
from mlcompile.plan.nodes import Plan
from mlcompile.runtime.kfp_client import LOGIN, NoCredentials, kfp_client
from mlcompile.runtime.retries import RetryingClient, create_once
from mlcompile.targets.base import DeployAction, DeployFailed, live_fingerprint, not_applied


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
    """Read what is on the platform, resource by resource; with `dry_run` stop there (the
    comparison is the plan), else create or update what differs."""
    files = _manifest(build_dir)
    settings = plan.platform_settings
    actions: list[DeployAction] = []
    client = RetryingClient(client or _client(settings["host"], settings["namespace"]))  # kfp.Client itself does not retry
    try:
        versions: dict[str, tuple[str | None, str | None]] = {}
        for entry in files:
            if entry["kind"] != "kfp.pipeline_spec":
                continue
            path = build_dir / entry["path"]
            pipeline = path.stem
            name = version_name(pipeline, path.read_bytes())
            pipeline_id = client.get_pipeline_id(pipeline)
            found = _versions_named(client, pipeline_id, name) if pipeline_id is not None else []
            live = live_fingerprint(None if pipeline_id is None else {"pipeline_id": pipeline_id, "versions": sorted(v.pipeline_version_id for v in found)})
            if found:
                versions[pipeline] = (pipeline_id, found[0].pipeline_version_id)
                actions.append(DeployAction(f"pipeline {pipeline}", "unchanged", f"version {name}", live))
                continue
            action, detail = ("create", f"version {name}") if pipeline_id is None else ("update", f"new version {name}")
            if dry_run:
                versions[pipeline] = (pipeline_id, None)
                actions.append(DeployAction(f"pipeline {pipeline}", action, detail, live))
                continue
            if pipeline_id is None:
                created = create_once(
                    lambda: client.upload_pipeline(str(path), pipeline_name=pipeline, description=f"mlcompile: {plan.system}"),
                    lambda: _found(pipeline_id=client.get_pipeline_id(pipeline)),
                )
                pipeline_id = created.pipeline_id
                found = _versions_named(client, pipeline_id, name)  # the upload made the first version
            version = (
                found[0]
                if found
                else create_once(
                    lambda: client.upload_pipeline_version(
                        str(path), pipeline_version_name=name, pipeline_id=pipeline_id, description=f"spec sha256 {plan.spec_sha256}"
                    ),
                    lambda: next(iter(_versions_named(client, pipeline_id, name)), None),
                )
            )
            versions[pipeline] = (pipeline_id, version.pipeline_version_id)
            actions.append(DeployAction(f"pipeline {pipeline}", action, detail, live))
        _recurring_runs(plan, build_dir, files, versions, client, dry_run, actions)
    except (DeployFailed, CredentialsMissing):
        raise
    except Exception as exc:  # the KFP API refused: report, do not crash
        if getattr(exc, "status", None) in (401, 403):
            raise CredentialsMissing(f"Kubeflow Pipelines at {settings['host']}", f"the API refused the credentials ({_short(exc)})", LOGIN) from exc
        raise DeployFailed(
            f"Kubeflow Pipelines at {settings['host']}: {_short(exc)}", applied=actions, not_applied=not_applied(planned(plan, build_dir), actions)
        ) from exc
    for entry in files:
        if entry["kind"] == "kubernetes.cron_job":
            actions.append(DeployAction(f"cronjob {Path(entry['path']).stem}", "manual", f"kubectl apply -f {entry['path']} (not a KFP API object)"))
        if entry["kind"] == "prometheus_operator.alertmanager_config":
            actions.append(DeployAction("alertmanager config", "manual", f"kubectl apply -f {entry['path']} (routes email alerts; not a KFP API object)"))
    return actions


def _client(host: str, namespace: str) -> Any:
    try:
        return kfp_client(host, namespace)
    except NoCredentials as exc:
        raise CredentialsMissing(f"Kubeflow Pipelines at {host}", "no credentials found", LOGIN) from exc


def planned(plan: Plan, build_dir: Path) -> list[str]:
    """Every resource a deploy of this build applies, in order (for the failure summary)."""
    files = _manifest(build_dir)
    resources = [f"pipeline {Path(e['path']).stem}" for e in files if e["kind"] == "kfp.pipeline_spec"]
    runs = [json.loads((build_dir / e["path"]).read_text())["display_name"] for e in files if e["kind"] == "kfp.recurring_run"]
    return resources + ([f"experiment {plan.system}"] if runs else []) + [f"recurring run {name}" for name in runs]


def _short(exc: BaseException) -> str:
    """An API error in one line (kfp's ApiException carries the whole HTTP response)."""
    status, reason = getattr(exc, "status", None), getattr(exc, "reason", None)
    if isinstance(status, int) and reason:
        return f"HTTP {status} {reason}"
    text = str(exc).strip() or type(exc).__name__
    return text.splitlines()[0]


def _found(**fields: Any) -> Any:
    from types import SimpleNamespace

    return SimpleNamespace(**fields) if all(v is not None for v in fields.values()) else None


def _versions_named(client: Any, pipeline_id: str, name: str) -> list[Any]:
    existing = client.list_pipeline_versions(pipeline_id, page_size=100, filter=_name_filter(name))
    return [v for v in (existing.pipeline_versions or []) if v.display_name == name]


def _runs_named(client: Any, experiment_id: str, name: str) -> list[Any]:
    listed = client.list_recurring_runs(experiment_id=experiment_id, page_size=100, filter=_name_filter(name))
    return [r for r in (listed.recurring_runs or []) if r.display_name == name]


def _name_filter(name: str) -> str:
    return json.dumps({"predicates": [{"key": "display_name", "operation": "EQUALS", "string_value": name}]})


def _recurring_runs(
    plan: Plan,
    build_dir: Path,
    files: list[dict[str, str]],
    versions: dict[str, tuple[str | None, str | None]],
    client: Any,
    dry_run: bool,
    actions: list[DeployAction],
) -> None:
    """Append to `actions` as each is applied: a failure midway still reports what was."""
    schedules = {s.name: s.pipeline for s in plan.schedules}
    runs = [e for e in files if e["kind"] == "kfp.recurring_run"]
    if not runs:
        return
    namespace = plan.platform_settings["namespace"]

    def find_experiment() -> Any:
        try:
            return client.get_experiment(experiment_name=plan.system, namespace=namespace)
        except ValueError:  # kfp: "No experiment is found with name …"
            return None

    experiment = find_experiment()
    live = live_fingerprint(None if experiment is None else {"experiment_id": experiment.experiment_id})
    if experiment is not None:
        actions.append(DeployAction(f"experiment {plan.system}", "unchanged", "", live))
    elif dry_run:
        actions.append(DeployAction(f"experiment {plan.system}", "create", "", live))
    else:
        experiment = create_once(lambda: client.create_experiment(plan.system, namespace=namespace), find_experiment)
        actions.append(DeployAction(f"experiment {plan.system}", "create", "", live))
    experiment_id = experiment.experiment_id if experiment is not None else None
    for entry in runs:
        body = json.loads((build_dir / entry["path"]).read_text())
        name = body["display_name"]
        cron = body["trigger"]["cron_schedule"]["cron"]
        pipeline = schedules.get(name, name)  # sensors run their own pipeline, named like the schedule
        pipeline_id, version_id = versions[pipeline]
        current = _runs_named(client, experiment_id, name) if experiment_id is not None else []
        live = live_fingerprint(sorted(_run_state(r) for r in current) or None)
        same = [
            r
            for r in current
            if r.pipeline_version_reference is not None
            and r.pipeline_version_reference.pipeline_version_id == version_id
            and r.description == body["description"]
        ]
        if same:
            actions.append(DeployAction(f"recurring run {name}", "unchanged", cron, live))
            continue
        if dry_run:
            actions.append(DeployAction(f"recurring run {name}", "update" if current else "create", cron, live))
            continue
        assert pipeline_id is not None and version_id is not None  # not a dry run: every pipeline was uploaded above
        deleted = 0
        try:
            for run in current:
                _delete_recurring_run(client, run.recurring_run_id)
                deleted += 1
            _create_recurring_run(client, experiment_id, name, body, pipeline_id, version_id)
        except Exception:
            if deleted:  # half a replacement: say the old run is gone
                actions.append(DeployAction(f"recurring run {name}", "delete", "its previous definition; the new one was not created"))
            raise
        actions.append(DeployAction(f"recurring run {name}", "update" if current else "create", cron, live))


def _run_state(run: Any) -> list[Any]:
    """What the comparison of a recurring run reads: its id, pipeline version and description."""
    reference = run.pipeline_version_reference
    return [run.recurring_run_id, reference.pipeline_version_id if reference is not None else None, run.description]


def _create_recurring_run(client: Any, experiment_id: Any, name: str, body: dict[str, Any], pipeline_id: str, version_id: str) -> None:
    """Create a recurring run, retried without ever creating it twice."""
    create_once(
        lambda: client.create_recurring_run(
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
        ),
        lambda: next(
            (
                r
                for r in _runs_named(client, experiment_id, name)
                if r.pipeline_version_reference is not None and r.pipeline_version_reference.pipeline_version_id == version_id
            ),
            None,
        ),
    )


def _delete_recurring_run(client: Any, run_id: str) -> None:
    """Delete, retried; a run already gone (a retry after a delete whose answer was lost) is fine."""
    try:
        client.delete_recurring_run(run_id)
    except Exception as exc:
        if getattr(exc, "status", None) != 404:
            raise
