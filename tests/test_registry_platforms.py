"""One registry per profile, read by every step: on Vertex AI the register step's upload, the
champion gate, batch scoring and deploy-online all use the Vertex AI Model Registry (through
aiplatform's clients against the Vertex API stand-in); serving and batch use only the approved
(`production`) version; approving deploys it with a traffic split DeployModel accepts; on
KServe the approval pins the version in a new revision with the canary share."""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from requires import require

require("kfp")
sys.path.insert(0, str(Path(__file__).parent / "stand_ins"))
sys.path.insert(0, str(Path(__file__).parent))
from kfp_kube_api import KubeStandIn  # noqa: E402
from serve_support import train_churn_model  # noqa: E402
from vertex_api import VertexStandIn  # noqa: E402

from mlcompile.build import compile_system, resolve_profiles  # noqa: E402
from mlcompile.runtime import launch, step_function  # noqa: E402
from mlcompile.runtime.io import DataError  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
MODEL = "projects/acme-ml-prod/locations/us-central1/models/churn-classifier"


def built(example: str, profile: str) -> dict[str, bytes]:
    spec = ROOT / "examples" / example / "mlcompile.yaml"
    result = compile_system(str(spec), resolve_profiles(str(spec), [str(ROOT / "targets" / f"{profile}.yaml")]), render=True, git_commit=None).results[0]
    return {f.path: f.content for f in result.files}


def step_config(files: dict[str, bytes], pipeline: str, step: str) -> dict[str, Any]:
    """The --config a step's container gets in the compiled IR."""
    ir = next(d for d in yaml.safe_load_all(files[f"pipelines/{pipeline}.yaml"]) if d)
    args = ir["deploymentSpec"]["executors"][f"exec-{step}"]["container"]["args"]
    return json.loads(args[args.index("--config") + 1])


@pytest.fixture(scope="module")
def churn_vertex() -> dict[str, bytes]:
    return built("churn", "gcp-prod")


@pytest.fixture(scope="module")
def churn_kfp() -> dict[str, bytes]:
    return built("churn", "kfp-gke")


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return train_churn_model(tmp_path_factory.mktemp("churn"), "sklearn.linear_model.LogisticRegression", {"max_iter": 200}, 300)


def register_on_vertex(config: dict[str, Any], model: Path, tmp_path: Path, roc_auc: float) -> None:
    metrics = tmp_path / f"metrics-{roc_auc}.json"
    metrics.write_text(json.dumps({"metrics": {"roc_auc": roc_auc}}))
    assert launch.main(["register", "--config", json.dumps(config), "--input", f"model={model}", "--input", f"metrics={metrics}"]) == 0


def approve(api: VertexStandIn, version: str) -> None:
    """A person approves through the Vertex AI API (console, gcloud): the alias moves."""
    from google.cloud.aiplatform_v1.services.model_service import ModelServiceClient

    from mlcompile.runtime.registry_vertex import client_options

    ModelServiceClient(**client_options({"region": "us-central1"})).merge_version_aliases(name=f"{MODEL}@{version}", version_aliases=["production"])


