"""Cross-reference rules of SPEC §1 and §2 that no single field can check on its own.

Each rule appends diagnostics; none stops the others, so a user sees every problem of a
file in one run."""

from __future__ import annotations

from collections.abc import Collection, Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mlcompile.catalog.estimators import LEGACY_METRICS
from mlcompile.diagnostics import Diagnostic, JsonPath, did_you_mean, escape_terminal, first_unsafe_character
from mlcompile.secret_checks import check_document
from mlcompile.secrets import looks_like_credential
from mlcompile.spec.estimators import check_estimator_package, check_sklearn_trainer
from mlcompile.spec.loader import SourceMap
from mlcompile.spec.values import uri_scheme

if TYPE_CHECKING:  # the rules read the models' fields only: `validate` may hand them views (spec/fastcheck.py)
    from mlcompile.spec.models import MLSystem
    from mlcompile.spec.profile_model import TargetProfile

# The short metric names of the first releases; a scikit-learn trainer takes these and every
# scikit-learn scorer name (spec/estimators.py), a container trainer any name.
SKLEARN_METRICS = LEGACY_METRICS

# Characters a tuning choice may not hold: platforms paste each sampled choice into the
# trial's command (Azure ML, into a shell script) or into its JSON-encoded definition
# (Katib), where a quote, backslash, `$` or backquote would end the string it sits in.
UNSAFE_CHOICE_CHARACTERS = frozenset("'\"\\$`")

# Settings that carry credentials (a trainer's environment, a third-party target's settings):
# there a credential-named key takes only a secret:// reference, in overrides too.
STRICT_SECRET_PATHS = (("training", "trainer", "container", "env"), ("settings",))


class _Collector:
    def __init__(self, source_map: SourceMap):
        self.source_map = source_map
        self.diagnostics: list[Diagnostic] = []

    def error(self, path: JsonPath, message: str, hint: str | None = None, *, key: bool = False) -> None:
        self.diagnostics.append(self.source_map.diagnostic(path, message, hint=hint, key=key))

    def warning(self, path: JsonPath, message: str, hint: str | None = None) -> None:
        self.diagnostics.append(self.source_map.diagnostic(path, message, hint=hint, severity="warning"))

    def unique(self, base: JsonPath, names: Sequence[str], what: str, field: str = "name") -> None:
        first: dict[str, int] = {}
        for index, name in enumerate(names):
            if name in first:
                line, col = self.source_map.locate((*base, first[name], field) if field else (*base, first[name]))
                self.error(
                    (*base, index, field) if field else (*base, index),
                    f"duplicate {what} '{name}' (first used at line {line}, column {col})",
                    "names must be unique within their list",
                )
            first.setdefault(name, index)

    def resolves(self, path: JsonPath, name: str, known: Collection[str], what: str) -> bool:
        if name in known:  # a dict or set: constant time, so 5,000 references stay linear
            return True
        known = list(dict.fromkeys(known))
        hint = did_you_mean(name, known) or (f"defined {what}s: {', '.join(known)}" if known else f"no {what}s are defined")
        self.error(path, f"unknown {what} '{name}'", hint)
        return False


