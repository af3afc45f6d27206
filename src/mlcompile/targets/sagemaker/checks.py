"""What SageMaker cannot express of a plan — every plan field is either translated by
`render` or refused here, at the spec location it came from. Pure: no AWS import.

Fields and where they go (docs/targets/sagemaker.md has the full table):
  resources.machine → InstanceType; replicas → InstanceCount (training only); spot →
  managed spot training (training only); timeout → StoppingCondition.MaxRuntimeInSeconds;
  tuning → HyperParameterTuningJobConfig; gates → ConditionSteps; registry → model package
  group + RegisterModel; online → model / endpoint config / endpoint / autoscaling bodies;
  batch → batch pipeline; monitoring → monitoring pipeline (processing-job monitors running
  the runtime image) + alarm + rule; schedules → EventBridge Scheduler; triggers →
  EventBridge rules; lineage → tags; online feature views → feature groups + materialisation
  pipelines on their refresh cadence (feature_store.py)."""

from __future__ import annotations

import re

from mlcompile.diagnostics import Diagnostic
from mlcompile.plan.nodes import Origin, Plan, Resources, Step
from mlcompile.runtime.contract import ENV_HYPERPARAMETERS
from mlcompile.secrets import env_name
from mlcompile.targets.base import unsupported
from mlcompile.targets.sagemaker import feature_store
from mlcompile.targets.sagemaker.bodies import canary_instances, canary_traffic_percent
from mlcompile.targets.sagemaker.cron import CronNotExpressible, aws_cron
from mlcompile.targets.sagemaker.layout import COMMAND_HYPERPARAMETER, HYPERPARAMETERS_FILE, TRAINER_ENTRY, flag_values

TARGET = "sagemaker"
ECR_IMAGE = re.compile(r"^[0-9]{12}\.dkr\.ecr\.[a-z0-9-]+\.amazonaws\.com(\.cn)?/[^\s:@]+([:@][^\s]+)?$")
MAX_TRAINING_SECONDS = 28 * 24 * 3600  # CreateTrainingJob: MaxRuntimeInSeconds, 28 days
MAX_PROCESSING_SECONDS = 7 * 24 * 3600  # CreateProcessingJob: MaxRuntimeInSeconds, 7 days
MAX_ENDPOINT_TIMEOUT_SECONDS = 60  # real-time endpoints answer within 60 s, not configurable
MAX_TUNING_RANGES = 30  # hyperparameter ranges per tuning job
MAX_CONTAINER_ARGUMENT = 256  # characters per ContainerEntrypoint / ContainerArguments entry
SECRET = "secret://"
CANARY_TOLERANCE_PERCENT = 5  # a canary whose instances carry a share this far from the spec's is warned about


def check(plan: Plan) -> list[Diagnostic]:
    problems: list[Diagnostic] = []

    def refuse(origin: Origin, message: str, hint: str | None = None) -> None:
        problems.append(unsupported(origin, TARGET, message, hint))

    def warn(origin: Origin, message: str, hint: str | None = None) -> None:
        problems.append(Diagnostic(origin.file, origin.line, origin.col, "warning", origin.path, f"{message} (target {TARGET})", hint))

    first = plan.training.steps[0]
    if not ECR_IMAGE.match(plan.runtime_image):
        refuse(
            first.origin,
            f"runtime image {plan.runtime_image} is not in Amazon ECR: SageMaker processing and training jobs pull images only from ECR",
            "set images.runtime in the profile to an ECR copy of the runtime image",
        )
    for source in plan.features.sources:
        if not source.uri.startswith("s3://"):
            warn(
                source.origin,
                f"source '{source.name}' reads {source.uri}, outside AWS: the runtime steps read it from SageMaker jobs only with credentials for it in their environment",
                f"override its uri for profile '{plan.profile}' with an s3:// location",
            )
    for pipeline in plan.pipelines():
        for step in pipeline.steps:
            _check_step(plan, step, refuse, warn)
    _check_tuning(plan, refuse)
    _check_online(plan, refuse, warn)
    if plan.batch is not None:
        score = plan.batch.steps[0]
        output = str(score.params.get("output_uri", ""))
        if not output.startswith("s3://"):
            refuse(score.origin.below("output.uri"), f"batch output {output} is not an s3:// URI: SageMaker processing jobs write to S3")
    for schedule in plan.schedules:
        try:
            aws_cron(schedule.cron)
        except CronNotExpressible as exc:
            refuse(
                schedule.origin,
                f"schedule '{schedule.cron}' has no EventBridge Scheduler equivalent: {exc}",
                "restrict only one of day-of-month and day-of-week, without steps in day-of-week",
            )
    for trigger in plan.triggers:
        if trigger.kind == "new_data":
            source = next((s for s in plan.features.sources if s.name == trigger.source), None)
            if source is None or not source.uri.startswith("s3://"):
                refuse(trigger.origin, f"new-data trigger on source '{trigger.source}': EventBridge sees new objects only in S3 buckets")
    problems += feature_store.check(plan)
    return problems


