"""How a monitoring breach reaches the e-mail recipients on Azure ML: the alert step publishes
the custom metric `mlcompile/monitoring_breach` (dimensions system, signal; one series per
breached check) for the workspace resource to Azure Monitor, whose metric alert (the build's
alerts/<system>-breach-alert.json) notifies the action group that e-mails them.

Azure Monitor's custom metrics ingestion (POST https://<region>.monitoring.azure.com<resource
id>/metrics, a token for https://monitoring.azure.com/) takes metrics in the resource's own
region: the step reads the workspace's location from Resource Manager. It runs as the job's
identity (the profile's `pipelines` identity), which needs Monitoring Metrics Publisher on
the workspace.

Configuration (environment): credentials, Resource Manager URL and CA bundle as
mlcompile.runtime.azureml_client reads them; MLCOMPILE_AZURE_MONITOR_METRICS_URL: the
ingestion URL (default `https://{region}.monitoring.azure.com`), for sovereign clouds and
local stand-ins."""

from __future__ import annotations

import datetime
import os
from collections.abc import Mapping
from typing import Any

ENV_METRICS_URL = "MLCOMPILE_AZURE_MONITOR_METRICS_URL"
METRICS_URL = "https://{region}.monitoring.azure.com"
MONITORING_SCOPE = "https://monitoring.azure.com/.default"
MANAGEMENT_SCOPE = "https://management.azure.com/.default"
METRIC_NAMESPACE = "mlcompile"
METRIC_NAME = "monitoring_breach"
DIMENSIONS = ("system", "signal")
WORKSPACE_API_VERSION = "2024-04-01"
TIMEOUT_SECONDS = 10


def workspace_id(platform: Mapping[str, Any]) -> str:
    return (
        f"/subscriptions/{platform['subscription_id']}/resourceGroups/{platform['resource_group']}"
        f"/providers/Microsoft.MachineLearningServices/workspaces/{platform['workspace']}"
    )


def metric_document(system: str, signals: list[str], now: datetime.datetime) -> dict[str, Any]:
    """The ingestion body: one series per breached signal, each a single value of 1."""
    series = [{"dimValues": [system, signal], "min": 1, "max": 1, "sum": 1, "count": 1} for signal in signals]
    return {
        "time": now.astimezone(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "data": {"baseData": {"metric": METRIC_NAME, "namespace": METRIC_NAMESPACE, "dimNames": list(DIMENSIONS), "series": series}},
    }


def _verify() -> Any:
    from mlcompile.runtime.azureml_client import ENV_CA

    return os.environ.get(ENV_CA) or True


def _workspace_region(platform: Mapping[str, Any], credential: Any) -> str:
    import requests

    from mlcompile.runtime.azureml_client import ENV_ARM

    arm = (os.environ.get(ENV_ARM) or "https://management.azure.com").rstrip("/")
    token = credential.get_token(MANAGEMENT_SCOPE).token
    response = requests.get(f"{arm}{workspace_id(platform)}", params={"api-version": WORKSPACE_API_VERSION},
                            headers={"Authorization": f"Bearer {token}"}, timeout=TIMEOUT_SECONDS, verify=_verify())  # fmt: skip
    response.raise_for_status()
    return str(response.json()["location"]).replace(" ", "").lower()


def publish_breach(config: Mapping[str, Any], signals: list[str]) -> str:
    """Publish the breach; returns what happened (the alert step prints it)."""
    import requests

    from mlcompile.runtime.azureml_client import credential

    platform = config["platform"]
    identity = credential()
    template = os.environ.get(ENV_METRICS_URL) or METRICS_URL
    region = _workspace_region(platform, identity) if "{region}" in template else ""
    url = template.format(region=region).rstrip("/") + workspace_id(platform) + "/metrics"
    token = identity.get_token(MONITORING_SCOPE).token
    document = metric_document(str(config.get("system") or ""), signals, datetime.datetime.now(datetime.UTC))
    response = requests.post(url, json=document, headers={"Authorization": f"Bearer {token}"}, timeout=TIMEOUT_SECONDS, verify=_verify())
    if response.status_code >= 300:
        raise RuntimeError(f"Azure Monitor refused the metric {METRIC_NAMESPACE}/{METRIC_NAME}: HTTP {response.status_code} {response.text[:300]}")
    alert = (config.get("platform") or {}).get("metric_alert", "the build's metric alert")
    return f"published {METRIC_NAMESPACE}/{METRIC_NAME} ({', '.join(signals)}) to Azure Monitor; {alert} e-mails the recipients through its action group"
