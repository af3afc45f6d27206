"""A scikit-learn trainer checked against the estimator catalog, at validate rather than on
the cluster: the class exists and comes from an allowed package, its parameters (and the
tuned ones) are constructor parameters, every metric is a scorer the runtime computes for
that kind of estimator, and gates and tuning goals read each metric the right way round."""

from __future__ import annotations

import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING

from mlcompile.catalog import estimators as catalog
from mlcompile.diagnostics import JsonPath, did_you_mean
from mlcompile.runtime.contract import DEFAULT_ESTIMATOR_PACKAGES, in_packages

if TYPE_CHECKING:
    from mlcompile.spec.checks import _Collector
    from mlcompile.spec.models import MLSystem

ESTIMATOR = ("training", "trainer", "sklearn", "estimator")
PARAMS = ("training", "trainer", "sklearn", "params")
# a few of each task's metrics, for hints
_EXAMPLES = {
    "classification": "accuracy, balanced_accuracy, f1_macro, roc_auc, log_loss",
    "regression": "r2, rmse, mae, neg_mean_squared_error, neg_mean_absolute_error",
    "clustering": "adjusted_rand_score, v_measure_score, normalized_mutual_info_score",
}


def check_sklearn_trainer(c: _Collector, system: MLSystem, estimator_packages: Sequence[str] | None = None) -> None:
    """Every rule of a scikit-learn trainer that needs no profile. With `estimator_packages`
    (the packages some profile allows), a class from any other package is refused too."""
    training = system.training
    sklearn = training.trainer.sklearn
    if sklearn is None:
        return
    if estimator_packages is not None:
        check_estimator_package(c, system, estimator_packages, "a target profile")
    entry = catalog.estimator(sklearn.estimator)
    kind = entry["kind"] if entry else None
    if entry is None and catalog.catalogued(sklearn.estimator):
        hint = _estimator_hint(sklearn.estimator) or "sklearn.utils.discovery.all_estimators() lists the classes (mlcompile's catalog holds them)"
        c.error(ESTIMATOR, f"unknown estimator '{sklearn.estimator}'", hint)
    elif entry is not None:
        if kind not in catalog.PREDICTING_KINDS:
            c.error(
                ESTIMATOR,
                f"'{sklearn.estimator}' is a {kind}: it does not predict, so there is nothing to evaluate",
                "name a classifier or a regressor (for example sklearn.ensemble.HistGradientBoostingClassifier)",
            )
        _check_params(c, sklearn.estimator, entry, [(name, (*PARAMS, name)) for name in sklearn.params], "parameter")
        missing = [name for name, default in entry["params"].items() if default == "required" and name not in sklearn.params]
        if missing:
            c.error(
                ESTIMATOR,
                f"'{sklearn.estimator}' needs parameter{'s' if len(missing) > 1 else ''} {', '.join(missing)}",
                "set it under params, or name an estimator that needs no other estimator object",
            )
        if training.tuning is not None:
            tuned = [(name, ("training", "tuning", "params", name)) for name in training.tuning.params]
            _check_params(c, sklearn.estimator, entry, tuned, "tuning parameter")
    _check_metrics(c, system, kind)


def check_estimator_package(c: _Collector, system: MLSystem, allowed: Sequence[str], where: str) -> None:
    """No arbitrary code: the trainer names an estimator class of an allowed package, never a
    function such as subprocess.call."""
    sklearn = system.training.trainer.sklearn
    if sklearn is None:
        return
    packages = (*DEFAULT_ESTIMATOR_PACKAGES, *allowed)
    if in_packages(sklearn.estimator, packages):
        return
    package = sklearn.estimator.split(".", 1)[0]
    allow = (
        f"'{package}' is Python's standard library: it holds no estimators"
        if package in sys.stdlib_module_names
        else f"{where} may allow its package: estimator_packages: [{package}]"
    )
    c.error(
        ESTIMATOR,
        f"'{sklearn.estimator}' is not an estimator class of an allowed package ({', '.join(dict.fromkeys(packages))})",
        _estimator_hint(sklearn.estimator) or f"name a scikit-learn-compatible estimator class; {allow}",
    )


