"""The metrics gates, tuning and monitors compare, computed on a held-out frame the way
scikit-learn computes them: each name is scikit-learn's scorer of that name
(`sklearn.metrics.get_scorer`) called on the model, so a value equals what
`cross_validate(scoring=name)` reports for the same split.

mlcompile's own short names keep their meaning: the losses (mse, rmse, mae, mape, log_loss)
are the negation of their neg_* scorer, so lower is better; f1, precision, recall and
average_precision take the second class as the positive one, whatever its label, and f1,
precision, recall and roc_auc score a multiclass model by their macro / one-vs-rest variant,
where scikit-learn's scorers of the same name accept binary targets only."""

from __future__ import annotations

from typing import Any

from mlcompile.runtime.contract import LOSS_ALIASES
from mlcompile.runtime.io import DataError
from mlcompile.runtime.model import model_frame

LOWER_IS_BETTER = frozenset(LOSS_ALIASES)
_BINARY_AVERAGED = ("f1", "precision", "recall")


def scorer(name: str, classes: list[Any]) -> tuple[Any, float]:
    """(scikit-learn scorer, sign) computing metric `name` for a model with these classes."""
    from sklearn import metrics

    binary = len(classes) == 2
    if name in LOSS_ALIASES:
        return metrics.get_scorer(LOSS_ALIASES[name][1]), -1.0
    if name in _BINARY_AVERAGED and len(classes) > 2:
        return metrics.get_scorer(f"{name}_macro"), 1.0
    if name in _BINARY_AVERAGED and binary:
        function = {"f1": metrics.f1_score, "precision": metrics.precision_score, "recall": metrics.recall_score}[name]
        return metrics.make_scorer(function, pos_label=classes[1], zero_division=0), 1.0
    if name == "average_precision" and binary:
        return metrics.make_scorer(metrics.average_precision_score, response_method=("decision_function", "predict_proba"), pos_label=classes[1]), 1.0
    if name == "roc_auc" and len(classes) > 2:
        return metrics.get_scorer("roc_auc_ovr"), 1.0
    try:
        return metrics.get_scorer(name), 1.0
    except ValueError as exc:
        raise DataError(f"metric {name!r} is not a scikit-learn scorer; a container trainer may report it") from exc


def compute_metrics(names: list[str], model: Any, meta: dict[str, Any], frame: Any, label: str) -> dict[str, float]:
    y = frame[label].to_numpy()
    X = model_frame(frame, meta["features"])
    classes = [c.item() if hasattr(c, "item") else c for c in getattr(model, "classes_", [])]
    results: dict[str, float] = {}
    for name in names:
        score, sign = scorer(name, classes)
        try:
            value = sign * score(model, X, y)
        except (ValueError, AttributeError, TypeError) as exc:
            if name in ("roc_auc", "average_precision") and len(set(y.tolist())) < 2:
                value = float("nan")  # one class in the test set: undefined, and a gate on it fails
            else:
                raise DataError(f"metric {name}: scikit-learn cannot compute it for this model and test set: {exc}") from exc
        results[name] = round(float(value), 6)
    return results


def model_metrics(names: list[str], model: Any, meta: dict[str, Any], frame: Any, label: str) -> dict[str, float]:
    """`compute_metrics` of any model `model.load_model` gives: a container-trained one answers
    through its predict entry point, and its answers are scored as scikit-learn scores them."""
    if not hasattr(model, "predict_scored"):
        return compute_metrics(names, model, meta, frame, label)
    from mlcompile.runtime.container_model import frozen_estimator

    predictions, scores = model.predict_scored(model_frame(frame, meta["features"]))
    return compute_metrics(names, frozen_estimator(predictions, scores, frame[label].to_numpy()), {**meta, "features": []}, frame, label)