def check_system(
    system: MLSystem, source_map: SourceMap, *, profile_names: Iterable[str] | None = None, estimator_packages: Sequence[str] | None = None
) -> list[Diagnostic]:
    """Every cross-reference rule of the system spec. `profile_names`, when the profiles are
    known, makes an override key that names no profile an error; `estimator_packages` (the
    packages any profile allows estimators from) refuses estimators of all other packages."""
    c = _Collector(source_map)
    path: JsonPath
    hint: str | None
    features = system.features
    entity_names = [e.name for e in features.entities]
    source_names = [s.name for s in features.sources]
    c.unique(("features", "entities"), entity_names, "entity")
    c.unique(("features", "sources"), source_names, "source")
    c.unique(("features", "views"), [v.name for v in features.views], "view")
    entities, sources = dict.fromkeys(entity_names), dict.fromkeys(source_names)  # ordered, constant-time lookups

    for index, source in enumerate(features.sources):
        path = ("features", "sources", index)
        scheme = uri_scheme(source.uri)
        if source.format == "table" and scheme != "bq":
            c.error((*path, "format"), f"format 'table' needs a table URI (bq://), not {scheme}://", "use 'csv' or 'parquet' for files")
        if source.format != "table" and scheme == "bq":
            c.error((*path, "format"), f"a bq:// URI is a table: set format 'table', not '{source.format}'")

    view_features: dict[str, list[str]] = {}
    for index, view in enumerate(features.views):
        path = ("features", "views", index)
        c.resolves((*path, "source"), view.source, sources, "source")
        for e_index, entity in enumerate(view.entities):
            c.resolves((*path, "entities", e_index), entity, entities, "entity")
        c.unique((*path, "features"), [f.name for f in view.features], "feature")
        view_features[view.name] = [f.name for f in view.features]

    training = system.training
    dataset = training.dataset
    dataset_features = set(dataset.features)
    c.unique(("training", "dataset", "features"), dataset.features, "feature reference", field="")
    columns: dict[str, str] = {}
    for index, ref in enumerate(dataset.features):
        path = ("training", "dataset", "features", index)
        view_name, feature_name = ref.split(":", 1)
        if not c.resolves(path, view_name, view_features, "view"):
            continue
        if feature_name not in view_features[view_name]:
            hint = did_you_mean(feature_name, view_features[view_name]) or f"view '{view_name}' has: {', '.join(dict.fromkeys(view_features[view_name]))}"
            c.error(path, f"view '{view_name}' has no feature '{feature_name}'", hint)
        elif feature_name in columns and columns[feature_name] != ref:
            c.error(path, f"'{ref}' and '{columns[feature_name]}' would both be column '{feature_name}' of the training set", "rename one of the features")
        columns.setdefault(feature_name, ref)
    c.resolves(("training", "dataset", "label", "source"), dataset.label.source, sources, "source")
    if dataset.label.column in columns:
        c.error(("training", "dataset", "label", "column"), f"label column '{dataset.label.column}' is also a feature", "a model must not see its label")

    metrics = training.evaluation.metrics
    c.unique(("training", "evaluation", "metrics"), metrics, "metric", field="")
    check_sklearn_trainer(c, system, estimator_packages)
    for index, gate in enumerate(training.evaluation.gates):
        _metric_listed(c, ("training", "evaluation", "gates", index, "metric"), gate.metric, metrics)
    if training.tuning is not None:
        tuning = training.tuning
        _metric_listed(c, ("training", "tuning", "objective", "metric"), tuning.objective.metric, metrics)
        if tuning.parallel_trials > tuning.max_trials:
            c.error(("training", "tuning", "parallel_trials"), f"{tuning.parallel_trials} parallel trials exceed max_trials {tuning.max_trials}")
        for name, param in tuning.params.items():
            path = ("training", "tuning", "params", name)
            if param.type == "categorical":
                _check_choices(c, (*path, "values"), param.values)
            if param.type in ("float", "int"):
                if param.min >= param.max:
                    c.error((*path, "max"), f"max {param.max} must be greater than min {param.min}")
                elif param.scale == "log" and param.min <= 0:
                    c.error((*path, "min"), "a log scale needs min > 0")
    _check_accelerator(c, ("training", "resources", "accelerator", "type"), training.resources.accelerator)
    _check_container_env(c, system)
    _check_model_scoring(c, system)
    _check_runtime_metrics(c, system)

    deployment = system.deployment
    if deployment is not None:
        if deployment.online is not None:
            online = deployment.online
            path = ("deployment", "online")
            if online.replicas.min > online.replicas.max:
                c.error((*path, "replicas", "min"), f"min {online.replicas.min} is greater than max {online.replicas.max}")
            rollout = online.rollout
            if rollout.strategy == "canary" and rollout.canary_percent is None:
                c.error((*path, "rollout"), "a canary rollout needs canary_percent (1..99)", "for example rollout: {strategy: canary, canary_percent: 10}")
            if rollout.strategy != "canary" and rollout.canary_percent is not None:
                c.error((*path, "rollout", "canary_percent"), f"canary_percent applies only to strategy 'canary', not '{rollout.strategy}'")
            if online.autoscaling is not None and online.autoscaling.metric == "gpu" and online.resources.accelerator is None:
                c.error((*path, "autoscaling", "metric"), "autoscaling on gpu needs resources.accelerator")
            if online.autoscaling is not None and online.autoscaling.metric in ("cpu", "gpu") and online.autoscaling.target > 100:
                c.error((*path, "autoscaling", "target"), f"utilisation target {online.autoscaling.target} is above 100 (percent)")
            _check_accelerator(c, (*path, "resources", "accelerator", "type"), online.resources.accelerator)
        if deployment.batch is not None:
            c.resolves(("deployment", "batch", "input", "source"), deployment.batch.input.source, sources, "source")
            _check_accelerator(c, ("deployment", "batch", "resources", "accelerator", "type"), deployment.batch.resources.accelerator)

    monitoring = system.monitoring
    if monitoring is not None:
        if deployment is None:
            c.error(("monitoring",), "monitoring watches a deployment, but none is defined", "add deployment.online or deployment.batch")
        if monitoring.drift is None and monitoring.performance is None and monitoring.on_breach != "retrain":
            c.error(("monitoring",), "monitoring needs 'drift' or 'performance' (or both)")  # retrain: said below
        if monitoring.drift is not None and monitoring.drift.features != "all":
            for index, ref in enumerate(monitoring.drift.features):
                if ref not in dataset_features:
                    hint = did_you_mean(ref, dataset.features) or "drift is measured on features of training.dataset"
                    c.error(("monitoring", "drift", "features", index), f"'{ref}' is not a feature of training.dataset", hint)
        if monitoring.drift is not None and monitoring.drift.method in ("ks", "wasserstein"):
            dtypes = {f"{v.name}:{f.name}": f.dtype for v in features.views for f in v.features}
            refs = dataset.features if monitoring.drift.features == "all" else monitoring.drift.features
            categorical = [r for r in refs if dtypes.get(r) in ("string", "bool")]
            if categorical:
                c.error(
                    ("monitoring", "drift", "features") if monitoring.drift.features != "all" else ("monitoring", "drift", "method"),
                    f"{monitoring.drift.method} drift needs numeric features; {', '.join(categorical)} {'is' if len(categorical) == 1 else 'are'} not",
                    "use psi or jensen_shannon, which also compare categories, or list only numeric features",
                )
        if monitoring.drift is not None and monitoring.drift.method == "psi" and monitoring.drift.threshold > 10:
            c.error(
                ("monitoring", "drift", "threshold"),
                f"a PSI threshold of {monitoring.drift.threshold} never triggers",
                "0.1 is a small shift, 0.25 a large one",
            )
        if monitoring.performance is not None:
            _metric_listed(c, ("monitoring", "performance", "metric"), monitoring.performance.metric, metrics)
            c.resolves(("monitoring", "performance", "ground_truth", "source"), monitoring.performance.ground_truth.source, sources, "source")
        if monitoring.on_breach == "retrain" and monitoring.drift is None and monitoring.performance is None:
            c.error(
                ("monitoring", "on_breach"),
                "on_breach: retrain needs monitoring.drift or monitoring.performance",
                "add monitoring.drift (a threshold) or monitoring.performance (a metric and its ground truth)",
            )

    retraining = system.retraining
    if retraining is not None:
        if retraining.on_drift and (monitoring is None or (monitoring.drift is None and monitoring.performance is None)):
            c.error(
                ("retraining", "on_drift"),
                "on_drift needs monitoring.drift or monitoring.performance",
                "add monitoring.drift (a threshold) or monitoring.performance (a metric and its ground truth)",
            )
        if retraining.on_new_data is not None:
            c.resolves(("retraining", "on_new_data", "source"), retraining.on_new_data.source, sources, "source")
        if retraining.schedule is None and not retraining.on_drift and retraining.on_new_data is None:
            c.error(("retraining",), "retraining has no trigger", "set schedule, on_drift or on_new_data")

    if profile_names is not None:
        known = sorted(set(profile_names))
        for name in system.overrides:
            if name not in known:
                hint = did_you_mean(name, known) or (f"known profiles: {', '.join(known)}" if known else None)
                c.error(("overrides", name), f"override '{name}' names no target profile", hint, key=True)
    return c.diagnostics


