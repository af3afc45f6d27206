"""The settings of a `platform: sagemaker` profile (its `sagemaker:` block)."""

from __future__ import annotations

from pydantic import Field

from mlcompile.spec.model_base import SpecModel

_IAM_ROLE = r"^arn:aws[a-z-]*:iam::[0-9]{12}:role/.+$"


class SageMakerRoles(SpecModel):
    """Least-privilege IAM roles, one per duty; a duty without one uses `role_arn` (the
    pipelines' role). docs/targets/sagemaker.md lists what each needs."""

    serving: str | None = Field(
        default=None,
        pattern=_IAM_ROLE,
        description="role of the endpoint's model (CreateModel ExecutionRoleArn): reads the model, its online features; cannot start pipelines",
    )
    schedulers: str | None = Field(
        default=None, pattern=_IAM_ROLE, description="role EventBridge schedules and rules start pipelines with (StartPipelineExecution only)"
    )
    feature_store: str | None = Field(
        default=None,
        pattern=_IAM_ROLE,
        description="role of the feature groups' offline store (CreateFeatureGroup RoleArn): writes its S3 prefix and Glue table",
    )


class SageMakerSettings(SpecModel):
    region: str = Field(
        description="AWS region pipelines, models and endpoints are created in", pattern=r"^[a-z]{2}(-gov)?-[a-z]+-[0-9]$", examples=["eu-west-1", "us-east-1"]
    )
    role_arn: str = Field(
        description="IAM role SageMaker runs the pipelines as", pattern=_IAM_ROLE, examples=["arn:aws:iam::123456789012:role/SageMakerPipelines"]
    )
    bucket: str = Field(
        description="S3 bucket where pipeline artifacts are written", pattern=r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$", examples=["acme-ml-artifacts"]
    )
    roles: SageMakerRoles | None = Field(
        default=None, description="least-privilege roles per duty (serving, schedulers, feature store); each defaults to role_arn"
    )
