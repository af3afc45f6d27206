"""The base of every spec and profile model, the platforms' settings models included."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict

from mlcompile.spec.pydantic_plugins import skip_lookup_when_disabled

skip_lookup_when_disabled()  # before the first validator is built


class SpecModel(BaseModel):
    # allow_inf_nan=False: YAML's .nan/.inf are no thresholds, and plan.json must stay JSON.
    # defer_build: a model's validator is built when first used, so a validate without
    # profiles never builds the profile's (five platforms' settings), nor each sub-model's own
    model_config = ConfigDict(extra="forbid", frozen=True, str_strip_whitespace=False, allow_inf_nan=False, defer_build=True)

    def plan_settings(self) -> dict[str, Any]:
        """The block as the plan carries it (`Plan.platform_settings`): plain data."""
        return self.model_dump(mode="json")