def check_literal_secrets(data: Any, source_map: SourceMap, path: JsonPath = ()) -> list[Diagnostic]:
    """Credentials written as literals anywhere in a file (they belong in secret:// references)."""
    return check_document(data, source_map, strict_paths=STRICT_SECRET_PATHS)


def check_characters(data: Any, source_map: SourceMap, path: JsonPath = ()) -> list[Diagnostic]:
    """Control and invisible characters (NUL, ESC, CR, bidi overrides, zero-width …) in any
    key or string of a file: no field needs them, generated files and platforms choke on
    them, and a terminal acts on them. Tabs and line feeds (block scalars) are fine."""
    found: list[Diagnostic] = []

    def check(where: JsonPath, text: str, *, key: bool = False) -> None:
        at = first_unsafe_character(text)
        if at is not None:
            what = "key" if key else "value"
            found.append(source_map.diagnostic(
                where, f"the {what} holds the control character {escape_terminal(text[at])} at position {at + 1}",
                hint="remove it: names, URIs and settings are printable text (tabs and line breaks are allowed)", key=key,
            ))  # fmt: skip

    def walk(value: Any, where: JsonPath) -> None:
        if isinstance(value, dict):
            for key, item in value.items():
                if isinstance(key, str):
                    check((*where, key), key, key=True)
                walk(item, (*where, key))
        elif isinstance(value, list):
            for index, item in enumerate(value):
                walk(item, (*where, index))
        elif isinstance(value, str):
            check(where, value)

    walk(data, path)
    return found


