"""What Azure ML cannot express of a plan: each refusal located at the spec field it names.

Pure Python, no SDK import: `mlcompile validate` runs this without azure-ai-ml.

Every plan field is either expressed by `render` (see docs/targets/azureml.md, "Field by
field") or appears here. Errors refuse the build; warnings are builds that run but where
Azure ML applies a field differently from the spec's wording (each says how)."""

from __future__ import annotations

import math
import re
from dataclasses import replace

from mlcompile.diagnostics import Diagnostic
from mlcompile.plan.nodes import Origin, Plan, Step
from mlcompile.secrets import env_name
from mlcompile.targets.azureml._timezones import IANA_TO_WINDOWS
from mlcompile.targets.azureml.feature_store import check_feature_store
from mlcompile.targets.base import unsupported

TARGET = "azureml"

# URI schemes an Azure ML job can read and write without credentials baked into the job
AZURE_URI = re.compile(r"^(abfss?|wasbs?|azureml)://|^https://[a-z0-9]+\.(blob|dfs)\.core\.windows\.net/")
# request_settings.request_timeout_ms of a managed online deployment: at most 180 s
MAX_REQUEST_TIMEOUT_MS = 180_000
# Azure ML names: online endpoints 3-32 chars, letters, digits, '-', starting with a letter
ENDPOINT_NAME = re.compile(r"^[a-zA-Z][a-zA-Z0-9-]{1,30}[a-zA-Z0-9]$")
# Azure ML model monitor: which drift metric each mlcompile method becomes, per column kind
DRIFT_METRICS: dict[str, dict[str, str | None]] = {
    "psi": {"numerical": "population_stability_index", "categorical": "population_stability_index"},
    "jensen_shannon": {"numerical": "jensen_shannon_distance", "categorical": "jensen_shannon_distance"},
    "ks": {"numerical": "two_sample_kolmogorov_smirnov_test", "categorical": None},
    "wasserstein": {"numerical": "normalized_wasserstein_distance", "categorical": None},
}
NUMERIC_DTYPES = frozenset({"int32", "int64", "float32", "float64"})
CATEGORICAL_DTYPES = frozenset({"string", "bool"})
# a grid over an int range is enumerated as a choice; beyond this it is refused
MAX_GRID_VALUES = 1000


def at(origin: Origin, path: str) -> Origin:
    """The origin of a field below `origin` (same line: the plan keeps one location per node)."""
    return replace(origin, path=path)


