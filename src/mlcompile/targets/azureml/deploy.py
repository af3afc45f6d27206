"""`mlcompile deploy` for Azure ML: the build's files, loaded with the SDK's own loaders,
created or updated through `MLClient` (`begin_create_or_update`), in dependency order:

0. the feature store's entities (feature sets: `deferred`, see `_feature_store`);
1. batch endpoint, its pipeline-component deployment; the monitor's production data asset;
2. job schedules (each creates its pipeline job on the cron; the training one registers the
   first version) and the model monitor;
3. the online endpoint, and its deployments that exist: a deployment serves a registry
   version, which the rollout sets (deploy-online: the training pipeline with approval
   auto, the `<system>-deploy` pipeline after a manual approval), so a deployment that does
   not exist yet — on a new workspace, every one — is reported `deferred` with what creates
   it, and one that exists keeps its version and its endpoint's traffic split;
4. the Azure Monitor autoscale setting of each online deployment that exists (an ARM PUT
   through the client's authenticated pipeline: azure-ai-ml has no operation for it);
5. the e-mail alerts' Azure Monitor action group, then the metric alert that notifies it
   (ARM PUTs as above; the pipelines identity needs Monitoring Metrics Publisher on the
   workspace to publish the breach metric, which the metric alert's line says).

Idempotent: every resource is tagged `mlcompile-file-sha256` with the sha256 of its file in
the build; a resource whose tag already matches is reported `unchanged` and not sent.

Configuration (environment): credentials, the Resource Manager URL and a CA bundle, as
mlcompile.runtime.azureml_client reads them (MLCOMPILE_AZUREML_ACCESS_TOKEN,
MLCOMPILE_AZUREML_ARM_ENDPOINT, MLCOMPILE_AZUREML_CA_BUNDLE)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from mlcompile.errors import CredentialsMissing
from mlcompile.plan.nodes import Plan
from mlcompile.runtime.azureml_client import ENV_TOKEN
from mlcompile.runtime.retries import RetrySettings
from mlcompile.runtime.rollout_azureml import TAG_MODEL_VERSION
from mlcompile.targets.azureml._sdk import experimental_checks_skipped, identity, quiet
from mlcompile.targets.azureml.alerts import ACTION_GROUP_KIND, METRIC_ALERT_KIND, PUBLISHER_ROLE
from mlcompile.targets.base import DeployAction, DeployFailed, live_fingerprint, not_applied

FILE_TAG = "mlcompile-file-sha256"
# ARM resource bodies of the build (type, apiVersion, name, properties), PUT in this order
ARM_KINDS = {"azure.monitor_autoscale": "autoscale setting", ACTION_GROUP_KIND: "action group", METRIC_ALERT_KIND: "metric alert"}
LOGIN = f"log in with `az login`, or set AZURE_CLIENT_ID, AZURE_TENANT_ID and AZURE_CLIENT_SECRET (or {ENV_TOKEN} to a bearer token)"


def _client(plan: Plan, *, workspace: str | None = None, resource_group: str | None = None) -> Any:
    """The MLClient of the profile's workspace, or of another workspace (the feature store)."""
    from mlcompile.runtime.azureml_client import ml_client

    # azure-core retries (GET, PUT, DELETE: every call deploy makes but listKeys-style POSTs)
    # on throttling, 5xx, timeouts and dropped connections, honouring Retry-After up to
    # mlcompile's cap; these are mlcompile's knobs, a read timeout instead of azure-core's
    # 300 s, and a limit on each whole answer (one trickled in byte by byte included)
    retry = RetrySettings.from_env()
    return ml_client(
        plan.platform_settings,
        workspace=workspace,
        resource_group=resource_group,
        retry_policy=_capped_retry_policy(retry),
        per_retry_policies=[_answer_limit_policy(retry.timeout)],
        connection_timeout=retry.timeout,
        read_timeout=retry.timeout,
    )


def _capped_retry_policy(retry: RetrySettings) -> Any:
    """azure-core's RetryPolicy sleeps whatever Retry-After the server sends (100000 s
    included): this one waits at most mlcompile's longest backoff."""
    from azure.core.pipeline.policies import RetryPolicy

    class CappedRetryPolicy(RetryPolicy):
        def get_retry_after(self, response: Any) -> float | None:
            asked = super().get_retry_after(response)
            return None if asked is None else min(asked, retry.max_delay)

    return CappedRetryPolicy(retry_total=retry.attempts - 1, retry_backoff_factor=retry.first_delay, retry_backoff_max=retry.max_delay)