def _check_choices(c: _Collector, path: JsonPath, values: Sequence[Any]) -> None:
    for index, value in enumerate(values):
        bad = sorted(set(value) & UNSAFE_CHOICE_CHARACTERS) if isinstance(value, str) else []
        if bad:
            c.error((*path, index), f"a tuning choice cannot hold {' or '.join(repr(b) for b in bad)}: platforms paste each choice into the trial's command line or definition",
                    "use letters, digits, spaces and punctuation other than quotes, backslash, $ and `")  # fmt: skip


def data_uris(system: MLSystem) -> list[tuple[JsonPath, str]]:
    """The spec's data URIs a platform's jobs read (sources) or write (batch scores), with their paths."""
    uris: list[tuple[JsonPath, str]] = [(("features", "sources", i, "uri"), s.uri) for i, s in enumerate(system.features.sources)]
    if system.deployment is not None and system.deployment.batch is not None:
        uris.append((("deployment", "batch", "output", "uri"), system.deployment.batch.output.uri))
    return uris


def check_for_profile(system: MLSystem, source_map: SourceMap, target: TargetProfile) -> list[Diagnostic]:
    """Rules that depend on where the spec is built: local files are readable only locally;
    the platform adds its own (`Platform.check_profile`)."""
    from mlcompile.targets.registry import platform_named

    c = _Collector(source_map)
    check_estimator_package(c, system, target.estimator_packages, f"profile '{target.name}'")
    platform = platform_named(target.platform)
    if platform is not None and platform.runs_on_this_machine:
        spec_dir = Path(source_map.file).parent
        for index, source in enumerate(system.features.sources):
            if uri_scheme(source.uri) == "file" and not (spec_dir / source.uri.split("://", 1)[1]).exists():
                c.warning(("features", "sources", index, "uri"), f"no file at {source.uri} (relative to the spec): a local run would fail here")
        return c.diagnostics
    for path, uri in data_uris(system):
        if uri_scheme(uri) == "file":
            c.error(
                path,
                f"a file:// URI cannot be read on {target.platform} (profile '{target.name}')",
                f"replace it under overrides.{target.name} with a URI the platform reads",
            )
    if platform is not None:

        def report(path: JsonPath, message: str, hint: str | None = None, severity: str = "error") -> None:
            (c.error if severity == "error" else c.warning)(path, message, hint)

        platform.check_profile(system, target, report)
    return c.diagnostics


def check_target(target: TargetProfile, source_map: SourceMap, available_platforms: Iterable[str]) -> list[Diagnostic]:
    """The profile's blocks against its platform: the one settings block the platform takes,
    checked by the platform's settings model, and the runtime image when the platform needs one."""
    from mlcompile.spec.models import PLATFORM_NAMES
    from mlcompile.targets.registry import platform_named

    c = _Collector(source_map)
    available = sorted(set(available_platforms) | set(PLATFORM_NAMES))
    builtin = target.platform in PLATFORM_NAMES
    platform = platform_named(target.platform) if target.platform in available else None
    block = target.platform if builtin else "settings"
    if target.platform not in available:
        hint = did_you_mean(target.platform, available) or "known platforms: " + ", ".join(available)
        c.error(("platform",), f"unknown platform '{target.platform}'", hint)
    elif platform is not None and platform.settings_required and getattr(target, block) is None:
        c.error(("platform",), f"platform '{target.platform}' needs a '{block}:' block with its settings")
    for other in PLATFORM_NAMES if target.platform in available else ():  # unknown: the did-you-mean says it
        if other != target.platform and getattr(target, other) is not None:
            c.error(
                (other,), f"'{other}:' settings do not apply to platform '{target.platform}'", "a profile holds exactly the block its platform names", key=True
            )
    if builtin and target.settings is not None:
        c.error(("settings",), f"'settings:' is for third-party targets; platform '{target.platform}' takes a '{target.platform}:' block", key=True)
    if not builtin and platform is not None and platform.settings_model is not None and target.settings is not None:
        _check_settings(c, platform.settings_model, target.settings, target.platform)
    if platform is not None and platform.needs_runtime_image and target.images is None:
        c.error(("images",), f"platform '{target.platform}' needs images.runtime: the image that runs mlcompile's steps")
    return c.diagnostics


