"""The launcher a kubeflow/vertex pipeline task runs for a platform job
(`python -m mlcompile.runtime.launch`), against local stand-ins of the Kubernetes API
and the Vertex AI API: placeholders become artifact URIs, the job is created from the built
manifest/body, waited for (cancelled on timeout), and a tuning job's best trial becomes the
task's model and metrics."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from requires import require

require("kfp")
sys.path.insert(0, str(Path(__file__).parent / "stand_ins"))
from kfp_kube_api import KubeStandIn  # noqa: E402
from vertex_api import VertexStandIn  # noqa: E402

from mlcompile.build import compile_system, resolve_profiles  # noqa: E402
from mlcompile.runtime import launch  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


def task(example: str, profile: str, pipeline: str, step: str, edit: Any = None) -> tuple[list[str], dict[str, Any]]:
    """The command and config of a launcher task in the built IR."""
    spec_path = ROOT / "examples" / example / "mlcompile.yaml"
    result = compile_system(
        str(spec_path), resolve_profiles(str(spec_path), [str(ROOT / "targets" / f"{profile}.yaml")]), render=True, git_commit=None
    ).results[0]
    content = next(f.content for f in result.files if f.path == f"pipelines/{pipeline}.yaml")
    container = next(d for d in yaml.safe_load_all(content) if d)["deploymentSpec"]["executors"][f"exec-{step}"]["container"]
    return container["command"], json.loads(container["args"][container["args"].index("--config") + 1])


def run(config: dict[str, Any], step: str, inputs: dict[str, str], outputs: dict[str, str]) -> int:
    argv = [step, "--config", json.dumps(config)]
    argv += [a for n, p in inputs.items() for a in ("--input", f"{n}={p}")]
    argv += [a for n, p in outputs.items() for a in ("--output", f"{n}={p}")]
    return launch.main(argv)


@pytest.fixture(autouse=True)
def fast_polls(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(launch, "POLL_SECONDS", 0.0)


def test_kfp_mount_paths_become_uris() -> None:
    assert launch.uri_of("/gcs/acme-ml-kfp/pipeline-root/run/train/model") == "gs://acme-ml-kfp/pipeline-root/run/train/model"
    assert launch.uri_of("/minio/mlpipeline/v2/x") == "minio://mlpipeline/v2/x"
    assert launch.uri_of("/tmp/local") == "/tmp/local"


def test_katib_experiment_is_created_waited_for_and_its_best_trial_becomes_the_model(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    command, config = task("ranker-gpu", "kfp-gke", "search-ranker-training", "tune")
    assert command == ["python", "-m", "mlcompile.runtime.launch", "tune"]
    model, metrics = tmp_path / "model", tmp_path / "metrics"
    with KubeStandIn() as api:
        monkeypatch.setenv("KUBECONFIG", str(api.kubeconfig(tmp_path)))
        api.optimal_trial = {"bestTrialName": "search-ranker-tune-x-7", "observation": {"metrics": [{"name": "ndcg_at_10", "latest": "0.512", "max": "0.52"}]}}
        (model / "trials" / "search-ranker-tune-x-7").mkdir(parents=True)
        (model / "trials" / "search-ranker-tune-x-7" / "weights.bin").write_bytes(b"best")
        status = run(
            config,
            "tune",
            {"train": "/gcs/b/run/train", "report": "/gcs/b/run/report", "test": "/gcs/b/run/test"},
            {"model": str(model), "metrics": str(metrics)},
        )
        assert status == 0
        ((key, created),) = api.objects.items()
    assert key.startswith("ml-pipelines/experiments/search-ranker-tune-")
    pod = created["spec"]["trialTemplate"]["trialSpec"]["spec"]["pytorchReplicaSpecs"]["Master"]["template"]["spec"]
    env = {e["name"]: e.get("value") for e in pod["containers"][0]["env"]}
    assert env["MLCOMPILE_TRAIN_DATA"] == "gs://b/run/train"  # a KFP mount path, as a URI
    assert env["MLCOMPILE_MODEL_DIR"] == f"{model}/trials/${{trialParameters.trialName}}"
    assert "ownerReferences" not in created["metadata"]  # no pod identity in the environment
    assert (model / "weights.bin").read_bytes() == b"best"
    assert json.loads(metrics.read_text()) == {"ndcg_at_10": 0.512}


def test_a_failed_pytorchjob_fails_the_task(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    command, config = task("ranker-gpu", "kfp-gke", "search-ranker-training", "tune")
    config["platform_job"]["kind"] = "kubeflow.pytorch_job"
    config["platform_job"]["manifest"] = config["platform_job"]["manifest"]["spec"]["trialTemplate"]["trialSpec"] | {
        "metadata": {"name": "search-ranker-train", "namespace": "ml-pipelines"}
    }
    with KubeStandIn() as api:
        monkeypatch.setenv("KUBECONFIG", str(api.kubeconfig(tmp_path)))
        api.final = "Failed"
        assert run(config, "train", {"train": "t", "report": "r", "test": "s"}, {"model": str(tmp_path / "m"), "metrics": str(tmp_path / "x")}) == 1
    assert "pytorchjobs/search-ranker-train-" in capsys.readouterr().err


def test_a_job_past_its_timeout_is_cancelled(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    command, config = task("churn", "gcp-prod", "churn-prediction-training", "train")
    config["platform_job"]["timeout_seconds"] = 0
    with VertexStandIn() as api:
        monkeypatch.setenv("MLCOMPILE_VERTEX_API_ENDPOINT", api.endpoint)
        api.final_state = "RUNNING_FOREVER"
        assert run(config, "train", {"train": "/gcs/b/t", "report": "/gcs/b/r", "test": "/gcs/b/s"}, {"model": "/gcs/b/m", "metrics": "/gcs/b/x"}) == 1
        ((name, job),) = api.jobs.items()
    assert job["state"] == "JOB_STATE_CANCELLED"


def test_vertex_custom_job_is_created_from_the_built_body_with_artifact_uris(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    command, config = task("churn", "gcp-prod", "churn-prediction-training", "train")
    assert command == ["python", "-m", "mlcompile.runtime.launch", "train"]
    with VertexStandIn() as api:
        monkeypatch.setenv("MLCOMPILE_VERTEX_API_ENDPOINT", api.endpoint)
        status = run(
            config,
            "train",
            {"train": "/gcs/b/run/train", "report": "/gcs/b/run/report", "test": "/gcs/b/run/test"},
            {"model": "/gcs/b/run/model", "metrics": "/gcs/b/run/metrics"},
        )
        assert status == 0
        ((name, job),) = api.jobs.items()
    assert name == "projects/acme-ml-prod/locations/us-central1/customJobs/1"
    (pool,) = job["jobSpec"]["workerPoolSpecs"]
    assert pool["machineSpec"]["machineType"] == "e2-standard-4"
    args = pool["containerSpec"]["args"]
    assert "train=gs://b/run/train" in args and "model=gs://b/run/model" in args


def test_vertex_tuning_copies_the_best_trials_model_and_metrics(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    command, config = task("ranker-gpu", "gcp-prod", "search-ranker-training", "tune")
    base = tmp_path / "trials"
    config["platform_job"]["body"]["trialJobSpec"]["baseOutputDirectory"]["outputUriPrefix"] = str(base)
    for trial in ("1", "2"):
        (base / trial / "model").mkdir(parents=True)
        (base / trial / "model" / "weights.bin").write_bytes(f"trial {trial}".encode())
        # the trial's metrics file, beside its AIP_MODEL_DIR: where the secondary metrics are
        (base / trial / "metrics.json").write_text(json.dumps({"ndcg_at_10": 0.4, "map_at_10": 0.2 + int(trial) / 10}))
    model, metrics = tmp_path / "model", tmp_path / "metrics"
    monkeypatch.setenv("MLCOMPILE_SECRET_SEARCH_HF_READ_TOKEN", "hf-test-token")  # else Secret Manager
    with VertexStandIn() as api:
        monkeypatch.setenv("MLCOMPILE_VERTEX_API_ENDPOINT", api.endpoint)
        api.trials = [
            {"id": "1", "state": "SUCCEEDED", "finalMeasurement": {"metrics": [{"metricId": "ndcg_at_10", "value": 0.41}]}},
            {"id": "2", "state": "SUCCEEDED", "finalMeasurement": {"metrics": [{"metricId": "ndcg_at_10", "value": 0.47}]}},
        ]
        status = run(config, "tune", {"train": "/gcs/b/t", "report": "/gcs/b/r", "test": "/gcs/b/s"}, {"model": str(model), "metrics": str(metrics)})
        assert status == 0
        ((name, job),) = api.jobs.items()
    assert "/hyperparameterTuningJobs/" in name and job["maxTrialCount"] == 24
    env = {e["name"]: e["value"] for e in job["trialJobSpec"]["workerPoolSpecs"][0]["containerSpec"]["env"]}
    assert env["HF_TOKEN"] == "hf-test-token" and env["MLCOMPILE_TRAIN_DATA"] == "gs://b/t"
    # trials share no output: each writes to the AIP_MODEL_DIR Vertex AI gives it
    assert "MLCOMPILE_MODEL_DIR" not in env and "MLCOMPILE_METRICS" not in env
    assert (model / "weights.bin").read_bytes() == b"trial 2"  # maximize ndcg_at_10
    # the study's measurement of the objective, and the best trial's secondary metric
    assert json.loads(metrics.read_text()) == {"ndcg_at_10": 0.47, "map_at_10": 0.4}


def test_each_launch_of_a_vertex_job_writes_under_its_own_run_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    command, config = task("churn", "gcp-prod", "churn-prediction-training", "train")
    built = config["platform_job"]["body"]["jobSpec"]["baseOutputDirectory"]["outputUriPrefix"]
    assert built == "gs://acme-ml-prod-pipelines/root/churn-prediction/jobs/{{$.pipeline_job_uuid}}/train"  # KFP fills in the run's id
    with VertexStandIn() as api:
        monkeypatch.setenv("MLCOMPILE_VERTEX_API_ENDPOINT", api.endpoint)
        for _ in range(2):  # a runner that left the placeholder: each launch still gets its own folder
            assert run(config, "train", {"train": "/gcs/b/t", "report": "/gcs/b/r", "test": "/gcs/b/s"}, {"model": "/gcs/b/m", "metrics": "/gcs/b/x"}) == 0
        prefixes = [job["jobSpec"]["baseOutputDirectory"]["outputUriPrefix"] for job in api.jobs.values()]
    assert len(set(prefixes)) == 2 and not any("{{" in p for p in prefixes)


def _terminate_soon() -> None:
    import os
    import signal
    import threading

    threading.Timer(0.5, os.kill, (os.getpid(), signal.SIGTERM)).start()


def test_a_cancelled_run_deletes_the_katib_experiment_it_launched(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    command, config = task("ranker-gpu", "kfp-gke", "search-ranker-training", "tune")
    monkeypatch.setattr(launch, "POLL_SECONDS", 0.05)
    with KubeStandIn() as api:
        monkeypatch.setenv("KUBECONFIG", str(api.kubeconfig(tmp_path)))
        api.final = "Running"
        _terminate_soon()
        status = run(config, "tune", {"train": "t", "report": "r", "test": "s"}, {"model": str(tmp_path / "m"), "metrics": str(tmp_path / "x")})
        assert status == 143 and api.objects == {}
        assert any(method == "DELETE" and "/experiments/search-ranker-tune-" in path for method, path in api.calls)
    assert "terminated" in capsys.readouterr().err


def test_a_cancelled_run_cancels_the_vertex_tuning_job_it_launched(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    command, config = task("ranker-gpu", "gcp-prod", "search-ranker-training", "tune")
    monkeypatch.setattr(launch, "POLL_SECONDS", 0.05)
    monkeypatch.setenv("MLCOMPILE_SECRET_SEARCH_HF_READ_TOKEN", "hf-test-token")
    with VertexStandIn() as api:
        monkeypatch.setenv("MLCOMPILE_VERTEX_API_ENDPOINT", api.endpoint)
        api.final_state = "RUNNING_FOREVER"
        _terminate_soon()
        assert (
            run(config, "tune", {"train": "/gcs/b/t", "report": "/gcs/b/r", "test": "/gcs/b/s"}, {"model": str(tmp_path / "m"), "metrics": str(tmp_path / "x")})
            == 143
        )
        ((name, job),) = api.jobs.items()
    assert "/hyperparameterTuningJobs/" in name and job["state"] == "JOB_STATE_CANCELLED"


def test_the_experiment_is_owned_by_the_launcher_pod_so_kubernetes_collects_it(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    command, config = task("ranker-gpu", "kfp-gke", "search-ranker-training", "tune")
    monkeypatch.setenv("MLCOMPILE_POD_NAME", "search-ranker-training-x7k2-system-container-impl-123")
    monkeypatch.setenv("MLCOMPILE_POD_UID", "5f0c1c9e-0000-4000-8000-000000000001")
    with KubeStandIn() as api:
        monkeypatch.setenv("KUBECONFIG", str(api.kubeconfig(tmp_path)))
        api.optimal_trial = {"bestTrialName": "t-1", "observation": {"metrics": [{"name": "ndcg_at_10", "latest": "0.5"}]}}
        (tmp_path / "m" / "trials" / "t-1").mkdir(parents=True)
        assert run(config, "tune", {"train": "t", "report": "r", "test": "s"}, {"model": str(tmp_path / "m"), "metrics": str(tmp_path / "x")}) == 0
        ((key, created),) = api.objects.items()
    assert created["metadata"]["ownerReferences"] == [
        {"apiVersion": "v1", "kind": "Pod", "name": "search-ranker-training-x7k2-system-container-impl-123", "uid": "5f0c1c9e-0000-4000-8000-000000000001"}
    ]


def test_the_launcher_task_learns_its_pod_name_and_uid_from_the_downward_api() -> None:
    spec_path = ROOT / "examples/ranker-gpu/mlcompile.yaml"
    result = compile_system(str(spec_path), resolve_profiles(str(spec_path), [str(ROOT / "targets/kfp-gke.yaml")]), render=True, git_commit=None).results[0]
    content = next(f.content for f in result.files if f.path == "pipelines/search-ranker-training.yaml")
    platform = [d for d in yaml.safe_load_all(content) if d][1]["platforms"]["kubernetes"]["deploymentSpec"]["executors"]["exec-tune"]
    assert {e["name"]: e["fieldPath"] for e in platform["fieldPathAsEnv"]} == {"MLCOMPILE_POD_NAME": "metadata.name", "MLCOMPILE_POD_UID": "metadata.uid"}


def model_and_metrics(folder: Path, content: str) -> dict[str, str]:
    """A task's model folder (what the trainer wrote) and evaluation metrics, as the register task reads them."""
    (folder / "model").mkdir(parents=True)
    (folder / "model" / "model.json").write_text(json.dumps({"format": "mlcompile.container/1", "note": content}))
    (folder / "metrics.json").write_text(json.dumps({"metrics": {"roc_auc": 0.8}}))
    return {"model": str(folder / "model"), "metrics": str(folder / "metrics.json")}