def check(plan: Plan) -> list[Diagnostic]:
    problems: list[Diagnostic] = []

    def refuse(origin: Origin, message: str, hint: str | None = None) -> None:
        problems.append(unsupported(origin, TARGET, message, hint))

    def warn(origin: Origin, message: str, hint: str | None = None) -> None:
        problems.append(replace(unsupported(origin, TARGET, message, hint), severity="warning"))

    for source in plan.features.sources:
        if not AZURE_URI.match(source.uri):
            refuse(
                source.origin,
                f"source '{source.name}' is read from {source.uri!r}, which Azure ML compute cannot reach",
                "give this profile an abfss://, wasbs://, https://<account>.blob|dfs.core.windows.net/ or azureml:// "
                "URI under overrides.<profile>.features.sources",
            )

    check_feature_store(plan, refuse, warn)

    if plan.batch is not None and not ENDPOINT_NAME.match(f"{plan.system}-batch"):
        refuse(at(plan.batch.steps[0].origin, "metadata.name"),
               f"the batch endpoint name '{plan.system}-batch' is not a valid Azure ML endpoint name",
               "batch endpoints are named <metadata.name>-batch: 3 to 32 letters, digits and '-'; shorten metadata.name")  # fmt: skip

    for pipeline in plan.pipelines():
        for step in pipeline.steps:
            _check_step(plan, step, refuse, warn)

    if plan.tuning is not None:
        _check_tuning(plan, refuse, warn)

    if plan.online is not None:
        online = plan.online
        if not ENDPOINT_NAME.match(online.name):
            refuse(at(online.origin, "deployment.online.endpoint"), f"endpoint name {online.name!r} is not a valid Azure ML online endpoint name",
                   "3 to 32 letters, digits and '-', starting with a letter and not ending with '-'")  # fmt: skip
        resources = online.resources
        where = "deployment.online.resources"
        if resources.machine is None or not resources.machine.name:
            refuse(at(resources.origin, where), "no Azure VM size was resolved for the online deployment")
        if resources.spot:
            refuse(at(resources.origin, f"{where}.spot"), "managed online endpoints do not run on spot capacity",
                   "remove spot from deployment.online.resources (spot is for training and batch)")  # fmt: skip
        if resources.timeout_seconds is not None and resources.timeout_seconds * 1000 > MAX_REQUEST_TIMEOUT_MS:
            refuse(at(resources.origin, f"{where}.timeout"),
                   f"request timeout {resources.timeout_seconds}s exceeds the managed online endpoint limit of {MAX_REQUEST_TIMEOUT_MS // 1000}s")  # fmt: skip
        if online.min_replicas < 1:
            refuse(at(online.origin, "deployment.online.replicas.min"), "managed online deployments cannot scale to zero instances",
                   "set replicas.min to 1 or more")  # fmt: skip
        if online.max_replicas > online.min_replicas and online.autoscaling_metric is None:
            refuse(at(online.origin, "deployment.online.replicas.max"),
                   f"replicas.max {online.max_replicas} > replicas.min {online.min_replicas} needs an autoscaling rule on Azure ML",
                   "add deployment.online.autoscaling, or set replicas.max equal to replicas.min")  # fmt: skip

    if plan.monitoring is not None:
        _check_monitoring(plan, refuse)

    for schedule in plan.schedules:
        if schedule.timezone not in IANA_TO_WINDOWS:
            refuse(at(schedule.origin, schedule.origin.path.rsplit(".", 1)[0] + ".timezone"),
                   f"time zone {schedule.timezone!r} has no Windows time zone name known to mlcompile (Azure ML schedules take Windows names)",
                   "use a zone such as UTC, Europe/Berlin or America/New_York (see mlcompile/targets/azureml/_timezones.py)")  # fmt: skip

    return problems


def _check_step(plan: Plan, step: Step, refuse, warn) -> None:  # type: ignore[no-untyped-def]
    resources = step.resources
    if resources.machine is None or not resources.machine.name:
        refuse(resources.origin, f"no Azure VM size was resolved for step '{step.name}'")
    if step.kind == "score_batch":
        output_uri = str(step.params.get("output_uri", ""))
        if not AZURE_URI.match(output_uri):
            refuse(at(step.origin, "deployment.batch.output.uri"),
                   f"batch scores would be written to {output_uri!r}; Azure ML jobs write outputs to Azure storage only",
                   "set an abfss://, wasbs://, https://<account>.blob.core.windows.net/ or azureml:// URI for this profile under overrides")  # fmt: skip
    if step.uses_user_container and not step.command:
        refuse(at(step.origin, "training.trainer.container.command"),
               "Azure ML command jobs run a command, not the image's entrypoint: the container's command is empty",
               "set training.trainer.container.command for this profile (e.g. the image's ENTRYPOINT)")  # fmt: skip
    if step.uses_user_container:
        for name, value in sorted(step.params.get("env", {}).items()):
            if isinstance(value, str) and value.startswith("secret://"):
                warn(at(step.origin, f"training.trainer.container.env.{name}"),
                     f"Azure ML jobs cannot inject a Key Vault secret into an environment variable: {name} is passed as the "
                     f"reference {value!r}, which the container resolves from the workspace Key Vault (secret '{value[len('secret://'):]}')",
                     f"where it lives is in {env_name(value[len('secret://'):])}: read it in the container with "
                     f"mlcompile.runtime.secrets.resolve(os.environ['{name}']) or Key Vault and the job's managed identity")  # fmt: skip