def _check_settings(c: _Collector, model: Any, settings: dict[str, Any], platform: str) -> None:
    """A third-party platform's `settings:` read by its own settings model (pydantic), each
    problem at the key or value it is about."""
    from pydantic import ValidationError

    try:
        model.model_validate(settings)
    except ValidationError as exc:
        for error in exc.errors():
            path: JsonPath = ("settings", *error["loc"])
            unknown = error["type"] == "extra_forbidden"
            message = f"'{error['loc'][-1]}' is not a setting of platform '{platform}'" if unknown else error["msg"]
            c.error(path, message, key=unknown)


def _metric_listed(c: _Collector, path: JsonPath, metric: str, metrics: Sequence[str]) -> None:
    if metric not in metrics:
        hint = did_you_mean(metric, metrics) or f"add it to training.evaluation.metrics ({', '.join(metrics)})"
        c.error(path, f"metric '{metric}' is not in training.evaluation.metrics", hint)


def _check_accelerator(c: _Collector, path: JsonPath, accelerator: Any) -> None:
    if accelerator is None:
        return
    from mlcompile.catalog import accelerator_names

    if accelerator.type not in accelerator_names():
        from mlcompile.catalog import suggest_accelerator

        suggestion = suggest_accelerator(accelerator.type)
        hint = f"did you mean '{suggestion}'?" if suggestion else "known accelerators: " + ", ".join(accelerator_names())
        c.error(path, f"unknown accelerator '{accelerator.type}'", hint)


def _check_container_env(c: _Collector, system: MLSystem) -> None:
    container = system.training.trainer.container
    if container is None:
        return
    for name, value in container.env.items():
        if looks_like_credential(name) and not value.startswith("secret://"):
            c.error(
                ("training", "trainer", "container", "env", name),
                f"'{name}' looks like a credential: write it as a secret:// reference",
                "for example secret://" + name.lower().replace("_", "-"),
            )


def _check_model_scoring(c: _Collector, system: MLSystem) -> None:
    """Whatever scores rows with a container-trained model (the endpoint, batch scoring,
    performance monitoring, evaluation by the runtime) runs its predict entry point: without
    one, the endpoint would crash-loop and every batch and monitoring run would fail."""
    trainer = system.training.trainer
    metrics_from = system.training.evaluation.metrics_from
    if trainer.sklearn is not None:
        if metrics_from == "reported":
            c.error(
                ("training", "evaluation", "metrics_from"),
                "a scikit-learn trainer reports no metrics: mlcompile computes them on the test set",
                "remove metrics_from (or set it to runtime)",
            )
        return
    if trainer.container is None or trainer.container.predict is not None:
        return
    hint = "add training.trainer.container.predict: {command: [python, predict.py]}, the program that scores rows with the model your trainer wrote (see docs/spec.md)"
    deployment = system.deployment
    needs = [
        (("deployment", "online"), deployment is not None and deployment.online is not None, "an online endpoint"),
        (("deployment", "batch"), deployment is not None and deployment.batch is not None, "batch scoring"),
        (("monitoring", "performance"), system.monitoring is not None and system.monitoring.performance is not None, "performance monitoring"),
        (("training", "evaluation", "metrics_from"), metrics_from == "runtime", "metrics_from: runtime"),
    ]
    for path, wanted, what in needs:
        if wanted:
            c.error(path, f"{what} scores rows with the model, but the container trainer gives no predict entry point to score them with", hint)


def _check_runtime_metrics(c: _Collector, system: MLSystem) -> None:
    """Metrics the runtime computes from a container-trained model's predictions (performance
    monitoring, metrics_from: runtime) must be ones it can compute: scikit-learn's scorers."""
    if system.training.trainer.container is None:
        return
    from mlcompile.catalog.estimators import metric

    hint = "the runtime computes scikit-learn's scorers (sklearn.metrics.get_scorer_names()) and mse, rmse, mae, mape, log_loss"
    evaluation = system.training.evaluation
    if evaluation.metrics_from == "runtime":
        for index, name in enumerate(evaluation.metrics):
            if metric(name) is None:
                c.error(
                    ("training", "evaluation", "metrics", index),
                    f"metrics_from: runtime, but the runtime cannot compute '{name}' from the model's predictions",
                    hint,
                )
    performance = system.monitoring.performance if system.monitoring is not None else None
    if performance is not None and performance.metric in evaluation.metrics and metric(performance.metric) is None:  # an unlisted one is reported as such
        c.error(
            ("monitoring", "performance", "metric"),
            f"performance monitoring computes '{performance.metric}' from the model's predictions, and the runtime cannot compute it",
            hint,
        )
