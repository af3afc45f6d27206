"""What a job's identity reaches on Azure ML, served beside the workspace stand-in: the
compute's managed identity endpoint (Azure ML sets MSI_ENDPOINT and MSI_SECRET in every job;
azure-identity's DefaultAzureCredential asks it for tokens) and the workspace's Key Vault
(`keyvault:NAME` secrets, runtime.secrets), holding the emulation config's `secrets:`."""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

from mlcompile.emulate.services.azure_arm import bearer_token

MSI_PATH = "/msi/token"
VAULT_PATH = "/keyvault"


class JobIdentity:
    def __init__(self, url: str, secrets: Mapping[str, str], vault: str) -> None:
        self.url, self.secrets, self.vault = url.rstrip("/"), dict(secrets), vault

    def env(self, certificate: str) -> dict[str, str]:
        return {
            "MSI_ENDPOINT": self.url + MSI_PATH,
            "MSI_SECRET": "emulated-compute-identity",
            "MLCOMPILE_ARM_ENDPOINT": self.url,  # runtime.secrets looks the workspace's vault up there
            "MLCOMPILE_KEYVAULT_ENDPOINT": self.url + VAULT_PATH,
            # the alert step's breach metric (runtime.alerts_azureml): the stand-in records the POST
            "MLCOMPILE_AZURE_MONITOR_METRICS_URL": self.url,
            "REQUESTS_CA_BUNDLE": certificate,  # the stand-ins' throw-away certificate
        }

    def answer(self, method: str, path: str, query: dict[str, list[str]], body: Any) -> tuple[int, Any] | None:
        if method == "GET" and path.rstrip("/") == MSI_PATH:
            resource = (query.get("resource") or [""])[0]
            return 200, {"access_token": bearer_token(self.url), "expires_on": str(int(time.time()) + 3600), "resource": resource, "token_type": "Bearer"}
        if method == "GET" and path.startswith(VAULT_PATH + "/secrets/"):
            name = path[len(VAULT_PATH + "/secrets/") :].strip("/").split("/")[0]
            if name not in self.secrets:
                return 404, {
                    "error": {
                        "code": "SecretNotFound",
                        "message": f"A secret with (name/id) {name} was not found in this key vault (the emulation config's `secrets:`).",
                    }
                }
            return 200, {"value": self.secrets[name], "id": f"{self.vault}/secrets/{name}/emulated", "attributes": {"enabled": True}}
        return None
