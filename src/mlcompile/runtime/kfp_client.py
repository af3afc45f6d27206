"""A kfp.Client for Kubeflow Pipelines' REST API, with the credentials the environment holds
and a read timeout on every request: `deploy` uploads through it, and the runtime's retraining
trigger starts runs through it from inside the cluster."""

from __future__ import annotations

import os
from typing import Any

from mlcompile.runtime.retries import RetrySettings

TOKEN_ENV = "MLCOMPILE_KFP_TOKEN"
LOGIN = (
    f"set {TOKEN_ENV} to a bearer token the API accepts, KF_PIPELINES_SA_TOKEN_PATH to a service-account token file, "
    f"or KF_PIPELINES_IAP_OAUTH2_CLIENT_ID behind Identity-Aware Proxy ({TOKEN_ENV}=none for an API without authentication)"
)


class NoCredentials(Exception):
    """No credentials for the API were found (the message says how to provide them)."""


def kfp_client(host: str, namespace: str) -> Any:
    """A kfp.Client with the credentials `_credentials` finds and a read timeout on every request."""
    import kfp

    client = kfp.Client(host=host, namespace=namespace, **_credentials(host))
    _set_timeout(client, RetrySettings.from_env().timeout)
    return client


def _credentials(host: str) -> dict[str, Any]:
    """kfp.Client's credentials: a bearer token (MLCOMPILE_KFP_TOKEN), a service-account token
    file (kfp's KF_PIPELINES_SA_TOKEN_PATH, or its in-cluster default), or IAP (kfp reads
    KF_PIPELINES_IAP_OAUTH2_CLIENT_ID itself). A remote host with none of them is refused
    before any request: an API behind authentication would only answer a login page.
    MLCOMPILE_KFP_TOKEN=none sends none (an API without authentication)."""
    from urllib.parse import urlparse

    from kfp import client as kfp_client

    token = os.environ.get(TOKEN_ENV)
    if token:
        return {} if token == "none" else {"existing_token": token}
    token_file = os.environ.get(kfp_client.KF_PIPELINES_SA_TOKEN_ENV) or kfp_client.KF_PIPELINES_SA_TOKEN_PATH
    if os.path.isfile(token_file):
        from kfp.client.set_volume_credentials import ServiceAccountTokenVolumeCredentials

        return {"credentials": ServiceAccountTokenVolumeCredentials(token_file)}
    if os.environ.get("KF_PIPELINES_IAP_OAUTH2_CLIENT_ID") or urlparse(host).hostname in ("127.0.0.1", "localhost", "::1"):
        return {}
    raise NoCredentials(f"Kubeflow Pipelines at {host}: no credentials found; {LOGIN}")


def _set_timeout(client: Any, seconds: float) -> None:
    """kfp.Client sends every request with no timeout at all (urllib3 waits forever on a
    server that accepted the connection and never answers): give each one a read timeout.
    And no retries of urllib3's own: by default it sleeps whatever Retry-After a 429 or 503
    asks (100000 s included); mlcompile retries, with its cap."""
    import urllib3

    pool = client._pipelines_api.api_client.rest_client.pool_manager
    request = pool.request

    def with_timeout(*args: Any, timeout: Any = None, **kwargs: Any) -> Any:
        kwargs["retries"] = False
        return request(*args, timeout=timeout or urllib3.Timeout(connect=seconds, read=seconds), **kwargs)

    pool.request = with_timeout
