"""`mlcompile deploy` for kubeflow against a local stand-in of the KFP REST API (127.0.0.1):
pipeline versions uploaded once per compiled spec (idempotent), recurring runs created."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from requires import require

require("kfp")
sys.path.insert(0, str(Path(__file__).parent / "stand_ins"))
from kfp_api import KfpStandIn  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


def profiles_pointing_at(host: str, tmp_path: Path) -> Path:
    targets = tmp_path / "targets"
    shutil.copytree(ROOT / "targets", targets)
    profile = yaml.safe_load((targets / "kfp-gke.yaml").read_text())
    profile["kubeflow"]["host"] = host
    (targets / "kfp-gke.yaml").write_text(yaml.safe_dump(profile, sort_keys=False))
    return targets / "kfp-gke.yaml"


def deploy(profile: Path) -> subprocess.CompletedProcess[str]:
    command = ["mlcompile", "deploy", "examples/churn/mlcompile.yaml", "-t", str(profile), "--yes", "--git-commit", "none"]
    return subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=120, env={**os.environ, "NO_PROXY": "127.0.0.1"})


def test_deploy_uploads_pipeline_versions_and_recurring_runs_then_changes_nothing(tmp_path: Path) -> None:
    with KfpStandIn() as api:
        profile = profiles_pointing_at(api.host, tmp_path)
        first = deploy(profile)
        assert first.returncode == 0, first.stderr
        assert "create pipeline churn-prediction-training: version churn-prediction-training-" in first.stdout
        assert "create recurring run churn-prediction-retraining: 0 0 2 * * 1" in first.stdout
        names = sorted(p["display_name"] for p in api.pipelines.values())
        assert names == [
            "churn-prediction-batch-scoring",
            "churn-prediction-deploy",
            "churn-prediction-materialize-daily",
            "churn-prediction-monitoring",
            "churn-prediction-retrain-on-new-data-sensor",
            "churn-prediction-training",
        ]  # fmt: skip  (deploy: run by an approver after moving the production alias)
        runs = {r["display_name"]: r for r in api.recurring_runs.values()}
        assert runs["churn-prediction-materialize-daily"]["trigger"]["cron_schedule"]["cron"] == "0 0 0 * * *"  # the online views' refresh
        assert runs["churn-prediction-retraining"]["trigger"]["cron_schedule"]["cron"] == "0 0 2 * * 1"
        assert runs["churn-prediction-retraining"]["service_account"] == "kfp-pipeline-runner"
        uploaded = {v["display_name"]: api.uploads[k] for k, v in api.versions.items()}
        training = next(content for name, content in uploaded.items() if name.startswith("churn-prediction-training-"))
        assert b"churn-prediction-training" in training and b"sdkVersion: kfp-2.17.3" in training
        versions_before, calls_before = len(api.versions), len(api.calls)

        second = deploy(profile)
        assert second.returncode == 0, second.stderr
        lines = [line for line in second.stdout.splitlines() if line.strip()]
        assert lines and all(line.startswith(("unchanged ", "manual ")) for line in lines), second.stdout  # manual: kubectl apply, not the KFP API
        assert len(api.versions) == versions_before  # same spec hash: no new version
        assert all(method == "GET" for method, _, _ in api.calls[calls_before:])  # the second deploy only reads


def test_a_changed_spec_uploads_a_new_version_and_replaces_its_recurring_run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from mlcompile.build import compile_system, resolve_profiles, write_builds
    from mlcompile.targets.kubeflow.deploy import deploy as kubeflow_deploy

    with KfpStandIn() as api:
        profile = profiles_pointing_at(api.host, tmp_path)
        spec = yaml.safe_load((ROOT / "examples/churn/mlcompile.yaml").read_text())
        actions = []
        for cron in ("0 2 * * 1", "0 4 * * 1"):
            spec["retraining"]["schedule"] = cron
            (tmp_path / "mlcompile.yaml").write_text(yaml.safe_dump(spec, sort_keys=False))
            compilation = compile_system(
                str(tmp_path / "mlcompile.yaml"), resolve_profiles(str(tmp_path / "mlcompile.yaml"), [str(profile)]), render=True, git_commit=None
            )
            (folder,) = write_builds(compilation.results, tmp_path / "out")
            actions = kubeflow_deploy(compilation.results[0].plan, folder, dry_run=False)
        by_resource = {a.resource: a for a in actions}
        assert by_resource["recurring run churn-prediction-retraining"].action == "update"
        assert by_resource["recurring run churn-prediction-retraining"].detail == "0 0 4 * * 1"
        # a new spec sha in its configs: a new version of the pipeline that exists
        assert by_resource["pipeline churn-prediction-training"].action == "update"
        assert by_resource["pipeline churn-prediction-training"].detail.startswith("new version churn-prediction-training-")
        runs = [r for r in api.recurring_runs.values() if r["display_name"] == "churn-prediction-retraining"]
        assert len(runs) == 1 and runs[0]["trigger"]["cron_schedule"]["cron"] == "0 0 4 * * 1"


def test_dry_run_reads_the_platform_and_changes_nothing(tmp_path: Path) -> None:
    with KfpStandIn() as api:
        profile = profiles_pointing_at(api.host, tmp_path)
        command = ["mlcompile", "deploy", "examples/churn/mlcompile.yaml", "-t", str(profile), "--dry-run", "--git-commit", "none"]
        done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, done.stderr
        assert "would create pipeline churn-prediction-training" in done.stdout
        assert api.calls and {method for method, _, _ in api.calls} == {"GET"}
        assert api.pipelines == {} and api.recurring_runs == {}
