"""The life of an emulated Azure ML system, done through Azure ML's own APIs as a person and
the service would: `mlcompile deploy` (targets.azureml.deploy: MLClient against the workspace
stand-in) before the first scheduled run; the approval of a registered version (the MLflow
alias `production`, set with MLflow's client against the workspace's tracking server, as
docs/targets/azureml.md tells an approver) and the `<system>-deploy` pipeline job the approver
then submits; and what the summary reports of the workspace: the online endpoint's
deployments, the model version each serves and its share of traffic."""

from __future__ import annotations

import os
from typing import Any

from mlcompile.emulate.azureml.registry import PRODUCTION_ALIAS
from mlcompile.emulate.ir import FAILED, SUCCEEDED, PipelineResult, TaskResult


def client_environment(services: Any) -> Any:
    """This process's environment pointed at the workspace stand-in while MLClient is used
    here (deploy, approval), as a person's shell would be; restored afterwards."""
    from unittest import mock

    return mock.patch.dict(os.environ, services.client_env())


def deploy(session: Any, services: Any, why: str) -> None:
    """`mlcompile deploy` of the build, as a person runs it; a deploy that fails fails the
    emulated run (`mlcompile-deploy` in the summary, its failure listed)."""
    import time

    from mlcompile.targets.azureml.deploy import deploy as azure_deploy
    from mlcompile.targets.base import DeployFailed

    started = time.monotonic()
    name = "mlcompile-deploy"
    try:
        with client_environment(services):
            actions = azure_deploy(session.plan, session.build, dry_run=False)
        tasks = {a.resource: TaskResult(a.resource, SUCCEEDED, reason=f"{a.action}" + (f": {a.detail}" if a.detail else "")) for a in actions}
        status = SUCCEEDED
    except DeployFailed as exc:
        tasks = {a.resource: TaskResult(a.resource, SUCCEEDED, reason=a.action) for a in exc.applied}
        tasks["deploy"] = TaskResult("deploy", FAILED, reason=str(exc))
        status = FAILED
    if status == FAILED:  # what could not be applied fails the emulated run (the summary's failures)
        session.results.append(PipelineResult(name, f"{name}-{len(session.results)}", status, tasks, time.monotonic() - started))
    session.log(f"mlcompile deploy ({why}): {status.lower()}" + ("" if status == SUCCEEDED else f": {tasks['deploy'].reason}"))


class Registry:
    """The workspace's models, as a person reads and approves them: through MLflow's
    registry API on the workspace's tracking server (emulate.lifecycle's approval loop
    uses it as the platform's registry)."""

    def __init__(self, session: Any, services: Any) -> None:
        self.session, self.services, self.model = session, services, session.plan.registry.model

    def newest(self) -> str | None:
        found = self.services.workspace.mlflow("GET", "model-versions/search", query={"filter": f"name='{self.model}'", "max_results": 1000}).get(
            "model_versions", []
        )
        return str(max(int(v["version"]) for v in found)) if found else None

    def approved(self) -> str | None:
        try:
            return str(
                self.services.workspace.mlflow("GET", "registered-models/alias", query={"name": self.model, "alias": PRODUCTION_ALIAS})["model_version"][
                    "version"
                ]
            )
        except LookupError:
            return None

    def approve(self, version: str) -> None:
        self.services.workspace.mlflow("POST", "registered-models/alias", {"name": self.model, "alias": PRODUCTION_ALIAS, "version": version})


def observe_endpoint(session: Any, services: Any) -> None:
    """The online endpoint as the workspace holds it: each deployment's model version and
    the endpoint's traffic split, summed by version (facts `deployed`)."""
    online = session.plan.online
    if online is None:
        return
    base = f"{services.workspace.path}/onlineEndpoints/{online.name}"
    endpoint = services.arm.get(base)
    if endpoint is None:
        return
    traffic: dict[str, int] = {}
    newest = None
    for slot, percent in sorted(((endpoint.get("properties") or {}).get("traffic") or {}).items()):
        deployment = services.arm.get(f"{base}/deployments/{slot}") or {}
        model = str((deployment.get("properties") or {}).get("model") or "")
        version = model.rstrip("/").rsplit("/versions/", 1)[-1] if "/versions/" in model else (model or "none")
        traffic[version] = traffic.get(version, 0) + int(percent)
        if percent and (newest is None or (version.isdigit() and newest.isdigit() and int(version) > int(newest))):
            newest = version
    session.facts["deployed"] = {"endpoint": online.name, "version": newest, "traffic": {v: p for v, p in traffic.items() if p}}
