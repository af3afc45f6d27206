"""Resolving `secret://NAME` when a step runs — never at build time, so that a secret's
value is in no build output, plan or log.

A step finds secret NAME through the environment variable MLCOMPILE_SECRET_<NAME>
(`mlcompile.runtime.contract.env_name`), which holds either the value itself (Kubernetes injects it
from a Secret; locally you export it) or a locator the build wrote, read here from the
platform's secret store with the identity the step runs as:

    secretmanager:projects/P/secrets/N/versions/V   Google Secret Manager (REST, google-auth)
    secretsmanager:arn:aws:secretsmanager:R:A:secret:N   AWS Secrets Manager (boto3)
    keyvault:https://V.vault.azure.net/secrets/N      Azure Key Vault (REST, azure-identity)
    keyvault:N                                        the Azure ML workspace's Key Vault

Locally, a JSON file named by MLCOMPILE_SECRETS_FILE ({"name": "value"}) may hold the values
instead. Each platform's library is imported only when its store is asked. Values are
returned, never printed: errors name the secret and the variable, not the value.

Endpoints can be pointed elsewhere (tests, private endpoints): MLCOMPILE_SECRETMANAGER_ENDPOINT,
MLCOMPILE_KEYVAULT_ENDPOINT, MLCOMPILE_ARM_ENDPOINT; boto3 reads AWS_ENDPOINT_URL_SECRETS_MANAGER."""

from __future__ import annotations

import base64
import json
import os
from typing import Any
from urllib.parse import urlsplit

from mlcompile.runtime.contract import LOCATOR_SCHEMES, env_name, secret_name

SECRETS_FILE_ENV = "MLCOMPILE_SECRETS_FILE"
KEYVAULT_API_VERSION = "7.4"
ARM_WORKSPACE_API_VERSION = "2024-04-01"
TIMEOUT = 30


class SecretUnavailable(Exception):
    """A secret could not be read; the message names it and says where it was looked for."""


def resolve(reference: str) -> str:
    """The value of `secret://NAME`; any other string is returned as it is."""
    name = secret_name(reference)
    if name is None:
        return reference
    variable = env_name(name)
    held = os.environ.get(variable)
    if held is None:
        from_file = _from_secrets_file(name)
        if from_file is not None:
            return from_file
        raise SecretUnavailable(f"secret {name!r} is not available: set {variable} (or list it in the JSON file named by {SECRETS_FILE_ENV})")
    if held.startswith(LOCATOR_SCHEMES):
        return fetch(held, name=name)
    return held


def fetch(where: str, *, name: str | None = None) -> str:
    """Read a secret from the store a locator names."""
    scheme, _, rest = where.partition(":")
    try:
        if scheme == "secretmanager":
            return google_secret_manager(rest)
        if scheme == "secretsmanager":
            return aws_secrets_manager(rest)
        if scheme == "keyvault":
            return azure_key_vault(rest)
    except SecretUnavailable:
        raise
    except Exception as exc:  # noqa: BLE001 - the store's own error, without the request's headers
        raise SecretUnavailable(f"secret {name or rest!r} could not be read from {scheme} ({rest}): {type(exc).__name__}: {_short(exc)}") from None
    raise SecretUnavailable(f"unknown secret locator {scheme!r}")


def _short(exc: Exception) -> str:
    return str(exc).splitlines()[0][:300] if str(exc) else ""


def _from_secrets_file(name: str) -> str | None:
    path = os.environ.get(SECRETS_FILE_ENV)
    if not path:
        return None
    try:
        with open(path, encoding="utf-8") as handle:
            values = json.load(handle)
    except (OSError, ValueError) as exc:
        raise SecretUnavailable(f"{SECRETS_FILE_ENV}={path}: not a readable JSON object ({type(exc).__name__})") from None
    value = values.get(name) if isinstance(values, dict) else None
    return value if isinstance(value, str) else None


def _local(url: str) -> bool:
    return urlsplit(url).hostname in ("127.0.0.1", "localhost", "::1")


# ---------------------------------------------------------------------- Google Secret Manager


def _google_session(endpoint: str) -> Any:
    """An HTTP session with the step's Google credentials (none for a local endpoint)."""
    import requests

    if _local(endpoint):
        return requests.Session()
    import google.auth
    from google.auth.transport.requests import AuthorizedSession

    credentials, _ = google.auth.default(scopes=["https://www.googleapis.com/auth/cloud-platform"])
    return AuthorizedSession(credentials)


