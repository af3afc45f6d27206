"""The runtime computes every metric a scikit-learn trainer may list exactly as scikit-learn's
own `get_scorer(name)` does on the same model and held-out rows (one test per scorer family),
keeps the meaning of mlcompile's short names, reads neg_* scores the right way round in gates,
and imports or calls nothing but an estimator class of an allowed package."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import f1_score, get_scorer

from mlcompile.catalog import estimators as catalog
from mlcompile.runtime import step_function
from mlcompile.runtime.io import DataError
from mlcompile.runtime.metrics import compute_metrics
from mlcompile.runtime.model import build_model, load_estimator_class, model_frame

FEATURES = [{"ref": "v:x", "view": "v", "column": "x", "dtype": "float64"}, {"ref": "v:z", "view": "v", "column": "z", "dtype": "float64"}]
META = {"features": FEATURES}
MULTICLASS_VARIANTS = ("f1", "precision", "recall", "roc_auc")


def _frame(labels: str, n: int = 240, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    x, z = rng.normal(size=n), rng.normal(size=n)
    noisy = x + rng.normal(scale=0.7, size=n)
    y = {
        "binary": (noisy > 0).astype(int),
        "binary-strings": np.where(noisy > 0, "late", "on-time"),
        "multiclass": np.digitize(noisy, [-0.5, 0.5]),
        "positive": np.exp(0.5 * x + 0.1 * z) + rng.uniform(0.1, 0.5, size=n),  # > 0: deviances and log errors apply
    }[labels]
    return pd.DataFrame({"x": x, "z": z, "y": y})


def _fitted(estimator: str, labels: str) -> tuple[object, pd.DataFrame]:
    model = build_model(estimator, {}, FEATURES)
    train = _frame(labels)
    model.fit(model_frame(train, FEATURES), train["y"].to_numpy())
    return model, _frame(labels, 120, seed=1)


def _scorers(task: str) -> list[str]:
    return [name for name in catalog.metric_names() if (m := catalog.metric(name)) and m.task == task and m.name == m.scorer and not name.endswith("_samples")]


def _assert_as_scikit_learn(names: list[str], model: object, test: pd.DataFrame) -> None:
    """Where scikit-learn's scorer computes a value the runtime reports it; where it refuses
    (a binary-only score of a multiclass model) the runtime refuses too."""
    X, y = model_frame(test, FEATURES), test["y"].to_numpy()
    for name in names:
        try:
            expected = round(float(get_scorer(name)(model, X, y)), 6)
        except ValueError:
            if name in MULTICLASS_VARIANTS:  # mlcompile's short name has a multiclass meaning: tested below
                continue
            with pytest.raises(DataError, match=name):
                compute_metrics([name], model, META, test, "y")
            continue
        assert compute_metrics([name], model, META, test, "y") == {name: expected}, name


def test_binary_classification_scorers_equal_scikit_learns() -> None:
    names = _scorers("classification")
    assert {"accuracy", "roc_auc", "neg_log_loss", "f1", "neg_brier_score", "top_k_accuracy", "positive_likelihood_ratio"} <= set(names)
    _assert_as_scikit_learn(names, *_fitted("sklearn.linear_model.LogisticRegression", "binary"))


def test_multiclass_classification_scorers_equal_scikit_learns() -> None:
    model, test = _fitted("sklearn.ensemble.RandomForestClassifier", "multiclass")
    _assert_as_scikit_learn(_scorers("classification"), model, test)


def test_regression_scorers_equal_scikit_learns() -> None:
    names = _scorers("regression")
    assert {"r2", "neg_mean_squared_error", "neg_max_error", "neg_mean_poisson_deviance", "d2_absolute_error_score"} <= set(names)
    _assert_as_scikit_learn(names, *_fitted("sklearn.linear_model.Ridge", "positive"))


def test_clustering_scorers_equal_scikit_learns() -> None:
    _assert_as_scikit_learn(_scorers("clustering"), *_fitted("sklearn.cluster.KMeans", "multiclass"))


def test_short_names_are_their_scorers_the_loss_way_round_and_work_for_any_labels() -> None:
    model, test = _fitted("sklearn.linear_model.Ridge", "positive")
    X, y = model_frame(test, FEATURES), test["y"].to_numpy()
    computed = compute_metrics(["mse", "rmse", "mae", "mape", "r2"], model, META, test, "y")
    for name in ("mse", "rmse", "mae", "mape"):
        assert computed[name] == round(-float(get_scorer(catalog.LOSS_ALIASES[name][1])(model, X, y)), 6) > 0
    multi, test = _fitted("sklearn.ensemble.RandomForestClassifier", "multiclass")
    X, y = model_frame(test, FEATURES), test["y"].to_numpy()
    assert compute_metrics(["f1", "roc_auc", "log_loss"], multi, META, test, "y") == {
        "f1": round(float(get_scorer("f1_macro")(multi, X, y)), 6),
        "roc_auc": round(float(get_scorer("roc_auc_ovr")(multi, X, y)), 6),
        "log_loss": round(-float(get_scorer("neg_log_loss")(multi, X, y)), 6),
    }
    strings, test = _fitted("sklearn.linear_model.LogisticRegression", "binary-strings")
    X, y = model_frame(test, FEATURES), test["y"].to_numpy()
    assert list(strings.classes_) == ["late", "on-time"]  # type: ignore[attr-defined]
    assert compute_metrics(["f1"], strings, META, test, "y")["f1"] == round(float(f1_score(y, strings.predict(X), pos_label="on-time")), 6)  # type: ignore[attr-defined]
    assert 0.5 < compute_metrics(["average_precision", "roc_auc"], strings, META, test, "y")["average_precision"] <= 1


def test_gates_compare_negated_losses_and_losses_each_the_right_way_round(tmp_path: Path) -> None:
    evaluation = {"metrics": {"neg_mean_squared_error": -1.0, "mse": 1.0}, "production": {"metrics": {"neg_mean_squared_error": -2.0, "mse": 2.0}}}
    (tmp_path / "eval.json").write_text(json.dumps(evaluation))
    gates = [
        {"metric": "neg_mean_squared_error", "comparison": "min", "threshold": -1.5},
        {"metric": "neg_mean_squared_error", "comparison": "min_delta_vs_production", "threshold": 0.5},
        {"metric": "mse", "comparison": "min_delta_vs_production", "threshold": 0.5},
    ]
    decision = step_function("gate")({"gates": gates, "params": {}}, {"metrics": str(tmp_path / "eval.json")}, {"decision": str(tmp_path / "d.json")})
    assert [(r["passed"], r.get("delta")) for r in decision["results"]] == [(True, None), (True, 1.0), (True, 1.0)]


def test_the_runtime_refuses_a_non_estimator_even_when_a_plan_names_one(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    imported: list[str] = []
    real_import = __import__("importlib").import_module
    monkeypatch.setattr("importlib.import_module", lambda name, *a: imported.append(name) or real_import(name, *a))
    with pytest.raises(DataError, match="not from a package estimators may come from"):
        load_estimator_class("subprocess.call")
    with pytest.raises(DataError, match="not from a package"):
        load_estimator_class("sklearnx.Evil")  # a prefix of an allowed name is not that package
    assert imported == []  # refused before anything was imported
    with pytest.raises(DataError, match="not a scikit-learn estimator class"):
        load_estimator_class("sklearn.utils.Bunch")
    with pytest.raises(DataError, match="not a scikit-learn estimator class"):
        load_estimator_class("os.system", ["os"])  # even a package the plan allows: a function is no estimator
    (tmp_path / "mycompany_models.py").write_text(
        "from sklearn.linear_model import LogisticRegression\n\nclass ChurnClassifier(LogisticRegression):\n    pass\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.raises(DataError, match="not from a package"):
        load_estimator_class("mycompany_models.ChurnClassifier")
    assert load_estimator_class("mycompany_models.ChurnClassifier", ["mycompany_models"]).__name__ == "ChurnClassifier"
    sys.modules.pop("mycompany_models", None)
