"""The vertex target: every body parsed strictly into google.cloud.aiplatform_v1 types, every
pipeline into kfp's PipelineSpec proto; real machine types, accelerator enums, cron and
traffic split asserted; what Vertex AI cannot express refused."""

from __future__ import annotations

import json
import socket
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from requires import require

require("kfp", "google.cloud.aiplatform")

sys.path.insert(0, str(Path(__file__).parent / "stand_ins"))
import kfp_strict  # noqa: E402
from build_support import EXAMPLES, ROOT, build  # noqa: E402

from mlcompile.build import compile_system, resolve_profiles  # noqa: E402
from mlcompile.errors import SpecError  # noqa: E402


@pytest.fixture(scope="module")
def builds() -> dict[str, dict[str, tuple[str, bytes]]]:
    return {ex: build(ROOT / "examples" / ex / "mlcompile.yaml", ROOT / "targets" / "gcp-prod.yaml") for ex in EXAMPLES}


def body(files: dict, path: str) -> Any:
    kind, content = files[path]
    return kfp_strict.parse_vertex(kind, json.loads(content))


def task_config(files: dict, pipeline: str, task: str) -> dict[str, Any]:
    spec = next(d for d in yaml.safe_load_all(files[f"pipelines/{pipeline}.yaml"][1]) if d)
    args = spec["deploymentSpec"]["executors"][f"exec-{task}"]["container"]["args"]
    return json.loads(args[args.index("--config") + 1])


@pytest.mark.parametrize("example", EXAMPLES)
def test_every_file_parses_strictly_into_its_sdk_type(example: str, builds: dict) -> None:
    kinds = set()
    for path, (kind, content) in builds[example].items():
        kinds.add(kind)
        if kind == "kfp.pipeline_spec":
            spec, platform = kfp_strict.parse_pipeline_spec(content.decode())
            assert platform is None  # Vertex AI ignores Kubernetes settings: none are written
            assert spec.default_pipeline_root == "gs://acme-ml-prod-pipelines/root"
        elif kind == "mlcompile.cost_estimate":
            assert json.loads(content)["platform"] == "vertex"  # mlcompile's own format (tests/test_cost.py)
        else:
            assert kind.startswith(("vertex.", "monitoring.")), path
            kfp_strict.parse_vertex(kind, json.loads(content))
    assert {"kfp.pipeline_spec", "vertex.pipeline_job", "vertex.schedule", "vertex.upload_model_request"} <= kinds


def test_a_typo_in_a_body_is_caught_by_the_strict_parser(builds: dict) -> None:
    job = json.loads(builds["ranker-gpu"]["vertex/jobs/tune-hyperparameter-tuning-job.json"][1])
    job["trialJobSpec"]["workerPoolSpecs"][0]["machineSpec"]["acceleratorr"] = 1
    with pytest.raises(Exception, match="acceleratorr"):
        kfp_strict.parse_vertex("vertex.hyperparameter_tuning_job", job)


def test_gates_guard_registration_with_dsl_if(builds: dict) -> None:
    spec = next(d for d in yaml.safe_load_all(builds["churn"]["pipelines/churn-prediction-training.yaml"][1]) if d)
    (condition,) = [t for t in spec["root"]["dag"]["tasks"].values() if "triggerPolicy" in t]
    assert condition["triggerPolicy"]["condition"] == "inputs.parameter_values['pipelinechannel--gate-decision'] == true"
    assert "register" not in spec["root"]["dag"]["tasks"]
    config = task_config(builds["churn"], "churn-prediction-training", "gate")
    assert {"comparison": "min_delta_vs_production", "metric": "roc_auc", "threshold": 0.0} in config["gates"]
    assert config["platform"]["model"] == "projects/acme-ml-prod/locations/us-central1/models/churn-classifier@{alias}"


def test_distributed_spot_a100_tuning_is_a_hyperparameter_tuning_job_with_two_worker_pools(builds: dict) -> None:
    job = body(builds["ranker-gpu"], "vertex/jobs/tune-hyperparameter-tuning-job.json")
    pools = job.trial_job_spec.worker_pool_specs
    assert [p.replica_count for p in pools] == [1, 1]  # chief + (replicas - 1)
    for pool in pools:
        assert pool.machine_spec.machine_type == "a2-highgpu-8g"
        assert pool.machine_spec.accelerator_type.name == "NVIDIA_TESLA_A100"
        assert pool.machine_spec.accelerator_count == 8
        assert pool.container_spec.image_uri == "us-docker.pkg.dev/acme-ml-prod/search/search-ranker-train:2.3.0"
    assert job.trial_job_spec.scheduling.strategy.name == "SPOT"
    assert job.trial_job_spec.scheduling.timeout.total_seconds() == 43200
    assert (job.max_trial_count, job.parallel_trial_count) == (24, 3)
    assert job.study_spec.metrics[0].metric_id == "ndcg_at_10" and job.study_spec.metrics[0].goal.name == "MAXIMIZE"
    params = {p.parameter_id: p for p in job.study_spec.parameters}
    assert params["learning_rate"].scale_type.name == "UNIT_LOG_SCALE"
    assert params["learning_rate"].double_value_spec.min_value == pytest.approx(1e-05)
    assert list(params["loss"].categorical_value_spec.values) == ["lambdarank", "listnet", "softmax_ce"]
    assert job.study_spec.algorithm.name == "ALGORITHM_UNSPECIFIED"  # Vertex's default: Bayesian optimization


