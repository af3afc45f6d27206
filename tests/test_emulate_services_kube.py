"""The emulated Kubernetes API, driven by the `kubernetes` client's CustomObjectsApi: a Katib
Experiment runs trials with Katib's substitution (`${trialParameters.X}` only, a reference to a
search parameter or to trial metadata) and collects metrics as Katib's collectors do; a
PyTorchJob's replicas each see their RANK; a KServe InferenceService splits traffic between
revisions by its canary percent."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).parent))
from emulate_services_support import REPLICA, TRAINER_IMAGE, emulation, wait_for  # noqa: E402

from mlcompile.emulate.services.kube import KubeService  # noqa: E402

pytestmark = pytest.mark.emulate
kubernetes = pytest.importorskip("kubernetes")

NS = "ml"


def custom_objects(api: KubeService, tmp_path: Path) -> Any:
    client = kubernetes.config.new_client_from_config(config_file=str(api.kubeconfig(tmp_path / "kube")))
    return kubernetes.client.CustomObjectsApi(client)


def ended(obj: dict[str, Any]) -> bool:
    return any(c["type"] in ("Succeeded", "Failed") and c["status"] == "True" for c in (obj.get("status") or {}).get("conditions", []))


def experiment(env: list[dict[str, str]], trial_parameters: list[dict[str, str]], **spec: Any) -> dict[str, Any]:
    container = {"name": "training", "image": TRAINER_IMAGE, "args": ["--lr=${trialParameters.learningRate}"], "env": env}
    trial = {"apiVersion": "batch/v1", "kind": "Job", "spec": {"template": {"spec": {"containers": [container], "restartPolicy": "Never"}}}}
    return {
        "apiVersion": "kubeflow.org/v1beta1",
        "kind": "Experiment",
        "metadata": {"name": "tune", "namespace": NS},
        "spec": {
            "objective": {"type": "maximize", "objectiveMetricName": "accuracy", "additionalMetricNames": ["loss"]},
            "algorithm": {"algorithmName": "grid"},
            "parameters": [{"name": "lr", "parameterType": "discrete", "feasibleSpace": {"list": ["0.1", "0.3", "0.5"]}}],
            "maxTrialCount": 3,
            "parallelTrialCount": 2,
            "trialTemplate": {
                "primaryContainerName": "training",
                "trialParameters": [{"name": "learningRate", "reference": "lr"}, *trial_parameters],
                "trialSpec": trial,
            },
            **spec,
        },
    }


def run_experiment(api: KubeService, tmp_path: Path, body: dict[str, Any]) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    objects = custom_objects(api, tmp_path)
    objects.create_namespaced_custom_object("kubeflow.org", "v1beta1", NS, "experiments", body)
    done = wait_for(lambda: objects.get_namespaced_custom_object("kubeflow.org", "v1beta1", NS, "experiments", "tune"), ended)
    trials = objects.list_namespaced_custom_object("kubeflow.org", "v1beta1", NS, "trials", label_selector="katib.kubeflow.org/experiment=tune")["items"]
    return done, trials


def test_a_katib_experiment_runs_distinct_trials_and_finds_the_best(tmp_path: Path) -> None:
    body = experiment(
        [{"name": "MODEL_URI", "value": "gs://acme/katib/${trialParameters.trialName}"}], [{"name": "trialName", "reference": "${trialSpec.Name}"}]
    )
    with KubeService(emulation(tmp_path)) as api:
        done, trials = run_experiment(api, tmp_path, body)
    status = done["status"]
    assert [c["type"] for c in status["conditions"] if c["status"] == "True"] == ["Created", "Succeeded"]
    assert status["conditions"][-1]["reason"] == "ExperimentMaxTrialsReached" and status["trialsSucceeded"] == 3
    names = [t["metadata"]["name"] for t in trials]
    assert len(set(names)) == 3 and all(n.startswith("tune-") for n in names)
    for trial in trials:  # each trial's model under its own name, trained with its own value
        lr = trial["spec"]["parameterAssignments"][0]["value"]
        written = json.loads((tmp_path / "gcs" / "acme" / "katib" / trial["metadata"]["name"] / "model.json").read_text())
        assert written["lr"] == float(lr)
    optimal = status["currentOptimalTrial"]
    assert optimal["parameterAssignments"] == [{"name": "lr", "value": "0.3"}]
    assert {m["name"]: m["latest"] for m in optimal["observation"]["metrics"]} == {"accuracy": "1", "loss": "0"}


def test_trial_metadata_used_directly_in_the_template_is_not_substituted(tmp_path: Path) -> None:
    body = experiment([{"name": "MODEL_URI", "value": "gs://acme/katib/${trialSpec.Name}"}], [], maxTrialCount=1)
    with KubeService(emulation(tmp_path)) as api:
        done, _ = run_experiment(api, tmp_path, body)
    assert done["status"]["trialsSucceeded"] == 1
    assert (tmp_path / "gcs" / "acme" / "katib" / "${trialSpec.Name}" / "model.json").is_file()  # one literal folder for every trial


def test_metrics_from_a_file_collector_with_the_experiments_filter(tmp_path: Path) -> None:
    write = "import json, os, sys; lr = float(sys.argv[1].split('=')[1]); open(os.environ['METRICS'], 'w').write(json.dumps({'accuracy': 1 - lr, 'loss': lr}))"
    body = experiment([{"name": "METRICS", "value": "/var/log/katib/metrics.json"}], [], maxTrialCount=2, parallelTrialCount=1)
    body["spec"]["trialTemplate"]["trialSpec"]["spec"]["template"]["spec"]["containers"][0]["command"] = ["python", "-c", write]
    body["spec"]["metricsCollectorSpec"] = {
        "collector": {"kind": "File"},
        "source": {
            "fileSystemPath": {"path": "/var/log/katib/metrics.json", "kind": "File", "format": "TEXT"},
            "filter": {"metricsFormat": [r'"([A-Za-z0-9_.-]+)"\s*:\s*"?([+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?)']},
        },
    }
    with KubeService(emulation(tmp_path)) as api:
        done, trials = run_experiment(api, tmp_path, body)
    optimal = done["status"]["currentOptimalTrial"]
    assert optimal["parameterAssignments"] == [{"name": "lr", "value": "0.1"}]
    assert {m["name"]: m["latest"] for m in optimal["observation"]["metrics"]} == {"accuracy": "0.9", "loss": "0.1"}


def test_a_trial_parameter_the_template_does_not_use_is_refused(tmp_path: Path) -> None:
    body = experiment([], [{"name": "unused", "reference": "lr"}])
    with KubeService(emulation(tmp_path)) as api:
        objects = custom_objects(api, tmp_path)
        with pytest.raises(kubernetes.client.ApiException) as refused:
            objects.create_namespaced_custom_object("kubeflow.org", "v1beta1", NS, "experiments", body)
    assert refused.value.status == 400 and "trialParameters ['unused'] are not used in trialSpec" in refused.value.body


def test_a_pytorchjobs_replicas_each_see_their_rank(tmp_path: Path) -> None:
    def replica(count: int) -> dict[str, Any]:
        return {"replicas": count, "template": {"spec": {"containers": [{"name": "pytorch", "image": TRAINER_IMAGE, "command": ["python", "-c", REPLICA]}]}}}

    job = {
        "apiVersion": "kubeflow.org/v1",
        "kind": "PyTorchJob",
        "metadata": {"name": "train", "namespace": NS},
        "spec": {"pytorchReplicaSpecs": {"Master": replica(1), "Worker": replica(2)}},
    }
    with KubeService(emulation(tmp_path)) as api:
        objects = custom_objects(api, tmp_path)
        objects.create_namespaced_custom_object("kubeflow.org", "v1", NS, "pytorchjobs", job)
        done = wait_for(lambda: objects.get_namespaced_custom_object("kubeflow.org", "v1", NS, "pytorchjobs", "train"), ended)
    assert done["status"]["conditions"][-1]["type"] == "Succeeded" and done["status"]["replicaStatuses"]["Worker"] == {"succeeded": 2}
    folder = tmp_path / "platform" / "kubernetes" / NS / "pytorchjobs" / "train"
    seen = {log.stem: json.loads(log.read_text().splitlines()[-1]) for log in folder.glob("*/*.log")}
    assert {name: env["RANK"] for name, env in seen.items()} == {"master-0": "0", "worker-0": "1", "worker-1": "2"}
    assert {(env["MASTER_ADDR"], env["MASTER_PORT"], env["WORLD_SIZE"]) for env in seen.values()} == {("127.0.0.1", seen["master-0"]["MASTER_PORT"], "3")}


def test_an_inference_service_splits_traffic_by_its_canary_percent(tmp_path: Path) -> None:
    def service(version: str, canary: int | None) -> dict[str, Any]:
        predictor: dict[str, Any] = {"model": {"modelFormat": {"name": "mlflow"}, "storageUri": f"gs://acme/models/{version}"}}
        if canary is not None:
            predictor["canaryTrafficPercent"] = canary
        return {
            "apiVersion": "serving.kserve.io/v1beta1",
            "kind": "InferenceService",
            "metadata": {"name": "scorer", "namespace": NS},
            "spec": {"predictor": predictor},
        }

    def traffic(objects: Any) -> list[tuple[str, int]]:
        status = objects.get_namespaced_custom_object("serving.kserve.io", "v1beta1", NS, "inferenceservices", "scorer")["status"]
        assert {c["type"]: c["status"] for c in status["conditions"]}["Ready"] == "True"
        return [(t["revisionName"], t["percent"]) for t in status["components"]["predictor"]["traffic"]]

    with KubeService() as api:
        objects = custom_objects(api, tmp_path)
        objects.create_namespaced_custom_object("serving.kserve.io", "v1beta1", NS, "inferenceservices", service("1", None))
        assert traffic(objects) == [("scorer-predictor-00001", 100)]
        objects.patch_namespaced_custom_object("serving.kserve.io", "v1beta1", NS, "inferenceservices", "scorer", service("2", 10))  # an approved version 2
        assert traffic(objects) == [("scorer-predictor-00002", 10), ("scorer-predictor-00001", 90)]
        promoted = service("2", None)
        promoted["spec"]["predictor"]["canaryTrafficPercent"] = None  # merge patch: remove the canary share
        objects.patch_namespaced_custom_object("serving.kserve.io", "v1beta1", NS, "inferenceservices", "scorer", promoted)
        assert traffic(objects) == [("scorer-predictor-00002", 100)]
        revisions = [r["predictor"]["model"]["storageUri"] for r in api.revisions[f"{NS}/inferenceservices/scorer"]]
        stale = objects.get_namespaced_custom_object("serving.kserve.io", "v1beta1", NS, "inferenceservices", "scorer")
        objects.patch_namespaced_custom_object("serving.kserve.io", "v1beta1", NS, "inferenceservices", "scorer", {"metadata": {"labels": {"team": "growth"}}})
        with pytest.raises(kubernetes.client.ApiException) as conflict:  # a replace of what someone else changed since
            objects.replace_namespaced_custom_object("serving.kserve.io", "v1beta1", NS, "inferenceservices", "scorer", stale)
    assert revisions == ["gs://acme/models/1", "gs://acme/models/2"]
    assert conflict.value.status == 409


def test_a_deleted_experiment_starts_no_more_trials(tmp_path: Path) -> None:
    body = experiment([{"name": "MODEL_URI", "value": "gs://acme/katib/model"}], [], parallelTrialCount=1)
    body["spec"]["trialTemplate"]["trialSpec"]["spec"]["template"]["spec"]["containers"][0]["command"] = ["python", "-c", "import time; time.sleep(1.5)"]
    with KubeService(emulation(tmp_path)) as api:
        objects = custom_objects(api, tmp_path)
        objects.create_namespaced_custom_object("kubeflow.org", "v1beta1", NS, "experiments", body)
        wait_for(lambda: objects.list_namespaced_custom_object("kubeflow.org", "v1beta1", NS, "trials")["items"], bool)
        objects.delete_namespaced_custom_object("kubeflow.org", "v1beta1", NS, "experiments", "tune")
        assert api.execution is not None and api.execution.wait(30)
        trials = objects.list_namespaced_custom_object("kubeflow.org", "v1beta1", NS, "trials")["items"]
    assert len(trials) == 1
