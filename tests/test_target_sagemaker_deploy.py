"""`mlcompile deploy` on SageMaker, against a moto server on 127.0.0.1 started by the test
(never the internet): the first deploy creates the step configs, model package group,
pipelines, schedules, alarm and rules; a second deploy of the same spec changes nothing.

moto accepts any pipeline definition (it validates nothing of it): the definitions' shapes are
checked in test_target_sagemaker_shapes.py."""

from __future__ import annotations

import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from cli_support import mlcompile
from requires import require

require("sagemaker", "moto")
boto3 = pytest.importorskip("boto3")

ROOT = Path(__file__).resolve().parents[1]
REGION = "eu-west-1"
BUCKET = "acme-ml-artifacts-eu-west-1"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def moto_endpoint() -> Iterator[str]:
    if shutil.which("moto_server") is None:
        pytest.skip("moto_server is not installed (pip install 'moto[s3,events]' flask flask-cors)")
    port = _free_port()
    server = [sys.executable, str(Path(__file__).parent / "stand_ins" / "moto_aws.py")]  # moto_server, answering like AWS where it does not
    process = subprocess.Popen([*server, "-H", "127.0.0.1", "-p", str(port)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(100):
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                time.sleep(0.1)
        else:
            pytest.fail("moto server did not start")
        yield url
    finally:
        process.terminate()
        process.wait(timeout=10)


@pytest.fixture
def aws(moto_endpoint: str, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    env = {
        "AWS_ENDPOINT_URL": moto_endpoint,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": REGION,
        "AWS_EC2_METADATA_DISABLED": "true",
    }
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    requests_reset = boto3.session.Session().client("s3", region_name=REGION, endpoint_url=moto_endpoint)
    import urllib.request

    urllib.request.urlopen(urllib.request.Request(f"{moto_endpoint}/moto-api/reset", method="POST")).read()
    requests_reset.create_bucket(Bucket=BUCKET, CreateBucketConfiguration={"LocationConstraint": REGION})  # the profile's bucket exists
    return env


def deploy(example: str, *options: str) -> list[str]:
    done = mlcompile(["deploy", f"examples/{example}/mlcompile.yaml", "--target", "targets/aws-prod.yaml", "--yes", "--git-commit", "none", *options])
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout.splitlines()


def client(service: str) -> object:
    return boto3.session.Session().client(service, region_name=REGION)


def test_deploy_creates_everything_then_changes_nothing(aws: dict[str, str]) -> None:
    first = deploy("churn")
    assert "create pipeline churn-prediction-training" in first
    assert "create pipeline churn-prediction-deploy" in first
    assert "create model package group churn-classifier" in first
    assert "create schedule churn-prediction-retraining: cron(0 2 ? * MON *)" in first
    assert "create alarm churn-prediction-monitoring-breach" in first
    assert not [line for line in first if "retrain-on-breach" in line]  # the monitoring step starts training
    # the new-labels rule fires only if the data lake's bucket sends its events to EventBridge
    assert any(
        line.startswith("create rule churn-prediction-retrain-on-new-data: could not read the event settings of bucket acme-growth-lake-eu") for line in first
    )
    assert any(line.startswith("create step config s3://acme-ml-artifacts-eu-west-1/mlcompile/churn-prediction/configs/") for line in first)
    # email alerts: an SNS topic with one subscription per recipient, notified by an alarm
    assert "create topic churn-prediction-alerts" in first
    assert (
        "create subscription growth-ml@acme.example to churn-prediction-alerts: growth-ml@acme.example must confirm the email SNS sends before alerts reach it"
        in first
    )
    assert "create alarm churn-prediction-monitoring-alert" in first
    topic = "arn:aws:sns:eu-west-1:123456789012:churn-prediction-alerts"
    subscribed = client("sns").list_subscriptions_by_topic(TopicArn=topic)["Subscriptions"]  # type: ignore[attr-defined]
    assert sorted(s["Endpoint"] for s in subscribed) == ["growth-ml@acme.example", "retention-analytics@acme.example"]
    (alarm,) = client("cloudwatch").describe_alarms(AlarmNames=["churn-prediction-monitoring-alert"])["MetricAlarms"]  # type: ignore[attr-defined]
    assert alarm["AlarmActions"] == [topic]

    second = deploy("churn")
    assert len(second) == len(first)
    assert [line for line in second if not line.startswith("unchanged ")] == []


def test_a_bucket_not_sending_events_to_eventbridge_is_pointed_out(aws: dict[str, str]) -> None:
    """(moto does not keep EventBridgeConfiguration, so the "on" case is not testable here.)"""
    client("s3").create_bucket(Bucket="acme-growth-lake-eu", CreateBucketConfiguration={"LocationConstraint": REGION})  # type: ignore[attr-defined]
    lines = deploy("churn")
    assert (
        "create rule churn-prediction-retrain-on-new-data: bucket acme-growth-lake-eu does not send events to EventBridge yet: turn on 'Amazon EventBridge' in its event notifications"
        in lines
    )


def test_a_changed_spec_updates_only_what_changed(aws: dict[str, str], tmp_path: Path) -> None:
    deploy("batch-scoring")
    spec = ROOT / "examples/batch-scoring/mlcompile.yaml"
    changed = tmp_path / "examples/batch-scoring"
    changed.mkdir(parents=True)
    (changed / "mlcompile.yaml").write_text(spec.read_text().replace('schedule: "0 3 * * 0"', 'schedule: "0 4 * * 0"'))
    done = mlcompile(["deploy", str(changed / "mlcompile.yaml"), "--target", str(ROOT / "targets/aws-prod.yaml"), "--yes", "--git-commit", "none"])
    assert done.returncode == 0, done.stderr
    changes = [line for line in done.stdout.splitlines() if not line.startswith("unchanged ")]
    # the spec's sha256 changes, so do the lineage tags and the step configs that carry it;
    # the retraining schedule moves to 04:00 Berlin time
    assert "update schedule invoice-late-payment-retraining: cron(0 4 ? * SUN *)" in changes
    assert "update schedule invoice-late-payment-batch-scoring: cron(0 6 ? * MON-FRI *)" not in changes


def test_dry_run_changes_nothing(aws: dict[str, str]) -> None:
    planned = deploy("churn", "--dry-run")
    assert "would create pipeline churn-prediction-training" in planned
    sagemaker = client("sagemaker")
    assert sagemaker.list_pipelines()["PipelineSummaries"] == []  # type: ignore[attr-defined]


def test_a_platform_refusal_is_a_deploy_failure(aws: dict[str, str]) -> None:
    """Without the profile's bucket the step configs cannot be uploaded: exit 1, AWS's message."""
    boto3.session.Session().client("s3", region_name=REGION).delete_bucket(Bucket=BUCKET)
    done = mlcompile(["deploy", "examples/batch-scoring/mlcompile.yaml", "--target", "targets/aws-prod.yaml", "--yes", "--git-commit", "none"])
    assert done.returncode == 1
    assert "deploy failed:" in done.stderr and "NoSuchBucket" in done.stderr
