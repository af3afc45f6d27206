"""The `sagemaker` target: SageMaker Pipelines definitions built with the SageMaker Python
SDK 2.x (imported only in `sdk.py`, only while rendering), plus the request bodies of the
registry, endpoint, autoscaling, schedules, alarms and rules around them; `deploy` upserts
them through boto3. See docs/targets/sagemaker.md."""

from __future__ import annotations

from pathlib import Path

from mlcompile.diagnostics import Diagnostic
from mlcompile.plan.extension import PlanExtension
from mlcompile.plan.nodes import Plan
from mlcompile.targets.base import DeployAction, OutputFile
from mlcompile.targets.sagemaker.platform import SageMakerPlatform


class SageMakerTarget(SageMakerPlatform):
    """The sagemaker platform (platform.py) with its check, render and deploy."""

    def extend_plan(self, plan: Plan) -> PlanExtension:
        from mlcompile.targets.sagemaker.render import extend_plan

        return extend_plan(plan)

    def check(self, plan: Plan) -> list[Diagnostic]:
        from mlcompile.targets.sagemaker.checks import check

        return check(plan)

    def render(self, plan: Plan) -> list[OutputFile]:
        from mlcompile.targets.sagemaker.render import render

        return render(plan)

    def deploy(self, plan: Plan, build_dir: Path, *, dry_run: bool) -> list[DeployAction]:
        from mlcompile.targets.sagemaker.deploy import deploy

        return deploy(plan, build_dir, dry_run=dry_run)