def _answer_limit_policy(seconds: float) -> Any:
    from azure.core.pipeline.policies import HTTPPolicy

    from mlcompile.runtime.deadline import call_limit

    class AnswerLimitPolicy(HTTPPolicy):
        def send(self, request: Any) -> Any:
            with call_limit(seconds):
                return self.next.send(request)

    return AnswerLimitPolicy()


def _manifest(build_dir: Path) -> list[dict[str, str]]:
    return list(json.loads((build_dir / "manifest.json").read_text())["files"])


def _load(kind: str, path: Path) -> Any:
    import yaml
    from azure.ai.ml import load_batch_endpoint, load_data, load_feature_store_entity, load_online_deployment, load_online_endpoint
    from azure.ai.ml.entities import PipelineComponentBatchDeployment
    from azure.ai.ml.entities._load_functions import load_schedule

    if kind == "azureml.batch_deployment":  # load_batch_deployment parses model deployments only
        return PipelineComponentBatchDeployment._load(data=yaml.safe_load(path.read_text()), yaml_path=str(path))
    loader = {
        "azureml.online_endpoint": load_online_endpoint,
        "azureml.online_deployment": load_online_deployment,
        "azureml.batch_endpoint": load_batch_endpoint,
        "azureml.data": load_data,
        "azureml.schedule": load_schedule,
        "azureml.monitor_schedule": load_schedule,
        "azureml.feature_store_entity": load_feature_store_entity,
    }[kind]
    return loader(str(path))


def planned(plan: Plan, build_dir: Path) -> list[str]:
    """Every resource a deploy of this build applies, in order (for the failure summary)."""
    import yaml

    def named(kind: str) -> list[dict[str, Any]]:
        return [yaml.safe_load(path.read_text()) for path in _files_of(build_dir, kind)]

    resources: list[str] = []
    if _files_of(build_dir, "azureml.feature_store_entity"):
        from mlcompile.targets.azureml.feature_store import store_settings

        store = store_settings(plan)["name"]
        resources += [f"feature store entity {store}/{e['name']}:{e.get('version', '1')}" for e in named("azureml.feature_store_entity")]
    for endpoint in named("azureml.batch_endpoint"):
        resources.append(f"batch endpoint {endpoint['name']}")
        resources += [f"batch deployment {endpoint['name']}/{d['name']}" for d in named("azureml.batch_deployment")]
    resources += [f"data asset {d['name']}" for d in named("azureml.data")]
    resources += [f"schedule {s['name']}" for kind in ("azureml.schedule", "azureml.monitor_schedule") for s in named(kind)]
    for endpoint in named("azureml.online_endpoint"):
        resources.append(f"online endpoint {endpoint['name']}")
        resources += [
            f"online deployment {endpoint['name']}/{d['name']}" for d in named("azureml.online_deployment") if d.get("endpoint_name") == endpoint["name"]
        ]
    return resources + [f"{label} {json.loads(p.read_text())['name']}" for kind, label in ARM_KINDS.items() for p in _files_of(build_dir, kind)]


def _files_of(build_dir: Path, kind: str) -> list[Path]:
    return [build_dir / e["path"] for e in _manifest(build_dir) if e["kind"] == kind]


