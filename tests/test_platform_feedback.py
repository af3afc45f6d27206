"""The feedback loop and lineage on Kubeflow and Vertex AI, each compiled task run with the
configuration the build gives it against local stand-ins of the KFP REST API and the Vertex AI
API (reached by kfp.Client and aiplatform's service clients):
- trigger-retraining submits the training pipeline through the platform's API, skips while a
  training run is active, and records the run id as its `retraining` output;
- the new-data sensor submits only past its watermark, and advances it only after a submit;
- registration records the pipeline run, profile sha256 and git commit, and on Vertex AI the
  register task outputs the google.VertexModel artifact of the uploaded version."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from requires import require

require("kfp", "google.cloud.aiplatform", "pyarrow")
pd = pytest.importorskip("pandas")
sys.path.insert(0, str(Path(__file__).parent / "stand_ins"))
from kfp_api import KfpStandIn  # noqa: E402
from vertex_api import VertexStandIn  # noqa: E402

from mlcompile.build import compile_system, resolve_profiles, write_builds  # noqa: E402
from mlcompile.plan.nodes import Plan  # noqa: E402
from mlcompile.runtime.__main__ import main as run_step  # noqa: E402
from mlcompile.runtime.contract import ENV_PIPELINE_RUN  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
COMMIT = "0123456789abcdef0123456789abcdef01234567"
SPEC = ROOT / "examples" / "churn" / "mlcompile.yaml"
TRAINING = "churn-prediction-training"
SENSOR = "churn-prediction-retrain-on-new-data-sensor"


@pytest.fixture(scope="module")
def builds(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[Plan, Path]]:
    """The churn example built for kfp-gke and gcp-prod: profile → (plan, build folder)."""
    profiles = [str(ROOT / "targets" / f"{name}.yaml") for name in ("kfp-gke", "gcp-prod")]
    compilation = compile_system(str(SPEC), resolve_profiles(str(SPEC), profiles), render=True, git_commit=COMMIT)
    folders = write_builds(compilation.results, tmp_path_factory.mktemp("builds"))
    return {result.plan.profile: (result.plan, folder) for result, folder in zip(compilation.results, folders)}


def task_args(folder: Path, pipeline: str, task: str) -> list[str]:
    """The args of a task's container in the compiled IR."""
    spec = next(d for d in yaml.safe_load_all((folder / "pipelines" / f"{pipeline}.yaml").read_text()) if d)
    return list(spec["deploymentSpec"]["executors"][f"exec-{task}"]["container"]["args"])


def task_config(folder: Path, pipeline: str, task: str) -> dict[str, Any]:
    args = task_args(folder, pipeline, task)
    return json.loads(args[args.index("--config") + 1])


def trigger(config: dict[str, Any], out: Path) -> dict[str, Any] | None:
    """Run trigger-retraining as the task does; its `retraining` output (None when it failed)."""
    if out.exists():
        out.unlink()
    status = run_step(["trigger-retraining", "--config", json.dumps(config), "--output", f"retraining={out}"])
    return json.loads(out.read_text()) if status == 0 else None


def deploy_kubeflow(plan: Plan, folder: Path, api: KfpStandIn) -> None:
    import kfp

    from mlcompile.targets.kubeflow.deploy import deploy

    deploy(plan, folder, dry_run=False, client=kfp.Client(host=api.host))


def test_a_breach_on_kubeflow_starts_a_run_of_the_builds_training_version(builds: dict[str, tuple[Plan, Path]], tmp_path: Path) -> None:
    plan, folder = builds["kfp-gke"]
    config = task_config(folder, "churn-prediction-monitoring", "trigger-retraining")
    with KfpStandIn() as api:
        deploy_kubeflow(plan, folder, api)
        config["platform"]["host"] = api.host
        first = trigger(config, tmp_path / "retraining.json")
        assert first is not None and first["submitted"] in api.runs
        run = api.runs[first["submitted"]]
        version = api.versions[run["pipeline_version_reference"]["pipeline_version_id"]]
        assert version["display_name"] == config["platform_run"]["version"] and version["display_name"].startswith(f"{TRAINING}-")
        assert api.pipelines[version["pipeline_id"]]["display_name"] == TRAINING
        assert api.experiments[run["experiment_id"]]["display_name"] == "churn-prediction"
        assert run["service_account"] == "kfp-pipeline-runner"
        assert run["runtime_config"]["pipeline_root"] == "gs://acme-ml-kfp/pipeline-root"

        again = trigger(config, tmp_path / "retraining.json")  # the first run is still PENDING
        assert again is not None and again["submitted"] is None and again["active"] == first["submitted"]
        assert len(api.runs) == 1

        api.runs[first["submitted"]]["state"] = "SUCCEEDED"
        after = trigger(config, tmp_path / "retraining.json")
        assert after is not None and after["submitted"] not in (None, first["submitted"]) and len(api.runs) == 2


