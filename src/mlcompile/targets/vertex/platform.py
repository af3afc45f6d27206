"""What the core knows of Vertex AI: its settings, capabilities, secrets, limits, prices and emulator."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, ClassVar

from mlcompile.limits import KFP_PIPELINE_SPEC, Limit
from mlcompile.targets.base import PlatformBase, Pricing
from mlcompile.targets.vertex.settings import VertexSettings

# a Vertex job runs with Google credentials only: no AWS or Azure keys reach it
READABLE_SCHEMES = ("gs", "bq")


class VertexPlatform(PlatformBase):
    name: ClassVar[str] = "vertex"
    title: ClassVar[str] = "Vertex AI"
    extra: ClassVar[str | None] = "vertex"
    requires: ClassVar[tuple[str, ...]] = ("kfp", "google.cloud.aiplatform", "google.cloud.monitoring_v3")
    settings_model: ClassVar[type[Any] | None] = VertexSettings
    settings_required: ClassVar[bool] = True
    machine_catalog: ClassVar[str | None] = "vertex"
    size_limits: ClassVar[tuple[Limit, ...]] = KFP_PIPELINE_SPEC
    pricing: ClassVar[Pricing] = Pricing("list", accelerators_billed_apart=True)
    emulator: ClassVar[str | None] = "mlcompile.emulate.system:emulate_vertex"

    def check_profile(self, system: Any, profile: Any, report: Callable[..., None]) -> None:
        from mlcompile.spec.checks import data_uris, uri_scheme

        for path, uri in data_uris(system):
            if uri_scheme(uri) in READABLE_SCHEMES or uri_scheme(uri) == "file":
                continue  # file:// is refused for every platform that does not run here
            writes = path[0] == "deployment"
            report(
                path,
                f"Vertex AI jobs cannot {'write the batch scores to' if writes else 'read'} {uri} (profile '{profile.name}'): they hold Google Cloud credentials only",
                hint=f"use a gs:// or bq:// URI under overrides.{profile.name}",
                severity="error" if writes else "warning",
            )

    def secret_locator(self, settings: Mapping[str, Any], name: str) -> str | None:
        return f"secretmanager:projects/{settings['project']}/secrets/{name}/versions/latest"
