"""`mlcompile deploy` under injected faults, for each cloud target, against its local stand-in
(KFP REST API, Vertex AI REST API, Azure Resource Manager, and a moto server for SageMaker)
behind tests/stand_ins/fault_proxy.py, with the real SDK clients:

* transient faults — 429 with Retry-After, 500, 503, a timeout (no answer within the client's
  read timeout), a dropped connection, and a dropped answer to a request that *was* applied —
  are ridden out: the deploy succeeds and leaves exactly what a fault-free deploy leaves (no
  duplicate from a retried create);
* a fault that persists midway stops the deploy with exit 1 and a summary that lists, one by
  one, what was applied and what was not — checked against the stand-in's own state;
* deploying again once the fault is gone applies the rest and reports the rest unchanged.

Retries are quick here (MLCOMPILE_DEPLOY_BACKOFF/MAX_BACKOFF) and clients time out after
MLCOMPILE_DEPLOY_TIMEOUT=1 s; the proxy checks that each client gave up on a `timeout` fault
before the proxy's own delay ran out (so the deploy sets a read timeout)."""

from __future__ import annotations

import json
import re
import shutil
import socket
import subprocess
import sys
import urllib.request
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner

from mlcompile.cli import main

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tests" / "stand_ins"))
from fault_proxy import FaultProxy, wait_for_port  # noqa: E402

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning", "ignore::PendingDeprecationWarning", "ignore::FutureWarning")

DELAY = 4.0  # seconds a `timeout` fault holds the request: well past the clients' 1 s timeout
FIGURES: Counter[str] = Counter()  # faults injected per kind, deploys recovered, failures summarised


@pytest.fixture(scope="module", autouse=True)
def figures(request: pytest.FixtureRequest) -> Iterator[None]:
    yield
    reporter = request.config.pluginmanager.get_plugin("terminalreporter")
    faults = ", ".join(f"{kind} {FIGURES[kind]}" for kind in ("429", "500", "503", "timeout", "drop", "drop-after"))
    line = (
        f"deploy faults: {sum(FIGURES[k] for k in ('429', '500', '503', 'timeout', 'drop', 'drop-after'))} injected ({faults}); "
        f"{FIGURES['recovered']} deploys recovered, {FIGURES['summarised']} persistent failures summarised, {FIGURES['completed']} completed by a rerun"
    )
    capture = request.config.pluginmanager.get_plugin("capturemanager")
    if reporter is not None and capture is not None:
        with capture.global_and_fixture_disabled():
            reporter.write_line("\n" + line)