def deploy(plan: Plan, build_dir: Path, *, dry_run: bool) -> list[DeployAction]:
    from azure.core.exceptions import AzureError, HttpResponseError

    with quiet(), experimental_checks_skipped():
        client = _client(plan)
        files = _manifest(build_dir)
        by_kind: dict[str, list[tuple[Path, str]]] = {}
        for entry in files:
            by_kind.setdefault(entry["kind"], []).append((build_dir / entry["path"], entry["sha256"]))
        actions: list[DeployAction] = []
        try:
            actions += _feature_store(plan, build_dir, by_kind, dry_run)  # before the deployments that read it
            _batch(client, by_kind, dry_run, actions)
            for path, sha in by_kind.get("azureml.data", []):
                data = _load("azureml.data", path)
                actions.append(_data(client, data, sha, dry_run))
            for path, sha in by_kind.get("azureml.schedule", []):
                actions.append(_schedule(client, _load("azureml.schedule", path), sha, dry_run))
            # after the schedules (the training pipeline they run registers the first version)
            existing = _online(client, plan, by_kind, dry_run, actions)
            for path, sha in by_kind.get("azureml.monitor_schedule", []):
                monitor = _load("azureml.monitor_schedule", path)
                waiting = _monitor_waits_for(client, monitor, existing)
                if waiting is not None:
                    actions.append(DeployAction(f"schedule {monitor.name}", "deferred", waiting))
                    continue
                actions.append(_schedule(client, monitor, sha, dry_run))
            for path, sha in by_kind.get("azure.monitor_autoscale", []):
                body = json.loads(path.read_text())
                target = body["properties"]["targetResourceUri"].split("/onlineEndpoints/", 1)[-1].replace("/deployments/", "/")
                if target not in existing:
                    actions.append(DeployAction(f"autoscale setting {body['name']}", "deferred", f"its deployment {target} does not exist yet (see above)"))
                    continue
                actions.append(_arm_resource(client, plan, "azure.monitor_autoscale", path, sha, dry_run))
            for kind in (ACTION_GROUP_KIND, METRIC_ALERT_KIND):  # the alert names its action group: that first
                for path, sha in by_kind.get(kind, []):
                    actions.append(_arm_resource(client, plan, kind, path, sha, dry_run, _publisher_role(plan) if kind == METRIC_ALERT_KIND else ""))
        except Exception as exc:
            if _credentials_refused(exc):  # DefaultAzureCredential's own message lists every source it tried: not shown
                raise CredentialsMissing("Azure ML", "no valid credentials found (or the token was refused)", LOGIN) from exc
            if not isinstance(exc, AzureError):
                raise
            # a refusal, or a connection that kept failing past the retries
            what = "refused the deployment" if isinstance(exc, HttpResponseError) else "could not be reached"
            raise DeployFailed(f"Azure ML {what}: {exc.message or exc}", applied=actions, not_applied=not_applied(planned(plan, build_dir), actions)) from exc
    return actions


def _feature_store(plan: Plan, build_dir: Path, by_kind: dict[str, list[tuple[Path, str]]], dry_run: bool) -> list[DeployAction]:
    """Entities into the profile's feature store (which is provisioned with the workspace,
    not by deploy). Feature sets are reported `deferred` with the command that applies
    them: creating one uploads its spec folder to the feature store's storage account."""
    from mlcompile.targets.azureml.feature_store import store_settings

    entities = by_kind.get("azureml.feature_store_entity", [])
    feature_sets = by_kind.get("azureml.feature_set", [])
    if not entities and not feature_sets:
        return []
    store = store_settings(plan)
    client = _client(plan, workspace=store["name"], resource_group=store["resource_group"])
    actions = []
    for path, sha in entities:
        entity = _load("azureml.feature_store_entity", path)
        actions.append(
            _apply(
                f"feature store entity {store['name']}/{entity.name}:{entity.version}",
                entity,
                sha,
                lambda e=entity: client.feature_store_entities.get(e.name, e.version),
                lambda e: client.feature_store_entities.begin_create_or_update(e).result(),
                dry_run,
            )
        )
    for path, _sha in feature_sets:
        name = path.parent.name
        command = (
            f"az ml feature-set create --file {path.relative_to(build_dir).as_posix()} "
            f"--feature-store-name {store['name']} --resource-group {store['resource_group']}"
        )
        actions.append(
            DeployAction(
                f"feature set {store['name']}/{name}",
                "deferred",
                f"apply it with `{command}` (it uploads the spec folder to the feature store's storage, which deploy does not do)",
            )
        )
    return actions


def _schedule(client: Any, schedule: Any, sha: str, dry_run: bool) -> DeployAction:
    return _apply(
        f"schedule {schedule.name}",
        schedule,
        sha,
        lambda: client.schedules.get(schedule.name),
        lambda e: client.schedules.begin_create_or_update(e).result(),
        dry_run,
    )


def _monitor_waits_for(client: Any, monitor: Any, existing_deployments: set[str]) -> str | None:
    """Why the model monitor cannot be created yet (None: it can): Azure ML refuses a monitor
    whose target deployment or reference data does not exist."""
    target = getattr(monitor.create_monitor.monitoring_target, "endpoint_deployment_id", None)
    if target:
        deployment = str(target).removeprefix("azureml:").replace(":", "/")
        if deployment not in existing_deployments:
            return f"the deployment it watches, {deployment}, does not exist yet: deploy again once a version is rolled out"
    missing = _missing_reference_data(client, monitor)
    if missing is not None:
        return f"its reference data {missing} does not exist yet: run the training pipeline once, then deploy again"
    return None


