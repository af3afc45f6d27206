"""What the core knows of SageMaker: its settings, capabilities, secrets, limits, prices and emulator."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

from mlcompile.limits import SAGEMAKER_PIPELINE, Limit
from mlcompile.targets.base import PlatformBase, Pricing
from mlcompile.targets.sagemaker.settings import SageMakerSettings


class SageMakerPlatform(PlatformBase):
    name: ClassVar[str] = "sagemaker"
    title: ClassVar[str] = "SageMaker"
    extra: ClassVar[str | None] = "sagemaker"
    requires: ClassVar[tuple[str, ...]] = ("sagemaker", "boto3")
    settings_model: ClassVar[type[Any] | None] = SageMakerSettings
    settings_required: ClassVar[bool] = True
    machine_catalog: ClassVar[str | None] = "sagemaker"
    size_limits: ClassVar[tuple[Limit, ...]] = SAGEMAKER_PIPELINE
    pricing: ClassVar[Pricing] = Pricing("list")
    emulator: ClassVar[str | None] = "mlcompile.emulate.sagemaker.system:emulate"

    def secret_locator(self, settings: Mapping[str, Any], name: str) -> str | None:
        account = str(settings["role_arn"]).split(":")[4]
        return f"secretsmanager:arn:aws:secretsmanager:{settings['region']}:{account}:secret:{name}"
