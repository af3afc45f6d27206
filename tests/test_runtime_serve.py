"""`python -m mlcompile.runtime serve`: the runtime image serving a model the train step wrote,
over each platform's container contract (SageMaker, Vertex AI, KServe, Azure ML), completing
entity rows from the online feature store the deployment's MLCOMPILE_ONLINE_FEATURES names.

The contracts are read from the golden builds of the churn example — the serving definitions
the targets compile — so a target and the server cannot drift apart silently. Online stores
are the local stand-ins of the feature-store tests."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import tarfile
import time
import urllib.error
import urllib.request
import warnings
from pathlib import Path
from typing import Any

import pytest
from requires import require

np = pytest.importorskip("numpy")
pd = pytest.importorskip("pandas")
require("sklearn", "starlette")
yaml = pytest.importorskip("yaml")

with warnings.catch_warnings():  # starlette prefers httpx2 to the installed httpx: nothing this file tests
    warnings.simplefilter("ignore")
    from starlette.testclient import TestClient  # noqa: E402

from serve_support import FEATURES, train_churn_model  # noqa: E402

from mlcompile.runtime.model import load_model, predict  # noqa: E402
from mlcompile.runtime.serve import create_app, listen_port, locate_model, parse  # noqa: E402

GOLDEN = Path(__file__).parent / "golden" / "churn"
C1 = {"orders_30d": 1, "spend_30d": 5.0, "support_tickets_30d": 6, "plan": "basic", "tenure_days": 20}  # likely to churn
C2 = {"orders_30d": 9, "spend_30d": 120.0, "support_tickets_30d": 0, "plan": "pro", "tenure_days": 900}  # likely to stay


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A model folder as the runtime's train step writes it (model.json + model.joblib)."""
    return train_churn_model(tmp_path_factory.mktemp("model"), "sklearn.linear_model.LogisticRegression", {"max_iter": 500}, rows=300)


def expected(model_dir: Path, *rows: dict[str, Any]) -> list[Any]:
    """The model's own predictions on these feature rows (None = missing)."""
    model, meta = load_model(model_dir)
    predictions, _ = predict(model, meta, pd.DataFrame(list(rows), columns=[f["column"] for f in FEATURES]))
    return [p.item() for p in predictions]


# ------------------------------------------------------------------ what the targets compile


def sagemaker_inference_specification() -> dict[str, Any]:
    """The InferenceSpecification of the model package the SageMaker register step creates."""
    text = (GOLDEN / "aws-prod" / "pipelines" / "churn-prediction-training.definition.json").read_text()
    start = text.index('"InferenceSpecification": ') + len('"InferenceSpecification": ')
    value, _ = json.JSONDecoder().raw_decode(text[start:])
    return value


def sagemaker_online_env() -> str:
    """MLCOMPILE_ONLINE_FEATURES of the model the SageMaker register step registers."""
    return sagemaker_inference_specification()["Containers"][0]["Environment"]["MLCOMPILE_ONLINE_FEATURES"]


def vertex_container_spec() -> dict[str, Any]:
    return json.loads((GOLDEN / "gcp-prod" / "vertex" / "model.json").read_text())["model"]["containerSpec"]


def azure_deployment() -> dict[str, Any]:
    return yaml.safe_load((GOLDEN / "azure-prod" / "endpoints" / "churn-scorer-blue.yml").read_text())


def kserve_container() -> dict[str, Any]:
    service = yaml.safe_load((GOLDEN / "kfp-gke" / "serving" / "inference-service.yaml").read_text())
    return service["spec"]["predictor"]["containers"][0]


