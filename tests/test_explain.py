"""`mlcompile explain`: the readable account of what a build creates, checked line by line for
the churn example on this machine and on Vertex AI (machine types from the catalog)."""

from __future__ import annotations

from pathlib import Path

from click.testing import CliRunner

from mlcompile.cli import main

ROOT = Path(__file__).resolve().parents[1]
CHURN = str(ROOT / "examples" / "churn" / "mlcompile.yaml")
RANKER = str(ROOT / "examples" / "ranker-gpu" / "mlcompile.yaml")


def explain(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(main, ["explain", *args])
    return result.exit_code, result.output


def test_churn_on_gcp_prod_names_vertex_machines_endpoint_schedules_and_files() -> None:
    code, out = explain(CHURN, "--target", str(ROOT / "targets" / "gcp-prod.yaml"))
    assert code == 0, out
    lines = out.splitlines()
    assert lines[0] == "churn-prediction on profile gcp-prod: Vertex AI (project acme-ml-prod, region us-central1)"
    for expected in [
        "Pipeline churn-prediction-training: 30-day churn risk for subscription customers",
        "  3. train [train] on e2-standard-4 (4 vCPU, 16 GiB), timeout 1h (mlcompile runtime; after validate-data)",
        "  6. register [register] on e2-standard-4 (4 vCPU, 16 GiB), timeout 1h (mlcompile runtime; after gate; only when gate passes)",
        "  1. score-batch [score_batch] on e2-standard-4 (4 vCPU, 16 GiB), no timeout (mlcompile runtime; first)",
        "Gates (all must pass before registration): roc_auc >= 0.78; f1 >= 0.55; roc_auc >= production +0",
        "Registry: model churn-classifier, approval manual, aliases candidate",
        "Online endpoint churn-scorer",
        "  serves model churn-classifier on e2-standard-4 (4 vCPU, 16 GiB)",
        "  replicas 2..6, autoscaling on cpu at 60",
        "  rollout: canary, 10% of traffic on a new version first",
        "  a new version is deployed once a person approves it in the registry",
        '  churn-prediction-batch-scoring: "30 7 * * *" UTC starts churn-prediction-batch-scoring',
        '  churn-prediction-retraining: "0 2 * * 1" UTC starts churn-prediction-training',
        "  churn-prediction-retrain-on-breach: a monitoring breach starts churn-prediction-training",
        "  churn-prediction-retrain-on-new-data: new data in churn_labels starts churn-prediction-training",
        "  performance: roc_auc below 0.75",
        '  view customer_activity: 3 features by customer_id from customer_activity_daily, ttl 30d, online, materialised "0 0 * * *" UTC',
        "  on a breach: retrain",
        "Files the vertex target writes (29 + cost.json + manifest.json)",  # with the <system>-deploy pipeline and its PipelineJob, the Cloud Monitoring alerting files
    ]:
        assert expected in lines, f"missing line {expected!r} in:\n{out}"
    kinds = {line.split()[0] for line in lines[lines.index("Files the vertex target writes (29 + cost.json + manifest.json)") + 1 :] if line.strip()}
    assert kinds == {
        "kfp.pipeline_spec", "vertex.pipeline_job", "vertex.schedule", "vertex.custom_job",
        "vertex.upload_model_request", "vertex.create_endpoint_request", "vertex.deploy_model_request",
        "vertex.create_feature_online_store_request", "vertex.create_feature_group_request",
        "vertex.batch_create_features_request", "vertex.create_feature_view_request",
        "monitoring.notification_channel", "monitoring.alert_policy",  # email alerts: Cloud Monitoring sends them
    }  # fmt: skip


def test_churn_on_local_shows_requests_not_machines() -> None:
    code, out = explain(CHURN, "--target", str(ROOT / "targets" / "local.yaml"))
    assert code == 0, out
    lines = out.splitlines()
    assert lines[0] == "churn-prediction on profile local: this machine (mlcompile run) (workdir .mlcompile)"
    for expected in [
        "  1. extract-features [extract_features] on 2 CPU, 8Gi, timeout 1h (mlcompile runtime; first)",
        "  3. train [train] on 4 CPU, 16Gi, timeout 1h (mlcompile runtime; after validate-data)",
        "  3. alert [alert] on 2 CPU, 8Gi, timeout 1h (mlcompile runtime; after check-drift, check-performance; only on a monitoring breach)",
        "  serves model churn-classifier on 2 CPU, 4Gi",
        "  request timeout 2s",
        "Files the local target writes (3 + cost.json + manifest.json)",
        "  mlcompile.plan              1  e.g. plan.json",
        "  feast.repo                  1  e.g. feature_repo/churn_prediction_features.py",
    ]:
        assert expected in lines, f"missing line {expected!r} in:\n{out}"


def test_gpu_tuning_on_sagemaker_shows_gpus_replicas_spot_and_tuning() -> None:
    code, out = explain(RANKER, "--target", str(ROOT / "targets" / "aws-prod.yaml"), "--no-files", "-q")
    assert code == 0, out
    lines = out.splitlines()
    assert (
        "  3. tune [tune] on ml.p4d.24xlarge (96 vCPU, 1152 GiB, 8x nvidia-a100-40gb), 2 replicas, spot, timeout 12h (your container; after validate-data)"
    ) in lines, out
    assert any(line.startswith("Tuning: bayesian, 24 trials (3 at a time), maximize ndcg_at_10") for line in lines), out
    assert not any(line.startswith("Files the") for line in lines)


def test_gpus_on_vertex_and_kubeflow_name_the_portable_and_the_native_accelerator() -> None:
    code, out = explain(RANKER, "--target", str(ROOT / "targets" / "gcp-prod.yaml"), "--no-files", "-q")
    assert code == 0, out
    assert "  serves model search-ranker on n1-standard-4 (4 vCPU, 15 GiB, 1x nvidia-t4 (NVIDIA_TESLA_T4))" in out.splitlines(), out
    code, out = explain(RANKER, "--target", str(ROOT / "targets" / "kfp-gke.yaml"), "--no-files", "-q")
    assert code == 0, out
    assert (
        "  serves model search-ranker on 4 CPU, 15Gi, 1x nvidia-t4 (nvidia.com/gpu), on nodes cloud.google.com/gke-accelerator=nvidia-tesla-t4"
    ) in out.splitlines(), out


def test_bad_spec_is_a_located_user_error(tmp_path: Path) -> None:
    spec = tmp_path / "mlcompile.yaml"
    spec.write_text("apiVersion: mlcompile/v1\nkind: MLSystem\nmetadata: {name: x}\n")
    result = CliRunner().invoke(main, ["explain", str(spec), "--target", str(ROOT / "targets" / "local.yaml")])
    assert result.exit_code == 2
    assert "mlcompile.yaml:3:" in result.output
