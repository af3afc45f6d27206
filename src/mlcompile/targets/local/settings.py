"""The settings of a `platform: local` profile (its optional `local:` block)."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import Field

from mlcompile.spec.model_base import SpecModel


class LocalSettings(SpecModel):
    workdir: str = Field(default=".mlcompile", description="folder (relative to the spec) for runs, artifacts and the local registry")
    allowed_output_roots: list[Annotated[str, Field(min_length=1, max_length=4096)]] = Field(
        default_factory=list,
        max_length=100,
        description="folders outside the spec's folder that `mlcompile run` may write into (its workdir, batch scores), "
        "absolute or relative to the spec's folder; by default a run writes only inside the spec's folder",
        examples=[["/data/ml-runs"]],
    )

    def plan_settings(self) -> dict[str, Any]:
        data = super().plan_settings()
        if not data.get("allowed_output_roots"):  # listed in the plan only when a profile allows any
            data.pop("allowed_output_roots", None)
        return data