def test_every_target_runs_the_runtime_server_on_the_port_and_routes_it_serves(model_dir: Path) -> None:
    serve = ["python", "-m", "mlcompile.runtime", "serve"]
    container = kserve_container()
    assert container["command"] == serve and container["ports"] == [{"containerPort": 8080, "protocol": "TCP"}]
    spec = vertex_container_spec()
    assert spec["command"] == serve and spec["ports"] == [{"containerPort": 8080}]
    inference = azure_deployment()["environment"]["inference_config"]
    assert {route["port"] for route in inference.values()} == {8080}
    # SageMaker's model package names the image and the model data only: SageMaker runs
    # `<image> serve` on 8080 with the model in /opt/ml/model; the content types it declares are served
    package = sagemaker_inference_specification()
    assert set(package["Containers"][0]) == {"Image", "Environment", "ModelDataUrl"}
    assert set(package["SupportedContentTypes"]) == {"application/json", "text/csv"}

    app = create_app(model_dir, environ={"AIP_HEALTH_ROUTE": spec["healthRoute"], "AIP_PREDICT_ROUTE": spec["predictRoute"]})
    client = TestClient(app)
    instance = {"instances": [C1]}
    for health in ("/ping", spec["healthRoute"], inference["liveness_route"]["path"], inference["readiness_route"]["path"], "/v1/models/churn-scorer"):
        assert client.get(health).status_code == 200, health
    for route in ("/invocations", spec["predictRoute"], inference["scoring_route"]["path"], "/v1/models/churn-scorer:predict"):
        response = client.post(route, json=instance)
        assert response.status_code == 200, (route, response.text)
        assert response.json()["predictions"] == expected(model_dir, C1)


def test_the_runtime_image_answers_sagemakers_serve_and_azures_default_command() -> None:
    dockerfile = (Path(__file__).parents[1] / "Dockerfile").read_text()
    assert 'CMD ["python", "-m", "mlcompile.runtime", "serve"]' in dockerfile  # Azure ML runs the image's own command
    assert "/opt/mlcompile/bin/serve" in dockerfile  # SageMaker runs `docker run <image> serve`


def test_the_port_is_the_platforms(model_dir: Path) -> None:
    spec = vertex_container_spec()
    config = spec["args"][1]
    assert listen_port(parse(["--config", config]), {}) == 8080  # SageMaker, Azure ML
    assert listen_port(parse(["--config", config]), {"AIP_HTTP_PORT": str(spec["ports"][0]["containerPort"])}) == spec["ports"][0]["containerPort"]
    # KServe appends its own arguments to the container's: the port is read, the rest left alone
    kserve = parse([*kserve_container()["args"], "--model_name", "churn-scorer", "--http_port", "8081", "--workers", "1"])
    assert listen_port(kserve, {}) == 8081 and kserve.model_name == "churn-scorer" and kserve.config["registry"]["model"] == "churn-classifier"
    assert listen_port(parse(["--port", "9000"]), {"AIP_HTTP_PORT": "8080"}) == 9000


# ------------------------------------------------------------------ SageMaker


@pytest.fixture
def feature_groups(monkeypatch: pytest.MonkeyPatch) -> Any:
    """The sagemaker-featurestore-runtime stand-in of the feature-store tests, holding C1
    and C2 (C2 without spend) as materialisation writes them."""
    pytest.importorskip("boto3")
    from test_feature_store_sagemaker import FeatureStoreRuntimeStandIn

    service = FeatureStoreRuntimeStandIn(
        {"churn-prediction-customer-activity": ("customer_id", "event_ts"), "churn-prediction-customer-profile": ("customer_id", "event_ts")}
    )
    for key, row in (("C1", C1), ("C2", {**C2, "spend_30d": None})):
        service.records["churn-prediction-customer-activity"][key] = {
            "customer_id": key, "event_ts": "2026-01-31T00:00:00Z",
            **{f: str(row[f]) for f in ("orders_30d", "spend_30d", "support_tickets_30d") if row[f] is not None},
        }  # fmt: skip
        service.records["churn-prediction-customer-profile"][key] = {
            "customer_id": key,
            "event_ts": "2026-01-31T00:00:00Z",
            "plan": row["plan"],
            "tenure_days": str(row["tenure_days"]),
        }
    for name, value in (("AWS_ENDPOINT_URL", service.url), ("AWS_ACCESS_KEY_ID", "testing"), ("AWS_SECRET_ACCESS_KEY", "testing"), ("NO_PROXY", "127.0.0.1")):
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("MLCOMPILE_ONLINE_FEATURES", sagemaker_online_env())
    with service:
        yield service


