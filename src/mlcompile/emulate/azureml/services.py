"""The Azure ML workspace of an emulated run, served on 127.0.0.1: the ARM stand-in (HTTPS,
mlcompile.emulate.services.azure_arm) that `MLClient` reaches through
MLCOMPILE_AZUREML_ARM_ENDPOINT — every resource `mlcompile deploy` creates, the models API
over the MLflow registry (registry.py), pipeline jobs submitted with
`MLClient.jobs.create_or_update` run by the interpreter (submitted.py), the compute's managed
identity and the workspace's Key Vault (identity.py) — and the workspace's MLflow tracking
server. Steps get what points them there (session.env)."""

from __future__ import annotations

import contextlib
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from mlcompile.emulate.azureml.identity import JobIdentity
from mlcompile.emulate.azureml.registry import ModelRegistry
from mlcompile.emulate.azureml.submitted import SubmittedJobs
from mlcompile.emulate.azureml.workspace import DATASTORE, AzureWorkspace
from mlcompile.emulate.containers import first_line, stop
from mlcompile.emulate.services.azure_arm import ArmStandIn, bearer_token, tls_certificate
from mlcompile.emulate.services.azure_arm import serve as serve_arm
from mlcompile.errors import UsageError

ARM_ENV, CA_ENV, TOKEN_ENV = "MLCOMPILE_AZUREML_ARM_ENDPOINT", "MLCOMPILE_AZUREML_CA_BUNDLE", "MLCOMPILE_AZUREML_ACCESS_TOKEN"  # targets.azureml.deploy's
MLFLOW_START_SECONDS = 90.0


@dataclass
class AzureServices:
    arm: ArmStandIn
    url: str
    workspace: AzureWorkspace
    jobs: SubmittedJobs
    certificate: Any = None

    def client_env(self) -> dict[str, str]:
        """What points MLClient (deploy, the steps, a person) at the workspace stand-in."""
        return {ARM_ENV: self.url, CA_ENV: str(self.certificate), TOKEN_ENV: bearer_token(self.url)}

    def wait(self, timeout: float | None = None) -> bool:
        return self.jobs.wait(timeout)


@contextlib.contextmanager
def serve(session: Any) -> Iterator[AzureServices]:
    settings = session.plan.platform_settings
    folder = session.work / "workspace"
    folder.mkdir(parents=True, exist_ok=True)
    with contextlib.ExitStack() as stack:
        tracking = stack.enter_context(_mlflow(folder / "mlflow"))
        arm = ArmStandIn()
        certificate = tls_certificate(folder)
        server, url = serve_arm(arm, certificate=certificate)
        stack.callback(server.server_close)
        stack.callback(server.shutdown)
        workspace = AzureWorkspace(
            str(settings["subscription_id"]),
            str(settings["resource_group"]),
            str(settings["workspace"]),
            session.root,
            tracking,
            arm,
            str(settings.get("region") or "westeurope"),
        )
        vault = f"/subscriptions/{workspace.subscription}/resourceGroups/{workspace.resource_group}/providers/Microsoft.KeyVault/vaults/kv-{workspace.name}"
        arm.seed(
            workspace.path,
            {
                "location": workspace.region,
                "properties": {
                    "workspaceId": "00000000-0000-0000-0000-00000000e001",
                    "discoveryUrl": "",
                    "mlFlowTrackingUri": workspace.tracking_uri,
                    "keyVault": vault,
                },
            },
        )
        for compute in computes(session.build, settings):  # provisioned with the workspace (the profile's infrastructure)
            arm.seed(f"{workspace.path}/computes/{compute}", {"location": workspace.region, "properties": {"computeType": "AmlCompute", "properties": {}}})
        arm.seed(
            f"{workspace.path}/datastores/{DATASTORE}",
            {"properties": {"datastoreType": "AzureBlob", "accountName": "emulated", "containerName": "azureml", "isDefault": True}},
        )
        registry = ModelRegistry(workspace)
        jobs = SubmittedJobs(session, workspace)
        identity = JobIdentity(url, session.config.secrets, vault)
        arm.intercept = lambda *request: registry.answer(*request) or jobs.answer(*request) or identity.answer(*request)
        services = AzureServices(arm, url, workspace, jobs, certificate[0])
        session.env.update(services.client_env())
        session.env.update(identity.env(str(certificate[0])))
        session.facts["mlflow"] = {"uri": workspace.tracking_uri, "local": tracking}
        session.log(f"workspace {workspace.name}: ARM stand-in at {url}, MLflow at {tracking}")
        try:
            yield services
        finally:
            jobs.wait(300.0)


@contextlib.contextmanager
def _mlflow(folder: Any) -> Iterator[str]:
    folder.mkdir(parents=True, exist_ok=True)
    log = open(folder / "server.log", "w+b")
    process = subprocess.Popen(
        [sys.executable, "-m", "mlcompile.emulate.mlflow_server", str(folder)], stdout=subprocess.PIPE, stderr=log, stdin=subprocess.DEVNULL
    )
    try:
        line = first_line(process, MLFLOW_START_SECONDS)
        if not line.startswith("port "):
            log.seek(0)
            raise UsageError(f"the workspace's MLflow stand-in did not start: {log.read().decode(errors='replace')[-2000:]}")
        yield f"http://127.0.0.1:{line.split()[1]}"
    finally:
        stop(process)
        log.close()


def computes(build: Any, settings: Any) -> list[str]:
    """The compute clusters the build names (`compute: azureml:NAME`), and the profile's."""
    import re

    found = {str(settings["compute"])} if settings.get("compute") else set()
    for path in sorted((build / "pipelines").glob("*.yml")) if build is not None else []:
        found.update(re.findall(r"^\s*(?:default_)?compute: azureml:([\w-]+)\s*$", path.read_text(encoding="utf-8"), re.MULTILINE))
    return sorted(found - {"serverless"})
