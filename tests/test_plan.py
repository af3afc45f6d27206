"""Lowering: what the plan says for a spec and a profile — the DAG, the machines, the
schedules and triggers — the one structure every target translates."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import jsonschema
import pytest

from mlcompile.build import compile_system, resolve_profiles
from mlcompile.errors import SpecError
from mlcompile.plan.nodes import Plan
from mlcompile.plan.serialize import plan_from_data, plan_to_data
from mlcompile.schema import json_schema

FIXTURE = Path(__file__).parent / "fixtures" / "system"


def plan_for(profile: str, spec: Path = FIXTURE / "mlcompile.yaml") -> tuple[Plan, list]:
    profiles = resolve_profiles(str(spec), [str(spec.parent / "targets" / f"{profile}.yaml")])
    compilation = compile_system(str(spec), profiles, render=False)
    return compilation.results[0].plan, compilation.warnings


@pytest.fixture
def workspace(tmp_path: Path) -> Path:
    shutil.copytree(FIXTURE, tmp_path / "system")
    return tmp_path / "system"


def test_training_dag_runs_from_features_to_registration_behind_the_gate() -> None:
    plan, _ = plan_for("local")
    steps = {s.name: s for s in plan.training.steps}
    # the spec's steps, then the local platform's: its online views are materialised after extraction
    assert [s.name for s in plan.training.steps] == ["extract-features", "validate-data", "tune", "evaluate", "gate", "register", "materialize-features"]
    assert steps["materialize-features"].depends_on == ("extract-features",)
    assert steps["validate-data"].depends_on == ("extract-features",)
    assert steps["tune"].depends_on == ("validate-data",)
    assert steps["register"].run_if == "gate"
    assert [(g.metric, g.comparison, g.threshold) for g in plan.gates] == [
        ("roc_auc", "min", 0.8),
        ("roc_auc", "min_delta_vs_production", 0.0),
    ]


def test_manual_approval_leaves_deployment_out_of_the_training_pipeline() -> None:
    plan, _ = plan_for("local")
    assert plan.registry.approval == "manual"
    assert "deploy-online" not in [s.name for s in plan.training.steps]
    assert plan.online is not None and plan.online.requires_approval


def test_auto_approval_deploys_the_endpoint_after_registration(workspace: Path) -> None:
    spec = workspace / "mlcompile.yaml"
    spec.write_text(spec.read_text().replace("approval: manual", "approval: auto"))
    plan, _ = plan_for("local", spec)
    deploy = plan.training.step("deploy-online")
    assert deploy.depends_on == ("register",) and deploy.run_if == "gate"
    assert deploy.params == {"endpoint": "churn", "model": "churn-classifier"}


def test_container_trainer_keeps_the_users_image_command_and_args() -> None:
    plan, _ = plan_for("local")
    tune = plan.training.step("tune")
    assert tune.uses_user_container
    assert (tune.image, tune.command, tune.args) == ("ghcr.io/acme/churn-train:1.4", ("python", "-m", "train"), ("--epochs", "3"))
    assert plan.training.step("evaluate").image == plan.runtime_image


def test_tuning_search_space_is_carried_sorted_by_name() -> None:
    plan, _ = plan_for("local")
    assert plan.tuning is not None
    assert (plan.tuning.metric, plan.tuning.goal, plan.tuning.max_trials, plan.tuning.parallel_trials) == ("roc_auc", "maximize", 20, 4)
    assert [(p.name, p.type, p.min, p.max, p.scale, p.values) for p in plan.tuning.params] == [
        ("epochs", "int", 2, 20, "linear", ()),
        ("learning_rate", "float", 0.01, 0.3, "log", ()),
        ("optimizer", "categorical", None, None, None, ("adam", "sgd")),
    ]


def test_local_profile_warns_at_the_spec_location_of_what_it_cannot_apply() -> None:
    plan, warnings = plan_for("local")
    assert plan.training.step("tune").resources.machine is None
    rendered = [w.render() for w in warnings]
    assert any("mlcompile.yaml:40:18: warning: training.resources.accelerator: accelerator nvidia-t4 is not applied" in r for r in rendered), rendered


def test_vertex_profile_resolves_the_overridden_accelerator_to_a_machine() -> None:
    plan, _ = plan_for("gcp-prod")
    resources = plan.training.step("tune").resources
    assert resources.accelerator is not None
    assert (resources.accelerator.type, resources.accelerator.count, resources.cpu, resources.memory) == ("nvidia-a100-40gb", 2, 8.0, "60Gi")
    assert resources.machine is not None
    assert (resources.machine.name, resources.machine.accelerator_platform_name, resources.machine.accelerator_count) == (
        "a2-highgpu-2g",
        "NVIDIA_TESLA_A100",
        2,
    )
    # mlcompile's own steps get a modest CPU machine, not the trainer's GPUs
    standard = plan.training.step("extract-features").resources.machine
    assert standard is not None and standard.accelerator is None and standard.name


def test_overrides_replace_sources_by_name_for_their_profile_only() -> None:
    vertex, _ = plan_for("gcp-prod")
    local, _ = plan_for("local")
    assert [s.uri for s in vertex.features.sources] == ["bq://acme.sales.transactions", "bq://acme.sales.churn_labels"]
    assert [s.uri for s in local.features.sources] == ["file://data/transactions.csv", "file://data/churn_labels.csv"]


def test_accelerator_a_platform_lacks_is_an_error_at_the_override_that_asked_for_it(workspace: Path) -> None:
    spec = workspace / "mlcompile.yaml"
    spec.write_text(spec.read_text().replace("type: nvidia-a100-40gb, count: 2", "type: nvidia-a10g, count: 1"))
    with pytest.raises(SpecError) as raised:
        plan_for("gcp-prod", spec)
    (diagnostic,) = raised.value.diagnostics
    text = spec.read_text().splitlines()
    assert "nvidia-a10g" in text[diagnostic.line - 1][diagnostic.col - 1 :]
    assert diagnostic.path == "training.resources.accelerator.type"
    assert "vertex" in diagnostic.message and diagnostic.hint and "nvidia-a100-40gb" in diagnostic.hint


def test_schedules_and_triggers_close_the_feedback_loop() -> None:
    plan, _ = plan_for("local")
    assert [(s.name, s.pipeline, s.cron, s.timezone) for s in plan.schedules] == [
        ("churn-prediction-retraining", "churn-prediction-training", "0 2 * * 0", "UTC"),
        ("churn-prediction-batch-scoring", "churn-prediction-batch-scoring", "0 3 * * *", "UTC"),
        ("churn-prediction-monitoring", "churn-prediction-monitoring", "0 * * * *", "UTC"),
    ]
    assert [(t.kind, t.pipeline, t.source) for t in plan.triggers] == [
        ("monitoring_breach", "churn-prediction-training", None),
        ("new_data", "churn-prediction-training", "transactions"),
    ]
    monitoring = plan.monitoring_pipeline
    assert monitoring is not None
    assert [s.name for s in monitoring.steps] == ["check-drift", "check-performance", "alert", "trigger-retraining"]
    assert monitoring.step("trigger-retraining").depends_on == ("check-drift", "check-performance")


def test_drift_on_all_features_means_every_dataset_feature() -> None:
    plan, _ = plan_for("local")
    assert plan.monitoring is not None
    assert plan.monitoring.drift_features == (
        "customer_activity:orders_30d",
        "customer_activity:spend_30d",
        "customer_activity:plan",
    )


def test_plan_json_round_trips_and_satisfies_its_published_schema() -> None:
    plan, _ = plan_for("gcp-prod")
    data = plan_to_data(plan)
    jsonschema.Draft202012Validator(json_schema("plan")).validate(data)
    assert plan_to_data(plan_from_data(data)) == data


def test_plan_json_names_the_spec_by_file_name_only(tmp_path: Path) -> None:
    plan, _ = plan_for("local")
    text = json.dumps(plan_to_data(plan))
    assert str(FIXTURE) not in text and '"file": "mlcompile.yaml"' in text
