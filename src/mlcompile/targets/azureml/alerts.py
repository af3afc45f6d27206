"""E-mail alerts for every monitoring signal: an Azure Monitor action group holding the spec's
e-mail recipients, and a metric alert on the custom metric the monitoring pipeline's alert
step publishes for the workspace (mlcompile.runtime.alerts_azureml) with that group as its
action. Azure ML gives a pipeline step no e-mail channel; the model monitor's own
`alert_notification` e-mails its drift signal only.

ARM resource bodies (`type`, `apiVersion`, `name`, `location`, `tags`, `properties`), PUT by
`mlcompile deploy` (targets.azureml.deploy) at the resource group's `providers/<type>/<name>`."""

from __future__ import annotations

import re
from typing import Any

from mlcompile.plan.nodes import Plan
from mlcompile.runtime.alerts_azureml import DIMENSIONS, METRIC_NAME, METRIC_NAMESPACE, workspace_id
from mlcompile.targets.azureml._sdk import tags
from mlcompile.targets.base import OutputFile, json_bytes

ACTION_GROUP_API_VERSION = "2023-01-01"
METRIC_ALERT_API_VERSION = "2018-03-01"
ACTION_GROUP_KIND = "azure.monitor_action_group"
METRIC_ALERT_KIND = "azure.monitor_metric_alert"
# Microsoft.Insights/actionGroups: groupShortName is at most 12 characters (the SMS/e-mail sender)
SHORT_NAME_LENGTH = 12
# the alert step publishes once per run; a scheduled run fits in the window
EVALUATION_FREQUENCY, WINDOW_SIZE = "PT5M", "PT15M"
SEVERITY_WARNING = 2
PUBLISHER_ROLE = "Monitoring Metrics Publisher"


def emails(plan: Plan) -> list[str]:
    """The spec's e-mail recipients, in order, each once."""
    if plan.monitoring is None:
        return []
    found: list[str] = []
    for alert in plan.monitoring.alerts:
        if alert.get("channel") == "email":
            found += [address for address in alert.get("to") or [] if address not in found]
    return found


def action_group_name(plan: Plan) -> str:
    return f"{plan.system}-alerts"


def metric_alert_name(plan: Plan) -> str:
    return f"{plan.system}-monitoring-breach"


def _resource_group_id(plan: Plan) -> str:
    settings = plan.platform_settings
    return f"/subscriptions/{settings['subscription_id']}/resourceGroups/{settings['resource_group']}"


def action_group_id(plan: Plan) -> str:
    return f"{_resource_group_id(plan)}/providers/Microsoft.Insights/actionGroups/{action_group_name(plan)}"


def action_group(plan: Plan) -> dict[str, Any]:
    receivers = [{"name": _receiver_name(i, address), "emailAddress": address, "useCommonAlertSchema": True} for i, address in enumerate(emails(plan))]
    return {
        "type": "Microsoft.Insights/actionGroups",
        "apiVersion": ACTION_GROUP_API_VERSION,
        "name": action_group_name(plan),
        "location": "Global",
        "tags": tags(plan),
        "properties": {"groupShortName": _short_name(plan.system), "enabled": True, "emailReceivers": receivers},
    }


def metric_alert(plan: Plan) -> dict[str, Any]:
    """Fires while any signal of this system breached in the window; one alert per signal
    (the `signal` dimension, all values), resolved when no breach was published since."""
    platform = plan.platform_settings
    criterion = {
        "criterionType": "StaticThresholdCriterion",
        "name": "breach",
        "metricNamespace": METRIC_NAMESPACE,
        "metricName": METRIC_NAME,
        "dimensions": [
            {"name": DIMENSIONS[0], "operator": "Include", "values": [plan.system]},
            {"name": DIMENSIONS[1], "operator": "Include", "values": ["*"]},
        ],
        "operator": "GreaterThan",
        "threshold": 0,
        "timeAggregation": "Maximum",
        # a custom metric exists in Azure Monitor only once published: the first breach
        "skipMetricValidation": True,
    }
    return {
        "type": "Microsoft.Insights/metricAlerts",
        "apiVersion": METRIC_ALERT_API_VERSION,
        "name": metric_alert_name(plan),
        "location": "global",
        "tags": tags(plan),
        "properties": {
            "description": f"{plan.system}: a monitoring check breached (the monitoring pipeline's alert step publishes {METRIC_NAMESPACE}/{METRIC_NAME})",
            "severity": SEVERITY_WARNING,
            "enabled": True,
            "scopes": [workspace_id({**platform})],
            "evaluationFrequency": EVALUATION_FREQUENCY,
            "windowSize": WINDOW_SIZE,
            "criteria": {"odata.type": "Microsoft.Azure.Monitor.SingleResourceMultipleMetricCriteria", "allOf": [criterion]},
            "autoMitigate": True,
            "actions": [{"actionGroupId": action_group_id(plan)}],
        },
    }


def _short_name(system: str) -> str:
    return re.sub(r"[^A-Za-z0-9]", "", system)[:SHORT_NAME_LENGTH] or "mlcompile"


def _receiver_name(index: int, address: str) -> str:
    return f"email-{index + 1}-{address.split('@', 1)[0]}"[:128]


def render_alerts(plan: Plan) -> list[OutputFile]:
    if not emails(plan):
        return []
    return [
        OutputFile(f"alerts/{action_group_name(plan)}.json", ACTION_GROUP_KIND, json_bytes(action_group(plan))),
        OutputFile(f"alerts/{metric_alert_name(plan)}.json", METRIC_ALERT_KIND, json_bytes(metric_alert(plan))),
    ]


def alert_platform(plan: Plan) -> dict[str, str]:
    """What the alert step names in its status line (mlcompile.runtime.alerts_azureml)."""
    return {"metric_alert": f"the metric alert {metric_alert_name(plan)}"}
