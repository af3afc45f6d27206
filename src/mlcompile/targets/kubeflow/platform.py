"""What the core knows of Kubeflow Pipelines: its settings, capabilities, limits, prices and emulator."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any, ClassVar

from mlcompile.limits import KFP_PIPELINE_SPEC, KUBERNETES_OBJECTS, Limit
from mlcompile.targets.base import PlatformBase, Pricing
from mlcompile.targets.kubeflow.settings import KubeflowSettings

GPU_PRODUCT_LABEL = "nvidia.com/gpu.product"  # GPU Feature Discovery's, on generic clusters


class KubeflowPlatform(PlatformBase):
    name: ClassVar[str] = "kubeflow"
    title: ClassVar[str] = "Kubeflow Pipelines"
    extra: ClassVar[str | None] = "kubeflow"
    requires: ClassVar[tuple[str, ...]] = ("kfp", "kfp.kubernetes")
    settings_model: ClassVar[type[Any] | None] = KubeflowSettings
    settings_required: ClassVar[bool] = True
    # Kubernetes node selectors and tolerations per cluster flavour (the profile's `cluster`)
    machine_catalog: ClassVar[str | None] = "kubeflow"
    size_limits: ClassVar[tuple[Limit, ...]] = (*KFP_PIPELINE_SPEC, *KUBERNETES_OBJECTS)
    pricing: ClassVar[Pricing] = Pricing(
        "self_managed", note="Kubeflow runs on your own cluster: cost.json states the resources each step asks, with no price."
    )
    emulator: ClassVar[str | None] = "mlcompile.emulate.system:emulate_kubeflow"

    def resolve_machine(self, settings: Mapping[str, Any], *, accelerator: str | None, count: int, cpu: float, memory_gib: float) -> Any:
        resolution = super().resolve_machine(settings, accelerator=accelerator, count=count, cpu=cpu, memory_gib=memory_gib)
        selector = dict(resolution.machine.node_selector)
        product = settings.get("gpu_products", {}).get(accelerator)
        if GPU_PRODUCT_LABEL not in selector or product is None:
            return resolution
        selector[GPU_PRODUCT_LABEL] = product  # this cluster's part (the profile's gpu_products)
        machine = dataclasses.replace(resolution.machine, node_selector=tuple(sorted(selector.items())))
        return dataclasses.replace(resolution, machine=machine)