def test_sagemaker_invocations_read_each_customers_features_from_its_feature_groups(model_dir: Path, feature_groups: Any) -> None:
    client = TestClient(create_app(model_dir))
    assert client.get("/ping").status_code == 200
    response = client.post("/invocations", json={"entities": [{"customer_id": "C1"}, {"customer_id": "C2"}, {"customer_id": "C404"}]})
    assert response.status_code == 200, response.text
    body = response.json()
    # C2's spend was never written: missing, as training imputed it; the store knows nothing
    # of C404: not scored (a prediction from imputed values only would look like an answer)
    assert body["predictions"] == [*expected(model_dir, C1, {**C2, "spend_30d": None}), None] and body["scores"][2] is None
    assert body["missing"] == [[], ["customer_activity:spend_30d"], [f["ref"] for f in FEATURES]] and body["unknown"] == [2]
    assert feature_groups.problems == [] and feature_groups.operations == ["BatchGetRecord", "BatchGetRecord"]  # one call per group


def test_v2_answers_carry_missing_and_unknown_as_protocol_parameters(model_dir: Path, feature_groups: Any) -> None:
    """The Open Inference Protocol's parameter values are strings, numbers or booleans (a
    client converting the answer to its gRPC form refuses anything else): what the store
    lacked goes as JSON text, the same lists the v1 answer holds."""
    client = TestClient(create_app(model_dir, name="churn-classifier"))
    keys = {"name": "customer_id", "shape": [3], "datatype": "BYTES", "data": ["C1", "C2", "C404"]}
    answer = client.post("/v2/models/churn-classifier/infer", json={"inputs": [keys]}).json()
    parameters = answer["parameters"]
    assert all(isinstance(value, (str, int, float, bool)) for value in parameters.values()), parameters
    assert json.loads(parameters["missing"]) == [[], ["customer_activity:spend_30d"], [f["ref"] for f in FEATURES]]
    assert json.loads(parameters["unknown"]) == [2]
    assert answer["outputs"][0]["data"] == [*expected(model_dir, C1, {**C2, "spend_30d": None}), None]


def test_sagemaker_rows_without_the_entity_key_are_a_400_that_names_it(model_dir: Path, feature_groups: Any) -> None:
    client = TestClient(create_app(model_dir))
    response = client.post("/invocations", json={"entities": [{"customer_id": "C1"}, {"id": "C2"}]})
    assert response.status_code == 400
    assert response.json()["error"] == "row 1: missing entity key customer_id (the online features are read by customer_id)"
    assert feature_groups.operations == []  # refused before any read


def test_values_sent_in_the_request_win_over_the_store_and_csv_rows_need_no_store(model_dir: Path, feature_groups: Any) -> None:
    client = TestClient(create_app(model_dir))
    response = client.post("/invocations", json={"instances": [{"customer_id": "C1", "tenure_days": 900}]})
    assert response.json()["predictions"] == expected(model_dir, {**C1, "tenure_days": 900})
    csv_line = ",".join(str(C2[f["column"]]) for f in FEATURES)
    response = client.post("/invocations", content=csv_line + "\n", headers={"Content-Type": "text/csv"})
    assert response.status_code == 200 and response.json()["predictions"] == expected(model_dir, C2)
    assert feature_groups.operations == ["BatchGetRecord", "BatchGetRecord"]  # only for the first request


def test_sagemakers_model_tar_gz_is_found_in_the_model_folder(model_dir: Path, tmp_path: Path) -> None:
    with tarfile.open(tmp_path / "model.tar.gz", "w:gz") as tar:
        for path in model_dir.iterdir():
            tar.add(path, arcname=path.name)
    located = locate_model(None, {}, {"SM_MODEL_DIR": str(tmp_path)})
    assert (located.folder / "model.json").exists() and "SM_MODEL_DIR" in located.reason


class Throttled:
    def read(self, entities: list[dict[str, Any]], features: list[str]) -> list[dict[str, Any]]:
        raise RuntimeError("feature group churn-prediction-customer-activity: 1 identifier sets left unprocessed (throttled): retry the request")


