"""What the core knows of the local platform: this machine, `mlcompile run`."""

from __future__ import annotations

from typing import Any, ClassVar

from mlcompile.targets.base import GRID_OVER_FLOAT_RANGE, PlatformBase, Pricing
from mlcompile.targets.local.settings import LocalSettings


class LocalPlatform(PlatformBase):
    name: ClassVar[str] = "local"
    title: ClassVar[str] = "this machine (mlcompile run)"
    extra: ClassVar[str | None] = "local"
    requires: ClassVar[tuple[str, ...]] = ("sklearn", "pandas")
    settings_model: ClassVar[type[Any] | None] = LocalSettings
    needs_runtime_image: ClassVar[bool] = False
    runs_on_this_machine: ClassVar[bool] = True
    capabilities: ClassVar[frozenset[str]] = frozenset({GRID_OVER_FLOAT_RANGE})  # optuna's grid over 5 points of the range
    pricing: ClassVar[Pricing] = Pricing("no_charge", note="Runs on this machine: no charge.")