def test_vertex_registration_uploads_a_model_then_new_versions_with_aliases(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    command, config = task("churn", "gcp-prod", "churn-prediction-training", "register")
    assert command == ["python", "-m", "mlcompile.runtime.launch", "register"]
    with VertexStandIn() as api:
        monkeypatch.setenv("MLCOMPILE_VERTEX_API_ENDPOINT", api.endpoint)
        for run_number in range(2):
            assert run(config, "register", model_and_metrics(tmp_path / f"run{run_number}", f"training {run_number}"), {}) == 0
        (name,) = api.models
        first, second = api.models[name]["versions"]
    assert name == "projects/acme-ml-prod/locations/us-central1/models/churn-classifier"
    assert first["request"]["modelId"] == "churn-classifier" and "parentModel" not in first["request"]
    assert second["request"]["parentModel"] == name  # a new version of the same model
    assert first["request"]["model"]["artifactUri"] == str(tmp_path / "run0" / "model")
    # approval manual: production is a human's move; an alias names one version, the newest
    # candidate; Vertex gives the first version of a model the alias "default"
    assert (first["aliases"], second["aliases"]) == (["default"], ["candidate"])
    assert first["request"]["model"]["labels"]["mlcompile-system"] == "churn-prediction"
    from mlcompile.runtime.registry_vertex import _artifact_uri

    assert _artifact_uri("/gcs/acme/run/train/model") == "gs://acme/run/train/model"  # a KFP task's mount of the bucket


def test_vertex_registration_with_auto_approval_also_marks_production(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    command, config = task("batch-scoring", "gcp-prod", "invoice-late-payment-training", "register")
    with VertexStandIn() as api:
        monkeypatch.setenv("MLCOMPILE_VERTEX_API_ENDPOINT", api.endpoint)
        assert run(config, "register", model_and_metrics(tmp_path, "one training"), {}) == 0
        ((name, model),) = api.models.items()
    assert sorted(model["versions"][0]["aliases"]) == ["candidate", "default", "production"]