@pytest.fixture(autouse=True)
def quick_retries(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MLCOMPILE_DEPLOY_BACKOFF", "0.01")
    monkeypatch.setenv("MLCOMPILE_DEPLOY_MAX_BACKOFF", "0.05")
    monkeypatch.setenv("MLCOMPILE_DEPLOY_TIMEOUT", "1")
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    monkeypatch.chdir(ROOT)


@dataclass
class Platform:
    """One target's stand-in behind a fault proxy: how to deploy to it, and what it holds."""

    proxy: FaultProxy
    args: list[str]
    labels: Callable[[], set[str]]  # resources present, named as deploy's summary names them
    state: Callable[[], Any]  # everything deploy left, comparable across stand-ins


@dataclass
class Outcome:
    code: int
    stdout: str
    stderr: str

    def summary(self) -> tuple[list[tuple[str, str]], list[str]]:
        """(action, resource) applied and resources not applied, from the failure summary."""
        applied_text, _, rest = self.stderr.partition("applied before the failure:")[2].partition("not applied:")
        applied = []
        for line in applied_text.splitlines():
            if line.startswith("  "):
                action, _, resource = line.strip().partition(" ")
                applied.append((action, resource.split(": ")[0]))
        not_applied = [line.strip() for line in rest.split("deploy again")[0].splitlines() if line.startswith("  ")]
        return applied, not_applied


def deploy(platform: Platform) -> Outcome:
    result = CliRunner().invoke(main, ["deploy", *platform.args, "--yes", "--git-commit", "none"])
    return Outcome(result.exit_code, result.stdout, result.stderr)


# ---------------------------------------------------------------------------- kubeflow


@contextmanager
def kubeflow(tmp_path: Path) -> Iterator[Platform]:
    pytest.importorskip("kfp")
    from kfp_api import KfpStandIn

    with KfpStandIn() as api, FaultProxy(api.url, delay=DELAY) as proxy:
        shutil.copytree(ROOT / "targets", tmp_path / "targets")  # the spec's overrides name every profile
        profile = yaml.safe_load((ROOT / "targets/kfp-gke.yaml").read_text())
        profile["kubeflow"]["host"] = proxy.url
        (tmp_path / "targets/kfp-gke.yaml").write_text(yaml.safe_dump(profile, sort_keys=False))

        def pipeline_of(version_id: str) -> str:
            return api.pipelines[api.versions[version_id]["pipeline_id"]]["display_name"]

        def labels() -> set[str]:
            found = {f"pipeline {pipeline_of(v)}" for v, version in api.versions.items() if version["display_name"] != pipeline_of(v)}
            found |= {f"experiment {e['display_name']}" for e in api.experiments.values()}
            return found | {f"recurring run {r['display_name']}" for r in api.recurring_runs.values()}

        def unhashed(version_id: str) -> str:
            # a version is named after its file's sha256, which carries the profile's host (this proxy)
            return re.sub(r"-[0-9a-f]{12}$", "-<sha256>", api.versions[version_id]["display_name"])

        def state() -> Any:
            return (
                sorted(p["display_name"] for p in api.pipelines.values()),
                sorted((pipeline_of(v), unhashed(v)) for v in api.versions),
                sorted(e["display_name"] for e in api.experiments.values()),
                sorted(
                    (r["display_name"], r["trigger"]["cron_schedule"]["cron"], unhashed(r["pipeline_version_reference"]["pipeline_version_id"]))
                    for r in api.recurring_runs.values()
                ),  # fmt: skip
            )

        yield Platform(proxy, ["examples/churn/mlcompile.yaml", "-t", str(tmp_path / "targets/kfp-gke.yaml")], labels, state)


KUBEFLOW_TRANSIENT = [
    ("429", {"method": "GET", "path": r"/pipelines$"}),
    ("drop-after", {"method": "POST", "path": r"/pipelines/upload$"}),
    ("timeout", {"method": "GET", "path": r"/versions$"}),
    ("500", {"method": "POST", "path": r"/upload_version$"}),
    ("drop-after", {"method": "POST", "path": r"/upload_version$", "skip": 2}),
    ("503", {"method": "POST", "path": r"/experiments$"}),
    ("drop-after", {"method": "POST", "path": r"/experiments$"}),
    ("drop", {"method": "GET", "path": r"/recurringruns$"}),
    ("drop-after", {"method": "POST", "path": r"/recurringruns$", "skip": 1}),
]
KUBEFLOW_PERSISTENT = ("503", {"method": "POST", "path": r"/recurringruns$"})


# ---------------------------------------------------------------------------- vertex


@contextmanager
def vertex(tmp_path: Path) -> Iterator[Platform]:
    pytest.importorskip("google.cloud.aiplatform")
    from vertex_api import VertexStandIn

    with VertexStandIn() as api, FaultProxy(api.url, delay=DELAY) as proxy, pytest.MonkeyPatch.context() as env:
        env.setenv("MLCOMPILE_VERTEX_API_ENDPOINT", proxy.url)

        def labels() -> set[str]:
            found = {f"schedule {s['displayName']}" for s in api.schedules.values()}
            return found | {f"pipeline job {j}" for j in api.pipeline_jobs} | {f"endpoint {e}" for e in api.endpoints}

        def state() -> Any:
            return sorted((s["displayName"], s["cron"]) for s in api.schedules.values()), sorted(api.pipeline_jobs), sorted(api.endpoints)

        yield Platform(proxy, ["examples/churn/mlcompile.yaml", "-t", "targets/gcp-prod.yaml"], labels, state)


VERTEX_TRANSIENT = [
    ("429", {"method": "GET", "path": r"/schedules$"}),
    ("timeout", {"method": "GET", "path": r"/schedules$"}),
    ("drop-after", {"method": "POST", "path": r"/schedules$"}),
    ("drop", {"method": "GET", "path": r"/pipelineJobs/"}),
    ("500", {"method": "POST", "path": r"/pipelineJobs$"}),
    ("drop-after", {"method": "POST", "path": r"/pipelineJobs$"}),
    ("503", {"method": "GET", "path": r"/endpoints/"}),
    ("drop-after", {"method": "POST", "path": r"/endpoints$"}),
]
VERTEX_PERSISTENT = ("503", {"method": "POST", "path": r"/pipelineJobs$"})


# ---------------------------------------------------------------------------- sagemaker

REGION, BUCKET = "eu-west-1", "acme-ml-artifacts-eu-west-1"


@pytest.fixture(scope="module")
def moto_url() -> Iterator[str]:
    server = shutil.which("moto_server")
    if server is None or pytest.importorskip("boto3") is None:
        pytest.skip("moto_server is not installed (pip install 'moto[s3,events]' flask flask-cors)")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    process = subprocess.Popen([server, "-H", "127.0.0.1", "-p", str(port)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_for_port(port)
        yield f"http://127.0.0.1:{port}"
    finally:
        process.terminate()
        process.wait(timeout=10)


@contextmanager
def sagemaker(moto_url: str) -> Iterator[Platform]:
    pytest.importorskip("sagemaker")
    import boto3

    urllib.request.urlopen(urllib.request.Request(f"{moto_url}/moto-api/reset", method="POST")).read()
    session = boto3.session.Session(aws_access_key_id="testing", aws_secret_access_key="testing", region_name=REGION)

    def client(service: str) -> Any:
        return session.client(service, endpoint_url=moto_url)  # the stand-in itself, not through the proxy

    client("s3").create_bucket(Bucket=BUCKET, CreateBucketConfiguration={"LocationConstraint": REGION})
    with FaultProxy(moto_url, delay=DELAY) as proxy, pytest.MonkeyPatch.context() as env:
        for key, value in {"AWS_ENDPOINT_URL": proxy.url, "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
                           "AWS_DEFAULT_REGION": REGION, "AWS_EC2_METADATA_DISABLED": "true"}.items():  # fmt: skip
            env.setenv(key, value)

        def labels() -> set[str]:
            found = {f"step config s3://{BUCKET}/{o['Key']}" for o in client("s3").list_objects_v2(Bucket=BUCKET).get("Contents", [])}
            found |= {
                f"model package group {g['ModelPackageGroupName']}" for g in client("sagemaker").list_model_package_groups()["ModelPackageGroupSummaryList"]
            }
            found |= {f"pipeline {p['PipelineName']}" for p in client("sagemaker").list_pipelines()["PipelineSummaries"]}
            for body in sorted((ROOT / "tests/golden/churn/aws-prod/feature-store").glob("*.json")):  # moto cannot list them
                name = json.loads(body.read_text())["FeatureGroupName"]
                try:
                    client("sagemaker").describe_feature_group(FeatureGroupName=name)
                    found.add(f"feature group {name}")
                except client("sagemaker").exceptions.ResourceNotFound:
                    pass
            found |= {f"schedule group {g['Name']}" for g in client("scheduler").list_schedule_groups()["ScheduleGroups"] if g["Name"] != "default"}
            found |= {f"schedule {s['Name']}" for s in client("scheduler").list_schedules()["Schedules"]}
            found |= {f"alarm {a['AlarmName']}" for a in client("cloudwatch").describe_alarms()["MetricAlarms"]}
            for rule in client("events").list_rules()["Rules"]:
                found.add(f"rule {rule['Name']}")
                if client("events").list_targets_by_rule(Rule=rule["Name"])["Targets"]:
                    found.add(f"rule {rule['Name']} targets")
            return found

        def state() -> Any:
            definitions = {p["PipelineName"]: client("sagemaker").describe_pipeline(PipelineName=p["PipelineName"])["PipelineDefinition"]
                           for p in client("sagemaker").list_pipelines()["PipelineSummaries"]}  # fmt: skip
            return sorted(labels()), definitions

        yield Platform(proxy, ["examples/churn/mlcompile.yaml", "-t", "targets/aws-prod.yaml"], labels, state)


SAGEMAKER_TRANSIENT = [
    ("429", {"method": "PUT", "path": r"/configs/"}),
    ("timeout", {"method": "HEAD", "path": r"/configs/", "skip": 2}),
    ("500", {"operation": "CreateModelPackageGroup"}),
    ("drop-after", {"operation": "CreatePipeline"}),
    ("drop", {"operation": "DescribePipeline", "skip": 1}),
    ("drop-after", {"method": "POST", "path": r"^/schedules/"}),
    ("503", {"operation": "PutMetricAlarm"}),
    ("drop-after", {"operation": "PutRule"}),
]
SAGEMAKER_PERSISTENT = ("503", {"method": "POST", "path": r"^/schedules/"})


# ---------------------------------------------------------------------------- azureml

SUBSCRIPTION = "3f2b8c1e-7a4d-4e9b-9c21-5d8e6f0a1b2c"  # targets/azure-prod.yaml
WORKSPACE = f"/subscriptions/{SUBSCRIPTION}/resourceGroups/rg-ml-prod-weu/providers/Microsoft.MachineLearningServices/workspaces/mlw-acme-prod-weu"


@contextmanager
def azureml(tmp_path: Path) -> Iterator[Platform]:
    pytest.importorskip("azure.ai.ml")
    from azure_arm import ArmStandIn, serve, tls_certificate

    store = ArmStandIn()
    store.seed(WORKSPACE, {"location": "westeurope", "properties": {"workspaceId": "00000000-0000-0000-0000-000000000001", "discoveryUrl": ""}})
    store.seed(f"{WORKSPACE}/models/churn-classifier", {"properties": {"latestVersion": "3"}})
    store.seed(f"{WORKSPACE}/models/churn-classifier/versions/3", {"properties": {"modelType": "custom_model", "modelUri": "azureml://x", "flavors": {}}})
    store.seed(f"{WORKSPACE}/data/churn-prediction-training-data", {"properties": {"dataType": "uri_folder", "latestVersion": "1"}})
    store.seed(
        f"{WORKSPACE}/data/churn-prediction-training-data/versions/1", {"properties": {"dataType": "uri_folder", "dataUri": "azureml://datastores/x/paths/x/"}}
    )
    seeded = set(store.resources)
    certificate = tls_certificate(tmp_path)
    server, url = serve(store)  # plain HTTP behind the proxy, which speaks HTTPS to the SDK
    try:
        with FaultProxy(url, certificate=certificate, delay=DELAY) as proxy, pytest.MonkeyPatch.context() as env:
            env.setenv("MLCOMPILE_AZUREML_ARM_ENDPOINT", proxy.url + "/")
            env.setenv("MLCOMPILE_AZUREML_CA_BUNDLE", str(certificate[0]))
            env.setenv("MLCOMPILE_AZUREML_ACCESS_TOKEN", "stand-in-token")
            # the SDK sets AZUREML_CURRENT_CLOUD to the stand-in's cloud: set (then unset) it here
            # so that the monkeypatch restores the variable afterwards
            env.setenv("AZUREML_CURRENT_CLOUD", "")
            env.delenv("AZUREML_CURRENT_CLOUD")
            prefix = WORKSPACE.lower() + "/"

            def labels() -> set[str]:
                found = set()
                for key, resource in store.resources.items():
                    if key in seeded or not ((resource.get("tags") or resource.get("properties", {}).get("tags") or {}).get("mlcompile-file-sha256")
                                             or "/autoscalesettings/" in key):  # fmt: skip
                        continue
                    parts = key.removeprefix(prefix).split("/")
                    if "/featurestoreentities/" in key:  # in the feature store's own workspace
                        workspace, _, entity = key.rsplit("/workspaces/", 1)[1].partition("/featurestoreentities/")
                        name, _, version = entity.partition("/versions/")
                        if version:
                            found.add(f"feature store entity {workspace}/{name}:{version}")
                    elif parts[0] == "onlineendpoints":
                        found.add(f"online endpoint {parts[1]}" if len(parts) == 2 else f"online deployment {parts[1]}/{parts[3]}")
                    elif parts[0] == "batchendpoints":
                        found.add(f"batch endpoint {parts[1]}" if len(parts) == 2 else f"batch deployment {parts[1]}/{parts[3]}")
                    elif parts[0] == "schedules":
                        found.add(f"schedule {parts[1]}")
                    elif parts[0] == "data" and len(parts) == 4:
                        found.add(f"data asset {parts[1]}")
                    elif "/autoscalesettings/" in key:
                        found.add(f"autoscale setting {key.rsplit('/', 1)[1]}")
                return found

            def state() -> Any:
                def tag(resource: dict[str, Any]) -> Any:
                    return (resource.get("tags") or resource.get("properties", {}).get("tags") or {}).get("mlcompile-file-sha256")

                return sorted((key, tag(resource), json.dumps(resource.get("properties", {}).get("traffic"))) for key, resource in store.resources.items())

            yield Platform(proxy, ["examples/churn/mlcompile.yaml", "-t", "targets/azure-prod.yaml"], labels, state)
    finally:
        server.shutdown()
        server.server_close()


AZUREML_TRANSIENT = [
    # (a new workspace: the online deployments and their autoscale settings wait for the
    # first rollout, so deploy sends neither)
    ("429", {"method": "GET", "path": r"/onlineEndpoints/churn-scorer$"}),
    ("drop-after", {"method": "PUT", "path": r"/onlineEndpoints/churn-scorer$"}),
    ("timeout", {"method": "GET", "path": r"/batchEndpoints/churn-prediction-batch$"}),
    ("500", {"method": "PUT", "path": r"/batchEndpoints/churn-prediction-batch/deployments/default$"}),
    ("drop", {"method": "GET", "path": r"/schedules/"}),
    ("drop-after", {"method": "PUT", "path": r"/schedules/"}),
    ("503", {"method": "PUT", "path": r"/featurestoreEntities/"}),
]
AZUREML_PERSISTENT = ("503", {"method": "PUT", "path": r"/schedules/"})


# ---------------------------------------------------------------------------- the tests

TARGETS = {
    "kubeflow": (KUBEFLOW_TRANSIENT, KUBEFLOW_PERSISTENT),
    "vertex": (VERTEX_TRANSIENT, VERTEX_PERSISTENT),
    "sagemaker": (SAGEMAKER_TRANSIENT, SAGEMAKER_PERSISTENT),
    "azureml": (AZUREML_TRANSIENT, AZUREML_PERSISTENT),
}
_reference: dict[str, Any] = {}


@pytest.fixture
def platform_of(tmp_path: Path, request: pytest.FixtureRequest) -> Callable[[str], Any]:
    def open_platform(target: str) -> Any:
        if target == "sagemaker":
            return sagemaker(request.getfixturevalue("moto_url"))
        folder = tmp_path / f"{target}-{len(list(tmp_path.iterdir()))}"
        folder.mkdir()
        return {"kubeflow": kubeflow, "vertex": vertex, "azureml": azureml}[target](folder)

    return open_platform


def reference_state(target: str, platform_of: Callable[[str], Any]) -> Any:
    """What a fault-free deploy to a fresh stand-in leaves (once per target)."""
    if target not in _reference:
        with platform_of(target) as platform:
            done = deploy(platform)
            assert done.code == 0, done.stderr
            _reference[target] = (platform.state(), sorted(platform.labels()))
    return _reference[target]


@pytest.mark.parametrize("target", list(TARGETS))
def test_transient_faults_are_ridden_out_and_leave_what_a_fault_free_deploy_leaves(target: str, platform_of: Callable[[str], Any]) -> None:
    state, labels = reference_state(target, platform_of)
    with platform_of(target) as platform:
        for kind, where in TARGETS[target][0]:
            platform.proxy.inject(kind, **where)
        done = deploy(platform)
        assert done.code == 0, done.stderr
        assert "Traceback" not in done.stderr
        injected = platform.proxy.injected
        assert sum(injected.values()) == len(TARGETS[target][0]), f"every scripted fault was injected: {injected}"
        assert platform.proxy.timed_out == injected["timeout"], "the client gave up on the silent request (it has a read timeout)"
        assert platform.state() == state, "same resources as a fault-free deploy: none missing, none twice"
        assert sorted(platform.labels()) == labels
        FIGURES.update(injected)
        FIGURES["recovered"] += 1


@pytest.mark.parametrize("target", list(TARGETS))
def test_a_persistent_fault_midway_is_summarised_exactly_and_a_rerun_completes(target: str, platform_of: Callable[[str], Any]) -> None:
    state, _ = reference_state(target, platform_of)
    with platform_of(target) as platform:
        kind, where = TARGETS[target][1]
        platform.proxy.inject(kind, times=None, **where)
        failed = deploy(platform)
        assert failed.code == 1, failed.stdout + failed.stderr
        assert "deploy failed:" in failed.stderr and "Traceback" not in failed.stderr
        applied, not_applied = failed.summary()
        assert applied and not_applied, failed.stderr
        # the summary against the stand-in's own state: what it says was applied is there,
        # what it says was not is not
        present = platform.labels()
        assert [resource for action, resource in applied if action in ("create", "update", "unchanged") and resource not in present] == []
        assert [resource for resource in not_applied if resource in present] == []
        FIGURES[kind] += platform.proxy.injected[kind]
        FIGURES["summarised"] += 1

        platform.proxy.clear()
        again = deploy(platform)
        assert again.code == 0, again.stderr
        lines = again.stdout.splitlines()
        for action, resource in applied:
            expected = "deferred" if action == "deferred" else "unchanged"  # deferred: left to the user both times
            assert any(line == f"{expected} {resource}" or line.startswith(f"{expected} {resource}: ") for line in lines), (resource, again.stdout)
        for resource in not_applied:
            # or deferred with its reason (on Azure ML: what serves a model version waits for the first rollout)
            assert any(line == f"create {resource}" or line.startswith((f"create {resource}: ", f"deferred {resource}: ")) for line in lines), (
                resource,
                again.stdout,
            )
        assert platform.state() == state
        FIGURES["completed"] += 1


# ---------------------------------------------------------------------------- the retry rules


class _Answer(Exception):
    def __init__(self, status: int, headers: dict[str, str] | None = None):
        super().__init__(f"HTTP {status}")
        self.status = status
        self.headers = headers or {}


def test_retry_after_is_honoured_up_to_the_cap() -> None:
    from mlcompile.runtime.retries import RetrySettings, backoff

    settings = RetrySettings(attempts=5, first_delay=0.01, max_delay=8.0)
    assert backoff(1, _Answer(429, {"Retry-After": "3"}), settings) == 3.0
    assert backoff(1, _Answer(429, {"Retry-After": "60"}), settings) == 8.0
    assert backoff(1, _Answer(503), settings) <= 0.01


def test_a_create_whose_answer_was_lost_is_found_not_sent_again() -> None:
    from mlcompile.runtime.retries import create_once

    sent: list[str] = []
    created: list[str] = []

    def create() -> str:
        sent.append("POST")
        created.append("pipeline")  # applied by the platform…
        raise ConnectionResetError("…and the answer lost")

    assert create_once(create, lambda: created[0] if created else None, sleep=lambda _: None) == "pipeline"
    assert sent == ["POST"] and created == ["pipeline"]


def test_a_create_refused_outright_is_not_retried() -> None:
    from mlcompile.runtime.retries import create_once

    sent: list[str] = []

    def create() -> None:
        sent.append("POST")
        raise _Answer(400)

    with pytest.raises(_Answer):
        create_once(create, lambda: None, sleep=lambda _: None)
    assert sent == ["POST"]


def test_what_the_sdks_raise_for_a_lost_connection_or_throttling_is_transient() -> None:
    from mlcompile.runtime.retries import is_transient

    botocore = pytest.importorskip("botocore.exceptions")
    requests = pytest.importorskip("requests")
    azure = pytest.importorskip("azure.core.exceptions")
    throttled = botocore.ClientError({"Error": {"Code": "ThrottlingException"}, "ResponseMetadata": {"HTTPStatusCode": 400}}, "CreatePipeline")
    refused = botocore.ClientError({"Error": {"Code": "ValidationException"}, "ResponseMetadata": {"HTTPStatusCode": 400}}, "CreatePipeline")
    assert is_transient(throttled) and not is_transient(refused)
    assert is_transient(botocore.ConnectionClosedError(endpoint_url="http://x"))
    assert is_transient(requests.exceptions.ConnectionError("reset")) and is_transient(requests.exceptions.ReadTimeout("slow"))
    assert is_transient(azure.ServiceResponseError("dropped"))


def test_half_a_replacement_is_reported_as_such(tmp_path: Path) -> None:
    """A changed recurring run is replaced (delete, then create): when the create keeps
    failing, the summary says the old one was deleted and the new one not created."""
    (tmp_path / "kfp").mkdir()
    with kubeflow(tmp_path / "kfp") as platform:
        assert deploy(platform).code == 0
        changed = tmp_path / "churn"
        shutil.copytree(ROOT / "examples/churn", changed)
        spec = changed / "mlcompile.yaml"
        spec.write_text(spec.read_text().replace('schedule: "0 2 * * 1"', 'schedule: "0 4 * * 1"', 1))
        platform.args[0] = str(spec)
        platform.proxy.inject("503", method="POST", path=r"/recurringruns$", times=None)
        failed = deploy(platform)
        assert failed.code == 1, failed.stderr
        applied, not_applied = failed.summary()
        deleted = [resource for action, resource in applied if action == "delete"]
        assert len(deleted) == 1 and deleted[0] in not_applied, failed.stderr
        assert "its previous definition; the new one was not created" in failed.stderr
        assert deleted[0] not in platform.labels(), "the stand-in agrees: that recurring run is gone"
        FIGURES["503"] += platform.proxy.injected["503"]
        FIGURES["summarised"] += 1
        platform.proxy.clear()
        again = deploy(platform)
        assert again.code == 0, again.stderr
        assert any(line.startswith(f"create {deleted[0]}: ") for line in again.stdout.splitlines()), again.stdout
        FIGURES["completed"] += 1