def _estimator_hint(path: str) -> str | None:
    """The catalogued class meant: the same class name (from a private or a wrong module), a
    close class name, or a class of the (closest) module named. Class names, not whole paths,
    are compared: short strings keep difflib quick (whole paths took ~0.1 s)."""
    import difflib

    paths = catalog.estimator_paths()
    by_class = {p.rsplit(".", 1)[-1].lower(): p for p in paths}
    module, _, name = path.rpartition(".")
    close = difflib.get_close_matches(name.lower(), list(by_class), n=1, cutoff=0.75)
    if close:
        return f"did you mean '{by_class[close[0]]}'?"
    modules = sorted({p.rsplit(".", 1)[0] for p in paths})
    nearest = module if module in modules else next(iter(difflib.get_close_matches(module, modules, n=1, cutoff=0.6)), None)
    classes = {p.rsplit(".", 1)[-1].lower(): p for p in paths if p.rsplit(".", 1)[0] == nearest}
    close = difflib.get_close_matches(name.lower(), list(classes), n=1, cutoff=0.5)
    return f"did you mean '{classes[close[0]]}'?" if close else None


def _check_params(c: _Collector, estimator: str, entry: dict, names: list[tuple[str, tuple]], what: str) -> None:
    known = entry["params"]
    for name, path in names:
        if name in known:
            continue
        hint = did_you_mean(name, known) or (f"parameters of {estimator}: {', '.join(known)}" if known else f"{estimator} takes no parameters")
        if entry.get("open_params"):  # **kwargs: passed on (XGBoost's booster parameters), maybe unused
            c.warning(path, f"'{name}' is not a named parameter of {estimator}: it is passed on as is", hint)
        else:
            c.error(path, f"unknown {what} '{name}' of {estimator}", hint, key=True)


def _check_metrics(c: _Collector, system: MLSystem, kind: str | None) -> None:
    training = system.training
    tasks = catalog.TASK_METRICS.get(kind or "", ())
    for index, name in enumerate(training.evaluation.metrics):
        path = ("training", "evaluation", "metrics", index)
        metric = catalog.metric(name)
        if metric is None:
            hint = (
                did_you_mean(name, catalog.metric_names())
                or "scikit-learn trainers take the names of sklearn.metrics.get_scorer_names(), and mse, rmse, mae, mape, log_loss"
            )
            c.error(path, f"the runtime cannot compute metric '{name}' for a scikit-learn trainer: it is no scikit-learn scorer", hint)
        elif name.endswith("_samples"):
            c.error(
                path,
                f"'{name}' averages over the labels of each sample: it needs a multilabel target, and a spec has one label column",
                f"use {name.removesuffix('_samples')}_macro or {name.removesuffix('_samples')}_weighted",
            )
        elif tasks and metric.task not in tasks:
            c.error(
                path,
                f"'{name}' is a {metric.task} metric, but {system.training.trainer.sklearn.estimator} is a {kind}",  # type: ignore[union-attr]
                f"{' or '.join(tasks)} metrics: {', '.join(_EXAMPLES[t] for t in tasks)}",
            )
    _check_directions(c, system)


def _check_directions(c: _Collector, system: MLSystem) -> None:
    """Losses named as themselves (mse) are minimised; every scikit-learn scorer, the negated
    losses (neg_mean_squared_error, always ≤ 0) too, is maximised."""
    training = system.training
    if training.tuning is not None:
        objective = training.tuning.objective
        metric = catalog.metric(objective.metric)
        if metric is not None and objective.goal != metric.goal:
            c.error(
                ("training", "tuning", "objective", "goal"), f"goal '{objective.goal}' would choose the worst trial: {_reading(metric)}", f"goal: {metric.goal}"
            )
    bounds: list[tuple[JsonPath, str, float | None, float | None]] = [
        (("training", "evaluation", "gates", i), gate.metric, gate.min, gate.max) for i, gate in enumerate(training.evaluation.gates)
    ]
    performance = system.monitoring.performance if system.monitoring else None
    if performance is not None:
        bounds.append((("monitoring", "performance"), performance.metric, performance.min, None))
    for path, name, minimum, maximum in bounds:
        metric = catalog.metric(name)
        if metric is None or not metric.negated:
            continue
        example = f"for {metric.scorer.removeprefix('neg_')} at most 0.5 write min: -0.5"
        if minimum is not None and minimum > 0:
            c.error((*path, "min"), f"min {minimum:g} can never be met: {_reading(metric)}", example)
        if maximum is not None and maximum >= 0:
            c.error((*path, "max"), f"max {maximum:g} is always met: {_reading(metric)}", example)


def _reading(metric: catalog.Metric) -> str:
    if metric.lower_is_better:
        return f"'{metric.name}' is a loss (lower is better)"
    if metric.negated:
        return f"'{metric.name}' is a negated loss, as scikit-learn reports it (≤ 0, higher is better)"
    return f"'{metric.name}' is a score (higher is better)"
