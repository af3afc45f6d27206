"""The target profile (`targets/<name>.yaml`): where a system runs. Each platform's
settings model lives in its target package and is read in on first use."""

from __future__ import annotations

import functools
import sys
from typing import TYPE_CHECKING, Annotated, Any, Literal

from pydantic import AfterValidator, ConfigDict, Field

from mlcompile.spec.model_base import SpecModel
from mlcompile.spec.models import PLATFORM_NAMES, BuiltinPlatform, Labels

if TYPE_CHECKING:  # read in when TargetProfile is first used (_read_in_settings_models)
    from mlcompile.targets.azureml.settings import AzureMLSettings
    from mlcompile.targets.kubeflow.settings import KubeflowSettings
    from mlcompile.targets.local.settings import LocalSettings
    from mlcompile.targets.sagemaker.settings import SageMakerSettings
    from mlcompile.targets.vertex.settings import VertexSettings
from mlcompile.spec.types import (
    Duration,
    Memory,
    Name,
)

# ---------------------------------------------------------------------------- metadata


class Images(SpecModel):
    runtime: str = Field(min_length=1, pattern=r"^[^\s]+$", description="image that runs mlcompile's standard steps")


class TargetMetadata(SpecModel):
    name: Name
    description: str | None = Field(default=None, description="one line saying what the profile is for")
    labels: Labels = Field(description="labels of the profile", default_factory=dict)


PolicyLabelKey = Annotated[str, Field(pattern=r"^[a-z][a-z0-9_-]{0,62}$")]


class Policy(SpecModel):
    """What a system may ask for on this profile: the platform team's guardrails. Every rule
    is optional. A violation is an error at the spec field that caused it (after overrides are
    merged); `--warn-only` reports violations as warnings instead."""

    allowed_accelerators: list[str] | None = Field(
        default=None,
        description="accelerator types (portable catalog names) that training, the online endpoint and batch scoring may use; [] allows none",
        examples=[["nvidia-t4", "nvidia-l4"]],
    )
    max_accelerators_per_replica: int | None = Field(
        default=None, ge=1, le=64, description="most accelerators one replica may ask for (resources.accelerator.count)"
    )
    max_replicas: int | None = Field(
        default=None,
        ge=1,
        le=1024,
        description="most machines one workload may hold at once: training.resources.replicas, "
        "tuning parallel_trials x training replicas, deployment.online.replicas.max",
    )
    max_cpu_per_replica: float | None = Field(default=None, gt=0, le=1024, description="most cores one replica may ask for (resources.cpu)")
    max_memory_per_replica: Memory | None = Field(default=None, description="most memory one replica may ask for (resources.memory)")
    spot_required: bool = Field(
        default=False, description="training (and so every tuning trial) must run on spot / preemptible capacity: training.resources.spot: true"
    )
    registry_approval: Literal["manual", "any"] = Field(
        default="any", description="manual: registry.approval: auto is refused, a person approves every version"
    )
    max_training_timeout: Duration | None = Field(
        default=None, description="longest training.resources.timeout (the default timeout is 24h); each tuning trial has that timeout"
    )
    required_labels: list[PolicyLabelKey] = Field(
        default_factory=list, description="keys metadata.labels must have, each with a non-empty value", examples=[["team", "cost-center"]]
    )
    endpoint_min_replicas: int | None = Field(
        default=None, ge=1, le=1000, description="fewest replicas an online endpoint may scale down to (deployment.online.replicas.min)"
    )


def _not_stdlib(package: str) -> str:
    # allowing `subprocess` or `os` would let a spec name subprocess.call as its "estimator"
    if package.split(".", 1)[0] in (*sys.stdlib_module_names, "__main__"):
        raise ValueError(f"'{package}' is Python's standard library: it holds no estimators")
    return package


class TargetProfile(SpecModel):
    """A target profile (`targets/<name>.yaml`): where the system runs."""

    model_config = ConfigDict(title="mlcompile target profile (Target, v1)")

    apiVersion: Literal["mlcompile/v1"] = Field(description="the spec language version: exactly mlcompile/v1")
    kind: Literal["Target"] = Field(description="what the file is: Target for a target profile")
    metadata: TargetMetadata = Field(description="name, description and labels of the profile")
    platform: BuiltinPlatform | Annotated[str, Field(pattern=r"^[a-z][a-z0-9_-]{1,30}$")] = Field(
        description="kubeflow | vertex | sagemaker | azureml | local, or the name of an installed third-party target"
    )
    images: Images | None = Field(default=None, description="container images the platform runs")
    kubeflow: KubeflowSettings | None = Field(default=None, description="settings of platform: kubeflow")
    vertex: VertexSettings | None = Field(default=None, description="settings of platform: vertex")
    sagemaker: SageMakerSettings | None = Field(default=None, description="settings of platform: sagemaker")
    azureml: AzureMLSettings | None = Field(default=None, description="settings of platform: azureml")
    local: LocalSettings | None = Field(default=None, description="settings of platform: local")
    settings: dict[str, Any] | None = Field(default=None, description="settings of a third-party target's platform")
    policy: Policy | None = Field(default=None, description="guardrails: what a system built for this profile may ask for")
    estimator_packages: list[Annotated[str, Field(pattern=r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*$"), AfterValidator(_not_stdlib)]] = Field(
        default_factory=list,
        description="Python packages (besides sklearn, xgboost, lightgbm) whose scikit-learn-compatible estimator classes "
        "a scikit-learn trainer may name; the runtime imports nothing else",
        examples=[["mycompany_models"]],
    )

    @property
    def name(self) -> str:
        return self.metadata.name

    # The built-in platforms' settings blocks are defined in their target packages, which
    # import the plan (and so this module): they are read in when the model is first used.
    @classmethod
    def model_validate(cls, *args: Any, **kwargs: Any) -> TargetProfile:
        _read_in_settings_models()
        return super().model_validate(*args, **kwargs)

    @classmethod
    def model_json_schema(cls, *args: Any, **kwargs: Any) -> dict[str, Any]:
        _read_in_settings_models()
        return super().model_json_schema(*args, **kwargs)

    def platform_settings(self) -> dict[str, Any]:
        """The settings block of this profile's platform as plain data, with the defaults of
        the platform's settings model (a built-in platform's `<name>:` block, a third-party
        platform's `settings:`)."""
        block = getattr(self, self.platform) if self.platform in PLATFORM_NAMES else None
        if block is not None:
            return dict(block.plan_settings())
        from mlcompile.targets.registry import platform_named

        platform = platform_named(self.platform)
        model = platform.settings_model if platform is not None else None
        if model is None:
            return dict(self.settings or {})
        read = model.model_validate(self.settings or {})  # checked by check_target before any plan is made
        return dict(read.plan_settings() if isinstance(read, SpecModel) else read.model_dump(mode="json"))


@functools.cache
def _read_in_settings_models() -> None:
    """Put each built-in platform's settings model where pydantic resolves TargetProfile's
    annotations (this module's namespace), and build the model."""
    from mlcompile.targets.azureml.settings import AzureMLSettings
    from mlcompile.targets.kubeflow.settings import KubeflowSettings
    from mlcompile.targets.local.settings import LocalSettings
    from mlcompile.targets.sagemaker.settings import SageMakerSettings
    from mlcompile.targets.vertex.settings import VertexSettings

    globals().update(
        AzureMLSettings=AzureMLSettings,
        KubeflowSettings=KubeflowSettings,
        LocalSettings=LocalSettings,
        SageMakerSettings=SageMakerSettings,
        VertexSettings=VertexSettings,
    )
    TargetProfile.model_rebuild()
