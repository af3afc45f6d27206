"""E-mail alerts on Azure ML, for every monitoring signal: the monitoring pipeline's alert step
publishes the custom metric mlcompile/monitoring_breach for the workspace to Azure Monitor; the
build's metric alert on that metric notifies an action group holding the spec's e-mail
recipients; `mlcompile deploy` creates both through Resource Manager. (The model monitor's own
alert_notification still e-mails its drift signal.)"""

from __future__ import annotations

import json
import sys
from dataclasses import replace
from pathlib import Path

import pytest
from requires import require

require("azure.ai.ml")

import jsonschema  # noqa: E402
from test_target_azureml import _plan  # noqa: E402
from test_target_azureml_deploy import ROOT, WORKSPACE, _deploy, arm  # noqa: E402,F401 - arm: the ARM stand-in fixture

from mlcompile.runtime import monitoring  # noqa: E402
from mlcompile.runtime.alerts_azureml import ENV_METRICS_URL  # noqa: E402
from mlcompile.targets.azureml.alerts import render_alerts  # noqa: E402
from mlcompile.targets.azureml.check import check  # noqa: E402
from mlcompile.targets.azureml.pipelines import platform_config  # noqa: E402

sys.path.insert(0, str(Path(__file__).parent / "stand_ins"))
from azure_monitor_metrics import MetricsStandIn  # noqa: E402

SCHEMA = json.loads((Path(__file__).parent / "fixtures" / "arm" / "insights-alerts.schema.json").read_text())
RESOURCE_GROUP = WORKSPACE.split("/providers/", 1)[0]


def _bodies(plan) -> dict[str, dict]:  # type: ignore[no-untyped-def]
    return {f.kind: json.loads(f.content) for f in render_alerts(plan)}


def _validate(body: dict, definition: str) -> None:
    jsonschema.validate(body, {**SCHEMA, "$ref": f"#/$defs/{definition}"})


def _alert_step(plan):  # type: ignore[no-untyped-def]
    return next(step for pipeline in plan.pipelines() for step in pipeline.steps if step.kind == "alert")


@pytest.mark.parametrize("example", ["churn", "container-trainer"])
def test_the_email_recipients_are_the_action_group_that_the_breach_alert_notifies(example: str, monkeypatch: pytest.MonkeyPatch) -> None:
    plan = _plan(example, monkeypatch)
    bodies = _bodies(plan)
    group, alert = bodies["azure.monitor_action_group"], bodies["azure.monitor_metric_alert"]
    _validate(group, "actionGroup")
    _validate(alert, "metricAlert")
    recipients = [address for a in plan.monitoring.alerts if a["channel"] == "email" for address in a["to"]]
    assert [r["emailAddress"] for r in group["properties"]["emailReceivers"]] == recipients
    assert alert["properties"]["actions"] == [{"actionGroupId": f"{RESOURCE_GROUP}/providers/Microsoft.Insights/actionGroups/{group['name']}"}]
    assert alert["properties"]["scopes"] == [WORKSPACE]
    # what the alert step publishes is what the alert watches
    criterion = alert["properties"]["criteria"]["allOf"][0]
    assert (criterion["metricNamespace"], criterion["metricName"]) == ("mlcompile", "monitoring_breach")
    assert {d["name"]: d["values"] for d in criterion["dimensions"]} == {"system": [plan.system], "signal": ["*"]}
    assert not any(d.path.startswith("monitoring.alerts") for d in check(plan)), "nothing to warn about: every signal e-mails"


def test_without_email_alerts_there_is_no_action_group_and_the_alert_step_talks_to_no_one_new(monkeypatch: pytest.MonkeyPatch) -> None:
    plan = _plan("churn", monkeypatch)
    webhooks_only = replace(plan, monitoring=replace(plan.monitoring, alerts=tuple(a for a in plan.monitoring.alerts if a["channel"] == "webhook")))
    assert render_alerts(webhooks_only) == []
    assert platform_config(webhooks_only, _alert_step(webhooks_only)) is None


def _decisions(tmp_path: Path, **breached: bool) -> dict[str, str]:
    inputs = {}
    for check_name, breach in breached.items():
        path = tmp_path / f"{check_name}.json"
        path.write_text(json.dumps({"decision": breach, "breach": breach, "check": check_name, "metric": "roc_auc", "value": 0.61, "drifted": []}))
        inputs[check_name] = str(path)
    return inputs


