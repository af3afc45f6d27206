"""`mlcompile deploy` for Azure ML against a local HTTPS stand-in of the ARM endpoints
azure-ai-ml calls (tests/stand_ins/azure_arm.py on 127.0.0.1): the real MLClient, the real
`begin_create_or_update` calls, no mock of mlcompile's own code; and no socket but loopback."""

from __future__ import annotations

import json
import socket
import sys
from pathlib import Path

import pytest
from requires import require

require("azure.ai.ml")

from click.testing import CliRunner  # noqa: E402

from mlcompile.cli import main  # noqa: E402

sys.path.insert(0, str(Path(__file__).parent / "stand_ins"))
from azure_arm import ArmStandIn, bearer_token, serve, tls_certificate  # noqa: E402

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning", "ignore::PendingDeprecationWarning")

ROOT = Path(__file__).resolve().parents[1]
SUB = "3f2b8c1e-7a4d-4e9b-9c21-5d8e6f0a1b2c"  # targets/azure-prod.yaml
WORKSPACE = f"/subscriptions/{SUB}/resourceGroups/rg-ml-prod-weu/providers/Microsoft.MachineLearningServices/workspaces/mlw-acme-prod-weu"


@pytest.fixture
def arm(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    store = ArmStandIn()
    store.seed(WORKSPACE, {"location": "westeurope", "properties": {"workspaceId": "00000000-0000-0000-0000-000000000001", "discoveryUrl": ""}})
    # a new workspace: no model version exists yet (the training pipeline registers the first);
    # its compute cluster is provisioned with it (targets/azure-prod.yaml)
    store.seed(
        f"{WORKSPACE}/computes/cpu-cluster-d8s",
        {
            "location": "westeurope",
            "properties": {"computeType": "AmlCompute", "properties": {"vmSize": "Standard_D8s_v3", "scaleSettings": {"maxNodeCount": 4, "minNodeCount": 0}}},
        },
    )
    for system in ("churn-prediction", "search-ranker", "invoice-late-payment"):  # as if the training pipeline had run once
        seed_training_data(store, system)
    server, url = serve(store, certificate=tls_certificate(tmp_path))
    monkeypatch.setenv("MLCOMPILE_AZUREML_ARM_ENDPOINT", url)
    monkeypatch.setenv("MLCOMPILE_AZUREML_CA_BUNDLE", str(tmp_path / "stand-in.crt"))
    monkeypatch.setenv("MLCOMPILE_AZUREML_ACCESS_TOKEN", bearer_token(url))
    monkeypatch.delenv("AZUREML_CURRENT_CLOUD", raising=False)
    _loopback_only(monkeypatch)
    yield store
    server.shutdown()
    server.server_close()


def seed_training_data(store: ArmStandIn, system: str) -> None:
    store.seed(f"{WORKSPACE}/data/{system}-training-data", {"properties": {"dataType": "uri_folder", "latestVersion": "1"}})
    store.seed(
        f"{WORKSPACE}/data/{system}-training-data/versions/1",
        {"properties": {"dataType": "uri_folder", "dataUri": "azureml://datastores/workspaceblobstore/paths/x/"}},
    )


def _loopback_only(monkeypatch: pytest.MonkeyPatch) -> None:
    real_connect = socket.socket.connect
    real_getaddrinfo = socket.getaddrinfo

    def connect(self, address):  # type: ignore[no-untyped-def]
        if isinstance(address, tuple) and address[0] not in ("127.0.0.1", "::1"):
            raise AssertionError(f"deploy tried to reach {address}")
        return real_connect(self, address)

    def getaddrinfo(host, *args, **kwargs):  # type: ignore[no-untyped-def]
        if host not in ("127.0.0.1", "localhost", "::1"):
            raise AssertionError(f"deploy tried to resolve {host}")
        return real_getaddrinfo(host, *args, **kwargs)

    monkeypatch.setattr(socket.socket, "connect", connect)
    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)