def _missing_reference_data(client: Any, monitor: Any) -> str | None:
    """The monitor's baseline is the training set each training run registers: on a new
    workspace it exists only after the first run, and Azure ML refuses the monitor until then."""
    for signal in (monitor.create_monitor.monitoring_signals or {}).values():
        reference = getattr(signal, "reference_data", None)
        path = str(getattr(getattr(reference, "input_data", None), "path", "") or "").removeprefix("azureml:")
        if "@" not in path:
            continue
        name, label = path.split("@", 1)
        try:
            client.data.get(name=name, label=label)
        except Exception as exc:  # the SDK wraps the 404 of a label lookup in an MlException
            if _is_not_found(exc):
                return name
            raise
    return None


def _credentials_refused(exc: BaseException | None) -> bool:
    """No credential in the chain gave a token, or the platform refused it (HTTP 401), also
    when the SDK wrapped that in its own exception."""
    from azure.core.exceptions import ClientAuthenticationError

    seen = 0
    while exc is not None and seen < 10:
        if isinstance(exc, ClientAuthenticationError):
            return True
        exc, seen = exc.__cause__ or exc.__context__, seen + 1
    return False


def _is_not_found(exc: BaseException | None) -> bool:
    from azure.core.exceptions import ResourceNotFoundError

    seen = 0
    while exc is not None and seen < 10:
        if isinstance(exc, ResourceNotFoundError) or str(getattr(exc, "error_type", "")).endswith("RESOURCE_NOT_FOUND"):
            return True
        exc, seen = exc.__cause__ or exc.__context__, seen + 1
    return False


def _existing(get: Any) -> Any:
    from azure.core.exceptions import ResourceNotFoundError

    try:
        return get()
    except ResourceNotFoundError:
        return None


def _apply(label: str, entity: Any, sha: str, get: Any, create: Any, dry_run: bool) -> DeployAction:
    existing = _existing(get)
    live = None if existing is None else _tag_of(existing)
    if existing is not None and live == sha:
        return DeployAction(label, "unchanged", "", live_fingerprint(live))
    entity.tags = {**(entity.tags or {}), FILE_TAG: sha}
    if not dry_run:
        create(entity)
    return DeployAction(label, "create" if existing is None else "update", "", live_fingerprint(live))


def _tag_of(existing: Any) -> str:
    """What the comparison reads of a resource: the sha256 of the file it was deployed from."""
    return str((getattr(existing, "tags", None) or {}).get(FILE_TAG, ""))


def _online(client: Any, plan: Plan, by_kind: dict[str, list[tuple[Path, str]]], dry_run: bool, actions: list[DeployAction]) -> set[str]:
    """The endpoint, and the settings of its deployments that exist. A deployment serves a
    registry version, which only the rollout sets (deploy-online, once a version is approved):
    one that does not exist yet is `deferred`, one that does keeps its version and its
    endpoint's traffic split. Returns the deployments that exist (`endpoint/slot`)."""
    existing_slots: set[str] = set()
    for path, sha in by_kind.get("azureml.online_endpoint", []):
        endpoint = _load("azureml.online_endpoint", path)
        live_endpoint = _existing(lambda: client.online_endpoints.get(endpoint.name))
        endpoint.traffic = dict(live_endpoint.traffic or {}) if live_endpoint is not None else {}  # the rollout's split
        actions.append(
            _apply(
                f"online endpoint {endpoint.name}",
                endpoint,
                sha,
                lambda e=live_endpoint: e,
                lambda e: client.online_endpoints.begin_create_or_update(e).result(),
                dry_run,
            )
        )
        for dep_path, dep_sha in by_kind.get("azureml.online_deployment", []):
            deployment = _load("azureml.online_deployment", dep_path)
            if deployment.endpoint_name != endpoint.name:
                continue
            label = f"online deployment {endpoint.name}/{deployment.name}"
            live = _existing(lambda d=deployment: client.online_deployments.get(d.name, endpoint.name))
            if live is None:
                actions.append(DeployAction(label, "deferred", _deferred_deployment(plan)))
                continue
            existing_slots.add(f"{endpoint.name}/{deployment.name}")
            deployment.model = live.model  # the version the rollout put there
            deployment.tags = {**(deployment.tags or {}), **{k: v for k, v in (live.tags or {}).items() if k == TAG_MODEL_VERSION}}
            actions.append(
                _apply(label, deployment, dep_sha, lambda d=live: d, lambda e: client.online_deployments.begin_create_or_update(e).result(), dry_run)
            )
    return existing_slots