def test_the_alert_step_publishes_the_breached_signal_to_azure_monitor_in_the_workspace_region(
    arm,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],  # type: ignore[no-untyped-def]
) -> None:
    plan = _plan("churn", monkeypatch)
    config = platform_config(plan, _alert_step(plan))
    assert config is not None and config["platform"]["name"] == "azureml"
    monkeypatch.delenv("MLCOMPILE_SECRET_GROWTH_ML_ALERTS_WEBHOOK", raising=False)
    with MetricsStandIn() as ingestion:
        monkeypatch.setenv(ENV_METRICS_URL, ingestion.url + "/{region}")  # the stand-in serves every region under /<region>
        result = monitoring.alert(config, _decisions(tmp_path, drift=False, performance=True), {})
    assert ingestion.refused == [] and len(ingestion.accepted) == 1
    sent = ingestion.accepted[0]
    assert sent.path == f"/westeurope{WORKSPACE}/metrics"  # the workspace's location, read from Resource Manager
    base = sent.document["data"]["baseData"]
    assert (base["namespace"], base["metric"], base["dimNames"]) == ("mlcompile", "monitoring_breach", ["system", "signal"])
    assert [s["dimValues"] for s in base["series"]] == [["churn-prediction", "performance"]]
    criterion = _bodies(plan)["azure.monitor_metric_alert"]["properties"]["criteria"]["allOf"][0]
    assert all(s["max"] > criterion["threshold"] for s in base["series"]), "the published value fires the alert"
    email = next(c for c in result["channels"] if c["channel"] == "email")
    assert email["status"].startswith("published mlcompile/monitoring_breach (performance)"), email
    assert "churn-prediction-monitoring-breach" in email["status"]


def test_a_failed_publish_is_reported_and_does_not_hide_the_breach(arm, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:  # type: ignore[no-untyped-def]
    plan = _plan("churn", monkeypatch)
    with MetricsStandIn() as ingestion:
        monkeypatch.setattr(ingestion, "problem", lambda path, authorization, document: (403, "AuthorizationFailed: no Monitoring Metrics Publisher"))
        monkeypatch.setenv(ENV_METRICS_URL, ingestion.url)
        result = monitoring.alert(platform_config(plan, _alert_step(plan)), _decisions(tmp_path, performance=True), {})
    email = next(c for c in result["channels"] if c["channel"] == "email")
    assert email["status"].startswith("failed: Azure Monitor") and "HTTP 403" in email["status"], email
    assert "roc_auc = 0.61" in result["message"]


def test_deploy_creates_the_action_group_then_the_metric_alert_and_names_the_publisher_role(arm, monkeypatch: pytest.MonkeyPatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.chdir(ROOT)
    code, output = _deploy("churn", "--yes")
    assert code == 0, output
    lines = output.strip().splitlines()
    group_line = "create action group churn-prediction-alerts"
    alert_line = next(line for line in lines if line.startswith("create metric alert churn-prediction-monitoring-breach"))
    assert lines.index(group_line) < lines.index(alert_line)
    assert "6b1c2d3e-4f50-4a61-8b72-9c83d94ea5f1" in alert_line and "Monitoring Metrics Publisher on the workspace" in alert_line
    group = arm.get(f"{RESOURCE_GROUP}/providers/Microsoft.Insights/actionGroups/churn-prediction-alerts")
    alert = arm.get(f"{RESOURCE_GROUP}/providers/Microsoft.Insights/metricAlerts/churn-prediction-monitoring-breach")
    assert group is not None and alert is not None
    assert [r["emailAddress"] for r in group["properties"]["emailReceivers"]] == ["growth-ml@acme.example", "retention-analytics@acme.example"]
    assert alert["properties"]["actions"][0]["actionGroupId"].lower() == group["id"].lower()
    assert {c.query["api-version"][0] for c in arm.calls_to("PUT", "/Microsoft.Insights/")} == {"2023-01-01", "2018-03-01"}


def test_the_arm_stand_in_refuses_a_metric_alert_whose_action_group_does_not_exist(arm, monkeypatch: pytest.MonkeyPatch) -> None:  # type: ignore[no-untyped-def]
    alert = _bodies(_plan("churn", monkeypatch))["azure.monitor_metric_alert"]
    status, body = arm.handle("PUT", f"{RESOURCE_GROUP}/providers/Microsoft.Insights/metricAlerts/{alert['name']}", {}, alert)
    assert status == 400 and "does not exist" in body["error"]["message"]
