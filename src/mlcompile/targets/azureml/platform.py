"""What the core knows of Azure ML: its settings, capabilities, secrets, prices and emulator."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

from mlcompile.targets.azureml.settings import AzureMLSettings
from mlcompile.targets.base import PlatformBase, Pricing


class AzureMLPlatform(PlatformBase):
    name: ClassVar[str] = "azureml"
    title: ClassVar[str] = "Azure ML"
    extra: ClassVar[str | None] = "azureml"
    requires: ClassVar[tuple[str, ...]] = ("azure.ai.ml",)
    settings_model: ClassVar[type[Any] | None] = AzureMLSettings
    settings_required: ClassVar[bool] = True
    machine_catalog: ClassVar[str | None] = "azureml"
    pricing: ClassVar[Pricing] = Pricing("list")
    emulator: ClassVar[str | None] = "mlcompile.emulate.system:emulate_azureml"

    def secret_locator(self, settings: Mapping[str, Any], name: str) -> str | None:
        vault = settings.get("key_vault")
        if not vault:
            return f"keyvault:{name}"
        url = vault if "://" in vault else f"https://{vault}.vault.azure.net"
        return f"keyvault:{url.rstrip('/')}/secrets/{name}"

    def billed_deployments(self, strategy: str | None) -> int:
        # a canary or blue/green rollout is two managed deployments (blue and green, each with
        # the endpoint's instance count and autoscaling: serving.py), both billed
        return 2 if strategy in ("canary", "blue_green") else 1
