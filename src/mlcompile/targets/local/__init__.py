"""The `local` target: the embedded default. Its build is the resolved plan itself
(`plan.json`), which `mlcompile run` executes on this machine, and the system's Feast
feature repository (`feature_repo/`: file offline store over the sources staged as
parquet, SQLite online store), which the run applies, joins and materialises."""

from __future__ import annotations

from mlcompile.diagnostics import Diagnostic
from mlcompile.plan.extension import PlanExtension, platform_step
from mlcompile.plan.nodes import Plan
from mlcompile.plan.serialize import plan_to_data
from mlcompile.targets import feast_repo
from mlcompile.targets.base import OutputFile, json_bytes
from mlcompile.targets.local.platform import LocalPlatform

MATERIALIZE_STEP = "materialize-features"


def materialization(plan: Plan) -> PlanExtension:
    """When the spec has online views: the step that keeps Feast's online store fresh, after
    extract-features has applied the repository. On one machine it runs with each training
    run, as a cluster's schedule would (a run on a machine without Feast skips it)."""
    online = [v for v in plan.features.views if v.online]
    if not online:
        return PlanExtension()
    step = platform_step(
        plan, MATERIALIZE_STEP, "materialize_features", online[0].origin, params={"views": [v.name for v in online]},
        depends_on=("extract-features",), resources=plan.training.step("extract-features").resources,
    )  # fmt: skip
    return PlanExtension(steps=((plan.training.name, step),))


class LocalTarget(LocalPlatform):
    """The local platform (platform.py) with its check, render and deploy."""

    def extend_plan(self, plan: Plan) -> PlanExtension:
        return materialization(plan)

    def check(self, plan: Plan) -> list[Diagnostic]:
        # What one machine cannot apply (accelerators, replicas, spot) is already a warning
        # from lowering; nothing the spec can say is refused here.
        return []

    def render(self, plan: Plan) -> list[OutputFile]:
        return [OutputFile("plan.json", "mlcompile.plan", json_bytes(plan_to_data(plan))), *feast_repo.render(plan)]
