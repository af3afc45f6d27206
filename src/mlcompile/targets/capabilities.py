"""The refusals of what a plan asks of a capability its platform does not declare
(`Platform.capabilities`, of `base.CAPABILITIES`): written once, for every platform, and run
by `build` after the platform's own check, so that no target writes the same refusal again."""

from __future__ import annotations

from typing import TYPE_CHECKING

from mlcompile.diagnostics import Diagnostic
from mlcompile.targets.base import GRID_OVER_FLOAT_RANGE, unsupported

if TYPE_CHECKING:
    from mlcompile.plan.nodes import Plan
    from mlcompile.targets.base import Platform


def capability_refusals(platform: Platform, plan: Plan) -> list[Diagnostic]:
    """What the plan asks of a capability the platform does not declare, refused at the spec."""
    problems: list[Diagnostic] = []
    tuning = plan.tuning
    if tuning is not None and tuning.algorithm == "grid" and GRID_OVER_FLOAT_RANGE not in platform.capabilities:
        for p in tuning.params:
            if p.type == "float":
                problems.append(
                    unsupported(
                        tuning.origin.below("params", p.name),
                        platform.name,
                        f"{platform.title} grid search cannot enumerate a float range, and '{p.name}' is one",
                        "use algorithm random or bayesian, or make the parameter categorical",
                    )
                )
    return problems
