"""The module that imports the SageMaker Python SDK (2.x), with sdk_conditions.py (the gates and
the breach condition). Everything else in this target is plain data; a port to SDK 3.x touches
these two only.

Builds each pipeline with the SDK's own classes (ProcessingStep, TrainingStep, TuningStep,
ConditionStep over JsonGet, FailStep, ModelStep/RegisterModel) and returns its definition.
Offline by construction: explicit dummy credentials and the profile's region (no credential
chain, no instance-metadata probe), every S3 location given explicitly (the SDK would
otherwise look up or create a default bucket), `TrainingStep(estimator=…)` rather than
`step_args=` (which sends telemetry), an empty SDK config (no ~/.config/sagemaker defaults
leaking into the output)."""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import json
import logging
import os
import warnings
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from mlcompile.plan.nodes import ArtifactRef, Pipeline, Plan, Step
from mlcompile.plan.step_config import additional_metrics, serving_env, step_config
from mlcompile.runtime.contract import ENV_LABEL, ENV_METRICS, ENV_MODEL_DIR, ENV_TEST_DATA, ENV_TRAIN_DATA, ENV_VALIDATION_REPORT
from mlcompile.runtime.online import ENV as ONLINE_FEATURES_ENV
from mlcompile.runtime.registry_sagemaker import DRIFT_BASELINE_KEY
from mlcompile.targets.sagemaker import bodies, feature_store
from mlcompile.targets.sagemaker.layout import (
    COMMAND_HYPERPARAMETER,
    PROCESSING_INPUT,
    PROCESSING_OUTPUT,
    TRAINER_ENTRY,
    TRAINING_CHECKPOINTS,
    TRAINING_INPUT,
    TRAINING_MODEL,
    Layout,
    artifact_file,
    config_key,
    flag_values,
    input_file,
    metric_definition,
)
from mlcompile.targets.sagemaker.sdk_conditions import breach, gates

if TYPE_CHECKING:
    from sagemaker.workflow.entities import PipelineVariable

    from mlcompile.plan.nodes import Resources

    # what the SDK takes as an environment, a tag or hyperparameters: a value may be a pipeline variable
    SdkStrings = dict[str, str | PipelineVariable]

DEFAULT_MAX_RUN = 24 * 3600
SPOT_WAIT_FACTOR = 2  # managed spot: wait for capacity up to as long again as the run may take
CONTENT_TYPES = ["application/json", "text/csv"]
_OFFLINE_ENV = {"AWS_EC2_METADATA_DISABLED": "true", "SAGEMAKER_SUPPRESS_V2_WARNING": "1"}


@contextlib.contextmanager
def offline(region: str) -> Iterator[None]:
    """Import and drive the SDK with no network: no instance-metadata probe (the SDK's
    JumpStart module makes a default session at import), a region, quiet loggers."""
    saved = {key: os.environ.get(key) for key in (*_OFFLINE_ENV, "AWS_DEFAULT_REGION")}
    os.environ.update(_OFFLINE_ENV)
    os.environ.setdefault("AWS_DEFAULT_REGION", region)
    loggers = {name: logging.getLogger(name) for name in ("sagemaker", "sagemaker.config", "sagemaker.workflow.utilities", "sagemaker.estimator")}
    levels = {name: logger.level for name, logger in loggers.items()}
    # sagemaker.experiments calls logging.basicConfig(level=INFO) at import: keep the host's root logger
    root_level, root_handlers = logging.root.level, list(logging.root.handlers)
    for logger in loggers.values():
        logger.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            try:
                import sagemaker.workflow.pipeline  # noqa: F401  (the import that configures logging)
            finally:
                logging.root.setLevel(root_level)
                logging.root.handlers[:] = root_handlers
            yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        for name, logger in loggers.items():
            logger.setLevel(levels[name])
        logging.root.setLevel(root_level)
        logging.root.handlers[:] = root_handlers


