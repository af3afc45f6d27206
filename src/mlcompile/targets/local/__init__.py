"""The `local` target: the embedded default. Its build is the resolved plan itself
(`plan.json`), which `mlcompile run` executes on this machine, and the system's Feast
feature repository (`feature_repo/`: file offline store over the sources staged as
parquet, SQLite online store), which the run applies, joins and materialises."""

from __future__ import annotations

from mlcompile.diagnostics import Diagnostic
from mlcompile.plan.nodes import Plan
from mlcompile.plan.serialize import plan_to_data
from mlcompile.targets import feast_repo
from mlcompile.targets.base import OutputFile, json_bytes
from mlcompile.targets.local.platform import LocalPlatform


class LocalTarget(LocalPlatform):
    """The local platform (platform.py) with its check, render and deploy."""

    def check(self, plan: Plan) -> list[Diagnostic]:
        # What one machine cannot apply (accelerators, replicas, spot) is already a warning
        # from lowering; nothing the spec can say is refused here.
        return []

    def render(self, plan: Plan) -> list[OutputFile]:
        return [OutputFile("plan.json", "mlcompile.plan", json_bytes(plan_to_data(plan))), *feast_repo.render(plan)]