def test_the_pipeline_task_launches_the_job_from_its_body(builds: dict) -> None:
    config = task_config(builds["ranker-gpu"], "search-ranker-training", "tune")
    job = json.loads(builds["ranker-gpu"]["vertex/jobs/tune-hyperparameter-tuning-job.json"][1])
    assert config["platform_job"] == {"kind": "vertex.hyperparameter_tuning_job", "body": job, "timeout_seconds": 43200 * 8}  # 24 trials, 3 at a time


def test_sklearn_trainer_runs_as_a_custom_job_on_the_catalog_machine(builds: dict) -> None:
    job = body(builds["churn"], "vertex/jobs/train-custom-job.json")
    (pool,) = job.job_spec.worker_pool_specs
    assert pool.machine_spec.machine_type == "e2-standard-4"  # cpu 4, 16Gi
    assert pool.container_spec.command == ["python", "-m", "mlcompile.runtime", "train"]
    assert job.job_spec.scheduling.timeout.total_seconds() == 3600
    assert job.job_spec.service_account == "vertex-pipelines@acme-ml-prod.iam.gserviceaccount.com"


def test_endpoint_deploys_with_canary_split_autoscaling_and_request_timeout(builds: dict) -> None:
    request = body(builds["churn"], "vertex/deploy-model.json")
    # DeployModel's split adds up to 100: the deployed model serving then ({serving}, filled in at deploy time) keeps 90
    assert dict(request.traffic_split) == {"0": 10, "{serving}": 90}
    resources = request.deployed_model.dedicated_resources
    assert (resources.min_replica_count, resources.max_replica_count) == (2, 6)
    (metric,) = resources.autoscaling_metric_specs
    assert (metric.metric_name, metric.target) == ("aiplatform.googleapis.com/prediction/online/cpu/utilization", 60)
    endpoint = body(builds["churn"], "vertex/endpoint.json")
    assert endpoint.endpoint_id == "churn-scorer"
    assert endpoint.endpoint.client_connection_config.inference_timeout.total_seconds() == 2


def test_gpu_endpoint_is_a_t4_blue_green_deployment_scaled_on_request_count(builds: dict) -> None:
    request = body(builds["ranker-gpu"], "vertex/deploy-model.json")
    spec = request.deployed_model.dedicated_resources.machine_spec
    assert (spec.machine_type, spec.accelerator_type.name, spec.accelerator_count) == ("n1-standard-4", "NVIDIA_TESLA_T4", 1)
    assert dict(request.traffic_split) == {"0": 0, "{serving}": 100}  # green takes no traffic until promoted
    (metric,) = request.deployed_model.dedicated_resources.autoscaling_metric_specs
    assert (metric.metric_name, metric.target) == ("aiplatform.googleapis.com/prediction/online/request_count", 2400)  # 40/s = 2400/min


def test_model_registry_upload_carries_version_aliases_and_labels(builds: dict) -> None:
    request = body(builds["churn"], "vertex/model.json")
    assert request.model_id == "churn-classifier"
    assert list(request.model.version_aliases) == ["candidate"]
    assert request.model.labels["mlcompile-system"] == "churn-prediction"
    assert request.model.labels["use-case"] == "churn"


def test_schedules_carry_the_time_zone_in_the_cron(builds: dict) -> None:
    schedule = body(builds["batch-scoring"], "vertex/schedules/invoice-late-payment-batch-scoring.json")
    assert schedule.cron == "TZ=Europe/Berlin 0 6 * * 1-5"
    assert schedule.max_concurrent_run_count == 1
    job = schedule.create_pipeline_job_request.pipeline_job
    assert job.display_name == "invoice-late-payment-batch-scoring"
    assert job.service_account == "vertex-pipelines@acme-ml-prod.iam.gserviceaccount.com"
    assert job.runtime_config.gcs_output_directory == "gs://acme-ml-prod-pipelines/root"


def test_batch_scoring_runs_as_a_custom_job_with_its_timeout(builds: dict) -> None:
    job = body(builds["batch-scoring"], "vertex/jobs/score-batch-custom-job.json")
    assert job.job_spec.scheduling.timeout.total_seconds() == 3600
    args = list(job.job_spec.worker_pool_specs[0].container_spec.args)
    config = json.loads(args[1])
    assert config["params"]["output_uri"] == "bq://acme-finance-prod.scores.invoice_late_payment"


def test_pipeline_job_bodies_embed_the_compiled_spec(builds: dict) -> None:
    job = body(builds["churn"], "vertex/pipeline-jobs/churn-prediction-training.json")
    assert job.pipeline_spec["pipelineInfo"]["name"] == "churn-prediction-training"
    assert len(job.labels["mlcompile-spec-sha256"]) == 63  # GCP caps label values at 63