def _deferred_deployment(plan: Plan) -> str:
    model = plan.registry.model
    if plan.registry.approval == "manual":
        return (
            f"it serves an approved version of {model}, and the rollout creates it: approve a version (MLflow alias "
            f"'production'), then submit pipelines/{plan.system}-deploy.yml (`az ml job create -f …`)"
        )
    return f"it serves a version of {model}, and the training pipeline's deploy-online step creates it once a version passes its gates"


def _data(client: Any, data: Any, sha: str, dry_run: bool) -> DeployAction:
    """A data asset is versioned: a changed file becomes the next version (`@latest`)."""
    label = f"data asset {data.name}"
    try:
        latest = client.data.get(name=data.name, label="latest")
    except Exception as exc:
        if not _is_not_found(exc):
            raise
        latest = None
    live = live_fingerprint(None if latest is None else {"version": str(latest.version), "tag": _tag_of(latest)})
    if latest is not None and (latest.tags or {}).get(FILE_TAG) == sha:
        return DeployAction(label, "unchanged", "", live)
    data.tags = {**(data.tags or {}), FILE_TAG: sha}
    data.version = str(int(latest.version) + 1) if latest is not None and str(latest.version).isdigit() else "1"
    if not dry_run:
        client.data.create_or_update(data)
    return DeployAction(label, "create" if latest is None else "update", f"version {data.version}", live)


def _batch(client: Any, by_kind: dict[str, list[tuple[Path, str]]], dry_run: bool, actions: list[DeployAction]) -> None:
    for path, sha in by_kind.get("azureml.batch_endpoint", []):
        endpoint = _load("azureml.batch_endpoint", path)
        actions.append(
            _apply(
                f"batch endpoint {endpoint.name}",
                endpoint,
                sha,
                lambda: client.batch_endpoints.get(endpoint.name),
                lambda e: client.batch_endpoints.begin_create_or_update(e).result(),
                dry_run,
            )
        )
        for dep_path, dep_sha in by_kind.get("azureml.batch_deployment", []):
            deployment = _load("azureml.batch_deployment", dep_path)
            actions.append(
                _apply(
                    f"batch deployment {endpoint.name}/{deployment.name}",
                    deployment,
                    dep_sha,
                    lambda d=deployment: client.batch_deployments.get(d.name, endpoint.name),
                    lambda e: client.batch_deployments.begin_create_or_update(e).result(),
                    dry_run,
                )
            )


def _publisher_role(plan: Plan) -> str:
    """What the metric alert needs to ever fire: the alert step's identity may publish metrics."""
    runs_as = identity(plan, "pipelines")
    who = f"the pipelines identity (client id {runs_as['client_id']})" if runs_as else "the workspace's compute identity"
    return f"{who} needs the role {PUBLISHER_ROLE} on the workspace to publish the breach metric"


def _arm_resource(client: Any, plan: Plan, kind: str, path: Path, sha: str, dry_run: bool, detail: str = "") -> DeployAction:
    """PUT an ARM resource body of the build (autoscale setting, action group, metric alert)
    at the resource group through the MLClient's own authenticated ARM pipeline."""
    from azure.core.exceptions import HttpResponseError
    from azure.core.rest import HttpRequest

    body = json.loads(path.read_text())
    settings = plan.platform_settings
    url = (
        f"{client._base_url.rstrip('/')}/subscriptions/{settings['subscription_id']}/resourceGroups/{settings['resource_group']}"
        f"/providers/{body['type']}/{body['name']}?api-version={body['apiVersion']}"
    )
    pipeline = client._service_client_04_2023_preview._client  # the ARM pipeline client (auth, retries, TLS)
    label = f"{ARM_KINDS[kind]} {body['name']}"
    with pipeline.send_request(HttpRequest("GET", url)) as response:
        existing = response.json() if response.status_code == 200 else None
    live = live_fingerprint(None if existing is None else str((existing.get("tags") or {}).get(FILE_TAG, "")))
    if existing is not None and (existing.get("tags") or {}).get(FILE_TAG) == sha:
        return DeployAction(label, "unchanged", detail, live)
    if not dry_run:
        # global resources (action groups, metric alerts) name their location; an autoscale
        # setting lives in its workspace's region
        location = body.get("location") or client.workspaces.get(settings["workspace"]).location
        payload = {"location": location, "tags": {**body.get("tags", {}), FILE_TAG: sha}, "properties": body["properties"]}
        with pipeline.send_request(HttpRequest("PUT", url, json=payload)) as response:
            if response.status_code >= 300:
                raise HttpResponseError(message=f"{label}: HTTP {response.status_code} {response.text()}")
    return DeployAction(label, "create" if existing is None else "update", detail, live)