@dataclasses.dataclass
class Built:
    """Definitions by pipeline name, and the step configs they reference by key."""

    definitions: dict[str, dict[str, Any]]
    configs: dict[str, dict[str, Any]]


def build(plan: Plan, layout: Layout, pipelines: list[Pipeline], extra_params: dict[tuple[str, str], dict[str, Any]]) -> Built:
    """`extra_params[(pipeline, step)]` is merged into that step's params under `sagemaker`."""
    with offline(layout.region):
        session = _session(layout.region, layout.bucket)
        built = Built({}, {})
        for pipeline in pipelines:
            builder = _PipelineBuilder(plan, layout, session, pipeline, extra_params, built.configs)
            built.definitions[pipeline.name] = builder.definition()
        return built


@functools.cache
def _session(region: str, bucket: str) -> Any:
    """One offline PipelineSession per region and bucket for the whole process: making one
    costs a boto3 session, a dozen botocore clients and a config validation (~0.5 s), paid
    once per system in a monorepo build otherwise."""
    import boto3
    from sagemaker.workflow.pipeline_context import PipelineSession

    boto_session = boto3.Session(aws_access_key_id="offline", aws_secret_access_key="offline", region_name=region)
    # A given SDK config keeps the SDK from reading ~/.config/sagemaker and /etc/xdg
    # (machine-dependent defaults); emptied afterwards, because the SDK re-validates a
    # non-empty config against its JSON schema at every lookup (~0.17 s each, ~100 a build).
    session = PipelineSession(boto_session=boto_session, default_bucket=bucket, sagemaker_config={"SchemaVersion": "1.0"})
    session.sagemaker_config = {}
    return session