def test_monitoring_breach_starts_the_training_pipeline(builds: dict) -> None:
    config = task_config(builds["churn"], "churn-prediction-monitoring", "trigger-retraining")
    assert config["params"]["pipeline"] == "churn-prediction-training"
    assert config["platform"]["project"] == "acme-ml-prod"


# ------------------------------------------------------------------ refusals


def variant(tmp_path: Path, edit_spec: Any, example: str = "churn") -> tuple[Path, Path]:
    spec = yaml.safe_load((ROOT / "examples" / example / "mlcompile.yaml").read_text())
    spec["overrides"] = {"gcp-prod": spec["overrides"]["gcp-prod"]}
    edit_spec(spec)
    (tmp_path / "targets").mkdir()
    (tmp_path / "mlcompile.yaml").write_text(yaml.safe_dump(spec, sort_keys=False))
    (tmp_path / "targets/gcp-prod.yaml").write_text((ROOT / "targets/gcp-prod.yaml").read_text())
    return tmp_path / "mlcompile.yaml", tmp_path / "targets/gcp-prod.yaml"


def refusals(spec: Path, profile: Path) -> list[str]:
    with pytest.raises(SpecError) as caught:
        build(spec, profile)
    return [f"{d.path}: {d.message}" for d in caught.value.diagnostics if d.severity == "error"]


def test_scale_to_zero_is_refused_on_vertex_endpoints(tmp_path: Path) -> None:
    def zero(spec: dict) -> None:
        spec["deployment"]["online"]["replicas"]["min"] = 0

    (error,) = refusals(*variant(tmp_path, zero))
    assert error.startswith("deployment.online.replicas.min: a Vertex AI endpoint cannot scale to zero") and error.endswith("(target vertex)")


def test_grid_search_over_a_float_range_is_refused(tmp_path: Path) -> None:
    def grid(spec: dict) -> None:
        spec["training"]["tuning"]["algorithm"] = "grid"

    errors = refusals(*variant(tmp_path, grid, "ranker-gpu"))
    assert sorted(e.split(":")[0] for e in errors) == ["training.tuning.params.dropout", "training.tuning.params.learning_rate"]


def test_a_secret_in_a_container_trainers_env_is_a_located_warning(builds: dict) -> None:
    compilation = compile_system(
        str(ROOT / "examples/ranker-gpu/mlcompile.yaml"),
        resolve_profiles(str(ROOT / "examples/ranker-gpu/mlcompile.yaml"), [str(ROOT / "targets/gcp-prod.yaml")]),
        render=False,
    )
    (warning,) = [w for w in compilation.warnings if "Secret Manager" in w.message]
    assert warning.path == "training.trainer.container.env.HF_TOKEN"


def test_the_build_opens_no_socket_except_loopback(monkeypatch: pytest.MonkeyPatch) -> None:
    real = socket.socket.connect

    def guarded(self: socket.socket, address: Any) -> Any:
        host = address[0] if isinstance(address, tuple) else address
        if host not in ("127.0.0.1", "::1", "localhost"):
            raise AssertionError(f"the build tried to connect to {address}")
        return real(self, address)

    monkeypatch.setattr(socket.socket, "connect", guarded)
    for example in EXAMPLES:
        assert build(ROOT / "examples" / example / "mlcompile.yaml", ROOT / "targets/gcp-prod.yaml")


def test_distributed_training_without_tuning_is_a_custom_job_with_two_worker_pools(tmp_path: Path) -> None:
    files = build(*variant(tmp_path, lambda s: s["training"].pop("tuning"), "ranker-gpu"))
    job = body(files, "vertex/jobs/train-custom-job.json")
    assert [(p.replica_count, p.machine_spec.machine_type) for p in job.job_spec.worker_pool_specs] == [(1, "a2-highgpu-8g"), (1, "a2-highgpu-8g")]
    env = {e.name: e.value for e in job.job_spec.worker_pool_specs[0].container_spec.env}
    assert env["HF_TOKEN"] == "{{secret:search-hf-read-token}}"  # resolved from Secret Manager by the launcher
    assert env["MLCOMPILE_TRAIN_DATA"] == "{{inputs.train}}" and env["MLCOMPILE_MODEL_DIR"] == "{{outputs.model}}"


def test_replace_rollout_sends_all_traffic_to_the_new_version(tmp_path: Path) -> None:
    def replace(spec: dict) -> None:
        spec["deployment"]["online"]["rollout"] = {"strategy": "replace"}

    request = body(build(*variant(tmp_path, replace)), "vertex/deploy-model.json")
    assert dict(request.traffic_split) == {"0": 100}


def test_tuning_a_container_trainer_warns_how_vertex_passes_trial_parameters() -> None:
    spec = str(ROOT / "examples/ranker-gpu/mlcompile.yaml")
    compilation = compile_system(spec, resolve_profiles(spec, [str(ROOT / "targets/gcp-prod.yaml")]), render=False)
    (warning,) = [w for w in compilation.warnings if "HyperparameterTuningJob" in w.message]
    assert warning.path == "training.tuning" and "--NAME=VALUE" in warning.message
