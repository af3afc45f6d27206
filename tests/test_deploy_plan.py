"""Saved deploy plans, against the platforms' local stand-ins (KFP, Vertex AI, Azure ARM) and
moto: `deploy --dry-run --out-plan p.json` reads the platform and writes nothing;
`deploy --plan p.json` applies exactly the reviewed changes, and refuses (exit 2, one line,
nothing applied) when the spec or the live state changed in between."""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml
from click.testing import CliRunner, Result
from requires import require

from mlcompile.cli import main

sys.path.insert(0, str(Path(__file__).parent))
sys.path.insert(0, str(Path(__file__).parent / "stand_ins"))

ROOT = Path(__file__).resolve().parents[1]
SCHEMA = json.loads((ROOT / "schemas/deploy-plan-v1.schema.json").read_text())


def mlcompile(*args: str) -> Result:
    return CliRunner().invoke(main, list(args))


def plan(spec: Path | str, profile: Path | str, out: Path) -> dict[str, Any]:
    done = mlcompile("deploy", str(spec), "--target", str(profile), "--dry-run", "--out-plan", str(out), "--git-commit", "none")
    assert done.exit_code == 0, done.output
    saved = json.loads(out.read_text())
    jsonschema.validate(saved, SCHEMA)
    return saved


def apply(out: Path) -> Result:
    return mlcompile("deploy", "--plan", str(out))


def planned(saved: dict[str, Any], action: str) -> list[str]:
    return [change["resource"] for change in saved["changes"] if change["action"] == action]


def applied(done: Result, action: str) -> list[str]:
    return [line.split(": ")[0].removeprefix(f"{action} ") for line in done.stdout.splitlines() if line.startswith(f"{action} ")]


def assert_refused(done: Result, reason: str) -> None:
    assert done.exit_code == 2, done.output
    (line,) = done.stderr.strip().splitlines()
    assert line.startswith("error: ") and "is out of date" in line and reason in line and "nothing was applied" in line, line


def test_the_plan_file_names_what_it_was_made_from() -> None:
    """What CI needs to read a plan without mlcompile: the counts per action and the build hash."""
    assert {"summary", "changes", "build_sha256", "git_commit", "spec", "target"} <= set(SCHEMA["required"])
    done = mlcompile("deploy", "--plan", str(ROOT / "README.md"))
    assert done.exit_code == 2 and "not a deploy plan" in done.stderr


# ------------------------------------------------------------------ Kubeflow Pipelines
require("kfp")
from kfp_api import KfpStandIn  # noqa: E402
from test_target_kubeflow_deploy import profiles_pointing_at  # noqa: E402


@pytest.fixture
def churn(tmp_path: Path) -> Path:
    """A copy of examples/churn that a test may edit between plan and apply."""
    shutil.copytree(ROOT / "examples/churn", tmp_path / "churn")
    return tmp_path / "churn/mlcompile.yaml"


def test_kubeflow_plan_then_apply_creates_exactly_the_planned_resources(tmp_path: Path, churn: Path) -> None:
    with KfpStandIn() as api:
        profile = profiles_pointing_at(api.host, tmp_path)
        saved = plan(churn, profile, tmp_path / "p.json")
        assert {method for method, _, _ in api.calls} == {"GET"}, "the dry run reads the platform and writes nothing"
        assert saved["summary"]["create"] == len(planned(saved, "create")) > 0
        assert all(c["live"] == "absent" for c in saved["changes"] if c["action"] == "create")

        done = apply(tmp_path / "p.json")
        assert done.exit_code == 0, done.output
        assert applied(done, "create") == planned(saved, "create")
        pipelines = sorted(f"pipeline {p['display_name']}" for p in api.pipelines.values())
        runs = sorted(f"recurring run {r['display_name']}" for r in api.recurring_runs.values())
        assert pipelines + runs == sorted(r for r in planned(saved, "create") if r.startswith(("pipeline ", "recurring run ")))

        again = apply(tmp_path / "p.json")  # a plan is applied once: the platform no longer compares the same
        assert_refused(again, "planned create, now unchanged")