def google_secret_manager(resource: str) -> str:
    """`projects/P/secrets/N/versions/V` through `versions.access` (payload.data is base64)."""
    endpoint = os.environ.get("MLCOMPILE_SECRETMANAGER_ENDPOINT", "https://secretmanager.googleapis.com").rstrip("/")
    response = _google_session(endpoint).get(f"{endpoint}/v1/{resource}:access", timeout=TIMEOUT)
    if response.status_code != 200:
        raise SecretUnavailable(f"Secret Manager answered {response.status_code} for {resource}")
    data = response.json().get("payload", {}).get("data")
    if data is None:
        raise SecretUnavailable(f"Secret Manager's answer for {resource} has no payload.data")
    return base64.b64decode(data).decode("utf-8")


# ---------------------------------------------------------------------- AWS Secrets Manager


def aws_secrets_manager(arn: str) -> str:
    """`arn:aws:secretsmanager:REGION:ACCOUNT:secret:NAME` (the name, without the suffix AWS
    appends, is what the build knows): GetSecretValue by name in that region."""
    import boto3

    parts = arn.split(":", 6)
    if len(parts) != 7 or parts[2] != "secretsmanager" or parts[5] != "secret":
        raise SecretUnavailable(f"{arn!r} is not a Secrets Manager secret ARN")
    region, name = parts[3], parts[6]
    answer = boto3.client("secretsmanager", region_name=region).get_secret_value(SecretId=name)
    if "SecretString" in answer:
        return str(answer["SecretString"])
    return bytes(answer["SecretBinary"]).decode("utf-8")


# ---------------------------------------------------------------------- Azure Key Vault


def _azure_token(scope: str) -> str:
    from azure.identity import DefaultAzureCredential  # the job's managed identity on Azure ML

    return str(DefaultAzureCredential().get_token(scope).token)


def _azure_get(url: str, scope: str) -> dict[str, Any]:
    import requests

    headers = {"Authorization": f"Bearer {_azure_token(scope)}"}
    response = requests.get(url, headers=headers, timeout=TIMEOUT)
    if response.status_code != 200:
        raise SecretUnavailable(f"{urlsplit(url).netloc} answered {response.status_code} for {urlsplit(url).path}")
    answer = response.json()
    return answer if isinstance(answer, dict) else {}


def workspace_vault() -> str:
    """The Key Vault URL of the Azure ML workspace this job runs in (Azure ML sets the
    AZUREML_ARM_* variables in every job)."""
    try:
        sub, group, workspace = (os.environ[k] for k in ("AZUREML_ARM_SUBSCRIPTION", "AZUREML_ARM_RESOURCEGROUP", "AZUREML_ARM_WORKSPACE_NAME"))
    except KeyError as missing:
        raise SecretUnavailable(
            f"the workspace's Key Vault is unknown outside an Azure ML job ({missing.args[0]} is not set): name it in the profile as azureml.key_vault"
        ) from None
    arm = os.environ.get("MLCOMPILE_ARM_ENDPOINT", "https://management.azure.com").rstrip("/")
    path = f"/subscriptions/{sub}/resourceGroups/{group}/providers/Microsoft.MachineLearningServices/workspaces/{workspace}"
    found = _azure_get(f"{arm}{path}?api-version={ARM_WORKSPACE_API_VERSION}", "https://management.azure.com/.default")
    vault_id = (found.get("properties") or {}).get("keyVault")
    if not vault_id:
        raise SecretUnavailable(f"workspace {workspace} names no Key Vault")
    return f"https://{str(vault_id).rstrip('/').rsplit('/', 1)[-1]}.vault.azure.net"


def azure_key_vault(where: str) -> str:
    """`https://V.vault.azure.net/secrets/N` or `N` (the workspace's vault): GET
    {vault}/secrets/{name}?api-version=7.4 → value."""
    if "://" in where:
        vault, _, name = where.partition("/secrets/")
    else:
        vault, name = workspace_vault(), where
    endpoint = os.environ.get("MLCOMPILE_KEYVAULT_ENDPOINT")
    url = f"{(endpoint or vault).rstrip('/')}/secrets/{name}?api-version={KEYVAULT_API_VERSION}"
    value = _azure_get(url, "https://vault.azure.net/.default").get("value")
    if not isinstance(value, str):
        raise SecretUnavailable(f"Key Vault's answer for secret {name!r} has no value")
    return value