def _check_step(plan: Plan, step: Step, refuse, warn) -> None:  # type: ignore[no-untyped-def]
    resources = step.resources
    training = step.kind in ("train", "tune")
    origin = resources.origin if training or step.kind == "score_batch" else step.origin
    if not training:
        if resources.spot:
            refuse(
                origin.below("spot"),
                f"step '{step.name}' runs as a SageMaker processing job, which has no spot capacity",
                "remove spot: true here (it applies to training only)",
            )
        if resources.replicas > 1:
            refuse(origin.below("replicas"), f"step '{step.name}' runs as one processing job instance")
    limit = MAX_TRAINING_SECONDS if training else MAX_PROCESSING_SECONDS
    if resources.timeout_seconds is not None and resources.timeout_seconds > limit:
        kind = "training" if training else "processing"
        refuse(origin.below("timeout"), f"timeout {resources.timeout_seconds}s exceeds SageMaker's {kind} job limit of {limit}s")
    if resources.machine is None or not (resources.machine.name or "").startswith("ml."):
        refuse(origin, f"step '{step.name}' has no SageMaker instance type (ml.*) for its resources")
    if not step.uses_user_container:
        if step.kind == "tune":
            refuse(
                step.origin,
                "tuning a scikit-learn trainer: a SageMaker tuning job starts the image's own ENTRYPOINT with no arguments, and the runtime image needs `--config` to know the step",
                "tune a container trainer whose image's ENTRYPOINT trains, or drop tuning for this profile",
            )
        return
    if not ECR_IMAGE.match(step.image):
        refuse(
            step.origin.below("image"),
            f"training image {step.image} is not in Amazon ECR: SageMaker training jobs pull from ECR",
            f"override training.trainer.container.image for profile '{plan.profile}' with an ECR image",
        )
    for name, value in sorted(step.params.get("env", {}).items()):
        if str(value).startswith(SECRET):
            warn(
                step.origin.below(f"env.{name}"),
                f"SageMaker training jobs cannot bind a secret to an environment variable: {name} is passed as the reference "
                f"{value!r}, which the container resolves from AWS Secrets Manager (secret '{str(value)[len(SECRET) :]}', readable by the job's role)",
                f"its ARN is in {env_name(str(value)[len(SECRET) :])}: read it in the container with mlcompile.runtime.secrets.resolve(os.environ['{name}']) "
                "or boto3 secretsmanager.get_secret_value",
            )
    for word in (*step.command, *step.args):
        if len(word) > MAX_CONTAINER_ARGUMENT:
            refuse(step.origin.below("args"), f"a command/args entry is {len(word)} characters: SageMaker takes at most {MAX_CONTAINER_ARGUMENT}")
    if step.kind == "tune":
        _check_tuned_container(plan, step, refuse, warn)
    elif resources.replicas > 1 and not step.command:
        refuse(
            origin.below("replicas"),
            f"{resources.replicas} instances with the image's own ENTRYPOINT: SageMaker tells each instance only its host name (resourceconfig.json), and mlcompile's entry "
            "that turns it into RANK, WORLD_SIZE and MASTER_ADDR needs the trainer's command to start it",
            f"set training.trainer.container.command for profile '{plan.profile}' (the build runs it through {' '.join(TRAINER_ENTRY)})",
        )