def test_kubeflow_plan_is_refused_when_the_spec_changed_since(tmp_path: Path, churn: Path) -> None:
    with KfpStandIn() as api:
        profile = profiles_pointing_at(api.host, tmp_path)
        plan(churn, profile, tmp_path / "p.json")
        churn.write_text(churn.read_text().replace('schedule: "0 2 * * 1"', 'schedule: "0 4 * * 1"'))
        done = apply(tmp_path / "p.json")
        assert_refused(done, "the build changed since the plan was made")
        assert api.pipelines == {} and api.recurring_runs == {}


def test_kubeflow_plan_is_refused_when_the_live_state_changed_since(tmp_path: Path, churn: Path) -> None:
    with KfpStandIn() as api:
        profile = profiles_pointing_at(api.host, tmp_path)
        plan(churn, profile, tmp_path / "p.json")
        api.experiments["someone-else"] = {"experiment_id": "someone-else", "display_name": "churn-prediction", "namespace": "ml-pipelines"}
        done = apply(tmp_path / "p.json")
        assert_refused(done, "experiment churn-prediction: planned create, now unchanged")
        assert api.pipelines == {}


def test_mlcompile_plan_is_deploy_dry_run(tmp_path: Path, churn: Path) -> None:
    with KfpStandIn() as api:
        profile = profiles_pointing_at(api.host, tmp_path)
        saved = plan(churn, profile, tmp_path / "p.json")
        done = mlcompile("plan", str(churn), "--target", str(profile), "--out-plan", str(tmp_path / "q.json"), "--git-commit", "none")
        assert done.exit_code == 0, done.output
        assert json.loads((tmp_path / "q.json").read_text()) == saved
        verbs = {"create": "would create", "manual": "manual"}  # manual: applied with kubectl (the AlertmanagerConfig)
        assert done.stdout.splitlines() == [f"{verbs[c['action']]} {c['resource']}" + (f": {c['detail']}" if c["detail"] else "") for c in saved["changes"]]
        assert {method for method, _, _ in api.calls} == {"GET"}


def test_a_plan_names_its_spec_and_profile_and_refuses_others(tmp_path: Path, churn: Path) -> None:
    with KfpStandIn() as api:
        profile = profiles_pointing_at(api.host, tmp_path)
        plan(churn, profile, tmp_path / "p.json")
        done = mlcompile("deploy", str(ROOT / "examples/batch-scoring/mlcompile.yaml"), "--plan", str(tmp_path / "p.json"))
        assert done.exit_code == 2 and f"was made for spec {churn}" in done.stderr
        done = mlcompile("deploy", "--plan", str(tmp_path / "p.json"), "--git-commit", "abc")
        assert done.exit_code == 2 and "--git-commit cannot change a saved plan" in done.stderr
        assert api.pipelines == {}


# ------------------------------------------------------------------ Vertex AI
require("google.cloud.aiplatform")
from vertex_api import VertexStandIn  # noqa: E402


@pytest.fixture
def vertex(monkeypatch: pytest.MonkeyPatch) -> Any:
    with VertexStandIn() as api:
        monkeypatch.setenv("MLCOMPILE_VERTEX_API_ENDPOINT", api.endpoint)
        yield api


def test_vertex_plan_then_apply_creates_exactly_the_planned_resources(vertex: Any, tmp_path: Path, churn: Path) -> None:
    profile = ROOT / "targets/gcp-prod.yaml"
    saved = plan(churn, profile, tmp_path / "p.json")
    assert {call[0] for call in vertex.calls} == {"GET"}
    assert "schedule churn-prediction-retraining" in planned(saved, "create")
    assert any(r.startswith("feature view ") for r in planned(saved, "create")), "the feature store is compared too"

    done = apply(tmp_path / "p.json")
    assert done.exit_code == 0, done.output
    assert applied(done, "create") == planned(saved, "create")
    created = {f"schedule {s['displayName']}" for s in vertex.schedules.values()}
    created |= {f"endpoint {e}" for e in vertex.endpoints} | {f"pipeline job {j}" for j in vertex.pipeline_jobs}
    assert created == {r for r in planned(saved, "create") if r.startswith(("schedule ", "endpoint ", "pipeline job "))}

    # the next plan: nothing to do
    assert set(c["action"] for c in plan(churn, profile, tmp_path / "p2.json")["changes"]) == {"unchanged"}