class Slow:
    def read(self, entities: list[dict[str, Any]], features: list[str]) -> list[dict[str, Any]]:
        time.sleep(1.0)
        return [{} for _ in entities]


def test_a_store_that_fails_is_a_503_and_a_slow_one_a_504_within_the_request_timeout(model_dir: Path) -> None:
    environ = {"MLCOMPILE_ONLINE_FEATURES": sagemaker_online_env(), "MLCOMPILE_REQUEST_TIMEOUT_SECONDS": "0.2"}
    failing = TestClient(create_app(model_dir, environ=environ, reader=Throttled())).post("/invocations", json={"entities": [{"customer_id": "C1"}]})
    assert failing.status_code == 503 and failing.json()["error"].startswith("online feature store (sagemaker): RuntimeError: feature group")
    slow = TestClient(create_app(model_dir, environ=environ, reader=Slow())).post("/invocations", json={"entities": [{"customer_id": "C1"}]})
    assert slow.status_code == 504 and "MLCOMPILE_REQUEST_TIMEOUT_SECONDS" in slow.json()["error"]


# ------------------------------------------------------------------ Vertex AI


def test_vertex_serves_its_routes_and_port_with_the_model_of_aip_storage_uri(model_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("google.cloud.aiplatform_v1")
    from test_feature_store_vertex import FeatureOnlineStoreStandIn

    spec = vertex_container_spec()
    online = next(e["value"] for e in spec["env"] if e["name"] == "MLCOMPILE_ONLINE_FEATURES")
    config = json.loads(online)
    rows = {
        (config["views"]["customer_activity"]["feature_view"], "C1"): {
            "orders_30d": {"int64Value": "1"},
            "spend_30d": {"doubleValue": 5.0},
            "support_tickets_30d": {"int64Value": "6"},
        },
        (config["views"]["customer_profile"]["feature_view"], "C1"): {"plan": {"stringValue": "basic"}, "tenure_days": {"int64Value": "20"}},
    }
    # what Vertex AI sets in the container of the uploaded model (artifactUri = the model folder)
    environ = {"AIP_HTTP_PORT": str(spec["ports"][0]["containerPort"]), "AIP_HEALTH_ROUTE": spec["healthRoute"], "AIP_PREDICT_ROUTE": spec["predictRoute"],
               "AIP_STORAGE_URI": str(model_dir), "MLCOMPILE_ONLINE_FEATURES": online}  # fmt: skip
    located = locate_model(None, {}, environ)
    assert located.folder == model_dir
    with FeatureOnlineStoreStandIn(rows) as api:
        monkeypatch.setenv("MLCOMPILE_VERTEX_API_ENDPOINT", api.url)
        monkeypatch.setenv("NO_PROXY", "127.0.0.1")
        client = TestClient(create_app(located.folder, environ=environ))
        assert client.get(spec["healthRoute"]).status_code == 200
        response = client.post(spec["predictRoute"], json={"instances": [{"customer_id": "C1"}]})  # Vertex's request shape
        assert response.status_code == 200, response.text
        assert response.json()["predictions"] == expected(model_dir, C1)
        assert client.post(spec["predictRoute"], json={"instances": [{"plan": "pro"}]}).status_code == 400


def test_a_remote_model_folder_is_copied_before_it_is_served(model_dir: Path) -> None:
    fsspec = pytest.importorskip("fsspec")
    memory = fsspec.filesystem("memory")
    for path in model_dir.iterdir():
        memory.pipe(f"/serve-test/run/train/model/{path.name}", path.read_bytes())
    located = locate_model(None, {}, {"AIP_STORAGE_URI": "memory://serve-test/run/train/model"})
    assert (located.folder / "model.joblib").read_bytes() == (model_dir / "model.joblib").read_bytes()


# ------------------------------------------------------------------ KServe


def test_kserve_v1_predicts_instances_that_carry_every_feature(model_dir: Path, tmp_path: Path) -> None:
    # the InferenceService has no online store: instances carry all features
    client = TestClient(create_app(model_dir, name="churn-scorer", environ={}))
    assert client.get("/v1/models/churn-scorer").json() == {"name": "churn-scorer", "ready": True}
    response = client.post("/v1/models/churn-scorer:predict", json={"instances": [C1, C2]})
    assert response.status_code == 200 and response.json()["predictions"] == expected(model_dir, C1, C2)
    # features may also be named view:feature, as MLCOMPILE_ONLINE_FEATURES names them
    response = client.post("/v1/models/churn-scorer:predict", json={"instances": [{f["ref"]: C2[f["column"]] for f in FEATURES}]})
    assert response.json()["predictions"] == expected(model_dir, C2)
    incomplete = client.post("/v1/models/churn-scorer:predict", json={"instances": [{**C1, "plan": None}, {"orders_30d": 1}]})
    assert incomplete.status_code == 400 and incomplete.json()["error"].startswith("row 1: missing features spend_30d, support_tickets_30d, plan, tenure_days")
    entities = client.post("/v1/models/churn-scorer:predict", json={"entities": [{"customer_id": "C1"}]})
    assert entities.status_code == 400 and "MLCOMPILE_ONLINE_FEATURES is not set" in entities.json()["error"]
    assert client.post("/v1/models/churn-scorer:predict", content=b"{not json").status_code == 400
    # KServe's storageUri lands the model in /mnt/models; a folder holding one model folder is found
    (tmp_path / "models" / "churn").mkdir(parents=True)
    for path in model_dir.iterdir():
        (tmp_path / "models" / "churn" / path.name).write_bytes(path.read_bytes())
    assert locate_model(str(tmp_path / "models"), {}, {}).folder == tmp_path / "models" / "churn"


# ------------------------------------------------------------------ Azure ML


class FakeRedis:
    """The Azure ML online store (Redis hashes) as the reader's client sees it."""

    def __init__(self, hashes: dict[str, dict[str, bytes]]):
        self.hashes = hashes

    def hmget_many(self, requests: Any) -> list[list[bytes | None]]:
        return [[self.hashes.get(key, {}).get(field) for field in fields] for key, fields in requests]


def test_azureml_scores_entities_from_the_feature_store_on_the_inference_config_routes(model_dir: Path, tmp_path: Path) -> None:
    import base64
    import struct

    from mlcompile.runtime.online.azureml import make_reader

    deployment = azure_deployment()
    inference = deployment["environment"]["inference_config"]
    config = json.loads(deployment["environment_variables"]["MLCOMPILE_ONLINE_FEATURES"])
    store = "0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0"
    prefix = f"featurestore:{store}:featureset"
    redis = FakeRedis({
        f"{prefix}:customer_activity:version:1:customer_id:C1": {"orders_30d": b"1", "spend_30d": base64.b64encode(b"\xcb" + struct.pack(">d", 5.0)), "support_tickets_30d": b"6"},
        f"{prefix}:customer_profile:version:1:customer_id:C1": {"plan": b"basic", "tenure_days": b"20"},
    })  # fmt: skip
    # Azure ML mounts the registered model at AZUREML_MODEL_DIR, its files one folder down
    (tmp_path / "azureml-models" / "churn-classifier" / "3" / "model").mkdir(parents=True)
    for path in model_dir.iterdir():
        (tmp_path / "azureml-models" / "churn-classifier" / "3" / "model" / path.name).write_bytes(path.read_bytes())
    environ = {**deployment["environment_variables"], "AZUREML_MODEL_DIR": str(tmp_path / "azureml-models" / "churn-classifier" / "3")}
    located = locate_model(None, {}, environ)
    assert located.version == "3"
    reader = make_reader(config, client=redis, environ={"MLCOMPILE_AZUREML_FEATURE_STORE_ID": store})
    client = TestClient(create_app(located.folder, version=located.version, environ=environ, reader=reader))
    assert client.get(inference["liveness_route"]["path"]).json() == {"status": "ok", "model": "churn-classifier", "version": "3"}
    response = client.post(inference["scoring_route"]["path"], json={"entities": [{"customer_id": "C1"}]})
    assert response.status_code == 200, response.text
    assert response.json()["predictions"] == expected(model_dir, C1)
    assert client.post(inference["scoring_route"]["path"], json={"entities": [{}]}).status_code == 400


# ------------------------------------------------------------------ the command, over HTTP


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def http(url: str, body: Any = None) -> tuple[int, Any]:
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(url, data=data, headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def test_the_command_serves_sagemakers_contract_over_http(model_dir: Path, feature_groups: Any) -> None:
    port = free_port()
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path), "NO_PROXY": "127.0.0.1", "no_proxy": "127.0.0.1"}
    server = subprocess.Popen([sys.executable, "-m", "mlcompile.runtime", "serve", "--model-dir", str(model_dir), "--port", str(port), "--host", "127.0.0.1"],
                              env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)  # fmt: skip
    try:
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 60
        while True:
            try:
                status, health = http(f"{base}/ping")
                break
            except (urllib.error.URLError, ConnectionError):
                assert server.poll() is None and time.monotonic() < deadline, server.stdout.read() if server.stdout else ""
                time.sleep(0.2)
        assert status == 200 and health["status"] == "ok"
        status, body = http(f"{base}/invocations", {"entities": [{"customer_id": "C1"}]})
        assert status == 200 and body["predictions"] == expected(model_dir, C1)
        status, error = http(f"{base}/invocations", {"entities": [{"customer": "C1"}]})
        assert status == 400 and "customer_id" in error["error"]
    finally:
        server.terminate()
        server.wait(timeout=30)