def _check_tuned_container(plan: Plan, step: Step, refuse, warn) -> None:  # type: ignore[no-untyped-def]
    """A tuning job runs the training image's own ENTRYPOINT (HyperParameterAlgorithmSpecification
    has no ContainerEntrypoint/ContainerArguments) and hands the trial's values over only in
    hyperparameters.json: the build puts the command and the static args there too."""
    entry = " ".join(TRAINER_ENTRY)
    if step.args and flag_values(step.args) is None:
        refuse(
            step.origin.below("args"),
            f"args {list(step.args)} cannot reach a SageMaker tuning trial: they travel as StaticHyperParameters, which are named values (--name value), and these include a positional argument",
            "write every argument as --name value (or --name=value)",
        )
    if step.command:
        warn(
            step.origin.below("command"),
            f"a SageMaker tuning job runs the training image's own ENTRYPOINT, which must be mlcompile's SageMaker entry (`{entry}`): it runs {list(step.command)} "
            f"(the hyperparameter {COMMAND_HYPERPARAMETER}) with the static args and the trial's values as --NAME=VALUE arguments and in {ENV_HYPERPARAMETERS}, "
            "and prints the metrics the trainer writes to MLCOMPILE_METRICS as the name=value lines the tuning job reads",
            f'build the ECR image with ENTRYPOINT ["python", "-m", "mlcompile.runtime.sagemaker_entry"] (or copy that one file into the image), or set command: [] for profile \'{plan.profile}\' '
            "when the image's ENTRYPOINT is the trainer itself",
        )
        return
    if step.resources.replicas > 1:
        refuse(
            step.resources.origin.below("replicas"),
            f"{step.resources.replicas} instances per trial with the image's own ENTRYPOINT as the trainer: SageMaker tells each instance only its host name (resourceconfig.json)",
            f"give the trainer's command (the image's ENTRYPOINT then being `{entry}`, which sets RANK, WORLD_SIZE and MASTER_ADDR), or set replicas: 1",
        )
    warn(
        step.origin,
        f"each tuning trial's parameters reach the container in {HYPERPARAMETERS_FILE} (SageMaker's place, every value a string, with the static args), not in {ENV_HYPERPARAMETERS}, "
        "and the objective is read from its log: the trainer prints `<metric>=<value>`",
        f"read {HYPERPARAMETERS_FILE} when {ENV_HYPERPARAMETERS} is unset, or give the command and make the image's ENTRYPOINT `{entry}`, which does both",
    )


def _check_tuning(plan: Plan, refuse) -> None:  # type: ignore[no-untyped-def]
    tuning = plan.tuning
    if tuning is None:
        return
    if len(tuning.params) > MAX_TUNING_RANGES:
        refuse(tuning.origin.below("params"), f"{len(tuning.params)} search parameters: SageMaker tunes at most {MAX_TUNING_RANGES}")
    if tuning.algorithm == "grid":
        # a float range is refused from the capabilities (platform.py); an int range too here
        numeric = [p.name for p in tuning.params if p.type == "int"]
        if numeric:
            refuse(
                tuning.origin.below("algorithm"),
                f"grid search on SageMaker takes categorical parameters only; {', '.join(numeric)} {'is an int range' if len(numeric) == 1 else 'are int ranges'}",
                "list their values as {type: categorical, values: [...]}",
            )
    for param in tuning.params:
        if param.scale == "log" and (param.min is None or param.min <= 0):
            refuse(tuning.origin.below(f"params.{param.name}.min"), f"log scale needs min > 0 (got {param.min})")


def _check_online(plan: Plan, refuse, warn) -> None:  # type: ignore[no-untyped-def]
    online = plan.online
    if online is None:
        return
    resources: Resources = online.resources
    if resources.spot:
        refuse(resources.origin.below("spot"), "SageMaker real-time endpoints have no spot capacity")
    if resources.timeout_seconds is not None and resources.timeout_seconds > MAX_ENDPOINT_TIMEOUT_SECONDS:
        refuse(
            resources.origin.below("timeout"),
            f"request timeout {resources.timeout_seconds}s: SageMaker real-time endpoints answer within {MAX_ENDPOINT_TIMEOUT_SECONDS}s",
        )
    if online.min_replicas < 1:
        refuse(online.origin.below("replicas.min"), "a SageMaker real-time endpoint variant runs at least one instance", "set replicas.min: 1")
    if online.max_replicas > online.min_replicas and online.autoscaling_metric is None:
        refuse(
            online.origin.below("replicas.max"),
            f"replicas {online.min_replicas}..{online.max_replicas} without autoscaling: Application Auto Scaling needs a target-tracking metric",
            "add autoscaling: {metric, target}, or set max = min",
        )
    if online.strategy == "canary":
        share = canary_traffic_percent(online)
        if abs(share - (online.canary_percent or 0)) > CANARY_TOLERANCE_PERCENT:
            warn(
                online.origin.below("rollout.canary_percent"),
                f"canary_percent {online.canary_percent} on {online.min_replicas} instance(s): SageMaker moves whole instances, so the canary gets "
                f"{canary_instances(online)} of {online.min_replicas} instances, about {share:.0f}% of the traffic",
                f"raise replicas.min to at least {-(-100 // max(online.canary_percent or 1, 1))} for a {online.canary_percent}% canary, or set canary_percent to {share:.0f}",
            )
    if online.autoscaling_metric == "gpu" and not (resources.machine and resources.machine.accelerator_count):
        refuse(online.origin.below("autoscaling.metric"), "autoscaling on gpu utilisation needs a GPU instance")
