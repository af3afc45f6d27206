"""Models as folders: scikit-learn pipelines built from the spec's estimator, how a frame of
features becomes model input, predictions, and the metrics gates and monitors compare."""

from __future__ import annotations

import importlib
import inspect
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from mlcompile.runtime.contract import FORMAT_CONTAINER
from mlcompile.runtime.io import DataError

MODEL_FILE = "model.joblib"
META_FILE = "model.json"
FORMAT_SKLEARN = "mlcompile.sklearn/1"
NUMERIC = ("int32", "int64", "float32", "float64", "bool", "timestamp")


def load_estimator_class(path: str, packages: Sequence[str] = ()) -> Any:
    """The estimator class a plan names, refused unless it is one: the plan may have been
    edited since validate, so the package is checked before anything is imported, and the
    object after: a class with fit, predict and get_params (as scikit-learn's BaseEstimator)."""
    from mlcompile.runtime.contract import DEFAULT_ESTIMATOR_PACKAGES, in_packages

    allowed = (*DEFAULT_ESTIMATOR_PACKAGES, *packages)
    module_name, _, name = path.rpartition(".")
    if not in_packages(module_name, allowed):
        raise DataError(f"estimator {path}: not from a package estimators may come from ({', '.join(dict.fromkeys(allowed))}); nothing was imported")
    try:
        cls = getattr(importlib.import_module(module_name), name)
    except (ImportError, AttributeError, ValueError) as exc:
        raise DataError(f"estimator {path}: cannot import it ({exc})") from exc
    if not (inspect.isclass(cls) and all(callable(getattr(cls, method, None)) for method in ("fit", "predict", "get_params"))):
        raise DataError(f"estimator {path}: not a scikit-learn estimator class (a class with fit, predict and get_params)")
    return cls


def build_model(estimator_path: str, params: dict[str, Any], features: list[dict[str, Any]], packages: Sequence[str] = ()) -> Any:
    """A Pipeline: string features ordinal-encoded (unknown and missing → -1), numeric
    features imputed only when the estimator cannot take NaN; then the estimator."""
    from sklearn.compose import ColumnTransformer
    from sklearn.impute import SimpleImputer
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import OrdinalEncoder

    cls = load_estimator_class(estimator_path, packages)
    try:
        estimator = cls(**params)
    except TypeError as exc:
        raise DataError(f"estimator {estimator_path}: {exc}") from exc
    categorical = [f["column"] for f in features if f["dtype"] not in NUMERIC]
    numeric = [f["column"] for f in features if f["dtype"] in NUMERIC]
    try:
        allow_nan = bool(estimator.__sklearn_tags__().input_tags.allow_nan)
    except Exception:
        allow_nan = False
    transformers = []
    if categorical:
        encoder = OrdinalEncoder(handle_unknown="use_encoded_value", unknown_value=-1, encoded_missing_value=-1, dtype="float64")
        transformers.append(("categorical", encoder, categorical))
    if numeric:
        transformers.append(("numeric", "passthrough" if allow_nan else SimpleImputer(strategy="median", keep_empty_features=True), numeric))
    if categorical and "categorical_features" in estimator.get_params() and "categorical_features" not in params:
        estimator.set_params(categorical_features=list(range(len(categorical))))
    preprocess = ColumnTransformer(transformers, remainder="drop", verbose_feature_names_out=False)
    return Pipeline([("preprocess", preprocess), ("estimator", estimator)])


def model_frame(frame: Any, features: list[dict[str, Any]]) -> Any:
    """The model's input: numbers as float64 (NaN for missing), strings as objects."""
    import numpy as np
    import pandas as pd

    columns = {}
    for feature in features:
        column, dtype = feature["column"], feature["dtype"]
        if column not in frame.columns:
            raise DataError(f"the input has no feature column {column!r}")
        values = frame[column]
        if dtype == "timestamp":
            stamps = pd.to_datetime(values, utc=True, errors="coerce")
            columns[column] = (stamps.astype("int64") / 1e9).where(stamps.notna(), np.nan)
        elif dtype in NUMERIC:
            columns[column] = pd.to_numeric(values.astype("object").where(values.notna(), np.nan), errors="coerce").astype("float64")
        else:
            columns[column] = values.astype("object").where(values.notna(), np.nan).map(lambda v: v if v != v else str(v))
    return pd.DataFrame(columns, index=frame.index)


def is_classifier(model: Any) -> bool:
    from sklearn.base import is_classifier as check

    return bool(check(model))


def save_model(folder: Path, model: Any, meta: dict[str, Any]) -> None:
    import joblib

    folder.mkdir(parents=True, exist_ok=True)
    joblib.dump(model, folder / MODEL_FILE)
    (folder / META_FILE).write_text(json.dumps(meta, indent=2, sort_keys=True, default=str) + "\n")


def load_meta(folder: Path, description: dict[str, Any] | None = None) -> dict[str, Any]:
    """The folder's model.json, or for a container-trained model's folder the description the
    step config (`description`) or MLCOMPILE_MODEL_MANIFEST gives (`container_model.describe`)."""
    from mlcompile.runtime.container_model import describe

    return describe(folder, description)


def load_model(folder: Path, description: dict[str, Any] | None = None) -> tuple[Any, dict[str, Any]]:
    """(model, meta): a scikit-learn pipeline, or a container-trained model scored through its
    predict entry point (refused, saying so, when it has none)."""
    import joblib

    meta = load_meta(folder, description)
    if meta.get("format") == FORMAT_CONTAINER:
        from mlcompile.runtime.container_model import PredictEntryPoint

        return PredictEntryPoint(folder, meta), meta
    if meta.get("format") != FORMAT_SKLEARN:
        raise DataError(f"{folder}: a {meta.get('format')} model cannot be scored by mlcompile's runtime")
    return joblib.load(folder / MODEL_FILE), meta


def predict(model: Any, meta: dict[str, Any], frame: Any) -> tuple[Any, Any]:
    """(predictions, scores): scores are the positive-class probability for binary
    classifiers, the class probabilities' max for multiclass, the prediction for regressors
    (a container-trained model: what its predict entry point answers)."""
    X = model_frame(frame, meta["features"])
    if meta.get("format") == FORMAT_CONTAINER:
        predictions, scores = model.predict_scored(X)
        return predictions, predictions if scores is None else scores
    predictions = model.predict(X)
    if meta.get("task") == "classification" and hasattr(model, "predict_proba"):
        proba = model.predict_proba(X)
        scores = proba[:, 1] if proba.shape[1] == 2 else proba.max(axis=1)
        return predictions, scores
    return predictions, predictions