def _deploy(example: str, *extra: str) -> tuple[int, str]:
    result = CliRunner().invoke(
        main, ["deploy", f"examples/{example}/mlcompile.yaml", "--target", "targets/azure-prod.yaml", "--git-commit", "none", *extra],
        catch_exceptions=False,
    )  # fmt: skip
    return result.exit_code, result.output


def test_deploy_creates_every_resource_through_mlclient(arm: ArmStandIn, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(ROOT)
    code, output = _deploy("churn", "--yes")
    assert code == 0, output
    lines = output.strip().splitlines()
    for expected in (
        "create online endpoint churn-scorer",
        "create batch endpoint churn-prediction-batch",
        "create batch deployment churn-prediction-batch/default",
        "create schedule churn-prediction-retraining",
        "create schedule churn-prediction-batch-scoring",
        "create schedule churn-prediction-monitoring",
    ):
        assert expected in lines, output
    # what reached "Azure": the values of the spec, in ARM's REST shapes
    endpoint = arm.resources[f"{WORKSPACE}/onlineEndpoints/churn-scorer".lower()]
    assert endpoint["properties"].get("traffic") in (None, {}), "no deployment exists yet: no traffic to split"
    schedule = arm.resources[f"{WORKSPACE}/schedules/churn-prediction-retraining".lower()]
    assert schedule["properties"]["trigger"]["expression"] == "0 2 * * 1"
    assert schedule["properties"]["trigger"]["timeZone"] == "UTC"
    assert all(c.path.startswith("/subscriptions/") for c in arm.calls)


def test_first_deploy_on_a_new_workspace_defers_what_needs_a_model_version(arm: ArmStandIn, monkeypatch: pytest.MonkeyPatch) -> None:
    """No model version exists before the first training run: deploy used to abort on the
    deployments' `azureml:<model>@latest`. Now the schedules (the training one registers the
    first version) go first and what serves a version waits for the rollout, saying so."""
    monkeypatch.chdir(ROOT)
    code, output = _deploy("churn", "--yes")
    assert code == 0, output
    lines = output.strip().splitlines()
    deferred = {line.split(":", 1)[0]: line for line in lines if line.startswith("deferred ")}
    assert (
        "approve a version (MLflow alias 'production'), then submit pipelines/churn-prediction-deploy.yml"
        in deferred["deferred online deployment churn-scorer/blue"]
    )
    assert "deferred online deployment churn-scorer/green" in deferred
    assert "does not exist yet" in deferred["deferred schedule churn-prediction-model-monitor"]
    assert {"deferred autoscale setting churn-scorer-blue-autoscale", "deferred autoscale setting churn-scorer-green-autoscale"} <= set(deferred)
    assert lines.index("create schedule churn-prediction-retraining") < lines.index("create online endpoint churn-scorer")
    assert not arm.calls_to("PUT", "/deployments/blue") and not arm.calls_to("PUT", "/autoscaleSettings/")


def test_second_deploy_reports_everything_unchanged(arm: ArmStandIn, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(ROOT)
    assert _deploy("churn", "--yes")[0] == 0
    writes = len([c for c in arm.calls if c.method == "PUT"])
    code, output = _deploy("churn", "--yes")
    assert code == 0, output
    actions = [line for line in output.strip().splitlines() if not line.startswith(("examples/", " "))]  # not the build's warnings
    # feature sets are always left to `az ml feature-set create` (see the feature store test);
    # what serves a model version waits for the first rollout (see the test above)
    assert actions and all(line.startswith(("unchanged ", "deferred ")) for line in actions), output
    assert len([c for c in arm.calls if c.method == "PUT"]) == writes


def test_dry_run_writes_nothing(arm: ArmStandIn, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(ROOT)
    code, output = _deploy("ranker-gpu", "--dry-run")
    assert code == 0, output
    assert "would create online endpoint search-ranker" in output
    assert "would create schedule search-ranker-retraining" in output
    assert [c for c in arm.calls if c.method in ("PUT", "PATCH", "POST", "DELETE")] == []


def test_a_refusal_is_a_deploy_failure(arm: ArmStandIn, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(ROOT)
    original = arm.handle

    def refuse_schedules(method, path, query, body):  # type: ignore[no-untyped-def]
        if method == "PUT" and "/schedules/" in path:
            arm.calls.append(type(arm.calls[0])(method, path, query, body))
            return 400, {"error": {"code": "UserError", "message": "schedule refused by the stand-in"}}
        return original(method, path, query, body)

    arm.handle = refuse_schedules  # type: ignore[method-assign]
    code, output = _deploy("batch-scoring", "--yes")
    assert code == 1
    assert "deploy failed" in output and "schedule refused by the stand-in" in output
    json.dumps([c.path for c in arm.calls])


def test_monitor_waits_for_the_first_training_run(arm: ArmStandIn, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(ROOT)
    for key in [k for k in arm.resources if "/data/invoice-late-payment-training-data" in k]:
        del arm.resources[key]
    code, output = _deploy("batch-scoring", "--yes")
    assert code == 0, output
    assert "deferred schedule invoice-late-payment-model-monitor: its reference data invoice-late-payment-training-data does not exist yet" in output
    assert "create schedule invoice-late-payment-retraining" in output
    seed_training_data(arm, "invoice-late-payment")
    code, output = _deploy("batch-scoring", "--yes")
    assert "create schedule invoice-late-payment-model-monitor" in output and "unchanged schedule invoice-late-payment-retraining" in output


def test_feature_store_entities_are_created_and_feature_sets_deferred(arm: ArmStandIn, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(ROOT)
    code, output = _deploy("ranker-gpu", "--yes")
    assert code == 0, output
    lines = output.strip().splitlines()
    for entity in ("user", "item", "query"):
        assert f"create feature store entity fs-acme-prod-weu/{entity}:1" in lines, output
    store = f"/subscriptions/{SUB}/resourceGroups/rg-ml-prod-weu/providers/Microsoft.MachineLearningServices/workspaces/fs-acme-prod-weu"
    user = arm.resources[f"{store}/featurestoreEntities/user/versions/1".lower()]
    assert user["properties"]["indexColumns"] == [{"columnName": "user_id", "dataType": "String"}]
    assert (
        "deferred feature set fs-acme-prod-weu/item_popularity: apply it with `az ml feature-set create --file "
        "feature-store/feature-sets/item_popularity/feature-set.yaml --feature-store-name fs-acme-prod-weu --resource-group rg-ml-prod-weu`"
    ) in output
    # the entities go first: the deployments that read the feature store come after them
    assert arm.calls_to("PUT", "/featurestoreEntities/")[0] is next(c for c in arm.calls if c.method == "PUT")


def _register_versions(tracking: str, model: str, count: int) -> None:
    """Versions of `model` in an MLflow registry, mirrored in the workspace's model list (on
    Azure ML the workspace's MLflow registry and its model assets are one registry)."""
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=tracking, registry_uri=tracking)
    client.create_registered_model(model)
    for number in range(1, count + 1):
        client.create_model_version(model, source=f"file:///models/{model}/{number}")


def _approve(arm: ArmStandIn, tracking: str, model: str, version: str) -> None:
    from mlflow.tracking import MlflowClient

    MlflowClient(tracking_uri=tracking, registry_uri=tracking).set_registered_model_alias(model, "production", version)
    arm.seed(
        f"{WORKSPACE}/models/{model}/versions/{version}",
        {"properties": {"modelType": "custom_model", "modelUri": f"azureml://models/{model}/{version}", "flavors": {}}},
    )


def _roll_out(build: Path, tracking: str, tmp_path: Path) -> object:
    """The deploy pipeline's deploy-online node, run as Azure ML runs its command."""
    import os

    from azureml_steps_support import load_pipeline, run_node

    env = {name: os.environ[name] for name in ("MLCOMPILE_AZUREML_ARM_ENDPOINT", "MLCOMPILE_AZUREML_CA_BUNDLE", "MLCOMPILE_AZUREML_ACCESS_TOKEN")}
    job = load_pipeline(build, "churn-prediction-deploy")
    return run_node(job, "deploy_online", {}, tmp_path, {**env, "MLFLOW_TRACKING_URI": tracking})


def _serving(arm: ArmStandIn) -> tuple[dict[str, str], dict[str, int]]:
    """(slot → the model version its deployment serves, the endpoint's traffic)."""
    endpoint = f"{WORKSPACE}/onlineEndpoints/churn-scorer".lower()
    models = {}
    for slot in ("blue", "green"):
        deployment = arm.resources.get(f"{endpoint}/deployments/{slot}")
        if deployment is not None:
            models[slot] = deployment["properties"]["model"].rsplit("/", 1)[-1]
    return models, dict(arm.resources[endpoint]["properties"].get("traffic") or {})


@pytest.mark.slow
def test_an_approval_rolls_out_the_approved_version_with_its_canary(arm: ArmStandIn, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Approving a version (MLflow alias 'production') and submitting the deploy pipeline puts
    it on the endpoint: the first one takes all traffic; the next one is the canary (green,
    10%) next to the version approved before (blue, 90%) — never both slots on `@latest`.
    `mlcompile deploy` afterwards keeps what the rollout set."""
    sys.path.insert(0, str(Path(__file__).parent))
    from azureml_steps_support import build

    monkeypatch.chdir(ROOT)
    assert _deploy("churn", "--yes")[0] == 0
    tracking = f"sqlite:///{tmp_path / 'mlflow.db'}"
    _register_versions(tracking, "churn-classifier", 2)
    built = build("churn", tmp_path / "build")

    _approve(arm, tracking, "churn-classifier", "1")
    first = _roll_out(built, tracking, tmp_path / "first")
    assert first.code == 0, first.stderr
    assert _serving(arm) == ({"blue": "1"}, {"blue": 100})

    _approve(arm, tracking, "churn-classifier", "2")
    second = _roll_out(built, tracking, tmp_path / "second")
    assert second.code == 0, second.stderr
    assert _serving(arm) == ({"blue": "1", "green": "2"}, {"blue": 90, "green": 10})

    again = _roll_out(built, tracking, tmp_path / "again")
    assert again.code == 0 and "already serves version 2" in again.stdout, again.stdout + again.stderr

    code, output = _deploy("churn", "--yes")
    assert code == 0, output
    assert "unchanged online deployment churn-scorer/blue" in output and "unchanged online deployment churn-scorer/green" in output, output
    assert "create schedule churn-prediction-model-monitor" in output and "create autoscale setting churn-scorer-green-autoscale" in output, output
    assert _serving(arm) == ({"blue": "1", "green": "2"}, {"blue": 90, "green": 10})


def _arm_env() -> dict[str, str]:
    import os

    return {name: os.environ[name] for name in ("MLCOMPILE_AZUREML_ARM_ENDPOINT", "MLCOMPILE_AZUREML_CA_BUNDLE", "MLCOMPILE_AZUREML_ACCESS_TOKEN")}


def _decisions(tmp_path: Path, **values: bool) -> dict[str, Path]:
    found = {}
    for name, value in values.items():
        found[name] = tmp_path / f"{name}.json"
        found[name].write_text(json.dumps({"decision": value}))
    return found


def _training_jobs(arm: ArmStandIn) -> list[dict]:
    return [c.body for c in arm.calls if c.method == "PUT" and "/jobs/" in c.path and (c.body or {}).get("properties", {}).get("jobType") == "Pipeline"]


@pytest.mark.slow
def test_a_breach_submits_the_training_pipeline_through_mlclient(arm: ArmStandIn, tmp_path: Path) -> None:
    """trigger-retraining used to print only: it now submits the build's training pipeline job
    (MLClient.jobs.create_or_update) — and not a second one while one is still running."""
    sys.path.insert(0, str(Path(__file__).parent))
    from azureml_steps_support import build, load_pipeline, run_node

    built = build("churn", tmp_path / "build")
    monitoring = load_pipeline(built, "churn-prediction-monitoring")
    run = run_node(monitoring, "trigger_retraining", _decisions(tmp_path, drift=True, performance=False), tmp_path / "first", _arm_env())
    assert run.code == 0, run.stderr
    (submitted,) = _training_jobs(arm)
    assert submitted["properties"]["displayName"] == "churn-prediction-training"
    assert submitted["properties"]["experimentName"] == "churn-prediction"
    assert submitted["properties"]["tags"]["mlcompile-trigger"] == "breach"
    assert set(submitted["properties"]["jobs"]) == {"extract_features", "validate_data", "train", "evaluate", "gate", "register"}
    name = next(c.path for c in arm.calls if c.method == "PUT" and c.body is submitted).rsplit("/", 1)[-1]
    assert f"submitted run {name}" in run.stdout

    # the submitted job is still running (as the stand-in stored it): the next breach waits
    arm.resources[f"{WORKSPACE}/jobs/{name}".lower()]["properties"]["status"] = "Running"
    again = run_node(monitoring, "trigger_retraining", _decisions(tmp_path, drift=True, performance=True), tmp_path / "again", _arm_env())
    assert again.code == 0, again.stderr
    assert f"not submitted: run {name} of the pipeline is still active" in again.stdout
    assert len(_training_jobs(arm)) == 1


@pytest.mark.slow
def test_the_new_data_sensor_watches_its_source_with_a_watermark(arm: ArmStandIn, tmp_path: Path) -> None:
    """The sensor reads its source: the first tick records a watermark, a tick without new
    rows submits nothing, new rows submit the training pipeline and move the watermark."""
    sys.path.insert(0, str(Path(__file__).parent))
    import pandas as pd
    from azureml_steps_support import build, load_pipeline, run_node, stage_source

    from mlcompile.runtime.emulated_storage import local_path

    built = build("churn", tmp_path / "build")
    sensor = load_pipeline(built, "churn-prediction-retrain-on-new-data-sensor")
    root = tmp_path / "root"
    labels = "abfss://crm@acmegrowthlake.dfs.core.windows.net/churn_labels.parquet"
    stage_source(root, labels, ROOT / "examples/churn/data/labels.csv")
    env = {**_arm_env(), "MLCOMPILE_EMULATE_ROOT": str(root)}

    first = run_node(sensor, "trigger_retraining", {}, tmp_path / "first", env)
    assert first.code == 0, first.stderr
    assert "watermark recorded" in first.stdout and not _training_jobs(arm)
    watermarks = list((root / "azureml" / "workspaceblobstore").rglob("*.json"))
    assert [w.name for w in watermarks] == ["churn_labels.json"]

    quiet = run_node(sensor, "trigger_retraining", {}, tmp_path / "quiet", env)
    assert "no new rows in source churn_labels" in quiet.stdout and not _training_jobs(arm)

    frame = pd.read_parquet(local_path(labels, root))
    newer = frame.tail(5).assign(label_ts="2099-01-01T00:00:00Z")
    pd.concat([frame, newer]).to_parquet(local_path(labels, root), index=False)
    moved = run_node(sensor, "trigger_retraining", {}, tmp_path / "moved", env)
    assert moved.code == 0, moved.stderr
    (submitted,) = _training_jobs(arm)
    assert submitted["properties"]["tags"]["mlcompile-trigger"] == "new-data"
    assert json.loads(watermarks[0].read_text())["rows"] == len(frame) + 5
