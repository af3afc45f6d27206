"""E-mail alerts on Azure ML: the recipients get the model monitor's drift alerts (its
alert_notification, the drift signal's alert enabled); a performance check, which the
monitoring pipeline computes, has no e-mail channel there, and the build says so at the
spec's e-mail alert instead of building as if the recipients would hear of a breach."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

pytest.importorskip("azure.ai.ml")

from mlcompile.targets.azureml.check import check  # noqa: E402
from test_target_azureml import _plan  # noqa: E402

BUILD = Path(__file__).parent / "golden"


def _warnings(plan) -> dict[str, str]:  # type: ignore[no-untyped-def]
    return {d.path: d.message for d in check(plan) if d.severity == "warning"}


def test_email_with_a_performance_check_is_a_located_warning_naming_where_the_breach_goes(monkeypatch: pytest.MonkeyPatch) -> None:
    plan = _plan("churn", monkeypatch)  # roc_auc check; an e-mail and a webhook channel
    assert "the webhook channels, not these recipients" in _warnings(plan)["monitoring.alerts[0]"]
    only_email = replace(plan, monitoring=replace(plan.monitoring, alerts=tuple(a for a in plan.monitoring.alerts if a["channel"] == "email")))
    assert "reaches no one" in _warnings(only_email)["monitoring.alerts[0]"]


def test_email_for_drift_alone_reaches_the_recipients_through_the_model_monitor(monkeypatch: pytest.MonkeyPatch) -> None:
    from azure.ai.ml.entities._load_functions import load_schedule  # not re-exported by azure.ai.ml

    plan = _plan("container-trainer", monkeypatch)  # drift only, e-mail
    assert not any(path.startswith("monitoring.alerts") for path in _warnings(plan))
    monitor = load_schedule(BUILD / "container-trainer" / "azure-prod" / "schedules" / "card-fraud-model-monitor.yml")
    assert monitor.create_monitor.alert_notification.emails == ["payments-risk@acme.example"]
    assert all(signal.alert_enabled for signal in monitor.create_monitor.monitoring_signals.values())
