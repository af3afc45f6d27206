"""Names, ARNs and S3 locations of everything a SageMaker build describes. Pure and
deterministic: derived from the plan and the profile (`sagemaker: {region, role_arn,
bucket}`), never looked up."""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from typing import Any

from mlcompile.plan.nodes import ArtifactRef, Plan, Step

# mlcompile's entry for container trainers (runtime/sagemaker_entry.py): a tuning image's
# ENTRYPOINT, or a multi-instance job's ContainerEntrypoint before `--` and the command.
TRAINER_ENTRY = ("python", "-m", "mlcompile.runtime.sagemaker_entry")
COMMAND_HYPERPARAMETER = "mlcompile_command"

# Where SageMaker mounts things inside its containers.
PROCESSING_INPUT = "/opt/ml/processing/input"
PROCESSING_OUTPUT = "/opt/ml/processing/output"
TRAINING_INPUT = "/opt/ml/input/data"
TRAINING_MODEL = "/opt/ml/model"
TRAINING_CHECKPOINTS = "/opt/ml/checkpoints"
HYPERPARAMETERS_FILE = "/opt/ml/input/config/hyperparameters.json"

# The file an artifact is written to inside its output folder (SageMaker moves folders;
# property files and the runtime want files).
_FILE_OF_TYPE = {"dataset": "{name}.parquet", "model": "model.tar.gz", "metrics": "metrics.json", "report": "report.json", "decision": "decision.json"}

# SageMaker Pipelines publishes step metrics (StepStarted/StepSucceeded/StepFailed…, by
# PipelineName and StepName) in this namespace. The monitoring pipeline runs its
# trigger-retraining step only on a breach, so that step succeeding *is* the breach signal the
# breach alarm watches (a notification: the step itself starts training): no metric for the
# runtime to publish.
PIPELINE_METRICS_NAMESPACE = "AWS/Sagemaker/ModelBuildingPipeline"
BREACH_METRIC = "StepSucceeded"
BREACH_STEP = "trigger-retraining"

# SageMaker limits used by checks and render.
MAX_DEFINITION_CHARS = 1_048_576


def fit(name: str, limit: int) -> str:
    """`name` if it fits AWS's length limit, else a deterministic shortening: a prefix and 8
    hex digits of its sha256 (EventBridge rule/schedule names: 64 characters)."""
    if len(name) <= limit:
        return name
    return f"{name[: limit - 9]}-{hashlib.sha256(name.encode()).hexdigest()[:8]}"


def metric_definition(metric: str) -> dict[str, str]:
    """How SageMaker reads a metric from the training log: a line `<metric>=<value>` (what
    mlcompile's SageMaker entry prints of the trainer's metrics file). The name is escaped and
    must not continue a longer name (`val_roc_auc=` is not `roc_auc=`); the value is the
    first group, as SageMaker takes it."""
    return {"Name": metric, "Regex": f"(?:^|[^A-Za-z0-9_.-]){re.escape(metric)}=([-+]?[0-9]*\\.?[0-9]+([eE][-+]?[0-9]+)?)"}


def flag_values(args: tuple[str, ...] | list[str]) -> dict[str, str] | None:
    """`--name value` / `--name=value` / `--switch` arguments as hyperparameters ({name: value},
    a switch "true"); None when an argument is no flag (positional arguments have no name)."""
    values: dict[str, str] = {}
    words = list(args)
    index = 0
    while index < len(words):
        word = words[index]
        if not word.startswith("--") or len(word) == 2:
            return None
        name, sep, value = word[2:].partition("=")
        if not sep:
            following = words[index + 1] if index + 1 < len(words) else None
            if following is not None and not following.startswith("--"):
                value, index = following, index + 1
            else:
                value = "true"
        values[name] = value
        index += 1
    return values


def artifact_file(name: str, type_: str) -> str:
    return _FILE_OF_TYPE[type_].format(name=name)


@dataclass(frozen=True)
class Layout:
    region: str
    role_arn: str  # the pipelines' role: their jobs run as it
    bucket: str
    system: str
    serving_role: str = ""  # the endpoint's model: no right to start pipelines
    scheduler_role: str = ""  # schedules and rules: StartPipelineExecution only
    feature_store_role: str = ""  # the feature groups' offline store

    @classmethod
    def of(cls, plan: Plan) -> Layout:
        settings = plan.platform_settings
        roles = settings.get("roles") or {}
        role = settings["role_arn"]
        return cls(settings["region"], role, settings["bucket"], plan.system,
                   roles.get("serving") or role, roles.get("schedulers") or role, roles.get("feature_store") or role)  # fmt: skip

    @property
    def partition(self) -> str:
        return self.role_arn.split(":")[1]

    @property
    def account(self) -> str:
        return self.role_arn.split(":")[4]

    @property
    def prefix(self) -> str:
        """Root of everything this system writes in the profile's bucket."""
        return f"s3://{self.bucket}/mlcompile/{self.system}"

    def arn(self, service: str, resource: str) -> str:
        return f"arn:{self.partition}:{service}:{self.region}:{self.account}:{resource}"

    def pipeline_arn(self, pipeline: str) -> str:
        return self.arn("sagemaker", f"pipeline/{pipeline.lower()}")

    def model_package_group_arn(self, model: str) -> str:
        return self.arn("sagemaker", f"model-package-group/{model}")

    @property
    def models_uri(self) -> str:
        return f"{self.prefix}/models"

    @property
    def checkpoints_uri(self) -> str:
        return f"{self.prefix}/checkpoints"

    def platform_section(self) -> dict[str, str]:
        """What a runtime step's config says of the platform: its registry is the SageMaker
        Model Registry of this region (runtime/registry_sagemaker.py)."""
        return {"name": "sagemaker", "region": self.region, "bucket": self.bucket}

    def config_uri(self, key: str) -> str:
        return f"{self.prefix}/configs/{key}.json"

    @property
    def schedule_group(self) -> str:
        return fit(f"mlcompile-{self.system}", 64)


def config_key(config: dict[str, Any]) -> str:
    """Content address of a step config: same config, same S3 object (uploaded by deploy)."""
    return hashlib.sha256(json.dumps(config, sort_keys=True, separators=(",", ":")).encode()).hexdigest()[:20]


def input_file(ref: ArtifactRef, producer: Step) -> str:
    artifact = next(a for a in producer.outputs if a.name == ref.artifact)
    return artifact_file(ref.artifact, artifact.type)