def test_a_breach_on_vertex_creates_a_pipeline_job_from_the_deployed_training_job(
    builds: dict[str, tuple[Plan, Path]], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from mlcompile.targets.vertex.deploy import deploy

    plan, folder = builds["gcp-prod"]
    config = task_config(folder, "churn-prediction-monitoring", "trigger-retraining")
    with VertexStandIn() as api:
        deploy(plan, folder, dry_run=False, api_endpoint=api.endpoint)
        monkeypatch.setenv("MLCOMPILE_VERTEX_API_ENDPOINT", api.endpoint)
        ((deployed_id, deployed),) = api.pipeline_jobs.items()
        assert config["platform_run"]["template"] == deployed["name"]

        busy = trigger(config, tmp_path / "retraining.json")  # deploy's training run has not finished
        assert busy is not None and busy["submitted"] is None and busy["active"] == deployed_id and len(api.pipeline_jobs) == 1

        deployed["state"] = "PIPELINE_STATE_SUCCEEDED"
        done = trigger(config, tmp_path / "retraining.json")
        assert done is not None and done["submitted"] in api.pipeline_jobs and done["submitted"].startswith(f"{TRAINING}-breach-")
        job = api.pipeline_jobs[done["submitted"]]
        assert job["pipelineSpec"] == deployed["pipelineSpec"] and job["runtimeConfig"] == deployed["runtimeConfig"]
        assert job["serviceAccount"] == "vertex-pipelines@acme-ml-prod.iam.gserviceaccount.com"
        assert job["displayName"] == TRAINING and job["labels"]["mlcompile-trigger"] == "breach"


def test_a_trigger_before_deploy_fails_and_says_so(builds: dict[str, tuple[Plan, Path]], tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _, folder = builds["kfp-gke"]
    config = task_config(folder, "churn-prediction-monitoring", "trigger-retraining")
    with KfpStandIn() as api:
        config["platform"]["host"] = api.host
        assert trigger(config, tmp_path / "retraining.json") is None
    assert f"pipeline {TRAINING} is not on Kubeflow Pipelines: deploy this build" in capsys.readouterr().err


def labels_frame(config: dict[str, Any], days: int) -> Any:
    (source,) = config["features"]["sources"]
    stamps = pd.date_range("2026-01-01", periods=days, freq="D", tz="UTC")
    return pd.DataFrame({source["timestamp_field"]: stamps, "customer_id": [f"c{i}" for i in range(days)], "churned": [i % 2 for i in range(days)]})


@pytest.mark.parametrize("profile", ["kfp-gke", "gcp-prod"])
def test_the_new_data_sensor_submits_only_past_its_watermark_and_advances_it_after_a_submit(
    builds: dict[str, tuple[Plan, Path]], profile: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    plan, folder = builds[profile]
    config = task_config(folder, SENSOR, "trigger-retraining")
    assert config["platform_run"]["watermark"].endswith("/churn-prediction/watermarks/churn_labels.json")
    source, watermark = tmp_path / "churn_labels.parquet", tmp_path / "watermark.json"
    config["features"]["sources"][0].update(uri=str(source), format="parquet")
    config["platform_run"]["watermark"] = str(watermark)
    labels_frame(config, 30).to_parquet(source)
    out = tmp_path / "retraining.json"
    with KfpStandIn() as kfp_api, VertexStandIn() as vertex_api:
        if profile == "kfp-gke":
            deploy_kubeflow(plan, folder, kfp_api)
            config["platform"]["host"] = kfp_api.host
            submitted: dict[str, Any] = kfp_api.runs
        else:
            from mlcompile.targets.vertex.deploy import deploy

            deploy(plan, folder, dry_run=False, api_endpoint=vertex_api.endpoint)
            monkeypatch.setenv("MLCOMPILE_VERTEX_API_ENDPOINT", vertex_api.endpoint)
            for job in vertex_api.pipeline_jobs.values():
                job["state"] = "PIPELINE_STATE_SUCCEEDED"
            submitted = vertex_api.pipeline_jobs
        before = len(submitted)

        first = trigger(config, out)  # first look: the watermark, no run
        assert first is not None and first["submitted"] is None and json.loads(watermark.read_text())["rows"] == 30
        unchanged = trigger(config, out)  # the same rows an hour later
        assert unchanged is not None and unchanged["submitted"] is None and len(submitted) == before

        labels_frame(config, 31).to_parquet(source)  # a new day of labels
        if profile == "kfp-gke":
            kfp_api.fail_always.append(("POST", "/apis/v2beta1/runs", 400))
            assert trigger(config, out) is None  # refused: the watermark stays, the next tick retries
            assert json.loads(watermark.read_text())["rows"] == 30
            kfp_api.fail_always.clear()
        new = trigger(config, out)
        assert new is not None and new["submitted"] in submitted and len(submitted) == before + 1
        seen = json.loads(watermark.read_text())
        assert seen["rows"] == 31 and seen["max_timestamp"].startswith("2026-01-31")
        quiet = trigger(config, out)
        assert quiet is not None and quiet["submitted"] is None and len(submitted) == before + 1


def trained_model(tmp_path: Path) -> dict[str, str]:
    """A small model and its evaluation, as the train and evaluate tasks leave them."""
    import numpy as np

    from mlcompile.runtime import step_function
    from mlcompile.runtime.io import write_table

    rng = np.random.default_rng(0)
    x = rng.normal(size=120)
    frame = pd.DataFrame({"k": [f"e{i}" for i in range(120)], "ts": "2026-01-01T00:00:00Z", "x": x, "y": (x > 0).astype(int)})
    meta = {
        "features": [{"ref": "v:x", "view": "v", "column": "x", "dtype": "float64"}],
        "label": "y",
        "timestamp": "ts",
        "keys": ["k"],
        "sources": {},
        "rows": {},
        "coercion": {},
    }
    write_table(str(tmp_path / "train.parquet"), frame, meta)
    (tmp_path / "report.json").write_text(json.dumps({"expectations": {}}))
    params = {"label": "y", "estimator": "sklearn.linear_model.LogisticRegression", "estimator_params": {}}
    paths = {"model": str(tmp_path / "model"), "metrics": str(tmp_path / "evaluation.json")}
    step_function("train")(
        {"params": params},
        {"train": str(tmp_path / "train.parquet"), "report": str(tmp_path / "report.json")},
        {"model": paths["model"], "metrics": str(tmp_path / "t.json")},
    )
    step_function("evaluate")(
        {"params": {"metrics": ["roc_auc"], "label": "y"}}, {"model": paths["model"], "test": str(tmp_path / "train.parquet")}, {"metrics": paths["metrics"]}
    )
    return paths


def test_kubeflow_registration_tags_the_version_with_the_run_profile_and_commit(
    builds: dict[str, tuple[Plan, Path]], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pytest.importorskip("mlflow")
    monkeypatch.setenv(ENV_PIPELINE_RUN, "")  # --pipeline-run sets it in this process: monkeypatch unsets it after the test
    pytest.importorskip("sklearn")
    from mlflow import MlflowClient

    plan, folder = builds["kfp-gke"]
    args = task_args(folder, TRAINING, "register")
    assert args[args.index("--pipeline-run") + 1] == "{{$.pipeline_job_uuid}}"  # KFP puts the run id there
    config = task_config(folder, TRAINING, "register")
    config["registry"]["tracking_uri"] = f"sqlite:///{tmp_path / 'mlflow.db'}"
    model = trained_model(tmp_path)
    argv = ["register", "--config", json.dumps(config), "--input", f"model={model['model']}", "--input", f"metrics={model['metrics']}"]
    assert run_step([*argv, "--pipeline-run", "8d5c1f0e-run"]) == 0
    (version,) = MlflowClient(tracking_uri=config["registry"]["tracking_uri"]).search_model_versions("name='churn-classifier'")
    assert version.tags["mlcompile.pipeline_run"] == "8d5c1f0e-run"
    assert version.tags["mlcompile.profile_sha256"] == plan.lineage.profile_sha256 and len(plan.lineage.profile_sha256) == 64
    assert version.tags["mlcompile.git_commit"] == COMMIT


def test_vertex_registration_labels_the_version_and_outputs_its_google_vertex_model(
    builds: dict[str, tuple[Plan, Path]], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from mlcompile.runtime import launch

    plan, folder = builds["gcp-prod"]
    spec = next(d for d in yaml.safe_load_all((folder / "pipelines" / f"{TRAINING}.yaml").read_text()) if d)
    outputs = spec["components"]["comp-register"]["outputDefinitions"]["artifacts"]
    assert outputs["vertex_model"]["artifactType"] == {"schemaTitle": "google.VertexModel", "schemaVersion": "0.0.1"}
    args = task_args(folder, TRAINING, "register")
    assert args[args.index("--pipeline-run") + 1] == "{{$.pipeline_job_name}}"  # the PipelineJob id on Vertex AI
    assert args[args.index("--executor-output") + 1] == "{{$.outputs.output_file}}"
    config = task_config(folder, TRAINING, "register")
    executor_output = tmp_path / "executor_output.json"
    monkeypatch.setenv(ENV_PIPELINE_RUN, "")  # --pipeline-run sets it in this process: monkeypatch unsets it after the test
    with VertexStandIn() as api:
        monkeypatch.setenv("MLCOMPILE_VERTEX_API_ENDPOINT", api.endpoint)
        (tmp_path / "model").mkdir()  # what the trainer wrote, and the evaluation the register step reads
        (tmp_path / "model" / "model.json").write_text(json.dumps({"format": "mlcompile.container/1"}))
        (tmp_path / "metrics.json").write_text(json.dumps({"metrics": {"roc_auc": 0.8}}))
        argv = ["register", "--config", json.dumps(config), "--input", f"model={tmp_path / 'model'}", "--input", f"metrics={tmp_path / 'metrics.json'}"]
        argv += [
            "--output",
            f"vertex_model={tmp_path / 'vertex_model'}",
            "--pipeline-run",
            "churn-prediction-training-20260101",
            "--executor-output",
            str(executor_output),
        ]
        assert launch.main(argv) == 0
        ((name, model),) = api.models.items()
    labels = model["versions"][0]["request"]["model"]["labels"]
    assert labels["mlcompile-pipeline-run"] == "churn-prediction-training-20260101"
    assert labels["mlcompile-profile-sha256"] == plan.lineage.profile_sha256[:63] and labels["mlcompile-git-commit"] == COMMIT
    (artifact,) = json.loads(executor_output.read_text())["artifacts"]["vertex_model"]["artifacts"]
    assert artifact["metadata"] == {"resourceName": f"{name}@1"}
    assert artifact["uri"] == f"{api.endpoint}/v1/{name}@1"


def test_vertex_email_alerts_become_cloud_monitoring_channels_and_a_policy_on_the_alert_steps_log_line(
    builds: dict[str, tuple[Plan, Path]], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    monitoring_v3 = pytest.importorskip("google.cloud.monitoring_v3")
    from google.protobuf import json_format

    from mlcompile.runtime import step_function
    from mlcompile.targets.vertex.deploy import deploy

    plan, folder = builds["gcp-prod"]
    with VertexStandIn() as api:
        actions = deploy(plan, folder, dry_run=False, api_endpoint=api.endpoint)
        assert {a.resource: a.action for a in actions if "alert" in a.resource or "notification" in a.resource} == {
            "notification channel growth-ml@acme.example": "create", "notification channel retention-analytics@acme.example": "create",
            "alert policy churn-prediction monitoring breach": "create",
        }  # fmt: skip
        again = deploy(plan, folder, dry_run=False, api_endpoint=api.endpoint)
        assert all(a.action == "unchanged" for a in again if "alert" in a.resource or "notification" in a.resource)
        created = dict(api.monitoring)
    channels = {n: b for n, b in created.items() if "/notificationChannels/" in n}
    (policy,) = (b for n, b in created.items() if "/alertPolicies/" in n)
    for body in channels.values():  # Cloud Monitoring's own types accept every field as sent
        assert monitoring_v3.NotificationChannel.wrap(json_format.ParseDict(body, monitoring_v3.NotificationChannel.pb()())).type_ == "email"
    parsed = json_format.ParseDict(policy, monitoring_v3.AlertPolicy.pb()())
    assert sorted(parsed.notification_channels) == sorted(channels)
    assert {b["labels"]["email_address"] for b in channels.values()} == {"growth-ml@acme.example", "retention-analytics@acme.example"}

    config = task_config(folder, "churn-prediction-monitoring", "alert")
    drift = tmp_path / "drift.json"
    drift.write_text(json.dumps({"breach": True, "check": "drift", "drifted": ["orders_30d"]}))
    config["params"]["alerts"] = [a for a in config["params"]["alerts"] if a["channel"] == "email"]
    result = step_function("alert")(config, {"check-drift": str(drift)}, {})
    assert result["channels"][0]["status"].startswith("sent by Cloud Monitoring")
    phrase = parsed.conditions[0].condition_matched_log.filter.strip('"')  # Logging matches the quoted text anywhere in the entry
    assert any(phrase in line for line in capsys.readouterr().out.splitlines())


def test_kubeflow_email_alerts_are_posted_to_the_clusters_alertmanager_and_routed_to_the_recipients(
    builds: dict[str, tuple[Plan, Path]], tmp_path: Path
) -> None:
    from alertmanager_api import AlertmanagerStandIn

    from mlcompile.runtime import step_function

    _, folder = builds["kfp-gke"]
    manifest = json.loads((folder / "manifest.json").read_text())
    assert {"path": "monitoring/alertmanager-config.yaml", "kind": "prometheus_operator.alertmanager_config"}.items() <= next(
        f for f in manifest["files"] if f["path"] == "monitoring/alertmanager-config.yaml"
    ).items()
    routing = yaml.safe_load((folder / "monitoring" / "alertmanager-config.yaml").read_text())
    assert (routing["apiVersion"], routing["kind"], routing["metadata"]["namespace"]) == (
        "monitoring.coreos.com/v1alpha1",
        "AlertmanagerConfig",
        "ml-pipelines",
    )
    config = task_config(folder, "churn-prediction-monitoring", "alert")
    config["params"]["alerts"] = [a for a in config["params"]["alerts"] if a["channel"] == "email"]
    drift = tmp_path / "drift.json"
    drift.write_text(json.dumps({"breach": True, "check": "drift", "drifted": ["orders_30d"]}))
    with AlertmanagerStandIn([routing]) as alertmanager:
        config["platform"]["alertmanager"]["url"] = alertmanager.url
        result = step_function("alert")(config, {"check-drift": str(drift)}, {})
    assert result["channels"][0]["status"].startswith("posted to the Alertmanager")
    (posted,) = alertmanager.alerts
    assert posted["annotations"]["summary"].startswith("[mlcompile] churn-prediction: monitoring breach")
    assert alertmanager.mailed == ["growth-ml@acme.example", "retention-analytics@acme.example"]


def test_an_email_alert_on_a_kubeflow_profile_without_alertmanager_is_refused_at_validate(tmp_path: Path) -> None:
    import shutil

    from click.testing import CliRunner

    from mlcompile.cli import main

    shutil.copytree(ROOT / "targets", tmp_path / "targets")
    profile = yaml.safe_load((tmp_path / "targets" / "kfp-gke.yaml").read_text())
    del profile["kubeflow"]["alertmanager"]
    (tmp_path / "targets" / "kfp-gke.yaml").write_text(yaml.safe_dump(profile, sort_keys=False))
    done = CliRunner().invoke(main, ["validate", str(SPEC), "--target", str(tmp_path / "targets" / "kfp-gke.yaml")])
    assert done.exit_code == 2, done.output
    assert "mlcompile.yaml:115:3: error: monitoring.alerts.0: a Kubeflow cluster sends no email by itself" in done.output
    assert "hint: name the cluster's Alertmanager in the profile (`kubeflow.alertmanager:" in done.output


def test_the_emulators_summary_names_the_run_the_trigger_step_submitted(tmp_path: Path) -> None:
    """`retraining.submitted` comes from the trigger task's `retraining` output artifact (what
    the platform's UI shows for the task), unless a platform service reported the run itself."""
    from types import SimpleNamespace

    from mlcompile.emulate.ir import SUCCEEDED, PipelineResult, TaskResult
    from mlcompile.emulate.summary import summarize

    (tmp_path / "gcs" / "acme" / "run").mkdir(parents=True)
    (tmp_path / "gcs" / "acme" / "run" / "retraining").write_text(
        json.dumps({"pipeline": "churn-prediction-training", "submitted": "run-42", "status": "submitted run run-42"})
    )
    trigger = TaskResult("trigger-retraining", SUCCEEDED, artifacts={"retraining": {"uri": "gs://acme/run/retraining", "metadata": {}}})
    monitoring = PipelineResult("churn-prediction-monitoring", "m-1", SUCCEEDED, {"trigger-retraining": trigger})
    plan = SimpleNamespace(registry=SimpleNamespace(model="churn-classifier"), online=None)
    session = SimpleNamespace(
        system="churn-prediction", profile="gcp-prod", platform="vertex", plan=plan, facts={}, results=[monitoring], root=tmp_path, work=tmp_path
    )
    # the submitted run has not run here: its status, gate and version are unknown
    assert summarize(session)["retraining"] == {"requested": True, "submitted": "run-42", "status": None, "gate": None, "version": None, "tasks": None}
    session.facts["retraining"] = {"submitted": "projects/p/locations/l/pipelineJobs/retrain-1", "status": "pending"}
    assert summarize(session)["retraining"]["submitted"] == "projects/p/locations/l/pipelineJobs/retrain-1"