def test_vertex_plan_is_refused_when_the_live_state_or_the_spec_changed(vertex: Any, tmp_path: Path, churn: Path) -> None:
    profile = ROOT / "targets/gcp-prod.yaml"
    plan(churn, profile, tmp_path / "p.json")
    # someone creates the retraining schedule by hand in between
    parent = "projects/acme-ml-prod/locations/us-central1"
    vertex.schedules[f"{parent}/schedules/by-hand"] = {"name": f"{parent}/schedules/by-hand", "displayName": "churn-prediction-retraining", "cron": "0 1 * * *"}
    assert_refused(apply(tmp_path / "p.json"), "schedule churn-prediction-retraining: planned create, now update")

    vertex.schedules.clear()
    churn.write_text(churn.read_text().replace("canary_percent: 10", "canary_percent: 25"))
    assert_refused(apply(tmp_path / "p.json"), "the build changed since the plan was made")
    assert vertex.schedules == {} and vertex.endpoints == {} and vertex.pipeline_jobs == {}


# ------------------------------------------------------------------ Azure ML
require("azure.ai.ml", "moto")
from test_target_azureml_deploy import WORKSPACE, arm  # noqa: E402,F401  (fixture: the ARM stand-in)


@pytest.mark.filterwarnings("ignore::DeprecationWarning", "ignore::PendingDeprecationWarning")
def test_azureml_plan_then_apply_and_a_live_change_in_between(arm: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(ROOT)
    spec, profile = "examples/batch-scoring/mlcompile.yaml", "targets/azure-prod.yaml"
    saved = plan(spec, profile, tmp_path / "p.json")
    assert [c for c in arm.calls if c.method not in ("GET", "POST")] == []
    assert "schedule invoice-late-payment-model-monitor" in planned(saved, "create")

    # the monitor's reference data disappears between review and apply
    reference = [k for k in arm.resources if "/data/invoice-late-payment-training-data" in k]
    kept = {k: arm.resources.pop(k) for k in reference}
    assert_refused(apply(tmp_path / "p.json"), "schedule invoice-late-payment-model-monitor: planned create, now deferred")
    assert not arm.calls_to("PUT", "/schedules/")

    arm.resources.update(kept)
    done = apply(tmp_path / "p.json")
    assert done.exit_code == 0, done.output
    assert applied(done, "create") == planned(saved, "create")
    schedules = {f"schedule {k.rsplit('/', 1)[1]}" for k in arm.resources if f"{WORKSPACE}/schedules/".lower() in k}
    assert schedules == {r for r in planned(saved, "create") if r.startswith("schedule ")}


# ------------------------------------------------------------------ SageMaker (moto)
from test_target_sagemaker_deploy import aws, client, moto_endpoint  # noqa: E402,F401  (fixtures: a moto server on 127.0.0.1)


def test_sagemaker_plan_then_apply_and_a_live_change_in_between(aws: dict[str, str], tmp_path: Path) -> None:
    spec, profile = ROOT / "examples/batch-scoring/mlcompile.yaml", ROOT / "targets/aws-prod.yaml"
    saved = plan(spec, profile, tmp_path / "p.json")
    sagemaker = client("sagemaker")
    assert sagemaker.list_pipelines()["PipelineSummaries"] == []  # type: ignore[attr-defined]
    group = next(r for r in planned(saved, "create") if r.startswith("model package group ")).removeprefix("model package group ")

    sagemaker.create_model_package_group(ModelPackageGroupName=group)  # type: ignore[attr-defined]
    assert_refused(apply(tmp_path / "p.json"), f"model package group {group}: planned create, now unchanged")
    assert sagemaker.list_pipelines()["PipelineSummaries"] == []  # type: ignore[attr-defined]

    saved = plan(spec, profile, tmp_path / "p.json")
    done = apply(tmp_path / "p.json")
    assert done.exit_code == 0, done.output
    assert applied(done, "create") == planned(saved, "create")
    pipelines = {f"pipeline {p['PipelineName']}" for p in sagemaker.list_pipelines()["PipelineSummaries"]}  # type: ignore[attr-defined]
    assert pipelines == {r for r in planned(saved, "create") if r.startswith("pipeline ")}
