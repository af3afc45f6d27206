"""The estimator and scorer catalog (`estimators.json`, made by `estimators_gen`): which
classes a scikit-learn trainer may name, their constructor parameters and task, and what
each metric name means. Read lazily and once, without importing scikit-learn."""

from __future__ import annotations

import functools
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, cast

# the packages estimators may come from and mlcompile's short names of scikit-learn's losses
# (reported as the loss itself, lower is better): the runtime checks and computes them too
from mlcompile.runtime.contract import LOSS_ALIASES

# The kinds of estimator that predict a label the evaluation metrics can score
PREDICTING_KINDS = ("classifier", "regressor", "clusterer", "predictor")
# Metrics a task's estimators are scored with; a classifier's predicted labels also take the
# label-comparing clustering scores (adjusted_rand_score, ...)
TASK_METRICS: dict[str, tuple[str, ...]] = {
    "classifier": ("classification", "clustering"),
    "predictor": ("classification", "clustering"),
    "regressor": ("regression",),
    "clusterer": ("clustering",),
}

Task = Literal["classification", "regression", "clustering"]


@dataclass(frozen=True)
class Metric:
    """A metric name a scikit-learn trainer may list. `scorer` is scikit-learn's scorer that
    computes it; `lower_is_better` names a loss reported as itself (mse), `negated` a loss
    reported as scikit-learn's scorers report it (neg_mean_squared_error: ≤ 0, higher is better)."""

    name: str
    task: Task
    scorer: str
    lower_is_better: bool = False
    negated: bool = False

    @property
    def goal(self) -> Literal["maximize", "minimize"]:
        return "minimize" if self.lower_is_better else "maximize"


# mlcompile's own short names of scikit-learn's losses, kept from before the scorer vocabulary:
# reported as the loss itself (the negation of scikit-learn's neg_* scorer), lower is better
# The names mlcompile accepted before every scorer name was: each is a scorer name or a loss alias
LEGACY_METRICS = (
    "accuracy", "average_precision", "balanced_accuracy", "f1", "log_loss", "mae", "mape",
    "mse", "precision", "r2", "recall", "rmse", "roc_auc",
)  # fmt: skip


@functools.cache
def catalog() -> dict[str, Any]:
    # beside this module, read as a file: importlib.resources took 10 ms of validate's budget
    return json.loads(Path(__file__).with_name("estimators.json").read_text(encoding="utf-8"))


def estimator(path: str) -> dict[str, Any] | None:
    """The catalog entry of a dotted class path: kind, params (name → default kind), open_params."""
    return catalog()["estimators"].get(path)


def estimator_paths() -> list[str]:
    return list(catalog()["estimators"])


def catalogued(path: str) -> bool:
    """Whether the path's top-level package is one the catalog lists every class of."""
    return path.split(".", 1)[0] in catalog()["modules"]


def metric(name: str) -> Metric | None:
    """What a metric name means for a scikit-learn trainer, or None when the runtime cannot
    compute it."""
    if name in LOSS_ALIASES:
        task, scorer = LOSS_ALIASES[name]
        return Metric(name, cast(Task, task), scorer, lower_is_better=True)
    entry = catalog()["scorers"].get(name)
    if entry is None:
        return None
    return Metric(name, entry["task"], name, negated=entry["negated"])


def metric_names() -> list[str]:
    return sorted({*LOSS_ALIASES, *catalog()["scorers"]})


def lower_is_better(name: str) -> bool:
    """A loss reported as itself (mse): gates and monitors compare it the other way round."""
    return name in LOSS_ALIASES