@pytest.mark.slow  # trains a model and registers three versions through the Vertex stand-in
def test_on_vertex_the_champion_batch_scoring_and_deploy_read_what_register_uploaded(
    churn_vertex: dict[str, bytes], trained: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from mlcompile.runtime.evaluation import _production_metrics
    from mlcompile.runtime.registry import production_model

    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.delenv("MLCOMPILE_TRY_UNAPPROVED", raising=False)
    register = step_config(churn_vertex, "churn-prediction-training", "register")
    evaluate = step_config(churn_vertex, "churn-prediction-training", "evaluate")
    batch = step_config(churn_vertex, "churn-prediction-batch-scoring", "score-batch")
    deploy = step_config(churn_vertex, "churn-prediction-deploy", "deploy-online")
    with VertexStandIn() as api:
        monkeypatch.setenv("MLCOMPILE_VERTEX_API_ENDPOINT", api.endpoint)
        register_on_vertex(register, trained, tmp_path, 0.81)
        versions = api.models[MODEL]["versions"]
        assert [sorted(v["aliases"]) for v in versions] == [["candidate", "default"]]  # approval manual; Vertex's first version is the default
        uploaded = versions[0]["model"]
        assert uploaded["artifactUri"] == str(trained) and uploaded["labels"]["mlcompile-approval"] == "pending"
        assert json.loads(uploaded["versionDescription"])["metrics"] == {"roc_auc": 0.81}

        # nothing approved: no champion to compare with; batch scoring refuses the unapproved version
        champion, note = _production_metrics(evaluate, ["roc_auc"], None, "churned", {})
        assert champion is None and "no production version" in note
        with pytest.raises(DataError, match="no approved version of churn-classifier in the vertex registry"):
            step_function("score_batch")(batch, {}, {})

        approve(api, "1")
        serving = production_model(batch, "churn-classifier")
        assert serving is not None and serving.version == "1" and (serving.folder / "model.json").exists()
        champion_model = production_model(evaluate, "churn-classifier")
        assert champion_model is not None and champion_model.version == "1"

        # a second version registered while version 1 serves: the champion stays version 1
        retrained = tmp_path / "retrained"
        shutil.copytree(trained, retrained)
        (retrained / "note.txt").write_text("another training")
        register_on_vertex(register, retrained, tmp_path, 0.83)
        assert production_model(evaluate, "churn-classifier").version == "1"

        # the approval path: version 2 approved, then the deploy pipeline's step deploys it
        api.endpoints["churn-scorer"] = {"name": "projects/acme-ml-prod/locations/us-central1/endpoints/churn-scorer"}
        result = step_function("deploy_online")(deploy, {}, {})
        assert result["version"] == "1" and result["traffic"] == {result["deployed_model_id"]: 100}  # the first deployment takes all
        first = result["deployed_model_id"]
        approve(api, "2")
        result = step_function("deploy_online")(deploy, {}, {})
        assert result["version"] == "2" and result["traffic"] == {result["deployed_model_id"]: 10, first: 90}  # canary 10%
        endpoint = api.endpoints["churn-scorer"]
        assert [(d["id"], d["modelVersionId"]) for d in endpoint["deployedModels"]] == [(first, "1"), (result["deployed_model_id"], "2")]
        assert endpoint["trafficSplit"] == result["traffic"]
        assert step_function("deploy_online")(deploy, {}, {})["note"] == "already deployed"  # run again: nothing changes
        # version 3 approved while version 2 is the canary: 3 takes the canary share from 1, and 2 is undeployed
        shutil.copytree(trained, tmp_path / "third")
        (tmp_path / "third" / "note.txt").write_text("a third training")
        register_on_vertex(register, tmp_path / "third", tmp_path, 0.84)
        approve(api, "3")
        third = step_function("deploy_online")(deploy, {}, {})
    assert third["traffic"] == {third["deployed_model_id"]: 10, first: 90}
    assert [(d["id"], d["modelVersionId"]) for d in endpoint["deployedModels"]] == [(first, "1"), (third["deployed_model_id"], "3")]


def test_deploy_model_json_has_a_split_that_adds_up_to_100(churn_vertex: dict[str, bytes]) -> None:
    from google.cloud.aiplatform_v1 import types as gca
    from google.protobuf import json_format

    body = json.loads(churn_vertex["vertex/deploy-model.json"])
    request = gca.DeployModelRequest.wrap(json_format.ParseDict(body, gca.DeployModelRequest.pb()()))
    assert dict(request.traffic_split) == {"0": 10, "{serving}": 90} and sum(request.traffic_split.values()) == 100
    assert step_config(churn_vertex, "churn-prediction-deploy", "deploy-online")["deploy_model"] == body


def test_the_deployed_model_serving_keeps_the_rest_of_the_traffic() -> None:
    from mlcompile.runtime.rollout import vertex_traffic

    assert vertex_traffic(10, {}) == {"0": 100}
    assert vertex_traffic(10, {"7": 100}) == {"0": 10, "7": 90}
    assert vertex_traffic(10, {"7": 90, "8": 10}) == {"0": 10, "7": 90}  # the old canary stops
    assert vertex_traffic(0, {"7": 100}) == {"0": 0, "7": 100}  # blue/green: no traffic until promoted
    assert vertex_traffic(100, {"7": 100}) == {"0": 100}


def test_a_register_step_reuses_the_version_of_the_same_model_on_vertex(
    churn_vertex: dict[str, bytes], trained: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    register = step_config(churn_vertex, "churn-prediction-training", "register")
    with VertexStandIn() as api:
        monkeypatch.setenv("MLCOMPILE_VERTEX_API_ENDPOINT", api.endpoint)
        register_on_vertex(register, trained, tmp_path, 0.81)
        register_on_vertex(register, trained, tmp_path, 0.81)
        assert len(api.models[MODEL]["versions"]) == 1


# ---------------------------------------------------------------------- KServe


@pytest.mark.slow  # an MLflow registry with two versions (~10 s here)
@pytest.mark.filterwarnings("ignore::DeprecationWarning")  # MLflow's SQLAlchemy mappers, read in this process
def test_kserve_approval_pins_the_version_in_a_new_revision_with_the_canary_share(churn_kfp: dict[str, bytes], mlflow_registry: dict[str, Any], trained: Path,
                                                                                  tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:  # fmt: skip
    from mlcompile.emulate.services.kserve import serving
    from mlcompile.runtime.registry import backend, register

    isvc = yaml.safe_load(churn_kfp["serving/inference-service.yaml"])
    key = f"{isvc['metadata']['namespace']}/inferenceservices/churn-scorer"
    deploy = step_config(churn_kfp, "churn-prediction-deploy", "deploy-online")
    assert deploy["serving"] == {"kind": "kserve", "name": "churn-scorer", "namespace": isvc["metadata"]["namespace"], "canary_percent": 10}
    deploy["registry"]["tracking_uri"] = mlflow_registry["registry"]["tracking_uri"]  # the MLflow server, here a local file
    registry = backend(mlflow_registry)
    with KubeStandIn() as api:
        monkeypatch.setenv("KUBECONFIG", str(api.kubeconfig(tmp_path)))
        # applied once from the build; its first revision serves (unpinned)
        from kubernetes import client, config

        config.load_kube_config(str(tmp_path / "kubeconfig"))
        client.CustomObjectsApi().create_namespaced_custom_object("serving.kserve.io", "v1beta1", isvc["metadata"]["namespace"], "inferenceservices", isvc)
        with pytest.raises(DataError, match="no approved version of churn-classifier"):
            step_function("deploy_online")(deploy, {}, {})  # the deploy pipeline before any approval
        registry.set_aliases("churn-classifier", "1", ["production"])  # a person approves version 1
        first = step_function("deploy_online")(deploy, {}, {})
        shutil.copytree(trained, tmp_path / "retrained")
        (tmp_path / "retrained" / "note.txt").write_text("another training")
        params = {"model": "churn-classifier", "approval": "manual", "aliases": ["candidate"]}
        register(
            {"system": "churn-prediction", "params": params, "registry": mlflow_registry["registry"]},
            {"model": str(tmp_path / "retrained"), "metrics": str(tmp_path / "metrics.json")},
            {},
        )
        registry.set_aliases("churn-classifier", "2", ["production"])  # then version 2
        second = step_function("deploy_online")(deploy, {}, {})
        stored = api.objects[key]
        routed = {next(e["value"] for e in p["containers"][0]["env"] if e["name"] == "MLCOMPILE_MODEL_VERSION"): percent for p, percent in serving(api, key)}
    assert first["traffic"] == {"1": 100} and second["traffic"] == {"2": 10, "1": 90}
    assert routed == second["traffic"]  # what KServe routes: the canary beside the rolled-out version 1
    predictor = stored["spec"]["predictor"]
    assert {"name": "MLCOMPILE_MODEL_VERSION", "value": "2"} in predictor["containers"][0]["env"] and predictor["canaryTrafficPercent"] == 10
    from kfp_strict import check_model

    check_model({k: v for k, v in stored.items() if k != "status"}, "V1beta1InferenceService")


def test_kserve_v2_routes_use_the_inference_service_name(churn_kfp: dict[str, bytes]) -> None:
    from mlcompile.runtime.serve import parse, served_name

    isvc = yaml.safe_load(churn_kfp["serving/inference-service.yaml"])
    container = isvc["spec"]["predictor"]["containers"][0]
    args = parse(container["args"])
    assert served_name(args, {}) == isvc["metadata"]["name"] == "churn-scorer"
    assert served_name(parse(container["args"][:2]), {"K_SERVICE": "churn-scorer-predictor"}) == "churn-scorer"  # Knative's service name


# ---------------------------------------------------------------------- MLflow (Kubeflow): approved versions only


@pytest.fixture
def mlflow_registry(trained: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    """A Kubeflow-style registry (an MLflow server's URI in the config) holding version 1 of
    churn-classifier under manual approval: registered, not approved."""
    pytest.importorskip("mlflow")
    from mlcompile.runtime.registry import register

    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    monkeypatch.delenv("MLCOMPILE_TRY_UNAPPROVED", raising=False)
    monkeypatch.setenv("MLCOMPILE_ARTIFACT_ROOT", str(tmp_path / "artifacts"))
    (tmp_path / "metrics.json").write_text(json.dumps({"metrics": {"roc_auc": 0.8}}))
    registry = {"model": "churn-classifier", "tracking_uri": uri}
    params = {"model": "churn-classifier", "approval": "manual", "aliases": ["candidate"]}
    register({"system": "churn-prediction", "params": params, "registry": registry}, {"model": str(trained), "metrics": str(tmp_path / "metrics.json")}, {})
    return {"registry": registry, "platform": {"name": "kubeflow"}}


@pytest.mark.slow  # an MLflow registry (~10 s here)
@pytest.mark.filterwarnings("ignore::DeprecationWarning")  # MLflow's SQLAlchemy mappers, read in this process
def test_before_any_approval_nothing_serves_or_scores_and_a_revision_serves_the_version_it_pins(mlflow_registry: dict[str, Any]) -> None:
    from mlcompile.runtime.registry import production_model
    from mlcompile.runtime.serve import locate_model

    with pytest.raises(RuntimeError, match="no approved version of churn-classifier in the mlflow registry"):
        locate_model(None, mlflow_registry, {})  # the predictor never becomes ready
    assert production_model(mlflow_registry, "churn-classifier") is None
    batch = {**mlflow_registry, "params": {"model": "churn-classifier", "source": "activity", "output_uri": None}, "features": {}}
    with pytest.raises(DataError, match="no approved version of churn-classifier.*batch scoring uses only the approved version"):
        step_function("score_batch")(batch, {}, {})
    # a KServe revision serves the version it pins; once approved, the production version serves
    from mlcompile.runtime.registry import backend

    assert locate_model(None, mlflow_registry, {"MLCOMPILE_MODEL_VERSION": "1"}).version == "1"
    backend(mlflow_registry).set_aliases("churn-classifier", "1", ["production"])  # a person approves
    located = locate_model(None, mlflow_registry, {})
    assert located.version == "1" and "alias 'production'" in located.reason
    with pytest.raises(RuntimeError, match="churn-classifier has no version 7"):
        locate_model(None, mlflow_registry, {"MLCOMPILE_MODEL_VERSION": "7"})
