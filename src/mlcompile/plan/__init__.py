"""The platform-neutral plan: the DAGs, resources, schedules and triggers every target translates."""

from mlcompile.plan.nodes import PLAN_VERSION, Plan

__all__ = ["PLAN_VERSION", "Plan"]
