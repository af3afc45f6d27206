"""Email alerts on Kubeflow: a cluster has no mail service of its own, so they go through the
cluster's Alertmanager (profile `kubeflow.alertmanager`). On a breach the monitoring
pipeline's alert step posts an alert to the Alertmanager API (v2); the build adds

  monitoring/alertmanager-config.yaml   prometheus_operator.alertmanager_config

an AlertmanagerConfig (monitoring.coreos.com/v1alpha1) in the profile's namespace that routes
that alert (alertname + system) to an email receiver with the spec's recipients. The
operator scopes the route to its namespace (a `namespace` matcher), so the alert carries that
label too. Mail goes out through the Alertmanager's SMTP settings (its global smtp_*). Without
an Alertmanager in the profile an email alert is refused at validate."""

from __future__ import annotations

from typing import Any

from mlcompile.diagnostics import Diagnostic
from mlcompile.plan.nodes import Plan
from mlcompile.runtime.contract import BREACH_ALERT_NAME
from mlcompile.targets.base import unsupported

KIND = "prometheus_operator.alertmanager_config"
PATH = "monitoring/alertmanager-config.yaml"
REPEAT_INTERVAL = "4h"  # a breach that persists is mailed again at most this often


def email_alerts(plan: Plan) -> list[tuple[int, dict[str, Any]]]:
    alerts = plan.monitoring.alerts if plan.monitoring is not None else ()
    return [(index, alert) for index, alert in enumerate(alerts) if alert.get("channel") == "email"]


def check(plan: Plan, target: str) -> list[Diagnostic]:
    if plan.platform_settings.get("alertmanager") or plan.monitoring is None:
        return []
    return [
        unsupported(
            plan.monitoring.origin.below("alerts", str(index)),
            target,
            "a Kubeflow cluster sends no email by itself: this email alert would never be sent",
            "name the cluster's Alertmanager in the profile (`kubeflow.alertmanager: {url: http://…:9093}`; the build adds an "
            "AlertmanagerConfig that mails the recipients), or alert through a webhook (`channel: webhook`) for this profile",
        )  # fmt: skip
        for index, _ in email_alerts(plan)
    ]


def route_labels(plan: Plan) -> dict[str, str]:
    """The labels the alert step's alert carries and the route matches on."""
    return {"alertname": BREACH_ALERT_NAME, "mlcompile_system": plan.system}


def alertmanager_config(plan: Plan) -> dict[str, Any] | None:
    from mlcompile.targets.kubeflow.manifests import metadata

    addresses = sorted({address for _, alert in email_alerts(plan) for address in alert.get("to", [])})
    if not addresses or not plan.platform_settings.get("alertmanager"):
        return None
    receiver = f"{plan.system}-email"
    return {
        "apiVersion": "monitoring.coreos.com/v1alpha1",
        "kind": "AlertmanagerConfig",
        "metadata": metadata(plan, f"{plan.system}-alerts"),
        "spec": {
            "route": {
                "receiver": receiver,
                "groupBy": ["alertname", "mlcompile_system"],
                "repeatInterval": REPEAT_INTERVAL,
                "matchers": [{"name": name, "value": value, "matchType": "="} for name, value in route_labels(plan).items()],
            },
            "receivers": [{"name": receiver, "emailConfigs": [{"to": address, "sendResolved": False} for address in addresses]}],
        },
    }
