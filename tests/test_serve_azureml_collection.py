"""Azure ML's model monitor reads what the serving container collects: the runtime server,
deployed as the azure-prod build of the churn example says, logs each scored row's model
inputs — the feature columns after the online feature lookup, not the entity keys the
request carries — and its prediction through `azureml.ai.monitoring.Collector`, to the
collections the deployment's `data_collector` enables; the model monitor's production data
is the data asset Azure ML fills from that collection. What the collector sends is read at a
stand-in of the data collection sidecar (tests/stand_ins/azure_data_collector.py)."""

from __future__ import annotations

import base64
import json
import os
import struct
import subprocess
import sys
import time
import urllib.error
import warnings
from pathlib import Path
from typing import Any

import pytest
from requires import require

require("azureml.ai.monitoring", "sklearn")
yaml = pytest.importorskip("yaml")

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from starlette.testclient import TestClient  # noqa: E402

from serve_support import FEATURES, train_churn_model  # noqa: E402
from stand_ins.azure_data_collector import DataCollectorStandIn  # noqa: E402

from mlcompile.runtime.serve import create_app  # noqa: E402

BUILD = Path(__file__).parent / "golden" / "churn" / "azure-prod"
STORE = "0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0"
C1_FEATURES = {"orders_30d": 1.0, "spend_30d": 5.0, "support_tickets_30d": 6.0, "plan": "basic", "tenure_days": 20.0}


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return train_churn_model(tmp_path_factory.mktemp("model"), "sklearn.linear_model.LogisticRegression", {"max_iter": 500}, rows=200)