class _PipelineBuilder:
    def __init__(self, plan: Plan, layout: Layout, session: Any, pipeline: Pipeline, extra: dict[tuple[str, str], dict[str, Any]], configs: dict[str, Any]):
        self.plan, self.layout, self.session, self.pipeline = plan, layout, session, pipeline
        self.extra, self.configs = extra, configs
        self.tags: list[SdkStrings] = [dict(tag) for tag in bodies.tags(plan)]
        self.sdk_steps: dict[str, Any] = {}  # plan step name → SDK step
        self.property_files: dict[tuple[str, str], Any] = {}  # (step, artifact) → PropertyFile

    # ------------------------------------------------------------------ helpers
    def step_params(self, step: Step) -> Step:
        extra = self.extra.get((self.pipeline.name, step.name))
        return dataclasses.replace(step, params={**step.params, "sagemaker": extra}) if extra else step

    def config_input(self, step: Step) -> tuple[str, str]:
        """(S3 URI, key) of the step's runtime config, uploaded by deploy."""
        config = {**step_config(self.plan, self.step_params(step)), "platform": self.layout.platform_section()}
        if step.kind == "trigger_retraining":
            config.update(self.retraining_run(step))
        key = config_key(config)
        self.configs[key] = config
        return self.layout.config_uri(key), key

    def retraining_run(self, step: Step) -> dict[str, Any]:
        """A trigger-retraining step's config: the training pipeline it starts through
        StartPipelineExecution and its own pipeline (`sensor`: executions of it are debounced,
        the oldest running one decides); a new-data sensor's also its source and watermark."""
        from mlcompile.plan.serialize import plan_to_data

        run = {"kind": "sagemaker.pipeline_execution", "pipeline": step.params["pipeline"], "sensor": self.pipeline.name}
        if step.params.get("when") != "new_data":  # the monitoring pipeline's, on a breach
            return {"platform_run": run}
        source = step.params["source"]
        sources = [{k: v for k, v in s.items() if k != "origin"} for s in plan_to_data(self.plan)["features"]["sources"] if s["name"] == source]
        run["watermark"] = f"{self.layout.prefix}/watermarks/{self.pipeline.name}.json"
        return {"features": {"sources": sources, "views": []}, "platform_run": run}

    def output_uri(self, step: Step, output: str) -> Any:
        from sagemaker.workflow.execution_variables import ExecutionVariables
        from sagemaker.workflow.functions import Join

        return Join(on="/", values=[self.layout.prefix, "runs", ExecutionVariables.PIPELINE_EXECUTION_ID, step.name, output])

    def producer_uri(self, ref: ArtifactRef) -> Any:
        producer = self.pipeline.step(ref.step)
        sdk_step = self.sdk_steps[ref.step]
        if producer.kind == "train":
            return sdk_step.properties.ModelArtifacts.S3ModelArtifacts
        if producer.kind == "tune":
            return sdk_step.get_top_model_s3_uri(top_k=0, s3_bucket=self.layout.bucket, prefix=self.layout.models_uri.split("/", 3)[3])
        return sdk_step.properties.ProcessingOutputConfig.Outputs[ref.artifact].S3Output.S3Uri

    def order_only(self, step: Step) -> list[Any] | None:
        """Dependencies the data does not already express (e.g. deploy-online after register:
        steps of one condition branch otherwise run in parallel)."""
        fed_by = {ref.step for ref in step.inputs}
        names = [n for n in step.depends_on if n not in fed_by and n in self.sdk_steps]
        if step.run_if is None:  # a top-level step cannot wait for a step inside a condition
            names = [n for n in names if self.pipeline.step(n).run_if is None]
        return [self.sdk_steps[n] for n in names] or None

    def secret_env(self, step: Step) -> SdkStrings:
        """MLCOMPILE_SECRET_<NAME> → the Secrets Manager ARN of each secret:// the step uses:
        resolved by the runtime with the job's role (SageMaker jobs cannot inject a secret)."""
        from mlcompile.secret_locators import locator_env

        return {**locator_env("sagemaker", self.plan.platform_settings, step.params)}

    # ------------------------------------------------------------------ steps
    def processing(self, step: Step) -> Any:
        from sagemaker.processing import ProcessingInput, ProcessingOutput, Processor
        from sagemaker.workflow.properties import PropertyFile
        from sagemaker.workflow.steps import ProcessingStep

        config_uri, key = self.config_input(step)
        inputs = [ProcessingInput(input_name="config", source=config_uri, destination=f"{PROCESSING_INPUT}/config")]
        args: list[Any] = ["--config", f"@{PROCESSING_INPUT}/config/{key}.json"]
        if step.kind == "trigger_retraining":  # which execution it is: a sensor's are debounced
            from sagemaker.workflow.execution_variables import ExecutionVariables

            args += ["--pipeline-run", ExecutionVariables.PIPELINE_EXECUTION_ARN]
        for ref in sorted(step.inputs, key=lambda r: r.name):
            inputs.append(ProcessingInput(input_name=ref.name, source=self.producer_uri(ref), destination=f"{PROCESSING_INPUT}/{ref.name}"))
            args += ["--input", f"{ref.name}={PROCESSING_INPUT}/{ref.name}/{input_file(ref, self.pipeline.step(ref.step))}"]
        outputs, property_files = [], []
        for artifact in sorted(step.outputs, key=lambda a: a.name):
            outputs.append(
                ProcessingOutput(output_name=artifact.name, source=f"{PROCESSING_OUTPUT}/{artifact.name}", destination=self.output_uri(step, artifact.name))
            )
            args += ["--output", f"{artifact.name}={PROCESSING_OUTPUT}/{artifact.name}/{artifact_file(artifact.name, artifact.type)}"]
            if artifact.type in ("metrics", "decision"):
                property_file = PropertyFile(name=artifact.name, output_name=artifact.name, path=artifact_file(artifact.name, artifact.type))
                self.property_files[(step.name, artifact.name)] = property_file
                property_files.append(property_file)
        resources = step.resources
        processor = Processor(
            role=self.layout.role_arn,
            image_uri=step.image,
            instance_count=1,
            instance_type=_instance_type(resources),
            entrypoint=list(step.command),
            max_runtime_in_seconds=resources.timeout_seconds,
            env=self.secret_env(step) or None,
            tags=self.tags,
            sagemaker_session=self.session,
        )
        return ProcessingStep(
            step.name,
            processor=processor,
            inputs=inputs,
            outputs=outputs,
            job_arguments=args,
            property_files=property_files or None,
            depends_on=self.order_only(step),
        )

    def training(self, step: Step) -> Any:
        from sagemaker.estimator import Estimator
        from sagemaker.inputs import TrainingInput
        from sagemaker.workflow.steps import TrainingStep, TuningStep

        resources = step.resources
        max_run = resources.timeout_seconds or DEFAULT_MAX_RUN
        channels: dict[str, Any] = {}
        paths = {ref.name: f"{TRAINING_INPUT}/{ref.name}/{input_file(ref, self.pipeline.step(ref.step))}" for ref in step.inputs}
        for ref in sorted(step.inputs, key=lambda r: r.name):
            channels[ref.name] = TrainingInput(s3_data=self.producer_uri(ref))
        # SageMaker packs /opt/ml/model into model.tar.gz: the trainer's metrics travel inside it,
        # next to the model, where evaluate finds them
        outputs = {a.name: (TRAINING_MODEL if a.type == "model" else f"{TRAINING_MODEL}/{artifact_file(a.name, a.type)}") for a in step.outputs}
        environment: SdkStrings = {}
        entry_point, arguments = list(step.command) or None, list(step.args) or None
        if step.uses_user_container:
            environment.update({str(k): str(v) for k, v in step.params.get("env", {}).items()})
            environment.update(self.secret_env(step))
            environment.update(
                {
                    ENV_TRAIN_DATA: paths.get("train", ""),
                    ENV_TEST_DATA: paths.get("test", ""),  # the held-out set its reported metrics are computed on
                    ENV_VALIDATION_REPORT: paths.get("report", ""),
                    ENV_MODEL_DIR: outputs.get("model", TRAINING_MODEL),
                    ENV_METRICS: outputs.get("metrics", f"{TRAINING_MODEL}/metrics.json"),
                    ENV_LABEL: str(step.params.get("label", "")),
                }
            )
        else:
            config_uri, key = self.config_input(step)
            channels["config"] = TrainingInput(s3_data=config_uri)
            arguments = ["--config", f"@{TRAINING_INPUT}/config/{key}.json"]
            for name in sorted(paths):
                arguments += ["--input", f"{name}={paths[name]}"]
            for name in sorted(outputs):
                arguments += ["--output", f"{name}={outputs[name]}"]
        tuning = self.plan.tuning if step.kind == "tune" else None
        hyperparameters: SdkStrings | None = None
        if step.uses_user_container and tuning is not None:
            # a tuning job runs the image's ENTRYPOINT (mlcompile's entry, see checks): the
            # command and static args reach it as hyperparameters, beside each trial's values
            hyperparameters = {**(flag_values(step.args) or {})}
            if step.command:
                hyperparameters[COMMAND_HYPERPARAMETER] = json.dumps(list(step.command))
            entry_point, arguments = None, None
        elif step.uses_user_container and resources.replicas > 1 and step.command:
            entry_point = [*TRAINER_ENTRY, "--", *step.command]  # gives each instance its rank (resourceconfig.json)
        names = {tuning.metric, *additional_metrics(self.plan)} if tuning else set()
        metric_definitions: list[SdkStrings] | None = [{**metric_definition(m)} for m in sorted(names)] or None
        spot = resources.spot
        estimator = Estimator(
            image_uri=step.image,
            role=self.layout.role_arn,
            instance_count=resources.replicas,
            instance_type=_instance_type(resources),
            max_run=max_run,
            use_spot_instances=spot,
            max_wait=max_run * SPOT_WAIT_FACTOR if spot else None,
            # a tuning job's trials share this prefix: mlcompile's entry gives each its own folder
            # under it (MLCOMPILE_CHECKPOINT_DIR = LocalPath/<training job name>)
            checkpoint_s3_uri=f"{self.layout.checkpoints_uri}/{step.name}" if spot else None,
            checkpoint_local_path=TRAINING_CHECKPOINTS if spot else None,
            output_path=self.layout.models_uri,
            container_entry_point=entry_point,
            container_arguments=arguments,
            environment=environment or None,
            metric_definitions=metric_definitions,
            hyperparameters=hyperparameters or None,
            tags=self.tags,
            disable_profiler=True,
            debugger_hook_config=False,
            sagemaker_session=self.session,
        )
        if tuning is None:
            return TrainingStep(step.name, estimator=estimator, inputs=channels, depends_on=self.order_only(step))
        return TuningStep(step.name, tuner=self._tuner(estimator, metric_definitions), inputs=channels, depends_on=self.order_only(step))

    def _tuner(self, estimator: Any, metric_definitions: Any) -> Any:
        from sagemaker.parameter import ParameterRange
        from sagemaker.tuner import CategoricalParameter, ContinuousParameter, HyperparameterTuner, IntegerParameter

        tuning = self.plan.tuning
        assert tuning is not None
        ranges: dict[str | PipelineVariable, ParameterRange] = {}
        for param in tuning.params:
            scaling = "Logarithmic" if param.scale == "log" else "Linear"
            if param.type == "categorical":
                ranges[param.name] = CategoricalParameter([v if isinstance(v, str) else json.dumps(v) for v in param.values])
            elif param.type == "int":
                ranges[param.name] = IntegerParameter(int(param.min or 0), int(param.max or 0), scaling_type=scaling)
            else:
                assert param.min is not None and param.max is not None  # the spec gives a continuous parameter its range
                ranges[param.name] = ContinuousParameter(param.min, param.max, scaling_type=scaling)
        return HyperparameterTuner(
            estimator,
            objective_metric_name=tuning.metric,
            hyperparameter_ranges=ranges,
            metric_definitions=metric_definitions,
            strategy={"bayesian": "Bayesian", "random": "Random", "grid": "Grid"}[tuning.algorithm],
            objective_type=tuning.goal.capitalize(),
            max_jobs=None if tuning.algorithm == "grid" else tuning.max_trials,
            max_parallel_jobs=tuning.parallel_trials,
            tags=self.tags,
        )

    def register(self, step: Step, trainer: str) -> Any:
        from sagemaker.model import Model
        from sagemaker.model_metrics import MetricsSource, ModelMetrics
        from sagemaker.workflow.functions import Join
        from sagemaker.workflow.model_step import ModelStep

        plan, registry = self.plan, self.plan.registry
        model_ref = next(r for r in step.inputs if r.artifact == "model")
        metrics_ref = next(r for r in step.inputs if r.artifact == "metrics")
        environment: SdkStrings = {"MLCOMPILE_SYSTEM": plan.system, "MLCOMPILE_MODEL": registry.model}
        if plan.online is not None and plan.online.resources.timeout_seconds is not None:
            environment[bodies.REQUEST_TIMEOUT_ENV] = str(plan.online.resources.timeout_seconds)
        online_features = feature_store.online_features_env(plan, self.layout)
        if online_features is not None:  # serving reads the model's features by entity key
            environment[ONLINE_FEATURES_ENV] = online_features
        environment.update(serving_env(plan))  # a container-trained model's description: model.tar.gz holds what its trainer wrote
        model = Model(
            image_uri=plan.runtime_image,
            model_data=self.producer_uri(model_ref),
            role=self.layout.serving_role,
            env=environment,
            sagemaker_session=self.session,
        )
        statistics = Join(on="/", values=[self.producer_uri(metrics_ref), "metrics.json"])
        metadata = {"mlcompile-system": plan.system, "mlcompile-spec-sha256": plan.spec_sha256, "mlcompile-trainer-step": trainer}
        if registry.aliases:
            metadata["mlcompile-aliases"] = ",".join(registry.aliases)
        if plan.lineage.git_commit:
            metadata["mlcompile-git-commit"] = plan.lineage.git_commit
        baseline = self.drift_baseline(trainer)
        if baseline is not None:
            metadata[DRIFT_BASELINE_KEY] = baseline
        batch_machine = plan.batch.steps[0].resources.machine if plan.batch is not None else None
        arguments = model.register(
            content_types=CONTENT_TYPES,
            response_types=["application/json"],
            inference_instances=[plan.online.resources.machine.name] if plan.online and plan.online.resources.machine else None,
            transform_instances=[batch_machine.name] if batch_machine else None,
            model_package_group_name=registry.model,
            approval_status="Approved" if registry.approval == "auto" else "PendingManualApproval",
            model_metrics=ModelMetrics(model_statistics=MetricsSource(s3_uri=statistics, content_type="application/json")),
            customer_metadata_properties=metadata,
            description=f"{registry.model} trained by {self.pipeline.name}",
        )
        return ModelStep(step.name, step_args=arguments)

    def drift_baseline(self, trainer: str) -> Any:
        """The training set's URI, recorded in the version's metadata: drift checks of a
        container-trained version sample it (mlcompile's own models keep a sample inside).
        Not `DriftCheckBaselines.ModelDataQuality.Statistics`: Model Monitor and Clarify read a
        data-quality statistics JSON there (with KLL sketches), which a parquet file is not, and
        no built-in monitor of this build would read one."""
        from sagemaker.workflow.functions import Join

        train = next((r for r in self.pipeline.step(trainer).inputs if r.name == "train"), None)
        if train is None:
            return None
        return Join(on="/", values=[self.producer_uri(train), input_file(train, self.pipeline.step(train.step))])

    # ------------------------------------------------------------------ pipeline
    def definition(self) -> dict[str, Any]:
        from sagemaker.workflow.pipeline import Pipeline as SdkPipeline

        top: list[Any] = []
        gated: list[Any] = []  # run only when every gate passes
        on_breach: list[Any] = []
        checks: list[Step] = []
        trainer = evaluate = gate_step = None
        for step in self.pipeline.steps:
            if step.kind in ("train", "tune"):
                sdk_step = self.training(step)
                trainer = step.name
            elif step.kind == "register":
                assert trainer is not None
                sdk_step = self.register(step, trainer)
            else:
                if step.run_if == "breach":  # alert/trigger-retraining say why: they read the checks' decisions
                    decisions = tuple(ArtifactRef(a.name, c.name, a.name) for c in checks for a in c.outputs if a.type == "decision")
                    step = dataclasses.replace(step, inputs=(*step.inputs, *decisions))
                sdk_step = self.processing(step)
            self.sdk_steps[step.name] = sdk_step
            if step.kind == "evaluate":
                evaluate = step.name
            if step.kind == "gate":
                gate_step = step.name
            if step.kind in ("check_drift", "check_performance"):
                checks.append(step)
            if step.run_if == "breach":
                on_breach.append(sdk_step)
            elif step.run_if is not None:
                gated.append(sdk_step)
            else:
                top.append(sdk_step)
        if gated:
            assert evaluate is not None and gate_step is not None
            top += gates(self.plan.gates, self.property_files, evaluate, gate_step, gated)
        if on_breach and checks:
            top += breach(self.property_files, checks, on_breach)
        pipeline = SdkPipeline(name=self.pipeline.name, steps=top, sagemaker_session=self.session)
        definition = json.loads(pipeline.definition())
        _tag_model_packages(definition["Steps"], self.tags)
        return definition


def _instance_type(resources: Resources) -> str:
    """The step's SageMaker instance type (checks refused a step without one)."""
    assert resources.machine is not None and resources.machine.name
    return resources.machine.name


def _tag_model_packages(steps: list[dict[str, Any]], tags: list[SdkStrings]) -> None:
    """`Model.register` takes no tags; CreateModelPackage does: add the lineage tags."""
    for step in steps:
        if step.get("Type") == "RegisterModel":
            step["Arguments"]["Tags"] = tags
        for branch in ("IfSteps", "ElseSteps"):
            _tag_model_packages(step.get("Arguments", {}).get(branch, []), tags)
