"""A scikit-learn trainer is checked at validate, against the shipped estimator catalog: the
class, its parameters, the metrics its kind of model can be scored with, the direction of
gates and tuning goals, and the packages an estimator may come from. None of it imports
scikit-learn."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from mlcompile.catalog import estimators as catalog
from mlcompile.catalog import estimators_gen
from mlcompile.errors import SpecError
from mlcompile.spec.resolve import load_profile, load_system

HERE = Path(__file__).parent
BASE = HERE / "errors" / "_base" / "minimal.yaml"
PROFILE = HERE / "errors" / "_base" / "targets" / "aws-prod.yaml"


def _spec(tmp_path: Path, trainer: dict, metrics: list[str] | None = None, **training: object) -> Path:
    data = yaml.safe_load(BASE.read_text())
    data["training"]["trainer"] = {"sklearn": trainer}
    data["training"]["evaluation"]["metrics"] = metrics or ["roc_auc"]
    data["training"].update(training)
    path = tmp_path / "mlcompile.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def _errors(path: Path, profiles: list | None = None) -> list[tuple[str, str, str | None]]:
    try:
        bundle = load_system(path, profiles)
    except SpecError as exc:
        return [(d.path, d.message, d.hint) for d in exc.diagnostics if d.severity == "error"]
    assert bundle is not None
    return []


HGB = "sklearn.ensemble.HistGradientBoostingClassifier"


def test_the_shipped_catalog_is_what_the_installed_packages_generate() -> None:
    """Regenerating gives the same bytes: otherwise run python -m mlcompile.catalog.estimators_gen."""
    shipped = estimators_gen.CATALOG_FILE.read_text()
    third_party = [module for module in catalog.catalog()["modules"] if module != "sklearn"]
    assert shipped == estimators_gen.generate(third_party)


def test_catalog_knows_scikit_learns_classes_parameters_kinds_and_scorers() -> None:
    hgb = catalog.estimator(HGB)
    assert hgb is not None and hgb["kind"] == "classifier" and hgb["params"]["max_iter"] == "int"
    assert catalog.estimator("sklearn.linear_model.Ridge")["kind"] == "regressor"  # type: ignore[index]
    assert catalog.estimator("sklearn.cluster.KMeans")["kind"] == "clusterer"  # type: ignore[index]
    assert catalog.estimator("sklearn.preprocessing.StandardScaler")["kind"] == "transformer"  # type: ignore[index]
    assert catalog.metric("neg_mean_squared_error") == catalog.Metric("neg_mean_squared_error", "regression", "neg_mean_squared_error", negated=True)
    assert catalog.metric("mse") == catalog.Metric("mse", "regression", "neg_mean_squared_error", lower_is_better=True)
    assert catalog.metric("neg_max_error").negated  # type: ignore[union-attr]
    assert catalog.metric("f1_weighted").task == "classification"  # type: ignore[union-attr]


def test_every_metric_name_of_earlier_releases_still_means_a_scorer() -> None:
    for name in catalog.LEGACY_METRICS:
        metric = catalog.metric(name)
        assert metric is not None and catalog.metric(metric.scorer) is not None, name


def test_misspelled_estimator_is_a_located_error_with_the_class_meant(tmp_path: Path) -> None:
    path = _spec(tmp_path, {"estimator": "sklearn.ensemble.HistGradientBoostingClasifier"})
    assert _errors(path) == [
        ("training.trainer.sklearn.estimator", "unknown estimator 'sklearn.ensemble.HistGradientBoostingClasifier'", f"did you mean '{HGB}'?")
    ]
    private = _spec(tmp_path, {"estimator": "sklearn.ensemble._forest.RandomForestClassifier"})
    assert _errors(private)[0][2] == "did you mean 'sklearn.ensemble.RandomForestClassifier'?"


def test_unknown_parameter_and_tuning_parameter_are_located_at_their_keys(tmp_path: Path) -> None:
    tuning = {"objective": {"metric": "roc_auc", "goal": "maximize"}, "max_trials": 2, "params": {"learning_rat": {"type": "float", "min": 0.01, "max": 0.3}}}
    path = _spec(tmp_path, {"estimator": HGB, "params": {"max_iters": 100}}, tuning=tuning)
    assert _errors(path) == [
        ("training.trainer.sklearn.params.max_iters", f"unknown parameter 'max_iters' of {HGB}", "did you mean 'max_iter'?"),
        ("training.tuning.params.learning_rat", f"unknown tuning parameter 'learning_rat' of {HGB}", "did you mean 'learning_rate'?"),
    ]


def test_classifier_with_a_regression_metric_is_refused(tmp_path: Path) -> None:
    path = _spec(tmp_path, {"estimator": HGB}, ["roc_auc", "neg_mean_squared_error"])
    [(where, message, hint)] = _errors(path)
    assert where == "training.evaluation.metrics[1]" and message == f"'neg_mean_squared_error' is a regression metric, but {HGB} is a classifier"
    assert hint is not None and "roc_auc" in hint
    regressor = _spec(tmp_path, {"estimator": "sklearn.linear_model.Ridge"}, ["r2", "accuracy"])
    assert _errors(regressor)[0][1] == "'accuracy' is a classification metric, but sklearn.linear_model.Ridge is a regressor"


def test_every_scorer_name_is_accepted_and_an_unknown_one_is_not(tmp_path: Path) -> None:
    weighted = _spec(tmp_path, {"estimator": HGB}, ["f1_weighted", "precision_macro", "neg_log_loss", "matthews_corrcoef", "adjusted_rand_score"])
    assert _errors(weighted) == []
    unknown = _spec(tmp_path, {"estimator": HGB}, ["f1_wieghted"])
    assert _errors(unknown) == [
        (
            "training.evaluation.metrics[0]",
            "the runtime cannot compute metric 'f1_wieghted' for a scikit-learn trainer: it is no scikit-learn scorer",
            "did you mean 'f1_weighted'?",
        )
    ]
    samples = _spec(tmp_path, {"estimator": HGB}, ["f1_samples"])
    assert _errors(samples)[0][2] == "use f1_macro or f1_weighted"


def test_negated_losses_read_the_right_way_round_in_goals_gates_and_monitors(tmp_path: Path) -> None:
    tuning = {
        "objective": {"metric": "neg_mean_squared_error", "goal": "minimize"},
        "max_trials": 2,
        "params": {"alpha": {"type": "float", "min": 0.1, "max": 1}},
    }
    gates = [
        {"metric": "neg_mean_squared_error", "max": 0.5},
        {"metric": "neg_mean_squared_error", "min": 0.5},
        {"metric": "neg_mean_squared_error", "min": -0.5},
    ]
    path = _spec(tmp_path, {"estimator": "sklearn.linear_model.Ridge"}, ["neg_mean_squared_error", "mse"], tuning=tuning,
                 evaluation={"metrics": ["neg_mean_squared_error", "mse"], "gates": gates})  # fmt: skip
    found = {where: message for where, message, _ in _errors(path)}
    assert found == {
        "training.tuning.objective.goal": "goal 'minimize' would choose the worst trial: 'neg_mean_squared_error' is a negated loss, as scikit-learn reports it (≤ 0, higher is better)",
        "training.evaluation.gates[0].max": "max 0.5 is always met: 'neg_mean_squared_error' is a negated loss, as scikit-learn reports it (≤ 0, higher is better)",
        "training.evaluation.gates[1].min": "min 0.5 can never be met: 'neg_mean_squared_error' is a negated loss, as scikit-learn reports it (≤ 0, higher is better)",
    }
    loss_goal = dict(tuning, objective={"metric": "mse", "goal": "maximize"})
    path = _spec(tmp_path, {"estimator": "sklearn.linear_model.Ridge"}, ["mse"], tuning=loss_goal)
    assert _errors(path) == [
        ("training.tuning.objective.goal", "goal 'maximize' would choose the worst trial: 'mse' is a loss (lower is better)", "goal: minimize")
    ]


def test_a_transformer_or_an_estimator_missing_a_required_parameter_is_refused(tmp_path: Path) -> None:
    scaler = _spec(tmp_path, {"estimator": "sklearn.preprocessing.StandardScaler"})
    assert "is a transformer: it does not predict" in _errors(scaler)[0][1]
    pipeline = _spec(tmp_path, {"estimator": "sklearn.ensemble.StackingClassifier"})
    assert _errors(pipeline)[0][1] == "'sklearn.ensemble.StackingClassifier' needs parameter estimators"


def test_only_estimators_of_allowed_packages_are_named(tmp_path: Path) -> None:
    """`subprocess.call` with `shell: true` is no estimator: refused before anything runs."""
    shell = _spec(tmp_path, {"estimator": "subprocess.call", "params": {"args": "touch pwned", "shell": True}})
    [(where, message, hint)] = _errors(shell)
    assert where == "training.trainer.sklearn.estimator"
    assert message == "'subprocess.call' is not an estimator class of an allowed package (sklearn, xgboost, lightgbm)"
    assert hint is not None and "standard library" in hint
    own = _spec(tmp_path, {"estimator": "mycompany_models.ChurnClassifier", "params": {"depth": 3}})
    assert "estimator_packages: [mycompany_models]" in (_errors(own)[0][2] or "")
    profile_data = yaml.safe_load(PROFILE.read_text())
    allowing = tmp_path / "targets" / "aws-prod.yaml"
    allowing.parent.mkdir()
    allowing.write_text(yaml.safe_dump({**profile_data, "estimator_packages": ["mycompany_models"]}))
    assert _errors(own, [load_profile(allowing)]) == []
    refusing = tmp_path / "targets" / "other.yaml"
    refusing.write_text(yaml.safe_dump({**profile_data, "metadata": {"name": "azure-prod"}}))
    assert [e[1] for e in _errors(own, [load_profile(allowing), load_profile(refusing)])] == [
        "'mycompany_models.ChurnClassifier' is not an estimator class of an allowed package (sklearn, xgboost, lightgbm)"
    ]


def test_the_examples_and_container_trainers_keep_validating(tmp_path: Path) -> None:
    for spec in sorted((HERE.parent / "examples").glob("*/mlcompile.yaml")):
        assert _errors(spec) == [], spec
    data = yaml.safe_load(BASE.read_text())
    data["training"]["trainer"] = {"container": {"image": "ghcr.io/acme/train:1"}}
    data["training"]["evaluation"]["metrics"] = ["ndcg_at_10", "neg_whatever"]
    path = tmp_path / "container.yaml"
    path.write_text(yaml.safe_dump(data))
    assert _errors(path) == []


def test_validate_reads_the_catalog_without_importing_scikit_learn(tmp_path: Path) -> None:
    path = _spec(tmp_path, {"estimator": HGB, "params": {"max_iters": 1}}, ["neg_mean_squared_error"])
    code = (
        "import sys\nfrom mlcompile.spec.resolve import load_system\nfrom mlcompile.errors import SpecError\n"
        f"try:\n    load_system({str(path)!r})\nexcept SpecError as exc:\n    print(len(exc.diagnostics))\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('sklearn', 'numpy', 'scipy')))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True).stdout.split("\n")
    assert out[:2] == ["2", "[]"]


def test_a_profile_cannot_allow_the_standard_library_as_an_estimator_package(tmp_path: Path) -> None:
    profile = tmp_path / "aws-prod.yaml"
    profile.write_text(yaml.safe_dump({**yaml.safe_load(PROFILE.read_text()), "estimator_packages": ["mycompany_models", "subprocess"]}))
    with pytest.raises(SpecError) as raised:
        load_profile(profile)
    [diagnostic] = raised.value.diagnostics
    assert diagnostic.path == "estimator_packages[1]" and diagnostic.message == "'subprocess' is Python's standard library: it holds no estimators"
