"""Email alerts on Vertex AI: Cloud Monitoring sends them. Vertex AI Pipelines writes each
task's output to Cloud Logging; the monitoring pipeline's alert step logs one line with a
marker on a breach (contract.BREACH_LOG_MARKER), and the build adds

  vertex/alerting/notification-channel-<n>.json   monitoring.notification_channel  one email channel per recipient
  vertex/alerting/alert-policy.json               monitoring.alert_policy          a log-match policy on the marker line

(bodies built with google-cloud-monitoring's own types). `mlcompile deploy` creates the
channels (or finds them by address) and the policy with their names, and updates the policy
when it changed (deploy_alerting)."""

from __future__ import annotations

from typing import Any

from mlcompile.plan.nodes import Plan
from mlcompile.runtime.contract import BREACH_LOG_MARKER

CHANNEL_KIND = "monitoring.notification_channel"
POLICY_KIND = "monitoring.alert_policy"
# at most one mail an hour for a breach logged again (each monitoring run logs its own);
# an incident closes itself a day after the last matching entry
RATE_LIMIT_SECONDS = 3600
AUTO_CLOSE_SECONDS = 86400


def recipients(plan: Plan) -> list[str]:
    monitoring = plan.monitoring
    alerts = monitoring.alerts if monitoring is not None else ()
    return sorted({address for alert in alerts if alert.get("channel") == "email" for address in alert.get("to", [])})


def log_filter(plan: Plan) -> str:
    """The Logging query of the policy: the alert step's marker line of this system, as text
    anywhere in the entry (textPayload, or jsonPayload.message when the line is parsed)."""
    return f'"{BREACH_LOG_MARKER} system={plan.system}:"'


def bodies(plan: Plan) -> list[tuple[str, str, dict[str, Any]]]:
    """(path, kind, REST body) of the channels and the policy; none without email alerts."""
    addresses = recipients(plan)
    if not addresses:
        return []
    from google.cloud import monitoring_v3
    from google.protobuf import duration_pb2

    from mlcompile.targets.vertex.messages import labels, to_json

    policy_type = monitoring_v3.AlertPolicy
    files = []
    for index, address in enumerate(addresses, start=1):
        channel = monitoring_v3.NotificationChannel(
            type_="email", display_name=f"{plan.system} alerts to {address}", labels={"email_address": address}, user_labels=labels(plan)
        )
        files.append((f"vertex/alerting/notification-channel-{index}.json", CHANNEL_KIND, to_json(channel)))
    policy = policy_type(
        display_name=f"{plan.system} monitoring breach",
        documentation=policy_type.Documentation(
            content=f"The monitoring pipeline `{plan.system}-monitoring` found a breach (drift or performance): its alert step logged it. "
            f"Open the pipeline run's check-drift / check-performance outputs for the details.",
            mime_type="text/markdown",
        ),
        conditions=[
            policy_type.Condition(
                display_name="the alert step logged a monitoring breach", condition_matched_log=policy_type.Condition.LogMatch(filter=log_filter(plan))
            )
        ],
        combiner=policy_type.ConditionCombinerType.OR,
        alert_strategy=policy_type.AlertStrategy(
            notification_rate_limit=policy_type.AlertStrategy.NotificationRateLimit(period=duration_pb2.Duration(seconds=RATE_LIMIT_SECONDS)),
            auto_close=duration_pb2.Duration(seconds=AUTO_CLOSE_SECONDS),
        ),
        severity=policy_type.Severity.WARNING,
        user_labels=labels(plan),
    )
    files.append(("vertex/alerting/alert-policy.json", POLICY_KIND, to_json(policy)))
    return files
