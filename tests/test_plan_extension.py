"""Every step a build runs is in the plan. What a platform adds beyond the spec — new-data
sensors where runs start on a cron only, feature materialisation, the deploy pipeline an
approval starts, the local run's materialisation step — comes from its `extend_plan` during
lowering, so cost, explain and diff see those steps like the spec's own."""

from __future__ import annotations

from pathlib import Path

import pytest

from mlcompile import cost
from mlcompile.build import compile_system, resolve_profiles
from mlcompile.diff.engine import plan_resources
from mlcompile.explain import explain_plan
from mlcompile.plan.extension import ExtensionError, PlanExtension, extend, extended, platform_step
from mlcompile.plan.nodes import Pipeline, Plan, Schedule

ROOT = Path(__file__).resolve().parents[1]
GOLDEN = Path(__file__).parent / "golden"


def plan_of(profile: str, example: str = "churn") -> Plan:
    spec = str(ROOT / "examples" / example / "mlcompile.yaml")
    compilation = compile_system(spec, resolve_profiles(spec, [str(ROOT / "targets" / f"{profile}.yaml")]), render=False, git_commit=None)
    return compilation.results[0].plan


# the golden builds (tests/test_golden.py) are what each target writes: one file per pipeline
@pytest.mark.parametrize(("profile", "suffix"), [("kfp-gke", ".yaml"), ("gcp-prod", ".yaml"), ("aws-prod", ".definition.json"), ("azure-prod", ".yml")])
def test_the_plan_holds_every_pipeline_the_build_writes(profile: str, suffix: str) -> None:
    plan = plan_of(profile)
    written = {path.name.removesuffix(suffix) for path in (GOLDEN / "churn" / profile / "pipelines").glob(f"*{suffix}")}
    assert {p.name for p in plan.pipelines()} == written
    # churn retrains on new data and deploys on approval: every cloud platform adds pipelines for that
    assert {"churn-prediction-retrain-on-new-data-sensor", "churn-prediction-deploy"} <= {p.name for p in plan.platform_pipelines}


def test_the_plan_holds_every_recurring_run_the_kubeflow_build_writes() -> None:
    plan = plan_of("kfp-gke")
    folder = GOLDEN / "churn" / "kfp-gke" / "schedules"
    written = {path.name.removesuffix("-cronjob.yaml").removesuffix(".json") for path in folder.iterdir()}
    assert {s.name for s in plan.schedules} == written


def test_cost_explain_and_diff_see_the_steps_a_platform_adds() -> None:
    plan = plan_of("kfp-gke")
    added = {(p.name, s.name) for p in plan.platform_pipelines for s in p.steps}
    assert ("churn-prediction-retrain-on-new-data-sensor", "trigger-retraining") in added
    assert ("churn-prediction-materialize-daily", "materialize-features") in added

    estimate = cost.estimate(plan)
    assert added <= {(p["pipeline"], s["step"]) for p in estimate["pipelines"] for s in p["steps"]}
    assert {"churn-prediction-retrain-on-new-data-sensor", "churn-prediction-materialize-daily"} <= {s["schedule"] for s in estimate["schedules"]}

    text = explain_plan(plan)
    for pipeline in plan.platform_pipelines:
        assert f"Pipeline {pipeline.name}: {pipeline.description}" in text.splitlines()

    assert {f"step {pipeline}/{step}" for pipeline, step in added} <= set(plan_resources(plan))


def test_sagemaker_sensors_are_started_by_events_so_the_plan_schedules_none() -> None:
    plan = plan_of("aws-prod")
    assert "churn-prediction-retrain-on-new-data-sensor" in {p.name for p in plan.platform_pipelines}
    assert "churn-prediction-retrain-on-new-data-sensor" not in {s.pipeline for s in plan.schedules}


def test_platform_steps_run_the_runtime_on_the_standard_machine() -> None:
    plan = plan_of("kfp-gke")
    for pipeline in plan.platform_pipelines:
        for step in pipeline.steps:
            assert step.image == plan.runtime_image and step.command[:3] == ("python", "-m", "mlcompile.runtime")
            assert step.resources == plan.standard_resources


def test_a_platform_without_the_hook_adds_nothing() -> None:
    plan = plan_of("local")
    assert extend(plan, object()) is plan


def test_an_extension_that_does_not_fit_the_plan_is_refused() -> None:
    plan = plan_of("local")
    origin = plan.registry.origin
    step = platform_step(plan, "extra", "alert", origin, params={})
    training = plan.training.name
    with pytest.raises(ExtensionError, match="which the plan does not have"):
        extended(plan, PlanExtension(steps=(("no-such-pipeline", step),)))
    with pytest.raises(ExtensionError, match="which has a step of that name"):
        extended(plan, PlanExtension(steps=((training, platform_step(plan, "gate", "alert", origin, params={})),)))
    with pytest.raises(ExtensionError, match="name is taken"):
        extended(plan, PlanExtension(pipelines=(Pipeline(training, "a second training pipeline", (step,)),)))
    with pytest.raises(ExtensionError, match="start no pipeline"):
        extended(plan, PlanExtension(schedules=(Schedule("nightly", "no-such-pipeline", "0 0 * * *", "UTC", origin),)))


def test_an_extension_adds_pipelines_schedules_and_steps_in_order() -> None:
    plan = plan_of("local", example="batch-scoring")
    origin = plan.registry.origin
    step = platform_step(plan, "poll", "trigger_retraining", origin, params={"pipeline": plan.training.name})
    first = PlanExtension(pipelines=(Pipeline("poller", "polls", (step,)),), schedules=(Schedule("poller", "poller", "0 * * * *", "UTC", origin),))
    second = PlanExtension(steps=((plan.training.name, platform_step(plan, "notify", "alert", origin, params={}, depends_on=("register",))),))
    result = extended(plan, first + second)
    assert [p.name for p in result.pipelines()][-1] == "poller"
    assert result.schedules == (*plan.schedules, first.schedules[0])
    assert result.training.steps[-1].name == "notify" and result.training.steps[:-1] == plan.training.steps
    assert result.training.steps[-1].command == ("python", "-m", "mlcompile.runtime", "notify")
