"""What the core knows of Kubeflow Pipelines: its settings, capabilities, limits, prices and emulator."""

from __future__ import annotations

from typing import Any, ClassVar

from mlcompile.limits import KFP_PIPELINE_SPEC, KUBERNETES_OBJECTS, Limit
from mlcompile.targets.base import PlatformBase, Pricing
from mlcompile.targets.kubeflow.settings import KubeflowSettings


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
