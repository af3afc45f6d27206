"""The emulated Vertex AI API, driven by aiplatform's own clients (REST transport, anonymous
credentials): jobs run their containers with Vertex's environment, tuning trials get their
`--NAME=VALUE` arguments and own model folders and are scored from cloudml-hypertune's file,
the Model Registry moves aliases between versions, Endpoints refuse a split not summing to 100."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).parent))
from emulate_services_support import REPLICA, TRAINER_IMAGE, emulation, wait_for  # noqa: E402

from mlcompile.emulate.services.execution import PipelineRun  # noqa: E402
from mlcompile.emulate.services.vertex import VertexService  # noqa: E402

pytestmark = pytest.mark.emulate
aiplatform_v1 = pytest.importorskip("google.cloud.aiplatform_v1")
from google.api_core import exceptions  # noqa: E402
from google.auth.credentials import AnonymousCredentials  # noqa: E402

PARENT = "projects/acme/locations/us-central1"
ENDED = {"JOB_STATE_SUCCEEDED", "JOB_STATE_FAILED", "JOB_STATE_CANCELLED"}


def client(kind: Any, api: VertexService) -> Any:
    return kind(client_options={"api_endpoint": api.url}, credentials=AnonymousCredentials(), transport="rest")


def pool(replicas: int, **container: Any) -> dict[str, Any]:
    return {"machine_spec": {"machine_type": "n1-standard-4"}, "replica_count": replicas, "container_spec": {"image_uri": TRAINER_IMAGE, **container}}


def test_a_custom_job_runs_every_replica_with_vertexs_environment(tmp_path: Path) -> None:
    spec = {
        "worker_pool_specs": [pool(1, command=["python", "-c", REPLICA]), pool(2, command=["python", "-c", REPLICA])],
        "base_output_directory": {"output_uri_prefix": "gs://acme-runs/train"},
    }
    with VertexService(emulation(tmp_path)) as api:
        jobs = client(aiplatform_v1.JobServiceClient, api)
        created = jobs.create_custom_job(parent=PARENT, custom_job={"display_name": "train", "job_spec": spec})
        assert created.state.name == "JOB_STATE_PENDING"
        job = wait_for(lambda: jobs.get_custom_job(name=created.name), lambda j: j.state.name in ENDED)
    assert job.state.name == "JOB_STATE_SUCCEEDED"
    folder = tmp_path / "platform" / "vertex" / "customJobs" / created.name.rsplit("/", 1)[1]
    seen = {log.stem: json.loads(log.read_text().splitlines()[-1]) for log in folder.glob("*.log")}
    assert sorted(seen) == ["workerpool0-0", "workerpool1-0", "workerpool1-1"]
    chief, worker = seen["workerpool0-0"], seen["workerpool1-1"]
    assert chief["AIP_MODEL_DIR"] == "gs://acme-runs/train/model" and chief["CLOUD_ML_JOB_ID"] == created.name.rsplit("/", 1)[1]
    cluster = json.loads(worker["CLUSTER_SPEC"])
    assert cluster["task"] == {"type": "workerpool1", "index": 1} and len(cluster["cluster"]["workerpool1"]) == 2
    tf_config = json.loads(worker["TF_CONFIG"])
    assert tf_config["task"]["type"] == "worker" and tf_config["cluster"]["chief"] == cluster["cluster"]["workerpool0"]


def test_a_failing_replica_fails_the_job_with_its_exit_status(tmp_path: Path) -> None:
    with VertexService(emulation(tmp_path)) as api:
        jobs = client(aiplatform_v1.JobServiceClient, api)
        created = jobs.create_custom_job(
            parent=PARENT, custom_job={"display_name": "t", "job_spec": {"worker_pool_specs": [pool(1, command=["python", "-c", "raise SystemExit(3)"])]}}
        )
        job = wait_for(lambda: jobs.get_custom_job(name=created.name), lambda j: j.state.name in ENDED)
    assert job.state.name == "JOB_STATE_FAILED"
    assert "workerpool0-0 exited with a non-zero status of 3" in job.error.message


def test_a_tuning_job_runs_its_trials_and_scores_them_from_hypertune(tmp_path: Path) -> None:
    study = {
        "metrics": [{"metric_id": "accuracy", "goal": "MAXIMIZE"}],
        "parameters": [{"parameter_id": "lr", "discrete_value_spec": {"values": [0.1, 0.3, 0.5]}}],
        "algorithm": "GRID_SEARCH",
    }
    trial_spec = {"worker_pool_specs": [pool(1, args=["--epochs=1"])], "base_output_directory": {"output_uri_prefix": "gs://acme-runs/tune"}}
    body = {"display_name": "tune", "study_spec": study, "max_trial_count": 3, "parallel_trial_count": 2, "trial_job_spec": trial_spec}
    with VertexService(emulation(tmp_path)) as api:
        jobs = client(aiplatform_v1.JobServiceClient, api)
        created = jobs.create_hyperparameter_tuning_job(parent=PARENT, hyperparameter_tuning_job=body)
        job = wait_for(lambda: jobs.get_hyperparameter_tuning_job(name=created.name), lambda j: j.state.name in ENDED)
    assert job.state.name == "JOB_STATE_SUCCEEDED"
    assert [(t.id, t.state.name, t.parameters[0].value) for t in job.trials] == [("1", "SUCCEEDED", 0.1), ("2", "SUCCEEDED", 0.3), ("3", "SUCCEEDED", 0.5)]
    best = max(job.trials, key=lambda t: t.final_measurement.metrics[0].value)
    assert best.id == "2" and best.final_measurement.metrics[0].value == 1.0
    for trial in job.trials:  # each trial's AIP_MODEL_DIR is <base>/<trial id>/model
        written = json.loads((tmp_path / "gcs" / "acme-runs" / "tune" / trial.id / "model" / "model.json").read_text())
        assert written["lr"] == trial.parameters[0].value


def test_a_trial_that_reports_no_metric_is_infeasible(tmp_path: Path) -> None:
    # a bound of 0 is left out of the request's JSON (proto3's default)
    study = {
        "metrics": [{"metric_id": "auc", "goal": "MAXIMIZE"}],
        "parameters": [{"parameter_id": "lr", "double_value_spec": {"min_value": 0.0, "max_value": 0.5}}],
    }
    trial_spec = {"worker_pool_specs": [pool(1)], "base_output_directory": {"output_uri_prefix": "gs://acme-runs/tune"}}
    body = {"display_name": "tune", "study_spec": study, "max_trial_count": 2, "parallel_trial_count": 1, "trial_job_spec": trial_spec}
    with VertexService(emulation(tmp_path)) as api:
        jobs = client(aiplatform_v1.JobServiceClient, api)
        created = jobs.create_hyperparameter_tuning_job(parent=PARENT, hyperparameter_tuning_job=body)
        job = wait_for(lambda: jobs.get_hyperparameter_tuning_job(name=created.name), lambda j: j.state.name in ENDED)
    assert job.state.name == "JOB_STATE_FAILED" and {t.state.name for t in job.trials} == {"INFEASIBLE"}
    assert all(0.0 <= t.parameters[0].value <= 0.5 for t in job.trials)  # random draws within the range
    assert "reported none of auc" in job.error.message


def test_a_grid_over_a_continuous_range_is_refused_at_creation(tmp_path: Path) -> None:
    study = {
        "metrics": [{"metric_id": "auc", "goal": "MAXIMIZE"}],
        "parameters": [{"parameter_id": "lr", "double_value_spec": {"min_value": 0.1, "max_value": 0.5}}],
        "algorithm": "GRID_SEARCH",
    }
    with VertexService(emulation(tmp_path)) as api:
        jobs = client(aiplatform_v1.JobServiceClient, api)
        with pytest.raises(exceptions.BadRequest, match="GRID_SEARCH supports only"):
            jobs.create_hyperparameter_tuning_job(
                parent=PARENT,
                hyperparameter_tuning_job={"display_name": "t", "study_spec": study, "max_trial_count": 1, "trial_job_spec": {"worker_pool_specs": [pool(1)]}},
            )


def test_model_versions_share_aliases_one_version_each(tmp_path: Path) -> None:
    with VertexService() as api:
        models = client(aiplatform_v1.ModelServiceClient, api)
        model = {"display_name": "churn", "artifact_uri": "gs://acme/m/1", "version_aliases": ["candidate"], "container_spec": {"image_uri": "runtime"}}
        first = models.upload_model(request={"parent": PARENT, "model": model, "model_id": "churn"}).result()
        second = models.upload_model(request={"parent": PARENT, "model": {**model, "artifact_uri": "gs://acme/m/2"}, "parent_model": first.model}).result()
        assert (first.model_version_id, second.model_version_id) == ("1", "2")
        models.merge_version_aliases(name=f"{first.model}@1", version_aliases=["production"])  # a human approves version 1
        assert models.get_model(name=f"{first.model}@production").artifact_uri == "gs://acme/m/1"
        models.merge_version_aliases(name=f"{first.model}@2", version_aliases=["production"])
        versions = {v.version_id: list(v.version_aliases) for v in models.list_model_versions(name=first.model)}
        assert versions == {"1": ["default"], "2": ["candidate", "production"]}
        assert models.get_model(name=first.model).version_id == "1"  # no alias: the default version
        with pytest.raises(exceptions.NotFound):
            models.get_model(name=f"{first.model}@staging")


def test_an_endpoint_takes_a_traffic_split_only_when_it_sums_to_100(tmp_path: Path) -> None:
    with VertexService() as api:
        models = client(aiplatform_v1.ModelServiceClient, api)
        endpoints = client(aiplatform_v1.EndpointServiceClient, api)
        body = {"display_name": "churn", "container_spec": {"image_uri": "runtime"}}
        model = models.upload_model(request={"parent": PARENT, "model": body, "model_id": "churn"}).result().model
        models.upload_model(request={"parent": PARENT, "model": body, "parent_model": model}).result()
        endpoint = endpoints.create_endpoint(parent=PARENT, endpoint={"display_name": "scorer"}, endpoint_id="scorer").result()
        first = endpoints.deploy_model(
            endpoint=endpoint.name,
            deployed_model={"model": f"{model}@1", "dedicated_resources": {"machine_spec": {"machine_type": "n1-standard-2"}, "min_replica_count": 1}},
            traffic_split={"0": 100},
        ).result()
        canary = {"model": f"{model}@2", "dedicated_resources": {"machine_spec": {"machine_type": "n1-standard-2"}, "min_replica_count": 1}}
        with pytest.raises(exceptions.BadRequest, match="must add up to 100"):
            endpoints.deploy_model(endpoint=endpoint.name, deployed_model=canary, traffic_split={"0": 5}).result()
        second = endpoints.deploy_model(endpoint=endpoint.name, deployed_model=canary, traffic_split={"0": 5, first.deployed_model.id: 95}).result()
        served = endpoints.get_endpoint(name=endpoint.name)
        assert dict(served.traffic_split) == {first.deployed_model.id: 95, second.deployed_model.id: 5}
        assert [(d.model, d.model_version_id) for d in served.deployed_models] == [(model, "1"), (model, "2")]
        with pytest.raises(exceptions.BadRequest, match="still takes 95%"):
            endpoints.undeploy_model(endpoint=endpoint.name, deployed_model_id=first.deployed_model.id).result()
        endpoints.undeploy_model(endpoint=endpoint.name, deployed_model_id=first.deployed_model.id, traffic_split={second.deployed_model.id: 100}).result()
        assert dict(endpoints.get_endpoint(name=endpoint.name).traffic_split) == {second.deployed_model.id: 100}


def test_a_pipeline_job_runs_through_the_pipeline_interpreter(tmp_path: Path) -> None:
    ran: list[tuple[str, dict[str, Any], str]] = []

    def run_pipeline(run: PipelineRun) -> str | None:
        ran.append((run.ir["pipelineInfo"]["name"], run.parameters, run.name))
        return None if run.parameters["ok"] else "step train failed"

    with VertexService(emulation(tmp_path, run_pipeline=run_pipeline)) as api:
        pipelines = client(aiplatform_v1.PipelineServiceClient, api)
        jobs = []
        for ok in (True, False):
            body = {
                "display_name": "retrain",
                "pipeline_spec": {"pipelineInfo": {"name": "churn-training"}},
                "runtime_config": {"parameter_values": {"ok": ok}},
            }
            jobs.append(pipelines.create_pipeline_job(parent=PARENT, pipeline_job=body, pipeline_job_id=f"retrain-{ok}".lower()))
        ended = [wait_for(lambda j=j: pipelines.get_pipeline_job(name=j.name), lambda j: j.state.name.endswith(("SUCCEEDED", "FAILED"))) for j in jobs]
    assert [j.state.name for j in ended] == ["PIPELINE_STATE_SUCCEEDED", "PIPELINE_STATE_FAILED"]
    assert ended[1].error.message == "step train failed"
    assert sorted(ran, key=lambda r: r[2]) == [("churn-training", {"ok": False}, "retrain-false"), ("churn-training", {"ok": True}, "retrain-true")]


def test_a_cancelled_tuning_job_starts_no_more_trials(tmp_path: Path) -> None:
    study = {"metrics": [{"metric_id": "auc", "goal": "MAXIMIZE"}], "parameters": [{"parameter_id": "lr", "discrete_value_spec": {"values": [0.1, 0.3, 0.5]}}]}
    slow = pool(1, command=["python", "-c", "import time; time.sleep(1.5)"])
    body = {"display_name": "tune", "study_spec": study, "max_trial_count": 3, "parallel_trial_count": 1, "trial_job_spec": {"worker_pool_specs": [slow]}}
    with VertexService(emulation(tmp_path)) as api:
        jobs = client(aiplatform_v1.JobServiceClient, api)
        created = jobs.create_hyperparameter_tuning_job(parent=PARENT, hyperparameter_tuning_job=body)
        wait_for(lambda: jobs.get_hyperparameter_tuning_job(name=created.name), lambda j: len(j.trials) == 1)
        jobs.cancel_hyperparameter_tuning_job(name=created.name)
        assert jobs.get_hyperparameter_tuning_job(name=created.name).state.name == "JOB_STATE_CANCELLING"
        job = wait_for(lambda: jobs.get_hyperparameter_tuning_job(name=created.name), lambda j: j.state.name in ENDED)
    assert job.state.name == "JOB_STATE_CANCELLED" and len(job.trials) == 1
