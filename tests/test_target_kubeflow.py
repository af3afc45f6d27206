"""The kubeflow target: what a build contains, read back through the platform SDKs' own
strict parsers (kfp's PipelineSpec/PlatformSpec protos, kubeflow-training's PyTorchJob
model, the KServe/Katib SDK models, kubernetes' CronJob, kfp_server_api's RecurringRun),
and what it refuses."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from requires import require

require("kfp", "kfp.kubernetes", "kubeflow.training")

sys.path.insert(0, str(Path(__file__).parent / "stand_ins"))
import kfp_strict  # noqa: E402
from build_support import EXAMPLES, ROOT, build  # noqa: E402

from mlcompile.errors import SpecError  # noqa: E402


@pytest.fixture(scope="module")
def builds() -> dict[str, dict[str, tuple[str, bytes]]]:
    return {ex: build(ROOT / "examples" / ex / "mlcompile.yaml", ROOT / "targets" / "kfp-gke.yaml") for ex in EXAMPLES}


def documents(content: bytes) -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load_all(content) if d is not None]


def executor_config(build_files: dict[str, tuple[str, bytes]], pipeline: str, task: str) -> dict[str, Any]:
    spec = documents(build_files[f"pipelines/{pipeline}.yaml"][1])[0]
    args = spec["deploymentSpec"]["executors"][f"exec-{task}"]["container"]["args"]
    return json.loads(args[args.index("--config") + 1])


# ------------------------------------------------------------------ strict parsing


@pytest.mark.parametrize("example", EXAMPLES)
def test_every_pipeline_spec_parses_strictly_with_its_platform_spec(example: str, builds: dict) -> None:
    specs = {p: c for p, (k, c) in builds[example].items() if k == "kfp.pipeline_spec"}
    assert specs
    for path, content in specs.items():
        spec, platform = kfp_strict.parse_pipeline_spec(content.decode())
        assert spec.pipeline_info.name == Path(path).stem
        assert spec.sdk_version == "kfp-2.17.3"
        if path.endswith("-training.yaml"):
            assert platform is not None and "kubernetes" in platform.platforms  # timeouts at least


@pytest.mark.parametrize("example", EXAMPLES)
def test_every_manifest_parses_into_its_sdk_model(example: str, builds: dict) -> None:
    models = {
        "kserve.inference_service": "V1beta1InferenceService",
        "katib.experiment": "V1beta1Experiment",
        "kubeflow.pytorch_job": "KubeflowOrgV1PyTorchJob",
        "kubernetes.cron_job": "V1CronJob",
        "kfp.recurring_run": "V2beta1RecurringRun",
    }
    kinds = set()
    for path, (kind, content) in builds[example].items():
        kinds.add(kind)
        if kind in ("kfp.pipeline_spec", "mlcompile.cost_estimate"):  # the IR is parsed above; the estimate is mlcompile's own (tests/test_cost.py)
            continue
        if kind.startswith("feast."):
            continue  # the Feast repo is loaded by Feast itself: tests/test_feature_store_feast.py
        if kind == "prometheus_operator.alertmanager_config":
            continue  # no SDK model: its route is checked against an Alertmanager stand-in (tests/test_platform_feedback.py)
        data = json.loads(content) if path.endswith(".json") else yaml.safe_load(content)
        kfp_strict.check_model(data, models[kind])
    assert kinds <= {
        "kfp.pipeline_spec",
        "mlcompile.cost_estimate",
        "feast.feature_store_config",
        "feast.repo",
        "prometheus_operator.alertmanager_config",
        *models,
    }


def test_a_typo_in_a_manifest_is_caught_by_the_strict_parser(builds: dict) -> None:
    isvc = yaml.safe_load(builds["churn"]["serving/inference-service.yaml"][1])
    isvc["spec"]["predictor"]["canaryTrafficPercnt"] = isvc["spec"]["predictor"].pop("canaryTrafficPercent")
    with pytest.raises(AssertionError, match="canaryTrafficPercnt"):
        kfp_strict.check_model(isvc, "V1beta1InferenceService")
    spec = documents(builds["churn"]["pipelines/churn-prediction-training.yaml"][1])[0]
    spec["deploymentSpec"]["executors"]["exec-train"]["container"]["resources"]["acceleratorr"] = {}
    with pytest.raises(Exception, match="acceleratorr"):
        kfp_strict.parse_pipeline_spec(yaml.safe_dump(spec))


# ------------------------------------------------------------------ training pipeline


def test_gates_guard_registration_with_dsl_if(builds: dict) -> None:
    spec = documents(builds["churn"]["pipelines/churn-prediction-training.yaml"][1])[0]
    root = spec["root"]["dag"]["tasks"]
    assert "register" not in root  # only inside the condition
    (condition,) = [t for t in root.values() if "triggerPolicy" in t]
    assert condition["triggerPolicy"]["condition"] == "inputs.parameter_values['pipelinechannel--gate-decision'] == true"
    assert condition["inputs"]["parameters"]["pipelinechannel--gate-decision"]["taskOutputParameter"] == {
        "outputParameterKey": "decision",
        "producerTask": "gate",
    }
    branch = spec["components"][condition["componentRef"]["name"]]["dag"]["tasks"]
    assert set(branch) == {"register"}
    assert spec["components"]["comp-gate"]["outputDefinitions"]["parameters"]["decision"]["parameterType"] == "BOOLEAN"


def test_artifacts_between_steps_are_typed(builds: dict) -> None:
    spec = documents(builds["churn"]["pipelines/churn-prediction-training.yaml"][1])[0]
    outputs = spec["components"]["comp-train"]["outputDefinitions"]["artifacts"]
    assert outputs["model"]["artifactType"]["schemaTitle"] == "system.Model"
    assert outputs["metrics"]["artifactType"]["schemaTitle"] == "system.Metrics"
    inputs = spec["components"]["comp-train"]["inputDefinitions"]["artifacts"]
    assert inputs["train"]["artifactType"]["schemaTitle"] == "system.Dataset"


def test_champion_challenger_gate_reads_the_production_models_metric_from_the_profiles_registry(builds: dict) -> None:
    config = executor_config(builds["churn"], "churn-prediction-training", "gate")
    assert {"comparison": "min_delta_vs_production", "metric": "roc_auc", "threshold": 0.0} in config["gates"]
    assert config["platform"]["registry"] == {"kind": "mlflow", "uri": "http://mlflow.ml.svc:5000"}
    assert config["registry"]["model"] == "churn-classifier"


def test_standard_steps_get_cpu_memory_and_timeout(builds: dict) -> None:
    docs = documents(builds["churn"]["pipelines/churn-prediction-training.yaml"][1])
    train = docs[0]["deploymentSpec"]["executors"]["exec-train"]["container"]
    assert train["resources"]["resourceCpuLimit"] == "4" and train["resources"]["resourceMemoryLimit"] == "16Gi"
    assert train["command"] == ["python", "-m", "mlcompile.runtime", "train"]
    assert docs[1]["platforms"]["kubernetes"]["deploymentSpec"]["executors"]["exec-train"]["activeDeadlineSeconds"] == "3600"


def test_distributed_gpu_tuning_is_a_katib_experiment_over_a_pytorchjob_on_gke_spot_a100s(builds: dict) -> None:
    experiment = yaml.safe_load(builds["ranker-gpu"]["training/tune-experiment.yaml"][1])
    assert builds["ranker-gpu"]["training/tune-experiment.yaml"][0] == "katib.experiment"
    spec = experiment["spec"]
    assert spec["algorithm"] == {"algorithmName": "bayesianoptimization"}
    assert (spec["maxTrialCount"], spec["parallelTrialCount"]) == (24, 3)
    assert spec["objective"] == {"type": "maximize", "objectiveMetricName": "ndcg_at_10", "additionalMetricNames": ["map_at_10"]}
    params = {p["name"]: p for p in spec["parameters"]}
    assert params["learning_rate"] == {
        "name": "learning_rate",
        "parameterType": "double",
        "feasibleSpace": {"min": "1e-05", "max": "0.001", "distribution": "logUniform"},
    }
    assert params["loss"]["feasibleSpace"]["list"] == ["lambdarank", "listnet", "softmax_ce"]
    trial = spec["trialTemplate"]["trialSpec"]
    job = kfp_strict.deserialize_training({**trial, "metadata": {"name": "trial"}}, "KubeflowOrgV1PyTorchJob")
    replicas = job.spec.pytorch_replica_specs
    assert (replicas["Master"].replicas, replicas["Worker"].replicas) == (1, 1)  # replicas: 2
    pod = replicas["Worker"].template.spec
    assert pod.containers[0].resources.limits["nvidia.com/gpu"] == "8"
    assert pod.node_selector == {"cloud.google.com/gke-accelerator": "nvidia-tesla-a100", "cloud.google.com/gke-spot": "true"}
    assert {t.key for t in pod.tolerations} == {"nvidia.com/gpu", "cloud.google.com/gke-spot"}
    assert job.spec.run_policy.active_deadline_seconds == 43200
    env = {e.name: e for e in pod.containers[0].env}
    assert env["HF_TOKEN"].value_from.secret_key_ref.name == "search-hf-read-token"
    assert "${trialParameters.learningRate}" in env["MLCOMPILE_HYPERPARAMETERS"].value
    assert env["MLCOMPILE_MODEL_DIR"].value == "{{outputs.model}}/trials/${trialParameters.trialName}"  # one folder per trial


def katib_placeholders(value: Any) -> set[str]:
    """Every ${...} a trial template holds: Katib replaces ${trialParameters.NAME} only."""
    import re

    return set(re.findall(r"\$\{([^}]*)\}", json.dumps(value)))


def test_katib_trials_get_their_own_folder_through_a_trial_parameter_bound_to_the_trial_name(builds: dict) -> None:
    template = yaml.safe_load(builds["ranker-gpu"]["training/tune-experiment.yaml"][1])["spec"]["trialTemplate"]
    defined = {p["name"]: p["reference"] for p in template["trialParameters"]}
    assert defined["trialName"] == "${trialSpec.Name}"  # the metadata reference Katib resolves per trial
    used = katib_placeholders(template["trialSpec"])
    assert used and all(u.startswith("trialParameters.") for u in used), used
    assert {u.removeprefix("trialParameters.") for u in used} == set(defined)


def test_katib_collects_the_secondary_metrics_from_the_master_pod_of_trial_pods_without_istio(builds: dict) -> None:
    spec = yaml.safe_load(builds["ranker-gpu"]["training/tune-experiment.yaml"][1])["spec"]
    assert spec["objective"]["additionalMetricNames"] == ["map_at_10"]
    template = spec["trialTemplate"]
    assert template["primaryPodLabels"] == {"training.kubeflow.org/job-role": "master"}  # the operator labels the Master pod so
    assert template["successCondition"] == 'status.conditions.#(type=="Succeeded")#|#(status=="True")#'
    for replica in template["trialSpec"]["spec"]["pytorchReplicaSpecs"].values():
        assert replica["template"]["metadata"]["annotations"] == {"sidecar.istio.io/inject": "false"}


def test_the_tuning_launcher_may_wait_for_every_wave_of_trials(builds: dict) -> None:
    platform = documents(builds["ranker-gpu"]["pipelines/search-ranker-training.yaml"][1])[1]
    executors = platform["platforms"]["kubernetes"]["deploymentSpec"]["executors"]
    assert executors["exec-tune"]["activeDeadlineSeconds"] == str(12 * 3600 * 8)  # 12h x ceil(24 / 3)
    assert executors["exec-evaluate"]["activeDeadlineSeconds"] == "3600"


def test_the_pipeline_task_launches_the_experiment_from_its_manifest(builds: dict) -> None:
    config = executor_config(builds["ranker-gpu"], "search-ranker-training", "tune")
    experiment = yaml.safe_load(builds["ranker-gpu"]["training/tune-experiment.yaml"][1])
    assert config["platform_job"] == {"kind": "katib.experiment", "manifest": experiment, "timeout_seconds": 43200 * 8}  # 24 trials, 3 at a time


# ------------------------------------------------------------------ serving


def test_kserve_inference_service_has_canary_percent_and_autoscaling(builds: dict) -> None:
    kind, content = builds["churn"]["serving/inference-service.yaml"]
    assert kind == "kserve.inference_service"
    predictor = yaml.safe_load(content)["spec"]["predictor"]
    assert predictor["canaryTrafficPercent"] == 10
    assert (predictor["minReplicas"], predictor["maxReplicas"]) == (2, 6)
    assert (predictor["scaleMetric"], predictor["scaleTarget"]) == ("cpu", 60)
    assert predictor["timeout"] == 2


def test_blue_green_on_kserve_is_a_zero_traffic_revision_with_tag_routing_on_a_t4(builds: dict) -> None:
    isvc = yaml.safe_load(builds["ranker-gpu"]["serving/inference-service.yaml"][1])
    predictor = isvc["spec"]["predictor"]
    assert predictor["canaryTrafficPercent"] == 0
    assert isvc["metadata"]["annotations"] == {"mlcompile/owner": "search-relevance@acme.example", "serving.kserve.io/enable-tag-routing": "true"}
    assert (predictor["scaleMetric"], predictor["scaleTarget"]) == ("rps", 40)
    assert predictor["containers"][0]["resources"]["limits"]["nvidia.com/gpu"] == "1"
    assert predictor["nodeSelector"] == {"cloud.google.com/gke-accelerator": "nvidia-tesla-t4"}


# ------------------------------------------------------------------ schedules, monitoring


def test_utc_schedules_are_kfp_recurring_runs_with_six_field_cron(builds: dict) -> None:
    kind, content = builds["churn"]["schedules/churn-prediction-retraining.json"]
    body = json.loads(content)
    assert kind == "kfp.recurring_run"
    assert body["trigger"] == {"cron_schedule": {"cron": "0 0 2 * * 1"}}
    assert body["max_concurrency"] == "1" and body["no_catchup"] is True


def test_a_schedule_outside_utc_becomes_a_cronjob_with_its_time_zone(builds: dict) -> None:
    kind, content = builds["batch-scoring"]["schedules/invoice-late-payment-batch-scoring-cronjob.yaml"]
    assert kind == "kubernetes.cron_job"
    cron = yaml.safe_load(content)
    assert (cron["spec"]["schedule"], cron["spec"]["timeZone"]) == ("0 6 * * 1-5", "Europe/Berlin")
    container = cron["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"][0]
    assert json.loads(container["args"][1])["params"]["pipeline"] == "invoice-late-payment-batch-scoring"


def test_monitoring_breach_starts_the_training_pipeline(builds: dict) -> None:
    spec = documents(builds["churn"]["pipelines/churn-prediction-monitoring.yaml"][1])[0]
    branches = spec["components"]["comp-condition-branches-1"]["dag"]["tasks"]
    conditions = sorted(b["triggerPolicy"]["condition"] for b in branches.values())
    assert conditions == [  # drift breached; else performance breached (KFP has no OR)
        "!(inputs.parameter_values['pipelinechannel--check-drift-drift'] == true) && inputs.parameter_values['pipelinechannel--check-performance-performance'] == true",
        "inputs.parameter_values['pipelinechannel--check-drift-drift'] == true",
    ]
    for branch in branches.values():
        tasks = spec["components"][branch["componentRef"]["name"]]["dag"]["tasks"]
        assert sorted(t["taskInfo"]["name"].split("-2")[0] for t in tasks.values()) == ["alert", "trigger-retraining"]
    config = executor_config(builds["churn"], "churn-prediction-monitoring", "trigger-retraining")
    assert config["params"]["pipeline"] == "churn-prediction-training"
    drift = executor_config(builds["churn"], "churn-prediction-monitoring", "check-drift")
    assert (drift["params"]["method"], drift["params"]["threshold"]) == ("psi", 0.2)


def test_webhook_alert_secret_reaches_the_alert_step_as_a_kubernetes_secret(builds: dict) -> None:
    platform = documents(builds["churn"]["pipelines/churn-prediction-monitoring.yaml"][1])[1]
    executors = platform["platforms"]["kubernetes"]["deploymentSpec"]["executors"]
    secret = [e for name, e in executors.items() if name.startswith("exec-alert")][0]["secretAsEnv"][0]
    assert secret["secretName"] == "growth-ml-alerts-webhook"
    assert secret["keyToEnv"] == [{"envVar": "MLCOMPILE_SECRET_GROWTH_ML_ALERTS_WEBHOOK", "secretKey": "value"}]


def test_new_data_trigger_becomes_an_hourly_sensor_pipeline(builds: dict) -> None:
    body = json.loads(builds["churn"]["schedules/churn-prediction-retrain-on-new-data-sensor.json"][1])
    assert body["trigger"]["cron_schedule"]["cron"] == "0 0 * * * *"
    config = executor_config(builds["churn"], "churn-prediction-retrain-on-new-data-sensor", "trigger-retraining")
    assert config["params"] == {"pipeline": "churn-prediction-training", "source": "churn_labels", "when": "new_data"}


def test_every_resource_is_labelled_with_lineage() -> None:
    files = build(ROOT / "examples/churn/mlcompile.yaml", ROOT / "targets/kfp-gke.yaml", git_commit="a" * 40)
    labels = yaml.safe_load(files["serving/inference-service.yaml"][1])["metadata"]["labels"]
    assert labels["mlcompile-system"] == "churn-prediction"
    assert labels["mlcompile-git-commit"] == "a" * 40
    assert len(labels["mlcompile-spec-sha256"]) == 63  # Kubernetes caps label values at 63


# ------------------------------------------------------------------ refusals


def variant(tmp_path: Path, edit_spec: Any = None, edit_profile: Any = None, example: str = "churn") -> tuple[Path, Path]:
    spec = yaml.safe_load((ROOT / "examples" / example / "mlcompile.yaml").read_text())
    profile = yaml.safe_load((ROOT / "targets/kfp-gke.yaml").read_text())
    spec["overrides"] = {"kfp-gke": spec["overrides"]["kfp-gke"]}
    if edit_spec:
        edit_spec(spec)
    if edit_profile:
        edit_profile(profile)
    (tmp_path / "targets").mkdir()
    (tmp_path / "mlcompile.yaml").write_text(yaml.safe_dump(spec, sort_keys=False))
    (tmp_path / "targets/kfp-gke.yaml").write_text(yaml.safe_dump(profile, sort_keys=False))
    return tmp_path / "mlcompile.yaml", tmp_path / "targets/kfp-gke.yaml"


def refusals(spec: Path, profile: Path) -> list[str]:
    with pytest.raises(SpecError) as caught:
        build(spec, profile)
    return [f"{d.path}: {d.message}" for d in caught.value.diagnostics if d.severity == "error"]


def test_spot_on_a_generic_cluster_is_refused_at_the_spot_field(tmp_path: Path) -> None:
    def spot(spec: dict) -> None:
        spec["training"]["resources"]["spot"] = True

    errors = refusals(*variant(tmp_path, spot, lambda p: p["kubeflow"].update(cluster="generic")))
    assert errors == [
        "training.resources.spot: spot capacity cannot be requested on a 'generic' cluster: Kubernetes has no standard spot node label (target kubeflow)"
    ]


def test_on_a_generic_cluster_an_a100_trainer_and_a_t4_endpoint_land_on_their_own_gpu_models(tmp_path: Path) -> None:
    def gpus(spec: dict) -> None:
        spec["training"]["resources"]["accelerator"] = {"type": "nvidia-a100-40gb", "count": 1}
        spec["deployment"]["online"]["resources"]["accelerator"] = {"type": "nvidia-t4", "count": 1}

    files = build(*variant(tmp_path, gpus, lambda p: p["kubeflow"].update(cluster="generic")))
    platform = documents(files["pipelines/churn-prediction-training.yaml"][1])[1]
    train = platform["platforms"]["kubernetes"]["deploymentSpec"]["executors"]["exec-train"]
    assert train["nodeSelector"]["labels"] == {"nvidia.com/gpu.product": "NVIDIA-A100-SXM4-40GB"}
    predictor = yaml.safe_load(files["serving/inference-service.yaml"][1])["spec"]["predictor"]
    assert predictor["nodeSelector"] == {"nvidia.com/gpu.product": "Tesla-T4"}
    assert predictor["containers"][0]["resources"]["limits"]["nvidia.com/gpu"] == "1"


def test_a_generic_profile_names_its_own_gpu_part_where_it_differs_from_the_catalogs(tmp_path: Path) -> None:
    def gpus(spec: dict) -> None:
        spec["training"]["resources"]["accelerator"] = {"type": "nvidia-a100-40gb", "count": 1}

    def pcie(profile: dict) -> None:
        profile["kubeflow"].update(cluster="generic", gpu_products={"nvidia-a100-40gb": "NVIDIA-A100-PCIE-40GB"})

    files = build(*variant(tmp_path, gpus, pcie))
    platform = documents(files["pipelines/churn-prediction-training.yaml"][1])[1]
    assert platform["platforms"]["kubernetes"]["deploymentSpec"]["executors"]["exec-train"]["nodeSelector"]["labels"] == {
        "nvidia.com/gpu.product": "NVIDIA-A100-PCIE-40GB"
    }


@pytest.mark.parametrize(("products", "cluster", "says"), [
    ({"nvidia-a100": "NVIDIA-A100-PCIE-40GB"}, "generic", "gpu_products names 'nvidia-a100', not an NVIDIA GPU of the catalog"),
    ({"tpu-v5e": "x"}, "generic", "gpu_products names 'tpu-v5e', not an NVIDIA GPU of the catalog"),
    ({"nvidia-t4": "Tesla-T4"}, "gke", "gpu_products applies to generic clusters"),
])  # fmt: skip
def test_gpu_products_must_name_catalog_gpus_of_a_generic_cluster(tmp_path: Path, products: dict, cluster: str, says: str) -> None:
    spec, profile = variant(tmp_path, None, lambda p: p["kubeflow"].update(cluster=cluster, gpu_products=products))
    with pytest.raises(SpecError) as caught:
        build(spec, profile)
    (error,) = [d for d in caught.value.diagnostics if d.severity == "error"]
    assert says in error.message and error.file.endswith("kfp-gke.yaml")


def test_gpu_autoscaling_is_refused_on_kserve(tmp_path: Path) -> None:
    def gpu(spec: dict) -> None:
        spec["deployment"]["online"]["autoscaling"] = {"metric": "gpu", "target": 70}
        spec["deployment"]["online"]["resources"] = {"cpu": 4, "memory": "15Gi", "accelerator": {"type": "nvidia-t4", "count": 1}}

    (error,) = refusals(*variant(tmp_path, gpu))
    assert error.startswith("deployment.online.autoscaling.metric: KServe cannot autoscale on 'gpu'") and error.endswith("(target kubeflow)")


def test_a_fractional_rps_target_is_refused_on_kserve(tmp_path: Path) -> None:
    def fractional(spec: dict) -> None:
        spec["deployment"]["online"]["autoscaling"] = {"metric": "requests_per_replica", "target": 0.4}

    (error,) = refusals(*variant(tmp_path, fractional))
    assert error == "deployment.online.autoscaling.target: KServe's scaleTarget is a whole number; 0.4 rounds to 0 (target kubeflow)"


def test_a_profile_without_a_model_registry_is_refused_at_the_registry(tmp_path: Path) -> None:
    (error,) = refusals(*variant(tmp_path, None, lambda p: p["kubeflow"].pop("registry")))
    assert error.startswith("registry: the profile 'kfp-gke' names no model registry")


def test_grid_search_over_a_float_range_is_refused(tmp_path: Path) -> None:
    def grid(spec: dict) -> None:
        spec["training"]["tuning"]["algorithm"] = "grid"

    errors = refusals(*variant(tmp_path, grid, example="ranker-gpu"))
    assert sorted(e.split(":")[0] for e in errors) == ["training.tuning.params.dropout", "training.tuning.params.learning_rate"]


# ------------------------------------------------------------------ offline, lazy


def test_the_build_opens_no_socket_except_loopback(monkeypatch: pytest.MonkeyPatch) -> None:
    real = socket.socket.connect

    def guarded(self: socket.socket, address: Any) -> Any:
        host = address[0] if isinstance(address, tuple) else address
        if host not in ("127.0.0.1", "::1", "localhost"):
            raise AssertionError(f"the build tried to connect to {address}")
        return real(self, address)

    monkeypatch.setattr(socket.socket, "connect", guarded)
    for example in EXAMPLES:
        assert build(ROOT / "examples" / example / "mlcompile.yaml", ROOT / "targets/kfp-gke.yaml")


def test_importing_the_targets_imports_no_sdk() -> None:
    code = "import sys, mlcompile.targets.kubeflow, mlcompile.targets.vertex, mlcompile.targets.kfp_ir; print(sorted(m for m in ('kfp', 'google.cloud.aiplatform', 'kubernetes') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert out == "[]"


# ------------------------------------------------------------------ variants of the examples


def built_variant(tmp_path: Path, edit_spec: Any = None, edit_profile: Any = None, example: str = "ranker-gpu") -> dict[str, tuple[str, bytes]]:
    return build(*variant(tmp_path, edit_spec, edit_profile, example))


def test_distributed_training_without_tuning_is_a_pytorchjob(tmp_path: Path) -> None:
    files = built_variant(tmp_path, lambda s: s["training"].pop("tuning"))
    kind, content = files["training/train-pytorchjob.yaml"]
    assert kind == "kubeflow.pytorch_job"
    job = kfp_strict.deserialize_training(yaml.safe_load(content), "KubeflowOrgV1PyTorchJob")
    assert (job.spec.pytorch_replica_specs["Master"].replicas, job.spec.pytorch_replica_specs["Worker"].replicas) == (1, 1)
    assert job.metadata.name == "search-ranker-train" and job.metadata.namespace == "ml-pipelines"
    config = executor_config(files, "search-ranker-training", "train")
    assert config["platform_job"]["kind"] == "kubeflow.pytorch_job" and config["platform_job"]["timeout_seconds"] == 43200


def test_a_single_replica_container_trainer_runs_in_the_kfp_task_with_its_gpus_and_secret(tmp_path: Path) -> None:
    def single(spec: dict) -> None:
        spec["training"].pop("tuning")
        spec["training"]["resources"]["replicas"] = 1

    files = built_variant(tmp_path, single)
    assert not any(path.startswith("training/") for path in files)
    docs = documents(files["pipelines/search-ranker-training.yaml"][1])
    container = docs[0]["deploymentSpec"]["executors"]["exec-train"]["container"]
    assert container["image"] == "ghcr.io/acme/search-ranker-train:2.3.0"
    assert container["command"][:2] == ["sh", "-c"] and "MLCOMPILE_TRAIN_DATA=" in container["command"][2]
    user = ["python", "-m", "ranker.launch", "--epochs", "6", "--precision", "bf16", "--per-device-batch-size", "256", "--checkpoint-every", "500"]
    assert container["args"][-len(user) :] == user
    exported = container["command"][2].split(";")[0]  # export MLCOMPILE_X="$1" …, in argument order
    paths = container["args"][1 : -len(user)]
    assert exported.count("=") == len(paths) == 5  # metrics, model, report, test, train
    assert paths[-1] == "{{$.inputs.artifacts['train'].path}}" and 'MLCOMPILE_TRAIN_DATA="$5"' in exported
    assert container["resources"]["accelerator"]["resourceType"] == "nvidia.com/gpu" and container["resources"]["accelerator"]["resourceCount"] == "8"
    assert {e["name"]: e["value"] for e in container.get("env", [])}["NCCL_DEBUG"] == "WARN"
    k8s = docs[1]["platforms"]["kubernetes"]["deploymentSpec"]["executors"]["exec-train"]
    assert k8s["nodeSelector"]["labels"] == {"cloud.google.com/gke-accelerator": "nvidia-tesla-a100", "cloud.google.com/gke-spot": "true"}
    assert k8s["secretAsEnv"][0]["secretName"] == "search-hf-read-token" and k8s["secretAsEnv"][0]["keyToEnv"][0]["envVar"] == "HF_TOKEN"
    assert k8s["activeDeadlineSeconds"] == "43200"
    spec = docs[0]["root"]["dag"]["tasks"]["train"]
    assert spec["retryPolicy"]["maxRetryCount"] == 3  # spot: a preemption is retried


def test_a_search_parameter_that_would_shadow_the_trial_name_is_refused(tmp_path: Path) -> None:
    def shadow(spec: dict) -> None:
        spec["training"]["tuning"]["params"]["trial_name"] = {"type": "categorical", "values": ["a", "b"]}

    errors = refusals(*variant(tmp_path, shadow, example="ranker-gpu"))
    assert errors == [
        "training.tuning.params.trial_name: search parameter 'trial_name' becomes Katib trial parameter 'trialName', which carries the trial's name (target kubeflow)"
    ]


def test_tuning_a_single_replica_trainer_uses_a_job_as_katib_trial(tmp_path: Path) -> None:
    files = built_variant(tmp_path, lambda s: s["training"]["resources"].update(replicas=1))
    experiment = yaml.safe_load(files["training/tune-experiment.yaml"][1])
    trial = experiment["spec"]["trialTemplate"]["trialSpec"]
    assert trial["kind"] == "Job" and experiment["spec"]["trialTemplate"]["primaryContainerName"] == "training"
    assert "primaryPodLabels" not in experiment["spec"]["trialTemplate"]  # a Job's one pod is the primary
    assert trial["spec"]["template"]["metadata"]["annotations"] == {"sidecar.istio.io/inject": "false"}
    kfp_strict.check_model(trial, "V1Job")
    assert trial["spec"]["activeDeadlineSeconds"] == 43200


def test_on_eks_gpus_and_spot_use_karpenter_labels(tmp_path: Path) -> None:
    files = built_variant(tmp_path, None, lambda p: p["kubeflow"].update(cluster="eks"))
    pod = yaml.safe_load(files["training/tune-experiment.yaml"][1])["spec"]["trialTemplate"]["trialSpec"]["spec"]["pytorchReplicaSpecs"]["Master"]["template"][
        "spec"
    ]
    assert pod["nodeSelector"] == {
        "karpenter.k8s.aws/instance-family": "p4d",
        "karpenter.k8s.aws/instance-gpu-name": "a100",
        "karpenter.sh/capacity-type": "spot",
    }


@pytest.mark.parametrize(("platform", "profile"), [("kubeflow", "kfp-gke"), ("vertex", "gcp-prod")])
def test_every_kind_a_build_writes_is_documented(platform: str, profile: str) -> None:
    doc = (ROOT / "docs" / "targets" / f"{platform}.md").read_text()
    kinds = {entry["kind"] for manifest in ROOT.glob(f"tests/golden/*/{profile}/manifest.json") for entry in json.loads(manifest.read_text())["files"]}
    assert kinds and not {k for k in kinds if f"`{k}`" not in doc}