@pytest.fixture
def sidecar(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Any:
    """The sidecar, and the variables Azure ML sets for the collections the deployment enables."""
    from azureml.ai.monitoring.init import teardown

    deployment = yaml.safe_load((BUILD / "endpoints" / "churn-scorer-blue.yml").read_text())
    enabled = {name: c["enabled"] == "true" for name, c in deployment["data_collector"]["collections"].items()}
    with DataCollectorStandIn() as standin:
        for key, value in standin.environ(tmp_path / "mdc.json", enabled).items():
            monkeypatch.setenv(key, value)
        teardown()  # the collector keeps its configuration per process
        yield standin, deployment
        teardown(wait_for_flush=True)


def test_the_server_collects_the_looked_up_features_and_the_predictions_the_monitor_reads(model_dir: Path, sidecar: Any) -> None:
    from test_runtime_serve import FakeRedis

    from mlcompile.runtime.online.azureml import make_reader

    standin, deployment = sidecar
    environ = deployment["environment_variables"]
    prefix = f"featurestore:{STORE}:featureset"
    redis = FakeRedis({
        f"{prefix}:customer_activity:version:1:customer_id:C1": {"orders_30d": b"1", "spend_30d": base64.b64encode(b"\xcb" + struct.pack(">d", 5.0)), "support_tickets_30d": b"6"},
        f"{prefix}:customer_profile:version:1:customer_id:C1": {"plan": b"basic", "tenure_days": b"20"},
    })  # fmt: skip
    reader = make_reader(json.loads(environ["MLCOMPILE_ONLINE_FEATURES"]), client=redis, environ={"MLCOMPILE_AZUREML_FEATURE_STORE_ID": STORE})
    client = TestClient(create_app(model_dir, version="3", environ=environ, reader=reader))
    response = client.post(
        deployment["environment"]["inference_config"]["scoring_route"]["path"], json={"entities": [{"customer_id": "C1"}, {"customer_id": "C9"}]}
    )
    assert response.status_code == 200, response.text
    answer = response.json()
    assert answer["unknown"] == [1]  # C9 has no features: not scored, so not collected either

    collected = standin.wait_for("model_inputs", "model_outputs")
    (inputs,), (outputs,) = collected["model_inputs"], collected["model_outputs"]
    assert inputs["rows"] == [C1_FEATURES]  # what the model saw, by the columns the monitor's signals name
    # pandas' JSON keeps 10 significant digits of a score
    assert outputs["rows"] == [{"prediction": answer["predictions"][0], "score": pytest.approx(answer["scores"][0], rel=1e-9)}]
    assert inputs["correlation_id"] and inputs["correlation_id"] == outputs["correlation_id"]
    monitor = yaml.safe_load((BUILD / "schedules" / "churn-prediction-model-monitor.yml").read_text())
    drift = monitor["create_monitor"]["monitoring_signals"]["data-drift"]
    assert set(drift["features"]) <= set(C1_FEATURES) == {f["column"] for f in FEATURES}


def test_a_collection_the_deployment_does_not_enable_drops_the_data_and_serves_on(model_dir: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    from azureml.ai.monitoring.init import teardown

    with DataCollectorStandIn() as standin:
        for key, value in standin.environ(tmp_path / "mdc.json", {"model_inputs": False, "model_outputs": False}).items():
            monkeypatch.setenv(key, value)
        teardown()
        client = TestClient(create_app(model_dir, environ={"MLCOMPILE_AZUREML_COLLECT": "true"}))
        row = {**C1_FEATURES, "customer_id": "C1"}
        assert client.post("/score", json={"instances": [row]}).status_code == 200
        assert standin.wait_for("model_inputs", timeout=0.5) == {}
        teardown()


def test_the_monitor_reads_the_collected_inputs_of_the_slot_it_watches() -> None:
    from azure.ai.ml import load_online_deployment
    from azure.ai.ml.entities._load_functions import load_schedule  # not re-exported by azure.ai.ml

    deployment = load_online_deployment(BUILD / "endpoints" / "churn-scorer-blue.yml")
    assert {name for name, c in deployment.data_collector.collections.items() if c.enabled == "true"} == {"model_inputs", "model_outputs"}
    assert deployment.environment_variables["MLCOMPILE_AZUREML_COLLECT"] == "true"
    monitor = load_schedule(BUILD / "schedules" / "churn-prediction-model-monitor.yml")
    target = monitor.create_monitor.monitoring_target.endpoint_deployment_id
    signal = monitor.create_monitor.monitoring_signals["data-drift"]
    assert target == f"azureml:{deployment.endpoint_name}:{deployment.name}"
    assert signal.production_data.input_data.path.removeprefix("azureml:") == f"{deployment.endpoint_name}-{deployment.name}-model_inputs@latest"
    assert signal.production_data.data_context == "model_inputs"


@pytest.mark.slow  # starts the server process (~5 s on a loaded machine)
def test_the_serving_command_collects_on_azure(model_dir: Path, sidecar: Any) -> None:
    from test_runtime_serve import free_port, http

    standin, _ = sidecar
    port = free_port()
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path), "NO_PROXY": "127.0.0.1", "no_proxy": "127.0.0.1",
           "AZUREML_MODEL_DIR": str(model_dir), "MLCOMPILE_AZUREML_COLLECT": "true"}  # fmt: skip
    server = subprocess.Popen([sys.executable, "-m", "mlcompile.runtime", "serve", "--port", str(port), "--host", "127.0.0.1"],
                              env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)  # fmt: skip
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                status, body = http(f"http://127.0.0.1:{port}/score", {"instances": [C1_FEATURES]})
                break
            except (urllib.error.URLError, ConnectionError):
                assert server.poll() is None and time.monotonic() < deadline, server.stdout.read() if server.stdout else ""
                time.sleep(0.2)
        assert status == 200, body
        collected = standin.wait_for("model_inputs", "model_outputs")
        assert [p["rows"] for p in collected["model_inputs"]] == [[C1_FEATURES]]
        assert [p["rows"] for p in collected["model_outputs"]] == [
            [{"prediction": body["predictions"][0], "score": pytest.approx(body["scores"][0], rel=1e-9)}]
        ]
    finally:
        server.terminate()
        server.wait(timeout=30)