def _check_tuning(plan: Plan, refuse, warn) -> None:  # type: ignore[no-untyped-def]
    tuning = plan.tuning
    assert tuning is not None
    origin = tuning.origin
    for param in tuning.params:
        path = f"training.tuning.params.{param.name}"
        if param.scale == "log" and param.min is not None and param.min <= 0:
            refuse(at(origin, f"{path}.min"), "a log-scale search needs min > 0 (Azure ML samples exp(uniform(ln min, ln max)))")
        if param.type == "categorical" and any(isinstance(v, bool) for v in param.values):
            refuse(at(origin, f"{path}.values"), "Azure ML passes a sampled choice to the trial as text: true/false would arrive as 'True'/'False'",
                   "use the strings 'true' and 'false'")  # fmt: skip
        if tuning.algorithm == "grid":  # a float range: refused from the capabilities (platform.py)
            if param.type == "int" and param.min is not None and param.max is not None and param.max - param.min + 1 > MAX_GRID_VALUES:
                refuse(at(origin, f"{path}.max"), f"grid over {int(param.max - param.min + 1)} integers (at most {MAX_GRID_VALUES} are enumerated)")
            elif param.type == "int" and param.scale == "log":
                refuse(at(origin, f"{path}.scale"), "Azure ML grid sampling has no log scale", "use type: categorical with the values to try")
    trainer = next((s for s in plan.training.steps if s.kind == "tune"), None)
    taken = {ref.name for ref in trainer.inputs} if trainer is not None else set()
    for param in tuning.params:
        identifier = re.sub(r"[^A-Za-z0-9_]", "_", param.name)
        if identifier in taken:
            refuse(at(origin, f"training.tuning.params.{param.name}"),
                   f"search parameter '{param.name}' becomes the trial input '{identifier}', which is already taken "
                   "(Azure ML passes trial values as inputs named like the parameter, with '-' and '.' as '_')",
                   "rename the parameter")  # fmt: skip
        taken.add(identifier)
    if tuning.algorithm == "bayesian":
        logs = [p.name for p in tuning.params if p.scale == "log"]
        if logs:
            warn(at(origin, "training.tuning.algorithm"),
                 "Azure ML's Bayesian sampling takes only choice, uniform and quniform distributions; to keep the log scale of "
                 f"{', '.join(logs)} this sweep samples at random (loguniform) instead",
                 "set algorithm: random for this profile to silence this, or scale: linear to keep Bayesian sampling")  # fmt: skip
    if tuning.max_trials < tuning.parallel_trials:
        refuse(at(origin, "training.tuning.parallel_trials"), "parallel_trials exceeds max_trials")


def _check_monitoring(plan: Plan, refuse) -> None:  # type: ignore[no-untyped-def]
    monitoring = plan.monitoring
    assert monitoring is not None
    if monitoring.drift_method is None or plan.monitoring_pipeline is None:
        return
    drift_step = next((s for s in plan.monitoring_pipeline.steps if s.kind == "check_drift"), None)
    origin = drift_step.origin if drift_step is not None else monitoring.origin
    metrics = DRIFT_METRICS.get(monitoring.drift_method)
    if metrics is None:
        refuse(at(origin, "monitoring.drift.method"), f"Azure ML model monitoring has no drift metric for method {monitoring.drift_method!r}")
        return
    dtypes = feature_dtypes(plan)
    for feature in monitoring.drift_features:
        dtype = dtypes.get(feature)
        kind = "numerical" if dtype in NUMERIC_DTYPES else "categorical" if dtype in CATEGORICAL_DTYPES else None
        if kind is None:
            refuse(at(origin, "monitoring.drift.features"), f"feature {feature!r} ({dtype}) cannot be monitored for drift by Azure ML")
        elif metrics[kind] is None:
            refuse(at(origin, "monitoring.drift.method"),
                   f"Azure ML has no {monitoring.drift_method} metric for categorical features; {feature!r} is {dtype}",
                   "use method psi or jensen_shannon, or list only numeric features under monitoring.drift.features")  # fmt: skip
    if monitoring.drift_threshold is not None and not math.isfinite(monitoring.drift_threshold):
        refuse(at(origin, "monitoring.drift.threshold"), "the drift threshold must be a finite number")


def feature_dtypes(plan: Plan) -> dict[str, str]:
    """`view:feature` → dtype, for every feature of the feature store."""
    return {f"{view.name}:{column.name}": column.dtype for view in plan.features.views for column in view.features}