def test_serving_without_an_online_store_imports_no_cloud_sdk(model_dir: Path) -> None:
    code = (
        "import sys\nbefore = set(sys.modules)  # a namespace .pth may create google.cloud at startup\n"
        "from pathlib import Path\nfrom mlcompile.runtime.serve import create_app\n"
        f"create_app(Path({str(model_dir)!r}), environ={{}})\n"
        "print(sorted(m for m in set(sys.modules) - before if m.split('.')[0] in ('boto3', 'botocore', 'google', 'azure', 'mlflow', 'sagemaker')))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)})
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"


# ------------------------------------------------------------------ the registry


@pytest.mark.filterwarnings("ignore::DeprecationWarning")  # MLflow's SQLAlchemy mappers, read in this process
def test_a_registered_version_serves_from_the_registry_and_as_its_mlflow_flavor(model_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("mlflow")
    from mlcompile.runtime.registry import register

    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    monkeypatch.setenv("MLCOMPILE_ARTIFACT_ROOT", str(tmp_path / "artifacts"))
    (tmp_path / "metrics.json").write_text(json.dumps({"metrics": {"roc_auc": 0.9}}))
    params = {"model": "churn-classifier", "approval": "auto", "aliases": ["candidate"]}
    registered = register({"system": "churn-prediction", "params": params, "registry": {"tracking_uri": uri}},
                          {"model": str(model_dir), "metrics": str(tmp_path / "metrics.json")}, {})  # fmt: skip
    # KServe's InferenceService names the model and its registry in --config: the production version serves
    config = json.loads(kserve_container()["args"][1])
    config["registry"]["tracking_uri"] = uri
    located = locate_model(None, config, {})
    assert located.version == registered["version"] and "alias 'production'" in located.reason
    assert TestClient(create_app(located.folder, environ={})).post("/predict", json={"instances": [C2]}).json()["predictions"] == expected(model_dir, C2)
    # the registered version's source is the MLflow sklearn flavor; it carries model.json to be served
    import mlflow

    flavor = Path(mlflow.artifacts.download_artifacts(run_id=registered["run_id"], artifact_path="model", dst_path=str(tmp_path / "asset"), tracking_uri=uri))
    assert (flavor / "MLmodel").exists() and not (flavor / "model.joblib").exists()
    client = TestClient(create_app(locate_model(str(tmp_path / "asset"), {}, {}).folder, environ={}))
    assert client.post("/score", json={"instances": [C1, C2]}).json()["predictions"] == expected(model_dir, C1, C2)
